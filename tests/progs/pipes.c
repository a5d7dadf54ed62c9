/* pipes: pipe A holds "hello, pipe" (11 bytes) in a 128 KiB pipe, its read
 * end O_NONBLOCK with F_SETOWN(self) and F_SETSIG(SIGRTMIN+1), its write
 * end dup'ed. Pipe B is empty, read end FD_CLOEXEC.
 * Check: size, queued count, flags, owner, signal; reading A returns the
 * bytes in order (written back after); the two write fds share one open
 * file (a flag set on one shows on the other); B is empty and a byte
 * written to it comes out. FIFO argv[1] is open O_RDWR with "fifo!" queued
 * and O_RDONLY|O_NONBLOCK: both still read it (then it is written back). */
#include "scenario.h"
#include <sys/ioctl.h>

#define MSG "hello, pipe"

static int a[2], a2, b[2], f1 = -1, f2 = -1;

static void check(void)
{
	char buf[64];
	int q = -1, fl;
	ssize_t n;

	SCN_EXPECT(fcntl(a[0], F_GETPIPE_SZ) == 128 << 10, "pipe size %d",
		   fcntl(a[0], F_GETPIPE_SZ));
	SCN_EXPECT(ioctl(a[0], FIONREAD, &q) == 0 && q == 11, "queued %d, want 11", q);
	SCN_EXPECT(fcntl(a[0], F_GETFL) & O_NONBLOCK, "read end lost O_NONBLOCK");
	SCN_EXPECT(!(fcntl(a[1], F_GETFL) & O_NONBLOCK), "write end has O_NONBLOCK");
	SCN_EXPECT(fcntl(a[0], F_GETOWN) == getpid(), "owner %d, want %d",
		   fcntl(a[0], F_GETOWN), getpid());
	SCN_EXPECT(fcntl(a[0], F_GETSIG) == SIGRTMIN + 1, "F_GETSIG %d", fcntl(a[0], F_GETSIG));
	SCN_EXPECT(fcntl(b[0], F_GETFD) == FD_CLOEXEC, "pipe B read end lost FD_CLOEXEC");
	SCN_EXPECT(fcntl(a[1], F_GETFD) == 0, "pipe A write end has FD_CLOEXEC");
	n = read(a[0], buf, sizeof(buf));
	SCN_EXPECT(n == 11 && !memcmp(buf, MSG, 11), "read %zd bytes '%.*s'", n,
		   (int)(n > 0 ? n : 0), buf);
	if (write(a2, MSG, 11) != 11)	/* through the dup */
		scn_fail("write back: %s", strerror(errno));
	fl = fcntl(a[1], F_GETFL);
	fcntl(a2, F_SETFL, fl | O_NONBLOCK);
	SCN_EXPECT(fcntl(a[1], F_GETFL) & O_NONBLOCK, "fds %d and %d do not share their file",
		   a[1], a2);
	fcntl(a2, F_SETFL, fl);
	SCN_EXPECT(ioctl(b[0], FIONREAD, &q) == 0 && q == 0, "pipe B queued %d", q);
	if (write(b[1], "x", 1) != 1 || read(b[0], buf, 1) != 1 || buf[0] != 'x')
		scn_fail("pipe B does not carry a byte");
	if (f1 < 0)
		return;
	n = read(f2, buf, sizeof(buf));
	SCN_EXPECT(n == 5 && !memcmp(buf, "fifo!", 5), "FIFO read %zd", n);
	if (write(f1, "fifo!", 5) != 5)
		scn_fail("FIFO write: %s", strerror(errno));
	SCN_EXPECT((fcntl(f2, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK), "FIFO reader flags %#x",
		   fcntl(f2, F_GETFL));
}

int main(int argc, char **argv)
{
	scn_init("pipes");
	if (argc > 1) {
		f1 = open(argv[1], O_RDWR);
		f2 = open(argv[1], O_RDONLY | O_NONBLOCK);
		if (f1 < 0 || f2 < 0 || write(f1, "fifo!", 5) != 5)
			scn_die("FIFO %s: %s", argv[1], strerror(errno));
	}
	if (pipe(a) || pipe2(b, O_CLOEXEC))
		scn_die("pipe: %s", strerror(errno));
	fcntl(b[1], F_SETFD, 0);
	a2 = dup(a[1]);
	if (fcntl(a[0], F_SETPIPE_SZ, 128 << 10) < 0)
		scn_die("F_SETPIPE_SZ: %s", strerror(errno));
	if (write(a[1], MSG, 11) != 11)
		scn_die("write: %s", strerror(errno));
	fcntl(a[0], F_SETFL, O_NONBLOCK);
	fcntl(a[0], F_SETOWN, getpid());
	fcntl(a[0], F_SETSIG, SIGRTMIN + 1);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
