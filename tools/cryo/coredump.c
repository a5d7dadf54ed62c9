/* cryo core IMAGE -o CORE: an ELF core file of a checkpointed process, so
 * that `gdb BINARY CORE` shows its threads, registers and memory as they
 * were at the checkpoint.
 *
 * The core follows what the kernel's own core dumps contain (fs/binfmt_elf.c)
 * because that is what gdb and other tools parse:
 *   ELF header, program headers (libelf);
 *   PT_NOTE: per thread NT_PRSTATUS (then, after the first one, NT_PRPSINFO,
 *     NT_AUXV and NT_FILE), NT_PRFPREG and NT_X86_XSTATE -- gdb attaches
 *     each register note to the thread of the NT_PRSTATUS before it;
 *   PT_LOAD per VMA, with the memory as the restore would rebuild it: pages
 *     stored in the swapfile (checked against their checksums), zeros for
 *     zero runs and untouched anonymous memory, and the mapped file's
 *     contents for file pages the process never wrote.
 * Zero pages are left as holes, so the core is a sparse file.
 *
 * The image is untrusted: every count, address and offset is checked
 * before it sizes an allocation or a write. */
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cryo.h"
#include "err.h"
#include "progress.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define PAGE		4096ull
#define TASK_TOP	0x800000000000ull	/* user addresses are below */
#define CHUNK_PAGES	256			/* 1 MiB per read/write */
#define MAX_XSTATE	(1u << 20)
#define MAX_AUXV	4096

_Static_assert(sizeof(elf_gregset_t) == LX_GPREGS_NR * 8, "pr_reg is user_regs_struct");

struct xs_rec {
	uint32_t tid, len;
	const uint8_t *data;
};

/* one mapped file, opened once for all its VMAs' clean pages */
struct vma_src {
	int fd;			/* -1: no file content (anonymous, or unreadable) */
	int own;		/* fd is ours to close */
	const uint8_t *mem;	/* vdso: our own, identical copy */
	uint64_t filesz;	/* bytes of the segment in the core */
};

struct core_ctx {
	struct img *im;
	uint32_t task;
	const struct lx_task *t;
	struct lx_core core;
	struct lx_vma *vmas;
	size_t nvmas;
	struct lx_page_run *runs;
	size_t nruns;
	uint64_t *sum_base;	/* per run: index of its first page's checksum */
	const uint8_t *sums;
	uint64_t nsums;
	struct lx_thread *threads;
	size_t nthreads;
	struct lx_gpregs *gp;
	size_t ngp;
	struct xs_rec *xs;
	size_t nxs;
	struct vma_src *src;
	struct swapfile *sw;
	const char *out;
	int fd;
	/* note buffer */
	uint8_t *notes;
	size_t nlen, ncap;
};

/* ------------------------------------------------------------------ */
/* loading and checking what the core needs                            */

static int bad(const struct core_ctx *c, const char *what, size_t i)
{
	return err_set(-EINVAL, "image %s: task %u: %s %zu is malformed", c->im->path, c->task,
		       what, i);
}

