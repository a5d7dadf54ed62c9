/* inotify: every watch (wd, mask, watched inode) from fdinfo. fdinfo names
 * the inode by a file handle; cryo opens it (open_by_handle_at, needs
 * CAP_DAC_READ_SEARCH) to learn its path, which is what inotify_add_watch
 * takes at restore. Watch descriptors are allocated cyclically by the
 * kernel, so the restore adds and removes a watch until the number comes
 * round to the recorded one, then drops the IN_IGNORED events that made.
 * Events queued but unread at dump cannot be read without consuming them:
 * such an inotify fd is refused. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"

/* An fd on a mount of the filesystem with kernel device number sdev */
static int mount_fd(unsigned sdev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[4096];
	unsigned ma, mi;
	int fd = -1;

	if (!f)
		return -errno;
	while (fd < 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &ma, &mi, mp) != 3)
			continue;
		if (ma != sdev >> 20 || mi != (sdev & 0xfffff))
			continue;
		/* mountinfo escapes spaces etc. as \ooo; such a mount point is
		 * just skipped */
		/* not O_PATH: open_by_handle_at refuses that with EBADF */
		fd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	fclose(f);
	return fd < 0 ? -ENOENT : fd;
}

static int watch_path(struct fd_dump *d, const struct lx_fd *r, unsigned sdev, uint64_t ino,
		      unsigned hbytes, int htype, const char *hex, char *path, size_t plen)
{
	struct file_handle *fh;
	char p[64];
	int mfd, fd, e = 0;
	ssize_t n;
	struct stat st;

	if (hbytes > 128)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: inotify: bad file handle", d->pid, r->fd);
	fh = calloc(1, sizeof(*fh) + hbytes);
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = hbytes;
	fh->handle_type = htype;
	for (unsigned k = 0; k < hbytes; k++) {
		unsigned v;

		if (sscanf(hex + 2 * k, "%2x", &v) != 1) {
			free(fh);
			return err_set(-EOPNOTSUPP, "pid %d fd %u: inotify: bad file handle",
				       d->pid, r->fd);
		}
		fh->f_handle[k] = (unsigned char)v;
	}
	mfd = mount_fd(sdev);
	if (mfd < 0) {
		free(fh);
		return err_set(-EOPNOTSUPP, "pid %d fd %u: inotify watch on inode %llu of device"
			       " %u:%u, which cryo sees mounted nowhere", d->pid, r->fd,
			       (unsigned long long)ino, sdev >> 20, sdev & 0xfffff);
	}
	fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	close(mfd);
	free(fh);
	if (fd < 0)
		return err_sys(-errno, "pid %d fd %u: inotify watch on inode %llu: find its path"
			       " (open_by_handle_at needs CAP_DAC_READ_SEARCH)", d->pid, r->fd,
			       (unsigned long long)ino);
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, path, plen - 1);
	if (n < 0) {
		e = err_sys(-errno, "pid %d fd %u: inotify watch path", d->pid, r->fd);
	} else {
		path[n] = 0;
		if (path[0] != '/' || stat(path, &st) < 0 || st.st_ino != ino)
			e = err_set(-EOPNOTSUPP, "pid %d fd %u: inotify watches inode %llu (%s),"
				    " which has no path now: not supported", d->pid, r->fd,
				    (unsigned long long)ino, path);
	}
	close(fd);
	return e;
}

int inotify_dump(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	const char *p = info;
	int dfd = fd_dup(d, (int)r->fd), queued = 0, e = 0;

	if (dfd < 0)
		return dfd;
	if (ioctl(dfd, FIONREAD, &queued) < 0)
		queued = -1;
	close(dfd);
	if (queued)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: inotify with %d bytes of unread events:"
			       " not supported (they cannot be read without consuming them)",
			       d->pid, r->fd, queued);
	r->kind = LX_FD_INOTIFY;
	while (!e && (p = strstr(p, "inotify wd:"))) {
		struct lx_inotify_watch w;
		unsigned wd, sdev, mask, ign, hbytes;
		int htype;
		unsigned long ino;
		char hex[300], path[LX_CKPT_PATH_MAX];

		if (sscanf(p, "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x"
			   " fhandle-bytes:%x fhandle-type:%x f_handle:%299s", &wd, &ino, &sdev,
			   &mask, &ign, &hbytes, &htype, hex) != 8)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: inotify: unexpected fdinfo line",
				       d->pid, r->fd);
		p += 11;
		e = watch_path(d, r, sdev, ino, hbytes, htype, hex, path, sizeof(path));
		if (e)
			return e;
		memset(&w, 0, sizeof(w));
		w.fd = r->fd;
		w.wd = wd;
		w.mask = mask;
		w.path_off = img_str(d->t->w, d->t->index, path);
		w.ino = ino;
		w.dev = makedev(sdev >> 20, sdev & 0xfffff);
		e = recbuf_add(&d->sec[LX_SEC_INOTIFY], &w, sizeof(w));
	}
	return e;
}

static int cmp_wd(const void *a, const void *b)
{
	const struct lx_inotify_watch *x = a, *y = b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

int inotify_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	size_t n, nw = 0;
	const struct lx_inotify_watch *all = fr_recs(c, LX_SEC_INOTIFY, sizeof(*all), &n);
	struct lx_inotify_watch *w = malloc((n ? n : 1) * sizeof(*w));
	char drain[4096];
	int fd, e = 0;

	if (!w)
		return fr_err(c, -ENOMEM, "out of memory");
	for (size_t k = 0; k < n; k++)
		if (all[k].fd == r->fd)
			w[nw++] = all[k];
	qsort(w, nw, sizeof(*w), cmp_wd);
	fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0) {
		free(w);
		return fr_err(c, -errno, "fd %u: inotify_init: %s", r->fd, strerror(errno));
	}
	for (size_t k = 0; k < nw && !e; k++) {
		const char *path = img_string(c->im, c->task, w[k].path_off);
		struct stat st;
		int got;

		if (!path || stat(path, &st) < 0 || st.st_ino != w[k].ino || st.st_dev != w[k].dev) {
			e = fr_err(c, -ESTALE, "fd %u: inotify watch %u: %s is not the file watched at"
				   " dump time", r->fd, w[k].wd, path ? path : "?");
			break;
		}
		for (;;) {
			got = inotify_add_watch(fd, path, w[k].mask);
			if (got < 0) {
				e = fr_err(c, -errno, "fd %u: inotify watch %s: %s", r->fd, path,
					   strerror(errno));
				break;
			}
			if ((uint32_t)got == w[k].wd)
				break;
			/* numbers only go up: one past, and it can never be had */
			if ((uint32_t)got > w[k].wd) {
				e = fr_err(c, -EINVAL, "fd %u: inotify watch %s got number %d, want"
					   " %u", r->fd, path, got, w[k].wd);
				break;
			}
			inotify_rm_watch(fd, got);
		}
	}
	free(w);
	/* the IN_IGNORED events of the watches removed above */
	while (!e && read(fd, drain, sizeof(drain)) > 0)
		;
	if (e) {
		close(fd);
		return e;
	}
	return fd;
}
