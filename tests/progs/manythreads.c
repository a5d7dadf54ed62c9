/* manythreads N: N threads (default 200) waiting on one condition variable,
 * each with its TLS value and name "t<i>". Threads block SIGUSR1/SIGTERM.
 *
 * Check: the main thread bumps a generation and broadcasts; every thread
 * wakes, verifies its TLS value, name and thread id (as recorded at start)
 * and counts itself in; all N must answer within 5 s. */
#include "scenario.h"
#include <pthread.h>
#include <sys/prctl.h>

struct th {
	pthread_t pt;
	pid_t tid;
	int idx;
};

static struct th *ths;
static int nth;
static __thread int tls_idx = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned gen, acks, bad;
static char bad_msg[256];

static void *run(void *arg)
{
	struct th *me = arg;
	char want[16], name[16];
	unsigned seen;

	tls_idx = me->idx;
	snprintf(want, sizeof(want), "t%d", me->idx);
	prctl(PR_SET_NAME, want);
	pthread_mutex_lock(&mu);
	me->tid = gettid();
	seen = gen;
	for (;;) {
		while (gen == seen)
			pthread_cond_wait(&cv, &mu);
		seen = gen;
		prctl(PR_GET_NAME, name);
		if (tls_idx != me->idx || strcmp(name, want) || gettid() != me->tid) {
			if (!bad++)
				snprintf(bad_msg, sizeof(bad_msg), "thread %d: tls %d name '%s'"
					 " tid %d was %d", me->idx, tls_idx, name, gettid(), me->tid);
		}
		acks++;
	}
	return NULL;
}

static void check(void)
{
	uint64_t t0 = scn_now_ns();
	unsigned a;

	pthread_mutex_lock(&mu);
	gen++;
	acks = 0;
	bad = 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	do {
		scn_sleep_ms(10);
		pthread_mutex_lock(&mu);
		a = acks;
		pthread_mutex_unlock(&mu);
	} while (a < (unsigned)nth && scn_now_ns() - t0 < 5000000000ull);
	SCN_EXPECT(a == (unsigned)nth, "%u of %d threads answered", a, nth);
	SCN_EXPECT(!bad, "%u bad: %s", bad, bad_msg);
}

int main(int argc, char **argv)
{
	sigset_t block, old;
	int ready;

	nth = argc > 1 ? atoi(argv[1]) : 200;
	scn_init("manythreads");
	scn_install_check();
	ths = calloc((size_t)nth, sizeof(*ths));
	if (!ths)
		scn_die("calloc");
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < nth; i++) {
		pthread_attr_t at;

		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 64 * 1024);
		ths[i].idx = i;
		if (pthread_create(&ths[i].pt, &at, run, &ths[i]))
			scn_die("pthread_create %d", i);
		pthread_attr_destroy(&at);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	do {
		scn_sleep_ms(10);
		ready = 0;
		pthread_mutex_lock(&mu);
		for (int i = 0; i < nth; i++)
			ready += ths[i].tid != 0;
		pthread_mutex_unlock(&mu);
	} while (ready < nth);
	scn_ready();
	scn_loop(check);
}
