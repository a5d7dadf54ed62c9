/* The address space: every VMA with its protection, flags and backing, the
 * pages that differ from their backing (stored in the swapfile, mapped in
 * the image), and the hidden mm state of prctl(PR_SET_MM_MAP). */
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "cryo.h"
#include "dirty.h"
#include "dumpbatch.h"
#include "err.h"
#include "lazy.h"
#include "restbatch.h"
#include "progress.h"
#include "shanon.h"

#define PAGE 4096ull
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_FILE (1ull << 61)
#define COPY_CHUNK_PAGES 2048	/* 8 MiB per process_vm_readv/writev batch */
#define TASK_TOP 0x7ffffffff000ull

static const char *vma_kind_name(uint32_t kind)
{
	switch (kind) {
	case LX_VMA_ANON: return "anonymous";
	case LX_VMA_FILE_PRIVATE: return "private file";
	case LX_VMA_FILE_SHARED: return "shared file";
	case LX_VMA_SHARED_ANON: return "shared anonymous";
	case LX_VMA_VDSO: return "[vdso]";
	case LX_VMA_VVAR: return "[vvar]";
	case LX_VMA_VVAR_VCLOCK: return "[vvar_vclock]";
	case LX_VMA_VSYSCALL: return "[vsyscall]";
	case LX_VMA_SYSV_SHM: return "SysV shm";
	}
	return "?";
}

static int special_kind(const char *path)
{
	if (!strcmp(path, "[vdso]"))
		return LX_VMA_VDSO;
	if (!strcmp(path, "[vvar]"))
		return LX_VMA_VVAR;
	if (!strcmp(path, "[vvar_vclock]"))
		return LX_VMA_VVAR_VCLOCK;
	if (!strcmp(path, "[vsyscall]"))
		return LX_VMA_VSYSCALL;
	return 0;
}

static int is_special(uint32_t kind)
{
	return kind >= LX_VMA_VDSO && kind != LX_VMA_SYSV_SHM;
}

/* ------------------------------------------------------------------ */
/* dump                                                                */

static int refuse_vma(struct dump_task *t, const struct proc_vma *v, const char *why)
{
	return err_set(-EOPNOTSUPP, "pid %d: mapping %#lx-%#lx%s%s: %s is not supported",
		       t->pid, (unsigned long)v->start, (unsigned long)v->end,
		       v->path[0] ? " " : "", v->path, why);
}

/* Identity of a mapped file, through map_files so a renamed file is still
 * the one mapped; compared with the path so restore can find it again. */
static int vma_file_ident(struct dump_task *t, const struct proc_vma *v, struct lx_vma *r)
{
	char mf[128];
	struct stat st, pst;

	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", t->pid,
		 (unsigned long)v->start, (unsigned long)v->end);
	if (stat(mf, &st) < 0 && stat(v->path, &st) < 0)
		return err_sys(-errno, "pid %d: mapping %#lx-%#lx: stat %s", t->pid,
			       (unsigned long)v->start, (unsigned long)v->end, v->path);
	if (st.st_ino != v->ino || major(st.st_dev) != v->major || minor(st.st_dev) != v->minor)
		return refuse_vma(t, v, "a file that is not reachable by its path");
	if (v->path[0] != '/' || stat(v->path, &pst) < 0 || pst.st_ino != st.st_ino ||
	    pst.st_dev != st.st_dev)
		return refuse_vma(t, v, "a file replaced or renamed since it was mapped");
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->size = st.st_size;
	r->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
	r->path_off = img_str(t->w, t->index, v->path);
	return 0;
}

static int classify(struct dump_task *t, const struct proc_vma *v, struct lx_vma *r)
{
	int sk = special_kind(v->path);

	memset(r, 0, sizeof(*r));
	r->start = v->start;
	r->end = v->end;
	r->pgoff = v->pgoff;
	r->prot = v->prot;
	if (sk) {
		/* the kernel's own mappings: vvar is VM_PFNMAP by design */
		r->kind = sk;
		return 0;
	}
	if (v->vmflags & (VMF_IO | VMF_PF))
		return refuse_vma(t, v, "device memory (VM_IO/VM_PFNMAP)");
	if ((v->vmflags & VMF_UFFD) && !dirty_owns(t, v->start, v->end))
		return refuse_vma(t, v, "a range registered with userfaultfd (if this process"
				  " was restored with --lazy, dump it once its pages are all loaded)");
	if (v->vmflags & VMF_SS)
		return refuse_vma(t, v, "a shadow stack");
	if (v->vmflags & VMF_HT)
		return refuse_vma(t, v, "hugetlbfs memory");
	if (v->vmflags & VMF_SL)
		return refuse_vma(t, v, "a sealed mapping (mseal)");
	if (v->vmflags & VMF_GD)
		r->flags |= LX_VMAF_GROWSDOWN;
	if (v->vmflags & VMF_DC)
		r->flags |= LX_VMAF_DONTFORK;
	if (v->vmflags & VMF_WF)
		r->flags |= LX_VMAF_WIPEONFORK;
	if (v->vmflags & VMF_HG)
		r->flags |= LX_VMAF_HUGEPAGE;
	if (v->vmflags & VMF_NH)
		r->flags |= LX_VMAF_NOHUGEPAGE;
	if (v->vmflags & VMF_DD)
		r->flags |= LX_VMAF_DONTDUMP;
	if (v->vmflags & VMF_MG)
		r->flags |= LX_VMAF_MERGEABLE;
	if (v->vmflags & VMF_LO)
		r->flags |= LX_VMAF_LOCKED;
	if (v->vmflags & VMF_MW)
		r->flags |= LX_VMAF_MAYWRITE;
	if (!strcmp(v->path, "[stack]"))
		r->flags |= LX_VMAF_STACK;
	if (!strcmp(v->path, "[heap]"))
		r->flags |= LX_VMAF_HEAP;

	if (v->path[0] == '[' || v->path[0] == 0) {
		if (v->shared)
			return refuse_vma(t, v, "shared anonymous memory without a file");
		r->kind = LX_VMA_ANON;
		return 0;
	}
	if (v->shared && v->deleted && !strcmp(v->path, "/dev/zero")) {
		/* MAP_SHARED|MAP_ANONYMOUS: an object mapped more than once
		 * in the tree gets an id (shanon.c) */
		r->kind = LX_VMA_SHARED_ANON;
		r->ino = v->ino;
		r->shared_id = shanon_vma_id(t->pid, v->start);
		return 0;
	}
	if (!strncmp(v->path, "/SYSV", 5)) {
		/* the segment itself is saved by ipc.c; the mapping is an
		 * attach, redone by shmat at restore */
		r->kind = LX_VMA_SYSV_SHM;
		r->ino = v->ino;	/* the shmid */
		return 0;
	}
	if (!strncmp(v->path, "/memfd:", 7))
		return refuse_vma(t, v, "memfd memory");
	if (v->deleted)
		return refuse_vma(t, v, "a file deleted while mapped");
	r->kind = v->shared ? LX_VMA_FILE_SHARED : LX_VMA_FILE_PRIVATE;
	r->open_flags = (v->shared && (v->vmflags & VMF_MW)) ? O_RDWR : O_RDONLY;
	return vma_file_ident(t, v, r);
}

