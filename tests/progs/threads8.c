/* threads8: 8 worker threads, each with its own TLS value, signal mask and
 * name, each blocked in a different primitive between checks:
 *   0 raw futex wait       1 pthread_join (of a helper blocked in sem_wait)
 *   2 pthread_cond_wait    3 sem_wait
 *   4 nanosleep (50 ms naps)  5 sigwaitinfo (rt_sigtimedwait)
 *   6 pthread_barrier_wait 7 sigsuspend
 * Workers block SIGUSR1 and SIGTERM, so the main thread takes them.
 *
 * Check: the main thread wakes every worker through its primitive; each
 * verifies, from inside, its TLS value, its signal mask, its name, its
 * thread id (gettid() as recorded at start), that glibc's rseq area is
 * still registered with the kernel, and that its counter of completed
 * rounds equals the round number, then goes back to waiting. The check
 * fails if a worker does not answer within 3 s. */
#include "scenario.h"
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/prctl.h>
#include <sys/rseq.h>

#define NW 8

struct worker {
	pthread_t th;
	pid_t tid;
	int idx;
	volatile unsigned done;		/* last round completed */
	unsigned counter;		/* rounds this thread completed */
	char err[256];
};

static struct worker w[NW];
static __thread long tls_val = -1;
static volatile unsigned round_no;
static volatile uint32_t futex_tok;
static pthread_mutex_t m2 = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c2 = PTHREAD_COND_INITIALIZER;
static int tok2;
static sem_t s3, sem_helper;
static volatile int tok4;
static pthread_barrier_t b6;

static void on_rt(int s) { (void)s; }

static void worker_mask(int i, sigset_t *m)
{
	sigemptyset(m);
	sigaddset(m, SIGUSR1);
	sigaddset(m, SIGTERM);
	sigaddset(m, SIGRTMIN + 10 + i);
	if (i == 5)
		sigaddset(m, SIGRTMIN + 5);
	if (i == 7)
		sigaddset(m, SIGRTMIN + 7);
}

static int rseq_registered(void)
{
	struct rseq *rs;
	/* glibc registers at least the original 32-byte struct rseq, while
	 * __rseq_size may give only the feature size (20) */
	unsigned len = __rseq_size < 32 ? 32 : __rseq_size;
	long r;

	if (!__rseq_size)
		return 1;	/* glibc did not register: nothing to keep */
	rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	/* registering the same area again fails with EBUSY only if it is */
	r = syscall(SYS_rseq, rs, len, 0, RSEQ_SIG);
	if (r == 0) {
		syscall(SYS_rseq, rs, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
		return 0;
	}
	return errno == EBUSY;
}

/* From inside the thread: what must have survived. */
static void self_check(struct worker *me)
{
	char name[16] = "", want[16];
	sigset_t cur, exp;
	int n = 0;

	me->err[0] = 0;
	snprintf(want, sizeof(want), "worker-%d", me->idx);
	prctl(PR_GET_NAME, name);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	worker_mask(me->idx, &exp);
	if (tls_val != me->idx * 1111 + 7)
		n += snprintf(me->err + n, sizeof(me->err) - n, " tls %ld", tls_val);
	if (strcmp(name, want))
		n += snprintf(me->err + n, sizeof(me->err) - n, " name '%s'", name);
	for (int s = 1; s < 65 && n < 200; s++) {
		if (s == 32 || s == 33)
			continue;	/* glibc-internal */
		if (sigismember(&cur, s) != sigismember(&exp, s))
			n += snprintf(me->err + n, sizeof(me->err) - n, " mask bit %d", s);
	}
	if (gettid() != me->tid)
		n += snprintf(me->err + n, sizeof(me->err) - n, " tid %d, was %d", gettid(), me->tid);
	if (!rseq_registered())
		n += snprintf(me->err + n, sizeof(me->err) - n, " rseq not registered");
	me->counter++;
	if (me->counter != round_no && n < 200)
		snprintf(me->err + n, sizeof(me->err) - n, " counter %u in round %u", me->counter,
			 round_no);
	__atomic_store_n(&me->done, round_no, __ATOMIC_RELEASE);
}

static void *helper(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "joinee");
	while (sem_wait(&sem_helper) && errno == EINTR)
		;
	return NULL;
}

