/* tcpconn: established TCP connections with bytes queued unread in both
 * directions (tests/bats/tcp.bats, --tcp-established).
 *
 *   tcpconn client PORT: connected to tests/progs/tcppeer on 127.0.0.1:PORT,
 *     outside the tree. The peer's 5000-byte greeting stays unread here, and
 *     our 3000-byte request unread there, until the first check. The socket
 *     is O_NONBLOCK, with TCP_NODELAY and SO_REUSEADDR. Check: (first time)
 *     the greeting and the echo of the request arrive complete and in order;
 *     then 5 round trips; the socket's addresses, O_NONBLOCK, TCP_NODELAY
 *     and SO_REUSEADDR are as before.
 *   tcpconn tree [v6] [big]: a parent and its forked child connected over
 *     127.0.0.1 (::1 with v6; the parent still listening on the port); each
 *     has sent the other bytes it has not read (big: the child wrote until
 *     its socket was full: bytes wait in its send queue, some never sent).
 *     Check (parent): (first time) the child's bytes; then SIGUSR1 to the
 *     child, which reads (first time) the parent's bytes and answers 3
 *     requests; a failed check in the child answers 'F'.
 *
 * On SIGTERM the client closes its connection cleanly (a FIN). */
#include "scenario.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define GREET 5000	/* tcppeer's greeting */
#define REQ 3000	/* our first request, left unread by the peer */
#define PGREET 2000	/* tree: parent -> child */
#define CGREET 3000	/* tree: child -> parent */

static int c, first = 1;
static struct sockaddr_storage me, peer;
static socklen_t melen, peerlen;
static pid_t child;
static uint64_t cbytes = CGREET;	/* tree: the child's bytes, queued at READY */

static unsigned char pat(int i, int salt)
{
	return (unsigned char)(i * 7 + salt);
}

/* read exactly n bytes, waiting up to 3 s in all */
static int read_full(int fd, void *b, size_t n)
{
	size_t got = 0;

	for (int tries = 0; got < n && tries < 300;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t k;

		if (poll(&p, 1, 10) == 0) {
			tries++;
			continue;
		}
		k = read(fd, (char *)b + got, n - got);
		if (k == 0)
			return -2;	/* EOF */
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)k;
	}
	return got == n ? 0 : -3;
}

static int write_full(int fd, const void *b, size_t n)
{
	size_t put = 0;

	while (put < n) {
		ssize_t k = write(fd, (const char *)b + put, n - put);

		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { fd, POLLOUT, 0 };

			poll(&p, 1, 100);
			continue;
		}
		if (k <= 0)
			return -1;
		put += (size_t)k;
	}
	return 0;
}

static const char *why(int r)
{
	return r == -2 ? "end of stream" : r == -3 ? "timeout" : strerror(errno);
}

static int check_pattern(const unsigned char *b, int n, int salt)
{
	for (int i = 0; i < n; i++)
		if (b[i] != pat(i, salt))
			return i;
	return -1;
}

static void check_addrs(int fd)
{
	struct sockaddr_storage a, p;
	socklen_t al = sizeof(a), pl = sizeof(p);

	SCN_EXPECT(getsockname(fd, (struct sockaddr *)&a, &al) == 0 && al == melen &&
		   !memcmp(&a, &me, al), "local address changed");
	SCN_EXPECT(getpeername(fd, (struct sockaddr *)&p, &pl) == 0 && pl == peerlen &&
		   !memcmp(&p, &peer, pl), "peer address changed");
}

static void round_trips(int fd, int count, int salt)
{
	unsigned char q[100], r[100];
	int e;

	for (int k = 0; k < count; k++) {
		for (int i = 0; i < (int)sizeof(q); i++)
			q[i] = pat(i + k, salt);
		if (write_full(fd, q, sizeof(q))) {
			scn_fail("round trip %d: write: %s", k, strerror(errno));
			return;
		}
		e = read_full(fd, r, sizeof(r));
		if (e) {
			scn_fail("round trip %d: read: %s", k, why(e));
			return;
		}
		SCN_EXPECT(!memcmp(q, r, sizeof(q)), "round trip %d: wrong answer", k);
	}
}

