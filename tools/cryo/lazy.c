/* Lazy restore: the tree runs as soon as everything but its private
 * anonymous pages is back; those pages are served by a page server over
 * userfaultfd (MISSING mode).
 *
 * Design
 * - One userfaultfd per mm, created inside the restored task by an
 *   injected userfaultfd(2) (a uffd belongs to the mm of its creator), taken
 *   into cryo with pidfd_getfd and closed in the task, which so holds no
 *   extra fd. UFFDIO_API and UFFDIO_REGISTER act on the context's mm, so
 *   cryo does them itself. Threads share their mm and its uffd.
 * - Which pages are lazy: stored (non-zero) pages of private anonymous
 *   VMAs. Others are filled eagerly as before: userfaultfd MISSING mode does
 *   not apply to private file mappings, and MADV_WIPEONFORK VMAs would
 *   make a forked child ask for image data where it must read zeros.
 * - The server is a process forked from cryo before any restored process
 *   exists (so it holds none of the tree's files), in its own session with
 *   terminal signals ignored: with -d it outlives cryo. cryo hands it each
 *   uffd over a socketpair as the task's memory is set up, so faults taken
 *   during the rest of the restore (kernel writes into restored memory)
 *   are served too. EOF before "go" means the restore failed, or cryo
 *   died (the tree, still traced with PTRACE_O_EXITKILL, dies with it):
 *   it exits. "go" comes, and is answered, before cryo detaches the tree,
 *   so a tree that runs always has a server that knows it must serve it.
 * - Serving: from the hand-over on, a fault gets up to 64 KiB of
 *   outstanding pages from the faulting one on (UFFDIO_COPY); a page with
 *   no stored data (a hole, or one the program has since discarded) gets
 *   UFFDIO_ZEROPAGE. In between, once the tree is whole ("go"), pages
 *   are prefetched 2 MiB per UFFDIO_COPY (CRYO_LAZY_PACE_MS: a pause
 *   between two, for tests) until none is left; then the uffd is closed,
 *   which unregisters the ranges.
 * - Correctness while the program runs: the non-cooperative events are on.
 *   FORK: the child's mm gets a copy of the parent's outstanding set (pages
 *   present at fork are copied by the kernel; missing ones stay missing in
 *   both, and the server fills each mm on its own). REMAP: outstanding pages
 *   move with the mapping. REMOVE (MADV_DONTNEED/FREE/REMOVE) and UNMAP
 *   (munmap, mmap over, mremap shrink): their outstanding pages are dropped,
 *   so a later fault there reads zeros, as the kernel would give. The kernel
 *   fails UFFDIO_COPY with EAGAIN while such an event is unread, so a copy
 *   can never land on a range that changed under it: the server reads the
 *   events and retries the fault.
 * - Every page is checked against its checksum before it is copied in. A bad
 *   or unreadable page kills the whole restored tree (the processes cryo
 *   made and every descendant, stopped first so none escapes by forking)
 *   with a message naming the pid and address: no process ever gets wrong
 *   data.
 * - The server must not die with its uffds: closing the last reference to
 *   one lets the kernel zero-fill the outstanding pages. It ignores
 *   terminal signals and SIGTERM, and shares its fd table with a guard
 *   process (see "the guard" below) so that SIGKILL of either closes none.
 * - Known limits: killing server and guard at once; MADV_WIPEONFORK set
 *   by the program during the load, then a fork (the child gets image data
 *   there): no uffd event reports that madvise, and the FORK event comes
 *   before the child has a pid and releases the parent when read, so
 *   nothing the server could read afterwards says what the flags were at
 *   the fork. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "lazy.h"

#define PAGE 4096ull
#define FEATURES (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
		  UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)
#define FAULT_PAGES 16		/* 64 KiB from the faulting page on */
#define PREFETCH_PAGES 512	/* 2 MiB per background UFFDIO_COPY */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

struct lz_msg {
	uint32_t type;		/* 'A' add (with the uffd), 'G' go */
	uint32_t task;
	int32_t pid;
	uint32_t pad;
};

static struct {
	int active;
	int sock;
	pid_t server;
} lz = { 0, -1, 0 };

int lazy_active(void)
{
	return lz.active;
}

static int lazy_vma_ok(const struct lx_vma *r)
{
	return r->kind == LX_VMA_ANON && !(r->flags & LX_VMAF_WIPEONFORK);
}

/* mask[i] = 1: VMA i is anonymous, registered, its stored pages lazy.
 * cryo and the server both derive it from the image, the same way. */
static uint8_t *lazy_mask(const struct lx_vma *v, size_t nv, const struct lx_page_run *runs,
			  size_t nr)
{
	uint8_t *m = calloc(nv + 1, 1);
	size_t vi = 0;

	if (!m)
		return NULL;
	for (size_t i = 0; i < nr; i++) {
		while (vi < nv && v[vi].end <= runs[i].vaddr)
			vi++;
		if (vi < nv && v[vi].start <= runs[i].vaddr && runs[i].slot != LX_SLOT_ZERO &&
		    runs[i].vaddr + (uint64_t)runs[i].npages * PAGE <= v[vi].end &&
		    lazy_vma_ok(&v[vi]))
			m[vi] = 1;
	}
	return m;
}

static int uffd_api(int fd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = FEATURES };

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	if ((api.features & FEATURES) != FEATURES)
		return -EOPNOTSUPP;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the page server                                                     */

struct seg {			/* stored pages at consecutive addresses and slots */
	uint64_t start, slot;
	const uint8_t *sums;	/* 8 bytes per page, into the image */
	uint64_t didx;		/* first page's index in mm->done */
	uint32_t npages;
};

