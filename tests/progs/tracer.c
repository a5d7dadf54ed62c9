/* tracer PID [all|thread]: a minimal debugger. PTRACE_SEIZEs PID (its
 * leader; "all": every thread; "thread": one thread other than the
 * leader), prints "READY", then passes on every signal its tracees stop
 * for, so that they run as if untraced. SIGTERM: exits (the kernel
 * detaches the tracees). Not a scenario: no check. */
#include <dirent.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "scenario.h"

static int seize(pid_t tid)
{
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
		printf("FAIL tracer: seize %d: %s\n", tid, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "leader";
	pid_t pid;
	int n = 0;

	scn_init("tracer");
	if (argc < 2)
		scn_die("usage: tracer PID [all|thread]");
	pid = atoi(argv[1]);
	if (!strcmp(mode, "leader")) {
		n = seize(pid) == 0;
	} else {
		char path[64];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		if (!d)
			scn_die("%s: %s", path, strerror(errno));
		while ((de = readdir(d))) {
			pid_t tid = atoi(de->d_name);

			if (tid <= 0 || (!strcmp(mode, "thread") && (tid == pid || n)))
				continue;
			n += seize(tid) == 0;
		}
		closedir(d);
	}
	if (!n)
		scn_die("traced no thread of %d", pid);
	scn_ready();
	for (;;) {
		int st, sig = 0;
		pid_t t = waitpid(-1, &st, __WALL);

		if (t < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				return 0;	/* every tracee is gone */
			scn_die("waitpid: %s", strerror(errno));
		}
		if (!WIFSTOPPED(st))
			continue;
		if ((st >> 16) == 0)
			sig = WSTOPSIG(st);	/* a signal for the tracee */
		ptrace(PTRACE_CONT, t, 0, (void *)(long)sig);
	}
}
