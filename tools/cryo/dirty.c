/* Pre-dumps: copy memory while the tree runs, then freeze it and copy only
 * the pages written since.
 *
 * Tracking without soft-dirty (absent here): a userfaultfd of the target's
 * own mm, in write-protect mode with UFFD_FEATURE_WP_ASYNC, makes the
 * kernel resolve write faults on protected pages by itself and just clear
 * the page's uffd-wp bit; PAGEMAP_SCAN on /proc/PID/pagemap then reports
 * the pages whose bit is clear (PAGE_IS_WRITTEN) and, with
 * PM_SCAN_WP_MATCHING, protects them again in the same walk. The uffd is
 * made inside the target by an injected userfaultfd(), taken into cryo with
 * pidfd_getfd and closed in the target at once: cryo holds the only
 * reference, so closing it (or cryo dying) unregisters every range and
 * clears every uffd-wp bit, leaving the target as it was.
 *
 * The tracking dies with cryo, so it helps only within one invocation
 * (cryo --pre-dump); successive separate dumps rely on the swapfile's
 * content dedup instead.
 *
 * A pre-copied page is reused at the freeze only when it is inside a range
 * that is still registered by our uffd at the freeze (freeze_task) and was
 * not written since the scan that protected it before its copy. Everything
 * else is copied frozen as in a plain dump: the image always describes the
 * frozen state. Soft-dirty bits (clear_refs) are not used: absent on the
 * kernels this was built on, and clearing them races with writes unless
 * the tree is stopped for every round. */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "dirty.h"
#include "err.h"
#include "injsafe.h"

#define PAGE 4096ull
#define CHUNK_PAGES 2048	/* 8 MiB per read */
#define MAX_ROUNDS 64
#define SLOT_UNKNOWN (LX_SLOT_ZERO - 1)	/* copied once, no longer known: copy again */

/* Kernel 6.7+ uapi, absent from older headers */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

struct range {
	uint64_t start, end;
};

struct rlist {
	struct range *r;
	size_t n, cap;
};

struct dirty_task {
	pid_t pid;
	unsigned long long starttime;
	int uffd;			/* -1: not tracked (any more) */
	struct rlist regs;		/* registered by us, as far as we know */
	/* pre-copied pages: open addressing on page number + 1 (0 = empty) */
	uint64_t *key, *slot, *sum;
	size_t cap, used;
	struct ent { uint64_t vaddr, slot, sum; } *sorted;	/* the table, by address */
	size_t nsorted, cursor;
	struct rlist clean;		/* at the freeze: ours and not written */
	uint64_t reused;
	struct sleeper {		/* threads arming interrupted in a restart-block call */
		pid_t tid;
		struct user_regs_struct r;
	} *sleepers;
	size_t nsleepers;
};

struct dirty_state {
	struct dirty_task *t;
	size_t n;
	struct swapfile *sw;
	uint8_t *buf;
	const uint8_t **ptrs;
	uint64_t *sums, *slots;
	int32_t *idx;
	struct page_region *vec;
	size_t vec_len;
	int rounds;
	uint64_t round_pages[MAX_ROUNDS];
	uint64_t written_running;	/* swapfile pages written while running */
	double running_ms;
};


#define FD_BITS 65536

/* proc_each_fd callback: marks the fds in use below FD_BITS */
static int mark_fd(int fd, const char *path, const struct stat *st, void *arg)
{
	uint64_t *used = arg;

	(void)path;
	(void)st;
	if (fd >= 0 && fd < FD_BITS)
		used[fd / 64] |= 1ull << (fd % 64);
	return 0;
}

