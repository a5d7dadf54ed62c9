/* Pipes and FIFOs. An anonymous pipe is restored when the process holds
 * both of its ends, or one while the other is in flight on one of its unix
 * sockets (otherwise the other end is in another process, or closed, and
 * cannot be told apart: refused). A FIFO is reopened by path.
 * Queued bytes are copied at dump with tee() from a read end into cryo's
 * own pipe: tee duplicates the buffers without consuming them, so the
 * dumped process reads exactly what it would have. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"

int pipe_dump(struct fd_dump *d, struct lx_fd *r, const char *link)
{
	struct lx_pipe p;
	int dfd = fd_dup(d, (int)r->fd), sz;

	if (dfd < 0)
		return dfd;
	sz = fcntl(dfd, F_GETPIPE_SZ);
	close(dfd);
	if (sz < 0)
		return err_sys(-errno, "pid %d fd %u: F_GETPIPE_SZ", d->pid, r->fd);
	if (link[0] == '/') {
		if (strstr(link, " (deleted)"))
			return err_set(-EOPNOTSUPP, "pid %d fd %u: %s: a deleted FIFO is not"
				       " supported", d->pid, r->fd, link);
		r->kind = LX_FD_FIFO;
		r->path_off = img_str(d->t->w, d->t->index, link);
	} else {
		r->kind = LX_FD_PIPE;
	}
	memset(&p, 0, sizeof(p));
	p.fd = r->fd;
	p.size = (uint32_t)sz;
	p.id = r->ino;
	return recbuf_add(&d->sec[LX_SEC_PIPES], &p, sizeof(p));
}

/* Copy the queued bytes of the pipe that fd (in the target) is an end of */
static int peek_pipe(struct fd_dump *d, const struct lx_fd *r, struct lx_pipe *p)
{
	char path[64];
	int src, mine[2] = { -1, -1 }, e = 0, queued = 0;
	uint8_t *buf = NULL;
	ssize_t k;

	/* a read end of the same pipe: a duplicate when the target's is
	 * readable, else a new reader opened through /proc */
	if ((r->flags & O_ACCMODE) != O_WRONLY) {
		src = fd_dup(d, (int)r->fd);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/fd/%u", d->pid, r->fd);
		src = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (src < 0)
			src = err_sys(-errno, "pid %d fd %u: open a reader of the pipe", d->pid,
				      r->fd);
	}
	if (src < 0)
		return src;
	if (ioctl(src, FIONREAD, &queued) < 0) {
		e = err_sys(-errno, "pid %d fd %u: FIONREAD", d->pid, r->fd);
		goto out;
	}
	if (!queued)
		goto out;
	if (r->flags & O_DIRECT) {
		e = err_set(-EOPNOTSUPP, "pid %d fd %u: a packet-mode (O_DIRECT) pipe with queued"
			    " data is not supported", d->pid, r->fd);
		goto out;
	}
	if (pipe2(mine, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    fcntl(mine[1], F_SETPIPE_SZ, p->size) < (int)p->size) {
		e = err_sys(-errno, "pid %d fd %u: a pipe of %u bytes to copy its %d queued bytes",
			    d->pid, r->fd, p->size, queued);
		goto out;
	}
	k = tee(src, mine[1], (size_t)queued, SPLICE_F_NONBLOCK);
	if (k != queued) {
		e = err_set(-EIO, "pid %d fd %u: tee copied %zd of %d queued bytes", d->pid, r->fd,
			    k, queued);
		goto out;
	}
	buf = malloc((size_t)queued);
	if (!buf || read(mine[0], buf, (size_t)queued) != queued) {
		e = err_set(-EIO, "pid %d fd %u: read the copy of the queued bytes", d->pid, r->fd);
		goto out;
	}
	e = fd_data(d, buf, (size_t)queued, &p->data_off);
	p->data_len = (uint64_t)queued;
out:
	free(buf);
	close(src);
	if (mine[0] >= 0) {
		close(mine[0]);
		close(mine[1]);
	}
	return e;
}

/* Every pipe's ends are known: check them, and copy each pipe's data once */
int pipes_dump_finish(struct fd_dump *d)
{
	struct lx_pipe *p = (struct lx_pipe *)d->sec[LX_SEC_PIPES].p;
	size_t n = d->sec[LX_SEC_PIPES].len / sizeof(*p);
	int e = 0;

	for (size_t i = 0; i < n && !e; i++) {
		int first = 1, rd = 0, wr = 0;
		struct lx_fd *r = fd_rec(d, (int)p[i].fd);
		const struct fd_share *sh;

		for (size_t j = 0; j < n; j++) {
			struct lx_fd *q = fd_rec(d, (int)p[j].fd);

			if (p[j].id != p[i].id || q->kind != r->kind)
				continue;
			if (j < i)
				first = 0;
			if ((q->flags & O_ACCMODE) != O_WRONLY)
				rd = 1;
			if ((q->flags & O_ACCMODE) != O_RDONLY)
				wr = 1;
		}
		sh = dump_share(d->t, (int)r->fd);
		if (sh && sh->tree_pipe) {
			/* between processes of the tree: saved once, by the
			 * end dump.c chose */
			if (sh->pipe_data)
				e = peek_pipe(d, r, &p[i]);
			continue;
		}
		if (!first)
			continue;
		/* the other end in flight on a unix socket of the process is
		 * reopened from this one at restore (LX_SCM_PIPE) */
		if (r->kind == LX_FD_PIPE && (!rd || !wr) &&
		    !sockets_pipe_in_flight(d, r->ino, !wr)) {
			/* a leak: name who holds the other side, if anyone */
			pid_t other = proc_fd_holder(r->dev, r->ino, d->pid);

			if (d->t->allow_leak & LX_LEAK_PIPE) {
				/* restored as a pipe of its own whose other end
				 * is closed: the queued bytes, then EOF (or EPIPE) */
				warn("pid %d fd %u: a pipe whose %s end is %s: restored with that end"
				     " closed (--allow-leak=pipe)", d->pid, r->fd,
				     rd ? "write" : "read", other ? "outside the tree" : "closed");
				e = peek_pipe(d, r, &p[i]);
				continue;
			}
			if (other)
				return err_set(-EOPNOTSUPP, "pid %d fd %u: a pipe shared with pid %d"
					       " outside the tree (its %s end) is not supported: a"
					       " restore could not reconnect it (--allow-leak=pipe"
					       " restores it with that end closed)", d->pid, r->fd,
					       other, rd ? "write" : "read");
			return err_set(-EOPNOTSUPP, "pid %d fd %u: a pipe whose %s end is outside the"
				       " process (closed) is not supported", d->pid, r->fd,
				       rd ? "write" : "read");
		}
		e = peek_pipe(d, r, &p[i]);
	}
	return e;
}

static const struct lx_pipe *pipe_rec(uint32_t fd, const struct lx_pipe *all, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (all[k].fd == fd)
			return &all[k];
	return NULL;
}

/* Create the pipe of record i (its first fd in the image) and every other
 * open file of the same pipe, staging those. */
int pipe_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	size_t n;
	const struct lx_pipe *all = fr_recs(c, LX_SEC_PIPES, sizeof(*all), &n);
	const struct lx_pipe *p = pipe_rec(r->fd, all, n);
	const char *path = r->kind == LX_FD_FIFO ? img_string(c->im, c->task, r->path_off) : NULL;
	int ends[2] = { -1, -1 }, used[2] = { 0, 0 }, holder = -1, ret = -1, e = 0, queued = 0;
	const uint8_t *data = NULL;
	uint64_t dlen = 0;
	char proc[64];

	if (!p)
		return fr_err(c, -EINVAL, "fd %u: no pipe record in the image", r->fd);
	if (r->kind == LX_FD_PIPE) {
		/* nonblocking while filling; phase 2 sets the real flags */
		if (pipe2(ends, O_NONBLOCK | (r->flags & O_DIRECT)) < 0)
			return fr_err(c, -errno, "fd %u: pipe: %s", r->fd, strerror(errno));
		holder = ends[1];
	} else {
		struct stat st;

		/* O_RDWR on a FIFO neither blocks nor fails for want of a
		 * partner: it holds the FIFO while its ends are opened */
		holder = open(path, O_RDWR | O_NONBLOCK);
		if (holder < 0)
			return fr_err(c, -errno, "fd %u: open FIFO %s: %s", r->fd, path,
				      strerror(errno));
		if (fstat(holder, &st) < 0 || st.st_ino != r->ino || st.st_dev != r->dev) {
			close(holder);
			return fr_err(c, -ESTALE, "fd %u: %s is a different file than at dump time",
				      r->fd, path);
		}
		if (ioctl(holder, FIONREAD, &queued) == 0 && queued) {
			close(holder);
			return fr_err(c, -EBUSY, "fd %u: FIFO %s already holds %d bytes (another"
				      " process has it open?): its data would be doubled", r->fd,
				      path, queued);
		}
	}
	if (fcntl(holder, F_GETPIPE_SZ) != (int)p->size &&
	    fcntl(holder, F_SETPIPE_SZ, p->size) < (int)p->size) {
		e = fr_err(c, -errno, "fd %u: pipe size %u: %s (above /proc/sys/fs/pipe-max-size"
			   " needs CAP_SYS_RESOURCE)", r->fd, p->size, strerror(errno));
		goto fail;
	}
	for (size_t k = 0; k < n; k++)
		if (all[k].id == p->id && all[k].data_len) {
			data = fr_data(c, all[k].data_off, all[k].data_len);
			dlen = all[k].data_len;
			if (!data) {
				e = fr_err(c, -EINVAL, "fd %u: pipe data outside the fddata section",
					   r->fd);
				goto fail;
			}
		}
	if (dlen) {
		e = write_all(holder, data, dlen);
		if (e) {
			e = fr_err(c, e, "fd %u: refill pipe with %llu bytes: %s", r->fd,
				   (unsigned long long)dlen, strerror(-e));
			goto fail;
		}
	}
	/* every open file of this pipe in the image: the first reader and
	 * the first writer get the ends pipe() made, any other (an open
	 * through /proc, or of a FIFO by path) is a new open of the pipe */
	for (size_t j = i; j < c->n; j++) {
		const struct lx_fd *q = &c->fds[j];
		const struct lx_pipe *qp;
		int acc = (int)(q->flags & O_ACCMODE), fd;

		if (q->kind != r->kind || q->dup_of || (j != i && c->staged[j] >= 0) ||
		    !(qp = pipe_rec(q->fd, all, n)) || qp->id != p->id)
			continue;
		if (r->kind == LX_FD_PIPE && acc != O_RDWR && !used[acc]) {
			fd = dup(ends[acc]);
			used[acc] = 1;
		} else {
			if (r->kind == LX_FD_PIPE)
				snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ends[0]);
			fd = open(r->kind == LX_FD_PIPE ? proc : path, acc | O_NONBLOCK);
		}
		if (fd < 0) {
			e = fr_err(c, -errno, "fd %u: open %s: %s", q->fd,
				   r->kind == LX_FD_PIPE ? "pipe" : path, strerror(errno));
			goto fail;
		}
		if (j == i)
			ret = fd;
		else if ((e = fr_stage(c, j, fd)))
			goto fail;
	}
	e = ret;