static void check_client(void)
{
	static unsigned char b[GREET];
	int e, v = 0;
	socklen_t vl = sizeof(v);

	check_addrs(c);
	SCN_EXPECT(fcntl(c, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	SCN_EXPECT(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1,
		   "TCP_NODELAY lost");
	vl = sizeof(v);
	SCN_EXPECT(getsockopt(c, SOL_SOCKET, SO_REUSEADDR, &v, &vl) == 0 && v == 1,
		   "SO_REUSEADDR lost (%d)", v);
	if (first) {
		first = 0;
		e = read_full(c, b, GREET);
		if (e) {
			scn_fail("the greeting: %s", why(e));
			return;
		}
		e = check_pattern(b, GREET, 3);
		SCN_EXPECT(e < 0, "the greeting differs at byte %d", e);
		e = read_full(c, b, REQ);
		if (e) {
			scn_fail("the echo of the queued request: %s", why(e));
			return;
		}
		e = check_pattern(b, REQ, 11);
		SCN_EXPECT(e < 0, "the echo of the queued request differs at byte %d", e);
	}
	round_trips(c, 5, 29);
}

static void client(int port)
{
	struct sockaddr_in *pa = (struct sockaddr_in *)&peer;
	unsigned char req[REQ];
	int one = 1, q = 0;

	pa->sin_family = AF_INET;
	pa->sin_port = htons((uint16_t)port);
	pa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peerlen = sizeof(*pa);
	melen = sizeof(me);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    connect(c, (struct sockaddr *)&peer, peerlen) ||
	    getsockname(c, (struct sockaddr *)&me, &melen) ||
	    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    fcntl(c, F_SETFL, O_NONBLOCK))
		scn_die("connect to port %d: %s", port, strerror(errno));
	for (int i = 0; i < REQ; i++)
		req[i] = pat(i, 11);
	if (write_full(c, req, REQ))
		scn_die("request: %s", strerror(errno));
	/* both queues full before READY: the greeting here, our request
	 * acknowledged (nothing left to send) */
	for (int i = 0; i < 300; i++) {
		int out = 1;

		if (ioctl(c, FIONREAD, &q) == 0 && q == GREET && ioctl(c, TIOCOUTQ, &out) == 0 &&
		    out == 0)
			break;
		scn_sleep_ms(10);
	}
	if (q != GREET)
		scn_die("the greeting did not arrive (%d bytes)", q);
	scn_install_check();
	scn_ready();
	scn_loop(check_client);
}

/* ---- tree ---- */

static void child_serve(void)
{
	static unsigned char b[PGREET];
	unsigned char r[64];
	int bad = 0;

	if (first) {
		first = 0;
		if (read_full(c, b, PGREET) || check_pattern(b, PGREET, 5) >= 0)
			bad = 1;
		{
			struct sockaddr_storage a;
			socklen_t al = sizeof(a);

			if (getsockname(c, (struct sockaddr *)&a, &al) || al != melen ||
			    memcmp(&a, &me, al))
				bad = 1;
		}
	}
	for (int k = 0; k < 3; k++) {
		if (read_full(c, r, sizeof(r)))
			_exit(3);
		for (int i = 0; i < (int)sizeof(r); i++)
			r[i] = bad ? 'F' : (unsigned char)(r[i] + 1);
		if (write_full(c, r, sizeof(r)))
			_exit(3);
	}
}

static void check_tree(void)
{
	static unsigned char b[64 << 10];
	unsigned char q[64], r[64];
	int e;

	check_addrs(c);
	if (first) {
		first = 0;
		/* the child's bytes: a pattern, cbytes long */
		for (uint64_t at = 0; at < cbytes;) {
			size_t n = cbytes - at > sizeof(b) ? sizeof(b) : (size_t)(cbytes - at);

			e = read_full(c, b, n);
			if (e) {
				scn_fail("the child's bytes at %llu of %llu: %s",
					 (unsigned long long)at, (unsigned long long)cbytes, why(e));
				return;
			}
			for (size_t i = 0; i < n; i++)
				if (b[i] != pat((int)(at + i), 9)) {
					scn_fail("the child's bytes differ at byte %llu",
						 (unsigned long long)(at + i));
					return;
				}
			at += n;
		}
	}
	if (kill(child, SIGUSR1)) {
		scn_fail("the child is gone: %s", strerror(errno));
		return;
	}
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < (int)sizeof(q); i++)
			q[i] = pat(i + k, 17);
		if (write_full(c, q, sizeof(q))) {
			scn_fail("request %d: %s", k, strerror(errno));
			return;
		}
		e = read_full(c, r, sizeof(r));
		if (e) {
			scn_fail("answer %d: %s", k, why(e));
			return;
		}
		if (r[0] == 'F' && r[1] == 'F') {
			scn_fail("the child's check failed (the parent's bytes or its address)");
			return;
		}
		for (int i = 0; i < (int)sizeof(q); i++)
			if (r[i] != (unsigned char)(q[i] + 1)) {
				scn_fail("answer %d differs at byte %d", k, i);
				return;
			}
	}
}