struct page_out {
	struct lx_page_run *runs;
	size_t nruns, cap;
	uint64_t *sums;
	size_t nsums, sums_cap;
	int barrier;	/* next run starts a new record: runs never span VMAs */
};

static int add_run(struct page_out *o, uint64_t vaddr, uint64_t slot, uint32_t npages)
{
	struct lx_page_run *last = o->nruns && !o->barrier ? &o->runs[o->nruns - 1] : NULL;

	o->barrier = 0;

	if (last && last->vaddr + last->npages * PAGE == vaddr &&
	    ((slot == LX_SLOT_ZERO && last->slot == LX_SLOT_ZERO) ||
	     (slot != LX_SLOT_ZERO && last->slot != LX_SLOT_ZERO &&
	      last->slot + last->npages == slot))) {
		last->npages += npages;
		return 0;
	}
	if (o->nruns == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 256;
		struct lx_page_run *n = realloc(o->runs, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->runs = n;
		o->cap = nc;
	}
	o->runs[o->nruns++] = (struct lx_page_run){ .vaddr = vaddr, .slot = slot, .npages = npages };
	return 0;
}

static int add_sum(struct page_out *o, uint64_t sum)
{
	if (o->nsums == o->sums_cap) {
		size_t nc = o->sums_cap ? o->sums_cap * 2 : 1024;
		uint64_t *n = realloc(o->sums, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->sums = n;
		o->sums_cap = nc;
	}
	o->sums[o->nsums++] = sum;
	return 0;
}

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i += 4)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3])
			return 0;
	return 1;
}

/* Copy a run of pages that exist in the task into the swapfile. Non-zero
 * pages go through swap_store_pages, which reuses a slot holding the same
 * bytes (dedup across dumps into the same swapfile) and appends the rest;
 * t->pages_written counts only pages actually written. `out` holds the
 * slots and sums of one chunk (COPY_CHUNK_PAGES * PAGE bytes is room for
 * far more than 2 * 8 bytes per page, plus the page pointers). */
static int copy_pages(struct dump_task *t, struct page_out *o, uint64_t vaddr,
		      uint64_t npages, uint8_t *buf, uint8_t *out)
{
	uint64_t *slots = (uint64_t *)out;
	uint64_t *sums = slots + COPY_CHUNK_PAGES;
	const uint8_t **ptrs = (const uint8_t **)(sums + COPY_CHUNK_PAGES);
	_Static_assert(COPY_CHUNK_PAGES * (8 + 8 + sizeof(void *)) <= COPY_CHUNK_PAGES * PAGE,
		       "copy_pages scratch");

	while (npages) {
		uint64_t n = npages < COPY_CHUNK_PAGES ? npages : COPY_CHUNK_PAGES;
		size_t nout = 0;
		int e = mem_read(t->pid, vaddr, buf, n * PAGE);

		if (e)
			return e;
		for (uint64_t i = 0; i < n; i++)
			if (!page_is_zero(buf + i * PAGE)) {
				ptrs[nout] = buf + i * PAGE;
				sums[nout] = page_sum(buf + i * PAGE);
				nout++;
			}
		if (nout) {
			uint64_t before_w, before_r;

			swap_counters(t->sw, &before_w, &before_r);
			e = swap_store_pages(t->sw, ptrs, sums, nout, slots);
			if (e)
				return e;
			{
				uint64_t w, r;

				swap_counters(t->sw, &w, &r);
				t->pages_written += w - before_w;
			}
		}
		nout = 0;
		for (uint64_t i = 0; i < n; i++) {
			uint8_t *pg = buf + i * PAGE;

			if (page_is_zero(pg)) {
				e = add_run(o, vaddr + i * PAGE, LX_SLOT_ZERO, 1);
				t->pages_zero++;
			} else {
				e = add_run(o, vaddr + i * PAGE, slots[nout], 1);
				if (!e)
					e = add_sum(o, sums[nout]);
				nout++;
			}
			if (e)
				return e;
		}
		vaddr += n * PAGE;
		npages -= n;
	}
	return 0;
}

/* --pre-dump: the pages with data in ranges from one PAGEMAP_SCAN, and of
 * those, runs unchanged since their copy while the tree ran reused whole
 * (dirty.c); the rest copied as usual. */
static int dump_vma_pages_scan(struct dump_task *t, int pm_fd, const struct lx_vma *r,
			       struct page_out *o, uint8_t *buf, uint8_t *out)
{
	uint64_t *rg = NULL, *sums = malloc(COPY_CHUNK_PAGES * sizeof(*sums));
	size_t nrg = 0;
	int e = sums ? 0 : -ENOMEM;

