/* dirtier: argv[1] MiB (default 128) of anonymous memory, every page
 * patterned by its index and a per-page generation. Each SIGUSR2 rewrites
 * the same 1% of the pages (pages p with p % 100 == 0) with their next
 * generation, so each round's versions of them are unique to that round, and prints "DIRTIED round
 * pages". The check (SIGUSR1) verifies every word of every page. */
#include "scenario.h"
#include <sys/mman.h>

#define PG 4096
static uint64_t *mem;
static uint32_t *gen;
static size_t npages;
static unsigned round_no;
static volatile sig_atomic_t dirty_requested;

static uint64_t word(size_t page, size_t i, uint32_t g)
{
	return scn_mix64(page * (PG / 8) + i) ^ ((uint64_t)g * 0x9e3779b97f4a7c15ull);
}

static void fill(size_t p)
{
	uint64_t *w = mem + p * (PG / 8);

	for (size_t i = 0; i < PG / 8; i++)
		w[i] = word(p, i, gen[p]);
}

static void check(void)
{
	size_t bad = 0, first = 0;

	for (size_t p = 0; p < npages; p++)
		for (size_t i = 0; i < PG / 8; i++)
			if (mem[p * (PG / 8) + i] != word(p, i, gen[p])) {
				if (!bad)
					first = p;
				bad++;
				break;
			}
	SCN_EXPECT(bad == 0, "%zu of %zu pages differ, first page %zu (%p)", bad, npages,
		   first, (void *)(mem + first * (PG / 8)));
}

static void on_usr2(int sig)
{
	(void)sig;
	dirty_requested = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	long mib = 128;

	scn_init("dirtier");
	if (argc > 1) {
		char *end;

		mib = strtol(argv[1], &end, 10);
		if (*end || mib <= 0)
			scn_die("bad size '%s' (MiB)", argv[1]);
	}
	npages = (size_t)mib << 8;
	mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	if (mem == MAP_FAILED || !gen)
		scn_die("allocating %ld MiB failed", mib);
	for (size_t p = 0; p < npages; p++)
		fill(p);
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL))
		scn_die("sigaction(SIGUSR2): %s", strerror(errno));
	scn_install_check();
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (dirty_requested) {
			size_t n = 0;

			dirty_requested = 0;
			for (size_t p = 0; p < npages; p += 100, n++) {
				gen[p]++;
				fill(p);
			}
			printf("DIRTIED %u %zu\n", round_no++, n);
			fflush(stdout);
		}
		scn_sleep_ms(50);
	}
}
