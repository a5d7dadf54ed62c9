/* heap: malloc argv[1] MiB (default 256) filled with a pattern that depends
 * on the offset; the check verifies every word. */
#include "scenario.h"

static uint64_t *mem;
static size_t nwords;

static void check(void)
{
	size_t bad = 0, first = 0;

	for (size_t i = 0; i < nwords; i++) {
		if (mem[i] != scn_mix64(i)) {
			if (!bad)
				first = i;
			bad++;
		}
	}
	SCN_EXPECT(bad == 0, "%zu of %zu words differ, first at offset %#zx (%p): %#llx, want %#llx",
		   bad, nwords, first * 8, (void *)&mem[first],
		   (unsigned long long)mem[first], (unsigned long long)scn_mix64(first));
}

int main(int argc, char **argv)
{
	long mib = 256;

	scn_init("heap");
	if (argc > 1) {
		char *end;

		mib = strtol(argv[1], &end, 10);
		if (*end || mib <= 0)
			scn_die("bad size '%s' (MiB)", argv[1]);
	}
	nwords = (size_t)mib << 17;	/* MiB / 8 bytes */
	mem = malloc(nwords * sizeof(*mem));
	if (!mem)
		scn_die("malloc %ld MiB failed", mib);
	for (size_t i = 0; i < nwords; i++)
		mem[i] = scn_mix64(i);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
