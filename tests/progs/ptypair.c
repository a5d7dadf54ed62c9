/* A pseudo-terminal held across a tree, as a terminal emulator or sshd
 * holds one: the root keeps the master (packet mode, custom termios and
 * window size) and a second, still locked pty; a child session leader has
 * the slave as its controlling terminal and a grandchild's group as the
 * terminal's foreground. Check: the root asks the child over the pty, the
 * child answers whether its session, terminal, foreground group and
 * settings are as set up; the root checks lock state and packet mode.
 * argv[1] = "queued": the child never reads, and the root leaves a line
 * unread in the slave's input (the dump must refuse it). "orphan": the
 * master is handed to a process outside the tree, the root keeps the
 * slave as fd 3 (refused too). "console", "serial": fd 3 is /dev/console or
 * /dev/ttyS0 (refused by name; exits 77 if it cannot be opened). */
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>

#include "scenario.h"

static int m = -1, m2 = -1;
static pid_t child;

static void child_main(const char *name, int reads)
{
	struct termios t;
	struct winsize ws;
	pid_t g;
	int s;

	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* go with the root */
	close(m);
	close(m2);
	setsid();
	s = open(name, O_RDWR);	/* our controlling terminal */
	if (s < 0)
		_exit(3);
	g = fork();
	if (g == 0) {
		pid_t sid = getppid();

		/* the foreground group answers: a background read would fail */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		while (tcgetpgrp(s) != getpid())
			scn_sleep_ms(10);
		for (;;) {
			char q[64], a[512] = "";
			ssize_t n;
			int tfd;

			if (!reads) {
				pause();
				continue;
			}
			n = read(s, q, sizeof(q) - 1);
			if (n <= 0) {
				scn_sleep_ms(50);
				continue;
			}
#define BAD(...) snprintf(a + strlen(a), sizeof(a) - strlen(a), " " __VA_ARGS__)
			if (getsid(0) != sid)
				BAD("sid %d want %d", getsid(0), sid);
			if (tcgetsid(s) != sid)
				BAD("tcgetsid %d want %d", tcgetsid(s), sid);
			if (tcgetpgrp(s) != getpgrp() || getpgrp() != getpid())
				BAD("foreground %d, our group %d", tcgetpgrp(s), getpgrp());
			tfd = open("/dev/tty", O_RDWR);
			if (tfd < 0)
				BAD("/dev/tty: %s", strerror(errno));
			else
				close(tfd);
			if (tcgetattr(s, &t) < 0 || (t.c_lflag & ECHO) || t.c_cc[VINTR] != 7 ||
			    !(t.c_lflag & ICANON))
				BAD("termios lflag %#x intr %d", t.c_lflag, t.c_cc[VINTR]);
			if (ioctl(s, TIOCGWINSZ, &ws) < 0 || ws.ws_row != 33 || ws.ws_col != 101 ||
			    ws.ws_xpixel != 7)
				BAD("winsize %dx%d", ws.ws_row, ws.ws_col);
			if (!a[0])
				strcpy(a, "ok");
			strcat(a, "\n");
			if (write(s, a, strlen(a)) < 0)
				_exit(4);
		}
	}
	setpgid(g, g);
	signal(SIGTTOU, SIG_IGN);
	tcsetpgrp(s, g);
	for (;;)
		pause();
}

/* One reply line from the child, through packet mode: each read starts
 * with a packet byte, 0 for data. */
