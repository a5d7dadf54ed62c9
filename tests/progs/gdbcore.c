/* gdbcore: a known call chain and a known global, for `cryo core`.
 *
 * main -> gdbcore_outer -> gdbcore_middle -> gdbcore_inner, which prints
 * READY and then waits (in nanosleep) forever. The global is computed at
 * run time, so its page of .data is written and lives in the swapfile,
 * not in the executable: gdb printing GDBCORE_VALUE from a core shows
 * that the core carries the checkpointed memory.
 *
 * tests/bats/tools.bats dumps it, writes a core with `cryo core` and checks
 * `gdb -batch -ex bt -ex 'print gdbcore_global'`.
 */
#include "scenario.h"

#define GDBCORE_VALUE 1272726L	/* 424242 * 3: what gdb must print */

long gdbcore_global = 7;	/* .data, not .bss: the page starts file-backed */
static volatile long factor = 3;
static volatile int stop;

static void check(void)
{
	SCN_EXPECT(gdbcore_global == GDBCORE_VALUE, "gdbcore_global is %ld, want %ld",
		   gdbcore_global, GDBCORE_VALUE);
}

/* noipa: keep each frame real (no inlining, cloning or tail calls), so the
 * backtrace has exactly these functions */
__attribute__((noipa)) int gdbcore_inner(int n)
{
	gdbcore_global = 424242L * factor;
	scn_ready();
	while (!stop) {
		scn_poll(check);
		scn_sleep_ms(50);
	}
	return n + 1;
}

__attribute__((noipa)) int gdbcore_middle(int n)
{
	return gdbcore_inner(n + 1) + 1;
}

__attribute__((noipa)) int gdbcore_outer(int n)
{
	return gdbcore_middle(n + 1) + 1;
}

int main(void)
{
	scn_init("gdbcore");
	scn_install_check();
	return gdbcore_outer(0) == 4 ? 0 : 1;
}
