/* Test harness, not a scenario: run CMD on a new pseudo-terminal as its
 * session leader (the pty is its controlling terminal, stdio on the
 * slave), copy our stdin (a FIFO may be written to many times) to the terminal and the terminal's output to our
 * stdout without the '\r' of ONLCR. Exits with CMD's status once CMD has
 * exited and nobody holds the slave any more. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int m, st = 0, in_open = 1;
	pid_t pid;
	char *name;
	struct stat sb;

	if (argc < 2) {
		fprintf(stderr, "usage: ptyrun CMD [ARGS...]\n");
		return 2;
	}
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || !(name = ptsname(m))) {
		perror("ptyrun: pty");
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		int s;

		setsid();
		s = open(name, O_RDWR);
		if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0) {
			perror("ptyrun: slave");
			_exit(2);
		}
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		if (s > 2)
			close(s);
		close(m);
		execvp(argv[1], argv + 1);
		perror("ptyrun: exec");
		_exit(127);
	}
	/* a FIFO on stdin: hold a writer, so that its writers may come and go */
	if (fstat(0, &sb) == 0 && S_ISFIFO(sb.st_mode))
		open("/proc/self/fd/0", O_RDWR | O_CLOEXEC);
	for (;;) {
		struct pollfd p[2] = { { m, POLLIN, 0 }, { 0, POLLIN, 0 } };
		char buf[4096], out[4096];
		ssize_t n;
		size_t k = 0;

		if (poll(p, in_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			n = read(m, buf, sizeof(buf));
			if (n <= 0)
				break;	/* EIO: every slave fd is closed */
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != '\r')
					out[k++] = buf[i];
			if (write(1, out, k) < 0)
				break;
		}
		if (in_open && p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				in_open = 0;
			else if (write(m, buf, (size_t)n) < 0)
				break;
		}
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