/* The fd number the task's next new file gets: its lowest free one */
static int lowest_free_fd(pid_t pid, int *lowest)
{
	uint64_t *used = calloc(FD_BITS / 64, sizeof(*used));
	int e;

	if (!used)
		return -ENOMEM;
	e = proc_each_fd(pid, mark_fd, used);
	*lowest = -1;
	for (int i = 0; !e && i < FD_BITS / 64 && *lowest < 0; i++)
		if (~used[i])
			*lowest = i * 64 + __builtin_ctzll(~used[i]);
	free(used);
	return e ? e : *lowest < 0 ? -EMFILE : 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int rl_add(struct rlist *l, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (l->n && l->r[l->n - 1].end == start) {
		l->r[l->n - 1].end = end;
		return 0;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct range *nr = realloc(l->r, nc * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		l->r = nr;
		l->cap = nc;
	}
	l->r[l->n++] = (struct range){ start, end };
	return 0;
}

/* ---- the table of pre-copied pages ---- */

static size_t tab_pos(const struct dirty_task *d, uint64_t k)
{
	return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & (d->cap - 1);
}

static int tab_put(struct dirty_task *d, uint64_t vaddr, uint64_t slot, uint64_t sum)
{
	uint64_t k = vaddr / PAGE + 1;
	size_t i;

	if (2 * (d->used + 1) > d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 1 << 14;
		uint64_t *nk = calloc(nc, 8), *ns = malloc(nc * 8), *nu = malloc(nc * 8);
		struct dirty_task old = *d;

		if (!nk || !ns || !nu) {
			free(nk);
			free(ns);
			free(nu);
			return -ENOMEM;
		}
		d->key = nk;
		d->slot = ns;
		d->sum = nu;
		d->cap = nc;
		for (size_t j = 0; j < old.cap; j++) {
			if (!old.key[j])
				continue;
			for (i = tab_pos(d, old.key[j]); d->key[i]; i = (i + 1) & (d->cap - 1))
				;
			d->key[i] = old.key[j];
			d->slot[i] = old.slot[j];
			d->sum[i] = old.sum[j];
		}
		free(old.key);
		free(old.slot);
		free(old.sum);
	}
	for (i = tab_pos(d, k); d->key[i] && d->key[i] != k; i = (i + 1) & (d->cap - 1))
		;
	if (!d->key[i]) {
		d->key[i] = k;
		d->used++;
	}
	d->slot[i] = slot;
	d->sum[i] = sum;
	return 0;
}

static int tab_get(const struct dirty_task *d, uint64_t vaddr, uint64_t *slot, uint64_t *sum)
{
	uint64_t k = vaddr / PAGE + 1;

	if (!d->cap)
		return 0;
	for (size_t i = tab_pos(d, k); d->key[i]; i = (i + 1) & (d->cap - 1))
		if (d->key[i] == k) {
			if (d->slot[i] == SLOT_UNKNOWN)
				return 0;
			*slot = d->slot[i];
			*sum = d->sum[i];
			return 1;
		}
	return 0;
}

/* Pages whose copy may be stale now: copy them again at the freeze */
static int tab_forget(struct dirty_task *d, uint64_t start, uint64_t end)
{
	uint64_t slot, sum;

	for (uint64_t a = start; a < end; a += PAGE)
		if (tab_get(d, a, &slot, &sum)) {
			int e = tab_put(d, a, SLOT_UNKNOWN, 0);

			if (e)
				return e;
		}
	return 0;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* After the last round, while the tree still runs: the table in address
 * order, for a sequential walk at the freeze */
static int tab_sort(struct dirty_task *d)
{
	size_t n = 0;

	free(d->sorted);
	d->sorted = malloc((d->used ? d->used : 1) * sizeof(*d->sorted));
	if (!d->sorted)
		return -ENOMEM;
	for (size_t i = 0; i < d->cap; i++)
		if (d->key[i] && d->slot[i] != SLOT_UNKNOWN)
			d->sorted[n++] = (struct ent){ (d->key[i] - 1) * PAGE, d->slot[i], d->sum[i] };
	qsort(d->sorted, n, sizeof(*d->sorted), cmp_ent);
	d->nsorted = n;
	d->cursor = 0;
	return 0;
}

static const struct ent *sorted_get(struct dirty_task *d, uint64_t vaddr)
{
	size_t lo = d->cursor, hi = d->nsorted;

	/* mm.c asks in ascending order: usually the next entry */
	if (lo < hi && d->sorted[lo].vaddr == vaddr) {
		d->cursor = lo + 1;
		return &d->sorted[lo];
	}
	if (lo >= hi || d->sorted[lo].vaddr > vaddr)
		lo = 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->sorted[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < d->nsorted && d->sorted[lo].vaddr == vaddr) {
		d->cursor = lo + 1;
		return &d->sorted[lo];
	}
	d->cursor = lo;
	return NULL;
}

/* ---- the kernel interfaces ---- */

/* Regions of [start, end) of the scan, appended to out. flags: PM_SCAN_*.
 * A failure with PM_SCAN_WP_MATCHING may have protected pages it does not
 * report: the caller forgets the whole range then. */
static int scan(struct dirty_state *ds, int pm_fd, uint64_t start, uint64_t end, uint64_t flags,
		uint64_t mask, uint64_t anyof, uint64_t ret_mask, struct rlist *out,
		struct rlist *cats_present)
{
	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .flags = flags, .start = start, .end = end,
			.vec = (uint64_t)(uintptr_t)ds->vec, .vec_len = ds->vec_len,
			.category_mask = mask, .category_anyof_mask = anyof,
			.return_mask = ret_mask,
		};
		long n = ioctl(pm_fd, PAGEMAP_SCAN, &a);

		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			const struct page_region *r = &ds->vec[i];
			/* with PRESENT/SWAPPED asked for: only pages holding data of
			 * their own (not a private file mapping's file page) */
			int data = !cats_present || ((r->categories & (PAGE_IS_PRESENT |
					PAGE_IS_SWAPPED)) && !(r->categories & PAGE_IS_FILE));
			int e = rl_add(data ? out : cats_present, r->start, r->end);

			if (e)
				return e;
		}
		if (a.walk_end <= start || a.walk_end >= end)
			break;
		start = a.walk_end;
	}
	return 0;
}

