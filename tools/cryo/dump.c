/* Dump orchestration: freeze, refuse what cannot be restored, walk every
 * kind of state, commit pages then image, and leave the tree exactly as it
 * was (or kill it with --kill). */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "dirty.h"
#include "dumpbatch.h"
#include "err.h"
#include "injsafe.h"
#include "shanon.h"
#include "tcp.h"
#include "options.h"
#include "timens.h"
#include "tty.h"

#define RED_ZONE 128

int dump_inject_out(struct dump_task *t, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		    uint64_t a4, int out_arg, void *out, size_t out_len, long *ret)
{
	uint64_t a[4] = { a1, a2, a3, a4 };
	int e;

	if (!t->scratch_ok)
		return err_set(-EFAULT, "pid %d: no room below its stack pointer to read state"
			       " from inside", t->pid);
	if (out_len > sizeof(t->scratch_saved) || out_arg < 1 || out_arg > 4)
		return -EINVAL;
	if (dump_cached(t, nr, a, out_arg, out, out_len, ret))
		return 0;	/* read by dump_prefetch's batch */
	a[out_arg - 1] = t->scratch;
	e = inj_syscall(&t->inj, nr, a[0], a[1], a[2], a[3], 0, 0, ret);
	if (e)
		return e;
	if (*ret < 0 && *ret > -4096)
		return 0;	/* the caller decides what a failure means */
	return mem_read(t->pid, t->scratch, out, out_len);
}

/* Injected syscalls that return data write it just below the red zone of
 * the frozen stack, which is put back byte for byte before detaching. */
static void scratch_setup(struct dump_task *t)
{
	struct user_regs_struct r;

	if (pt_get_regs(t->pid, &r))
		return;
	t->scratch = (r.rsp - RED_ZONE - sizeof(t->scratch_saved)) & ~15ull;
	t->scratch_ok = mem_read(t->pid, t->scratch, t->scratch_saved,
				 sizeof(t->scratch_saved)) == 0;
	err_clear();
}

static int scratch_restore(struct dump_task *t)
{
	int e;

	if (!t->scratch_ok)
		return 0;
	e = mem_write(t->pid, t->scratch, t->scratch_saved, sizeof(t->scratch_saved));
	if (!e)
		t->scratch_ok = 0;
	return e;
}

int dump_end_injection(struct dump_task *t)
{
	int e = scratch_restore(t), e2;

	dump_cache_drop(t);
	e2 = inj_finish(&t->inj);
	return e ? e : e2;
}

/* Default page store: one per container, named after the root pid, beside
 * the image, so successive dumps of the same tree share it. */
static char *default_swapfile(const char *image, pid_t pid)
{
	char *copy = strdup(image), *dir, *out;

	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/cryo-%d.swap", dir, pid) < 0)
		out = NULL;
	free(copy);
	return out;
}

/* How the image names its swapfile: relative to the image's directory
 * when it lives there, so image and swapfile can be moved together. */
static const char *swap_ref_path(const char *image, const char *swap)
{
	char *ci = strdup(image), *cs = strdup(swap);
	const char *res = swap;

	if (ci && cs && !strcmp(dirname(ci), dirname(cs)))
		res = strrchr(swap, '/') ? strrchr(swap, '/') + 1 : swap;
	free(ci);
	free(cs);
	return res;
}

/* ---- the tree ---- */

struct dump_tree {
	struct dump_task *t;	/* parents before children (BFS) */
	size_t n, cap;
	pid_t *ppid;		/* parent of t[i] inside the tree, 0 for the root */
};

static int tree_add(struct dump_tree *tr, pid_t pid, pid_t ppid)
{
	if (tr->n == tr->cap) {
		size_t nc = tr->cap ? tr->cap * 2 : 16;
		struct dump_task *nt = realloc(tr->t, nc * sizeof(*nt));
		pid_t *np;

		if (!nt)
			return -ENOMEM;
		tr->t = nt;
		np = realloc(tr->ppid, nc * sizeof(*np));
		if (!np)
			return -ENOMEM;
		tr->ppid = np;
		tr->cap = nc;
	}
	memset(&tr->t[tr->n], 0, sizeof(tr->t[0]));
	tr->t[tr->n].pid = pid;
	tr->t[tr->n].index = (uint32_t)tr->n;
	tr->ppid[tr->n] = ppid;
	tr->n++;
	return 0;
}

