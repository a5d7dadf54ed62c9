/* sleeper: loops on one nanosleep of 2 s (a single call, not pieces).
 * After each full sleep prints "SLEPT n" (n = 1, 2, ...). nanosleep failing
 * prints "FAIL sleeper: EINTR" (or the error); a sleep that returns 0 but
 * took less than 2 s by CLOCK_MONOTONIC prints "FAIL sleeper: short ...".
 * No check handler. */
#include "scenario.h"

int main(void)
{
	unsigned n = 1;

	scn_init("sleeper");
	scn_ready();
	for (;;) {
		struct timespec req = { 2, 0 }, rem = { 0, 0 };
		uint64_t t0 = scn_now_ns(), el;
		int r = nanosleep(&req, &rem);

		el = scn_now_ns() - t0;
		if (r != 0) {
			printf("FAIL sleeper: %s (after %llu ms, %ld ms remaining)\n",
			       errno == EINTR ? "EINTR" : strerror(errno),
			       (unsigned long long)(el / 1000000),
			       (long)(rem.tv_sec * 1000 + rem.tv_nsec / 1000000));
			fflush(stdout);
			continue;
		}
		if (el < 2000000000ull - 5000000ull)
			printf("FAIL sleeper: short sleep %u: %llu ms\n", n,
			       (unsigned long long)(el / 1000000));
		printf("SLEPT %u\n", n++);
		fflush(stdout);
	}
}
