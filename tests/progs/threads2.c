/* threads2: a second thread sleeping forever (cryo must refuse to dump it).
 * Check: the process still has 2 threads. Signals are blocked in the second
 * thread so SIGUSR1/SIGTERM go to the main thread. */
#include "scenario.h"
#include <pthread.h>

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void check(void)
{
	size_t len;
	char *st = scn_read_file("/proc/self/status", &len);
	char *t = st ? strstr(st, "\nThreads:") : NULL;

	if (!t)
		scn_fail("no Threads: in /proc/self/status");
	else
		SCN_EXPECT(atoi(t + 9) == 2, "Threads: %d, want 2", atoi(t + 9));
	free(st);
}

int main(void)
{
	sigset_t all, old;
	pthread_t th;
	int err;

	scn_init("threads2");
	scn_install_check();
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&th, NULL, sleeper, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		scn_die("pthread_create: %s", strerror(err));
	scn_ready();
	scn_loop(check);
}
