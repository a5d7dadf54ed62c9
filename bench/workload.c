/* Benchmark workloads for cryo, CRIU and the baselines.
 *
 *   workload idle            a small idle process
 *   workload mem MIB         MIB of non-compressible (random) anonymous memory
 *   workload threads N       N threads (the main one and N-1 workers)
 *   workload tree N          N processes (a binary tree) passing a token round a ring of pipes
 *
 * The workload talks to the harness over fds 0 and 1, which are pipes; a
 * restored workload gets the restorer's fds 0 and 1, so the same protocol
 * works before the dump and after the restore. One byte per command:
 *
 *   'P'  ping: reply "P\n" once every thread and every process of the tree
 *        has been seen to run (worker counters advance, the ring token
 *        comes back) -- the "restored tree runs" signal
 *   'G'  reply "G MAXGAP MINGAP ITERS\n" (ns) for the progress loop since
 *        the previous 'G', and start a new window: the largest gap in the
 *        loop is how long the process was stopped
 *   'V'  re-hash the memory and reply "V ok HASH\n" or "V bad HASH WANT\n"
 *   'D'  dirty 1% of the pages (one word in every 100th page, a new value
 *        each time), re-take the hash, reply "D PAGES\n" (incremental dumps)
 *
 * At start it writes "R PID\n" once its memory is filled. EOF on fd 0 ends
 * it. The progress loop wakes every 200 us (ppoll), so the smallest gap is
 * about 0.25 ms and a stop shows as one gap of its length plus that. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define TICK_NS 200000L

static uint64_t *mem;		/* the big anonymous buffer (mem mode) */
static size_t mem_words;
static uint64_t mem_hash;	/* of mem, computed when it was filled */
static _Atomic unsigned long *counters;	/* one per worker thread */
static int nworkers;
static int ring_in = -1, ring_out = -1;	/* tree mode: root's ends of the ring */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	dprintf(2, "workload: %s: %s\n", what, strerror(errno));
	_exit(3);
}

static void say(const char *s)
{
	size_t n = strlen(s);

	if (write(1, s, n) != (ssize_t)n)
		_exit(0);	/* the harness is gone */
}

/* Four independent lanes so it runs near memory speed. */
static uint64_t hash_mem(void)
{
	uint64_t h[4] = { 1, 2, 3, 4 };
	const uint64_t k = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i + 4 <= mem_words; i += 4)
		for (int j = 0; j < 4; j++)
			h[j] = (h[j] ^ mem[i + j]) * k + (h[j] >> 29);
	return h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
}

static void fill_mem(size_t mib)
{
	size_t len = mib << 20;
	uint64_t x = now_ns() ^ ((uint64_t)getpid() << 32);

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	/* not part of what is measured: only makes the setup faster */
	madvise(mem, len, MADV_POPULATE_WRITE);
	mem_words = len / 8;
	for (size_t i = 0; i < mem_words; i++) {	/* splitmix64 */
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		mem[i] = z ^ (z >> 31);
	}
	mem_hash = hash_mem();
}

