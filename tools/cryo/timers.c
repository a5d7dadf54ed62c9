/* POSIX timers (timer_create): id, clock, notification, time to the next
 * expiry and interval. /proc/PID/timers gives id, clock and sigevent; the
 * times are read by timer_gettime() injected into the task.
 *
 * Ids are what the program holds (timer_t), so they must be restored
 * exactly. Linux 6.17+ has prctl(PR_TIMER_CREATE_RESTORE_IDS): while it is
 * on, timer_create() takes the id to use from *timerid (EBUSY if taken);
 * this 6.18 host has it. On older kernels ids come from a per-process
 * counter that starts at 0 in the freshly exec'd task: create timers in
 * ascending order and delete the fillers for the gaps (what CRIU does).
 *
 * Not restored: the overrun count (it restarts at 0), and a signal of a
 * timer that had fired but was still pending is re-queued as an ordinary
 * queued signal by signals.c. A timer on a CPU-time clock of a given
 * thread or process (negative clock id) is refused. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "cryo.h"
#include "err.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS	77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF	0
#define PR_TIMER_CREATE_RESTORE_IDS_ON	1
#endif
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* The kernel's struct sigevent (64 bytes), with the thread id where
 * SIGEV_THREAD_ID wants it. */
struct k_sigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};
_Static_assert(sizeof(struct k_sigevent) == 64, "kernel sigevent size");

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	return ts;
}

static int refuse(void *v, int e)
{
	free(v);
	return e;
}

/* "ID: 3\nsignal: 14/00000000deadbeef\nnotify: signal/pid.12\nClockID: 1\n" */
static int parse_timers(pid_t pid, size_t nthreads, char *text, struct lx_posix_timer **out,
			size_t *count)
{
	struct lx_posix_timer *v = NULL, *cur = NULL;
	size_t n = 0;
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char kind[16], who[8];
		int a;
		unsigned long long val;

		if (sscanf(line, "ID: %d", &a) == 1) {
			struct lx_posix_timer *nv = realloc(v, (n + 1) * sizeof(*v));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cur = &v[n++];
			memset(cur, 0, sizeof(*cur));
			cur->id = (uint32_t)a;
		} else if (!cur) {
			continue;
		} else if (sscanf(line, "signal: %d/%llx", &a, &val) == 2) {
			cur->signo = (uint32_t)a;
			cur->value = val;
		} else if (sscanf(line, "notify: %15[a-z]/%7[a-z].%d", kind, who, &a) == 3) {
			if (!strcmp(kind, "signal"))
				cur->notify = SIGEV_SIGNAL;
			else if (!strcmp(kind, "none"))
				cur->notify = SIGEV_NONE;
			else if (!strcmp(kind, "thread"))
				cur->notify = SIGEV_THREAD;
			else
				return refuse(v, err_set(-EOPNOTSUPP, "pid %d: POSIX timer %u:"
					      " notification \"%s\" not understood", pid, cur->id,
					      kind));
			if (!strcmp(who, "tid")) {
				cur->notify |= SIGEV_THREAD_ID;
				cur->notify_tid = (uint32_t)a;
			} else if (a != pid) {
				return refuse(v, err_set(-EOPNOTSUPP, "pid %d: POSIX timer %u:"
					      " notifies pid %d, not its own process", pid,
					      cur->id, a));
			}
		} else if (sscanf(line, "ClockID: %d", &a) == 1) {
			/* CPU-time clocks: negative ids encode a pid (0: the
			 * caller) and a per-thread bit (CPUCLOCK_PERTHREAD_MASK) */
			int self = a >= 0 || (~a >> 3) == 0;
			int thread = a == CLOCK_THREAD_CPUTIME_ID || (a < 0 && (a & 4));

			if (!self)
				return refuse(v, err_set(-EOPNOTSUPP, "pid %d: POSIX timer %u: clock"
					      " %d counts another process's CPU time: not"
					      " supported", pid, cur->id, a));
			if (thread && nthreads > 1)
				return refuse(v, err_set(-EOPNOTSUPP, "pid %d: POSIX timer %u: clock"
					      " %d counts the CPU time of the thread that created"
					      " it, which /proc does not name: not supported with"
					      " several threads", pid, cur->id, a));
			cur->clock = (uint32_t)a;
		}
	}
	*out = v;
	*count = n;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	const struct lx_posix_timer *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int timers_dump(struct dump_task *t)
{
	struct lx_posix_timer *v = NULL;
	size_t n = 0, len;
	char *text;
	long ret;
	int e = proc_read(t->pid, "timers", &text, &len);

	if (e)
		return e;
	e = parse_timers(t->pid, t->ntids, text, &v, &n);
	free(text);
	if (e || !n)
		return e;
	qsort(v, n, sizeof(*v), cmp_id);
	for (size_t i = 0; i < n && !e; i++) {
		struct itimerspec its;

		e = dump_inject_out(t, SYS_timer_gettime, v[i].id, 0, 0, 0, 2, &its, sizeof(its),
				    &ret);
		if (!e && ret < 0)
			e = err_sys((int)ret, "pid %d: POSIX timer %u: timer_gettime", t->pid,
				    v[i].id);
		if (e)
			break;
		v[i].value_ns = ts_ns(&its.it_value);
		v[i].interval_ns = ts_ns(&its.it_interval);
		e = inj_syscall(&t->inj, SYS_timer_getoverrun, v[i].id, 0, 0, 0, 0, 0, &ret);
		if (!e && ret >= 0)
			v[i].overrun = (uint32_t)ret;
	}
	if (!e)
		e = img_add(t->w, LX_SEC_POSIX_TIMERS, t->index, sizeof(*v), v, n * sizeof(*v));
	free(v);
	return e;
}

