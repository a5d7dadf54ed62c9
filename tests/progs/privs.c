/* privs MODE: ids and dumpability, for the privilege tests in
 * tests/bats/reliability.bats. Meant to be run from a setuid copy by an
 * unprivileged user, or directly.
 *   keep    keep the ids the exec gave (a setuid copy runs with euid 0)
 *   drop    give up what a setuid exec added: all uids/gids become the real
 *           ones, as well-behaved setuid programs do
 *   nodump  prctl(PR_SET_DUMPABLE, 0)
 * Prints "IDS ruid euid suid rgid egid sgid" after setting up.
 * Check: the ids are the ones it printed, and (nodump) it is still not
 * dumpable. */
#include "scenario.h"
#include <sys/prctl.h>

static uid_t u[3];
static gid_t g[3];
static int nodump;

static void check(void)
{
	uid_t nu[3];
	gid_t ng[3];

	getresuid(&nu[0], &nu[1], &nu[2]);
	getresgid(&ng[0], &ng[1], &ng[2]);
	SCN_EXPECT(!memcmp(nu, u, sizeof(u)) && !memcmp(ng, g, sizeof(g)),
		   "ids %u %u %u %u %u %u, were %u %u %u %u %u %u", nu[0], nu[1], nu[2], ng[0],
		   ng[1], ng[2], u[0], u[1], u[2], g[0], g[1], g[2]);
	if (nodump)
		SCN_EXPECT(prctl(PR_GET_DUMPABLE) == 0, "dumpable is %d, want 0",
			   prctl(PR_GET_DUMPABLE));
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "keep";

	scn_init("privs");
	if (!strcmp(mode, "drop")) {
		gid_t rg = getgid();
		uid_t ru = getuid();

		if (setresgid(rg, rg, rg) || setresuid(ru, ru, ru))
			scn_die("drop ids: %s", strerror(errno));
	} else if (!strcmp(mode, "nodump")) {
		nodump = 1;
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
			scn_die("PR_SET_DUMPABLE: %s", strerror(errno));
	} else if (strcmp(mode, "keep")) {
		scn_die("mode %s: want keep, drop or nodump", mode);
	}
	getresuid(&u[0], &u[1], &u[2]);
	getresgid(&g[0], &g[1], &g[2]);
	printf("IDS %u %u %u %u %u %u\n", u[0], u[1], u[2], g[0], g[1], g[2]);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
