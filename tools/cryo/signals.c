/* Signal dispositions and interval timers. Pending signals and POSIX
 * timers are refused by name until they are restored. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "cryo.h"
#include "err.h"

#define NSIG_KERNEL 64

static int first_sig(uint64_t set)
{
	for (int s = 1; s <= NSIG_KERNEL; s++)
		if (set & (1ull << (s - 1)))
			return s;
	return 0;
}

int signals_dump(struct dump_task *t)
{
	struct lx_sigaction sa[NSIG_KERNEL];
	struct lx_itimer it[3];
	uint64_t interesting = t->status.sig_cgt | t->status.sig_ign;
	char *timers;
	size_t len;
	long ret;
	int e;

	if (t->status.shd_pnd)
		return err_set(-EOPNOTSUPP, "pid %d: pending signal %d (%s): pending signals are"
			       " not supported yet", t->pid, first_sig(t->status.shd_pnd),
			       strsignal(first_sig(t->status.shd_pnd)));
	e = proc_read(t->pid, "timers", &timers, &len);
	if (e)
		return e;
	if (len) {
		int id = -1;

		sscanf(timers, "ID: %d", &id);
		free(timers);
		return err_set(-EOPNOTSUPP, "pid %d: POSIX timer %d: POSIX timers are not"
			       " supported yet", t->pid, id);
	}
	free(timers);

	memset(sa, 0, sizeof(sa));
	for (int s = 1; s <= NSIG_KERNEL; s++) {
		if (!(interesting & (1ull << (s - 1))) || s == SIGKILL || s == SIGSTOP)
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

		if (!it[w].value_us)
			continue;
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