	o->barrier = 1;
	if (!e)
		e = dirty_data_ranges(t, pm_fd, r->start, r->end,
				      r->kind != LX_VMA_ANON && r->kind != LX_VMA_SHARED_ANON,
				      &rg, &nrg);
	t->pages_scanned += (r->end - r->start) / PAGE;
	progress_add(r->end - r->start);
	for (size_t k = 0; k < nrg && !e; k++) {
		uint64_t va = rg[2 * k], end = rg[2 * k + 1];

		while (va < end && !e) {
			uint64_t n = (end - va) / PAGE, slot;
			int64_t c;

			if (n > COPY_CHUNK_PAGES)
				n = COPY_CHUNK_PAGES;
			e = dump_interrupted();
			if (e)
				break;
			c = dirty_clean_run(t, va, n, &slot, sums);
			if (c < 0) {
				e = (int)c;
			} else if (c > 0) {
				e = add_run(o, va, slot, (uint32_t)c);
				for (int64_t j = 0; j < c && !e && slot != LX_SLOT_ZERO; j++)
					e = add_sum(o, sums[j]);
				t->pages_zero += slot == LX_SLOT_ZERO ? (uint64_t)c : 0;
				va += (uint64_t)c * PAGE;
			} else {
				/* copy up to the next page that is still clean */
				uint64_t m = 1;

				while (m < n && !dirty_is_clean(t, va + m * PAGE))
					m++;
				e = copy_pages(t, o, va, m, buf, out);
				va += m * PAGE;
			}
		}
	}
	free(rg);
	free(sums);
	return e;
}

/* Which pages of the VMA hold data of their own: present or swapped
 * anonymous pages (for private file mappings: the COW'd ones). */
static int dump_vma_pages(struct dump_task *t, int pm_fd, const struct lx_vma *r,
			  struct page_out *o, uint8_t *buf, uint8_t *out)
{
	uint64_t total = (r->end - r->start) / PAGE;
	uint64_t *pm = malloc(COPY_CHUNK_PAGES * sizeof(*pm));
	int e = 0;

	if (!pm)
		return -ENOMEM;
	o->barrier = 1;
	for (uint64_t base = 0; base < total && !e; base += COPY_CHUNK_PAGES) {
		uint64_t n = total - base < COPY_CHUNK_PAGES ? total - base : COPY_CHUNK_PAGES;
		off_t off = (off_t)((r->start / PAGE + base) * 8);
		ssize_t got = pread(pm_fd, pm, n * 8, off);
		uint64_t run_start = 0, run_len = 0;

		if (got != (ssize_t)(n * 8)) {
			e = err_sys(got < 0 ? -errno : -EIO, "pid %d: read pagemap at %#lx",
				    t->pid, (unsigned long)(r->start + base * PAGE));
			break;
		}
		t->pages_scanned += n;
		progress_add(n * PAGE);
		e = dump_interrupted();
		if (e)
			break;
		for (uint64_t i = 0; i <= n && !e; i++) {
			int want = 0;

			if (i < n) {
				uint64_t ent = pm[i];

				want = (ent & (PM_PRESENT | PM_SWAP)) != 0 &&
				       r->kind != LX_VMA_SYSV_SHM;
				if (r->kind != LX_VMA_ANON && r->kind != LX_VMA_SHARED_ANON &&
				    (ent & PM_FILE))
					want = 0;	/* still the file's page */
			}
			if (want) {
				if (!run_len)
					run_start = r->start + (base + i) * PAGE;
				run_len++;
			} else if (run_len) {
				e = copy_pages(t, o, run_start, run_len, buf, out);
				run_len = 0;
			}
		}
	}
	free(pm);
	return e;
}

/* A mapping of a shared anonymous object of the tree: the pages shanon.c
 * assigned to it (data pages of the object no earlier mapping stored),
 * whether or not this process's page tables have them. */
static int dump_vma_pages_shanon(struct dump_task *t, const struct lx_vma *r,
				 struct page_out *o, uint8_t *buf, uint8_t *out)
{
	const uint64_t *rg;
	size_t nrg;
	int e = shanon_vma_ranges(t->pid, r->start, &rg, &nrg);

	o->barrier = 1;
	t->pages_scanned += (r->end - r->start) / PAGE;
	progress_add(r->end - r->start);
	for (size_t k = 0; k < nrg && !e; k++) {
		e = dump_interrupted();
		if (!e)
			e = copy_pages(t, o, rg[2 * k], (rg[2 * k + 1] - rg[2 * k]) / PAGE, buf, out);
	}
	return e;
}

static uint64_t vdso_sum(pid_t pid, uint64_t start, uint64_t end)
{
	size_t len = end - start;
	void *b = malloc(len);
	uint64_t sum = 0;

	if (b && mem_read(pid, start, b, len) == 0)
		sum = XXH3_64bits(b, len);
	free(b);
	return sum;
}

