/* Signal dispositions, interval timers (alarm included) and pending
 * signals. Pending signals are read with their full siginfo through
 * PTRACE_PEEKSIGINFO, per thread and from the shared queue, and re-queued
 * at restore by the restored task itself, in queue order: the kernel lets
 * a task queue any si_code (SI_USER, SI_TKILL, kernel codes) only to
 * itself, so si_code, si_pid, si_uid and si_value survive. POSIX timers
 * are in timers.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "cryo.h"
#include "err.h"
#include "dumpbatch.h"

#define NSIG_KERNEL 64

static int first_sig(uint64_t set)
{
	for (int s = 1; s <= NSIG_KERNEL; s++)
		if (set & (1ull << (s - 1)))
			return s;
	return 0;
}

/* One queue (a thread's, or the shared one with PTRACE_PEEKSIGINFO_SHARED)
 * appended to recs; every signal set in "pending" must show up in it, or
 * the kernel lost its siginfo (queue over RLIMIT_SIGPENDING) and a
 * re-queue would differ. */
static int peek_queue(struct dump_task *t, pid_t tid, int shared, uint64_t pending,
		      struct lx_siginfo **recs, size_t *n)
{
	struct {
		uint64_t off;
		uint32_t flags;
		int32_t nr;
	} args = { 0, shared ? PTRACE_PEEKSIGINFO_SHARED : 0, 16 };
	siginfo_t si[16];
	uint64_t found = 0;

	for (;;) {
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &args, si);

		if (got < 0)
			return err_sys(-errno, "pid %d tid %d: PTRACE_PEEKSIGINFO", t->pid, tid);
		if (got == 0)
			break;
		for (long i = 0; i < got; i++) {
			struct lx_siginfo *nr = realloc(*recs, (*n + 1) * sizeof(**recs));
			int sig = si[i].si_signo;

			if (!nr)
				return -ENOMEM;
			*recs = nr;
			if (sig < 1 || sig > NSIG_KERNEL || sig == SIGKILL || sig == SIGSTOP)
				return err_set(-EOPNOTSUPP, "pid %d tid %d: pending signal %d: cannot"
					       " be re-queued", t->pid, tid, sig);
			memset(&nr[*n], 0, sizeof(nr[*n]));
			nr[*n].tid = shared ? 0 : (uint32_t)tid;
			memcpy(nr[*n].info, &si[i], sizeof(nr[*n].info));
			found |= 1ull << (sig - 1);
			(*n)++;
		}
		args.off += (uint64_t)got;
	}
	if (pending & ~found) {
		int sig = first_sig(pending & ~found);

		return err_set(-EOPNOTSUPP, "pid %d tid %d: pending signal %d (%s): queued"
			       " without its siginfo, cannot be re-queued faithfully", t->pid,
			       tid, sig, strsignal(sig));
	}
	return 0;
}

static int dump_pending(struct dump_task *t)
{
	struct lx_siginfo *recs = NULL;
	size_t n = 0;
	int e = peek_queue(t, t->pid, 1, t->status.shd_pnd, &recs, &n);

	for (size_t i = 0; i < t->ntids && !e; i++) {
		struct proc_status st;

		e = proc_status(t->pid, t->tids[i], &st);
		if (!e)
			e = peek_queue(t, t->tids[i], 0, st.sig_pnd, &recs, &n);
	}
	if (!e && n)
		e = img_add(t->w, LX_SEC_SIGINFO, t->index, sizeof(*recs), recs,
			    n * sizeof(*recs));
	free(recs);
	return e;
}

int signals_dump(struct dump_task *t)
{
	struct lx_sigaction sa[NSIG_KERNEL];
	struct lx_itimer it[3];
	long ret;
	int e;

	e = dump_pending(t);
	if (!e)
		e = timers_dump(t);
	/* the injected reads below and in core.c, threads.c and mm.c, in one
	 * batch (dumpbatch.c); they come from its results */
	if (!e)
		e = dump_prefetch(t);
	if (e)
		return e;

	memset(sa, 0, sizeof(sa));
	for (int s = 1; s <= NSIG_KERNEL; s++) {
		/* every signal, not only caught and ignored ones: SIG_DFL may
		 * carry flags and a mask too */
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		e = dump_inject_out(t, SYS_rt_sigaction, s, 0, 0, 8, 3, &sa[s - 1],
				    sizeof(sa[s - 1]), &ret);
		if (!e && ret < 0)
			e = err_sys((int)ret, "pid %d: read action of signal %d", t->pid, s);
		if (e)
			return e;
	}
	e = img_add(t->w, LX_SEC_SIGACTS, t->index, sizeof(sa[0]), sa, sizeof(sa));
	if (e)
		return e;

	for (int which = 0; which < 3; which++) {
		struct itimerval v;

		e = dump_inject_out(t, SYS_getitimer, which, 0, 0, 0, 2, &v, sizeof(v), &ret);
		if (!e && ret < 0)
			e = err_sys((int)ret, "pid %d: read interval timer %d", t->pid, which);
		if (e)
			return e;
		it[which].interval_us = (uint64_t)v.it_interval.tv_sec * 1000000 +
					v.it_interval.tv_usec;
		it[which].value_us = (uint64_t)v.it_value.tv_sec * 1000000 + v.it_value.tv_usec;
	}
	return img_add(t->w, LX_SEC_ITIMERS, t->index, sizeof(it[0]), it, sizeof(it));
}

