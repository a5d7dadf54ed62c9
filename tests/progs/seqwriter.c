/* seqwriter: argv[1] MiB (default 64) of anonymous memory written without
 * pause, page after page: step s (1, 2, ...) rewrites page (s-1) % npages
 * whole with a pattern of s, then sets `last` = s. So at any instant every
 * page holds the latest step that wrote it, the page of step last+1 may be
 * half-written, and nothing else is possible: a restore that mixes pages of
 * different moments shows. Before each rewrite the loop checks the page
 * still holds its previous step (a stale page after a restore is caught
 * even after the writer moved on); the check (SIGUSR1) pauses the writer
 * and verifies every page against `last`. Prints "STEP last" on SIGUSR2. */
#include "scenario.h"
#include <sys/mman.h>

#define PG 4096
#define WORDS (PG / 8)
static uint64_t *mem;
static size_t npages;
static volatile uint64_t last;
static volatile sig_atomic_t step_requested;
static uint64_t bad_step, bad_page, bad_found, bad_want;

static uint64_t word(uint64_t step, size_t i)
{
	return scn_mix64(step * WORDS + i + 1);
}

/* the step page p holds once `upto` steps are done (0: the initial fill) */
static uint64_t want_step(size_t p, uint64_t upto)
{
	if (upto < p + 1)
		return 0;
	return upto - (upto - (p + 1)) % npages;
}

static int page_is(size_t p, uint64_t step)
{
	const uint64_t *w = mem + p * WORDS;

	for (size_t i = 0; i < WORDS; i++)
		if (w[i] != word(step, i))
			return 0;
	return 1;
}

static uint64_t page_step(size_t p)
{
	/* which step does word 0 say (for the failure message) */
	for (uint64_t s = last + 1; s + npages * 4 > last + 1 && s > 0; s--)
		if (mem[p * WORDS] == word(s, 0))
			return s;
	return UINT64_MAX;
}

static void check(void)
{
	size_t bad = 0, first = 0;
	uint64_t upto = last;
	size_t inflight = upto % npages;	/* page of step upto + 1 */

	SCN_EXPECT(!bad_step, "step %lu found page %lu holding step %lu, want %lu",
		   (unsigned long)bad_step, (unsigned long)bad_page, (unsigned long)bad_found,
		   (unsigned long)bad_want);
	for (size_t p = 0; p < npages; p++) {
		if (p == inflight)
			continue;
		if (!page_is(p, want_step(p, upto))) {
			if (!bad)
				first = p;
			bad++;
		}
	}
	SCN_EXPECT(bad == 0, "after step %lu: %zu of %zu pages are not their latest step, first"
		   " page %zu holds step %lu, want %lu", (unsigned long)upto, bad, npages, first,
		   (unsigned long)page_step(first), (unsigned long)want_step(first, upto));
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
	uint64_t s;

	scn_init("seqwriter");
	if (argc > 1) {
		char *end;

		mib = strtol(argv[1], &end, 10);
		if (*end || mib <= 0)
			scn_die("bad size '%s' (MiB)", argv[1]);
	}
	npages = (size_t)mib << 8;
	mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		scn_die("allocating %ld MiB failed", mib);
	for (size_t p = 0; p < npages; p++)
		for (size_t i = 0; i < WORDS; i++)
			mem[p * WORDS + i] = word(0, i);
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL))
		scn_die("sigaction(SIGUSR2): %s", strerror(errno));
	scn_install_check();
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (step_requested) {
			step_requested = 0;
			printf("STEP %lu\n", (unsigned long)last);
			fflush(stdout);
		}
		/* 16 pages, then a 100 us pause: about 600 MiB/s at most */
		for (int k = 0; k < 16; k++) {
			size_t p;
			uint64_t *w;

			s = last + 1;
			p = (s - 1) % npages;
			w = mem + p * WORDS;
			if (!bad_step && !page_is(p, want_step(p, s - 1))) {
				bad_step = s;
				bad_page = p;
				bad_found = page_step(p);
				bad_want = want_step(p, s - 1);
			}
			for (size_t i = 0; i < WORDS; i++)
				w[i] = word(s, i);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			last = s;
		}
		{
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
		}
	}
}