int mm_dump(struct dump_task *t)
{
	struct lx_vma *recs = calloc(t->nvmas ? t->nvmas : 1, sizeof(*recs));
	struct page_out o = { 0 };
	uint8_t *buf = NULL, *out = NULL;
	struct lx_mm mm = { 0 };
	char path[64];
	size_t nrec = 0;
	int pm_fd = -1, e = 0;
	long brk_now = 0;

	if (!recs)
		return -ENOMEM;
	buf = malloc(COPY_CHUNK_PAGES * PAGE);
	out = malloc(COPY_CHUNK_PAGES * PAGE);
	if (!buf || !out) {
		e = -ENOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0) {
		e = err_sys(-errno, "pid %d: open %s", t->pid, path);
		goto out;
	}
	/* classify everything first: refusals happen before any page is
	 * written */
	for (size_t i = 0; i < t->nvmas && !e; i++) {
		struct lx_vma *r = &recs[nrec];

		e = classify(t, &t->vmas[i], r);
		if (e)
			break;
		if (r->kind == LX_VMA_VSYSCALL)
			continue;	/* fixed by the kernel, not part of the mm */
		if (r->kind == LX_VMA_SYSV_SHM && r->pgoff &&
		    (!nrec || recs[nrec - 1].kind != LX_VMA_SYSV_SHM || recs[nrec - 1].ino != r->ino ||
		     recs[nrec - 1].end != r->start ||
		     recs[nrec - 1].pgoff + (recs[nrec - 1].end - recs[nrec - 1].start) != r->pgoff)) {
			e = refuse_vma(t, &t->vmas[i], "a SysV shm attach whose start was unmapped");
			break;
		}
		if (r->kind == LX_VMA_VDSO)
			r->content_sum = vdso_sum(t->pid, r->start, r->end);
		nrec++;
	}
	if (e)
		goto out;
	{
		uint64_t total = 0;

		for (size_t i = 0; i < nrec; i++)
			if (!is_special(recs[i].kind))
				total += recs[i].end - recs[i].start;
		progress_start(total, "dump");
	}
	/* brk is not in /proc: ask the task */
	e = dump_inject(t, SYS_brk, 0, &brk_now);
	if (e)
		goto out;
	mm.start_code = t->stat.start_code;
	mm.end_code = t->stat.end_code;
	mm.start_data = t->stat.start_data;
	mm.end_data = t->stat.end_data;
	mm.start_brk = t->stat.start_brk;
	mm.brk = (uint64_t)brk_now;
	mm.start_stack = t->stat.start_stack;
	mm.arg_start = t->stat.arg_start;
	mm.arg_end = t->stat.arg_end;
	mm.env_start = t->stat.env_start;
	mm.env_end = t->stat.env_end;
	{
		long thp = 0;

		e = dump_inject(t, SYS_prctl, PR_GET_THP_DISABLE, &thp);
		if (e)
			goto out;
		if (thp > 0)
			mm.flags |= LX_MM_THP_DISABLE;
	}

	/* The last injected call: from here on the task's registers and
	 * memory are its own again, so a cryo killed while copying pages
	 * leaves it unharmed. */
	e = dump_end_injection(t);
	if (e)
		goto out;
	for (size_t i = 0; i < nrec && !e; i++) {
		if (is_special(recs[i].kind))
			continue;
		if (recs[i].kind == LX_VMA_SHARED_ANON && recs[i].shared_id)
			e = dump_vma_pages_shanon(t, &recs[i], &o, buf, out);
		else
			e = t->dirty ? dump_vma_pages_scan(t, pm_fd, &recs[i], &o, buf, out) :
				       dump_vma_pages(t, pm_fd, &recs[i], &o, buf, out);
		if (e)
			e = err_ctx(e, "pid %d: pages of %s mapping %#lx-%#lx", t->pid,
				    vma_kind_name(recs[i].kind), (unsigned long)recs[i].start,
				    (unsigned long)recs[i].end);
	}
	if (e)
		goto out;

	e = img_add(t->w, LX_SEC_MM, t->index, sizeof(mm), &mm, sizeof(mm));
	if (!e)
		e = img_add(t->w, LX_SEC_VMAS, t->index, sizeof(*recs), recs, nrec * sizeof(*recs));
	if (!e)
		e = img_add(t->w, LX_SEC_PAGEMAP, t->index, sizeof(*o.runs), o.runs,
			    o.nruns * sizeof(*o.runs));
	if (!e)
		e = img_add(t->w, LX_SEC_PAGESUMS, t->index, 8, o.sums, o.nsums * 8);
	if (!e) {
		char *auxv;
		size_t len;

		e = proc_read(t->pid, "auxv", &auxv, &len);
		if (!e) {
			e = img_add(t->w, LX_SEC_AUXV, t->index, 16, auxv, len & ~15ul);
			free(auxv);
		}
	}
	if (!e) {
		/* argv/envp as they are now in memory: what exec must get */
		size_t alen = mm.arg_end - mm.arg_start, elen = mm.env_end - mm.env_start;
		char *a = malloc(alen + 1), *en = malloc(elen + 1);

		if (!a || !en)
			e = -ENOMEM;
		if (!e)
			e = mem_read(t->pid, mm.arg_start, a, alen);
		if (!e)
			e = mem_read(t->pid, mm.env_start, en, elen);
		if (!e)
			e = img_add(t->w, LX_SEC_ARGV, t->index, 0, a, alen);
		if (!e)
			e = img_add(t->w, LX_SEC_ENVP, t->index, 0, en, elen);
		free(a);
		free(en);
	}
out:
	progress_end();
	if (pm_fd >= 0)
		close(pm_fd);
	free(buf);
	free(out);
	free(recs);
	free(o.runs);
	free(o.sums);
	return e;
}

/* ------------------------------------------------------------------ */
/* restore                                                             */

