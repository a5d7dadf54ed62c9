/* A program with a slow start: 300 ms of "initialisation" (and 8 MiB of
 * state built in it), then its cache point, then it echoes stdin to
 * stdout and exits with the status given as argv[1] (default 0).
 * With argv[2] == "stdin" it has no cache point of its own (an unmodified
 * program: cryo run --cache-point=stdin stops it at its first read of
 * stdin); otherwise it raises SIGSTOP, the two-line adoption. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	size_t len = 8 << 20, sum = 0;
	unsigned char *state = malloc(len);
	char buf[4096];
	ssize_t n;

	if (!state)
		return 99;
	for (size_t i = 0; i < len; i++)
		state[i] = (unsigned char)(i * 7 + 1);
	nanosleep(&ts, NULL);
	fprintf(stderr, "cachewarm: initialised\n");
	if (argc < 3 || strcmp(argv[2], "stdin"))
		raise(SIGSTOP);		/* cache point */
	for (size_t i = 0; i < len; i += 4096)
		sum += state[i];
	if (sum != (len / 4096) * 1)	/* i*7+1 at multiples of 4096 is 1 mod 256 */
		fprintf(stderr, "cachewarm: state lost (sum %zu)\n", sum);
	{
		/* where the kernel clears the thread id at exit, glibc keeps its
		 * copy of it: after a restore under a new pid it must be the new */
		pid_t *tidp = NULL;

		if (prctl(PR_GET_TID_ADDRESS, &tidp) == 0 && tidp && *tidp != getpid())
			fprintf(stderr, "cachewarm: stale thread id %d, pid %d\n", *tidp,
				(int)getpid());
	}
	printf("pid %d\n", (int)getpid());
	fflush(stdout);
	while ((n = read(0, buf, sizeof(buf))) > 0)
		if (write(1, buf, (size_t)n) != n)
			return 98;
	return argc > 1 ? atoi(argv[1]) : 0;
}