static int open_pagemap(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "pid %d: open %s", pid, path);
	return fd;
}

/* What cryo can do here: the features for the target's uffd */
static int probe(uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct pm_scan_arg a = { .size = sizeof(a) };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int pm;

	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return err_sys(-errno, "--pre-dump: userfaultfd (needs CAP_SYS_PTRACE or"
			       " vm.unprivileged_userfaultfd=1; or dump without --pre-dump)");
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = -errno;

		close(fd);
		return err_sys(e, "--pre-dump: UFFDIO_API");
	}
	close(fd);
	if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		return err_set(-EOPNOTSUPP, "--pre-dump: this kernel has no userfaultfd WP_ASYNC"
			       " (Linux 6.7 or later): no dirty page tracking; dump without"
			       " --pre-dump (successive dumps still dedup by content)");
	*features = UFFD_FEATURE_WP_ASYNC | (api.features & (UFFD_FEATURE_WP_UNPOPULATED |
			UFFD_FEATURE_WP_HUGETLBFS_SHMEM));
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return err_sys(-errno, "--pre-dump: open /proc/self/pagemap");
	if (ioctl(pm, PAGEMAP_SCAN, &a) < 0) {
		int e = -errno;

		close(pm);
		return err_set(e, "--pre-dump: this kernel has no PAGEMAP_SCAN (Linux 6.7 or"
			       " later): no dirty page tracking; dump without --pre-dump");
	}
	close(pm);
	return 0;
}

/* ---- the tree, running ---- */

static int list_tree(pid_t root, pid_t **out, size_t *np)
{
	pid_t *p = malloc(16 * sizeof(*p));
	size_t n = 1, cap = 16;
	int e = 0;

	if (!p)
		return -ENOMEM;
	p[0] = root;
	for (size_t i = 0; i < n && !e; i++) {
		pid_t *tids = NULL;
		size_t nt = 0;

		if (proc_tids(p[i], &tids, &nt)) {
			err_clear();	/* exited meanwhile: the freeze decides */
			continue;
		}
		for (size_t k = 0; k < nt && !e; k++) {
			char name[64], *s, *q, *end;
			size_t len;

			snprintf(name, sizeof(name), "task/%d/children", tids[k]);
			if (proc_read(p[i], name, &s, &len)) {
				err_clear();
				continue;
			}
			for (q = s;; q = end) {
				long c = strtol(q, &end, 10);

				if (end == q)
					break;
				if (n == cap) {
					pid_t *np2 = realloc(p, (cap *= 2) * sizeof(*p));

					if (!np2) {
						e = -ENOMEM;
						break;
					}
					p = np2;
				}
				p[n++] = (pid_t)c;
			}
			free(s);
		}
		free(tids);
	}
	if (e) {
		free(p);
		return e;
	}
	*out = p;
	*np = n;
	return 0;
}

/* Memory the final dump copies from the task itself (mm.c classify): private
 * mappings that are not the kernel's, device or hugetlb memory. Shared
 * memory is not tracked: another process may write it through its own page
 * tables, which this mm's uffd-wp bits do not see. */
static int trackable(const struct proc_vma *v)
{
	if (v->shared || (v->vmflags & (VMF_IO | VMF_PF | VMF_HT | VMF_UFFD | VMF_SS)))
		return 0;
	return strcmp(v->path, "[vdso]") && strcmp(v->path, "[vvar]") &&
	       strcmp(v->path, "[vvar_vclock]") && strcmp(v->path, "[vsyscall]");
}

