/* Restore-side batching (see restbatch.h). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "err.h"
#include "restbatch.h"

#define BATCH_AREA	(16 * 1024)	/* at the top of the scratch area */
#define MAX_DEFER	96
#define MIN_BATCH	3		/* fewer calls: one by one is as cheap */

static struct {
	struct restore_task *t;
	size_t n;
	struct deferred {
		char what[120];
		long nr, want;
		uint64_t a[6];
	} q[MAX_DEFER];
} dq;

/* The scratch area of the task being restored is executable (pid, 0 none) */
static pid_t exec_pid;

int restore_map_scratch(struct restore_task *t)
{
	long ret;
	int e;

	exec_pid = 0;
	dq.n = 0;	/* whatever a failed restore left queued */
	if (t->scratch_len >= 2 * BATCH_AREA) {
		e = inj_syscall(&t->inj, SYS_mmap, t->scratch, t->scratch_len,
				PROT_READ | PROT_WRITE | PROT_EXEC,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0,
				&ret);
		if (e)
			return e;
		if ((uint64_t)ret == t->scratch) {
			exec_pid = t->pid;
			return 0;
		}
		/* refused W+X (MDWE, an LSM): a plain scratch area, no batches */
		if (ret >= 0 || ret != -EACCES)
			return err_sys(ret < 0 ? (int)ret : -EEXIST, "pid %d: map scratch area",
				       t->pid);
	}
	return restore_sys(t, "map scratch area", SYS_mmap, t->scratch, t->scratch_len,
			   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			   (uint64_t)-1, 0, NULL);
}

int restore_batch_begin(struct restore_task *t, struct injector *inj, struct inj_batch *b)
{
	if (exec_pid != t->pid || !t->scratch)
		return -EAGAIN;
	return batch_begin_at(b, inj, t->scratch + t->scratch_len - BATCH_AREA, BATCH_AREA);
}


int restore_defer(struct restore_task *t, const char *what, long nr, uint64_t a1, uint64_t a2,
		  uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long want)
{
	struct deferred *d;
	int e;

	if (dq.n && (dq.t != t || dq.n == MAX_DEFER)) {
		e = restore_flush(dq.t);
		if (e)
			return e;
	}
	dq.t = t;
	d = &dq.q[dq.n++];
	snprintf(d->what, sizeof(d->what), "%s", what);
	d->nr = nr;
	d->want = want;
	d->a[0] = a1;
	d->a[1] = a2;
	d->a[2] = a3;
	d->a[3] = a4;
	d->a[4] = a5;
	d->a[5] = a6;
	return 0;
}

static int check_one(struct restore_task *t, const struct deferred *d, long ret)
{
	if (ret < 0 && ret > -4096)
		return err_sys((int)ret, "pid %d: %s", t->pid, d->what);
	if (d->want >= 0 && ret != d->want)
		return err_set(-EFAULT, "pid %d: %s: result %#lx, want %#lx", t->pid, d->what,
			       (unsigned long)ret, (unsigned long)d->want);
	return 0;
}

/* Enough calls to pay for a batch, and none that the int3 ending it
 * would undo (batch_add refuses those) */
static int batchable(size_t n)
{
	if (n < MIN_BATCH)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (inj_touches_trap(dq.q[i].nr, dq.q[i].a[0], dq.q[i].a[1], dq.q[i].a[2]))
			return 0;
	return 1;
}

int restore_flush(struct restore_task *t)
{
	struct inj_batch b;
	size_t n = dq.n;
	int e = -EAGAIN, e2;

	if (!n || dq.t != t)
		return 0;
	dq.n = 0;
	if (batchable(n))
		e = restore_batch_begin(t, &t->inj, &b);
	if (e == -EAGAIN) {
		for (size_t i = 0; i < n; i++) {
			long ret;

			e = inj_syscall(&t->inj, dq.q[i].nr, dq.q[i].a[0], dq.q[i].a[1],
					dq.q[i].a[2], dq.q[i].a[3], dq.q[i].a[4], dq.q[i].a[5], &ret);
			if (!e)
				e = check_one(t, &dq.q[i], ret);
			if (e)
				return e;
		}
		return 0;
	}
	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++)
		e = batch_add(&b, dq.q[i].nr, dq.q[i].a[0], dq.q[i].a[1], dq.q[i].a[2],
			      dq.q[i].a[3], dq.q[i].a[4], dq.q[i].a[5]);
	if (!e)
		e = batch_run(&b);
	for (size_t i = 0; i < n && !e; i++)
		e = check_one(t, &dq.q[i], b.ret[i]);
	e2 = batch_end(&b);
	return e ? e : e2;
}
