/* timerfds: t1 a one-shot CLOCK_MONOTONIC timer armed for argv[1] ms
 * (default 3000) at start; the main loop prints "FIRED <ms since start,
 * not counting time spent dumped>" when it expires. t2 a 50 ms periodic
 * timer; t3 an expired one-shot with one unread tick.
 * Check: t1 reports its remaining time not above what it was armed for;
 * t2 keeps its interval and ticks again within 200 ms; t3 has its unread
 * tick (read returns 1, then it is re-armed to tick once more). */
#include "scenario.h"
#include <poll.h>
#include <sys/timerfd.h>

static int t1, t2, t3, fired;
static long armed_ms = 3000;

static void check(void)
{
	struct itimerspec its;
	struct pollfd pf = { .events = POLLIN };
	uint64_t v = 0;

	if (timerfd_gettime(t1, &its) < 0)
		scn_fail("timerfd_gettime: %s", strerror(errno));
	else if (!fired)
		SCN_EXPECT(its.it_value.tv_sec * 1000 + its.it_value.tv_nsec / 1000000 <= armed_ms &&
			   (its.it_value.tv_sec || its.it_value.tv_nsec),
			   "t1 remaining %ld.%09ld s", (long)its.it_value.tv_sec,
			   its.it_value.tv_nsec);
	if (timerfd_gettime(t2, &its) == 0)
		SCN_EXPECT(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 50000000,
			   "t2 interval %ld.%09ld", (long)its.it_interval.tv_sec,
			   its.it_interval.tv_nsec);
	pf.fd = t2;
	SCN_EXPECT(poll(&pf, 1, 200) == 1, "t2 did not tick within 200 ms");
	if (read(t2, &v, 8) != 8 || !v)
		scn_fail("t2 read: %s", strerror(errno));
	SCN_EXPECT(read(t3, &v, 8) == 8 && v == 1, "t3 unread ticks %llu, want 1",
		   (unsigned long long)v);
	its = (struct itimerspec){ .it_value = { 0, 1000000 } };
	timerfd_settime(t3, 0, &its, NULL);
	scn_sleep_ms(20);
	SCN_EXPECT(fcntl(t1, F_GETFL) & O_NONBLOCK, "t1 lost O_NONBLOCK");
}

int main(int argc, char **argv)
{
	struct itimerspec its = { 0 };
	uint64_t start, v;

	scn_init("timerfds");
	if (argc > 1)
		armed_ms = atol(argv[1]);
	t1 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	t2 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	t3 = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	if (t1 < 0 || t2 < 0 || t3 < 0)
		scn_die("timerfd_create: %s", strerror(errno));
	its.it_value.tv_sec = armed_ms / 1000;
	its.it_value.tv_nsec = armed_ms % 1000 * 1000000;
	start = scn_now_ns();
	timerfd_settime(t1, 0, &its, NULL);
	its = (struct itimerspec){ { 0, 50000000 }, { 0, 50000000 } };
	timerfd_settime(t2, 0, &its, NULL);
	its = (struct itimerspec){ .it_value = { 0, 1000000 } };
	timerfd_settime(t3, 0, &its, NULL);
	scn_sleep_ms(20);
	scn_install_check();
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (!fired && read(t1, &v, 8) == 8) {
			fired = 1;
			printf("FIRED %llu\n", (unsigned long long)((scn_now_ns() - start) / 1000000));
			fflush(stdout);
		}
		scn_sleep_ms(20);
	}
}