/* A process that exited while cryo froze it. Its parent is frozen (the
 * root's parent is not cryo's concern), so what is seen now holds until
 * the dump ends: a zombie, kept as one (its parent has not reaped it), or
 * nothing (its parent ignores SIGCHLD: the kernel reaped it), -ESRCH.
 * 1: it is alive after all. */
static int exited_since(struct dump_task *t)
{
	int e = proc_stat(t->pid, 0, &t->stat);

	if (e == -ENOENT || e == -ESRCH || (e && kill(t->pid, 0) < 0 && errno == ESRCH)) {
		err_clear();
		return err_set(-ESRCH, "pid %d: exited while cryo worked on it", t->pid);
	}
	if (e)
		return e;
	if (t->stat.state == 'Z') {
		t->zombie = 1;
		return 0;
	}
	if (t->stat.state == 'X')
		return err_set(-ESRCH, "pid %d: exited while cryo worked on it", t->pid);
	return 1;
}

/* Stop a process from outside. A zombie cannot be traced: it keeps only
 * its exit status, which its parent has not collected yet. */
static int freeze_task(struct dump_task *t)
{
	int e = exited_since(t);

	if (e <= 0)
		return e;
	e = pt_seize(t->pid);
	if (e) {
		/* it may have exited since it was listed */
		err_clear();
		e = exited_since(t);
		if (e <= 0)
			return e;
		char why[320];

		trace_refusal_reason(t->pid, why, sizeof(why));	/* owner.c */
		return err_set(-EPERM, "pid %d: cannot trace it: %s", t->pid, why);
	}
	t->seized = 1;
	e = pt_interrupt_wait(t->pid);
	if (e == -ESRCH) {
		/* it exited before it stopped: the wait that saw it took it
		 * off cryo's hands */
		err_clear();
		e = exited_since(t);
		if (e <= 0)
			t->seized = 0;
		else
			e = err_set(-ESRCH, "pid %d: cannot stop it: it does not answer ptrace",
				    t->pid);
		return e;
	}
	if (!e)
		e = threads_freeze(t);	/* every thread, before it can fork */
	if (!e)
		e = proc_stat(t->pid, 0, &t->stat);	/* now stable */
	return e;
}

/* Children of every thread of a frozen process: it cannot fork any more,
 * so the list is complete. */
static int read_children(pid_t pid, pid_t **kids, size_t *nk)
{
	pid_t *tids = NULL, *k = NULL;
	size_t nt = 0, n = 0, cap = 0;
	int e = proc_tids(pid, &tids, &nt);

	for (size_t i = 0; i < nt && !e; i++) {
		char name[64], *s, *p;
		size_t len;

		snprintf(name, sizeof(name), "task/%d/children", tids[i]);
		e = proc_read(pid, name, &s, &len);
		if (e == -ENOENT || e == -ESRCH) {
			/* a thread that was exiting, not frozen, is gone; its
			 * children went to another thread of the process */
			err_clear();
			e = 0;
			continue;
		}
		if (e)
			break;
		for (p = s; *p;) {
			char *end;
			long c = strtol(p, &end, 10);
			size_t dup = 0;

			if (end == p)
				break;
			p = end;
			/* seen twice if it moved from an exiting thread to
			 * another between the two reads */
			while (dup < n && k[dup] != (pid_t)c)
				dup++;
			if (dup < n)
				continue;
			if (n == cap) {
				pid_t *nk2;

				cap = cap ? cap * 2 : 8;
				nk2 = realloc(k, cap * sizeof(*k));
				if (!nk2) {
					e = -ENOMEM;
					break;
				}
				k = nk2;
			}
			k[n++] = (pid_t)c;
		}
		free(s);
	}
	free(tids);
	if (e) {
		free(k);
		return e;
	}
	*kids = k;
	*nk = n;
	return 0;
}

/* A child listed with its parent frozen is gone by the time it is frozen
 * (reaped by the kernel: its parent ignores SIGCHLD), or its pid is
 * another process's now: not part of the tree. */
static void tree_drop(struct dump_tree *tr, size_t i)
{
	memmove(&tr->t[i], &tr->t[i + 1], (tr->n - i - 1) * sizeof(tr->t[0]));
	memmove(&tr->ppid[i], &tr->ppid[i + 1], (tr->n - i - 1) * sizeof(tr->ppid[0]));
	tr->n--;
	for (size_t k = i; k < tr->n; k++)
		tr->t[k].index = (uint32_t)k;
}

enum release { RELEASE_RUN, RELEASE_KILL, RELEASE_STOP };
static int release_task(struct dump_task *t, enum release how);

