/* tcpest: holds an established TCP connection to itself over 127.0.0.1
 * (listener, client and accepted socket); cryo must refuse to dump it.
 * Check: a byte still goes from the client to the accepted socket. */
#include "scenario.h"
#include <netinet/in.h>
#include <sys/socket.h>

static int l, c, s;

static void check(void)
{
	char b = 0;

	SCN_EXPECT(write(c, "e", 1) == 1 && read(s, &b, 1) == 1 && b == 'e',
		   "connection does not carry a byte");
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);

	scn_init("tcpest");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al) ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) || (s = accept(l, NULL, NULL)) < 0)
		scn_die("connection: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
