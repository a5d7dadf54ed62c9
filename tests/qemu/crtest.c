// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * crtest - small actions the guest suite needs that busybox lacks: plain
 * execve with a reported errno, arming through /proc/binfmt_cr/arm, running
 * as another user, a traced exec, file capabilities, and the setpgid probe
 * for PF_FORKNOEXEC. Messages go to stdout, one fact a line.
 *
 *   crtest exec PATH [ARG...]            execve(PATH, {PATH, ARG...})
 *   crtest armexec IDX PATH [ARG...]     write "arm IDX", then the same
 *   crtest armstate IDX                  arm, print state, disarm, print
 *   crtest arm-wait IDX                  arm, print "armed", sleep forever
 *   crtest runas UID GID CMD [ARG...]    drop to UID/GID, execvp CMD
 *   crtest traced CMD [ARG...]           run CMD under PTRACE_TRACEME
 *   crtest setcap FILE                   set security.capability (net_raw)
 *   crtest thread-armexec IDX PATH       a second thread arms and execs PATH
 *                                        (de_thread: it takes over the pid)
 *   crtest forkexec-setpgid IMAGE        child arms + execs IMAGE (whose
 *                                        argv makes target wait on stdin);
 *                                        parent then setpgid()s it
 *
 * exec failures print "exec-errno=NAME" and exit 99. Execs use a fixed
 * environment ("CRTEST=1") so stack layouts repeat from run to run.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define ARM_FILE "/proc/binfmt_cr/arm"

static char *const env[] = { "CRTEST=1", NULL };

static const char *errname(int e)
{
	switch (e) {
	case ENOEXEC: return "ENOEXEC";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case E2BIG: return "E2BIG";
	case EINVAL: return "EINVAL";
	case ENODEV: return "ENODEV";
	case ELOOP: return "ELOOP";
	case ETXTBSY: return "ETXTBSY";
	case ESRCH: return "ESRCH";
	default: return "other";
	}
}

static int arm(const char *idx)
{
	char cmd[64];
	int fd, n;

	fd = open(ARM_FILE, O_WRONLY);
	if (fd < 0) {
		printf("arm-errno=%s\n", errname(errno));
		return -1;
	}
	n = snprintf(cmd, sizeof(cmd), "arm %s\n", idx);
	if (write(fd, cmd, n) != n) {
		printf("arm-errno=%s\n", errname(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void show_state(void)
{
	char buf[64];
	int fd = open(ARM_FILE, O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		printf("state-errno=%s\n", errname(errno));
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	printf("state=%s", buf);
}

static int do_exec(char **argv)
{
	fflush(stdout);
	execve(argv[0], argv, env);
	printf("exec-errno=%s (%d)\n", errname(errno), errno);
	return 99;
}

static int traced(char **argv)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return 98;
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL)) {
			perror("PTRACE_TRACEME");
			_exit(97);
		}
		raise(SIGSTOP);
		execvp(argv[0], argv);
		printf("exec-errno=%s (%d)\n", errname(errno), errno);
		_exit(99);
	}
	for (;;) {
		int sig = 0;

		if (waitpid(pid, &status, 0) < 0)
			return 98;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
		if (WIFSTOPPED(status)) {
			sig = WSTOPSIG(status);
			/* the initial SIGSTOP and the exec SIGTRAP are ours */
			if (sig == SIGSTOP || sig == SIGTRAP)
				sig = 0;
		}
		ptrace(PTRACE_CONT, pid, NULL, (void *)(intptr_t)sig);
	}
}

/* VFS_CAP_REVISION_2 with CAP_NET_RAW (13) permitted and effective */
static int setcap(const char *file)
{
	uint32_t cap[5] = { 0x02000000u | 1u, 1u << 13, 0, 0, 0 };

	if (setxattr(file, "security.capability", cap, sizeof(cap), 0)) {
		printf("setcap-errno=%s\n", errname(errno));
		return 1;
	}
	return 0;
}

static char *thread_idx, *thread_path;

static void *thread_main(void *arg)
{
	char *argv[] = { thread_path, NULL };

	(void)arg;
	if (arm(thread_idx))
		exit(96);
	exit(do_exec(argv));
}

static int thread_armexec(char *idx, char *path)
{
	pthread_t t;

	thread_idx = idx;
	thread_path = path;
	if (pthread_create(&t, NULL, thread_main, NULL))
		return 98;
	for (;;)
		pause();
}

static int forkexec_setpgid(const char *image)
{
	int in[2], out[2];
	char line[64];
	ssize_t n;
	pid_t pid;
	int status, ret;

	if (pipe(in) || pipe(out))
		return 98;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 98;
	if (pid == 0) {
		char *argv[] = { (char *)image, NULL };

		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		if (arm("0"))
			_exit(96);
		execve(image, argv, env);
		printf("exec-errno=%s\n", errname(errno));
		_exit(99);
	}
	close(in[0]);
	close(out[1]);
	/* wait until the exec'd program runs: its probe work is done */
	n = read(out[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	if (strncmp(line, "ready", 5)) {
		printf("child-said=%s\n", line);
		close(in[1]);
		waitpid(pid, &status, 0);
		return 1;
	}
	ret = setpgid(pid, pid);
	printf("setpgid=%s\n", ret ? errname(errno) : "0");
	close(in[1]);
	waitpid(pid, &status, 0);
	printf("child-status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "exec") && argc > 2)
		return do_exec(argv + 2);
	if (!strcmp(cmd, "armexec") && argc > 3) {
		if (arm(argv[2]))
			return 96;
		return do_exec(argv + 3);
	}
	if (!strcmp(cmd, "armstate") && argc > 2) {
		int fd;

		show_state();
		if (arm(argv[2]))
			return 96;
		show_state();
		fd = open(ARM_FILE, O_WRONLY);
		if (fd < 0 || write(fd, "disarm", 6) != 6)
			printf("disarm-errno=%s\n", errname(errno));
		if (fd >= 0)
			close(fd);
		show_state();
		return 0;
	}
	if (!strcmp(cmd, "arm-wait") && argc > 2) {
		if (arm(argv[2]))
			return 96;
		printf("armed\n");
		for (;;)
			pause();
	}
	if (!strcmp(cmd, "runas") && argc > 4) {
		uid_t uid = (uid_t)atoi(argv[2]);
		gid_t gid = (gid_t)atoi(argv[3]);

		if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) {
			perror("runas");
			return 97;
		}
		execvp(argv[4], argv + 4);
		perror(argv[4]);
		return 99;
	}
	if (!strcmp(cmd, "traced") && argc > 2)
		return traced(argv + 2);
	if (!strcmp(cmd, "setcap") && argc > 2)
		return setcap(argv[2]);
	if (!strcmp(cmd, "thread-armexec") && argc > 3)
		return thread_armexec(argv[2], argv[3]);
	if (!strcmp(cmd, "forkexec-setpgid") && argc > 2)
		return forkexec_setpgid(argv[2]);
	fprintf(stderr, "usage: see the comment at the top of crtest.c\n");
	return 2;
}
