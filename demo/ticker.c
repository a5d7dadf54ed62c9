/* The demo's live counter: prints a number every 300 ms to its stdout. */
#include <stdio.h>
#include <time.h>

int main(void)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };

	for (unsigned long n = 1;; n++) {
		printf("tick %lu\n", n);
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}
