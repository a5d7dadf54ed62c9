/* unixsk: a stream socketpair with "abc" + "defg" queued towards s[0] and
 * "xyz" towards s[1]; a datagram socketpair with "one", "" and "three"
 * queued towards d[0]; a seqpacket pair with nothing queued; a stream
 * socket listening on argv[1]. Check: everything reads back in order with
 * datagram boundaries (then is queued again), and a client connects to
 * the listener and is accepted. */
#include "scenario.h"
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

static int s[2], d[2], q[2], l;
static struct sockaddr_un addr;

static void check(void)
{
	char buf[64];
	ssize_t n;
	int c, a;

	n = recv(s[0], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_EXPECT(n == 7 && !memcmp(buf, "abcdefg", 7), "stream s0 read %zd '%.*s'", n,
		   (int)(n > 0 ? n : 0), buf);
	n = recv(s[1], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_EXPECT(n == 3 && !memcmp(buf, "xyz", 3), "stream s1 read %zd", n);
	if (send(s[1], "abc", 3, 0) != 3 || send(s[1], "defg", 4, 0) != 4 ||
	    send(s[0], "xyz", 3, 0) != 3)
		scn_fail("requeue: %s", strerror(errno));
	n = recv(d[0], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_EXPECT(n == 3 && !memcmp(buf, "one", 3), "dgram 1: %zd", n);
	n = recv(d[0], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_EXPECT(n == 0, "dgram 2 (empty): %zd", n);
	n = recv(d[0], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_EXPECT(n == 5 && !memcmp(buf, "three", 5), "dgram 3: %zd", n);
	n = recv(d[0], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_EXPECT(n < 0 && errno == EAGAIN, "a 4th datagram: %zd", n);
	if (send(d[1], "one", 3, 0) != 3 || send(d[1], "", 0, 0) != 0 ||
	    send(d[1], "three", 5, 0) != 5)
		scn_fail("requeue datagrams: %s", strerror(errno));
	if (send(q[0], "pkt", 3, 0) != 3 || recv(q[1], buf, sizeof(buf), 0) != 3)
		scn_fail("seqpacket pair: %s", strerror(errno));
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		scn_fail("connect to %s: %s", addr.sun_path, strerror(errno));
	} else {
		a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		SCN_EXPECT(a >= 0, "accept: %s", strerror(errno));
		if (a >= 0 && (send(c, "!", 1, 0) != 1 || recv(a, buf, 1, 0) != 1))
			scn_fail("accepted connection carries no byte");
		if (a >= 0)
			close(a);
	}
	if (c >= 0)
		close(c);
}

int main(int argc, char **argv)
{
	scn_init("unixsk");
	if (argc < 2)
		scn_die("usage: unixsk SOCKET_PATH");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) || socketpair(AF_UNIX, SOCK_DGRAM, 0, d) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, q))
		scn_die("socketpair: %s", strerror(errno));
	if (send(s[1], "abc", 3, 0) != 3 || send(s[1], "defg", 4, 0) != 4 ||
	    send(s[0], "xyz", 3, 0) != 3 || send(d[1], "one", 3, 0) != 3 ||
	    send(d[1], "", 0, 0) != 0 || send(d[1], "three", 5, 0) != 5)
		scn_die("send: %s", strerror(errno));
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof(addr)) || listen(l, 5))
		scn_die("listen on %s: %s", argv[1], strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