struct range {
	uint64_t start, end;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* A free range of len bytes away from every image VMA and every current
 * one, high enough to stay clear of the heap. */
static uint64_t find_free(const struct lx_vma *v, size_t nv, const struct proc_vma *cur,
			  size_t nc, const struct range *extra, size_t ne, uint64_t len)
{
	size_t n = nv + nc + ne, k = 0;
	struct range *r = malloc((n + 1) * sizeof(*r));
	uint64_t at = 0x100000000ull, found = 0;

	if (!r)
		return 0;
	for (size_t i = 0; i < nv; i++)
		r[k++] = (struct range){ v[i].start, v[i].end };
	for (size_t i = 0; i < nc; i++)
		r[k++] = (struct range){ cur[i].start, cur[i].end };
	for (size_t i = 0; i < ne; i++)
		r[k++] = extra[i];
	qsort(r, k, sizeof(*r), cmp_range);
	for (size_t i = 0; i <= k; i++) {
		uint64_t next = i < k ? r[i].start : TASK_TOP;

		/* one free page on both sides keeps growsdown stacks happy */
		if (next > at + PAGE && next - at - PAGE >= len + PAGE) {
			found = at + PAGE;
			break;
		}
		if (i < k && r[i].end > at)
			at = r[i].end;
	}
	free(r);
	return found;
}

uint64_t mm_find_free(const struct lx_vma *v, size_t nv, const struct proc_vma *cur, size_t nc,
		      uint64_t busy_start, uint64_t busy_end, uint64_t len)
{
	struct range busy = { busy_start, busy_end };

	return find_free(v, nv, cur, nc, &busy, 1, len);
}

static int load_vmas(const struct img *im, uint32_t task, struct lx_vma **v, size_t *n)
{
	int e = img_records(im, LX_SEC_VMAS, task, sizeof(**v), 64, (void **)v, n);

	if (e)
		return err_ctx(e, "image: task %u: vmas", task);
	for (size_t i = 0; i < *n; i++) {
		struct lx_vma *r = &(*v)[i];

		if (r->start % PAGE || r->end % PAGE || r->start >= r->end || r->end > TASK_TOP ||
		    (i && r->start < (*v)[i - 1].end) || r->kind < LX_VMA_ANON ||
		    r->kind > LX_VMA_KIND_LAST || r->pgoff % PAGE)
			return err_set(-EINVAL, "image: task %u: vma %zu (%#lx-%#lx) is malformed",
				       task, i, (unsigned long)r->start, (unsigned long)r->end);
	}
	return 0;
}

static int check_file(const char *what, const char *path, const struct lx_vma *r, int allow_changed)
{
	struct stat st;
	uint64_t mt;

	if (stat(path, &st) < 0)
		return err_sys(-errno, "%s %s", what, path);
	mt = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
	if (st.st_dev != r->dev || st.st_ino != r->ino)
		return err_set(-ESTALE, "%s %s was replaced since the dump (inode %lu, was %lu);"
			       " restoring onto different code or data would be wrong",
			       what, path, (unsigned long)st.st_ino, (unsigned long)r->ino);
	if (!allow_changed && ((uint64_t)st.st_size != r->size || mt != r->mtime_ns))
		return err_set(-ESTALE, "%s %s changed since the dump (size %lu, was %lu);"
			       " use --allow-changed-files to restore anyway",
			       what, path, (unsigned long)st.st_size, (unsigned long)r->size);
	return 0;
}

int mm_check(const struct img *im, uint32_t task, int allow_changed)
{
	struct lx_vma *v;
	struct lx_page_run *runs;
	size_t n, nr, nsums;
	const void *sums;
	uint64_t sums_len, need = 0;
	uint32_t rs;
	int e = load_vmas(im, task, &v, &n);

	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++) {
		if (v[i].kind == LX_VMA_FILE_PRIVATE || v[i].kind == LX_VMA_FILE_SHARED) {
			const char *p = img_string(im, task, v[i].path_off);

			if (!p || p[0] != '/')
				e = err_set(-EINVAL, "image: task %u: vma %zu has a bad path", task, i);
			else	/* private mappings (code, libraries) never may differ;
				 * a shared data file is like an open file */
				e = check_file("mapped file", p, &v[i],
					       v[i].kind == LX_VMA_FILE_SHARED && allow_changed);
		}
	}
	free(v);
	if (e)
		return e;
	e = img_records(im, LX_SEC_PAGEMAP, task, sizeof(*runs), sizeof(*runs), (void **)&runs, &nr);
	if (e)
		return err_ctx(e, "image: task %u: pagemap", task);
	for (size_t i = 0; i < nr; i++) {
		if (runs[i].vaddr % PAGE || !runs[i].npages ||
		    !lx_range_ok(runs[i].vaddr, runs[i].npages * PAGE, TASK_TOP))
			e = err_set(-EINVAL, "image: task %u: page run %zu is malformed", task, i);
		if (runs[i].slot != LX_SLOT_ZERO)
			need += runs[i].npages;
	}
	free(runs);
	if (e)
		return e;
	if (img_find(im, LX_SEC_PAGESUMS, task, &sums, &sums_len, &rs))
		sums_len = 0;
	nsums = sums_len / 8;
	if (nsums != need)
		return err_set(-EINVAL, "image: task %u: %zu page checksums for %lu stored pages",
			       task, nsums, (unsigned long)need);
	return 0;
}

int restore_sys(struct restore_task *t, const char *what, long nr, uint64_t a1,
		uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret)
{
	long r;
	/* calls queued by restore_defer run first: program order is kept
	 * whichever way a call is made */
	int e = restore_flush(t);

	if (!e)
		e = inj_syscall(&t->inj, nr, a1, a2, a3, a4, a5, a6, &r);
	if (e)
		return e;
	if (ret)
		*ret = r;
	if (r < 0 && r > -4096)
		return err_sys((int)r, "pid %d: %s", t->pid, what);
	return 0;
}

int restore_put(struct restore_task *t, size_t off, const void *data, size_t len, uint64_t *addr)
{
	*addr = t->scratch + off;
	if (off + len > t->scratch_len)
		return err_set(-E2BIG, "pid %d: %zu bytes do not fit the restore scratch area",
			       t->pid, len);
	*addr = t->scratch + off;
	return mem_write(t->pid, *addr, data, len);
}

static int find_cur(const struct proc_vma *cur, size_t nc, const char *name)
{
	for (size_t i = 0; i < nc; i++)
		if (!strcmp(cur[i].path, name))
			return (int)i;
	return -1;
}

/* Move [vvar] [vvar_vclock] [vdso] of the freshly exec'd task to where the
 * image had them: first all to a free area (targets may overlap current
 * positions), then each to its place. */