struct mm {
	int fd;
	pid_t pid;		/* the restored process, or the one it forked from */
	int forked;
	struct seg *segs;	/* sorted by start, disjoint */
	size_t nsegs;
	uint8_t *done;		/* per page of the segs: 1 = nothing more to copy */
	size_t ndone;
	uint64_t left, total, on_fault;
	size_t cur;		/* prefetch cursor (seg) */
	uint64_t *pend;		/* faults to retry after EAGAIN */
	size_t npend, cappend;
	int blocked;		/* EAGAIN: an event is coming */
	int dead;		/* its mm is gone (ESRCH) */
	int pidx;		/* its process's entry in SH->p, or -1 */
};

static struct server {
	const struct img *im;
	struct swapfile *sw;
	unsigned long long snapshot;
	struct mm **mms;
	size_t nmm;
	pid_t *pids;		/* every process handed over, for a kill */
	size_t npids;
	uint8_t *buf;
	long pace_ms;
	struct timespec t0;
} S;

static double since_start_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - S.t0.tv_sec) * 1e3 + (t.tv_nsec - S.t0.tv_nsec) / 1e6;
}

static int pid_in(const pid_t *v, size_t n, pid_t p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == p)
			return 1;
	return 0;
}

/* Parent and start time (clock ticks since boot) of pid; -1 if gone */
static pid_t proc_ppid_start(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	int fd, n, ppid = -1;
	unsigned long long st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice threads itreal start */
	if (!p || sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d"
			 " %*d %*d %*d %*d %llu", &ppid, &st) != 2)
		return -1;
	if (start)
		*start = st;
	return ppid;
}

static pid_t proc_ppid(pid_t pid)
{
	return proc_ppid_start(pid, NULL);
}

/* The tree: the processes given and all their descendants, stopped (so
 * none forks away) until no new one appears, then killed. */
static void kill_pids(const pid_t *pids, size_t npids)
{
	size_t n = npids, cap = n + 64;
	pid_t *set = malloc(cap * sizeof(*set));

	if (!set) {
		for (size_t i = 0; i < npids; i++)
			kill(pids[i], SIGKILL);
		return;
	}
	memcpy(set, pids, n * sizeof(*set));
	for (int round = 0; round < 50; round++) {
		size_t before = n;
		DIR *d;
		struct dirent *de;

		for (size_t i = 0; i < n; i++)
			kill(set[i], SIGSTOP);
		d = opendir("/proc");
		while (d && (de = readdir(d))) {
			pid_t p = (pid_t)atoi(de->d_name);

			if (p <= 0 || pid_in(set, n, p) || !pid_in(set, n, proc_ppid(p)))
				continue;
			if (n == cap) {
				pid_t *ns = realloc(set, (cap *= 2) * sizeof(*set));

				if (!ns)
					break;
				set = ns;
			}
			set[n++] = p;
		}
		if (d)
			closedir(d);
		if (n == before)
			break;
	}
	for (size_t i = 0; i < n; i++)
		kill(set[i], SIGKILL);
	/* wait until they are gone (or zombies) before our uffds close */
	for (int tries = 0; tries < 200; tries++) {
		int alive = 0;

		for (size_t i = 0; i < n && !alive; i++) {
			char path[64], st[256], *p;
			int fd, k;

			snprintf(path, sizeof(path), "/proc/%d/stat", set[i]);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			k = (int)read(fd, st, sizeof(st) - 1);
			close(fd);
			st[k > 0 ? k : 0] = 0;
			p = strrchr(st, ')');
			alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
		}
		if (!alive)
			break;
		usleep(10000);
	}
	free(set);
}

static void kill_tree(void)
{
	kill_pids(S.pids, S.npids);
}

/* ------------------------------------------------------------------ */
/* the guard                                                           */
/* A uffd must outlive any one process that can be killed (kill -9, the OOM
 * killer): when its last holder dies, the kernel unregisters its ranges
 * and the outstanding pages read as zeros. So the server shares its fd
 * table (CLONE_FILES, not its memory) with a small guard process: every
 * uffd, those the kernel installs on a FORK event included, is in both, and
 * killing either closes none. If the server dies before it is done, faults
 * block (the uffds are open, nobody answers them) until the guard, woken
 * by the server's pidfd, has killed the tree; only then does it exit and
 * the uffds close. If the guard dies, the server starts another. What the
 * guard needs to know (the processes, what is outstanding) is kept by the
 * server in a shared mapping. */

#define GUARD_PIDS 65536

struct guard_pid {
	int32_t pid;
	uint32_t queued;	/* 1: its uffd never reached the server (all outstanding) */
	uint64_t left;		/* outstanding pages: its mm and those forked from it */
	uint32_t forks;		/* how many of those mms were forked during the load */
	uint32_t pad;
};

struct shared {
	volatile int32_t done;	/* the server exits knowing the tree needs it no more */
	uint32_t npids;
	uint64_t left;
	uint32_t nmm;
	int32_t go;
	int32_t sock;		/* the server's end of cryo's socket, or -1 */
	int32_t cryo;		/* cryo -r, the tree's parent and subreaper */
	uint64_t cryo_start;	/* its start time: that pid is still cryo */
	struct guard_pid p[GUARD_PIDS];
};

static struct shared *SH;

static void publish(void)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < SH->npids; i++) {
		SH->p[i].left = 0;
		SH->p[i].forks = 0;
	}
	for (size_t i = 0; i < S.nmm; i++) {
		const struct mm *m = S.mms[i];

		total += m->left;
		if (m->pidx >= 0) {
			SH->p[m->pidx].left += m->left;
			SH->p[m->pidx].forks += m->forked && m->left;
		}
	}
	SH->left = total;
	SH->nmm = (uint32_t)S.nmm;
}