/* Make the uffd inside the target (so it belongs to the target's mm), take
 * it, and close the target's copy; every thread is stopped meanwhile so
 * none can touch the fd number. */
static int take_uffd(struct dirty_task *d, struct proc_vma **vmas, size_t *nvmas)
{
	struct dump_task t = { .pid = d->pid };
	long fd = -1, r = 0;
	int e, e2 = 0, pidfd, inj = 0;

	e = proc_stat(d->pid, 0, &t.stat);
	if (e)
		return e;
	if (t.stat.state == 'Z')
		return err_set(-ESRCH, "pid %d has exited", d->pid);
	d->starttime = t.stat.starttime;
	e = pt_seize(d->pid);
	if (e)
		return e;
	e = pt_interrupt_wait(d->pid);
	if (!e)
		e = threads_freeze(&t);
	if (!e)
		e = proc_maps(d->pid, vmas, nvmas);
	for (size_t i = 0; !e && i < t.ntids; i++) {
		struct user_regs_struct r;

		if (pt_get_regs(t.tids[i], &r)) {
			err_clear();
			continue;
		}
		if ((long)r.orig_rax < 0 || (long)r.orig_rax == SYS_restart_syscall ||
		    (long)r.rax != -ERESTART_RESTARTBLOCK)
			continue;
		{
			struct sleeper *ns = realloc(d->sleepers, (d->nsleepers + 1) * sizeof(*ns));

			if (!ns) {
				e = -ENOMEM;
				break;
			}
			d->sleepers = ns;
			d->sleepers[d->nsleepers++] = (struct sleeper){ t.tids[i], r };
		}
	}
	for (size_t i = 0; !e && i < *nvmas; i++)
		if ((*vmas)[i].vmflags & VMF_UFFD)
			e = err_set(-EBUSY, "pid %d uses userfaultfd itself (mapping %#lx)",
				    d->pid, (unsigned long)(*vmas)[i].start);
	if (!e)
		e = inj_init(&t.inj, d->pid);
	if (!e)
		inj_recovery_find(&t.inj, *vmas, *nvmas);
	if (!e) {
		inj = 1;
		e = inj_prepare(&t.inj);
		/* a cryo killed from here on leaves no userfaultfd behind: the
		 * way back closes the fd number the call will get (the lowest
		 * free one of the frozen process), or got */
		if (!e && t.inj.safe) {
			int lowest;

			e = lowest_free_fd(d->pid, &lowest);
			if (!e)
				e = injsafe_undo(&t.inj, SYS_close, (uint64_t)lowest, 0);
			if (!e)
				e = inj_syscall(&t.inj, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK,
						0, 0, 0, 0, 0, &fd);
			if (!e && fd >= 0 && fd != lowest)
				e = injsafe_undo(&t.inj, SYS_close, (uint64_t)fd, 0);
		} else if (!e) {
			e = inj_syscall(&t.inj, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0,
					0, 0, &fd);
		}
		if (!e && fd == -EPERM)
			e = inj_syscall(&t.inj, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK |
					UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0, &fd);
		if (!e && fd < 0)
			e = err_set((int)fd, "pid %d: userfaultfd() inside it: %s", d->pid,
				    strerror((int)-fd));
	}
	if (!e) {
		pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
		d->uffd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		if (d->uffd < 0)
			e = err_sys(-errno, "pid %d: pidfd_getfd of its userfaultfd", d->pid);
		if (pidfd >= 0)
			close(pidfd);
		/* the target's copy goes whatever happened */
		e2 = inj_syscall(&t.inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &r);
		if (!e2 && r < 0)
			e2 = err_set((int)r, "pid %d: close of the injected userfaultfd", d->pid);
		if (!e2)
			e2 = injsafe_undo_none(&t.inj);
	}
	if (inj) {
		int e3 = inj_finish(&t.inj);

		if (!e2)
			e2 = e3;
	}
	threads_unfreeze(&t);
	pt_detach(d->pid);
	free(t.tids);
	if (!e && e2) {
		/* the target may still hold the fd: stop tracking, say so */
		close(d->uffd);
		d->uffd = -1;
		e = e2;
	}
	return e;
}