static int load_mem(struct core_ctx *c)
{
	uint64_t stored = 0, slen = 0;
	uint32_t rs;
	size_t vi = 0;
	int e;

	e = img_records(c->im, LX_SEC_VMAS, c->task, sizeof(*c->vmas), 64, (void **)&c->vmas,
			&c->nvmas);
	if (e)
		return e == -ENOENT ? err_set(e, "image %s: task %u has no memory map (vmas)",
					      c->im->path, c->task) : e;
	/* ELF program header counts above 0xfffe need an extension that
	 * not every reader handles; the kernel's map count limit is lower */
	if (c->nvmas > 0xfffe - 1)
		return err_set(-E2BIG, "image %s: task %u: %zu VMAs, too many for a core file",
			       c->im->path, c->task, c->nvmas);
	for (size_t i = 0; i < c->nvmas; i++) {
		const struct lx_vma *r = &c->vmas[i];

		if (r->start % PAGE || r->end % PAGE || r->start >= r->end || r->end > TASK_TOP ||
		    (i && r->start < c->vmas[i - 1].end) || r->pgoff % PAGE ||
		    r->pgoff > ~0ull - (r->end - r->start))
			return bad(c, "vma", i);
	}
	e = img_records(c->im, LX_SEC_PAGEMAP, c->task, sizeof(*c->runs), sizeof(*c->runs),
			(void **)&c->runs, &c->nruns);
	if (e && e != -ENOENT)
		return e;
	c->sum_base = calloc(c->nruns + 1, sizeof(*c->sum_base));
	if (!c->sum_base)
		return err_set(-ENOMEM, "out of memory for %zu page runs", c->nruns);
	for (size_t i = 0; i < c->nruns; i++) {
		const struct lx_page_run *r = &c->runs[i];

		if (r->vaddr % PAGE || !r->npages || !lx_range_ok(r->vaddr, r->npages * PAGE, TASK_TOP) ||
		    (i && r->vaddr < c->runs[i - 1].vaddr + c->runs[i - 1].npages * PAGE))
			return bad(c, "page run", i);
		/* each run must lie inside one VMA: that is how they are
		 * written, and it lets the copy walk both lists together */
		while (vi < c->nvmas && c->vmas[vi].end <= r->vaddr)
			vi++;
		if (vi >= c->nvmas || c->vmas[vi].start > r->vaddr ||
		    r->vaddr + r->npages * PAGE > c->vmas[vi].end)
			return err_set(-EINVAL, "image %s: task %u: page run %zu at %#llx lies "
				       "outside its mappings", c->im->path, c->task, i,
				       (unsigned long long)r->vaddr);
		c->sum_base[i] = stored;
		if (r->slot != LX_SLOT_ZERO) {
			if (r->slot > ~0ull - r->npages)
				return bad(c, "page run", i);
			stored += r->npages;
		}
	}
	if (img_find(c->im, LX_SEC_PAGESUMS, c->task, (const void **)&c->sums, &slen, &rs))
		slen = 0;
	c->nsums = slen / 8;
	if (c->nsums != stored)
		return err_set(-EINVAL, "image %s: task %u: %llu page checksums for %llu stored "
			       "pages", c->im->path, c->task, (unsigned long long)c->nsums,
			       (unsigned long long)stored);
	return 0;
}

static int load_threads(struct core_ctx *c)
{
	const uint8_t *xs;
	uint64_t xlen;
	uint32_t rs;
	int e;

	e = img_records(c->im, LX_SEC_THREADS, c->task, sizeof(*c->threads), 64,
			(void **)&c->threads, &c->nthreads);
	if (!e)
		e = img_records(c->im, LX_SEC_GPREGS, c->task, sizeof(*c->gp), sizeof(*c->gp),
				(void **)&c->gp, &c->ngp);
	if (e == -ENOENT || (!e && !c->nthreads))
		return err_set(-EINVAL, "image %s: task %u has no threads or registers",
			       c->im->path, c->task);
	if (e)
		return e;
	/* variable-size records: le32 tid, le32 len, then len xsave bytes */
	if (img_find(c->im, LX_SEC_XSTATE, c->task, (const void **)&xs, &xlen, &rs))
		return 0;	/* gdb does without: no vector registers */
	if (rs < 8 || rs - 8 > MAX_XSTATE)
		return err_set(-EINVAL, "image %s: task %u: xstate record size %u", c->im->path,
			       c->task, rs);
	c->nxs = xlen / rs;
	c->xs = calloc(c->nxs + 1, sizeof(*c->xs));
	if (!c->xs)
		return -ENOMEM;
	for (size_t i = 0; i < c->nxs; i++) {
		uint32_t v[2];

		memcpy(v, xs + i * rs, 8);
		c->xs[i].tid = lx_le32_to_cpu(v[0]);
		c->xs[i].len = lx_le32_to_cpu(v[1]);
		c->xs[i].data = xs + i * rs + 8;
		if (c->xs[i].len > rs - 8)
			return bad(c, "xstate record", i);
	}
	return 0;
}