static int ask(char *reply, size_t len)
{
	size_t k = 0;

	if (write(m, "q\n", 2) != 2)
		return -1;
	while (k < len - 1) {
		struct pollfd p = { m, POLLIN, 0 };
		char buf[256];
		ssize_t n;

		if (poll(&p, 1, 3000) != 1)
			return -1;
		n = read(m, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		if (buf[0] != 0)
			continue;	/* a control packet */
		for (ssize_t i = 1; i < n && k < len - 1; i++)
			if (buf[i] != '\r')
				reply[k++] = buf[i];
		reply[k] = 0;
		if (strchr(reply, '\n'))
			return 0;
	}
	return -1;
}

static void check(void)
{
	char r[512] = "";
	int v = -1;
	struct winsize ws;

	SCN_EXPECT(ioctl(m, TIOCGPTLCK, &v) == 0 && v == 0, "pty 1 lock %d", v);
	v = -1;
	SCN_EXPECT(ioctl(m2, TIOCGPTLCK, &v) == 0 && v == 1, "pty 2 lock %d (want locked)", v);
	v = -1;
	SCN_EXPECT(ioctl(m, TIOCGPKT, &v) == 0 && v == 1, "packet mode %d", v);
	SCN_EXPECT(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33, "master winsize rows %d",
		   ws.ws_row);
	if (ask(r, sizeof(r)) < 0)
		scn_fail("no answer from the child over the pty (got '%s')", r);
	else
		SCN_EXPECT(!strcmp(r, "ok\n"), "child: %s", r);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct termios t;
	struct winsize ws = { 33, 101, 7, 9 };
	char name[64];
	int one = 1;

	scn_init("ptypair");
	if (!strcmp(mode, "console") || !strcmp(mode, "serial")) {
		const char *dev = mode[0] == 'c' ? "/dev/console" : "/dev/ttyS0";

		if (open(dev, O_RDONLY | O_NOCTTY | O_NONBLOCK) != 3) {
			printf("SKIP %s: %s\n", dev, strerror(errno));
			return 77;
		}
		scn_install_check();
		scn_ready();
		for (;;) {
			if (scn_check_requested) {
				scn_check_requested = 0;
				scn_check_begin();
				SCN_EXPECT(isatty(3), "fd 3 is no terminal");
				scn_check_end();
			}
			scn_sleep_ms(50);
		}
	}
	m = posix_openpt(O_RDWR | O_NOCTTY);
	m2 = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || m2 < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof(name)))
		scn_die("pty: %s", strerror(errno));
	if (tcgetattr(m, &t) < 0)
		scn_die("tcgetattr: %s", strerror(errno));
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_cc[VINTR] = 7;
	if (tcsetattr(m, TCSANOW, &t) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0 ||
	    ioctl(m, TIOCPKT, &one) < 0)
		scn_die("settings: %s", strerror(errno));
	if (!strcmp(mode, "orphan")) {
		pid_t root = getpid(), mid = fork();

		if (mid == 0) {
			if (fork() == 0) {
				/* outside the tree: reparented away from the root */
				close(m2);
				while (kill(root, 0) == 0)
					scn_sleep_ms(100);
				_exit(0);
			}
			_exit(0);
		}
		waitpid(mid, NULL, 0);
		close(m);
		m = -1;
		if (open(name, O_RDWR | O_NOCTTY) != 3)
			scn_die("slave: not fd 3: %s", strerror(errno));
		scn_install_check();
		scn_ready();
		for (;;) {
			if (scn_check_requested) {
				scn_check_requested = 0;
				scn_check_begin();
				SCN_EXPECT(isatty(3), "fd 3 is no terminal");
				scn_check_end();
			}
			scn_sleep_ms(50);
		}
	}
	child = fork();
	if (child == 0)
		child_main(name, strcmp(mode, "queued") != 0);
	scn_sleep_ms(200);	/* the child has its terminal */
	if (!strcmp(mode, "queued")) {
		if (write(m, "stuck\n", 6) != 6)
			scn_die("write: %s", strerror(errno));
		scn_install_check();
		scn_ready();
		for (;;) {
			if (scn_check_requested) {
				scn_check_requested = 0;
				scn_check_begin();
				SCN_EXPECT(kill(child, 0) == 0, "child gone");
				scn_check_end();
			}
			scn_sleep_ms(50);
		}
	}
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