static void __attribute__((noreturn)) server_exit(int status)
{
	SH->done = 1;
	_exit(status);
}

static void __attribute__((noreturn)) guard_main(int server_pidfd, pid_t server)
{
	struct pollfd p = { .fd = server_pidfd, .events = POLLIN };
	char list[400] = "", total[64] = "";
	size_t off = 0, n = 0, nq = 0;
	pid_t *pids;

	prctl(PR_SET_NAME, "cryo-lazy-guard");
	for (;;) {
		int r = poll(&p, 1, -1);

		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			usleep(100000);
	}
	/* done, or nothing registered any more: the uffds may close */
	if (SH->done || (SH->go && !SH->nmm))
		_exit(0);
	/* uffds cryo sent that the server did not take: held now (they are in
	 * our table), their processes killed with the rest */
	while (SH->sock >= 0 && SH->npids < GUARD_PIDS) {
		struct lz_msg msg;
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec io = { &msg, sizeof(msg) };
		struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };

		if (recvmsg(SH->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(msg))
			break;
		if (msg.type == 'A')
			SH->p[SH->npids++] = (struct guard_pid){ .pid = msg.pid, .queued = 1 };
	}
	if (!SH->npids)		/* nothing was registered: nothing to zero-fill */
		_exit(0);
	pids = malloc((SH->npids + 1) * sizeof(*pids));
	for (uint32_t i = 0; i < SH->npids; i++) {
		if (pids)
			pids[n++] = SH->p[i].pid;
		nq += SH->p[i].queued;
		if (SH->p[i].queued && off < sizeof(list) - 60)
			off += (size_t)snprintf(list + off, sizeof(list) - off,
						"%spid %d: all, never handed over",
						off ? ", " : "", SH->p[i].pid);
		else if (SH->p[i].left && off < sizeof(list) - 80)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%spid %d: %llu%s",
						off ? ", " : "", SH->p[i].pid,
						(unsigned long long)SH->p[i].left,
						SH->p[i].forks ? " with the processes it forked" : "");
	}
	/* said first: cryo -r exits as soon as the root dies */
	if (SH->left)
		snprintf(total, sizeof(total), "%llu%s ", (unsigned long long)SH->left,
			 nq ? " and more" : "");
	report_error("lazy restore: the page server (pid %d) died before the load completed,"
		     " %spages not loaded yet%s%s%s; the restored tree (%s%d%s) was killed so"
		     " that none of it reads zeros there", server, total,
		     off ? " (" : "", list, off ? ")" : "", SH->npids > 1 ? "pids " : "pid ",
		     SH->p[0].pid, SH->npids > 1 ? " and the others cryo restored, with their"
		     " descendants" : " and its descendants");
	/* cryo -r (without -d) is the tree's subreaper: a process that left
	 * the tree during the load (its parent exited) is cryo's child now */
	if (pids && SH->cryo > 0) {
		unsigned long long st;
		DIR *d;
		struct dirent *de;
		size_t cap = SH->npids + 1;

		if (proc_ppid_start(SH->cryo, &st) >= 0 && st == SH->cryo_start &&
		    (d = opendir("/proc"))) {
			while ((de = readdir(d))) {
				pid_t q = (pid_t)atoi(de->d_name);
				pid_t *np;

				if (q <= 0 || q == getpid() || q == server ||
				    proc_ppid(q) != SH->cryo || pid_in(pids, n, q))
					continue;
				if (n == cap) {
					np = realloc(pids, (cap *= 2) * sizeof(*pids));
					if (!np)
						break;
					pids = np;
				}
				pids[n++] = q;
			}
			closedir(d);
		}
	}
	if (pids)
		kill_pids(pids, n);
	_exit(1);
}

/* The guard: a process sharing our fd table. Returns its pid and sets
 * *pidfd, or -errno. */
static pid_t guard_start(int self_pidfd, int *pidfd)
{
	pid_t server = getpid();
	long g = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);

	if (g < 0)
		return -errno;
	if (g == 0)
		guard_main(self_pidfd, server);
	*pidfd = (int)syscall(SYS_pidfd_open, (pid_t)g, 0);
	if (*pidfd < 0) {
		int e = -errno;

		kill((pid_t)g, SIGKILL);
		waitpid((pid_t)g, NULL, 0);
		return e;
	}
	return (pid_t)g;
}

