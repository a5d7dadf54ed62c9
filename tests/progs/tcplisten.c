/* tcplisten: a TCP socket listening on 127.0.0.1, port argv[1] (0: any;
 * prints "PORT n"), SO_REUSEADDR, O_NONBLOCK, backlog 7; plus an unbound
 * TCP socket and a UDP socket bound to 127.0.0.1:0. Check: a client
 * connects and is accepted, a byte goes through; options and flags kept;
 * the UDP socket keeps its port and receives a datagram. */
#include "scenario.h"
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static int l, u, nb;
static struct sockaddr_in la, ua;

static void check(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int c, s, one = 0;
	socklen_t ol = sizeof(one);
	char b;
	struct pollfd pf = { .fd = 0, .events = POLLIN };

	SCN_EXPECT(getsockname(l, (struct sockaddr *)&a, &al) == 0 && a.sin_port == la.sin_port &&
		   a.sin_addr.s_addr == la.sin_addr.s_addr, "listener address changed");
	SCN_EXPECT(getsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, &ol) == 0 && one,
		   "SO_REUSEADDR lost");
	SCN_EXPECT(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &one, &ol) == 0 && one,
		   "not listening");
	SCN_EXPECT(fcntl(l, F_GETFL) & O_NONBLOCK, "listener lost O_NONBLOCK");
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(c, (struct sockaddr *)&la, sizeof(la)) < 0) {
		scn_fail("connect: %s", strerror(errno));
	} else {
		pf.fd = l;
		poll(&pf, 1, 1000);
		s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		SCN_EXPECT(s >= 0, "accept: %s", strerror(errno));
		if (s >= 0 && (write(c, "t", 1) != 1 || read(s, &b, 1) != 1 || b != 't'))
			scn_fail("no byte through the accepted connection");
		if (s >= 0)
			close(s);
	}
	close(c);
	al = sizeof(a);
	SCN_EXPECT(getsockname(u, (struct sockaddr *)&a, &al) == 0 && a.sin_port == ua.sin_port,
		   "UDP port changed");
	c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sendto(c, "u", 1, 0, (struct sockaddr *)&ua, sizeof(ua)) != 1 ||
	    recv(u, &b, 1, 0) != 1 || b != 'u')
		scn_fail("UDP datagram not received: %s", strerror(errno));
	close(c);
	al = sizeof(a);
	SCN_EXPECT(getsockname(nb, (struct sockaddr *)&a, &al) == 0 && a.sin_port == 0,
		   "unbound socket is bound");
}

int main(int argc, char **argv)
{
	socklen_t al = sizeof(la);
	int one = 1;

	scn_init("tcplisten");
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	nb = socket(AF_INET, SOCK_STREAM, 0);
	la.sin_family = AF_INET;
	la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	la.sin_port = htons(argc > 1 ? (uint16_t)atoi(argv[1]) : 0);
	ua = la;
	ua.sin_port = 0;
	if (l < 0 || u < 0 || nb < 0 ||
	    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&la, sizeof(la)) || listen(l, 7) ||
	    getsockname(l, (struct sockaddr *)&la, &al) ||
	    bind(u, (struct sockaddr *)&ua, sizeof(ua)) ||
	    getsockname(u, (struct sockaddr *)&ua, &al))
		scn_die("sockets: %s", strerror(errno));
	printf("PORT %u\n", ntohs(la.sin_port));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