static void *worker(void *arg)
{
	_Atomic unsigned long *c = arg;
	struct timespec ts = { 0, 1000000 };

	for (;;) {
		atomic_fetch_add(c, 1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Every worker thread has run since now, or 10 s passed. */
static int workers_alive(void)
{
	unsigned long *snap = calloc(nworkers ? nworkers : 1, sizeof(*snap));
	uint64_t deadline = now_ns() + 10000000000ull;
	struct timespec ts = { 0, 100000 };
	int ok = 0;

	if (!snap)
		return 0;
	for (int i = 0; i < nworkers; i++)
		snap[i] = atomic_load(&counters[i]);
	while (now_ns() < deadline) {
		int all = 1;

		for (int i = 0; i < nworkers && all; i++)
			all = atomic_load(&counters[i]) != snap[i];
		if (all) {
			ok = 1;
			break;
		}
		nanosleep(&ts, NULL);
	}
	free(snap);
	return ok;
}

/* The token went round the ring through every process, or 10 s passed. */
static int ring_alive(void)
{
	char tok = 't';
	struct pollfd p = { ring_in, POLLIN, 0 };

	if (write(ring_out, &tok, 1) != 1)
		return 0;
	if (poll(&p, 1, 10000) != 1)
		return 0;
	return read(ring_in, &tok, 1) == 1;
}

static void spawn_threads(int n)
{
	pthread_attr_t a;

	nworkers = n - 1;
	counters = calloc(nworkers ? nworkers : 1, sizeof(*counters));
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (int i = 0; i < nworkers; i++) {
		pthread_t t;

		if (pthread_create(&t, &a, worker, (void *)&counters[i]))
			die("pthread_create");
	}
}

/* Process k (1..n, 1 is the root) has children 2k and 2k+1; the ring goes
 * 1 -> 2 -> ... -> n -> 1 through pipe k (read by k, written by k-1). */
static void spawn_tree(int n)
{
	int (*p)[2] = calloc(n + 1, sizeof(*p));
	int k = 1;

	if (!p)
		die("calloc");
	for (int i = 1; i <= n; i++)
		if (pipe2(p[i], O_CLOEXEC))
			die("pipe");
	for (;;) {
		int forked = 0;

		for (int c = 2 * k; c <= 2 * k + 1 && c <= n; c++) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (pid == 0) {
				k = c;
				forked = 1;
				break;
			}
		}
		if (!forked)
			break;
	}
	ring_in = p[k][0];
	ring_out = p[k % n + 1][1];
	for (int i = 1; i <= n; i++) {
		if (p[i][0] != ring_in)
			close(p[i][0]);
		if (p[i][1] != ring_out)
			close(p[i][1]);
	}
	free(p);
	if (k == 1)
		return;
	/* a non-root member: nothing but the ring */
	{
		int null = open("/dev/null", O_RDWR);

		if (null < 0)
			die("open /dev/null");
		dup2(null, 0);
		dup2(null, 1);
		close(null);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			char tok;
			ssize_t r = read(ring_in, &tok, 1);

			if (r == 1 && write(ring_out, &tok, 1) == 1)
				continue;
			if (r < 0 && errno == EINTR)
				continue;
			_exit(0);
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t last, maxgap = 0, mingap = UINT64_MAX, iters = 0;
	char line[128];

	if (argc < 2) {
		fprintf(stderr, "usage: workload idle | mem MIB | threads N | tree N\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[1], "mem") && argc == 3)
		fill_mem(strtoul(argv[2], NULL, 10));
	else if (!strcmp(argv[1], "threads") && argc == 3)
		spawn_threads(atoi(argv[2]));
	else if (!strcmp(argv[1], "tree") && argc == 3)
		spawn_tree(atoi(argv[2]));
	else if (strcmp(argv[1], "idle")) {
		fprintf(stderr, "workload: unknown workload %s\n", argv[1]);
		return 2;
	}
	snprintf(line, sizeof(line), "R %d\n", getpid());
	say(line);

	last = now_ns();
	for (;;) {
		struct timespec ts = { 0, TICK_NS };
		struct pollfd p = { 0, POLLIN, 0 };
		int r = ppoll(&p, 1, &ts, NULL);
		uint64_t t = now_ns(), gap = t - last;
		char cmd[16];
		ssize_t n;

		last = t;
		iters++;
		if (gap > maxgap)
			maxgap = gap;
		if (gap < mingap)
			mingap = gap;
		if (r <= 0)
			continue;
		n = read(0, cmd, sizeof(cmd));
		if (n == 0)
			return 0;
		for (ssize_t i = 0; i < n; i++) {
			switch (cmd[i]) {
			case 'P': {
				int ok = 1;

				if (nworkers)
					ok = workers_alive();
				if (ring_in >= 0)
					ok = ok && ring_alive();
				say(ok ? "P\n" : "P dead\n");
				break;
			}
			case 'G':
				snprintf(line, sizeof(line), "G %llu %llu %llu\n",
					 (unsigned long long)maxgap,
					 (unsigned long long)(mingap == UINT64_MAX ? 0 : mingap),
					 (unsigned long long)iters);
				say(line);
				maxgap = 0;
				mingap = UINT64_MAX;
				iters = 0;
				last = now_ns();
				break;
			case 'D': {
				static uint64_t dirty_gen;
				size_t pages = 0;

				dirty_gen++;
				for (size_t w = 0; mem && w < mem_words; w += 100 * 512, pages++)
					mem[w] ^= dirty_gen * 0x9e3779b97f4a7c15ull;
				if (mem)
					mem_hash = hash_mem();
				snprintf(line, sizeof(line), "D %zu\n", pages);
				say(line);
				break;
			}
			case 'V': {
				uint64_t h = mem ? hash_mem() : 0;

				if (h == mem_hash)
					snprintf(line, sizeof(line), "V ok %016llx\n",
						 (unsigned long long)h);
				else
					snprintf(line, sizeof(line), "V bad %016llx %016llx\n",
						 (unsigned long long)h, (unsigned long long)mem_hash);
				say(line);
				break;
			}
			}
		}
		last = now_ns();	/* the commands' own time is not a stop */
	}
}
