/* threadchurn [CHAINS [NAP_US]]: threads created and exiting all the time.
 * CHAINS (default 3) chains of short-lived detached threads: each thread
 * checks its TLS value and signal mask, naps 0 to NAP_US (default 100)
 * microseconds, creates its successor and exits, so new threads appear
 * from threads other than the main one (a freeze must re-scan until none
 * appears) while others are exiting.
 *
 * The main thread blocks SIGUSR2 (its mask, checked); workers also block
 * SIGUSR1 and SIGTERM, so that the main thread takes them.
 * Check: no worker saw a wrong mask or TLS value and no pthread_create
 * failed, every chain made progress since the last check, the main
 * thread's mask is the same. */
#include <pthread.h>
#include <stdatomic.h>

#include "scenario.h"

#define MAXCHAINS 16

static int nchains = 3;
static long nap_us = 100;
static atomic_ulong gens[MAXCHAINS];
static unsigned long last_gens[MAXCHAINS];
static atomic_int nerr;
static char err[512];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static sigset_t main_mask, worker_mask;
static __thread unsigned long tls_tag;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&err_lock);
	if (!atomic_fetch_add(&nerr, 1)) {
		va_start(ap, fmt);
		vsnprintf(err, sizeof(err), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&err_lock);
}

static int same_mask(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s < 65; s++)
		if (s != 32 && s != 33 && sigismember(a, s) != sigismember(b, s))
			return 0;
	return 1;
}

static void *worker(void *arg)
{
	unsigned long v = (unsigned long)arg, chain = v % MAXCHAINS, gen = v / MAXCHAINS;
	pthread_attr_t a;
	pthread_t th;
	sigset_t m;
	int e;

	tls_tag = v;
	if (pthread_sigmask(SIG_BLOCK, NULL, &m) || !same_mask(&m, &worker_mask))
		note("chain %lu gen %lu: signal mask differs at start", chain, gen);
	{
		struct timespec ts = { 0, (long)(scn_mix64(v) % nap_us) * 1000 };

		nanosleep(&ts, NULL);
	}
	if (tls_tag != v)
		note("chain %lu gen %lu: TLS %lu", chain, gen, tls_tag);
	if (pthread_sigmask(SIG_BLOCK, NULL, &m) || !same_mask(&m, &worker_mask))
		note("chain %lu gen %lu: signal mask differs after a nap", chain, gen);
	atomic_store(&gens[chain], gen + 1);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	/* EAGAIN: the previous generations have not gone yet */
	for (int i = 0; (e = pthread_create(&th, &a, worker, (void *)(v + MAXCHAINS))) == EAGAIN &&
	     i < 100; i++)
		scn_sleep_ms(1);
	if (e)
		note("chain %lu gen %lu: pthread_create: %s", chain, gen, strerror(e));
	pthread_attr_destroy(&a);
	return NULL;
}

static void check(void)
{
	sigset_t m;
	int n = atomic_load(&nerr);

	pthread_mutex_lock(&err_lock);
	SCN_EXPECT(!n, "%d errors, the first: %s", n, err);
	pthread_mutex_unlock(&err_lock);
	for (int c = 0; c < nchains; c++) {
		unsigned long g = atomic_load(&gens[c]);

		SCN_EXPECT(g > last_gens[c], "chain %d made no progress (generation %lu)", c, g);
		last_gens[c] = g;
	}
	SCN_EXPECT(pthread_sigmask(SIG_BLOCK, NULL, &m) == 0 && same_mask(&m, &main_mask),
		   "main thread's signal mask changed");
}

int main(int argc, char **argv)
{
	pthread_attr_t a;
	pthread_t th;

	scn_init("threadchurn");
	if (argc > 1)
		nchains = atoi(argv[1]);
	if (argc > 2)
		nap_us = atol(argv[2]);
	if (nchains < 1 || nchains > MAXCHAINS || nap_us < 1)
		scn_die("chains: 1 to %d, nap: 1 us or more", MAXCHAINS);
	sigemptyset(&main_mask);
	sigaddset(&main_mask, SIGUSR2);
	worker_mask = main_mask;
	sigaddset(&worker_mask, SIGUSR1);
	sigaddset(&worker_mask, SIGTERM);
	scn_install_check();
	/* workers inherit the mask they are created with */
	pthread_sigmask(SIG_SETMASK, &worker_mask, NULL);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	for (int c = 0; c < nchains; c++) {
		int e = pthread_create(&th, &a, worker, (void *)(unsigned long)c);

		if (e)
			scn_die("pthread_create: %s", strerror(e));
	}
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &main_mask, NULL);
	scn_ready();
	scn_loop(check);
}
