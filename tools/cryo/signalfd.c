/* signalfd: all its state is the signal mask, shown in fdinfo. Pending
 * signals belong to the process (signals.c), not to the signalfd. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"

int signalfd_dump(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	struct lx_signalfd sf;
	uint64_t v;

	memset(&sf, 0, sizeof(sf));
	sf.fd = r->fd;
	if (fdinfo_u64(info, "sigmask:", 16, &v))
		return err_set(-EOPNOTSUPP, "pid %d fd %u: signalfd without a sigmask in fdinfo",
			       d->pid, r->fd);
	sf.mask = v;
	r->kind = LX_FD_SIGNALFD;
	return recbuf_add(&d->sec[LX_SEC_SIGNALFDS], &sf, sizeof(sf));
}

int signalfd_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const struct lx_signalfd *sf = fr_rec(c, LX_SEC_SIGNALFDS, sizeof(*sf), r->fd);
	uint64_t mask;
	int fd;

	if (!sf)
		return -EINVAL;
	/* the raw syscall: glibc's sigaddset() refuses the signals it
	 * reserves for itself, which the original mask may hold */
	mask = sf->mask;
	fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof(mask), 0);
	if (fd < 0)
		return fr_err(c, -errno, "fd %u: signalfd: %s", r->fd, strerror(errno));
	return fd;
}