static int collect_tree(struct dump_tree *tr, pid_t root)
{
	int e = tree_add(tr, root, 0);

	for (size_t i = 0; i < tr->n && !e; i++) {
		pid_t *kids = NULL;
		size_t nk = 0;

		e = freeze_task(&tr->t[i]);
		if (i > 0 && e == -ESRCH && !tr->t[i].seized) {
			err_clear();
			e = 0;
			tree_drop(tr, i--);
			continue;
		}
		if (!e && i > 0 && tr->t[i].stat.ppid != tr->ppid[i]) {
			/* a pid reused since it was listed */
			e = release_task(&tr->t[i], RELEASE_RUN);
			free(tr->t[i].tids);
			tr->t[i].tids = NULL;
			if (!e)
				tree_drop(tr, i--);
			continue;
		}
		if (e || tr->t[i].zombie)
			continue;
		e = read_children(tr->t[i].pid, &kids, &nk);
		for (size_t k = 0; k < nk && !e; k++)
			e = tree_add(tr, kids[k], tr->t[i].pid);
		free(kids);
	}
	return e;
}

static int find_task(const struct dump_tree *tr, pid_t pid)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].pid == pid)
			return (int)i;
	return -1;
}

/* Sessions and groups the restore can rebuild: each process's session and
 * group is one of the tree's or the root's own (from outside the tree,
 * e.g. the shell's), and a session differs from the parent's only when
 * the process leads it. */
static int check_ids(const struct dump_tree *tr)
{
	const struct proc_stat *root = &tr->t[0].stat;

	for (size_t i = 1; i < tr->n; i++) {
		const struct dump_task *t = &tr->t[i];
		int pi = find_task(tr, tr->ppid[i]);
		pid_t psid = pi >= 0 ? tr->t[pi].stat.session : root->session;

		if (t->zombie)
			continue;
		if (t->stat.session != t->pid && t->stat.session != psid)
			return err_set(-EOPNOTSUPP, "pid %d: session %d is neither its own nor its"
				       " parent's: not supported", t->pid, t->stat.session);
		if (t->stat.pgrp != root->pgrp && find_task(tr, t->stat.pgrp) < 0)
			return err_set(-EOPNOTSUPP, "pid %d: process group %d is led by a process"
				       " outside the tree: not supported (dump a tree that includes"
				       " pid %d)", t->pid, t->stat.pgrp, t->stat.pgrp);
		if (t->stat.session != root->session && find_task(tr, t->stat.session) < 0)
			return err_set(-EOPNOTSUPP, "pid %d: session %d is led by a process"
				       " outside the tree: not supported (dump a tree that includes"
				       " pid %d)", t->pid, t->stat.session, t->stat.session);
	}
	return 0;
}

static int kcmp_file(pid_t p1, pid_t p2, int fd1, int fd2)
{
	return (int)syscall(SYS_kcmp, p1, p2, 0 /* KCMP_FILE */, fd1, fd2);
}

/* Open file descriptions held by several processes (inherited across
 * fork): restored once and handed to each holder, so an offset stays
 * shared. Found by inode, confirmed with kcmp. */
static int fd_access(pid_t pid, int fd, int *known)
{
	uint64_t pos;
	int flags = 0;

	*known = 1;
	if (proc_fdinfo(pid, fd, &pos, &flags, NULL)) {
		err_clear();
		*known = 0;
	}
	return flags & O_ACCMODE;
}

struct fdref {
	int task, fd, acc, acc_known;
	dev_t dev;
	ino_t ino;
	mode_t mode;
	int anon_pipe;
};

/* Two descriptions for sure: the access mode of one never changes, and
 * kcmp costs a syscall per pair */
static int other_access(const struct fdref *x, const struct fdref *y)
{
	return x->acc_known && y->acc_known && x->acc != y->acc;
}

/* An anonymous pipe with a reader and a writer in the tree, in more than
 * one process: rebuilt once by the restorer and its ends handed to each
 * holder. Each distinct open file description of it gets a share id; the
 * first end is the one whose queued bytes are saved. */