fail:
	if (ends[0] >= 0)
		close(ends[0]);
	if (ends[1] >= 0)
		close(ends[1]);
	if (r->kind == LX_FD_FIFO && holder >= 0)
		close(holder);
	if (e < 0 && ret >= 0)
		close(ret);
	return e;
}

/* ---- pipes between processes of a tree ----
 * The restorer makes each such pipe once, before the tree exists, refills
 * it, and hands its ends out as shared descriptions (files_open_shared):
 * every process inherits them and dup()s its own. */
struct tree_pipe {
	uint64_t id;
	int ends[2];
	int used[2];
};

static struct tree_pipe *tree_pipes;
static size_t ntree_pipes;

/* The queued bytes: saved by whichever process of the tree held the end
 * dump.c chose, so look in every task. */
static int tree_pipe_fill(const struct img *im, uint64_t id, int wfd)
{
	struct lx_task *tasks;
	size_t nt;
	int e = img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32,
			    (void **)&tasks, &nt);

	if (e)
		return e;
	for (size_t t = 0; t < nt && !e; t++) {
		struct lx_pipe *p;
		const void *data;
		uint64_t dlen;
		uint32_t rs;
		size_t n;

		if (img_records(im, LX_SEC_PIPES, (uint32_t)t, sizeof(*p), sizeof(*p), (void **)&p,
				&n))
			continue;
		for (size_t k = 0; k < n && !e; k++) {
			if (p[k].id != id || !p[k].data_len)
				continue;
			if (img_find(im, LX_SEC_FDDATA, (uint32_t)t, &data, &dlen, &rs) ||
			    !lx_range_ok(p[k].data_off, p[k].data_len, dlen))
				e = err_set(-EINVAL, "image: task %zu: pipe data outside fddata", t);
			else if ((e = write_all(wfd, (const uint8_t *)data + p[k].data_off,
						p[k].data_len)))
				e = err_sys(e, "refill a pipe between processes with %llu bytes",
					    (unsigned long long)p[k].data_len);
		}
		free(p);
	}
	free(tasks);
	return e;
}

