/* Holds a seccomp filter (allow-all), which cryo cannot restore yet: the
 * dump must be refused by name and leave the process running. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

#include "scenario.h"

static void check(void)
{
	SCN_EXPECT(prctl(PR_GET_SECCOMP) == 2, "seccomp mode %d", prctl(PR_GET_SECCOMP));
}

int main(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { 1, &allow };

	scn_init("seccompd");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		scn_die("seccomp: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