static void *worker(void *arg)
{
	struct worker *me = arg;
	sigset_t m;
	char name[16];
	int sig;

	me->tid = gettid();
	tls_val = me->idx * 1111 + 7;
	snprintf(name, sizeof(name), "worker-%d", me->idx);
	prctl(PR_SET_NAME, name);
	worker_mask(me->idx, &m);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	for (;;) {
		switch (me->idx) {
		case 0:
			while (!futex_tok)
				syscall(SYS_futex, &futex_tok, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
			futex_tok = 0;
			break;
		case 1: {
			pthread_t h;

			if (pthread_create(&h, NULL, helper, NULL))
				abort();
			pthread_join(h, NULL);
			break;
		}
		case 2:
			pthread_mutex_lock(&m2);
			while (!tok2)
				pthread_cond_wait(&c2, &m2);
			tok2 = 0;
			pthread_mutex_unlock(&m2);
			break;
		case 3:
			while (sem_wait(&s3) && errno == EINTR)
				;
			break;
		case 4:
			while (!tok4)
				scn_sleep_ms(50);
			tok4 = 0;
			break;
		case 5:
			sigemptyset(&m);
			sigaddset(&m, SIGRTMIN + 5);
			while (sigwait(&m, &sig))
				;
			break;
		case 6:
			pthread_barrier_wait(&b6);
			break;
		case 7:
			worker_mask(7, &m);
			sigdelset(&m, SIGRTMIN + 7);
			sigsuspend(&m);
			break;
		}
		self_check(me);
	}
	return NULL;
}

static void check(void)
{
	unsigned r = ++round_no;
	uint64_t t0;
	char name[16] = "";

	futex_tok = 1;
	syscall(SYS_futex, &futex_tok, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	sem_post(&sem_helper);
	pthread_mutex_lock(&m2);
	tok2 = 1;
	pthread_cond_signal(&c2);
	pthread_mutex_unlock(&m2);
	sem_post(&s3);
	tok4 = 1;
	pthread_kill(w[5].th, SIGRTMIN + 5);
	pthread_kill(w[7].th, SIGRTMIN + 7);
	pthread_barrier_wait(&b6);

	t0 = scn_now_ns();
	for (int i = 0; i < NW; i++) {
		while (__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE) != r &&
		       scn_now_ns() - t0 < 3000000000ull)
			scn_sleep_ms(5);
		if (w[i].done != r)
			scn_fail("worker %d (tid %d) did not wake in round %u", i, w[i].tid, r);
		else if (w[i].err[0])
			scn_fail("worker %d:%s", i, w[i].err);
	}
	SCN_EXPECT(tls_val == 99, "main tls %ld", tls_val);
	prctl(PR_GET_NAME, name);
	SCN_EXPECT(!strcmp(name, "threads8"), "main name '%s'", name);
	SCN_EXPECT(rseq_registered(), "main: rseq not registered");
}

int main(void)
{
	struct sigaction sa;

	scn_init("threads8");
	scn_install_check();
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_rt;
	sigaction(SIGRTMIN + 7, &sa, NULL);
	tls_val = 99;
	sem_init(&s3, 0, 0);
	sem_init(&sem_helper, 0, 0);
	pthread_barrier_init(&b6, NULL, 2);
	for (int i = 0; i < NW; i++) {
		w[i].idx = i;
		if (pthread_create(&w[i].th, NULL, worker, &w[i]))
			scn_die("pthread_create %d", i);
	}
	/* every worker (and the joinee) named and waiting */
	for (int tries = 0; tries < 200; tries++) {
		int named = 0;

		for (int i = 0; i < NW; i++)
			named += w[i].tid != 0;
		if (named == NW)
			break;
		scn_sleep_ms(10);
	}
	scn_sleep_ms(100);
	scn_ready();
	scn_loop(check);
}
