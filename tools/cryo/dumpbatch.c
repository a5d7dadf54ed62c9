/* Dump-side batching (see dumpbatch.h). */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "dumpbatch.h"
#include "err.h"
#include "injbatch.h"

#define MAX_CACHED 80
#define OUT_MAX 32

static struct {
	pid_t pid;
	size_t n;
	struct cached {
		long nr, ret;
		uint64_t a[4];		/* the out argument is 0 here */
		int out_arg;
		uint8_t out[OUT_MAX];
		size_t out_len;
	} c[MAX_CACHED];
} dc;

/* What core.c, mm.c, signals.c and threads.c ask: keep in step with them.
 * A call missing here still works, one round trip of its own. */
static size_t plan(struct cached *c)
{
	size_t n = 0;

	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP)
			c[n++] = (struct cached){ .nr = SYS_rt_sigaction, .a = { s, 0, 0, 8 },
						  .out_arg = 3, .out_len = 32 };
	for (int w = 0; w < 3; w++)
		c[n++] = (struct cached){ .nr = SYS_getitimer, .a = { w }, .out_arg = 2,
					  .out_len = sizeof(struct itimerval) };
	c[n++] = (struct cached){ .nr = SYS_prctl, .a = { PR_GET_PDEATHSIG }, .out_arg = 2,
				  .out_len = sizeof(int) };
	c[n++] = (struct cached){ .nr = SYS_prctl, .a = { PR_GET_CHILD_SUBREAPER }, .out_arg = 2,
				  .out_len = sizeof(int) };
	c[n++] = (struct cached){ .nr = SYS_prctl, .a = { PR_GET_DUMPABLE } };
	c[n++] = (struct cached){ .nr = SYS_prctl, .a = { PR_GET_THP_DISABLE } };
	c[n++] = (struct cached){ .nr = SYS_brk };
	c[n++] = (struct cached){ .nr = SYS_prctl, .a = { PR_GET_TID_ADDRESS }, .out_arg = 2,
				  .out_len = sizeof(uint64_t) };
	c[n++] = (struct cached){ .nr = SYS_sigaltstack, .out_arg = 2, .out_len = sizeof(stack_t) };
	return n;
}

int dump_prefetch(struct dump_task *t)
{
	struct inj_batch b;
	void *loc[MAX_CACHED];
	size_t n = plan(dc.c);
	int e, e2;

	dc.n = 0;
	dc.pid = 0;
	/* a filter may kill the task for the batch page's mmap (W+X): such a
	 * dump is refused anyway (core.c), with no more calls than before */
	if (t->status.seccomp)
		return 0;
	e = batch_begin(&b, &t->inj);
	if (e == -EAGAIN) {
		err_clear();
		return 0;
	}
	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++) {
		uint64_t a[6] = { dc.c[i].a[0], dc.c[i].a[1], dc.c[i].a[2], dc.c[i].a[3] };

		loc[i] = NULL;
		if (dc.c[i].out_arg) {
			a[dc.c[i].out_arg - 1] = batch_mem(&b, dc.c[i].out_len, &loc[i]);
			if (!a[dc.c[i].out_arg - 1])
				e = -ENOSPC;
		}
		if (!e)
			e = batch_add(&b, dc.c[i].nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
	if (!e)
		e = batch_run(&b);
	for (size_t i = 0; i < n && !e; i++) {
		dc.c[i].ret = b.ret[i];
		if (loc[i])
			memcpy(dc.c[i].out, loc[i], dc.c[i].out_len);
	}
	e2 = batch_end(&b);
	if (!e && !e2) {
		dc.n = n;
		dc.pid = t->pid;
	}
	return e ? e : e2;
}

int dump_cached(struct dump_task *t, long nr, const uint64_t a[4], int out_arg, void *out,
		size_t out_len, long *ret)
{
	if (dc.pid != t->pid)
		return 0;
	for (size_t i = 0; i < dc.n; i++) {
		struct cached *c = &dc.c[i];
		int same = c->nr == nr && c->out_arg == out_arg && out_len <= c->out_len;

		for (int k = 0; k < 4 && same; k++)
			same = k == out_arg - 1 || c->a[k] == a[k];
		if (!same)
			continue;
		*ret = c->ret;
		if (out_arg && !(c->ret < 0 && c->ret > -4096))
			memcpy(out, c->out, out_len);
		return 1;
	}
	return 0;
}

int dump_inject(struct dump_task *t, long nr, uint64_t a1, long *ret)
{
	uint64_t a[4] = { a1 };

	if (dump_cached(t, nr, a, 0, NULL, 0, ret))
		return 0;
	return inj_syscall(&t->inj, nr, a1, 0, 0, 0, 0, 0, ret);
}

void dump_cache_drop(struct dump_task *t)
{
	if (dc.pid == t->pid) {
		dc.pid = 0;
		dc.n = 0;
	}
}