/* timer_create in the task; *id gets the id the kernel chose (or, in
 * restore-ids mode, the one asked for). */
static int create_one(struct restore_task *t, const struct lx_posix_timer *pt, int32_t want,
		      int32_t *id)
{
	struct k_sigevent sev;
	uint64_t sev_a, id_a;
	int e;

	memset(&sev, 0, sizeof(sev));
	sev.value = pt->value;
	sev.signo = (int32_t)pt->signo;
	sev.notify = (int32_t)pt->notify;
	sev.tid = (int32_t)pt->notify_tid;
	e = restore_put(t, 0, &sev, sizeof(sev), &sev_a);
	if (!e)
		e = restore_put(t, 128, &want, sizeof(want), &id_a);
	if (!e)
		e = restore_sys(t, "timer_create", SYS_timer_create, pt->clock, sev_a, id_a, 0, 0,
				0, NULL);
	if (!e)
		e = mem_read(t->pid, id_a, id, sizeof(*id));
	return e;
}

int timers_restore(struct restore_task *t)
{
	struct lx_posix_timer *v;
	size_t n;
	long ret;
	int by_id, e = img_records(t->im, LX_SEC_POSIX_TIMERS, t->index, sizeof(*v), sizeof(*v),
				   (void **)&v, &n);

	if (e == -ENOENT)
		return 0;
	if (e)
		return err_ctx(e, "image: task %u: posix_timers", t->index);
	e = inj_syscall(&t->inj, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
			PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0, 0, &ret);
	by_id = !e && ret == 0;
	for (size_t i = 0; i < n && !e; i++) {
		int32_t want = (int32_t)v[i].id, got = -1;

		if (by_id) {
			e = create_one(t, &v[i], want, &got);
		} else {
			/* sequential ids: create until want comes out, then delete
			 * the fillers below it (ids are not reused before wrapping) */
			int32_t first = -1;
			unsigned k = 0;

			for (;;) {
				e = create_one(t, &v[i], 0, &got);
				if (e || got >= want)
					break;
				if (++k > 65536) {
					e = err_set(-ERANGE, "pid %d: POSIX timer %d: too far"
						    " from the kernel's next id %d", t->pid, want, got);
					break;
				}
				if (first < 0)
					first = got;
			}
			for (int32_t f = first; !e && f >= 0 && f < want; f++)
				e = restore_sys(t, "timer_delete", SYS_timer_delete, f, 0, 0, 0, 0,
						0, NULL);
		}
		if (!e && got != want)
			e = err_set(-EEXIST, "pid %d: POSIX timer %d: the kernel gave id %d (ids"
				    " are allocated in order on this kernel)", t->pid, want, got);
		if (!e && v[i].value_ns) {
			struct itimerspec its = { ns_ts(v[i].interval_ns), ns_ts(v[i].value_ns) };
			uint64_t a;

			e = restore_put(t, 0, &its, sizeof(its), &a);
			if (!e)
				e = restore_sys(t, "timer_settime", SYS_timer_settime, want, 0, a, 0,
						0, 0, NULL);
		}
		if (e)
			e = err_ctx(e, "POSIX timer %u", v[i].id);
	}
	if (by_id) {
		int e2 = restore_sys(t, "prctl(PR_TIMER_CREATE_RESTORE_IDS, off)", SYS_prctl,
				     PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF,
				     0, 0, 0, 0, NULL);

		if (!e)
			e = e2;
	}
	free(v);
	return e;
}
