/* Unix sockets between processes of a tree, with data queued both ways
 * at rest (the dump sees it), exchanged and requeued by every check:
 *   socktree pair    a parent and its child over a stream socketpair, a
 *                    seqpacket one, and a stream one the child shut down
 *                    for writing after sending "bye"
 *   socktree dgram   the same over a datagram socketpair: two datagrams of
 *                    different lengths queued each way keep their bounds
 *   socktree server PATH
 *                    a listener bound to PATH and two forked clients
 *                    (which inherit the listener) connected to it; each
 *                    client has a request queued at the server, the
 *                    server a note queued at each client; a TCP listener
 *                    on 127.0.0.1 is inherited by both clients too
 *   socktree server PATH private
 *                    the same, the clients closing the listener
 *   socktree leak    a stream socket whose peer is held by a process
 *                    outside the tree (a grandchild reparented away),
 *                    with "hello" queued; each check prints "PEER open"
 *                    or "PEER closed" (POLLRDHUP) before its result
 *   socktree scm     a stream socketpair between parent and child with a
 *                    file in flight (SCM_RIGHTS: the program's own
 *                    executable, at offset 100 + round) queued towards the
 *                    child; the parent closed its fd
 *   socktree scmheld the same, but the parent keeps the file open
 * Results of the children come back over a datagram socketpair whose one
 * end all children share. Check (root): the protocol runs one round; the
 * listener still accepts a new connection; names are as before. */
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "scenario.h"

#define MSG 32

static const char *mode, *path;
static int private_listener;
static int round_no = 1;
static pid_t root, kids[2];
static int nkids;
static int res[2];		/* [0] root reads, [1] children report */
/* pair/dgram: data sockets, [i][0] the parent's, [i][1] the child's */
static int sv[3][2], nsv, shut_sv[2];
/* server */
static int lst, acc[2], conn, tcp = -1, held = -1;

static void msg(char *b, const char *what, int k);

/* scm: the executable at offset 100 + k, in flight towards the child */
static void send_file(int s, int k)
{
	int f = open("/proc/self/exe", O_RDONLY);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	char b[MSG];
	struct iovec iov = { b, MSG };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
			     .msg_controllen = sizeof(cm) };

	msg(b, "file", k);
	if (f < 0 || lseek(f, 100 + k, SEEK_SET) < 0)
		scn_die("open /proc/self/exe: %s", strerror(errno));
	memset(&cm, 0, sizeof(cm));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &f, sizeof(int));
	if (sendmsg(s, &mh, 0) != MSG)
		scn_die("sendmsg: %s", strerror(errno));
	if (!strcmp(mode, "scmheld"))
		held = f;
	else
		close(f);
}

static void expect_file(int s, int k)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	char b[MSG + 8], w[MSG];
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
			     .msg_controllen = sizeof(cm) };
	ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT);
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	struct stat a, e;
	int f;

	msg(w, "file", k);
	if (n != MSG || memcmp(b, w, MSG)) {
		scn_fail("child: got %zd bytes '%.*s' with the file, want '%s'", n,
			 (int)(n > 0 ? n : 0), b, w);
		return;
	}
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
		scn_fail("child: no file in flight with '%s'", w);
		return;
	}
	memcpy(&f, CMSG_DATA(c), sizeof(int));
	SCN_EXPECT(fstat(f, &a) == 0 && stat("/proc/self/exe", &e) == 0 && a.st_ino == e.st_ino &&
		   a.st_dev == e.st_dev, "child: the file in flight is not the executable");
	SCN_EXPECT(lseek(f, 0, SEEK_CUR) == 100 + k, "child: the file in flight is at offset %ld,"
		   " want %d", (long)lseek(f, 0, SEEK_CUR), 100 + k);
	close(f);
}
static struct sockaddr_in tcp_addr;

static void msg(char *b, const char *what, int k)
{
	memset(b, 0, MSG);
	snprintf(b, MSG, "%s-%d", what, k);
}

static int send_msg(int s, const char *what, int k)
{
	char b[MSG];

	msg(b, what, k);
	return send(s, b, MSG, MSG_NOSIGNAL) == MSG ? 0 : -1;
}

