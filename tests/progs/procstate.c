/* procstate: chdir(argv[1]), umask(027), RLIMIT_NOFILE soft limit 200 (hard
 * unchanged). Check: getcwd, umask (read with two umask() calls), getrlimit. */
#include "scenario.h"
#include <limits.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define SOFT_NOFILE 200

static char cwd0[PATH_MAX];
static rlim_t hard0;

static void check(void)
{
	char cwd[PATH_MAX];
	struct rlimit rl;
	mode_t m;

	if (!getcwd(cwd, sizeof(cwd)))
		scn_fail("getcwd: %s", strerror(errno));
	else
		SCN_EXPECT(strcmp(cwd, cwd0) == 0, "cwd '%s', want '%s'", cwd, cwd0);
	m = umask(0);
	umask(m);
	SCN_EXPECT(m == 027, "umask %04o, want 0027", (unsigned)m);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		scn_fail("getrlimit: %s", strerror(errno));
	} else {
		SCN_EXPECT(rl.rlim_cur == SOFT_NOFILE, "RLIMIT_NOFILE soft %llu, want %d",
			   (unsigned long long)rl.rlim_cur, SOFT_NOFILE);
		SCN_EXPECT(rl.rlim_max == hard0, "RLIMIT_NOFILE hard %llu, want %llu",
			   (unsigned long long)rl.rlim_max, (unsigned long long)hard0);
	}
}

int main(int argc, char **argv)
{
	struct rlimit rl;

	scn_init("procstate");
	if (argc < 2)
		scn_die("usage: procstate DIR");
	if (chdir(argv[1]) != 0)
		scn_die("chdir %s: %s", argv[1], strerror(errno));
	if (!getcwd(cwd0, sizeof(cwd0)))
		scn_die("getcwd: %s", strerror(errno));
	umask(027);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		scn_die("getrlimit: %s", strerror(errno));
	hard0 = rl.rlim_max;
	if (hard0 != RLIM_INFINITY && hard0 < SOFT_NOFILE)
		scn_die("hard RLIMIT_NOFILE %llu < %d", (unsigned long long)hard0, SOFT_NOFILE);
	rl.rlim_cur = SOFT_NOFILE;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		scn_die("setrlimit: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