int signals_restore(struct restore_task *t)
{
	struct lx_sigaction *sa;
	struct lx_itimer *it;
	size_t n, ni;
	uint64_t a;
	int e = img_records(t->im, LX_SEC_SIGACTS, t->index, sizeof(*sa), sizeof(*sa),
			    (void **)&sa, &n);

	if (e)
		return err_ctx(e, "image: task %u: sigacts", t->index);
	for (size_t i = 0; i < n && i < NSIG_KERNEL && !e; i++) {
		int s = (int)i + 1;

		if (!sa[i].handler && !sa[i].flags && !sa[i].mask)
			continue;	/* SIG_DFL, as after exec */
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		e = restore_put(t, 0, &sa[i], sizeof(sa[i]), &a);
		if (!e)
			e = restore_sys(t, "rt_sigaction", SYS_rt_sigaction, s, a, 0, 8, 0, 0, NULL);
		if (e)
			e = err_ctx(e, "signal %d", s);
	}
	free(sa);
	if (e)
		return e;
	e = img_records(t->im, LX_SEC_ITIMERS, t->index, sizeof(*it), sizeof(*it), (void **)&it, &ni);
	if (e)
		return err_ctx(e, "image: task %u: itimers", t->index);
	for (size_t w = 0; w < ni && w < 3 && !e; w++) {
		struct itimerval v;

		if (!it[w].value_us && !it[w].interval_us)
			continue;
		/* Expired, its signal not yet dequeued: the kernel re-arms a
		 * periodic ITIMER_REAL only when SIGALRM is dequeued, and until
		 * then getitimer() shows value 0. setitimer() cannot recreate
		 * that (value 0 disarms and drops the interval): let it expire
		 * again at once; its SIGALRM merges with the pending one and
		 * the re-arm follows as it would have. */
		if (!it[w].value_us)
			it[w].value_us = 1;
		v.it_interval.tv_sec = it[w].interval_us / 1000000;
		v.it_interval.tv_usec = it[w].interval_us % 1000000;
		v.it_value.tv_sec = it[w].value_us / 1000000;
		v.it_value.tv_usec = it[w].value_us % 1000000;
		e = restore_put(t, 0, &v, sizeof(v), &a);
		if (!e)
			e = restore_sys(t, "setitimer", SYS_setitimer, w, a, 0, 0, 0, 0, NULL);
	}
	free(it);
	return e;
}

int signals_restore_pending(struct restore_task *t, struct injector *inj, pid_t tid)
{
	struct lx_siginfo *q;
	size_t n;
	uint64_t a;
	int e = img_records(t->im, LX_SEC_SIGINFO, t->index, sizeof(*q), sizeof(*q),
			    (void **)&q, &n);

	if (e == -ENOENT) {
		err_clear();
		return 0;
	}
	if (e)
		return err_ctx(e, "image: task %u: siginfo", t->index);
	for (size_t i = 0; i < n && !e; i++) {
		siginfo_t si;

		if ((pid_t)q[i].tid != tid)
			continue;
		memcpy(&si, q[i].info, sizeof(si));
		if (si.si_signo < 1 || si.si_signo > NSIG_KERNEL) {
			e = err_set(-EINVAL, "image: task %u: pending signal %d", t->index,
				    si.si_signo);
			break;
		}
		e = restore_put(t, 0, &si, sizeof(si), &a);
		/* queued by the task to itself: every si_code is allowed then */
		if (!e && tid)
			e = thread_sys(t, inj, "queue pending signal", SYS_rt_tgsigqueueinfo,
				       t->pid, inj->tid, si.si_signo, a, NULL);
		else if (!e)
			e = thread_sys(t, inj, "queue pending signal", SYS_rt_sigqueueinfo,
				       t->pid, si.si_signo, a, 0, NULL);
		if (e)
			e = err_ctx(e, "signal %d", si.si_signo);
	}
	free(q);
	return e;
}