/* read one message of MSG bytes and compare */
static void expect_msg(int s, const char *what, int k, const char *where)
{
	char b[MSG + 8], w[MSG];
	ssize_t n = recv(s, b, sizeof(b), MSG_DONTWAIT);

	msg(w, what, k);
	if (n < 0)
		scn_fail("%s: nothing queued (%s), want %s", where, strerror(errno), w);
	else if (n != MSG || memcmp(b, w, MSG))
		scn_fail("%s: got %zd bytes '%.*s', want '%s'", where, n, (int)(n > 0 ? n : 0), b, w);
}

/* a datagram of exactly len bytes of c */
static void expect_dgram(int s, size_t len, char c, const char *where)
{
	char b[512];
	ssize_t n = recv(s, b, sizeof(b), MSG_DONTWAIT);

	if (n != (ssize_t)len) {
		scn_fail("%s: datagram of %zd bytes, want %zu (%s)", where, n, len,
			 n < 0 ? strerror(errno) : "boundary lost");
		return;
	}
	for (size_t i = 0; i < len; i++)
		if (b[i] != c) {
			scn_fail("%s: datagram byte %zu is %#x", where, i, b[i]);
			return;
		}
}

static void send_dgrams(int s, char c)
{
	char b[300];

	memset(b, c, sizeof(b));
	send(s, b, 7, 0);
	send(s, b, 300, 0);
}

static void report(void)
{
	char b[256];

	snprintf(b, sizeof(b), "%s", scn_nfail ? scn_fail_buf : "ok");
	send(res[1], b, strlen(b), 0);
}

static int same_name(int s, int peer)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);

	memset(&a, 0, sizeof(a));
	if ((peer ? getpeername(s, (void *)&a, &l) : getsockname(s, (void *)&a, &l)) < 0)
		return 0;
	return l > offsetof(struct sockaddr_un, sun_path) && !strcmp(a.sun_path, path);
}