static int load(struct core_ctx *c)
{
	struct lx_core *core;
	size_t n;
	int e = img_records(c->im, LX_SEC_CORE, c->task, sizeof(*core), 64, (void **)&core, &n);

	if (e && e != -ENOENT)
		return e;
	if (!e && n)
		c->core = core[0];
	if (!e)
		free(core);
	c->core.comm[sizeof(c->core.comm) - 1] = 0;
	e = load_mem(c);
	if (!e)
		e = load_threads(c);
	return e;
}

/* ------------------------------------------------------------------ */
/* notes                                                               */

static int note(struct core_ctx *c, const char *name, uint32_t type, const void *desc,
		size_t len)
{
	size_t namesz = strlen(name) + 1;
	size_t need = sizeof(Elf64_Nhdr) + ((namesz + 3) & ~3ul) + ((len + 3) & ~3ul);
	Elf64_Nhdr h = { .n_namesz = (Elf64_Word)namesz, .n_descsz = (Elf64_Word)len,
			 .n_type = type };
	uint8_t *p;

	if (c->nlen + need > c->ncap) {
		size_t cap = c->ncap ? c->ncap : 16384;

		while (cap < c->nlen + need)
			cap *= 2;
		p = realloc(c->notes, cap);
		if (!p)
			return err_set(-ENOMEM, "out of memory for core notes");
		c->notes = p;
		c->ncap = cap;
	}
	p = c->notes + c->nlen;
	memset(p, 0, need);	/* the padding */
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), name, namesz);
	memcpy(p + sizeof(h) + ((namesz + 3) & ~3ul), desc, len);
	c->nlen += need;
	return 0;
}

static const struct xs_rec *xstate_of(const struct core_ctx *c, uint32_t tid)
{
	for (size_t i = 0; i < c->nxs; i++)
		if (c->xs[i].tid == tid)
			return &c->xs[i];
	return NULL;
}

static const struct lx_gpregs *regs_of(const struct core_ctx *c, uint32_t tid)
{
	for (size_t i = 0; i < c->ngp; i++)
		if (c->gp[i].tid == tid)
			return &c->gp[i];
	return NULL;
}