static int arm_task(struct dirty_state *ds, struct dirty_task *d, uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct proc_vma *v = NULL;
	size_t nv = 0;
	int e = take_uffd(d, &v, &nv);

	(void)ds;
	if (!e && ioctl(d->uffd, UFFDIO_API, &api) < 0)
		e = err_sys(-errno, "pid %d: UFFDIO_API (WP_ASYNC)", d->pid);
	for (size_t i = 0; !e && i < nv; i++) {
		struct uffdio_register reg = {
			.range = { .start = v[i].start, .len = v[i].end - v[i].start },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};

		if (!trackable(&v[i]))
			continue;
		/* the task runs: a mapping may be gone or changed; untracked
		 * ranges are simply copied at the freeze */
		if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) == 0)
			e = rl_add(&d->regs, v[i].start, v[i].end);
	}
	proc_maps_free(v, nv);
	if (e && d->uffd >= 0) {
		close(d->uffd);
		d->uffd = -1;
	}
	return e;
}

/* ---- copying while the task runs ---- */

static int copy_range(struct dirty_state *ds, struct dirty_task *d, uint64_t start, uint64_t end)
{
	while (start < end) {
		uint64_t n = (end - start) / PAGE, done = 0;
		size_t nout = 0;
		int e;

		if (n > CHUNK_PAGES)
			n = CHUNK_PAGES;
		if ((e = dump_interrupted()))
			return e;
		if (mem_read(d->pid, start, ds->buf, n * PAGE)) {
			/* unmapped meanwhile: nothing known, copy it frozen */
			err_clear();
			e = tab_forget(d, start, start + n * PAGE);
			if (e)
				return e;
			start += n * PAGE;
			continue;
		}
		for (uint64_t i = 0; i < n; i++) {
			const uint64_t *q = (const uint64_t *)(ds->buf + i * PAGE);
			uint64_t any = 0;

			for (size_t w = 0; w < PAGE / 8; w++)
				any |= q[w];
			ds->idx[i] = any ? (int32_t)nout : -1;
			if (any) {
				ds->ptrs[nout] = ds->buf + i * PAGE;
				ds->sums[nout++] = page_sum(ds->buf + i * PAGE);
			}
		}
		if (nout) {
			uint64_t w0, w1, r;

			swap_counters(ds->sw, &w0, &r);
			e = swap_store_pages(ds->sw, ds->ptrs, ds->sums, nout, ds->slots);
			if (e)
				return e;
			swap_counters(ds->sw, &w1, &r);
			ds->written_running += w1 - w0;
		}
		for (uint64_t i = 0; i < n; i++) {
			int32_t k = ds->idx[i];

			e = k < 0 ? tab_put(d, start + i * PAGE, LX_SLOT_ZERO, 0) :
				    tab_put(d, start + i * PAGE, ds->slots[k], ds->sums[k]);
			if (e)
				return e;
			done++;
		}
		ds->round_pages[ds->rounds] += done;
		start += n * PAGE;
	}
	return 0;
}

/* Our registrations as they are now: the parts of regs still registered
 * (VmFlags "uw"); munmap, mremap or a new mapping drop a part. */
static int refresh_regs(struct dirty_task *d)
{
	struct proc_vma *v = NULL;
	size_t nv = 0;
	struct rlist nl = { 0 };
	int e = proc_maps(d->pid, &v, &nv);

	for (size_t i = 0; !e && i < nv; i++) {
		if (!(v[i].vmflags & VMF_UFFD))
			continue;
		for (size_t k = 0; !e && k < d->regs.n; k++) {
			uint64_t s = d->regs.r[k].start > v[i].start ? d->regs.r[k].start : v[i].start;
			uint64_t en = d->regs.r[k].end < v[i].end ? d->regs.r[k].end : v[i].end;

			if (s < en)
				e = rl_add(&nl, s, en);
		}
	}
	proc_maps_free(v, nv);
	if (e) {
		free(nl.r);
		return e;
	}
	free(d->regs.r);
	d->regs = nl;
	return 0;
}

/* One round for one task: protect and report what was written (the first
 * round: every page holding data), then copy it. Protection comes before
 * the copy, so a write during the copy shows in the next round. */
