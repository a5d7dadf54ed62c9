/* A job started from a shell on a terminal (run it under tests/progs/ptyrun
 * through "sh -c"): its session and terminal belong to the shell. With
 * argv[1] = "fg" it leads its own process group and takes the terminal's
 * foreground, as an interactive shell does for a job. Prints "PID n" before
 * READY; every line read from the terminal is answered "GOT <line>".
 * Check: stdin is a terminal whose session is ours and, with "fg", whose
 * foreground group is ours. argv[2] = "devtty": fd 3 is /dev/tty, checked
 * to be our session's terminal too. */
#include <poll.h>
#include <termios.h>

#include "scenario.h"

static int fg, devtty = -1;

static void check(void)
{
	pid_t tsid = tcgetsid(0), tpg = tcgetpgrp(0);

	SCN_EXPECT(isatty(0), "stdin is not a terminal");
	SCN_EXPECT(tsid == getsid(0), "the terminal's session is %d, ours %d", tsid, getsid(0));
	SCN_EXPECT(getsid(0) != getpid(), "we lead session %d", getsid(0));
	if (devtty >= 0)
		SCN_EXPECT(isatty(devtty) && tcgetsid(devtty) == getsid(0), "/dev/tty fd %d: session %d",
			   devtty, tcgetsid(devtty));
	if (fg) {
		SCN_EXPECT(getpgrp() == getpid(), "group %d, not our own", getpgrp());
		SCN_EXPECT(tpg == getpgrp(), "foreground group is %d, ours %d", tpg, getpgrp());
	}
}

int main(int argc, char **argv)
{
	char line[256];
	size_t len = 0;

	scn_init("ttyjob");
	fg = argc > 1 && !strcmp(argv[1], "fg");
	if (argc > 2 && !strcmp(argv[2], "devtty")) {
		devtty = open("/dev/tty", O_RDWR);
		if (devtty != 3)
			scn_die("/dev/tty as fd 3: %s", strerror(errno));
	}
	if (fg) {
		signal(SIGTTOU, SIG_IGN);
		if (setpgid(0, 0) < 0 || tcsetpgrp(0, getpid()) < 0)
			scn_die("take the foreground: %s", strerror(errno));
		signal(SIGTTOU, SIG_DFL);
	}
	scn_install_check();
	printf("PID %d\n", getpid());
	scn_ready();
	for (;;) {
		struct pollfd p = { 0, POLLIN, 0 };

		scn_poll(check);
		if (poll(&p, 1, 50) == 1 && (p.revents & POLLIN)) {
			ssize_t n = read(0, line + len, sizeof(line) - 1 - len);

			if (n <= 0)
				continue;
			len += (size_t)n;
			line[len] = 0;
			if (strchr(line, '\n') || len == sizeof(line) - 1) {
				line[strcspn(line, "\n")] = 0;
				printf("GOT %s\n", line);
				fflush(stdout);
				len = 0;
			}
		}
	}
}
