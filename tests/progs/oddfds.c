/* Holds one fd of a kind cryo cannot restore (argv[1]: iouring, perf,
 * netlink), for the refusal tests; exits 77 if this kernel will not make
 * one. Check: the fd is still open. */
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <sys/socket.h>

#include "scenario.h"

static int fd = -1;

static void check(void)
{
	SCN_EXPECT(fcntl(fd, F_GETFD) >= 0, "fd %d is gone", fd);
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "";

	scn_init("oddfds");
	if (!strcmp(kind, "iouring")) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		fd = (int)syscall(SYS_io_uring_setup, 4, &p);
	} else if (!strcmp(kind, "perf")) {
		struct perf_event_attr a;

		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_TASK_CLOCK;
		a.disabled = 1;
		fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	} else if (!strcmp(kind, "netlink")) {
		fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	} else {
		scn_die("usage: oddfds iouring|perf|netlink");
	}
	if (fd < 0) {
		printf("SKIP %s: %s\n", kind, strerror(errno));
		return 77;
	}
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