static void __attribute__((noreturn)) fatal(struct mm *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void __attribute__((noreturn)) fatal(struct mm *m, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* said first: cryo -r exits as soon as the root dies */
	report_error("lazy restore: pid %d%s: %s; the restored tree was killed", m->pid,
		     m->forked ? " (a process it forked)" : "", msg);
	kill_tree();
	server_exit(1);
}

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Index of the seg containing addr, or of the first one after it */
static size_t seg_find(const struct mm *m, uint64_t addr)
{
	size_t lo = 0, hi = m->nsegs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->segs[mid].start + (uint64_t)m->segs[mid].npages * PAGE <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The done byte of the page at addr; NULL if no stored page is there */
static uint8_t *page_state(struct mm *m, uint64_t addr, const struct seg **gp)
{
	size_t i = seg_find(m, addr);

	if (i >= m->nsegs || m->segs[i].start > addr)
		return NULL;
	if (gp)
		*gp = &m->segs[i];
	return &m->done[m->segs[i].didx + (addr - m->segs[i].start) / PAGE];
}

static void mark_range(struct mm *m, uint64_t start, uint64_t end)
{
	for (size_t i = seg_find(m, start); i < m->nsegs && m->segs[i].start < end; i++) {
		struct seg *g = &m->segs[i];
		uint64_t a = g->start > start ? g->start : start;
		uint64_t b = g->start + (uint64_t)g->npages * PAGE;

		if (b > end)
			b = end;
		for (uint64_t p = (a - g->start) / PAGE; p < (b - g->start) / PAGE; p++)
			if (!m->done[g->didx + p]) {
				m->done[g->didx + p] = 1;
				m->left--;
			}
	}
}

static int grow_done(struct mm *m, size_t extra)
{
	uint8_t *d = realloc(m->done, m->ndone + extra + 1);

	if (!d)
		return -ENOMEM;
	memset(d + m->ndone, 0, extra);
	m->done = d;
	m->ndone += extra;
	return 0;
}

static int add_seg(struct mm *m, size_t *cap, struct seg g)
{
	if (m->nsegs == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct seg *ns = realloc(m->segs, nc * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		m->segs = ns;
		*cap = nc;
	}
	m->segs[m->nsegs++] = g;
	return 0;
}

/* Read n pages of seg g from page p into buf and check them */
static void read_pages(struct mm *m, const struct seg *g, uint64_t p, uint64_t n, uint8_t *buf)
{
	int e = swap_read(S.sw, g->slot + p, n, buf);

	if (e)
		fatal(m, "page at %#lx (slot %lu) cannot be read: %s",
		      (unsigned long)(g->start + p * PAGE), (unsigned long)(g->slot + p), err_msg());
	for (uint64_t k = 0; k < n; k++) {
		uint64_t want;

		memcpy(&want, g->sums + (p + k) * 8, 8);
		if (page_sum(buf + k * PAGE) != want)
			fatal(m, "page at %#lx (slot %lu, snapshot %llu) fails its checksum"
			      " (corrupt or deleted snapshot)", (unsigned long)(g->start + (p + k) * PAGE),
			      (unsigned long)(g->slot + p + k), S.snapshot);
	}
}

/* Copy up to max outstanding pages from addr on (addr's page must be
 * outstanding). Returns 0 (with *covered = pages now present from addr
 * on, possibly 0), -EAGAIN or -ESRCH. */
static int copy_at(struct mm *m, uint64_t addr, uint64_t max, uint64_t *covered)
{
	uint64_t n = 0;
	size_t i = seg_find(m, addr);
	struct uffdio_copy c;
	int r;

	*covered = 0;
	/* gather the outstanding pages at consecutive addresses */
	while (n < max && i < m->nsegs) {
		const struct seg *g = &m->segs[i];
		uint64_t at = addr + n * PAGE, p, k;

		if (g->start > at || g->start + (uint64_t)g->npages * PAGE <= at)
			break;
		p = (at - g->start) / PAGE;
		for (k = p; k < g->npages && n + (k - p) < max && !m->done[g->didx + k]; k++)
			;
		if (k > p)
			read_pages(m, g, p, k - p, S.buf + n * PAGE);
		n += k - p;
		if (k < g->npages)
			break;
		i++;
	}
	if (!n)
		return 0;
	for (;;) {
		memset(&c, 0, sizeof(c));
		c.dst = addr;
		c.src = (uint64_t)(uintptr_t)S.buf;
		c.len = n * PAGE;
		r = ioctl(m->fd, UFFDIO_COPY, &c);
		if (c.copy > 0) {
			mark_range(m, addr, addr + (uint64_t)c.copy);
			*covered = (uint64_t)c.copy / PAGE;
		}
		if (!r)
			return 0;
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno == ESRCH)
			return -ESRCH;
		if (errno == EEXIST || (errno == ENOENT && n == 1)) {
			/* present already, or no longer mapped: nothing to give */
			uint64_t at = addr + *covered * PAGE;
			struct uffdio_range w = { at, PAGE };

			mark_range(m, at, at + PAGE);
			(*covered)++;
			/* a fault read before the page came may still wait */
			ioctl(m->fd, UFFDIO_WAKE, &w);
			return 0;
		}
		if (errno == ENOENT) {
			/* the range spans VMAs split since the restore: one page
			 * (what was copied is marked; the rest comes again) */
			if (c.copy > 0)
				return 0;
			n = 1;
			continue;
		}
		fatal(m, "UFFDIO_COPY at %#lx (%lu pages): %s", (unsigned long)addr,
		      (unsigned long)n, strerror(errno));
	}
}

static int uffd_simple(struct mm *m, unsigned long req, uint64_t addr)
{
	if (req == UFFDIO_ZEROPAGE) {
		struct uffdio_zeropage z = { .range = { addr, PAGE } };

		if (!ioctl(m->fd, UFFDIO_ZEROPAGE, &z))
			return 0;
	} else {
		struct uffdio_range w = { addr, PAGE };

		if (!ioctl(m->fd, UFFDIO_WAKE, &w))
			return 0;
	}
	if (errno == EAGAIN || errno == ESRCH)
		return -errno;
	if (errno == EEXIST || errno == ENOENT)
		return req == UFFDIO_ZEROPAGE ? uffd_simple(m, UFFDIO_WAKE, addr) : 0;
	fatal(m, "%s at %#lx: %s", req == UFFDIO_ZEROPAGE ? "UFFDIO_ZEROPAGE" : "UFFDIO_WAKE",
	      (unsigned long)addr, strerror(errno));
}

static int serve_fault(struct mm *m, uint64_t addr)
{
	uint8_t *d;
	uint64_t covered = 0;
	int e;

	addr &= ~(PAGE - 1);
	d = page_state(m, addr, NULL);
	if (!d || *d)
		return uffd_simple(m, UFFDIO_ZEROPAGE, addr);
	e = copy_at(m, addr, FAULT_PAGES, &covered);
	if (!e) {
		m->on_fault += covered;
		if (!covered)	/* nothing copied over the faulting page: wake it */
			e = uffd_simple(m, UFFDIO_WAKE, addr);
	}
	return e;
}

static int push_pend(struct mm *m, uint64_t addr)
{
	if (m->npend == m->cappend) {
		size_t nc = m->cappend ? m->cappend * 2 : 16;
		uint64_t *np = realloc(m->pend, nc * sizeof(*np));

		if (!np)
			return -ENOMEM;
		m->pend = np;
		m->cappend = nc;
	}
	m->pend[m->npend++] = addr;
	return 0;
}

/* No seg covers [start, end) any more (its pages are done first): the
 * segs stay disjoint when pages are moved there */
static int cut_range(struct mm *m, uint64_t start, uint64_t end)
{
	size_t n = 0, cap = m->nsegs + 2;
	struct seg *ns;

	mark_range(m, start, end);
	ns = malloc(cap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->nsegs; i++) {
		struct seg g = m->segs[i];
		uint64_t gend = g.start + (uint64_t)g.npages * PAGE;

		if (gend <= start || g.start >= end) {
			ns[n++] = g;
			continue;
		}
		if (n + 2 > cap) {
			struct seg *nn = realloc(ns, (cap *= 2) * sizeof(*ns));

			if (!nn) {
				free(ns);
				return -ENOMEM;
			}
			ns = nn;
		}
		if (g.start < start)
			ns[n++] = (struct seg){ g.start, g.slot, g.sums, g.didx,
						(uint32_t)((start - g.start) / PAGE) };
		if (gend > end) {
			uint64_t off = (end - g.start) / PAGE;

			ns[n++] = (struct seg){ end, g.slot + off, g.sums + off * 8, g.didx + off,
						(uint32_t)(g.npages - off) };
		}
	}
	free(m->segs);
	m->segs = ns;
	m->nsegs = n;
	return 0;
}

/* mremap moved [from, from+len) to to: so do its outstanding pages */
static int remap(struct mm *m, uint64_t from, uint64_t to, uint64_t len)
{
	size_t cap, n0;
	int e = 0;

	if (from == to || !len)
		return 0;
	e = cut_range(m, to, to + len);
	if (e)
		return e;
	cap = n0 = m->nsegs;
	for (size_t i = seg_find(m, from); i < n0 && m->segs[i].start < from + len && !e; i++) {
		for (uint32_t p = 0; p < m->segs[i].npages && !e;) {
			struct seg g = m->segs[i];
			uint64_t a = g.start + (uint64_t)p * PAGE;
			uint32_t q = p;

			if (a < from || a >= from + len || m->done[g.didx + p]) {
				p++;
				continue;
			}
			while (q < g.npages && g.start + (uint64_t)q * PAGE < from + len &&
			       !m->done[g.didx + q])
				q++;
			e = grow_done(m, q - p);
			if (!e)
				e = add_seg(m, &cap, (struct seg){ a - from + to, g.slot + p,
								   g.sums + (uint64_t)p * 8,
								   m->ndone - (q - p), q - p });
			if (!e) {
				/* the old place has nothing more; the new one all of it */
				for (uint32_t k = p; k < q; k++)
					m->done[g.didx + k] = 1;
			}
			p = q;
		}
	}
	qsort(m->segs, m->nsegs, sizeof(*m->segs), seg_cmp);
	m->cur = 0;
	return e;
}

static struct mm *mm_new(int fd, pid_t pid)
{
	struct mm *m = calloc(1, sizeof(*m));
	struct mm **nv = realloc(S.mms, (S.nmm + 1) * sizeof(*nv));

	if (!m || !nv) {
		free(m);
		if (nv)
			S.mms = nv;
		return NULL;
	}
	S.mms = nv;
	m->fd = fd;
	m->pid = pid;
	S.mms[S.nmm++] = m;
	return m;
}

static void mm_free(struct mm *m)
{
	close(m->fd);
	free(m->segs);
	free(m->done);
	free(m->pend);
	free(m);
}

/* The stored pages of task's lazy VMAs */
static int mm_build(struct mm *m, uint32_t task)
{
	struct lx_vma *v = NULL;
	struct lx_page_run *runs = NULL;
	const void *sums = NULL;
	uint64_t sums_len = 0, si = 0;
	uint32_t rs;
	size_t nv = 0, nr = 0, cap = 0, vi = 0;
	uint8_t *mask = NULL;
	int e = img_records(S.im, LX_SEC_VMAS, task, sizeof(*v), 64, (void **)&v, &nv);

	if (!e)
		e = img_records(S.im, LX_SEC_PAGEMAP, task, sizeof(*runs), sizeof(*runs),
				(void **)&runs, &nr);
	if (!e && img_find(S.im, LX_SEC_PAGESUMS, task, &sums, &sums_len, &rs))
		sums_len = 0;
	if (!e && !(mask = lazy_mask(v, nv, runs, nr)))
		e = -ENOMEM;
	for (size_t i = 0; i < nr && !e; i++) {
		const struct lx_page_run *r = &runs[i];

		if (r->slot == LX_SLOT_ZERO)
			continue;
		while (vi < nv && v[vi].end <= r->vaddr)
			vi++;
		if ((si + r->npages) * 8 > sums_len) {
			e = -EINVAL;
			break;
		}
		if (vi < nv && mask[vi] && v[vi].start <= r->vaddr) {
			e = add_seg(m, &cap, (struct seg){ r->vaddr, r->slot,
							   (const uint8_t *)sums + si * 8,
							   m->ndone, r->npages });
			if (!e)
				e = grow_done(m, r->npages);
		}
		si += r->npages;
	}
	m->left = m->total = m->ndone;
	free(v);
	free(runs);
	free(mask);
	return e;
}

static int mm_fork(struct mm *parent, int fd)
{
	struct mm *m = mm_new(fd, parent->pid);

	if (!m)
		return -ENOMEM;
	m->forked = 1;
	m->pidx = parent->pidx;
	m->segs = malloc((parent->nsegs + 1) * sizeof(*m->segs));
	m->done = malloc(parent->ndone + 1);
	if (!m->segs || !m->done)
		return -ENOMEM;
	memcpy(m->segs, parent->segs, parent->nsegs * sizeof(*m->segs));
	memcpy(m->done, parent->done, parent->ndone);
	m->nsegs = parent->nsegs;
	m->ndone = parent->ndone;
	m->left = m->total = parent->left;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Read and handle every queued message of m. -ESRCH: m's mm is gone. */
static int drain(struct mm *m)
{
	struct uffd_msg msg[64];

	for (;;) {
		ssize_t n = read(m->fd, msg, sizeof(msg));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			fatal(m, "read the userfaultfd: %s", strerror(errno));
		}
		if (n == 0)
			return 0;
		m->blocked = 0;
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			const struct uffd_msg *g = &msg[i];
			int e = 0;

			switch (g->event) {
			case UFFD_EVENT_PAGEFAULT:
				e = push_pend(m, g->arg.pagefault.address);
				break;
			case UFFD_EVENT_FORK:
				e = mm_fork(m, (int)g->arg.fork.ufd);
				break;
			case UFFD_EVENT_REMAP:
				e = remap(m, g->arg.remap.from, g->arg.remap.to, g->arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				mark_range(m, g->arg.remove.start, g->arg.remove.end);
				break;
			}
			if (e)
				fatal(m, "page server: %s", strerror(-e));
		}
	}
}

/* Serve the faults read so far, in order; stop at EAGAIN */
static int serve_pending(struct mm *m)
{
	size_t k = 0;
	int e = 0;

	while (k < m->npend) {
		e = serve_fault(m, m->pend[k]);
		if (e)
			break;
		k++;
	}
	if (k) {	/* (m->pend may still be NULL when nothing was read) */
		memmove(m->pend, m->pend + k, (m->npend - k) * sizeof(*m->pend));
		m->npend -= k;
	}
	if (e == -EAGAIN)
		m->blocked = 1;
	return e == -EAGAIN ? 0 : e;
}

static int prefetch(struct mm *m)
{
	uint64_t covered;

	for (int pass = 0; pass < 2; pass++) {
		for (; m->cur < m->nsegs; m->cur++) {
			const struct seg *g = &m->segs[m->cur];

			for (uint32_t p = 0; p < g->npages; p++) {
				int e;

				if (m->done[g->didx + p])
					continue;
				e = copy_at(m, g->start + (uint64_t)p * PAGE, PREFETCH_PAGES, &covered);
				if (e == -EAGAIN)
					m->blocked = 1;
				return e == -EAGAIN ? 0 : e;
			}
		}
		m->cur = 0;
	}
	m->left = 0;	/* nothing outstanding was found */
	return 0;
}

static void mm_drop(size_t i, const char *why)
{
	struct mm *m = S.mms[i];

	if (!m->forked)
		info("lazy restore: pid %d: %s: %lu of %lu pages loaded (%lu on demand) in %.0f ms",
		     m->pid, why, (unsigned long)(m->total - m->left), (unsigned long)m->total,
		     (unsigned long)m->on_fault, since_start_ms());
	mm_free(m);
	S.mms[i] = S.mms[--S.nmm];
}

static int recv_add(int sock, int *go)
{
	struct lz_msg msg;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec io = { &msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	int fd = -1;
	struct mm *m;
	pid_t *np;

	if (n <= 0)
		return n == 0 || errno != EINTR ? -EPIPE : 0;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (n != sizeof(msg))
		return -EPROTO;
	if (msg.type == 'G') {
		struct lz_msg ack = { 'g', 0, 0, 0 };

		*go = 1;
		SH->go = 1;
		/* cryo waits for it: a server gone before this kills the tree */
		return send(sock, &ack, sizeof(ack), MSG_NOSIGNAL) == sizeof(ack) ? 0 : -EPIPE;
	}
	if (msg.type != 'A' || fd < 0)
		return -EPROTO;
	m = mm_new(fd, msg.pid);
	np = realloc(S.pids, (S.npids + 1) * sizeof(*np));
	if (!m || !np)
		return -ENOMEM;
	S.pids = np;
	S.pids[S.npids++] = msg.pid;
	m->pidx = -1;
	if (SH->npids < GUARD_PIDS) {
		m->pidx = (int)SH->npids;
		SH->p[m->pidx].pid = msg.pid;
		SH->npids++;
	}
	if (mm_build(m, msg.task))
		fatal(m, "page server: cannot read the page map of task %u", msg.task);
	publish();
	return 0;
}

static void __attribute__((noreturn)) server_main(int sock)
{
	struct pollfd *pfd = NULL;
	size_t rr = 0;
	int go = 0, self_pidfd, guard_pidfd = -1;
	double last_prefetch = -1e9;
	unsigned long long st = 0;
	pid_t guard;
	const char *pace = getenv("CRYO_LAZY_PACE_MS");

	S.pace_ms = pace ? atol(pace) : 0;
	S.buf = malloc(PREFETCH_PAGES * PAGE);
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	self_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (!S.buf || SH == MAP_FAILED || self_pidfd < 0) {
		report_error("lazy restore: page server: cannot set up its guard: %s",
			     strerror(errno));
		_exit(1);	/* cryo's hand-over fails: the restore is undone */
	}
	guard = guard_start(self_pidfd, &guard_pidfd);
	if (guard < 0) {
		report_error("lazy restore: page server: cannot start its guard: %s",
			     strerror(-guard));
		_exit(1);
	}
	SH->sock = sock;
	SH->cryo = getppid();
	if (proc_ppid_start(SH->cryo, &st) < 0)
		SH->cryo = 0;
	SH->cryo_start = st;
	info("lazy restore: page server pid %d, guard pid %d", getpid(), guard);
	clock_gettime(CLOCK_MONOTONIC, &S.t0);
	for (;;) {
		int busy = 0, waiting = 0, timeout;
		size_t np = 0, gi;

		for (size_t i = 0; i < S.nmm;) {
			if (S.mms[i]->dead)
				mm_drop(i, "exited");
			else if (!S.mms[i]->left && !S.mms[i]->npend)
				mm_drop(i, "done");
			else
				i++;
		}
		publish();
		if (sock < 0 && (!go || !S.nmm))
			server_exit(0);
		free(pfd);
		pfd = calloc(S.nmm + 2, sizeof(*pfd));
		if (!pfd)
			_exit(1);	/* the guard kills the tree */
		if (sock >= 0)
			pfd[np++] = (struct pollfd){ .fd = sock, .events = POLLIN };
		for (size_t i = 0; i < S.nmm; i++) {
			pfd[np++] = (struct pollfd){ .fd = S.mms[i]->fd, .events = POLLIN };
			/* background loading waits until the tree runs: the restore
			 * itself should not share the CPU with it */
			busy |= go && S.mms[i]->left && !S.mms[i]->blocked;
			waiting |= S.mms[i]->blocked;
		}
		gi = np;
		if (guard_pidfd >= 0)
			pfd[np++] = (struct pollfd){ .fd = guard_pidfd, .events = POLLIN };
		/* the pace is kept even while faults keep waking us */
		if (busy && S.pace_ms) {
			double wait = last_prefetch + (double)S.pace_ms - since_start_ms();

			if (wait > 0) {
				busy = 0;
				timeout = (int)wait + 1;
			} else {
				timeout = 0;
			}
		} else {
			timeout = busy ? 0 : -1;
		}
		if (waiting && (timeout < 0 || timeout > 1))
			timeout = 1;
		if (poll(pfd, np, timeout) < 0 && errno != EINTR)
			_exit(1);	/* the guard kills the tree */
		if (guard_pidfd >= 0 && pfd[gi].revents) {
			pid_t old = guard;

			/* without a guard, killing the server would zero-fill */
			waitpid(guard, NULL, 0);
			close(guard_pidfd);
			guard_pidfd = -1;
			guard = guard_start(self_pidfd, &guard_pidfd);
			if (guard < 0)
				warn("lazy restore: the page server's guard (pid %d) died and no other"
				     " could start (%s): killing the server now would let the"
				     " restored tree read zeros", old, strerror(-guard));
			else
				info("lazy restore: the page server's guard (pid %d) died; pid %d"
				     " took its place", old, guard);
		}
		if (sock >= 0 && pfd[0].revents) {
			int e = recv_add(sock, &go);

			if (e == -EPIPE) {
				SH->sock = -1;
				close(sock);
				sock = -1;
				if (!go)	/* failed or cryo died: the tree dies too */
					server_exit(0);
			} else if (e) {
				report_error("lazy restore: page server: taking over the memory of a new process"
					     " of the tree: %s; the tree was killed", strerror(-e));
				kill_tree();
				server_exit(1);
			}
			continue;	/* S.mms may have moved */
		}
		for (size_t i = 0; i < S.nmm; i++) {
			struct mm *m = S.mms[i];
			int e;

			m->blocked = 0;		/* retry what met EAGAIN */
			e = drain(m);
			if (!e)
				e = serve_pending(m);
			if (e == -ESRCH)
				m->dead = 1;
		}
		publish();
		if (!busy || !S.nmm)
			continue;
		for (size_t k = 0; k < S.nmm; k++) {
			struct mm *m = S.mms[(rr + k) % S.nmm];

			if (m->left && !m->blocked && !m->npend && !m->dead) {
				last_prefetch = since_start_ms();
				if (prefetch(m) == -ESRCH)
					m->dead = 1;
				break;
			}
		}
		rr++;
	}
}

/* ------------------------------------------------------------------ */
/* cryo's side                                                         */

static int probe(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), e;
	void *p;

	if (fd < 0) {
		e = -errno;
		if (e == -EPERM)
			return err_set(e, "--lazy: userfaultfd is not allowed here (cryo needs"
				       " CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1): restore"
				       " without --lazy");
		return err_sys(e, "--lazy: userfaultfd is not available%s: restore without --lazy",
			       e == -ENOSYS ? " (kernel without CONFIG_USERFAULTFD)" : "");
	}
	e = uffd_api(fd);
	if (e) {
		close(fd);
		return err_sys(e, "--lazy: userfaultfd lacks the fork/remap/remove/unmap events"
			       " lazy restore needs (or cryo lacks CAP_SYS_PTRACE for them):"
			       " restore without --lazy");
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED) {
		struct uffdio_register reg = { .range = { (uint64_t)(uintptr_t)p, PAGE },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };

		e = ioctl(fd, UFFDIO_REGISTER, &reg) ? -errno : 0;
	}
	/* closed before the unmap: an unmap event would wait for a reader */
	close(fd);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	if (e)
		return err_sys(e, "--lazy: cannot register anonymous memory with userfaultfd:"
			       " restore without --lazy");
	return 0;
}

int lazy_start(const struct img *im, struct swapfile *sw)
{
	struct lx_swap_ref *ref = NULL;
	size_t nref = 0;
	int sv[2], e = probe();
	pid_t pid;

	if (e)
		return e;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_sys(-errno, "--lazy: socketpair");
	memset(&S, 0, sizeof(S));
	S.im = im;
	S.sw = sw;
	if (!img_records(im, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref), sizeof(*ref),
			 (void **)&ref, &nref) && nref == 1)
		S.snapshot = (unsigned long long)ref->snapshot;
	free(ref);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		e = err_sys(-errno, "--lazy: fork the page server");
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (pid == 0) {
		int keep[3] = { sv[1], swap_fd(sw), log_fd() }, nul;
		DIR *d;
		struct dirent *de;

		/* its own session, deaf to the terminal: with -d it outlives
		 * cryo, and dying early would zero-fill what is left */
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_NAME, "cryo-lazy");
		nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			close(nul);
		}
		/* hold nothing of cryo's callers but stderr */
		d = opendir("/proc/self/fd");
		while (d && (de = readdir(d))) {
			int fd = atoi(de->d_name);

			if (fd > 2 && fd != dirfd(d) && fd != keep[0] && fd != keep[1] &&
			    fd != keep[2])
				close(fd);
		}
		if (d)
			closedir(d);
		server_main(sv[1]);
	}
	close(sv[1]);
	lz.sock = sv[0];
	lz.server = pid;
	lz.active = 1;
	return 0;
}

