/* timers: an interval timer and POSIX timers keep their ids and periods.
 *
 * Setup: setitimer(ITIMER_REAL) every 100 ms (SIGALRM counts ticks); five
 * POSIX timers created, the first two and the fourth deleted, so the live
 * ids are 2 and 4 (not what a fresh process would get): id 2 fires
 * SIGRTMIN+3 every 50 ms with si_value 777, id 4 is SIGEV_NONE armed for
 * one hour. With argument "cputime", one more timer on
 * CLOCK_THREAD_CPUTIME_ID and a second thread (sleeping, signals blocked):
 * cryo cannot tell which thread's CPU time it counts, and refuses it.
 *
 * Check (takes about 1 s): over one second SIGALRM ticks 7..13 times, the
 * POSIX timer 14..26 times with si_timerid == its id and si_value 777; the
 * SIGEV_NONE timer is still armed with 55..60 minutes left; timer_gettime
 * on both ids works and the intervals are as set. */
#include "scenario.h"
#include <pthread.h>
#include <sys/time.h>

static volatile sig_atomic_t alrm, rt, rt_bad;
static timer_t tfire, tnone;

static void on_alrm(int s) { (void)s; alrm++; }

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void on_rt(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 777 ||
	    si->si_timerid != (int)(intptr_t)tfire)
		rt_bad++;
	rt++;
}

static void check(void)
{
	struct itimerspec its;
	struct itimerval iv;
	sig_atomic_t a0 = alrm, r0 = rt;
	uint64_t t0 = scn_now_ns();
	int a, r;

	rt_bad = 0;
	while (scn_now_ns() - t0 < 1000000000ull)
		scn_sleep_ms(20);
	a = (int)(alrm - a0);
	r = (int)(rt - r0);
	SCN_EXPECT(a >= 7 && a <= 13, "SIGALRM %d times in 1 s, want about 10", a);
	SCN_EXPECT(r >= 14 && r <= 26, "POSIX timer %d times in 1 s, want about 20", r);
	SCN_EXPECT(!rt_bad, "%d timer signals with wrong si_code/si_value/si_timerid", (int)rt_bad);
	SCN_EXPECT(getitimer(ITIMER_REAL, &iv) == 0 && iv.it_interval.tv_usec == 100000 &&
		   iv.it_interval.tv_sec == 0, "ITIMER_REAL interval %ld.%06ld",
		   (long)iv.it_interval.tv_sec, (long)iv.it_interval.tv_usec);
	SCN_EXPECT((intptr_t)tfire == 2 && (intptr_t)tnone == 4, "timer ids %ld %ld",
		   (long)(intptr_t)tfire, (long)(intptr_t)tnone);
	if (timer_gettime(tfire, &its))
		scn_fail("timer_gettime(%ld): %s", (long)(intptr_t)tfire, strerror(errno));
	else
		SCN_EXPECT(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 50000000,
			   "timer %ld interval %ld.%09ld", (long)(intptr_t)tfire,
			   (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	if (timer_gettime(tnone, &its))
		scn_fail("timer_gettime(%ld): %s", (long)(intptr_t)tnone, strerror(errno));
	else
		SCN_EXPECT(its.it_value.tv_sec >= 55 * 60 && its.it_value.tv_sec <= 3600,
			   "SIGEV_NONE timer: %ld s left", (long)its.it_value.tv_sec);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct sigevent sev;
	struct itimerval iv = { { 0, 100000 }, { 0, 100000 } };
	struct itimerspec fire = { { 0, 50000000 }, { 0, 50000000 } };
	struct itimerspec hour = { { 0, 0 }, { 3600, 0 } };
	timer_t ids[5];

	scn_init("timers");
	scn_install_check();
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alrm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 3, &sa, NULL);

	/* ids 0..4 in creation order; 2 fires, 4 is SIGEV_NONE; 0, 1, 3 go */
	for (int i = 0; i < 5; i++) {
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_NONE;
		if (i == 2) {
			sev.sigev_notify = SIGEV_SIGNAL;
			sev.sigev_signo = SIGRTMIN + 3;
			sev.sigev_value.sival_int = 777;
		}
		if (timer_create(CLOCK_MONOTONIC, &sev, &ids[i]))
			scn_die("timer_create: %s", strerror(errno));
	}
	if ((intptr_t)ids[0] != 0 || (intptr_t)ids[4] != 4)
		scn_die("timer ids %ld..%ld, want 0..4", (long)(intptr_t)ids[0],
			(long)(intptr_t)ids[4]);
	timer_delete(ids[0]);
	timer_delete(ids[1]);
	timer_delete(ids[3]);
	tfire = ids[2];
	tnone = ids[4];
	if (timer_settime(tfire, 0, &fire, NULL) || timer_settime(tnone, 0, &hour, NULL))
		scn_die("timer_settime: %s", strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "cputime")) {
		timer_t tc;

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_NONE;
		pthread_t th;
		sigset_t all, old;

		if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &tc))
			scn_die("timer_create(CLOCK_THREAD_CPUTIME_ID): %s", strerror(errno));
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		if (pthread_create(&th, NULL, idle, NULL))
			scn_die("pthread_create failed");
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (setitimer(ITIMER_REAL, &iv, NULL))
		scn_die("setitimer: %s", strerror(errno));
	scn_ready();
	scn_loop(check);
}
