/* tcppeer: a TCP server on 127.0.0.1 that runs OUTSIDE the dumped tree
 * (tests/bats/tcp.bats). Prints "PORT n", accepts one connection, sends it
 * GREET bytes at once (left unread by the client until its check), then
 * waits for SIGUSR1 before reading anything, so that the client's request
 * stays queued unread here; after SIGUSR1 it echoes every byte back.
 * It reports how the connection ended, once:
 *   "SERVER EOF after N bytes"        the client closed (a FIN)
 *   "SERVER ERROR <reason> after N bytes"  a reset, or any other error
 * SIGTERM ends it with "SERVER STOPPED after N bytes". */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GREET 5000

static volatile sig_atomic_t go, stop;

static void on_usr1(int s)
{
	(void)s;
	go = 1;
}

static void on_term(int s)
{
	(void)s;
	stop = 1;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	struct sigaction sa;
	unsigned long long total = 0;
	char buf[4096], greet[GREET];
	int l, c;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al)) {
		printf("SERVER ERROR setup: %s\n", strerror(errno));
		return 2;
	}
	printf("PORT %u\n", ntohs(a.sin_port));
	fflush(stdout);
	c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		printf("SERVER ERROR accept: %s\n", strerror(errno));
		return 2;
	}
	close(l);
	for (int i = 0; i < GREET; i++)
		greet[i] = (char)(i * 7 + 3);
	if (write(c, greet, GREET) != GREET) {
		printf("SERVER ERROR greeting: %s\n", strerror(errno));
		return 2;
	}
	printf("SERVER CONNECTED\n");
	fflush(stdout);
	while (!go && !stop)
		pause();
	while (!stop) {
		ssize_t n = read(c, buf, sizeof(buf));

		if (n == 0) {
			printf("SERVER EOF after %llu bytes\n", total);
			return 0;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			printf("SERVER ERROR %s after %llu bytes\n", strerror(errno), total);
			return 1;
		}
		total += (unsigned long long)n;
		if (write(c, buf, (size_t)n) != n) {
			printf("SERVER ERROR echo: %s after %llu bytes\n", strerror(errno), total);
			return 1;
		}
	}
	printf("SERVER STOPPED after %llu bytes\n", total);
	return 0;
}
