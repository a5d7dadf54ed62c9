/* Files in flight (SCM_RIGHTS) on unix socket pairs. A stream pair holds,
 * in order: "file" carrying an fd of the regular file argv[1] (offset 4,
 * closed by the sender), "mid" carrying nothing, "pipe" carrying a second
 * open of a pipe's read end (closed by the sender; the process keeps both
 * ends); a datagram pair holds "dg" carrying the pipe's write end itself,
 * then "half" carrying the only read end of a second pipe, which holds
 * "queued" (the process keeps its write end only).
 * Reads take what one read returns: a stream read stops after a message
 * with files and glues the ones without before it ("midpipe").
 * Check (SIGUSR1, repeatable): the queues hold 11 and 2 bytes. SIGUSR2:
 * receive everything and print "RECEIVED ok" when the data, the message
 * boundaries and the files are right and the files work, else
 * "RECEIVED bad: ...". argv[2] = "eventfd": one more datagram carries an
 * eventfd the process closed (cryo must refuse it). */
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <linux/kcmp.h>

#include "scenario.h"

static int sv[2], dv[2], p[2], p2[2];
static ino_t file_ino;
static volatile sig_atomic_t recv_requested;
static int dgram_bytes = 2;

static void on_usr2(int sig)
{
	(void)sig;
	recv_requested = 1;
}

static void check(void)
{
	int n = -1;

	SCN_EXPECT(ioctl(sv[1], FIONREAD, &n) == 0 && n == 11, "stream queue %d bytes, want 11", n);
	n = -1;
	SCN_EXPECT(ioctl(dv[1], FIONREAD, &n) == 0 && n == dgram_bytes, "datagram queue %d bytes, want %d", n,
		   dgram_bytes);
}

static int sendfd(int s, const char *msg, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { (void *)msg, strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = &cm;
		mh.msg_controllen = sizeof(cm);
		cm.h.cmsg_level = SOL_SOCKET;
		cm.h.cmsg_type = SCM_RIGHTS;
		cm.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
	}
	return sendmsg(s, &mh, 0) == (ssize_t)strlen(msg) ? 0 : -1;
}

/* len bytes, and the one fd that came with them (-1: none, -2: several) */
static int recvfd(int s, char *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
			     .msg_controllen = sizeof(cm) };
	ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT);

	*fd = -1;
	if (n < 0)
		return -1;
	buf[n] = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_type == SCM_RIGHTS) {
			if (c->cmsg_len != CMSG_LEN(sizeof(int)))
				*fd = -2;
			else
				memcpy(fd, CMSG_DATA(c), sizeof(int));
		}
	return (int)n;
}

static void receive(void)
{
	char b[64], r[64];
	struct stat st;
	int fd, fl;

	scn_check_begin();
	/* message 1: the file, at offset 4, read-write */
	if (recvfd(sv[1], b, 16, &fd) != 4 || strcmp(b, "file") || fd < 0) {
		scn_fail("message 1: '%s' fd %d", b, fd);
	} else {
		SCN_EXPECT(fstat(fd, &st) == 0 && st.st_ino == file_ino, "message 1: another file");
		SCN_EXPECT(lseek(fd, 0, SEEK_CUR) == 4, "message 1: offset %ld",
			   (long)lseek(fd, 0, SEEK_CUR));
		memset(r, 0, sizeof(r));
		SCN_EXPECT(read(fd, r, sizeof(r) - 1) == 6 && !strcmp(r, "456789"),
			   "message 1: read '%s'", r);
		fl = fcntl(fd, F_GETFL);
		SCN_EXPECT((fl & O_ACCMODE) == O_RDWR, "message 1: flags %#o", fl);
		close(fd);
	}
	/* messages 2 and 3, glued by the read: a read end of the pipe,
	 * non-blocking */
	if (recvfd(sv[1], b, 16, &fd) != 7 || strcmp(b, "midpipe") || fd < 0) {
		scn_fail("message 3: '%s' fd %d", b, fd);
	} else {
		fl = fcntl(fd, F_GETFL);
		SCN_EXPECT((fl & O_ACCMODE) == O_RDONLY && (fl & O_NONBLOCK), "message 3: flags %#o",
			   fl);
		memset(r, 0, sizeof(r));
		if (write(p[1], "hello", 5) != 5 || read(fd, r, sizeof(r) - 1) != 5 ||
		    strcmp(r, "hello"))
			scn_fail("message 3: the pipe does not work ('%s')", r);
		close(fd);
	}
	SCN_EXPECT(recvfd(sv[1], b, 16, &fd) < 0 && errno == EAGAIN, "more on the stream");
	/* the datagram: the pipe's write end itself */
	if (recvfd(dv[1], b, 16, &fd) != 2 || strcmp(b, "dg") || fd < 0) {
		scn_fail("datagram: '%s' fd %d", b, fd);
	} else {
		SCN_EXPECT(syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, fd, p[1]) == 0,
			   "datagram: not the pipe's write end");
		memset(r, 0, sizeof(r));
		if (write(fd, "dgpipe", 6) != 6 || read(p[0], r, sizeof(r) - 1) != 6)
			scn_fail("datagram: the pipe does not work ('%s')", r);
		close(fd);
	}
	/* the read end of the second pipe, with its queued bytes */
	if (recvfd(dv[1], b, 16, &fd) != 4 || strcmp(b, "half") || fd < 0) {
		scn_fail("datagram 2: '%s' fd %d", b, fd);
	} else {
		memset(r, 0, sizeof(r));
		if (write(p2[1], "+more", 5) != 5 || read(fd, r, sizeof(r) - 1) != 11 ||
		    strcmp(r, "queued+more"))
			scn_fail("datagram 2: the pipe gave '%s'", r);
		close(fd);
	}
	printf("RECEIVED %s%s\n", scn_nfail ? "bad: " : "ok", scn_nfail ? scn_fail_buf : "");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct stat st;
	char proc[64];
	int f, q;

	scn_init("scmfds");
	if (argc < 2)
		scn_die("usage: scmfds FILE");
	signal(SIGUSR2, on_usr2);
	f = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 4, SEEK_SET) != 4 ||
	    fstat(f, &st) < 0)
		scn_die("%s: %s", argv[1], strerror(errno));
	file_ino = st.st_ino;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dv) ||
	    pipe(p) || pipe(p2))
		scn_die("socketpair/pipe: %s", strerror(errno));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p[0]);
	q = open(proc, O_RDONLY | O_NONBLOCK);
	if (q < 0 || sendfd(sv[0], "file", f) || sendfd(sv[0], "mid", -1) ||
	    sendfd(sv[0], "pipe", q) || sendfd(dv[0], "dg", p[1]))
		scn_die("send: %s", strerror(errno));
	close(f);
	close(q);
	if (write(p2[1], "queued", 6) != 6 || sendfd(dv[0], "half", p2[0]))
		scn_die("second pipe: %s", strerror(errno));
	close(p2[0]);
	if (argc > 2 && !strcmp(argv[2], "eventfd")) {
		int ev = eventfd(3, 0);

		if (ev < 0 || sendfd(dv[0], "ev", ev))
			scn_die("eventfd: %s", strerror(errno));
		close(ev);
		dgram_bytes = 2;	/* FIONREAD: the first datagram */
	}
	scn_install_check();
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (recv_requested) {
			recv_requested = 0;
			receive();
		}
		scn_sleep_ms(50);
	}
}
