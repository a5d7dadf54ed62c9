/* Holds one socket state cryo refuses (argv[1]), for the refusal tests:
 *   unixlisten  a listening unix socket with a connection not yet accepted
 *   tcplisten   a TCP listener on 127.0.0.1 with a connection not yet accepted
 *   outside     a unix stream socket connected to a listener of a process
 *               outside the tree
 *   peergone    a unix stream socket whose peer was closed
 *   dgramqueued an unconnected unix datagram socket with a datagram queued
 *   udpqueued   a UDP socket with a datagram queued
 *   unlinked    a unix socket bound to argv[2], which was then removed
 *   selfconn    a connection the process made to its own named listener
 *   raw         a raw IPv4 socket (exits 77 without CAP_NET_RAW)
 * Check: the socket (fd 3) is still there, with its state. */
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "scenario.h"

static const char *kind;

static void check(void)
{
	int type = 0;
	socklen_t l = sizeof(type);

	SCN_EXPECT(getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &l) == 0, "fd 3: %s",
		   strerror(errno));
}

/* an abstract unix name unique to this process */
static socklen_t uname_of(struct sockaddr_un *a, const char *tag)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
		snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "cryo-skrefuse-%s-%d", tag,
			 getpid()));
}

int main(int argc, char **argv)
{
	struct sockaddr_un ua;
	socklen_t ul;
	int s, c, sv[2];

	scn_init("skrefuse");
	kind = argc > 1 ? argv[1] : "";
	if (!strcmp(kind, "unixlisten")) {
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		ul = uname_of(&ua, "l");
		if (s != 3 || bind(s, (struct sockaddr *)&ua, ul) || listen(s, 4))
			scn_die("listen: %s", strerror(errno));
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&ua, ul))
			scn_die("connect: %s", strerror(errno));
	} else if (!strcmp(kind, "tcplisten")) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t al = sizeof(a);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s != 3 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4) ||
		    getsockname(s, (struct sockaddr *)&a, &al))
			scn_die("listen: %s", strerror(errno));
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&a, sizeof(a)))
			scn_die("connect: %s", strerror(errno));
		scn_sleep_ms(50);	/* the handshake completes */
	} else if (!strcmp(kind, "outside")) {
		pid_t root = getpid(), mid;
		int l = socket(AF_UNIX, SOCK_STREAM, 0);

		ul = uname_of(&ua, "o");
		if (bind(l, (struct sockaddr *)&ua, ul) || listen(l, 4))
			scn_die("listen: %s", strerror(errno));
		mid = fork();
		if (mid == 0) {
			if (fork() == 0) {
				/* reparented away: outside the tree */
				int a = accept(l, NULL, NULL);

				while (kill(root, 0) == 0)
					scn_sleep_ms(100);
				close(a);
				_exit(0);
			}
			_exit(0);
		}
		waitpid(mid, NULL, 0);
		close(l);
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s != 3 || connect(s, (struct sockaddr *)&ua, ul))
			scn_die("connect: %s", strerror(errno));
		scn_sleep_ms(100);	/* accepted */
	} else if (!strcmp(kind, "peergone")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || sv[0] != 3)
			scn_die("socketpair: %s", strerror(errno));
		close(sv[1]);
	} else if (!strcmp(kind, "dgramqueued")) {
		s = socket(AF_UNIX, SOCK_DGRAM, 0);
		ul = uname_of(&ua, "d");
		if (s != 3 || bind(s, (struct sockaddr *)&ua, ul))
			scn_die("bind: %s", strerror(errno));
		c = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (sendto(c, "x", 1, 0, (struct sockaddr *)&ua, ul) != 1)
			scn_die("sendto: %s", strerror(errno));
		close(c);
	} else if (!strcmp(kind, "udpqueued")) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t al = sizeof(a);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s != 3 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
		    getsockname(s, (struct sockaddr *)&a, &al))
			scn_die("bind: %s", strerror(errno));
		c = socket(AF_INET, SOCK_DGRAM, 0);
		if (sendto(c, "x", 1, 0, (struct sockaddr *)&a, al) != 1)
			scn_die("sendto: %s", strerror(errno));
		close(c);
		scn_sleep_ms(20);
	} else if (!strcmp(kind, "unlinked") && argc > 2) {
		memset(&ua, 0, sizeof(ua));
		ua.sun_family = AF_UNIX;
		snprintf(ua.sun_path, sizeof(ua.sun_path), "%s", argv[2]);
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s != 3 || bind(s, (struct sockaddr *)&ua, sizeof(ua)) || unlink(argv[2]))
			scn_die("bind %s: %s", argv[2], strerror(errno));
	} else if (!strcmp(kind, "selfconn")) {
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		ul = uname_of(&ua, "s");
		if (s != 3 || bind(s, (struct sockaddr *)&ua, ul) || listen(s, 4))
			scn_die("listen: %s", strerror(errno));
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&ua, ul) || accept(s, NULL, NULL) < 0)
			scn_die("connect/accept: %s", strerror(errno));
	} else if (!strcmp(kind, "raw")) {
		s = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
		if (s < 0) {
			printf("SKIP raw: %s\n", strerror(errno));
			return 77;
		}
	} else {
		scn_die("usage: skrefuse unixlisten|tcplisten|outside|peergone|dgramqueued|udpqueued|unlinked PATH|selfconn|raw");
	}
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
