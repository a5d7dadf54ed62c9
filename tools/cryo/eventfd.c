/* eventfd: a 64-bit counter, optionally in semaphore mode. The count is
 * read from /proc/PID/fdinfo ("eventfd-count", hex), never by read(),
 * which would consume it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"

int eventfd_dump(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	struct lx_eventfd ev;
	uint64_t v;

	memset(&ev, 0, sizeof(ev));
	ev.fd = r->fd;
	if (fdinfo_u64(info, "eventfd-count:", 16, &v))
		return err_set(-EOPNOTSUPP, "pid %d fd %u: eventfd without a count in fdinfo",
			       d->pid, r->fd);
	ev.count = v;
	/* older kernels do not show it; there semaphore mode cannot be
	 * told apart, and restoring it wrong would change reads */
	if (fdinfo_u64(info, "eventfd-semaphore:", 10, &v))
		return err_set(-EOPNOTSUPP, "pid %d fd %u: this kernel does not show the eventfd"
			       " mode in fdinfo", d->pid, r->fd);
	if (v)
		ev.flags |= LX_EFD_SEMAPHORE;
	r->kind = LX_FD_EVENTFD;
	return recbuf_add(&d->sec[LX_SEC_EVENTFDS], &ev, sizeof(ev));
}

int eventfd_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const struct lx_eventfd *ev = fr_rec(c, LX_SEC_EVENTFDS, sizeof(*ev), r->fd);
	int fd;

	if (!ev)
		return -EINVAL;
	if (ev->count >= 0xfffffffffffffffeull)
		return fr_err(c, -EINVAL, "fd %u: eventfd count %#llx out of range", r->fd,
			      (unsigned long long)ev->count);
	fd = eventfd(0, (ev->flags & LX_EFD_SEMAPHORE) ? EFD_SEMAPHORE : 0);
	if (fd < 0)
		return fr_err(c, -errno, "fd %u: eventfd: %s", r->fd, strerror(errno));
	/* the whole 64-bit count (eventfd() takes only 32 bits) */
	if (ev->count && write(fd, &ev->count, sizeof(ev->count)) != sizeof(ev->count)) {
		int e = fr_err(c, -errno, "fd %u: set eventfd count: %s", r->fd, strerror(errno));

		close(fd);
		return e;
	}
	return fd;
}