int pipe_open_tree(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	size_t n, k;
	const struct lx_pipe *all = fr_recs(c, LX_SEC_PIPES, sizeof(*all), &n);
	const struct lx_pipe *p = pipe_rec(r->fd, all, n);
	struct tree_pipe *tp = NULL;
	int acc = (int)(r->flags & O_ACCMODE), fd;
	char proc[64];

	if (!p)
		return err_set(-EINVAL, "fd %u: no pipe record in the image", r->fd);
	for (k = 0; k < ntree_pipes; k++)
		if (tree_pipes[k].id == p->id)
			tp = &tree_pipes[k];
	if (!tp) {
		struct tree_pipe *nt = realloc(tree_pipes, (ntree_pipes + 1) * sizeof(*nt));
		int e;

		if (!nt)
			return -ENOMEM;
		tree_pipes = nt;
		tp = &tree_pipes[ntree_pipes];
		memset(tp, 0, sizeof(*tp));
		tp->id = p->id;
		if (pipe2(tp->ends, O_NONBLOCK | O_CLOEXEC) < 0)
			return err_sys(-errno, "fd %u: pipe", r->fd);
		ntree_pipes++;
		if (fcntl(tp->ends[1], F_GETPIPE_SZ) != (int)p->size &&
		    fcntl(tp->ends[1], F_SETPIPE_SZ, p->size) < (int)p->size)
			return err_sys(-errno, "fd %u: pipe size %u (above /proc/sys/fs/pipe-max-size"
				       " needs CAP_SYS_RESOURCE)", r->fd, p->size);
		e = tree_pipe_fill(c->im, p->id, tp->ends[1]);
		if (e)
			return e;
	}
	if (acc != O_RDWR && !tp->used[acc]) {
		fd = fcntl(tp->ends[acc], F_DUPFD_CLOEXEC, 3);
		tp->used[acc] = 1;
	} else {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tp->ends[0]);
		fd = open(proc, acc | O_NONBLOCK | O_CLOEXEC);
	}
	if (fd < 0)
		return err_sys(-errno, "fd %u: an end of a pipe between processes", r->fd);
	return fd;
}

/* The restorer's own ends must go, or a reader would never see EOF */
void pipes_tree_done(void)
{
	for (size_t k = 0; k < ntree_pipes; k++) {
		close(tree_pipes[k].ends[0]);
		close(tree_pipes[k].ends[1]);
	}
	free(tree_pipes);
	tree_pipes = NULL;
	ntree_pipes = 0;
}