static int round_task(struct dirty_state *ds, struct dirty_task *d, int first)
{
	struct rlist data = { 0 }, other = { 0 };
	int pm = open_pagemap(d->pid), e = 0, stale = 0;

	if (pm < 0) {
		err_clear();	/* exited: the freeze will tell */
		close(d->uffd);
		d->uffd = -1;
		return 0;
	}
	for (size_t k = 0; k < d->regs.n && !e; k++) {
		const struct range *r = &d->regs.r[k];

		e = scan(ds, pm, r->start, r->end, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			 first ? 0 : PAGE_IS_WRITTEN, first ? PAGE_IS_PRESENT | PAGE_IS_SWAPPED : 0,
			 PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE, &data, &other);
		if (e == -EPERM) {
			/* part of it is no longer ours: what the scan protected
			 * there is unknown */
			e = tab_forget(d, r->start, r->end);
			stale = 1;
		} else if (e) {
			e = err_sys(e, "pid %d: PAGEMAP_SCAN %#lx-%#lx", d->pid,
				    (unsigned long)r->start, (unsigned long)r->end);
		}
	}
	close(pm);
	for (size_t k = 0; k < other.n && !e; k++)
		e = tab_forget(d, other.r[k].start, other.r[k].end);
	for (size_t k = 0; k < data.n && !e; k++)
		e = copy_range(ds, d, data.r[k].start, data.r[k].end);
	if (!e && stale)
		e = refresh_regs(d);
	free(data.r);
	free(other.r);
	return e;
}

static int one_round(struct dirty_state *ds, int first)
{
	for (size_t i = 0; i < ds->n; i++) {
		int e;

		if (ds->t[i].uffd < 0)
			continue;
		e = round_task(ds, &ds->t[i], first);
		if (e)
			return e;
	}
	/* the copies must be on disk before the commit: sync them now, while
	 * the tree runs, not frozen; each round's sync is the size of its
	 * delta, so the last one before the freeze is short */
	if (fdatasync(swap_fd(ds->sw)))
		return err_sys(-errno, "--pre-dump: writing the copied pages to the swapfile"
			       " (fdatasync)");
	return 0;
}

static void drop_tracking(struct dirty_state *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		if (ds->t[i].uffd >= 0) {
			close(ds->t[i].uffd);
			ds->t[i].uffd = -1;
		}
}

static void free_state(struct dirty_state *ds)
{
	if (!ds)
		return;
	drop_tracking(ds);
	for (size_t i = 0; i < ds->n; i++) {
		free(ds->t[i].regs.r);
		free(ds->t[i].clean.r);
		free(ds->t[i].key);
		free(ds->t[i].slot);
		free(ds->t[i].sum);
		free(ds->t[i].sorted);
		free(ds->t[i].sleepers);
	}
	free(ds->t);
	free(ds->buf);
	free(ds->ptrs);
	free(ds->sums);
	free(ds->slots);
	free(ds->idx);
	free(ds->vec);
	free(ds);
}

int dirty_predump(pid_t root, struct swapfile *sw, int max_rounds, struct dirty_state **out)
{
	struct dirty_state *ds = calloc(1, sizeof(*ds));
	uint64_t features = 0, prev;
	pid_t *pids = NULL;
	size_t np = 0, armed = 0;
	double t0 = now_ms();
	int e;

	if (!ds)
		return -ENOMEM;
	ds->sw = sw;
	ds->vec_len = 4096;
	ds->buf = malloc(CHUNK_PAGES * PAGE);
	ds->ptrs = malloc(CHUNK_PAGES * sizeof(*ds->ptrs));
	ds->sums = malloc(CHUNK_PAGES * 8);
	ds->slots = malloc(CHUNK_PAGES * 8);
	ds->idx = malloc(CHUNK_PAGES * sizeof(*ds->idx));
	ds->vec = malloc(ds->vec_len * sizeof(*ds->vec));
	if (max_rounds > MAX_ROUNDS)
		max_rounds = MAX_ROUNDS;
	e = (!ds->buf || !ds->ptrs || !ds->sums || !ds->slots || !ds->idx || !ds->vec) ? -ENOMEM : 0;
	if (!e)
		e = probe(&features);
	if (!e)
		e = list_tree(root, &pids, &np);
	if (!e && !(ds->t = calloc(np, sizeof(*ds->t))))
		e = -ENOMEM;
	for (size_t i = 0; i < np && !e; i++) {
		struct dirty_task *d = &ds->t[ds->n++];
		int r;

		d->pid = pids[i];
		d->uffd = -1;
		r = arm_task(ds, d, features);
		if (r == -ENOMEM) {
			e = r;
		} else if (r == -ESRCH) {
			err_clear();	/* a zombie, or gone: nothing to track */
		} else if (r) {
			/* not fatal: the freeze copies this process whole, or
			 * refuses what it cannot dump */
			warn("pid %d: no dirty page tracking: %s; its pages are copied at the"
			     " freeze", d->pid, err_msg());
			err_clear();
		} else {
			armed++;
		}
	}
	free(pids);
	/* round 0: everything, then the deltas while they shrink */
	if (!e)
		e = one_round(ds, 1);
	ds->rounds = 1;
	prev = ds->round_pages[0];
	while (!e && ds->rounds < max_rounds) {
		uint64_t cur;

		e = one_round(ds, 0);
		cur = ds->round_pages[ds->rounds++];
		if (e || cur == 0 || cur >= prev)
			break;
		prev = cur;
	}
	for (size_t i = 0; i < ds->n && !e; i++)
		if (ds->t[i].uffd >= 0)
			e = tab_sort(&ds->t[i]);
	ds->running_ms = now_ms() - t0;
	if (e) {
		free_state(ds);
		return err_ctx(e, "pre-dump");
	}
	if (!armed && np)
		warn("pre-dump: no process of the tree could be tracked: the freeze copies"
		     " everything");
	*out = ds;
	return 0;
}