/* v6: over ::1; big: the child writes until its socket is full, so that
 * bytes wait in its send queue, some never sent (the parent's receive
 * window is full) */
static void tree(int v6, int big)
{
	unsigned char g[64 << 10];
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	int l, q = 0, pp[2];

	memset(&a, 0, sizeof(a));
	if (v6) {
		((struct sockaddr_in6 *)&a)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
		al = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&a)->sin_family = AF_INET;
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		al = sizeof(struct sockaddr_in);
	}
	l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, al) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al) || pipe(pp))
		scn_die("listen: %s", strerror(errno));
	scn_install_check();	/* inherited: the child's requests */
	child = fork();
	if (child < 0)
		scn_die("fork: %s", strerror(errno));
	if (child == 0) {
		uint64_t total = 0;

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		close(l);
		close(pp[0]);
		melen = sizeof(me);
		c = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, al) ||
		    getsockname(c, (struct sockaddr *)&me, &melen))
			_exit(2);
		if (big)
			fcntl(c, F_SETFL, O_NONBLOCK);
		for (;;) {
			size_t n = big ? sizeof(g) : CGREET;
			ssize_t k;

			for (size_t i = 0; i < n; i++)
				g[i] = pat((int)(total + i), 9);
			k = write(c, g, n);
			if (k < 0 && errno == EAGAIN)
				break;
			if (k <= 0)
				_exit(2);
			total += (uint64_t)k;
			if (!big && total == CGREET)
				break;
			if (!big)
				_exit(2);
		}
		if (big)
			fcntl(c, F_SETFL, 0);
		if (write(pp[1], &total, sizeof(total)) != sizeof(total))
			_exit(2);
		close(pp[1]);
		for (;;) {
			if (scn_check_requested) {
				scn_check_requested = 0;
				child_serve();
			}
			scn_sleep_ms(20);
		}
	}
	close(pp[1]);
	peerlen = sizeof(peer);
	c = accept(l, (struct sockaddr *)&peer, &peerlen);
	melen = sizeof(me);
	if (c < 0 || getsockname(c, (struct sockaddr *)&me, &melen))
		scn_die("accept: %s", strerror(errno));
	for (int i = 0; i < PGREET; i++)
		g[i] = pat(i, 5);
	if (write_full(c, g, PGREET))
		scn_die("write: %s", strerror(errno));
	if (read(pp[0], &cbytes, sizeof(cbytes)) != sizeof(cbytes))
		scn_die("the child failed to send its bytes");
	close(pp[0]);
	if (big) {
		/* settled: what the window let through has arrived */
		scn_sleep_ms(200);
	} else {
		for (int i = 0; i < 300; i++) {
			if (ioctl(c, FIONREAD, &q) == 0 && q == CGREET)
				break;
			scn_sleep_ms(10);
		}
		if (q != CGREET)
			scn_die("the child's bytes did not arrive (%d bytes)", q);
	}
	scn_ready();
	printf("child queued %llu bytes\n", (unsigned long long)cbytes);
	fflush(stdout);
	scn_loop(check_tree);
}

int main(int argc, char **argv)
{
	scn_init("tcpconn");
	if (argc == 3 && !strcmp(argv[1], "client"))
		client(atoi(argv[2]));
	if (argc >= 2 && !strcmp(argv[1], "tree")) {
		int v6 = 0, big = 0;

		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "v6"))
				v6 = 1;
			else if (!strcmp(argv[i], "big"))
				big = 1;
			else
				scn_die("tree: unknown option %s", argv[i]);
		}
		tree(v6, big);
	}
	scn_die("usage: tcpconn client PORT | tree [v6] [big]");
}