static int mark_tree_pipe(struct dump_tree *tr, struct fdref *refs, size_t n, size_t a,
			  int *next_id)
{
	int rd = 0, wr = 0, tasks = 0, last_task = -1, first = 1, e = 0;

	for (size_t b = a; b < n; b++) {
		if (refs[b].ino != refs[a].ino || refs[b].dev != refs[a].dev || !refs[b].anon_pipe)
			continue;
		rd |= refs[b].acc != O_WRONLY;
		wr |= refs[b].acc != O_RDONLY;
		if (refs[b].task != last_task)
			tasks++;
		last_task = refs[b].task;
	}
	if (!rd || !wr || tasks < 2)
		return 0;	/* a pipe to outside, or within one process */
	for (size_t b = a; b < n && !e; b++) {
		struct dump_task *tb = &tr->t[refs[b].task];
		int id = 0;

		if (refs[b].ino != refs[a].ino || refs[b].dev != refs[a].dev ||
		    !refs[b].anon_pipe || dump_share(tb, refs[b].fd))
			continue;
		/* the same description earlier in the list keeps its id */
		for (size_t c = a; c < b && !id; c++) {
			const struct fd_share *sc = dump_share(&tr->t[refs[c].task], refs[c].fd);

			/* the access mode never changes: a different one is
			 * another description, no need to ask the kernel */
			if (sc && sc->tree_pipe && refs[c].ino == refs[b].ino &&
			    !other_access(&refs[c], &refs[b]) && kcmp_file(tr->t[refs[c].task].pid, tb->pid, refs[c].fd, refs[b].fd) == 0)
				id = sc->id;
		}
		e = share_add(tb, refs[b].fd, id ? id : ++*next_id);
		if (!e) {
			tb->shares[tb->nshares - 1].tree_pipe = 1;
			tb->shares[tb->nshares - 1].pipe_data = first;
			first = 0;
		}
	}
	return e;
}

/* kcmp(KCMP_FILE) orders open file descriptions: -1, 0, 1, or 2 when it
 * cannot (an error) */
static int kcmp_order(const struct dump_tree *tr, const struct fdref *x, const struct fdref *y)
{
	int r = kcmp_file(tr->t[x->task].pid, tr->t[y->task].pid, x->fd, y->fd);

	return r == 0 ? 0 : r == 1 ? -1 : r == 2 ? 1 : 2;
}

static int cmp_inode(const void *pa, const void *pb, void *ctx)
{
	const struct fdref *refs = ctx, *a = &refs[*(const size_t *)pa], *b = &refs[*(const size_t *)pb];

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return *(const size_t *)pa < *(const size_t *)pb ? -1 : 1;
}

/* cls[i]: the first ref (in list order) of ref i's open file description,
 * for the refs not shared yet (others: n). Each ref is placed among the
 * descriptions of its inode seen so far, kept in kcmp's order: a binary
 * search, O(log) kcmp calls per ref where comparing with every other ref
 * of the inode cost O(n) (a tree whose processes each open /dev/null).
 * -EAGAIN when kcmp cannot order two of them. */