/* ---- a child: one round on its signal ---- */
static void child_round(int idx)
{
	scn_check_begin();
	if (!strcmp(mode, "server")) {
		expect_msg(conn, "note", round_no, "client: the server's note");
		SCN_EXPECT(same_name(conn, 1), "client %d: getpeername is not %s", idx, path);
		if (send_msg(conn, "req", round_no + 1))
			scn_fail("client %d: send: %s", idx, strerror(errno));
	} else if (!strncmp(mode, "scm", 3)) {
		expect_file(sv[0][1], round_no);
	} else if (!strcmp(mode, "pair")) {
		char b[8];

		expect_msg(sv[0][1], "p2c-stream", round_no, "child stream");
		expect_msg(sv[1][1], "p2c-seq", round_no, "child seqpacket");
		SCN_EXPECT(send(shut_sv[1], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
			   errno == EPIPE, "child: write on its shut-down socket: %s",
			   strerror(errno));
		SCN_EXPECT(recv(shut_sv[1], b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN,
			   "child: the shut-down socket has data or EOF");
		send_msg(sv[0][1], "c2p-stream", round_no + 1);
		send_msg(sv[1][1], "c2p-seq", round_no + 1);
	} else {
		expect_dgram(sv[0][1], 7, 'p', "child: first datagram");
		expect_dgram(sv[0][1], 300, 'p', "child: second datagram");
		send_dgrams(sv[0][1], 'c');
	}
	report();
	round_no++;
}

static void child_loop(int idx)
{
	for (;;) {
		if (getppid() != root)
			_exit(0);
		if (scn_check_requested) {
			scn_check_requested = 0;
			child_round(idx);
		}
		scn_sleep_ms(20);
	}
}

/* ---- the root ---- */
static void root_round(void)
{
	char b[300];

	if (!strcmp(mode, "leak")) {
		struct pollfd p = { .fd = sv[0][0], .events = POLLIN | POLLRDHUP };

		SCN_EXPECT(recv(sv[0][0], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) == 5 &&
			   !memcmp(b, "hello", 5), "'hello' is no longer queued");
		poll(&p, 1, 0);
		printf("PEER %s\n", p.revents & POLLRDHUP ? "closed" : "open");
		return;
	}
	if (!strcmp(mode, "server")) {
		struct sockaddr_un a;
		struct stat st;
		int c, s;

		for (int i = 0; i < 2; i++) {
			expect_msg(acc[i], "req", round_no, "server: a client's request");
			SCN_EXPECT(same_name(acc[i], 0), "server: accepted socket %d's name is not %s",
				   i, path);
		}
		SCN_EXPECT(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
			   (st.st_mode & 0777) == 0750, "socket file %s: mode %o, want 0750",
			   path, (unsigned)st.st_mode);
		/* the listener still takes connections */
		memset(&a, 0, sizeof(a));
		a.sun_family = AF_UNIX;
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		SCN_EXPECT(c >= 0 && connect(c, (void *)&a, sizeof(a)) == 0,
			   "connect to the listener: %s", strerror(errno));
		s = accept(lst, NULL, NULL);
		SCN_EXPECT(s >= 0, "accept: %s", strerror(errno));
		if (s >= 0)
			close(s);
		if (c >= 0)
			close(c);
		/* so does the TCP listener the clients share */
		c = socket(AF_INET, SOCK_STREAM, 0);
		SCN_EXPECT(c >= 0 && connect(c, (void *)&tcp_addr, sizeof(tcp_addr)) == 0,
			   "connect to the TCP listener: %s", strerror(errno));
		s = accept(tcp, NULL, NULL);
		SCN_EXPECT(s >= 0, "TCP accept: %s", strerror(errno));
		/* the client closes first: TIME_WAIT on its side, not on
		 * the listener's port (which the restore binds again) */
		if (c >= 0)
			close(c);
		if (s >= 0) {
			scn_sleep_ms(10);
			close(s);
		}
	} else if (!strncmp(mode, "scm", 3)) {
		/* nothing towards the parent */
	} else if (!strcmp(mode, "pair")) {
		expect_msg(sv[0][0], "c2p-stream", round_no, "parent stream");
		expect_msg(sv[1][0], "c2p-seq", round_no, "parent seqpacket");
		SCN_EXPECT(recv(shut_sv[0], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) == 3 &&
			   !memcmp(b, "bye", 3), "parent: 'bye' is no longer queued");
	} else {
		expect_dgram(sv[0][0], 7, 'c', "parent: first datagram");
		expect_dgram(sv[0][0], 300, 'c', "parent: second datagram");
	}
	/* the children's turn */
	for (int i = 0; i < nkids; i++)
		kill(kids[i], SIGUSR1);
	for (int i = 0; i < nkids; i++) {
		ssize_t n = recv(res[0], b, sizeof(b) - 1, 0);

		b[n > 0 ? n : 0] = 0;
		if (n <= 0)
			scn_fail("a child's result: %s", strerror(errno));
		else if (strcmp(b, "ok"))
			scn_fail("a child: %s", b);
	}
	round_no++;
	/* queue the next round's data towards the children */
	if (!strcmp(mode, "server")) {
		for (int i = 0; i < 2; i++)
			send_msg(acc[i], "note", round_no);
	} else if (!strncmp(mode, "scm", 3)) {
		if (held >= 0)
			close(held);
		send_file(sv[0][0], round_no);
	} else if (!strcmp(mode, "pair")) {
		send_msg(sv[0][0], "p2c-stream", round_no);
		send_msg(sv[1][0], "p2c-seq", round_no);
	} else {
		send_dgrams(sv[0][0], 'p');
	}
}

static pid_t spawn(int idx)
{
	pid_t p = fork();

	if (p < 0)
		scn_die("fork: %s", strerror(errno));
	if (p)
		return p;
	close(res[0]);
	if (!strcmp(mode, "server")) {
		struct sockaddr_un a;

		memset(&a, 0, sizeof(a));
		a.sun_family = AF_UNIX;
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		if (private_listener)
			close(lst);
		conn = socket(AF_UNIX, SOCK_STREAM, 0);
		if (conn < 0 || connect(conn, (void *)&a, sizeof(a)) < 0)
			scn_die("client connect: %s", strerror(errno));
		send_msg(conn, "req", 1);
	} else {
		for (int i = 0; i < nsv; i++)
			close(sv[i][0]);
		if (!strcmp(mode, "pair")) {
			close(shut_sv[0]);
			send(shut_sv[1], "bye", 3, 0);
			shutdown(shut_sv[1], SHUT_WR);
			send_msg(sv[0][1], "c2p-stream", 1);
			send_msg(sv[1][1], "c2p-seq", 1);
		} else if (!strcmp(mode, "dgram")) {
			send_dgrams(sv[0][1], 'c');
		}
	}
	child_loop(idx);
	_exit(0);
}

int main(int argc, char **argv)
{
	scn_init("socktree");
	if (argc < 2 || (strcmp(argv[1], "pair") && strcmp(argv[1], "dgram") &&
			 strcmp(argv[1], "leak") && strncmp(argv[1], "scm", 3) &&
			 (strcmp(argv[1], "server") || argc < 3)))
		scn_die("usage: socktree pair|dgram|leak|scm|scmheld|server PATH [private]");
	mode = argv[1];
	path = argc > 2 ? argv[2] : "";
	private_listener = argc > 3 && !strcmp(argv[3], "private");
	root = getpid();
	scn_install_check();
	if (!strcmp(mode, "leak")) {
		pid_t mid;

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[0]) < 0)
			scn_die("socketpair: %s", strerror(errno));
		mid = fork();
		if (mid == 0) {
			if (fork() == 0) {
				/* reparented away: outside the tree */
				close(sv[0][0]);
				send(sv[0][1], "hello", 5, 0);
				while (kill(root, 0) == 0)
					scn_sleep_ms(100);
				_exit(0);
			}
			_exit(0);
		}
		waitpid(mid, NULL, 0);
		close(sv[0][1]);
		scn_sleep_ms(100);
		scn_ready();
		for (;;) {
			if (scn_check_requested) {
				scn_check_requested = 0;
				scn_check_begin();
				root_round();
				scn_check_end();
			}
			scn_sleep_ms(20);
		}
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, res) < 0)
		scn_die("socketpair: %s", strerror(errno));
	if (!strcmp(mode, "server")) {
		struct sockaddr_un a;

		memset(&a, 0, sizeof(a));
		a.sun_family = AF_UNIX;
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		socklen_t tl = sizeof(tcp_addr);

		memset(&tcp_addr, 0, sizeof(tcp_addr));
		tcp_addr.sin_family = AF_INET;
		tcp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		tcp = socket(AF_INET, SOCK_STREAM, 0);
		if (tcp < 0 || bind(tcp, (void *)&tcp_addr, sizeof(tcp_addr)) < 0 ||
		    listen(tcp, 8) < 0 || getsockname(tcp, (void *)&tcp_addr, &tl) < 0)
			scn_die("TCP listener: %s", strerror(errno));
		unlink(path);
		umask(027);	/* not cryo's: the socket file's mode comes back */
		lst = socket(AF_UNIX, SOCK_STREAM, 0);
		if (lst < 0 || bind(lst, (void *)&a, sizeof(a)) < 0 || listen(lst, 8) < 0)
			scn_die("listen on %s: %s", path, strerror(errno));
		for (int i = 0; i < 2; i++) {
			kids[nkids++] = spawn(i);
			acc[i] = accept(lst, NULL, NULL);
			if (acc[i] < 0)
				scn_die("accept: %s", strerror(errno));
			send_msg(acc[i], "note", 1);
		}
	} else {
		if (!strcmp(mode, "pair")) {
			nsv = 2;
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[0]) < 0 ||
			    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv[1]) < 0 ||
			    socketpair(AF_UNIX, SOCK_STREAM, 0, shut_sv) < 0)
				scn_die("socketpair: %s", strerror(errno));
		} else {
			nsv = 1;
			if (socketpair(AF_UNIX, strcmp(mode, "dgram") ? SOCK_STREAM : SOCK_DGRAM, 0,
				       sv[0]) < 0)
				scn_die("socketpair: %s", strerror(errno));
		}
		kids[nkids++] = spawn(0);
		for (int i = 0; i < nsv; i++)
			close(sv[i][1]);
		if (!strcmp(mode, "pair")) {
			close(shut_sv[1]);
			send_msg(sv[0][0], "p2c-stream", 1);
			send_msg(sv[1][0], "p2c-seq", 1);
		} else if (!strncmp(mode, "scm", 3)) {
			send_file(sv[0][0], 1);
		} else {
			send_dgrams(sv[0][0], 'p');
		}
	}
	close(res[1]);
	scn_sleep_ms(100);	/* the children queued their first messages */
	scn_ready();
	for (;;) {
		if (scn_check_requested) {
			scn_check_requested = 0;
			scn_check_begin();
			root_round();
			scn_check_end();
		}
		scn_sleep_ms(20);
	}
}
