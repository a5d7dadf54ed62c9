/* A parent and a child that remember their pids. Check: getpid() is still
 * the pid the parent started with, and the child is still its child under
 * its old pid (what a restore into a new pid namespace must give). */
#include <sys/wait.h>

#include "scenario.h"

static pid_t self, child;

static void check(void)
{
	SCN_EXPECT(getpid() == self, "getpid() is %d, was %d", getpid(), self);
	SCN_EXPECT(kill(child, 0) == 0, "child %d: %s", child, strerror(errno));
	SCN_EXPECT(waitpid(child, NULL, WNOHANG) == 0, "child %d is not our running child", child);
}

static void on_term(int sig)
{
	(void)sig;
	kill(child, SIGKILL);
	_exit(0);
}

int main(void)
{
	struct sigaction sa;

	scn_init("pidns");
	self = getpid();
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	printf("PIDS %d %d\n", self, child);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