static int note_prpsinfo(struct core_ctx *c)
{
	struct elf_prpsinfo ps;
	const void *argv;
	uint64_t alen;
	uint32_t rs;

	memset(&ps, 0, sizeof(ps));
	ps.pr_state = 1;	/* 'S': a checkpoint is taken of a stopped task */
	ps.pr_sname = 'S';
	ps.pr_uid = c->core.uid[0];
	ps.pr_gid = c->core.gid[0];
	ps.pr_pid = (int)c->t->pid;
	ps.pr_ppid = (int)c->t->ppid;
	ps.pr_pgrp = (int)c->t->pgid;
	ps.pr_sid = (int)c->t->sid;
	memcpy(ps.pr_fname, c->core.comm, sizeof(ps.pr_fname) - 1);
	if (!img_find(c->im, LX_SEC_ARGV, c->task, &argv, &alen, &rs)) {
		size_t n = alen < sizeof(ps.pr_psargs) - 1 ? alen : sizeof(ps.pr_psargs) - 1;

		memcpy(ps.pr_psargs, argv, n);
		for (size_t i = 0; i < n; i++)	/* NUL-separated -> one line */
			if (!ps.pr_psargs[i])
				ps.pr_psargs[i] = ' ';
		while (n && ps.pr_psargs[n - 1] == ' ')
			ps.pr_psargs[--n] = 0;
	}
	return note(c, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
}

/* NT_FILE: count, page size, then (start, end, offset in pages) per file
 * mapping, then their names: how gdb finds shared libraries by path. */
static int note_file(struct core_ctx *c)
{
	size_t n = 0, len = 16, at;
	uint8_t *d;
	int e;

	for (size_t i = 0; i < c->nvmas; i++) {
		const struct lx_vma *r = &c->vmas[i];
		const char *p;

		if (r->kind != LX_VMA_FILE_PRIVATE && r->kind != LX_VMA_FILE_SHARED)
			continue;
		p = img_string(c->im, c->task, r->path_off);
		if (!p)
			return err_ctx(-EINVAL, "vma %zu", i);
		len += 24 + strlen(p) + 1;
		n++;
	}
	d = calloc(1, len);
	if (!d)
		return err_set(-ENOMEM, "out of memory for the NT_FILE note");
	((uint64_t *)d)[0] = n;
	((uint64_t *)d)[1] = PAGE;
	at = 16;
	for (size_t i = 0; i < c->nvmas; i++) {
		const struct lx_vma *r = &c->vmas[i];
		uint64_t ent[3] = { r->start, r->end, r->pgoff / PAGE };

		if (r->kind != LX_VMA_FILE_PRIVATE && r->kind != LX_VMA_FILE_SHARED)
			continue;
		memcpy(d + at, ent, sizeof(ent));
		at += sizeof(ent);
	}
	for (size_t i = 0; i < c->nvmas; i++) {
		const struct lx_vma *r = &c->vmas[i];
		const char *p;

		if (r->kind != LX_VMA_FILE_PRIVATE && r->kind != LX_VMA_FILE_SHARED)
			continue;
		p = img_string(c->im, c->task, r->path_off);
		memcpy(d + at, p, strlen(p) + 1);
		at += strlen(p) + 1;
	}
	e = note(c, "CORE", NT_FILE, d, len);
	free(d);
	return e;
}

static int build_notes(struct core_ctx *c)
{
	int e = 0;

	for (size_t i = 0; i < c->nthreads && !e; i++) {
		const struct lx_thread *th = &c->threads[i];
		const struct lx_gpregs *gp = regs_of(c, th->tid);
		const struct xs_rec *xs = xstate_of(c, th->tid);
		struct elf_prstatus st;

		if (!gp)
			return err_set(-EINVAL, "image %s: task %u: thread %u has no registers",
				       c->im->path, c->task, th->tid);
		memset(&st, 0, sizeof(st));
		/* pr_cursig stays 0: no signal ended the process, and gdb
		 * then prints no "terminated with signal" line */
		st.pr_sigpend = th->sig_pending | c->core.sig_pending;
		st.pr_sighold = th->sigmask;
		st.pr_pid = (pid_t)th->tid;
		st.pr_ppid = (pid_t)c->t->ppid;
		st.pr_pgrp = (pid_t)c->t->pgid;
		st.pr_sid = (pid_t)c->t->sid;
		memcpy(st.pr_reg, gp->regs, sizeof(st.pr_reg));
		st.pr_fpvalid = xs && xs->len >= 512;
		e = note(c, "CORE", NT_PRSTATUS, &st, sizeof(st));
		if (!e && i == 0) {
			const void *auxv;
			uint64_t alen;
			uint32_t rs;

			e = note_prpsinfo(c);
			if (!e && !img_find(c->im, LX_SEC_AUXV, c->task, &auxv, &alen, &rs) &&
			    alen % 16 == 0 && alen <= MAX_AUXV)
				e = note(c, "CORE", NT_AUXV, auxv, alen);
			if (!e)
				e = note_file(c);
		}
		/* the legacy FP note is the xsave area's first 512 bytes: the
		 * fxsave layout */
		if (!e && xs && xs->len >= 512)
			e = note(c, "CORE", NT_PRFPREG, xs->data, 512);
		if (!e && xs && xs->len > 512)
			e = note(c, "LINUX", NT_X86_XSTATE, xs->data, xs->len);
	}
	return e;
}

/* ------------------------------------------------------------------ */
/* memory                                                              */

/* This kernel's vdso, if it is byte for byte the image's (the dump
 * recorded its checksum), so gdb can unwind through signal frames. */
static const uint8_t *own_vdso(uint64_t size, uint64_t sum)
{
	const uint8_t *base = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);
	FILE *f;
	char line[512];
	uint64_t s, e, have = 0;

	if (!base || !sum)
		return NULL;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2 &&
		    s == (uint64_t)(uintptr_t)base)
			have = e - s;
	fclose(f);
	if (have != size || XXH3_64bits(base, size) != sum)
		return NULL;
	return base;
}

