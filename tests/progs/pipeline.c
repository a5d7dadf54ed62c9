/* One stage of a pipeline whose pipes hold data in flight:
 *   pipeline produce N    writes lines 1..N, one per millisecond
 *   pipeline filter       copies lines, prefixing "f"
 *   pipeline consume OUT  appends each line to OUT (slower than the
 *                         producer, so both pipes fill), then "DONE" at EOF
 * Plain stdio on purpose: the data in flight is in the pipes and in the
 * stages' stdio buffers, all of which a restore must bring back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	char line[256];

	if (argc >= 3 && !strcmp(argv[1], "produce")) {
		long n = atol(argv[2]);

		setvbuf(stdout, NULL, _IOLBF, 0);
		for (long i = 1; i <= n; i++) {
			printf("%ld\n", i);
			sleep_us(1000);
		}
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "filter")) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		while (fgets(line, sizeof(line), stdin))
			printf("f%s", line);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "consume")) {
		FILE *out = fopen(argv[2], "a");

		if (!out)
			return 2;
		setvbuf(out, NULL, _IOLBF, 0);
		while (fgets(line, sizeof(line), stdin)) {
			fputs(line, out);
			sleep_us(2000);
		}
		fputs("DONE\n", out);
		return 0;
	}
	fprintf(stderr, "usage: pipeline produce N | filter | consume OUT\n");
	return 2;
}
