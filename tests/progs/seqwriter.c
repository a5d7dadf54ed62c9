/* seqwriter: argv[1] MiB (default 64) of anonymous memory written without
 * pause by argv[2] writer threads (default 0: the main thread writes).
 * The memory is split into one lane per writer; in its lane a writer's
 * step s (1, 2, ...) rewrites page (s-1) % lane_pages whole with a pattern
 * of (lane, s), then sets the lane's `last` = s. So at any instant every
 * page holds the latest step that wrote it, the page of step last+1 may be
 * half-written, and nothing else is possible: a restore that mixes pages of
 * different moments shows. Before each rewrite the writer checks the page
 * still holds its previous step (a stale page after a restore is caught
 * even after the writer moved on); the check (SIGUSR1) pauses the writers
 * and verifies every page against `last`. Prints "STEP last..." on SIGUSR2. */
#include "scenario.h"
#include <pthread.h>
#include <sys/mman.h>

#define PG 4096
#define WORDS (PG / 8)
#define MAX_LANES 16

struct lane {
	uint64_t *mem;
	size_t npages;
	volatile uint64_t last;
	volatile int paused;
	uint64_t bad_step, bad_page, bad_found, bad_want;
};

static struct lane lanes[MAX_LANES];
static int nlanes = 1, nthreads;
static volatile int pause_req;
static volatile sig_atomic_t step_requested;

static uint64_t word(int lane, uint64_t step, size_t i)
{
	return scn_mix64(((uint64_t)lane << 56) ^ (step * WORDS + i + 1));
}

/* the step page p holds once `upto` steps are done (0: the initial fill) */
static uint64_t want_step(const struct lane *l, size_t p, uint64_t upto)
{
	if (upto < p + 1)
		return 0;
	return upto - (upto - (p + 1)) % l->npages;
}

static int page_is(int lane, size_t p, uint64_t step)
{
	const uint64_t *w = lanes[lane].mem + p * WORDS;

	for (size_t i = 0; i < WORDS; i++)
		if (w[i] != word(lane, step, i))
			return 0;
	return 1;
}

static uint64_t page_step(int lane, size_t p)
{
	const struct lane *l = &lanes[lane];

	/* which step does word 0 say (for the failure message) */
	for (uint64_t s = l->last + 1; s + l->npages * 4 > l->last + 1 && s > 0; s--)
		if (l->mem[p * WORDS] == word(lane, s, 0))
			return s;
	return UINT64_MAX;
}

/* 16 pages of one lane */
static void burst(int lane)
{
	struct lane *l = &lanes[lane];

	for (int k = 0; k < 16; k++) {
		uint64_t s = l->last + 1;
		size_t p = (s - 1) % l->npages;
		uint64_t *w = l->mem + p * WORDS;

		if (!l->bad_step && !page_is(lane, p, want_step(l, p, s - 1))) {
			l->bad_step = s;
			l->bad_page = p;
			l->bad_found = page_step(lane, p);
			l->bad_want = want_step(l, p, s - 1);
		}
		for (size_t i = 0; i < WORDS; i++)
			w[i] = word(lane, s, i);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		l->last = s;
	}
}

static void pause_100us(void)
{
	struct timespec ts = { 0, 100000 };

	nanosleep(&ts, NULL);
}

static void *writer(void *arg)
{
	int lane = (int)(intptr_t)arg;

	for (;;) {
		if (pause_req) {
			lanes[lane].paused = 1;
			while (pause_req)
				pause_100us();
			lanes[lane].paused = 0;
		}
		burst(lane);
		pause_100us();	/* about 600 MiB/s per writer at most */
	}
	return NULL;
}

static void check(void)
{
	pause_req = 1;
	for (int t = 0; t < nthreads; t++)
		while (!lanes[t].paused)
			pause_100us();
	for (int t = 0; t < nlanes; t++) {
		const struct lane *l = &lanes[t];
		uint64_t upto = l->last;
		size_t bad = 0, first = 0, inflight = upto % l->npages;

		SCN_EXPECT(!l->bad_step, "lane %d: step %lu found page %lu holding step %lu, want"
			   " %lu", t, (unsigned long)l->bad_step, (unsigned long)l->bad_page,
			   (unsigned long)l->bad_found, (unsigned long)l->bad_want);
		for (size_t p = 0; p < l->npages; p++) {
			if (p == inflight)
				continue;
			if (!page_is(t, p, want_step(l, p, upto))) {
				if (!bad)
					first = p;
				bad++;
			}
		}
		SCN_EXPECT(bad == 0, "lane %d after step %lu: %zu of %zu pages are not their latest"
			   " step, first page %zu holds step %lu, want %lu", t, (unsigned long)upto,
			   bad, l->npages, first, (unsigned long)page_step(t, first),
			   (unsigned long)want_step(l, first, upto));
	}
	pause_req = 0;
}

static void on_usr2(int sig)
{
	(void)sig;
	step_requested = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	long mib = 64;
	size_t npages;
	uint64_t *mem;

	scn_init("seqwriter");
	if (argc > 1) {
		char *end;

		mib = strtol(argv[1], &end, 10);
		if (*end || mib <= 0)
			scn_die("bad size '%s' (MiB)", argv[1]);
	}
	if (argc > 2) {
		nthreads = atoi(argv[2]);
		if (nthreads < 0 || nthreads > MAX_LANES)
			scn_die("bad thread count '%s'", argv[2]);
	}
	nlanes = nthreads ? nthreads : 1;
	npages = (size_t)mib << 8;
	mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		scn_die("allocating %ld MiB failed", mib);
	for (int t = 0; t < nlanes; t++) {
		lanes[t].mem = mem + (npages / nlanes) * t * WORDS;
		lanes[t].npages = npages / nlanes;
		for (size_t p = 0; p < lanes[t].npages; p++)
			for (size_t i = 0; i < WORDS; i++)
				lanes[t].mem[p * WORDS + i] = word(t, 0, i);
	}
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL))
		scn_die("sigaction(SIGUSR2): %s", strerror(errno));
	scn_install_check();
	for (int t = 0; t < nthreads; t++) {
		pthread_t th;
		sigset_t all, old;

		/* signals go to the main thread */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		if (pthread_create(&th, NULL, writer, (void *)(intptr_t)t))
			scn_die("pthread_create failed");
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (step_requested) {
			step_requested = 0;
			printf("STEP");
			for (int t = 0; t < nlanes; t++)
				printf(" %lu", (unsigned long)lanes[t].last);
			printf("\n");
			fflush(stdout);
		}
		if (nthreads) {
			scn_sleep_ms(20);
		} else {
			burst(0);
			pause_100us();
		}
	}
}