static int move_specials(struct restore_task *t, const struct lx_vma *v, size_t nv,
			 const struct proc_vma *cur, size_t nc)
{
	static const char *const names[] = { "[vvar]", "[vvar_vclock]", "[vdso]" };
	static const uint32_t kinds[] = { LX_VMA_VVAR, LX_VMA_VVAR_VCLOCK, LX_VMA_VDSO };
	uint64_t tmp[3] = { 0 }, len[3] = { 0 }, dst[3] = { 0 }, vdso_off = 0;
	struct range busy[4];
	size_t nb = 0;
	int e;

	busy[nb++] = (struct range){ t->scratch, t->scratch + t->scratch_len };
	for (int k = 0; k < 3; k++) {
		int ci = find_cur(cur, nc, names[k]);
		const struct lx_vma *iv = NULL;

		for (size_t i = 0; i < nv; i++)
			if (v[i].kind == kinds[k])
				iv = &v[i];
		if (ci < 0 && !iv)
			continue;
		if (ci < 0)
			return err_set(-ENOEXEC, "pid %d: the image has %s but this kernel gives none:"
				       " the image is from a different kernel", t->pid, names[k]);
		len[k] = cur[ci].end - cur[ci].start;
		if (!iv) {
			e = restore_sys(t, "unmap the new vdso", SYS_munmap, cur[ci].start, len[k],
					0, 0, 0, 0, NULL);
			if (e)
				return e;
			continue;
		}
		if (iv->end - iv->start != len[k])
			return err_set(-ENOEXEC, "pid %d: %s is %lu bytes on this kernel, %lu in the"
				       " image: the image is from a different kernel", t->pid,
				       names[k], (unsigned long)len[k],
				       (unsigned long)(iv->end - iv->start));
		if (kinds[k] == LX_VMA_VDSO && iv->content_sum &&
		    vdso_sum(t->pid, cur[ci].start, cur[ci].end) != iv->content_sum)
			return err_set(-ENOEXEC, "pid %d: this kernel's vdso differs from the image's:"
				       " code that cached vdso entry points would break", t->pid);
		if (kinds[k] == LX_VMA_VDSO)
			vdso_off = t->inj.syscall_ip - cur[ci].start;
		tmp[k] = find_free(v, nv, cur, nc, busy, nb, len[k]);
		if (!tmp[k])
			return err_set(-ENOMEM, "pid %d: no free address range to move %s",
				       t->pid, names[k]);
		busy[nb++] = (struct range){ tmp[k], tmp[k] + len[k] };
		e = restore_sys(t, "move vdso/vvar aside", SYS_mremap, cur[ci].start, len[k], len[k],
				MREMAP_MAYMOVE | MREMAP_FIXED, tmp[k], 0, NULL);
		if (e)
			return e;
		dst[k] = iv->start;
		if (kinds[k] == LX_VMA_VDSO)
			inj_set_syscall_ip(&t->inj, tmp[k] + vdso_off);
	}
	for (int k = 0; k < 3; k++) {
		if (!dst[k])
			continue;
		e = restore_sys(t, "move vdso/vvar into place", SYS_mremap, tmp[k], len[k], len[k],
				MREMAP_MAYMOVE | MREMAP_FIXED, dst[k], 0, NULL);
		if (e)
			return e;
		if (kinds[k] == LX_VMA_VDSO)
			inj_set_syscall_ip(&t->inj, dst[k] + vdso_off);
	}
	return 0;
}

/* Unmap everything exec made except the special mappings and scratch */
static int unmap_exec_leftovers(struct restore_task *t, const struct proc_vma *cur, size_t nc)
{
	struct range *keep = malloc((nc + 1) * sizeof(*keep));
	size_t nk = 0;
	uint64_t at = 0;
	int e = 0;

	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < nc; i++)
		if (special_kind(cur[i].path))
			keep[nk++] = (struct range){ cur[i].start, cur[i].end };
	keep[nk++] = (struct range){ t->scratch, t->scratch + t->scratch_len };
	qsort(keep, nk, sizeof(*keep), cmp_range);
	for (size_t i = 0; i <= nk && !e; i++) {
		uint64_t end = i < nk ? keep[i].start : TASK_TOP;

		if (end > TASK_TOP)
			end = TASK_TOP;
		if (end > at)
			e = restore_defer(t, "unmap the exec'd image", SYS_munmap, at, end - at,
					  0, 0, 0, 0, -1);
		if (i < nk && keep[i].end > at)
			at = keep[i].end;
		if (at >= TASK_TOP)
			break;
	}
	free(keep);
	/* now: the vdso may move into one of these ranges next */
	return e ? e : restore_flush(t);
}

/* A SysV attach (ipc.c created the segment with its id): shmat at the
 * address minus the offset; later pieces of one attach (split by
 * mprotect) are covered by its first. */
static int attach_sysv(struct restore_task *t, const struct lx_vma *r)
{
	long flags = (r->flags & LX_VMAF_MAYWRITE) ? 0 : SHM_RDONLY, ret;
	int e;

	if (r->pgoff)
		return 0;
	if (r->prot & PROT_EXEC)
		flags |= SHM_EXEC;
	e = restore_sys(t, "shmat", SYS_shmat, r->ino, r->start, (uint64_t)flags, 0, 0, 0, &ret);
	if (e)
		return err_ctx(e, "pid %d: attach SysV shm segment id %lu at %#lx", t->pid,
			       (unsigned long)r->ino, (unsigned long)r->start);
	if ((uint64_t)ret != r->start)
		return err_set(-EFAULT, "pid %d: SysV shm id %lu attached at %#lx, not %#lx",
			       t->pid, (unsigned long)r->ino, (unsigned long)ret,
			       (unsigned long)r->start);
	return 0;
}

struct open_cache {
	uint32_t path_off;
	int flags;
	long fd;
};

static int map_one(struct restore_task *t, const struct lx_vma *r, int has_pages,
		   struct open_cache *oc, size_t *noc)
{
	int prot = r->prot | (has_pages ? PROT_WRITE | PROT_READ : 0);
	int flags = MAP_FIXED;
	long fd = -1, ret;
	char what[120];
	int e;

