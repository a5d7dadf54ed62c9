/* epoll: every registration (target fd, events, data) from fdinfo. The
 * epoll fd is created before exec like any other; registrations are
 * added once every fd is at its number, because the kernel keys them by
 * (file, fd number) and later EPOLL_CTL_MOD/DEL calls look them up so.
 *
 * Readiness is recomputed by the kernel from the targets' state when the
 * registrations are added, so level-triggered sets report the same ready
 * fds. An edge-triggered registration whose edge was already reported
 * reports it once more after restore (a spurious wakeup, which
 * edge-triggered code must already tolerate after EAGAIN). */
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"

struct kcmp_epoll_slot_ {
	uint32_t efd, tfd, toff;
};

int epoll_dump(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	const char *p = info;
	int e = 0;

	r->kind = LX_FD_EPOLL;
	while (!e && (p = strstr(p, "tfd:"))) {
		struct lx_epoll_tfd ep;
		struct kcmp_epoll_slot_ slot;
		int tfd;
		unsigned events;
		unsigned long long data;

		if (sscanf(p, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: epoll: unexpected fdinfo line",
				       d->pid, r->fd);
		p += 4;
		/* the registered file must still be at that fd: the kernel
		 * keeps registrations of files whose fd was closed or reused */
		slot.efd = r->fd;
		slot.tfd = (uint32_t)tfd;
		slot.toff = 0;
		if (!fd_rec(d, tfd) ||
		    syscall(SYS_kcmp, d->pid, d->pid, KCMP_EPOLL_TFD, tfd, &slot) != 0)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: epoll watches a file registered as"
				       " fd %d, which is no longer at that fd: not supported",
				       d->pid, r->fd, tfd);
		memset(&ep, 0, sizeof(ep));
		ep.fd = r->fd;
		ep.tfd = (uint32_t)tfd;
		ep.events = events;
		ep.data = data;
		e = recbuf_add(&d->sec[LX_SEC_EPOLL], &ep, sizeof(ep));
	}
	return e;
}

int epoll_open(struct fd_restore *c, size_t i)
{
	int fd = epoll_create1(0);

	if (fd < 0)
		return fr_err(c, -errno, "fd %u: epoll_create: %s", c->fds[i].fd, strerror(errno));
	return fd;
}

int epoll_restore_late(struct fd_restore *c)
{
	size_t n;
	const struct lx_epoll_tfd *ep = fr_recs(c, LX_SEC_EPOLL, sizeof(*ep), &n);

	for (size_t k = 0; k < n; k++) {
		struct epoll_event ev;
		long i = fr_index(c, ep[k].fd);

		if (i < 0 || c->fds[i].kind != LX_FD_EPOLL)
			return fr_err(c, -EINVAL, "fd %u: epoll record for a fd that is not epoll",
				      ep[k].fd);
		ev.events = ep[k].events;
		ev.data.u64 = ep[k].data;
		if (epoll_ctl((int)ep[k].fd, EPOLL_CTL_ADD, (int)ep[k].tfd, &ev) < 0)
			return fr_err(c, -errno, "fd %u: epoll: add fd %u (events %#x): %s",
				      ep[k].fd, ep[k].tfd, ep[k].events, strerror(errno));
	}
	return 0;
}