static int classify_refs(const struct dump_tree *tr, const struct fdref *refs, size_t n,
			 size_t *cls)
{
	size_t *ord = malloc((n + 1) * sizeof(*ord)), *reps = malloc((n + 1) * sizeof(*reps));
	size_t m = 0;
	int e = 0;

	if (!ord || !reps) {
		free(ord);
		free(reps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		cls[i] = n;
		if (!dump_share_id(&tr->t[refs[i].task], refs[i].fd))
			ord[m++] = i;
	}
	qsort_r(ord, m, sizeof(*ord), cmp_inode, (void *)refs);
	for (size_t s = 0, end; s < m && !e; s = end) {
		size_t nr = 0;

		for (end = s + 1; end < m && refs[ord[end]].dev == refs[ord[s]].dev &&
		     refs[ord[end]].ino == refs[ord[s]].ino; end++)
			;
		for (size_t k = s; k < end && !e; k++) {
			size_t i = ord[k], lo = 0, hi = nr;

			while (lo < hi && cls[i] == n) {
				size_t mid = (lo + hi) / 2;
				int c = kcmp_order(tr, &refs[i], &refs[reps[mid]]);

				if (c == 2) {
					e = -EAGAIN;
					break;
				}
				if (c == 0)
					cls[i] = reps[mid];
				else if (c < 0)
					hi = mid;
				else
					lo = mid + 1;
			}
			if (!e && cls[i] == n) {	/* a description not seen yet */
				memmove(&reps[lo + 1], &reps[lo], (nr - lo) * sizeof(*reps));
				reps[lo] = i;
				nr++;
				cls[i] = i;
			}
		}
	}
	free(ord);
	free(reps);
	return e;
}

/* Open file descriptions held by several processes, other than tree pipes:
 * the first holder (in list order) and the holders in other processes get
 * one share id, in list order of the first holders. Without an order from
 * kcmp, every pair of refs of an inode is compared. */
static int share_by_description(struct dump_tree *tr, const struct fdref *refs, size_t n,
				int *next_id)
{
	size_t *cls = malloc((n + 1) * sizeof(*cls));
	int e = cls ? classify_refs(tr, refs, n, cls) : -ENOMEM;

	if (e == -EAGAIN) {
		e = 0;
		for (size_t i = 0; i < n; i++)
			cls[i] = n;
	}
	for (size_t a = 0; a < n && !e; a++) {
		struct dump_task *ta = &tr->t[refs[a].task];

		if (dump_share_id(ta, refs[a].fd) || (cls[a] != n && cls[a] != a))
			continue;
		for (size_t b = a + 1; b < n && !e; b++) {
			struct dump_task *tb = &tr->t[refs[b].task];

			if (refs[b].task == refs[a].task || refs[b].dev != refs[a].dev ||
			    refs[b].ino != refs[a].ino || other_access(&refs[a], &refs[b]) ||
			    dump_share_id(tb, refs[b].fd))
				continue;
			if (cls[a] != n ? cls[b] != a :
			    kcmp_file(ta->pid, tb->pid, refs[a].fd, refs[b].fd) != 0)
				continue;
			if (!dump_share_id(ta, refs[a].fd))
				e = share_add(ta, refs[a].fd, ++*next_id);
			if (!e)
				e = share_add(tb, refs[b].fd, *next_id);
		}
	}
	free(cls);
	return e;
}

struct fdref_scan { struct dump_tree *tr; size_t task; struct fdref *refs; size_t n, cap; };

static int note_fdref(int fd, const char *path, const struct stat *st, void *arg)
{
	struct fdref_scan *s = arg;
	pid_t pid = s->tr->t[s->task].pid;
	struct fdref *r;
	char link[64];
	ssize_t ln = readlink(path, link, sizeof(link) - 1);

	link[ln > 0 ? ln : 0] = 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;

		r = realloc(s->refs, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->refs = r;
		s->cap = cap;
	}
	r = &s->refs[s->n++];
	*r = (struct fdref){ (int)s->task, fd, 0, 0, st->st_dev, st->st_ino, st->st_mode,
			     S_ISFIFO(st->st_mode) && !strncmp(link, "pipe:", 5) };
	r->acc = fd_access(pid, fd, &r->acc_known);
	return 0;
}

/* Open file descriptions held by several processes (inherited across
 * fork): restored once and handed to each holder, so an offset stays
 * shared. Found by inode, confirmed with kcmp. */
static int find_shared_files(struct dump_tree *tr)
{
	struct fdref_scan sc = { .tr = tr };
	struct fdref *refs;
	size_t n;
	int e = 0, next_id = 0;

	if (tr->n < 2)
		return 0;
	for (size_t i = 0; i < tr->n && !e; i++) {
		sc.task = i;
		if (!tr->t[i].zombie)
			e = proc_each_fd(tr->t[i].pid, note_fdref, &sc);
	}
	refs = sc.refs;
	n = sc.n;
	for (size_t a = 0; a < n && !e; a++)
		if (refs[a].anon_pipe && !dump_share(&tr->t[refs[a].task], refs[a].fd))
			e = mark_tree_pipe(tr, refs, n, a, &next_id);
	/* unix sockets connected between processes: socktree.c */
	if (!e)
		e = socktree_mark(tr->t, tr->n, &next_id);
	if (!e)
		e = share_by_description(tr, refs, n, &next_id);
	free(refs);
	return e;
}

int share_add(struct dump_task *t, int fd, int id)
{
	struct fd_share *ns = realloc(t->shares, (t->nshares + 1) * sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	t->shares = ns;
	t->shares[t->nshares++] = (struct fd_share){ .fd = fd, .id = id };
	return 0;
}

const struct fd_share *dump_share(const struct dump_task *t, int fd)
{
	for (size_t i = 0; i < t->nshares; i++)
		if (t->shares[i].fd == fd)
			return &t->shares[i];
	return NULL;
}

uint32_t dump_share_id(const struct dump_task *t, int fd)
{
	for (size_t i = 0; i < t->nshares; i++)
		if (t->shares[i].fd == fd)
			return (uint32_t)t->shares[i].id;
	return 0;
}

/* Everything about one frozen process, into the image and swapfile */
static int dump_one(struct dump_task *t)
{
	int e = proc_status(t->pid, 0, &t->status);

	/* t->tids: frozen by threads_freeze */
	if (!e)
		e = proc_maps(t->pid, &t->vmas, &t->nvmas);
	if (!e) {
		/* the vdso from the maps just read: no second read of them */
		size_t v = 0;

		while (v < t->nvmas && strcmp(t->vmas[v].path, "[vdso]"))
			v++;
		e = v < t->nvmas ? inj_init_vdso(&t->inj, t->pid, t->vmas[v].start, t->vmas[v].end)
				 : inj_init(&t->inj, t->pid);
		/* none: injected state depends on cryo staying alive */
		if (!e)
			inj_recovery_find(&t->inj, t->vmas, t->nvmas);
	}
	if (e)
		return e;
	inj_hint_signals(&t->inj, t->status.sig_pnd | t->status.shd_pnd | t->status.sig_ign);
	scratch_setup(t);
	/* cheap refusals before the expensive pages */
	e = files_dump(t);
	if (!e)
		e = signals_dump(t);
	if (!e)
		e = core_dump(t);
	if (!e)
		e = threads_dump(t);
	if (!e)
		e = mm_dump(t);
	return e;
}

static int write_tasks(struct dump_tree *tr, struct img_writer *w)
{
	struct lx_task *rec = calloc(tr->n, sizeof(*rec));
	int e;

	if (!rec)
		return -ENOMEM;
	for (size_t i = 0; i < tr->n; i++) {
		const struct dump_task *t = &tr->t[i];

		rec[i].pid = t->pid;
		rec[i].ppid = tr->ppid[i];
		rec[i].pgid = t->stat.pgrp;
		rec[i].sid = t->stat.session;
		rec[i].nr_threads = (uint32_t)t->ntids;
		rec[i].flags = (i == 0 ? LX_TASK_ROOT : 0) | (t->zombie ? LX_TASK_ZOMBIE : 0);
		rec[i].exit_signal = t->stat.exit_signal;
		rec[i].exit_status = t->zombie ? (uint32_t)t->stat.exit_code : 0;
		if (t->zombie) {
			/* a zombie's only other state: its name, as its parent's
			 * ps shows it (a per-task string table of one string) */
			char *comm = NULL;
			size_t len = 0;

			if (!proc_read(t->pid, "comm", &comm, &len)) {
				comm[strcspn(comm, "\n")] = 0;
				img_str(w, (uint32_t)i, comm);
			}
			err_clear();
			free(comm);
		}
	}
	e = img_add(w, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*rec), rec, tr->n * sizeof(*rec));
	free(rec);
	return e;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Leave a task exactly as it was (or kill it, or stopped: a SIGSTOP
 * pending when the tracer lets go makes it a group stop, as if the user
 * had sent it) */
static int release_task(struct dump_task *t, enum release how)
{
	int kill_it = how == RELEASE_KILL, e = 0, e2;

	if (!t->seized)
		return 0;
	/* both, whatever the first says: finishing also frees the injector */
	e2 = scratch_restore(t);
	e = inj_finish(&t->inj);
	if (!e2)
		e2 = e;
	e = 0;
	if (kill_it)
		kill(t->pid, SIGKILL);
	else if (how == RELEASE_STOP && !t->zombie)
		kill(t->pid, SIGSTOP);
	if (threads_unfreeze(t) && !kill_it)
		e = -ESRCH;
	if (pt_detach(t->pid) && !kill_it)
		e = -ESRCH;
	t->seized = 0;	/* released: a second call does nothing */
	return e2 ? e2 : e;
}

/* children first, so a killed parent never sees a child change */
static int release_tree(struct dump_tree *tr, enum release how)
{
	int e = 0;

	for (size_t i = tr->n; i-- > 0;) {
		int r = release_task(&tr->t[i], how);

		if (r && !e)
			e = r;
	}
	return e;
}


static int dump_tree(struct dump_tree *tr, const struct dump_opts *o, const char *swap_path,
		     struct swapfile *pre_sw, double *released_at)
{
	struct img_writer *w = NULL;
	struct swapfile *sw = NULL;
	struct lx_swap_ref ref;
	struct lx_options opt = { 0 };
	int e;

	tcp_dump_enable(o->tcp_established);
	if (o->tcp_established)
		opt.flags |= LX_OPT_TCP_ESTABLISHED;
	e = check_ids(tr);
	if (!e)		/* the clocks at the freeze, as the tree saw them */
		e = timens_dump(tr->t, tr->n, &opt);
	if (!e)
		e = find_shared_files(tr);
	if (!e)
		e = leaks_check_files(tr->t, tr->n, o->allow_leak);
	if (!e)
		e = img_create(&w, o->image);
	if (!e && pre_sw)
		sw = pre_sw;	/* --pre-dump: the pages copied before hold its lock */
	else if (!e)
		e = swap_open(&sw, swap_path, 1);
	if (!e)
		e = write_tasks(tr, w);
	if (!e)
		e = tty_dump_tree(tr->t, tr->n, o->shell_job, w, &opt);
	if (!e)		/* its refusals before any page is copied */
		e = ipc_dump(tr->t, tr->n, o->allow_leak, w);
	if (!e)
		e = shanon_check_memfds(tr->t, tr->n);
	if (!e)
		e = shanon_dump_prepare(tr->t, tr->n, o->allow_leak);
	for (size_t i = 0; i < tr->n && !e; i++) {
		struct dump_task *t = &tr->t[i];

		if (t->zombie)
			continue;
		t->w = w;
		t->sw = sw;
		t->allow_leak = o->allow_leak;
		e = dump_one(t);
	}
	if (!e)
		e = shanon_dump_write(w);
	shanon_dump_free();
	if (!e) {
		opt.allow_leak = o->allow_leak;
		e = options_write(w, &opt);
	}
	/* Everything is read: a tree that keeps running may run on while the
	 * pages and image reach the disk (a failure there still leaves it
	 * unharmed, and no image). With --kill it must not run past the
	 * dump: it dies after the commit. */
	if (!e && !o->kill_after && !o->leave_stopped) {
		tcp_dump_end(0);	/* out of repair mode before it runs */
		e = release_tree(tr, RELEASE_RUN);
		*released_at = mono_ms();
	}
	if (!e)
		e = swap_commit(sw);
	if (!e) {
		memset(&ref, 0, sizeof(ref));
		memcpy(ref.uuid, swap_uuid(sw), sizeof(ref.uuid));
		ref.snapshot = swap_next_snapshot(sw);
		ref.slots_end = swap_slots_end(sw);
		ref.path_off = img_str(w, LX_TASK_GLOBAL, swap_ref_path(o->image, swap_path));
		e = img_add(w, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(ref), &ref, sizeof(ref));
	}
	if (!e) {
		e = img_commit(w);
		w = NULL;
	}
	if (!e && o->after_commit)
		e = o->after_commit(o);
	if (w)
		img_abort(w);
	if (sw && sw != pre_sw)
		swap_close(sw);
	return e;
}

/* A process of the tree killed (or exited through a thread cryo had not
 * frozen yet) under a dump makes it fail where cryo next touches it, with
 * an error that only says so indirectly (an I/O error reading its
 * pagemap, an empty maps file): name the death instead. cryo, its tracer,
 * is told of it first; a process still on its way out (a SIGKILL pending,
 * PF_EXITING) is given a moment to get there. */
#define PF_EXITING_FLAG 0x4	/* PF_EXITING, include/linux/sched.h */

static int dying(pid_t pid, const struct proc_stat *st)
{
	struct proc_status ss;
	uint64_t kill_bit = 1ull << (SIGKILL - 1);

	if (st->flags & PF_EXITING_FLAG)
		return 1;
	if (proc_status(pid, 0, &ss))	/* its error does not replace e's */
		return 1;	/* gone since */
	return !!((ss.sig_pnd | ss.shd_pnd) & kill_bit);
}

static int explain_death(struct dump_tree *tr, int e)
{
	for (size_t i = 0; i < tr->n; i++) {
		struct dump_task *t = &tr->t[i];

		for (int tries = 0; t->seized && tries < 200; tries++) {
			struct proc_stat st;
			siginfo_t si;
			int gone;

			memset(&si, 0, sizeof(si));
			/* WNOWAIT: `cryo run` dumps its own child and then
			 * waits for its exit status itself */
			if (waitid(P_PID, (id_t)t->pid, &si,
				   WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 && si.si_pid == t->pid) {
				t->seized = 0;	/* no tracee any more */
				inj_abandon(&t->inj);
				err_clear();
				if (si.si_code == CLD_EXITED)
					return err_set(-ESRCH, "pid %d exited (status %d) while cryo"
						       " dumped it; no image written", t->pid,
						       si.si_status);
				return err_set(-ESRCH, "pid %d was killed by signal %d (%s) while"
					       " cryo dumped it; no image written", t->pid,
					       si.si_status, strsignal(si.si_status));
			}
			/* an error of proc_stat does not replace e's message */
			gone = proc_stat(t->pid, 0, &st) || st.state == 'Z' || st.state == 'X';
			if (gone && tries > 0) {
				t->seized = 0;
				inj_abandon(&t->inj);
				err_clear();
				return err_set(-ESRCH, "pid %d exited while cryo dumped it; no image"
					       " written", t->pid);
			}
			if (!gone && !dying(t->pid, &st))
				break;	/* alive: e is the reason */
			usleep(5000);
		}
	}
	return e;
}

int cryo_dump(pid_t pid, const struct dump_opts *o)
{
	struct dump_tree tr = { 0 };
	struct dirty_state *ds = NULL;
	struct swapfile *pre_sw = NULL;
	double frozen_at, released_at = 0;
	char *swap_path = o->swapfile ? strdup(o->swapfile) : default_swapfile(o->image, pid);
	uint64_t scanned = 0, written = 0, zero = 0;
	sigset_t held, old_mask;
	int e, e2 = 0;

	if (!swap_path)
		return -ENOMEM;
	if (pid == getpid()) {
		free(swap_path);
		return err_set(-EINVAL, "pid %d is cryo itself", pid);
	}
	if (kill(pid, 0) < 0 && errno == ESRCH) {
		free(swap_path);
		return err_set(-ESRCH, "pid %d: no such process", pid);
	}
	/* A cryo stopped by SIGINT/SIGTERM/SIGHUP/SIGQUIT while a task runs an
	 * injected syscall would leave it with cryo's registers: hold those
	 * signals until every task is put back (the page copy polls them and
	 * stops early), then let them act. SIGKILL cannot be held: the
	 * injected calls are kept few and short, before the copy. */
	sigemptyset(&held);
	sigaddset(&held, SIGINT);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGHUP);
	sigaddset(&held, SIGQUIT);
	sigprocmask(SIG_BLOCK, &held, &old_mask);
	e = 0;
	if (o->pre_dump) {
		/* copy while the tree runs (dirty.c), then freeze as usual */
		e = swap_open(&pre_sw, swap_path, 1);
		if (!e)
			e = dirty_predump(pid, pre_sw, o->pre_dump, &ds);
	}
	frozen_at = mono_ms();
	if (!e)
		e = collect_tree(&tr, pid);
	if (!e && tr.t[0].zombie)
		e = err_set(-ESRCH, "pid %d has exited (a zombie): nothing to dump", pid);
	if (!e && ds)
		e = dirty_freeze(ds, tr.t, tr.n);
	if (!e)
		e = dump_tree(&tr, o, swap_path, pre_sw, &released_at);
	if (e)
		e = explain_death(&tr, e);
	/* a failed dump leaves the tree running, whatever was asked */
	tcp_dump_end(!e && o->kill_after);
	e2 = release_tree(&tr, e ? RELEASE_RUN : o->kill_after ? RELEASE_KILL :
			       o->leave_stopped ? RELEASE_STOP : RELEASE_RUN);
	frozen_at = (released_at ? released_at : mono_ms()) - frozen_at;
	for (size_t i = tr.n; i-- > 0;) {
		struct dump_task *t = &tr.t[i];

		scanned += t->pages_scanned;
		written += t->pages_written;
		zero += t->pages_zero;
		proc_maps_free(t->vmas, t->nvmas);
		free(t->tids);
		free(t->shares);
	}
	/* after the release: closing the uffds never runs into a stopped task */
	dirty_end(ds, !e, frozen_at);
	if (pre_sw)
		swap_close(pre_sw);
	if (!e && e2 && !o->kill_after)
		e = e2;
	if (!e)
		info("dumped %zu processes from pid %d: %lu pages scanned, %lu written, %lu zero;"
		     " frozen for %.1f ms", tr.n, pid, (unsigned long)scanned,
		     (unsigned long)written, (unsigned long)zero, frozen_at);
	free(tr.t);
	free(tr.ppid);
	free(swap_path);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);	/* a held signal acts now */
	return e;
}

/* Polled by long loops of a dump: a held SIGINT/SIGTERM/... arrived */
int dump_interrupted(void)
{
	sigset_t pending;

	if (sigpending(&pending) < 0)
		return 0;
	if (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) ||
	    sigismember(&pending, SIGHUP) || sigismember(&pending, SIGQUIT))
		return err_set(-EINTR, "dump interrupted by a signal; the processes were left as"
			       " they were");
	return 0;
}