	if (r->flags & LX_VMAF_GROWSDOWN)
		flags |= MAP_GROWSDOWN;
	switch (r->kind) {
	case LX_VMA_ANON:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case LX_VMA_SHARED_ANON:
		flags |= MAP_SHARED | MAP_ANONYMOUS;
		break;
	case LX_VMA_FILE_PRIVATE:
	case LX_VMA_FILE_SHARED: {
		size_t i;

		flags |= r->kind == LX_VMA_FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
		for (i = 0; i < *noc; i++)
			if (oc[i].path_off == r->path_off && oc[i].flags == (int)r->open_flags)
				break;
		if (i == *noc) {
			const char *p = img_string(t->im, t->index, r->path_off);
			uint64_t pa = 0;

			if (!p)
				return -EINVAL;
			e = restore_put(t, 0, p, strlen(p) + 1, &pa);
			if (!e)
				e = restore_sys(t, "open a mapped file", SYS_open, pa,
						r->open_flags | O_CLOEXEC, 0, 0, 0, 0, &ret);
			if (e)
				return err_ctx(e, "pid %d: open %s", t->pid, p);
			oc[i] = (struct open_cache){ r->path_off, (int)r->open_flags, ret };
			(*noc)++;
		}
		fd = oc[i].fd;
		break;
	}
	case LX_VMA_SYSV_SHM:
		return attach_sysv(t, r);
	default:
		return 0;
	}
	/* nothing reads the result but the check: batched (restbatch.c), run
	 * before the pages are filled and the files closed */
	snprintf(what, sizeof(what), "recreate %s mapping %#lx-%#lx: mmap",
		 vma_kind_name(r->kind), (unsigned long)r->start, (unsigned long)r->end);
	return restore_defer(t, what, SYS_mmap, r->start, r->end - r->start, prot, flags, fd,
			     r->kind == LX_VMA_FILE_PRIVATE || r->kind == LX_VMA_FILE_SHARED ?
			     r->pgoff : 0, (long)r->start);
}