/* ---- the freeze ---- */

static struct dirty_task *find(struct dirty_state *ds, const struct dump_task *t)
{
	for (size_t i = 0; i < ds->n; i++)
		if (ds->t[i].pid == t->pid && ds->t[i].starttime == t->stat.starttime &&
		    ds->t[i].uffd >= 0)
			return &ds->t[i];
	return NULL;
}

/* Which of our ranges are still ours and what was written in them since
 * the last protection. Registering a range again with our uffd is a no-op
 * where it is ours and fails (EBUSY) where another uffd holds a part, or
 * (EINVAL) where a part is unmapped; CHECK_WPASYNC then refuses a part
 * that is not write-protect tracked. Only what passes both is trusted.
 * The uffd stays open until the tree runs again: unregistering 1 GiB
 * costs tens of milliseconds. */
static int freeze_task(struct dirty_state *ds, struct dirty_task *d, struct dump_task *t)
{
	struct rlist written = { 0 }, ok = { 0 };
	int pm = open_pagemap(d->pid), e = 0;

	if (pm < 0)
		return pm;
	for (size_t k = 0; k < d->regs.n && !e; k++) {
		const struct range *r = &d->regs.r[k];
		struct uffdio_register reg = {
			.range = { .start = r->start, .len = r->end - r->start },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		size_t w0 = written.n;
		uint64_t a;

		if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) < 0)
			continue;
		e = scan(ds, pm, r->start, r->end, PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, 0,
			 PAGE_IS_WRITTEN, &written, NULL);
		if (e == -EPERM) {
			written.n = w0;
			e = 0;
			continue;
		}
		if (e) {
			e = err_sys(e, "pid %d: PAGEMAP_SCAN %#lx-%#lx", d->pid,
				    (unsigned long)r->start, (unsigned long)r->end);
			break;
		}
		e = rl_add(&ok, r->start, r->end);
		a = r->start;
		for (size_t w = w0; w < written.n && !e; w++) {
			e = rl_add(&d->clean, a, written.r[w].start > a ? written.r[w].start : a);
			if (written.r[w].end > a)
				a = written.r[w].end;
		}
		if (!e && a < r->end)
			e = rl_add(&d->clean, a, r->end);
	}
	close(pm);
	free(written.r);
	free(d->regs.r);
	d->regs = ok;		/* what classify may accept as ours */
	if (!e)
		t->dirty = d;
	return e;
}

int dirty_freeze(struct dirty_state *ds, struct dump_task *tasks, size_t n)
{
	int e = 0;

	for (size_t i = 0; i < n && !e; i++) {
		struct dirty_task *d;

		if (tasks[i].zombie || !(d = find(ds, &tasks[i])))
			continue;
		e = freeze_task(ds, d, &tasks[i]);
	}
	if (!e)
		swap_pending_reset(ds->sw);	/* the final page maps say what stays */
	return e;
}

void dirty_fix_regs(const struct dump_task *t, pid_t tid, struct user_regs_struct *r)
{
	const struct dirty_task *d = t->dirty;

	if (!d || (long)r->orig_rax != SYS_restart_syscall ||
	    (long)r->rax != -ERESTART_RESTARTBLOCK)
		return;
	for (size_t i = 0; i < d->nsleepers; i++) {
		const struct user_regs_struct *a = &d->sleepers[i].r;

		if (d->sleepers[i].tid == tid && a->rip == r->rip && a->rdi == r->rdi &&
		    a->rsi == r->rsi && a->rdx == r->rdx && a->r10 == r->r10 &&
		    a->r8 == r->r8 && a->r9 == r->r9) {
			r->orig_rax = a->orig_rax;
			return;
		}
	}
}

