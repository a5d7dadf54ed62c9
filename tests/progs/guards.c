/* guards: 8 pages reserved PROT_NONE; pages 2..5 get known content and are
 * made read-only, leaving PROT_NONE guards on both sides:
 *   [base, base+2p) ---p   [base+2p, base+6p) r--p   [base+6p, base+8p) ---p
 * Check: /proc/self/maps has exactly these perms at exactly these bounds
 * (the outer edges of the guards may merge with neighbours), all anonymous,
 * and the read-only content is intact. */
#include "scenario.h"
#include <sys/mman.h>

static size_t pg;
static unsigned char *base, *ro;

static unsigned char ro_byte(size_t k)
{
	return (unsigned char)(scn_mix64(k / 8) >> (8 * (k % 8)));
}

static void expect_vma(uintptr_t addr, uintptr_t start, uintptr_t end, int exact_start,
		       int exact_end, const char *perms, const char *what)
{
	struct scn_vma v;
	int r = scn_find_vma(addr, &v);

	if (r < 0) {
		scn_fail("read /proc/self/maps: %s", strerror(errno));
		return;
	}
	if (r == 0) {
		scn_fail("%s: no mapping at %#lx", what, (unsigned long)addr);
		return;
	}
	SCN_EXPECT(strcmp(v.perms, perms) == 0, "%s: perms %s, want %s [%s]", what, v.perms,
		   perms, v.line);
	SCN_EXPECT(exact_start ? v.start == start : v.start <= start,
		   "%s: starts at %#lx, want %s%#lx [%s]", what, (unsigned long)v.start,
		   exact_start ? "" : "<= ", (unsigned long)start, v.line);
	SCN_EXPECT(exact_end ? v.end == end : v.end >= end,
		   "%s: ends at %#lx, want %s%#lx [%s]", what, (unsigned long)v.end,
		   exact_end ? "" : ">= ", (unsigned long)end, v.line);
	SCN_EXPECT(v.inode == 0 && v.path[0] == '\0', "%s: not anonymous [%s]", what, v.line);
}

static void check(void)
{
	uintptr_t b = (uintptr_t)base, r = (uintptr_t)ro;
	size_t bad = 0, first = 0;

	expect_vma(b, b, r, 0, 1, "---p", "low guard");
	expect_vma(r, r, r + 4 * pg, 1, 1, "r--p", "read-only area");
	expect_vma(r + 4 * pg, r + 4 * pg, b + 8 * pg, 1, 0, "---p", "high guard");
	for (size_t k = 0; k < 4 * pg; k++) {
		if (ro[k] != ro_byte(k)) {
			if (!bad)
				first = k;
			bad++;
		}
	}
	SCN_EXPECT(bad == 0, "read-only content: %zu bytes differ, first at +%#zx: %#x want %#x",
		   bad, first, ro[first], ro_byte(first));
}

int main(void)
{
	scn_init("guards");
	pg = (size_t)sysconf(_SC_PAGESIZE);
	base = mmap(NULL, 8 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		scn_die("mmap: %s", strerror(errno));
	ro = base + 2 * pg;
	if (mprotect(ro, 4 * pg, PROT_READ | PROT_WRITE) != 0)
		scn_die("mprotect rw: %s", strerror(errno));
	for (size_t k = 0; k < 4 * pg; k++)
		ro[k] = ro_byte(k);
	if (mprotect(ro, 4 * pg, PROT_READ) != 0)
		scn_die("mprotect r: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