int lazy_attach(struct restore_task *t, const struct lx_vma *v, size_t nv,
		const struct lx_page_run *runs, size_t nr, uint8_t **skip)
{
	struct lz_msg msg = { 'A', t->index, t->pid, 0 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec io = { &msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	uint8_t *mask = lazy_mask(v, nv, runs, nr);
	long tfd = -1;
	int pidfd, fd = -1, e, any = 0;

	*skip = mask;
	if (!mask)
		return -ENOMEM;
	for (size_t i = 0; i < nv; i++)
		any |= mask[i];
	if (!any)
		return 0;
	e = restore_sys(t, "userfaultfd", SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0,
			&tfd);
	if (e == -EPERM)
		return err_ctx(e, "--lazy: the restored process may not create a userfaultfd"
			       " (not root, and vm.unprivileged_userfaultfd is 0): restore without"
			       " --lazy, or set that sysctl to 1");
	if (e)
		return err_ctx(e, "--lazy");
	pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pidfd >= 0) {
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)tfd, 0);
		if (fd < 0)
			e = err_sys(-errno, "pid %d: --lazy: pidfd_getfd of its userfaultfd", t->pid);
		close(pidfd);
	} else {
		e = err_sys(-errno, "pid %d: --lazy: pidfd_open", t->pid);
	}
	if (!e)
		e = restore_sys(t, "close its userfaultfd", SYS_close, (uint64_t)tfd, 0, 0, 0, 0, 0,
				NULL);
	if (!e) {
		e = uffd_api(fd);
		if (e)
			e = err_sys(e, "pid %d: --lazy: UFFDIO_API", t->pid);
	}
	for (size_t i = 0; i < nv && !e; i++) {
		struct uffdio_register reg;
		size_t j = i;

		if (!mask[i])
			continue;
		/* adjacent lazy VMAs in one call */
		while (j + 1 < nv && mask[j + 1] && v[j + 1].start == v[j].end)
			j++;
		memset(&reg, 0, sizeof(reg));
		reg.range.start = v[i].start;
		reg.range.len = v[j].end - v[i].start;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
			e = err_sys(-errno, "pid %d: --lazy: register %#lx-%#lx with userfaultfd",
				    t->pid, (unsigned long)v[i].start, (unsigned long)v[j].end);
		i = j;
	}
	if (!e) {
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
		if (sendmsg(lz.sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
			e = err_sys(-errno, "pid %d: --lazy: hand the userfaultfd to the page server"
				    " (pid %d)", t->pid, lz.server);
	}
	if (fd >= 0)
		close(fd);
	return e;
}

int lazy_go(void)
{
	struct lz_msg msg = { 'G', 0, 0, 0 };
	ssize_t n;

	if (!lz.active)
		return 0;
	if (send(lz.sock, &msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg))
		return err_sys(-errno, "lazy restore: the page server (pid %d) is gone", lz.server);
	/* its answer: it knows the tree runs. None (EOF once its guard is
	 * gone too) means it died, with pages the tree still needs. */
	do
		n = recv(lz.sock, &msg, sizeof(msg), 0);
	while (n < 0 && errno == EINTR);
	if (n != sizeof(msg) || msg.type != 'g')
		return err_set(-EPIPE, "lazy restore: the page server (pid %d) died before the"
			       " tree could run", lz.server);
	return 0;
}

void lazy_finish(int ok)
{
	(void)ok;
	if (!lz.active)
		return;
	close(lz.sock);
	lz.sock = -1;
	lz.active = 0;
}