static int file_changed(const struct stat *st, const struct lx_vma *r)
{
	uint64_t mt = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + st->st_mtim.tv_nsec;

	return st->st_dev != r->dev || st->st_ino != r->ino ||
	       (uint64_t)st->st_size != r->size || mt != r->mtime_ns;
}

static int vma_has_runs(const struct core_ctx *c, size_t vi, size_t *first)
{
	const struct lx_vma *r = &c->vmas[vi];
	size_t lo = 0, hi = c->nruns;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->runs[mid].vaddr < r->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	return lo < c->nruns && c->runs[lo].vaddr < r->end;
}

/* What each VMA's segment holds, decided before the layout. */
static int plan_sources(struct core_ctx *c)
{
	c->src = calloc(c->nvmas + 1, sizeof(*c->src));
	if (!c->src)
		return -ENOMEM;
	for (size_t i = 0; i < c->nvmas; i++) {
		const struct lx_vma *r = &c->vmas[i];
		struct vma_src *s = &c->src[i];
		uint64_t size = r->end - r->start;
		size_t first;

		s->fd = -1;
		s->filesz = size;
		if (r->kind == LX_VMA_VDSO) {
			s->mem = own_vdso(size, r->content_sum);
			if (!s->mem)
				s->filesz = 0;
			continue;
		}
		/* like the kernel's dumps: no content for what the process
		 * asked not to dump, for inaccessible guards, or for the
		 * kernel's data pages */
		if (r->kind > LX_VMA_SHARED_ANON || !r->prot || (r->flags & LX_VMAF_DONTDUMP)) {
			s->filesz = 0;
			continue;
		}
		if (r->kind == LX_VMA_FILE_PRIVATE || r->kind == LX_VMA_FILE_SHARED) {
			const char *p = img_string(c->im, c->task, r->path_off);
			struct stat st;

			if (!p)
				return err_ctx(-EINVAL, "vma %zu", i);
			/* VMAs of one file are usually adjacent: share the fd */
			for (size_t k = i; k-- > 0 && k + 8 > i;)
				if (c->src[k].own && c->vmas[k].ino == r->ino &&
				    c->vmas[k].dev == r->dev) {
					s->fd = c->src[k].fd;
					break;
				}
			if (s->fd < 0) {
				s->fd = open(p, O_RDONLY | O_CLOEXEC);
				if (s->fd >= 0)
					s->own = 1;
			}
			if (s->fd < 0) {
				warn("mapped file %s: %s: its unmodified pages are not in the core",
				     p, strerror(errno));
				if (!vma_has_runs(c, i, &first))
					s->filesz = 0;	/* gdb falls back to the binary */
			} else if (s->own && !fstat(s->fd, &st) && file_changed(&st, r)) {
				warn("mapped file %s changed since the checkpoint: its unmodified "
				     "pages in the core are its current contents", p);
			}
		}
	}
	return 0;
}

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i++)
		if (q[i])
			return 0;
	return 1;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Write npages at buf to the core, skipping zero pages (holes). */
static int write_sparse(struct core_ctx *c, const uint8_t *buf, uint64_t npages, uint64_t off)
{
	uint64_t i = 0;

	while (i < npages) {
		uint64_t j;
		int e;

		while (i < npages && page_is_zero(buf + i * PAGE))
			i++;
		for (j = i; j < npages && !page_is_zero(buf + j * PAGE); j++)
			;
		if (j > i) {
			e = pwrite_all(c->fd, buf + i * PAGE, (j - i) * PAGE, off + i * PAGE);
			if (e)
				return err_sys(e, "core %s: write", c->out);
		}
		i = j;
	}
	return 0;
}

/* The backing of [addr, addr + n pages) before any stored page: the file
 * for file mappings (zeros past its end), zeros otherwise. */
