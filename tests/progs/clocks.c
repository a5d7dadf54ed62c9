/* clocks [SLEEP_MS [NS_OFFSET_S]]: watches CLOCK_MONOTONIC and CLOCK_BOOTTIME.
 *
 * The main loop reads both clocks every 10 ms and keeps the largest step
 * back and forward between two reads. On SIGUSR1 it prints
 *   CLOCKS mono_ms=M boot_ms=B back_us=X fwd_ms=F
 * (the clocks now, the largest backward step in µs, the largest forward
 * step in ms) and "PASS clocks", or "FAIL clocks: ..." if a clock went
 * back, or if the vdso's clock_gettime and the syscall disagree (the
 * vvar page of a time namespace not where the vdso looks).
 *
 * With SLEEP_MS > 0 a thread sleeps in one clock_nanosleep(CLOCK_MONOTONIC,
 * TIMER_ABSTIME) until SLEEP_MS after the start, then prints
 *   WOKE late_ms=L wall_ms=W
 * (how far past the deadline CLOCK_MONOTONIC is; CLOCK_REALTIME since the
 * start) or "FAIL clocks: ..." if it woke early or failed.
 *
 * With NS_OFFSET_S it first re-executes itself in a new time namespace whose
 * clocks are NS_OFFSET_S seconds ahead of the host's (needs root), to run
 * as a tree that already has a namespace of its own; with -1 it only
 * unshares one, for children it never has (cryo refuses that); with -2 it
 * forks a child that runs in a namespace 1000 s ahead (its output to
 * /dev/null): a tree in two namespaces, which cryo refuses too.
 *
 * clocks cache: prints "BEFORE mono_ms=M", raises SIGSTOP (the cache point
 * of cryo run --cache), prints "AFTER mono_ms=M" and exits. */
#include <pthread.h>
#include <sched.h>

#include "scenario.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static uint64_t clk(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t clk_sys(clockid_t c)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t start_mono, start_real;
static long sleep_ms;

static void *sleeper(void *arg)
{
	struct timespec dl;
	uint64_t d = start_mono + (uint64_t)sleep_ms * 1000000ull, now;
	int r;

	(void)arg;
	dl.tv_sec = (time_t)(d / 1000000000ull);
	dl.tv_nsec = (long)(d % 1000000000ull);
	do
		r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
	while (r == EINTR);
	now = clk(CLOCK_MONOTONIC);
	if (r)
		printf("FAIL clocks: clock_nanosleep: %s\n", strerror(r));
	else if (now < d)
		printf("FAIL clocks: woke %llu ms before the deadline\n",
		       (unsigned long long)((d - now) / 1000000));
	else
		printf("WOKE late_ms=%llu wall_ms=%llu\n", (unsigned long long)((now - d) / 1000000),
		       (unsigned long long)((clk(CLOCK_REALTIME) - start_real) / 1000000));
	fflush(stdout);
	return NULL;
}

static void enter_timens(char **argv, long off)
{
	char buf[128];
	int fd, n;

	if (unshare(CLONE_NEWTIME))
		scn_die("unshare(CLONE_NEWTIME): %s", strerror(errno));
	if (off < 0)
		return;	/* a namespace its children would be born in, and no child */
	fd = open("/proc/self/timens_offsets", O_WRONLY);
	n = snprintf(buf, sizeof(buf), "%d %ld 0\n%d %ld 0\n", CLOCK_MONOTONIC, off,
		     CLOCK_BOOTTIME, off);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		scn_die("timens_offsets: %s", strerror(errno));
	close(fd);
	argv[2] = "0";	/* the exec enters the namespace (Linux 6.0+) */
	execv("/proc/self/exe", argv);
	scn_die("re-exec: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	uint64_t last_m, last_b, back = 0, fwd = 0;
	pthread_t th;

	scn_init("clocks");
	if (argc > 1 && !strcmp(argv[1], "cache")) {
		/* for cryo run --cache: the clock before and after the cache point */
		printf("BEFORE mono_ms=%llu\n", (unsigned long long)(clk(CLOCK_MONOTONIC) / 1000000));
		fflush(stdout);
		raise(SIGSTOP);
		printf("AFTER mono_ms=%llu\n", (unsigned long long)(clk(CLOCK_MONOTONIC) / 1000000));
		return 0;
	}
	sleep_ms = argc > 1 ? atol(argv[1]) : 0;
	if (argc > 2 && atol(argv[2]) == -2) {
		/* a child in a time namespace 1000 s ahead, the parent in ours */
		pid_t kid = fork();

		if (kid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			dup2(fd, 1);
			enter_timens(argv, 1000);
		}
		if (kid < 0)
			scn_die("fork: %s", strerror(errno));
		argv[2] = "0";
	}
	if (argc > 2 && atol(argv[2]))
		enter_timens(argv, atol(argv[2]));
	start_mono = clk(CLOCK_MONOTONIC);
	start_real = clk(CLOCK_REALTIME);
	last_m = start_mono;
	last_b = clk(CLOCK_BOOTTIME);
	if (sleep_ms > 0 && pthread_create(&th, NULL, sleeper, NULL))
		scn_die("pthread_create");
	scn_install_check();
	scn_ready();
	for (;;) {
		struct timespec ts = { 0, 10000000 };
		uint64_t m, b;

		nanosleep(&ts, NULL);
		m = clk(CLOCK_MONOTONIC);
		b = clk(CLOCK_BOOTTIME);
		if (m < last_m && last_m - m > back)
			back = (last_m - m);
		if (b < last_b && last_b - b > back)
			back = (last_b - b);
		if (m > last_m && m - last_m > fwd)
			fwd = m - last_m;
		if (b > last_b && b - last_b > fwd)
			fwd = b - last_b;
		last_m = m;
		last_b = b;
		if (scn_check_requested) {
			uint64_t sm = clk_sys(CLOCK_MONOTONIC), vm = clk(CLOCK_MONOTONIC);
			uint64_t sb = clk_sys(CLOCK_BOOTTIME), vb = clk(CLOCK_BOOTTIME);

			scn_check_requested = 0;
			scn_check_begin();
			printf("CLOCKS mono_ms=%llu boot_ms=%llu back_us=%llu fwd_ms=%llu\n",
			       (unsigned long long)(m / 1000000), (unsigned long long)(b / 1000000),
			       (unsigned long long)(back / 1000), (unsigned long long)(fwd / 1000000));
			SCN_EXPECT(back == 0, "a clock went back %llu us",
				   (unsigned long long)(back / 1000));
			SCN_EXPECT(vm - sm < 50000000ull, "vdso CLOCK_MONOTONIC %llu ms from the"
				   " syscall's", (unsigned long long)((vm - sm) / 1000000));
			SCN_EXPECT(vb - sb < 50000000ull, "vdso CLOCK_BOOTTIME %llu ms from the"
				   " syscall's", (unsigned long long)((vb - sb) / 1000000));
			scn_check_end();
		}
	}
}
