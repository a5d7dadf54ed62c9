/* Run a command as a child subreaper: orphans of the processes it starts
 * (e.g. the children of a tree that `cryo --kill` killed) are reparented
 * here and reaped at once, so their pids, groups and sessions are free for
 * the restore that follows, whatever the machine's init does with
 * orphans. Exits with the command's status when the command exits. */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t cmd;
	int st;

	if (argc < 2) {
		fprintf(stderr, "usage: reaper CMD [ARGS...]\n");
		return 2;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	cmd = fork();
	if (cmd == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	for (;;) {
		pid_t p = wait(&st);

		if (p < 0)
			return 1;
		if (p == cmd)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}
