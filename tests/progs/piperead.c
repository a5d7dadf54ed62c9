/* piperead: blocks in read(2) on stdin; for each line read prints
 * "GOT <line>". No check handler (SIGUSR1 is not caught): a read(2) that
 * fails with EINTR prints "FAIL piperead: EINTR" (it is reported, never
 * retried silently); EOF prints "EOF" and exits 0. */
#include "scenario.h"

int main(void)
{
	char buf[4096];
	size_t have = 0;

	scn_init("piperead");
	scn_ready();
	for (;;) {
		ssize_t r = read(0, buf + have, sizeof(buf) - have);
		char *nl;

		if (r < 0) {
			if (errno == EINTR) {
				printf("FAIL piperead: EINTR\n");
				fflush(stdout);
				continue;
			}
			printf("FAIL piperead: read: %s\n", strerror(errno));
			fflush(stdout);
			exit(1);
		}
		if (r == 0) {
			if (have)
				printf("GOT %.*s\n", (int)have, buf);
			printf("EOF\n");
			fflush(stdout);
			exit(0);
		}
		have += (size_t)r;
		while ((nl = memchr(buf, '\n', have))) {
			size_t len = (size_t)(nl - buf);

			printf("GOT %.*s\n", (int)len, buf);
			have -= len + 1;
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf)) {
			printf("GOT %.*s\n", (int)have, buf);
			have = 0;
		}
		fflush(stdout);
	}
}