static int fill_backing(struct core_ctx *c, size_t vi, uint64_t addr, uint64_t n, uint8_t *buf)
{
	const struct lx_vma *r = &c->vmas[vi];
	const struct vma_src *s = &c->src[vi];
	size_t len = n * PAGE, got = 0;

	memset(buf, 0, len);
	if (s->mem) {
		memcpy(buf, s->mem + (addr - r->start), len);
		return 0;
	}
	if (s->fd < 0)
		return 0;
	while (got < len) {
		ssize_t k = pread(s->fd, buf + got, len - got,
				  (off_t)(r->pgoff + (addr - r->start) + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return err_sys(-errno, "mapped file %s: read",
				       img_string(c->im, c->task, r->path_off));
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return 0;
}

/* Overlay the page runs that fall in [addr, addr + n pages). */
static int fill_runs(struct core_ctx *c, size_t *ri, uint64_t addr, uint64_t n, uint8_t *buf)
{
	uint64_t end = addr + n * PAGE;

	for (; *ri < c->nruns && c->runs[*ri].vaddr < end; ) {
		const struct lx_page_run *r = &c->runs[*ri];
		uint64_t rend = r->vaddr + r->npages * PAGE;
		uint64_t a = r->vaddr > addr ? r->vaddr : addr;
		uint64_t b = rend < end ? rend : end;
		uint64_t k0 = (a - r->vaddr) / PAGE, cnt = (b - a) / PAGE;
		uint8_t *dst = buf + (a - addr);

		if (r->slot == LX_SLOT_ZERO) {
			memset(dst, 0, cnt * PAGE);
		} else {
			int e = swap_read(c->sw, r->slot + k0, cnt, dst);

			if (e)
				return e;
			for (uint64_t k = 0; k < cnt; k++) {
				uint64_t si = c->sum_base[*ri] + k0 + k, want;

				memcpy(&want, c->sums + si * 8, 8);
				if (page_sum(dst + k * PAGE) != lx_le64_to_cpu(want))
					return err_set(-EIO, "swapfile: page at %#llx (slot %llu) "
						       "of pid %u fails its checksum",
						       (unsigned long long)(a + k * PAGE),
						       (unsigned long long)(r->slot + k0 + k),
						       c->t->pid);
			}
		}
		if (rend > end)
			break;	/* the rest of this run is in the next chunk */
		(*ri)++;
	}
	return 0;
}

static int write_memory(struct core_ctx *c, const uint64_t *seg_off)
{
	uint8_t *buf = malloc(CHUNK_PAGES * PAGE);
	uint64_t total = 0;
	size_t ri = 0;
	int e = 0;

	if (!buf)
		return err_set(-ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nvmas; i++)
		total += c->src[i].filesz;
	progress_start(total, "core");
	for (size_t i = 0; i < c->nvmas && !e; i++) {
		const struct lx_vma *r = &c->vmas[i];
		uint64_t pages = c->src[i].filesz / PAGE;

		/* runs of VMAs without content are skipped over */
		while (ri < c->nruns && c->runs[ri].vaddr < r->start)
			ri++;
		for (uint64_t p = 0; p < pages && !e; p += CHUNK_PAGES) {
			uint64_t n = pages - p < CHUNK_PAGES ? pages - p : CHUNK_PAGES;
			uint64_t addr = r->start + p * PAGE;

			e = fill_backing(c, i, addr, n, buf);
			if (!e)
				e = fill_runs(c, &ri, addr, n, buf);
			if (!e)
				e = write_sparse(c, buf, n, seg_off[i] + p * PAGE);
			progress_add(n * PAGE);
		}
	}
	progress_end();
	free(buf);
	return e;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

static uint32_t pflags(uint32_t prot)
{
	return (prot & PROT_READ ? PF_R : 0) | (prot & PROT_WRITE ? PF_W : 0) |
	       (prot & PROT_EXEC ? PF_X : 0);
}

/* libelf writes the ELF header and program headers; the notes and the
 * memory, which can be gigabytes, go in with pwrite afterwards so they
 * need not sit in memory and zero pages stay holes. With ELF_F_LAYOUT
 * libelf keeps our offsets. */
static int write_headers(struct core_ctx *c, size_t phnum, uint64_t note_off,
			 const uint64_t *seg_off)
{
	GElf_Ehdr eh;
	GElf_Phdr ph;
	Elf *elf;
	int e = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return err_set(-EINVAL, "libelf: %s", elf_errmsg(-1));
	elf = elf_begin(c->fd, ELF_C_WRITE, NULL);
	if (!elf || !gelf_newehdr(elf, ELFCLASS64) || !gelf_getehdr(elf, &eh))
		goto fail;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_shoff = 0;
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (Elf64_Half)phnum;
	if (!gelf_update_ehdr(elf, &eh) || !gelf_newphdr(elf, phnum))
		goto fail;
	memset(&ph, 0, sizeof(ph));
	ph.p_type = PT_NOTE;
	ph.p_offset = note_off;
	ph.p_filesz = c->nlen;
	ph.p_align = 4;
	if (!gelf_update_phdr(elf, 0, &ph))
		goto fail;
	for (size_t i = 0; i < c->nvmas; i++) {
		memset(&ph, 0, sizeof(ph));
		ph.p_type = PT_LOAD;
		ph.p_flags = pflags(c->vmas[i].prot);
		ph.p_offset = seg_off[i];
		ph.p_vaddr = c->vmas[i].start;
		ph.p_filesz = c->src[i].filesz;
		ph.p_memsz = c->vmas[i].end - c->vmas[i].start;
		ph.p_align = PAGE;
		if (!gelf_update_phdr(elf, (int)(i + 1), &ph))
			goto fail;
	}
	elf_flagelf(elf, ELF_C_SET, ELF_F_LAYOUT);
	if (elf_update(elf, ELF_C_WRITE) < 0)
		goto fail;
	elf_end(elf);
	return 0;
fail:
	e = err_set(-EIO, "core %s: libelf: %s", c->out, elf_errmsg(-1));
	if (elf)
		elf_end(elf);
	return e;
}

static int write_core(struct core_ctx *c)
{
	size_t phnum = c->nvmas + 1;
	uint64_t note_off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr), off;
	uint64_t *seg_off = calloc(c->nvmas + 1, sizeof(*seg_off));
	int e;

	if (!seg_off)
		return -ENOMEM;
	off = (note_off + c->nlen + PAGE - 1) & ~(PAGE - 1);
	for (size_t i = 0; i < c->nvmas; i++) {
		seg_off[i] = off;
		off += c->src[i].filesz;
	}
	e = write_headers(c, phnum, note_off, seg_off);
	if (!e && pwrite_all(c->fd, c->notes, c->nlen, note_off))
		e = err_sys(-errno, "core %s: write notes", c->out);
	if (!e)
		e = write_memory(c, seg_off);
	/* the trailing pages may all be holes */
	if (!e && ftruncate(c->fd, (off_t)off))
		e = err_sys(-errno, "core %s: set size", c->out);
	free(seg_off);
	return e;
}

static int pick_task(struct core_ctx *c, long pid, struct lx_task **tasks)
{
	size_t n;
	int e = img_records(c->im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(**tasks), 32,
			    (void **)tasks, &n);

	if (e == -ENOENT || (!e && !n))
		return err_set(-EINVAL, "image %s: no tasks", c->im->path);
	if (e)
		return e;
	for (size_t i = 0; i < n; i++) {
		if (pid ? (*tasks)[i].pid == (uint32_t)pid : !!((*tasks)[i].flags & LX_TASK_ROOT)) {
			c->task = (uint32_t)i;
			c->t = &(*tasks)[i];
			if (c->t->flags & LX_TASK_ZOMBIE)
				return err_set(-EINVAL, "image %s: pid %u had exited (a zombie): "
					       "it has no memory or registers to write",
					       c->im->path, c->t->pid);
			return 0;
		}
	}
	if (pid)
		return err_set(-ESRCH, "image %s: no process %ld in it", c->im->path, pid);
	c->task = 0;		/* no root flag: the first task is the root */
	c->t = &(*tasks)[0];
	return 0;
}

static void core_usage(FILE *f)
{
	fputs("usage: cryo core IMAGE -o CORE [--pid PID] [--swapfile PATH]\n"
	      "\n"
	      "Write an ELF core file of the process in IMAGE as it was at the\n"
	      "checkpoint, for `gdb BINARY CORE`: threads with their registers, memory\n"
	      "(from the swapfile, checked against the page checksums), and the mapped\n"
	      "files, so gdb finds the shared libraries.\n"
	      "\n"
	      "  -o, --output CORE     the core file to write (replaced if it exists)\n"
	      "  -p, --pid PID         the process of a tree to write (default: the root)\n"
	      "  -s, --swapfile PATH   the page store (default: the one IMAGE names)\n"
	      "\n"
	      "Exit status: 0 written; 1 failed (nothing is left at CORE); 2 usage error.\n", f);
}

static void free_ctx(struct core_ctx *c)
{
	if (c->src)
		for (size_t i = 0; i < c->nvmas; i++)
			if (c->src[i].own)
				close(c->src[i].fd);
	free(c->src);
	free(c->vmas);
	free(c->runs);
	free(c->sum_base);
	free(c->threads);
	free(c->gp);
	free(c->xs);
	free(c->notes);
	if (c->sw)
		swap_close(c->sw);
}

int cmd_core(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "pid", required_argument, NULL, 'p' },
		{ "swapfile", required_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct core_ctx c = { .fd = -1 };
	struct lx_task *tasks = NULL;
	const char *swap_override = NULL;
	struct img im;
	char *tmp = NULL;
	long pid = 0;
	int opt, e;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:p:s:qh", lo, NULL)) != -1) {
		switch (opt) {
		case 'o': c.out = optarg; break;
		case 'p': {
			char *end;

			pid = strtol(optarg, &end, 10);
			if (*end || pid <= 0 || pid > (1 << 22)) {
				fprintf(stderr, "cryo: core --pid PID: '%s' is not a pid\n", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 's': swap_override = optarg; break;
		case 'q': log_level = 0; break;
		case 'h': core_usage(stdout); return EXIT_OK;
		default: core_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !c.out) {
		core_usage(stderr);
		return EXIT_USAGE;
	}
	if (img_open(&im, argv[optind])) {
		report_error("%s", err_msg());
		return EXIT_FAIL;
	}
	c.im = &im;
	e = pick_task(&c, pid, &tasks);
	if (!e)
		e = load(&c);
	if (!e && c.nsums)
		e = image_swap_open(&im, swap_override, &c.sw, NULL);
	if (!e)
		e = plan_sources(&c);
	if (!e)
		e = build_notes(&c);
	/* written beside the target and renamed, so a failure never leaves
	 * a truncated core that gdb would half-read */
	if (!e && asprintf(&tmp, "%s.tmpXXXXXX", c.out) < 0)
		e = err_set(-ENOMEM, "out of memory");
	if (!e) {
		c.fd = mkostemp(tmp, O_CLOEXEC);
		if (c.fd < 0)
			e = err_sys(-errno, "core %s: create", c.out);
	}
	if (!e)
		e = write_core(&c);
	if (!e && fsync(c.fd))
		e = err_sys(-errno, "core %s: fsync", c.out);
	/* a core holds the process's memory: as private as the swapfile */
	if (!e && fchmod(c.fd, 0600))
		e = err_sys(-errno, "core %s: chmod", c.out);
	if (!e && rename(tmp, c.out))
		e = err_sys(-errno, "core %s: rename", c.out);
	if (c.fd >= 0) {
		close(c.fd);
		if (e)
			unlink(tmp);
	}
	if (e)
		report_error("%s", err_msg());
	else
		info("core %s: pid %u, %zu threads, %zu mappings", c.out, c.t->pid, c.nthreads,
		     c.nvmas);
	free(tmp);
	free(tasks);
	free_ctx(&c);
	img_close(&im);
	return e ? EXIT_FAIL : EXIT_OK;
}