int dirty_data_ranges(struct dump_task *t, int pm_fd, uint64_t start, uint64_t end,
		      int file_backed, uint64_t **out, size_t *nout)
{
	static struct page_region vec[4096];
	struct dirty_state ds = { .vec = vec, .vec_len = sizeof(vec) / sizeof(vec[0]) };
	struct rlist data = { 0 }, file = { 0 };
	int e;

	/* PAGE_IS_FILE costs a page lookup per entry: only where it matters */
	e = scan(&ds, pm_fd, start, end, 0, 0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		 PAGE_IS_PRESENT | PAGE_IS_SWAPPED | (file_backed ? PAGE_IS_FILE : 0), &data,
		 &file);
	free(file.r);
	if (e) {
		free(data.r);
		return err_sys(e, "pid %d: PAGEMAP_SCAN %#lx-%#lx", t->pid, (unsigned long)start,
			       (unsigned long)end);
	}
	*out = (uint64_t *)data.r;
	*nout = data.n;
	return 0;
}

static const struct ent *sorted_find(const struct dirty_task *d, uint64_t vaddr)
{
	size_t lo = 0, hi = d->nsorted;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->sorted[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->nsorted && d->sorted[lo].vaddr == vaddr ? &d->sorted[lo] : NULL;
}

static int in_clean(const struct dirty_task *d, uint64_t vaddr, uint64_t *end)
{
	size_t lo = 0, hi = d->clean.n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->clean.r[mid].end <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == d->clean.n || d->clean.r[lo].start > vaddr)
		return 0;
	if (end)
		*end = d->clean.r[lo].end;
	return 1;
}

int dirty_is_clean(const struct dump_task *t, uint64_t vaddr)
{
	const struct dirty_task *d = t->dirty;

	return d && in_clean(d, vaddr, NULL) && sorted_find(d, vaddr);
}

int dirty_owns(const struct dump_task *t, uint64_t start, uint64_t end)
{
	const struct dirty_task *d = t->dirty;

	for (size_t k = 0; d && k < d->regs.n; k++)
		if (d->regs.r[k].start <= start && end <= d->regs.r[k].end)
			return 1;
	return 0;
}

int64_t dirty_clean_run(struct dump_task *t, uint64_t vaddr, uint64_t max, uint64_t *slot,
			uint64_t *sums)
{
	struct dirty_task *d = t->dirty;
	const struct ent *en;
	uint64_t k, end;
	int e;

	if (!d || !max || !in_clean(d, vaddr, &end) || !(en = sorted_get(d, vaddr)))
		return 0;
	*slot = en->slot;
	/* extend while the next page is clean too, in the next slot (or zero
	 * after zero): one page run in the image */
	for (k = 1; k < max && en + k < d->sorted + d->nsorted; k++) {
		const struct ent *nx = en + k;

		if (nx->vaddr != vaddr + k * PAGE || nx->vaddr >= end ||
		    (en->slot == LX_SLOT_ZERO ? nx->slot != LX_SLOT_ZERO :
						nx->slot != en->slot + k))
			break;
	}
	if (*slot != LX_SLOT_ZERO) {
		for (uint64_t i = 0; i < k; i++)
			sums[i] = en[i].sum;
		e = swap_keep_slots(t->sw, *slot, k);
		if (e)
			return e;
	}
	d->cursor = (size_t)(en - d->sorted) + k;
	d->reused += k;
	return (int64_t)k;
}

void dirty_end(struct dirty_state *ds, int ok, double freeze_ms)
{
	char rounds[256];
	size_t len = 0;
	uint64_t reused = 0, running = 0;

	if (!ds)
		return;
	drop_tracking(ds);
	for (int r = 0; r < ds->rounds && len < sizeof(rounds) - 24; r++) {
		running += ds->round_pages[r];
		len += (size_t)snprintf(rounds + len, sizeof(rounds) - len, "%s%lu", r ? " " : "",
					(unsigned long)ds->round_pages[r]);
	}
	for (size_t i = 0; i < ds->n; i++)
		reused += ds->t[i].reused;
	if (ok)
		info("pre-dump: %d rounds while running (%.0f ms) copied %lu pages (per round: %s),"
		     " %lu written to the swapfile; at the freeze %lu pages were reused unchanged;"
		     " frozen for %.1f ms", ds->rounds, ds->running_ms, (unsigned long)running,
		     rounds, (unsigned long)ds->written_running, (unsigned long)reused, freeze_ms);
	free_state(ds);
}
