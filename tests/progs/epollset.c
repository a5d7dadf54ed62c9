/* epollset: an epoll set with a pipe holding data (EPOLLIN, data 0x1111),
 * an empty eventfd (data 0x2222), an eventfd with count 1 (EPOLLIN|EPOLLET,
 * data 0x3333) and the write end of the pipe (EPOLLOUT, data 0x4444).
 * Check: epoll_wait reports the pipe's read and write ends with their data
 * and nothing for the empty eventfd (the edge-triggered one may or may
 * not be reported); EPOLL_CTL_MOD finds the registrations by fd. */
#include "scenario.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int ep, p[2], e0, e1;

static void check(void)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0), seen = 0;

	for (int k = 0; k < n; k++) {
		if (ev[k].data.u64 == 0x1111 && ev[k].events == EPOLLIN)
			seen |= 1;
		else if (ev[k].data.u64 == 0x3333 && ev[k].events == EPOLLIN)
			seen |= 4;
		else if (ev[k].data.u64 == 0x4444 && ev[k].events == EPOLLOUT)
			seen |= 8;
		else
			scn_fail("unexpected event %#x data %#llx", ev[k].events,
				 (unsigned long long)ev[k].data.u64);
	}
	SCN_EXPECT((seen & 9) == 9, "ready set %#x, want pipe in and pipe out", seen);
	/* the registrations are found by fd number */
	for (int k = 0; k < 3; k++) {
		int fd = k == 0 ? p[0] : k == 1 ? e0 : p[1];
		struct epoll_event m = { .events = k == 2 ? EPOLLOUT : EPOLLIN,
					 .data.u64 = k == 0 ? 0x1111 : k == 1 ? 0x2222 : 0x4444 };

		SCN_EXPECT(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m) == 0, "MOD fd %d: %s", fd,
			   strerror(errno));
	}
	SCN_EXPECT(fcntl(ep, F_GETFD) == FD_CLOEXEC, "epoll fd lost FD_CLOEXEC");
}

static void add(int fd, unsigned events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		scn_die("epoll_ctl add %d: %s", fd, strerror(errno));
}

int main(void)
{
	uint64_t one = 1;

	scn_init("epollset");
	ep = epoll_create1(EPOLL_CLOEXEC);
	e0 = eventfd(0, EFD_NONBLOCK);
	e1 = eventfd(0, EFD_NONBLOCK);
	if (ep < 0 || e0 < 0 || e1 < 0 || pipe(p))
		scn_die("setup: %s", strerror(errno));
	if (write(p[1], "x", 1) != 1 || write(e1, &one, 8) != 8)
		scn_die("write: %s", strerror(errno));
	add(p[0], EPOLLIN, 0x1111);
	add(e0, EPOLLIN, 0x2222);
	add(e1, EPOLLIN | EPOLLET, 0x3333);
	add(p[1], EPOLLOUT, 0x4444);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