static int vma_has_pages(const struct lx_vma *r, const struct lx_page_run *runs, size_t nr)
{
	/* runs are sorted by address: binary search the first run ending after start */
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (runs[mid].vaddr + runs[mid].npages * PAGE <= r->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nr && runs[lo].vaddr < r->end;
}

/* The VMA holding addr (nv if none) */
static size_t vma_index(const struct lx_vma *v, size_t nv, uint64_t addr)
{
	size_t lo = 0, hi = nv;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Write the stored pages: slots are read in large batches, checked against
 * their checksums, and written with one process_vm_writev per batch. */
static int fill_pages(struct restore_task *t, const struct lx_vma *v, size_t nv,
		      const struct lx_page_run *runs, size_t nr, const uint64_t *sums,
		      const uint8_t *lazy)
{
	uint8_t *buf = malloc(COPY_CHUNK_PAGES * PAGE);
	static const uint8_t zero[PAGE];
	size_t si = 0, vi = 0;
	int e = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < nr && !e; i++) {
		const struct lx_page_run *r = &runs[i];

		/* zero runs only matter where the backing is not already zero */
		while (vi < nv && v[vi].end <= r->vaddr)
			vi++;
		if (vi >= nv || v[vi].start > r->vaddr ||
		    r->vaddr + r->npages * PAGE > v[vi].end) {
			e = err_set(-EINVAL, "image: pid %d: page run at %#lx lies outside its mappings",
				    t->pid, (unsigned long)r->vaddr);
			break;
		}
		if (lazy && lazy[vi]) {		/* served by the page server */
			if (r->slot != LX_SLOT_ZERO)
				si += r->npages;
			continue;
		}
		if (r->slot == LX_SLOT_ZERO) {
			if (v[vi].kind == LX_VMA_ANON || v[vi].kind == LX_VMA_SHARED_ANON)
				continue;
			for (uint64_t k = 0; k < r->npages && !e; k++)
				e = mem_write(t->pid, r->vaddr + k * PAGE, zero, PAGE);
			continue;
		}
		for (uint64_t done = 0; done < r->npages && !e;) {
			uint64_t n = r->npages - done;

			if (n > COPY_CHUNK_PAGES)
				n = COPY_CHUNK_PAGES;
			e = swap_read(t->sw, r->slot + done, n, buf);
			for (uint64_t k = 0; k < n && !e; k++, si++) {
				if (page_sum(buf + k * PAGE) != sums[si]) {
					struct lx_swap_ref *ref = NULL;
					size_t nref = 0;
					unsigned long long snap = 0;

					if (!img_records(t->im, LX_SEC_SWAP, LX_TASK_GLOBAL,
							 sizeof(*ref), sizeof(*ref), (void **)&ref,
							 &nref) && nref == 1)
						snap = (unsigned long long)ref->snapshot;
					free(ref);
					e = err_set(-EIO, "swapfile: page at %#lx (slot %lu, snapshot %llu)"
						    " of pid %d fails its checksum (corrupt or deleted"
						    " snapshot); nothing was resumed",
						    (unsigned long)(r->vaddr + (done + k) * PAGE),
						    (unsigned long)(r->slot + done + k), snap, t->pid);
				}
			}
			if (!e)
				e = mem_write(t->pid, r->vaddr + done * PAGE, buf, n * PAGE);
			progress_add(n * PAGE);
			done += n;
		}
	}
	free(buf);
	return e;
}

static int apply_advice(struct restore_task *t, const struct lx_vma *r)
{
	static const struct { uint32_t flag; int advice; const char *name; } adv[] = {
		{ LX_VMAF_DONTFORK, MADV_DONTFORK, "MADV_DONTFORK" },
		{ LX_VMAF_WIPEONFORK, MADV_WIPEONFORK, "MADV_WIPEONFORK" },
		{ LX_VMAF_HUGEPAGE, MADV_HUGEPAGE, "MADV_HUGEPAGE" },
		{ LX_VMAF_NOHUGEPAGE, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE" },
		{ LX_VMAF_DONTDUMP, MADV_DONTDUMP, "MADV_DONTDUMP" },
		{ LX_VMAF_MERGEABLE, MADV_MERGEABLE, "MADV_MERGEABLE" },
	};
	int e = 0;

	for (size_t k = 0; k < sizeof(adv) / sizeof(adv[0]) && !e; k++)
		if (r->flags & adv[k].flag)
			e = restore_defer(t, adv[k].name, SYS_madvise, r->start, r->end - r->start,
					  adv[k].advice, 0, 0, 0, -1);
	if (!e && (r->flags & LX_VMAF_LOCKED))
		e = restore_defer(t, "mlock", SYS_mlock, r->start, r->end - r->start, 0, 0, 0, 0, -1);
	return e;
}

static int set_mm_map(struct restore_task *t)
{
	struct lx_mm *mm;
	size_t n;
	const void *auxv;
	uint64_t auxv_len, mm_addr = 0, auxv_addr = 0;
	uint32_t rs;
	struct prctl_mm_map m;
	int e = img_records(t->im, LX_SEC_MM, t->index, sizeof(*mm), 88, (void **)&mm, &n);

	if (e)
		return err_ctx(e, "image: task %u: mm", t->index);
	if (n != 1) {
		free(mm);
		return err_set(-EINVAL, "image: task %u: %zu mm records", t->index, n);
	}
	if (img_find(t->im, LX_SEC_AUXV, t->index, &auxv, &auxv_len, &rs) || auxv_len > 1024 ||
	    auxv_len % 16) {
		free(mm);
		return err_set(-EINVAL, "image: task %u: missing or bad auxv", t->index);
	}
	memset(&m, 0, sizeof(m));
	m.start_code = mm->start_code;
	m.end_code = mm->end_code;
	m.start_data = mm->start_data;
	m.end_data = mm->end_data;
	m.start_brk = mm->start_brk;
	m.brk = mm->brk;
	m.start_stack = mm->start_stack;
	m.arg_start = mm->arg_start;
	m.arg_end = mm->arg_end;
	m.env_start = mm->env_start;
	m.env_end = mm->env_end;
	m.exe_fd = (uint32_t)-1;
	m.auxv_size = (uint32_t)auxv_len;
	e = restore_put(t, 1024, auxv, auxv_len, &auxv_addr);
	m.auxv = (__u64 *)(uintptr_t)auxv_addr;
	if (!e)
		e = restore_put(t, 2048, &m, sizeof(m), &mm_addr);
	if (!e)
		e = restore_sys(t, "prctl(PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP,
				mm_addr, sizeof(m), 0, 0, NULL);
	if (!e && (mm->flags & LX_MM_THP_DISABLE))
		e = restore_sys(t, "prctl(PR_SET_THP_DISABLE)", SYS_prctl, PR_SET_THP_DISABLE, 1,
				0, 0, 0, 0, NULL);
	free(mm);
	return e;
}

int mm_restore(struct restore_task *t)
{
	struct proc_vma *cur = NULL;
	struct lx_vma *v = NULL;
	struct lx_page_run *runs = NULL;
	struct open_cache *oc = NULL;
	uint8_t *lazy = NULL;
	const void *sums;
	uint64_t sums_len;
	uint32_t rs;
	size_t nc = 0, nv = 0, nr = 0, noc = 0;
	int e;

	e = load_vmas(t->im, t->index, &v, &nv);
	if (!e)
		e = img_records(t->im, LX_SEC_PAGEMAP, t->index, sizeof(*runs), sizeof(*runs),
				(void **)&runs, &nr);
	if (!e && img_find(t->im, LX_SEC_PAGESUMS, t->index, &sums, &sums_len, &rs))
		sums = NULL;
	if (!e)
		e = proc_maps(t->pid, &cur, &nc);
	if (e)
		goto out;
	oc = calloc(nv + 1, sizeof(*oc));
	if (!oc) {
		e = -ENOMEM;
		goto out;
	}

	t->scratch_len = 64 * 1024;
	t->scratch = find_free(v, nv, cur, nc, NULL, 0, t->scratch_len);
	if (!t->scratch) {
		e = err_set(-ENOMEM, "pid %d: no free range for the restore scratch area", t->pid);
		goto out;
	}
	e = restore_map_scratch(t);
	if (e)
		goto out;
	e = unmap_exec_leftovers(t, cur, nc);
	if (!e)
		e = move_specials(t, v, nv, cur, nc);
	for (size_t i = 0; i < nv && !e; i++)
		e = v[i].kind == LX_VMA_SHARED_ANON && v[i].shared_id ?
			shanon_map(t, v, nv, i, cur, nc) :
			map_one(t, &v[i], vma_has_pages(&v[i], runs, nr), oc, &noc);
	for (size_t i = 0; i < noc && !e; i++)
		e = restore_defer(t, "close a mapped file", SYS_close, oc[i].fd, 0, 0, 0, 0, 0, -1);
	if (!e)
		e = restore_flush(t);
	if (!e && lazy_active())
		e = lazy_attach(t, v, nv, runs, nr, &lazy);
	if (!e) {
		uint64_t stored = 0;

		for (size_t i = 0; i < nr; i++)
			if (runs[i].slot != LX_SLOT_ZERO &&
			    !(lazy && lazy[vma_index(v, nv, runs[i].vaddr)]))
				stored += runs[i].npages;
		progress_start(stored * PAGE, "restore");
		e = fill_pages(t, v, nv, runs, nr, sums, lazy);
		progress_end();
	}
	for (size_t i = 0; i < nv && !e; i++) {
		if (is_special(v[i].kind))
			continue;
		if ((vma_has_pages(&v[i], runs, nr) && (v[i].prot & (PROT_READ | PROT_WRITE)) !=
		     (PROT_READ | PROT_WRITE)) || v[i].kind == LX_VMA_SYSV_SHM ||
		    (v[i].kind == LX_VMA_SHARED_ANON && v[i].shared_id))
			e = restore_defer(t, "mprotect", SYS_mprotect, v[i].start,
					  v[i].end - v[i].start, v[i].prot, 0, 0, 0, -1);
		if (!e)
			e = apply_advice(t, &v[i]);
	}
	if (!e)
		e = restore_flush(t);
	if (!e)
		e = set_mm_map(t);
out:
	if (e)
		e = err_ctx(e, "restore memory of pid %d", t->pid);
	proc_maps_free(cur, nc);
	free(v);
	free(runs);
	free(oc);
	free(lazy);
	return e;
}

int mm_unmap_scratch(struct restore_task *t)
{
	return restore_sys(t, "unmap scratch area", SYS_munmap, t->scratch, t->scratch_len,
			   0, 0, 0, 0, NULL);
}
