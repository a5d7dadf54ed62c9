/* The fd table. Regular files and directories are reopened by path at
 * their offset, character devices like /dev/null by path, stdio that leads
 * outside the tree (a terminal, a pipe or socket of the caller) is taken
 * from the restorer, the way a shell job inherits its terminal. Files
 * deleted while open and memfds are recreated from their saved content.
 * Every other kind (pipes, sockets, eventfd, epoll, ...) lives in its own
 * file behind fds.h; this file dispatches, and restores what every open
 * file has: sharing between dup'ed fds, status flags, F_SETOWN/F_SETSIG,
 * FD_CLOEXEC. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/kcmp.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "fds.h"
#include "tty.h"

#ifndef F_LINUX_SPECIFIC_BASE
#define F_LINUX_SPECIFIC_BASE 1024
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS (F_LINUX_SPECIFIC_BASE + 9)
#define F_GET_SEALS (F_LINUX_SPECIFIC_BASE + 10)
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

/* the flags F_SETFL can change */
#define SETFL_MASK (O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK)

/* ---------------------------------------------------------------- dump */

int recbuf_add(struct recbuf *b, const void *rec, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, rec, len);
	b->len += len;
	return 0;
}

int fd_dup(struct fd_dump *d, int fd)
{
	int n = (int)syscall(SYS_pidfd_getfd, d->pidfd, fd, 0);

	if (n < 0)
		return err_sys(-errno, "pid %d fd %d: pidfd_getfd", d->pid, fd);
	return n;
}

int fd_data(struct fd_dump *d, const void *buf, size_t len, uint64_t *off)
{
	static const uint8_t zero[8];
	int e;

	if (d->data.len + len > FD_DATA_MAX)
		return err_set(-EFBIG, "pid %d: more than %llu MiB of file contents and queued"
			       " data to keep in the image", d->pid, FD_DATA_MAX >> 20);
	*off = d->data.len;
	e = recbuf_add(&d->data, buf, len);
	/* keep every piece 8-aligned, for readers that cast */
	if (!e && len % 8)
		e = recbuf_add(&d->data, zero, 8 - len % 8);
	return e;
}

struct lx_fd *fd_rec(struct fd_dump *d, int fd)
{
	for (size_t i = 0; i < d->n; i++)
		if ((int)d->recs[i].fd == fd)
			return &d->recs[i];
	return NULL;
}

int fdinfo_u64(const char *info, const char *key, int base, uint64_t *v)
{
	const char *p = info;
	size_t kl = strlen(key);

	/* keys start a line */
	while (p && *p) {
		if (!strncmp(p, key, kl)) {
			char *end;

			*v = strtoull(p + kl, &end, base);
			return end == p + kl ? -EINVAL : 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

/* character devices that carry no state of their own */
static int stateless_chr(const char *path)
{
	static const char *const ok[] = {
		"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(path, ok[i]))
			return 1;
	return 0;
}

static int is_tty_path(const char *p)
{
	return !strncmp(p, "/dev/pts/", 9) || !strncmp(p, "/dev/tty", 8) ||
	       !strcmp(p, "/dev/console") || !strcmp(p, "/dev/ptmx");
}

/* "anon_inode:[eventfd]" -> "eventfd", "anon_inode:inotify" -> "inotify" */
static void anon_kind(const char *link, char *out, size_t len)
{
	const char *k = strchr(link, ':') + 1;

	if (*k == '[')
		k++;
	snprintf(out, len, "%.*s", (int)strcspn(k, "]"), k);
}

/* Whole content of a regular file (memfd, deleted file) through the
 * duplicate, with pread: the target's offset does not move. */
static int save_content(struct fd_dump *d, int fd, int dfd, uint64_t size, struct lx_fd *r)
{
	uint8_t *buf;
	uint64_t done = 0;
	int e;

	if (size > FD_DATA_MAX)
		return err_set(-EFBIG, "pid %d fd %d: %llu bytes of content: more than %llu MiB is"
			       " not supported", d->pid, fd, (unsigned long long)size,
			       FD_DATA_MAX >> 20);
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	while (done < size) {
		ssize_t k = pread(dfd, buf + done, size - done, (off_t)done);

		if (k < 0) {
			e = err_sys(-errno, "pid %d fd %d: read its content", d->pid, fd);
			free(buf);
			return e;
		}
		if (k == 0)
			break;
		done += (uint64_t)k;
	}
	if (done != size) {
		free(buf);
		return err_set(-EIO, "pid %d fd %d: read %llu of %llu bytes", d->pid, fd,
			       (unsigned long long)done, (unsigned long long)size);
	}
	e = fd_data(d, buf, size, &r->data_off);
	r->data_len = size;
	free(buf);
	return e;
}

static int dump_memfd(struct fd_dump *d, struct lx_fd *r, const char *link)
{
	struct statfs sfs;
	char name[LX_CKPT_PATH_MAX];
	const char *n = link + strlen("/memfd:");
	int dfd = fd_dup(d, (int)r->fd), seals, e;

	if (dfd < 0)
		return dfd;
	if (fstatfs(dfd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC) {
		close(dfd);
		return err_set(-EOPNOTSUPP, "pid %d fd %u: a hugetlb memfd is not supported",
			       d->pid, r->fd);
	}
	seals = fcntl(dfd, F_GET_SEALS);
	r->seals = seals < 0 ? 0 : (uint32_t)seals;
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(n) - strlen(" (deleted)")), n);
	r->path_off = img_str(d->t->w, d->t->index, name);
	r->kind = LX_FD_MEMFD;
	e = save_content(d, (int)r->fd, dfd, r->size, r);
	close(dfd);
	return e;
}

static int dump_deleted(struct fd_dump *d, struct lx_fd *r, const char *link,
			const struct stat *st)
{
	char path[LX_CKPT_PATH_MAX];
	int dfd, e;

	if (!S_ISREG(st->st_mode))
		return err_set(-EOPNOTSUPP, "pid %d fd %u: %s: a deleted directory or device is"
			       " not supported", d->pid, r->fd, link);
	if (st->st_nlink > 0)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: %s: the file is deleted at that path"
			       " but still has %lu other link(s): not supported", d->pid, r->fd,
			       link, (unsigned long)st->st_nlink);
	snprintf(path, sizeof(path), "%.*s", (int)(strlen(link) - strlen(" (deleted)")), link);
	r->path_off = img_str(d->t->w, d->t->index, path);
	r->kind = LX_FD_DELETED;
	dfd = fd_dup(d, (int)r->fd);
	if (dfd < 0)
		return dfd;
	if (!(r->flags & O_PATH) && (r->flags & O_ACCMODE) == O_WRONLY) {
		/* the duplicate cannot read: reopen the same inode for it */
		char p[64];
		int rfd;

		snprintf(p, sizeof(p), "/proc/self/fd/%d", dfd);
		rfd = open(p, O_RDONLY | O_CLOEXEC);
		close(dfd);
		if (rfd < 0)
			return err_sys(-errno, "pid %d fd %u: %s: reopen to read it", d->pid, r->fd,
				       link);
		dfd = rfd;
	}
	e = save_content(d, (int)r->fd, dfd, r->size, r);
	close(dfd);
	return e;
}

static int dump_pidfd(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	uint64_t pid;

	if (fdinfo_u64(info, "Pid:", 10, &pid))
		return err_set(-EOPNOTSUPP, "pid %d fd %u: pidfd without a Pid in fdinfo",
			       d->pid, r->fd);
	if ((pid_t)pid != d->pid)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: pidfd of pid %d: a pidfd of another"
			       " process is not supported", d->pid, r->fd, (int)(pid_t)pid);
	r->kind = LX_FD_PIDFD;
	return 0;
}

/* F_SETOWN/F_SETSIG live in the open file: read them on the duplicate */
static int dump_owner(struct fd_dump *d, struct lx_fd *r)
{
	struct f_owner_ex own;
	int dfd = fd_dup(d, (int)r->fd), sig, e = 0;

	if (dfd < 0)
		return dfd;
	if (fcntl(dfd, F_GETOWN_EX, &own) == 0 && own.pid) {
		if (own.type == F_OWNER_PGRP ? own.pid != getpgid(d->pid) : own.pid != d->pid)
			e = err_set(-EOPNOTSUPP, "pid %d fd %u: F_SETOWN to %s %d, outside the"
				    " process: not supported", d->pid, r->fd,
				    own.type == F_OWNER_PGRP ? "process group" : "pid", own.pid);
		r->owner_type = (uint32_t)own.type;
		r->owner_pid = (uint32_t)own.pid;
	}
	sig = fcntl(dfd, F_GETSIG);
	r->owner_sig = sig > 0 ? (uint32_t)sig : 0;
	close(dfd);
	return e;
}

/* Is there an earlier fd sharing this open file description? */
static int find_dup(struct fd_dump *d, size_t i)
{
	struct lx_fd *r = &d->recs[i];

	for (size_t j = 0; j < i; j++) {
		struct lx_fd *q = &d->recs[j];
		long k;

		if (q->dev != r->dev || q->ino != r->ino || q->dup_of)
			continue;
		k = syscall(SYS_kcmp, d->pid, d->pid, KCMP_FILE, q->fd, r->fd);
		if (k < 0)
			return err_sys(-errno, "pid %d fd %u: kcmp with fd %u", d->pid, r->fd, q->fd);
		if (k == 0) {
			r->dup_of = q->fd + 1;
			r->kind = q->kind;
			r->path_off = q->path_off;
			return 1;
		}
	}
	return 0;
}

/* Stdio that is a pipe, socket or terminal leading outside the process
 * comes from the restorer. A pipe is outside unless another fd of the
 * process holds it too. */
static int is_outside_stdio(struct fd_dump *d, size_t i, char **links)
{
	const struct lx_fd *r = &d->recs[i];

	if (r->fd > 2)
		return 0;
	if (S_ISCHR(r->mode) && is_tty_path(links[i]))
		return tty_is_outside(r);
	if (S_ISFIFO(r->mode) && !strncmp(links[i], "pipe:", 5)) {
		const struct fd_share *sh = dump_share(d->t, (int)r->fd);

		if (sh && sh->tree_pipe)
			return 0;	/* its other end is in the tree */
		for (size_t j = 0; j < d->n; j++)
			if (j != i && !strcmp(links[j], links[i]) && d->recs[j].fd > 2)
				return 0;
		return 1;
	}
	if (S_ISSOCK(r->mode))
		return socket_is_outside(d, r);
	return 0;
}

static int dump_fd(struct fd_dump *d, size_t i, char **links)
{
	struct lx_fd *r = &d->recs[i];
	int fd = (int)r->fd, e;
	const char *link = links[i];
	char name[64], kind[64], *info = NULL;
	struct stat st;
	uint64_t pos;
	int flags;

	snprintf(name, sizeof(name), "/proc/%d/fd/%d", d->pid, fd);
	if (stat(name, &st) < 0)
		return err_sys(-errno, "pid %d fd %d (%s): stat", d->pid, fd, link);
	e = proc_fdinfo(d->pid, fd, &pos, &flags, &info);
	if (e)
		return e;
	r->fdflags = (flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
	r->flags = flags & ~O_CLOEXEC;
	r->pos = pos;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->size = st.st_size;
	r->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
	r->mode = st.st_mode;
	r->rdev = st.st_rdev;
	r->share_id = dump_share_id(d->t, fd);

	/* stdio from outside comes from the restorer's own fd of that number,
	 * even when it shares its open file with another stdio fd */
	if (is_outside_stdio(d, i, links)) {
		r->kind = LX_FD_INHERIT;
		free(info);
		return 0;
	}
	e = find_dup(d, i);
	if (e) {
		free(info);
		return e < 0 ? e : 0;
	}
	if (!strncmp(link, "anon_inode:", 11)) {
		anon_kind(link, kind, sizeof(kind));
		if (!strcmp(kind, "eventfd"))
			e = eventfd_dump(d, r, info);
		else if (!strcmp(kind, "timerfd"))
			e = timerfd_dump(d, r, info);
		else if (!strcmp(kind, "signalfd"))
			e = signalfd_dump(d, r, info);
		else if (!strcmp(kind, "eventpoll"))
			e = epoll_dump(d, r, info);
		else if (!strcmp(kind, "inotify"))
			e = inotify_dump(d, r, info);
		else if (!strcmp(kind, "pidfd"))
			e = dump_pidfd(d, r, info);
		else
			e = err_set(-EOPNOTSUPP, "pid %d fd %d: %s is not supported", d->pid, fd, kind);
	} else if (!strncmp(link, "pidfd:", 6)) {
		e = dump_pidfd(d, r, info);
	} else if (S_ISFIFO(st.st_mode)) {
		e = pipe_dump(d, r, link);
	} else if (S_ISSOCK(st.st_mode)) {
		e = socket_dump(d, r, link);
	} else if (S_ISCHR(st.st_mode) && is_tty_path(link)) {
		e = tty_dump(d, r, link);
	} else if (!strncmp(link, "/memfd:", 7) && strstr(link, " (deleted)")) {
		e = dump_memfd(d, r, link);
	} else if (link[0] != '/') {
		/* anything else with a pseudo-name: name it by its kind */
		snprintf(kind, sizeof(kind), "%.*s", (int)strcspn(link, ":["), link);
		e = err_set(-EOPNOTSUPP, "pid %d fd %d: %s is not supported (%s)", d->pid, fd,
			    kind, link);
	} else if (strlen(link) > 10 && !strcmp(link + strlen(link) - 10, " (deleted)")) {
		e = dump_deleted(d, r, link, &st);
	} else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		struct stat pst;

		if (stat(link, &pst) < 0 || pst.st_ino != st.st_ino || pst.st_dev != st.st_dev)
			e = err_set(-EOPNOTSUPP, "pid %d fd %d: %s: the open file is no longer at"
				    " that path", d->pid, fd, link);
		r->kind = LX_FD_REG;
		r->path_off = img_str(d->t->w, d->t->index, link);
	} else if (S_ISCHR(st.st_mode) && stateless_chr(link)) {
		r->kind = LX_FD_CHR;
		r->path_off = img_str(d->t->w, d->t->index, link);
	} else {
		e = err_set(-EOPNOTSUPP, "pid %d fd %d: %s: this kind of file (mode %o) is not"
			    " supported", d->pid, fd, link, st.st_mode & S_IFMT);
	}
	/* shared across processes: one description, opened by the restorer
	 * and inherited (files_open_shared); a memfd so is one memfd */
	if (!e && r->share_id && r->kind != LX_FD_REG && r->kind != LX_FD_CHR &&
	    r->kind != LX_FD_PIPE && r->kind != LX_FD_PTY && r->kind != LX_FD_MEMFD &&
	    r->kind != LX_FD_SOCKET)
		e = err_set(-EOPNOTSUPP, "pid %d fd %d: %s shared with another process of the"
			    " tree is not supported yet", d->pid, fd, link);
	if (!e && r->kind != LX_FD_INHERIT && !(r->flags & O_PATH))
		e = dump_owner(d, r);
	if (!e && (r->kind == LX_FD_REG || r->kind == LX_FD_DELETED || r->kind == LX_FD_MEMFD))
		e = locks_dump(d, r, info);
	free(info);
	return e;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_fds(pid_t pid, int **out, size_t *count)
{
	char path[64];
	DIR *dir;
	struct dirent *de;
	int *fds = NULL;
	size_t n = 0, cap = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return err_sys(-errno, "pid %d: open %s", pid, path);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			int *nf;

			cap = cap ? cap * 2 : 64;
			nf = realloc(fds, cap * sizeof(*fds));
			if (!nf) {
				closedir(dir);
				free(fds);
				return -ENOMEM;
			}
			fds = nf;
		}
		fds[n++] = atoi(de->d_name);
	}
	closedir(dir);
	if (n)	/* none (a dying process): fds is NULL, which qsort must not get */
		qsort(fds, n, sizeof(*fds), cmp_int);
	*out = fds;
	*count = n;
	return 0;
}

static const uint32_t kind_secs[] = {
	LX_SEC_PIPES, LX_SEC_EVENTFDS, LX_SEC_TIMERFDS, LX_SEC_SIGNALFDS, LX_SEC_EPOLL,
	LX_SEC_INOTIFY, LX_SEC_SOCKETS, LX_SEC_LOCKS, LX_SEC_TTYS, LX_SEC_SCM_RIGHTS,
	LX_SEC_TCP,
};

static size_t kind_rec_size(uint32_t type)
{
	switch (type) {
	case LX_SEC_PIPES: return sizeof(struct lx_pipe);
	case LX_SEC_EVENTFDS: return sizeof(struct lx_eventfd);
	case LX_SEC_TIMERFDS: return sizeof(struct lx_timerfd);
	case LX_SEC_SIGNALFDS: return sizeof(struct lx_signalfd);
	case LX_SEC_EPOLL: return sizeof(struct lx_epoll_tfd);
	case LX_SEC_INOTIFY: return sizeof(struct lx_inotify_watch);
	case LX_SEC_SOCKETS: return sizeof(struct lx_socket);
	case LX_SEC_LOCKS: return sizeof(struct lx_lock);
	case LX_SEC_TTYS: return sizeof(struct lx_tty_fd);
	case LX_SEC_SCM_RIGHTS: return sizeof(struct lx_scm_fd);
	case LX_SEC_TCP: return sizeof(struct lx_tcp);
	}
	return 0;
}

int files_dump(struct dump_task *t)
{
	struct fd_dump d;
	int *fds = NULL, e;
	char **links = NULL;
	size_t n = 0;

	memset(&d, 0, sizeof(d));
	d.t = t;
	d.pid = t->pid;
	d.pidfd = -1;
	e = list_fds(t->pid, &fds, &n);
	if (e)
		return e;
	d.recs = calloc(n ? n : 1, sizeof(*d.recs));
	links = calloc(n ? n : 1, sizeof(*links));
	if (!d.recs || !links) {
		e = -ENOMEM;
		goto out;
	}
	d.n = n;
	for (size_t i = 0; i < n && !e; i++) {
		char name[32], link[LX_CKPT_PATH_MAX];

		d.recs[i].fd = (uint32_t)fds[i];
		snprintf(name, sizeof(name), "fd/%d", fds[i]);
		e = proc_link(t->pid, name, link, sizeof(link));
		if (!e && !(links[i] = strdup(link)))
			e = -ENOMEM;
	}
	if (!e && n) {
		d.pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
		if (d.pidfd < 0)
			e = err_sys(-errno, "pid %d: pidfd_open", t->pid);
	}
	for (size_t i = 0; i < n && !e; i++)
		e = dump_fd(&d, i, links);
	/* sockets first: a pipe end in flight on one completes a pipe */
	if (!e)
		e = sockets_dump_finish(&d);
	if (!e)
		e = pipes_dump_finish(&d);
	if (!e)
		e = img_add(t->w, LX_SEC_FDS, t->index, sizeof(*d.recs), d.recs, n * sizeof(*d.recs));
	for (size_t k = 0; k < sizeof(kind_secs) / sizeof(kind_secs[0]) && !e; k++) {
		uint32_t s = kind_secs[k];

		if (d.sec[s].len)
			e = img_add(t->w, s, t->index, (uint32_t)kind_rec_size(s), d.sec[s].p,
				    d.sec[s].len);
	}
	if (!e && d.data.len)
		e = img_add(t->w, LX_SEC_FDDATA, t->index, 0, d.data.p, d.data.len);
out:
	if (d.pidfd >= 0)
		close(d.pidfd);
	for (size_t i = 0; links && i < n; i++)
		free(links[i]);
	for (size_t k = 0; k < LX_SEC_TYPE_MAX; k++)
		free(d.sec[k].p);
	free(d.data.p);
	free(d.sk_peers.p);
	free(links);
	free(d.recs);
	free(fds);
	return e;
}

/* ---------------------------------------------------------------- restore */

static int needs_path(uint32_t kind)
{
	return kind == LX_FD_REG || kind == LX_FD_CHR || kind == LX_FD_FIFO ||
	       kind == LX_FD_DELETED || kind == LX_FD_MEMFD;
}

/* cryo run --cache: fds 0-2 are the new invocation's own, whatever the
 * cached run had there (a file, /dev/null, a pipe, a terminal) */
int files_stdio_from_restorer;

static int load_fds(const struct img *im, uint32_t task, struct lx_fd **fds, size_t *n)
{
	int e = img_records(im, LX_SEC_FDS, task, sizeof(**fds), 64, (void **)fds, n);

	if (e)
		return err_ctx(e, "image: task %u: fds", task);
	for (size_t i = 0; i < *n; i++) {
		struct lx_fd *r = &(*fds)[i];
		int bad = r->fd > (1u << 20) || (i && r->fd <= (*fds)[i - 1].fd) ||
			  r->kind < LX_FD_REG || r->kind >= LX_FD_KIND_MAX ||
			  (needs_path(r->kind) && !img_string(im, task, r->path_off));

		/* a dup names an earlier fd of a compatible kind */
		if (!bad && r->dup_of) {
			size_t j;

			for (j = 0; j < i && (*fds)[j].fd != r->dup_of - 1; j++)
				;
			bad = j == i || (*fds)[j].dup_of || (*fds)[j].kind != r->kind;
		}
		if (bad) {
			free(*fds);
			return err_set(-EINVAL, "image: task %u: fd record %zu is malformed", task, i);
		}
	}
	for (size_t i = 0; files_stdio_from_restorer && i < *n; i++) {
		struct lx_fd *r = &(*fds)[i];

		if (r->fd < 3) {
			r->kind = LX_FD_INHERIT;
			r->dup_of = 0;
			r->share_id = 0;
		} else if (r->dup_of && r->dup_of - 1 < 3) {
			r->kind = LX_FD_INHERIT;	/* a dup of the new stdio fd */
		}
	}
	return 0;
}

int files_check(const struct img *im, uint32_t task, int allow_changed)
{
	struct lx_fd *fds;
	size_t n;
	int e = load_fds(im, task, &fds, &n);

	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++) {
		const struct lx_fd *r = &fds[i];
		const char *p = img_string(im, task, r->path_off);
		struct stat st;
		uint64_t mt;

		if (r->dup_of || (r->kind != LX_FD_REG && r->kind != LX_FD_CHR &&
				  r->kind != LX_FD_FIFO))
			continue;
		if (stat(p, &st) < 0) {
			e = err_sys(-errno, "fd %u: %s", r->fd, p);
			break;
		}
		mt = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
		if ((st.st_mode & S_IFMT) != (r->mode & S_IFMT))
			e = err_set(-ESTALE, "fd %u: %s is no longer the same kind of file", r->fd, p);
		else if (r->kind == LX_FD_REG && S_ISREG(st.st_mode) && !allow_changed &&
			 ((uint64_t)st.st_size != r->size || mt != r->mtime_ns ||
			  st.st_ino != r->ino || st.st_dev != r->dev))
			e = err_set(-ESTALE, "fd %u: %s changed since the dump (size %lu, was %lu);"
				    " use --allow-changed-files to restore anyway", r->fd, p,
				    (unsigned long)st.st_size, (unsigned long)r->size);
	}
	free(fds);
	return e;
}

int fr_err(struct fd_restore *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errbuf, c->errlen, fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EINVAL;
}

const void *fr_recs(struct fd_restore *c, uint32_t type, size_t size, size_t *n)
{
	struct fd_sec *s = &c->sec[type];

	if (!s->loaded) {
		s->loaded = 1;
		s->size = size;
		if (img_records(c->im, type, c->task, size, size, &s->recs, &s->n)) {
			s->recs = NULL;
			s->n = 0;
		}
	}
	*n = s->n;
	return s->recs;
}

const void *fr_rec(struct fd_restore *c, uint32_t type, size_t size, uint32_t fd)
{
	size_t n;
	const uint8_t *p = fr_recs(c, type, size, &n);

	for (size_t i = 0; i < n; i++)
		if (*(const uint32_t *)(p + i * size) == fd)
			return p + i * size;
	fr_err(c, -EINVAL, "fd %u: no %s record in the image", fd, lx_section_name(type));
	return NULL;
}

const uint8_t *fr_data(struct fd_restore *c, uint64_t off, uint64_t len)
{
	if (!len)
		return (const uint8_t *)"";
	if (!lx_range_ok(off, len, c->data_len))
		return NULL;
	return c->data + off;
}

long fr_index(struct fd_restore *c, uint32_t fd)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->fds[i].fd == fd)
			return (long)i;
	return -1;
}

int fr_stage(struct fd_restore *c, size_t i, int fd)
{
	int s = fcntl(fd, F_DUPFD, c->base);

	if (s < 0)
		return fr_err(c, -errno, "fd %u: move to %d: %s", c->fds[i].fd, c->base,
			      strerror(errno));
	close(fd);
	c->staged[i] = s;
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t k = write(fd, p, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Another record (not a dup) of the same inode already made: a second open
 * file description of it, reopened through /proc like a new open() */
static int reopen_same_inode(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];

	for (size_t j = 0; j < i; j++) {
		const struct lx_fd *q = &c->fds[j];
		char p[64];
		int fd;

		if (q->kind != r->kind || q->dup_of || q->ino != r->ino || q->dev != r->dev ||
		    c->staged[j] < 0)
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", c->staged[j]);
		fd = open(p, (int)(r->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)));
		if (fd < 0)
			return fr_err(c, -errno, "fd %u: reopen the file of fd %u: %s", r->fd, q->fd,
				      strerror(errno));
		return fd;
	}
	return -ENOENT;
}

/* Give fd the access mode of the record: content is written through a
 * read-write fd, then reopened as the process had it */
static int reopen_mode(struct fd_restore *c, size_t i, int fd)
{
	const struct lx_fd *r = &c->fds[i];
	char p[64];
	int nfd;

	if ((r->flags & O_ACCMODE) == O_RDWR && !(r->flags & O_PATH))
		return fd;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	nfd = open(p, (int)(r->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)));
	close(fd);
	if (nfd < 0)
		return fr_err(c, -errno, "fd %u: reopen with flags %#o: %s", r->fd, r->flags,
			      strerror(errno));
	return nfd;
}

static int fill_content(struct fd_restore *c, size_t i, int fd)
{
	const struct lx_fd *r = &c->fds[i];
	const uint8_t *p = fr_data(c, r->data_off, r->data_len);
	int e;

	if (!p)
		return fr_err(c, -EINVAL, "fd %u: content outside the fddata section", r->fd);
	e = write_all(fd, p, r->data_len);
	if (e)
		return fr_err(c, e, "fd %u: write %llu bytes of content: %s", r->fd,
			      (unsigned long long)r->data_len, strerror(-e));
	return 0;
}

static int open_memfd(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const char *name = img_string(c->im, c->task, r->path_off);
	int fd = reopen_same_inode(c, i), e;

	if (fd != -ENOENT)
		return fd;
	fd = memfd_create(name, MFD_ALLOW_SEALING);
	if (fd < 0)
		return fr_err(c, -errno, "fd %u: memfd_create %s: %s", r->fd, name, strerror(errno));
	e = fill_content(c, i, fd);
	if (!e && r->seals && fcntl(fd, F_ADD_SEALS, r->seals) < 0)
		e = fr_err(c, -errno, "fd %u: memfd %s: add seals %#x: %s", r->fd, name, r->seals,
			   strerror(errno));
	if (e) {
		close(fd);
		return e;
	}
	return reopen_mode(c, i, fd);
}

static int open_deleted(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const char *path = img_string(c->im, c->task, r->path_off);
	char *copy, *dir;
	int fd = reopen_same_inode(c, i), e;
	struct timespec ts[2];

	if (fd != -ENOENT)
		return fd;
	copy = strdup(path);
	if (!copy)
		return fr_err(c, -ENOMEM, "fd %u: out of memory", r->fd);
	dir = dirname(copy);
	/* unnamed in its old directory: same filesystem, and nobody can
	 * open it by a name, as before */
	fd = open(dir, O_TMPFILE | O_RDWR, r->mode & 07777);
	if (fd < 0) {
		e = fr_err(c, -errno, "fd %u: recreate deleted file %s in %s (O_TMPFILE): %s",
			   r->fd, path, dir, strerror(errno));
		free(copy);
		return e;
	}
	free(copy);
	e = fill_content(c, i, fd);
	if (!e && fchmod(fd, r->mode & 07777) < 0)
		e = fr_err(c, -errno, "fd %u: chmod: %s", r->fd, strerror(errno));
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)(r->mtime_ns / 1000000000ull);
	ts[1].tv_nsec = (long)(r->mtime_ns % 1000000000ull);
	if (!e)
		futimens(fd, ts);	/* cosmetic: failure changes no behaviour */
	if (e) {
		close(fd);
		return e;
	}
	return reopen_mode(c, i, fd);
}

static int open_path(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const char *p = img_string(c->im, c->task, r->path_off);
	int of = (int)r->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	int fd = open(p, of | O_CLOEXEC);

	if (fd < 0)
		return fr_err(c, -errno, "fd %u: open %s: %s", r->fd, p, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_ino != r->ino || st.st_dev != r->dev) {
		close(fd);
		return fr_err(c, -ESTALE, "fd %u: %s is a different file than at dump time",
			      r->fd, p);
	}
	return fd;
}

static int open_one(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	int fd;

	switch (r->kind) {
	case LX_FD_REG:
	case LX_FD_CHR:
		fd = open_path(c, i);
		break;
	case LX_FD_DELETED:
		fd = open_deleted(c, i);
		break;
	case LX_FD_MEMFD:
		fd = open_memfd(c, i);
		break;
	case LX_FD_FIFO:
	case LX_FD_PIPE:
		return pipe_open(c, i);
	case LX_FD_EVENTFD:
		return eventfd_open(c, i);
	case LX_FD_TIMERFD:
		return timerfd_open(c, i);
	case LX_FD_SIGNALFD:
		return signalfd_open(c, i);
	case LX_FD_EPOLL:
		return epoll_open(c, i);
	case LX_FD_INOTIFY:
		return inotify_open(c, i);
	case LX_FD_SOCKET:
		return socket_open(c, i);
	case LX_FD_PTY:
		return tty_open(c, i);
	case LX_FD_PIDFD:
		fd = (int)syscall(SYS_pidfd_open, getpid(),
				  (r->flags & O_NONBLOCK) ? PIDFD_NONBLOCK : 0);
		if (fd < 0)
			return fr_err(c, -errno, "fd %u: pidfd_open: %s", r->fd, strerror(errno));
		return fd;
	default:
		return fr_err(c, -EINVAL, "fd %u: unknown kind %u", r->fd, r->kind);
	}
	/* files: the offset, which dup'ed fds share */
	if (fd >= 0 && (r->kind == LX_FD_REG || r->kind == LX_FD_DELETED ||
			r->kind == LX_FD_MEMFD) && S_ISREG(r->mode) && !(r->flags & O_PATH) &&
	    lseek(fd, (off_t)r->pos, SEEK_SET) < 0) {
		int e = fr_err(c, -errno, "fd %u: seek to %llu: %s", r->fd,
			       (unsigned long long)r->pos, strerror(errno));

		close(fd);
		return e;
	}
	return fd;
}

/* phase 2: what every open file has */
static int set_file_state(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	int fd = c->staged[i], cur;

	if (r->flags & O_PATH)
		return 0;
	if (r->owner_pid) {
		/* the owner is this very process (or its group): the same pid */
		struct f_owner_ex own = { .type = (int)r->owner_type, .pid = (pid_t)r->owner_pid };

		if (r->owner_type != F_OWNER_PGRP && own.pid != getpid())
			return fr_err(c, -ESRCH, "fd %u: F_SETOWN pid %d is not this process",
				      r->fd, own.pid);
		if (fcntl(fd, F_SETOWN_EX, &own) < 0)
			return fr_err(c, -errno, "fd %u: F_SETOWN_EX %d: %s", r->fd, own.pid,
				      strerror(errno));
	}
	if (r->owner_sig && fcntl(fd, F_SETSIG, (int)r->owner_sig) < 0)
		return fr_err(c, -errno, "fd %u: F_SETSIG %u: %s", r->fd, r->owner_sig,
			      strerror(errno));
	cur = fcntl(fd, F_GETFL);
	if (cur < 0)
		return fr_err(c, -errno, "fd %u: F_GETFL: %s", r->fd, strerror(errno));
	if (((unsigned)cur ^ r->flags) & SETFL_MASK &&
	    fcntl(fd, F_SETFL, (cur & ~SETFL_MASK) | (int)(r->flags & SETFL_MASK)) < 0)
		return fr_err(c, -errno, "fd %u: set file status flags %#o: %s", r->fd,
			      r->flags & SETFL_MASK, strerror(errno));
	cur = fcntl(fd, F_GETFL);
	if (cur >= 0 && (((unsigned)cur ^ r->flags) & (SETFL_MASK | O_ACCMODE)))
		return fr_err(c, -EINVAL, "fd %u: file status flags are %#o, want %#o", r->fd,
			      (unsigned)cur & (SETFL_MASK | O_ACCMODE),
			      r->flags & (SETFL_MASK | O_ACCMODE));
	return 0;
}

static void fr_free(struct fd_restore *c)
{
	for (size_t k = 0; k < LX_SEC_TYPE_MAX; k++)
		free(c->sec[k].recs);
	free(c->staged);
	free(c->fds);
}

/* In the new process before exec: build the fd table (see fds.h for the
 * phases). keep[] are the restorer's own fds (message pipes, image), moved
 * above every fd the image uses and updated in place (-1 entries are
 * ignored); shared[] are descriptions held by several processes of the
 * tree, opened once by the restorer (files_open_shared) and inherited,
 * indexed by share_id - 1. Files are opened without O_CLOEXEC so they
 * survive the exec; FD_CLOEXEC is set after it. */
int files_restore_preexec(const struct img *im, uint32_t task, int *keep, int nkeep,
			  int *shared, int nshared, char *errbuf, size_t errlen)
{
	struct fd_restore c;
	const void *blob;
	uint32_t rs;
	int e, top, inherit[3] = { 0, 0, 0 }, from;

	memset(&c, 0, sizeof(c));
	c.im = im;
	c.task = task;
	c.errbuf = errbuf;
	c.errlen = errlen;
	e = load_fds(im, task, &c.fds, &c.n);
	if (e) {
		snprintf(errbuf, errlen, "%s", err_msg());
		return e;
	}
	if (img_find(im, LX_SEC_FDDATA, task, &blob, &c.data_len, &rs) == 0)
		c.data = blob;
	c.staged = malloc((c.n ? c.n : 1) * sizeof(*c.staged));
	if (!c.staged) {
		fr_free(&c);
		return fr_err(&c, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < c.n; i++)
		c.staged[i] = -1;
	top = c.n ? (int)c.fds[c.n - 1].fd + 1 : 3;
	if (top < 3)
		top = 3;
	for (int k = 0; k < nkeep + nshared; k++) {
		int *fdp = k < nkeep ? &keep[k] : &shared[k - nkeep], nk;

		if (*fdp < 0)
			continue;
		nk = fcntl(*fdp, F_DUPFD_CLOEXEC, top);
		if (nk < 0) {
			e = fr_err(&c, -errno, "move restorer fd %d: %s", *fdp, strerror(errno));
			fr_free(&c);
			return e;
		}
		close(*fdp);
		*fdp = nk;
		top = nk + 1;
	}
	c.base = top;
	for (size_t i = 0; i < c.n; i++)
		if (c.fds[i].kind == LX_FD_INHERIT && !c.fds[i].dup_of && c.fds[i].fd < 3)
			inherit[c.fds[i].fd] = 1;
	/* everything that is not inherited stdio or ours goes: the moved fds
	 * are the highest, in one block */
	for (int fd = 0; fd < 3; fd++)
		if (!inherit[fd])
			close(fd);
	from = top;
	for (int k = 0; k < nkeep + nshared; k++) {
		int fd = k < nkeep ? keep[k] : shared[k - nkeep];

		if (fd >= 0 && fd < from)
			from = fd;
	}
	syscall(SYS_close_range, 3, from - 1, 0);
	syscall(SYS_close_range, top, ~0u, 0);

	/* phase 1: one open file description per non-dup record */
	for (size_t i = 0; i < c.n && !e; i++) {
		int fd;

		if (c.fds[i].kind == LX_FD_INHERIT || c.fds[i].dup_of || c.staged[i] >= 0)
			continue;
		if (c.fds[i].share_id && (int)c.fds[i].share_id <= nshared &&
		    shared[c.fds[i].share_id - 1] >= 0)
			fd = fcntl(shared[c.fds[i].share_id - 1], F_DUPFD_CLOEXEC, c.base);
		else
			fd = open_one(&c, i);
		e = fd < 0 ? fd : fr_stage(&c, i, fd);
	}
	for (int k = 0; k < nshared; k++)
		if (shared[k] >= 0)
			close(shared[k]);
	/* phase 2: status flags and owners */
	for (size_t i = 0; i < c.n && !e; i++)
		if (c.fds[i].kind != LX_FD_INHERIT && !c.fds[i].dup_of && !c.fds[i].share_id)
			e = set_file_state(&c, i);
	/* phase 3: every fd at its number (fd flags after the exec) */
	for (size_t i = 0; i < c.n && !e; i++) {
		const struct lx_fd *r = &c.fds[i];
		int src;

		if (r->kind == LX_FD_INHERIT && !r->dup_of)
			continue;
		if (r->dup_of && r->kind == LX_FD_INHERIT)
			src = (int)r->dup_of - 1;
		else if (r->dup_of)
			src = c.staged[fr_index(&c, r->dup_of - 1)];
		else
			src = c.staged[i];
		if (dup3(src, (int)r->fd, 0) < 0)
			e = fr_err(&c, -errno, "fd %u: dup: %s", r->fd, strerror(errno));
	}
	for (size_t i = 0; i < c.n; i++)
		if (c.staged[i] >= 0)
			close(c.staged[i]);
	/* phase 4: what refers to other fds by number */
	if (!e)
		e = epoll_restore_late(&c);
	if (!e)
		e = sockets_restore_late(&c);
	fr_free(&c);
	return e;
}

void files_shared_done(void)
{
	pipes_tree_done();
	socktree_done();
}

/* Highest share_id of task's fds */
int files_shared_count(const struct img *im, uint32_t task, size_t *max)
{
	struct lx_fd *fds;
	size_t n;
	int e = load_fds(im, task, &fds, &n);

	if (e)
		return e;
	for (size_t i = 0; i < n; i++)
		if (fds[i].share_id > *max)
			*max = fds[i].share_id;
	free(fds);
	return 0;
}

/* In the restorer, before the tree exists: open the descriptions task
 * shares with other processes that no earlier task opened. */
int files_open_shared(const struct img *im, uint32_t task, int *shared, size_t nshared)
{
	struct fd_restore c;
	char msg[512] = "";
	const void *blob;
	uint32_t rs;
	int e;

	memset(&c, 0, sizeof(c));
	c.im = im;
	c.task = task;
	c.errbuf = msg;
	c.errlen = sizeof(msg);
	e = load_fds(im, task, &c.fds, &c.n);
	if (e)
		return e;
	if (img_find(im, LX_SEC_FDDATA, task, &blob, &c.data_len, &rs) == 0)
		c.data = blob;
	c.staged = malloc((c.n ? c.n : 1) * sizeof(*c.staged));
	if (!c.staged) {
		fr_free(&c);
		return -ENOMEM;
	}
	c.base = 3;
	for (size_t i = 0; i < c.n; i++)
		c.staged[i] = -1;
	for (size_t i = 0; i < c.n && !e; i++) {
		const struct lx_fd *r = &c.fds[i];
		int fd;

		if (!r->share_id || r->dup_of || r->kind == LX_FD_INHERIT)
			continue;
		if (r->share_id > nshared)
			e = err_set(-EINVAL, "image: task %u fd %u: bad share id", task, r->fd);
		else if (shared[r->share_id - 1] < 0) {
			if (r->kind != LX_FD_REG && r->kind != LX_FD_CHR && r->kind != LX_FD_PIPE &&
			    r->kind != LX_FD_PTY && r->kind != LX_FD_MEMFD &&
			    r->kind != LX_FD_SOCKET)
				e = err_set(-EOPNOTSUPP, "task %u fd %u: sharing this kind of file"
					    " between processes is not supported", task, r->fd);
			fd = e ? -1 : r->kind == LX_FD_PIPE ? pipe_open_tree(&c, i) :
			     r->kind == LX_FD_SOCKET ? socket_open_tree(&c, i) : open_one(&c, i);
			if (fd < 0 && !e && (r->kind == LX_FD_PIPE || r->kind == LX_FD_SOCKET))
				e = fd;
			if (fd < 0 && !e)
				e = err_set(fd, "%s", msg);
			if (!e) {
				c.staged[i] = fd;
				e = set_file_state(&c, i);
				if (e)
					e = err_set(e, "%s", msg);
				shared[r->share_id - 1] = fd;
				c.staged[i] = -1;
			}
		}
	}
	fr_free(&c);
	return e;
}

int files_restore(struct restore_task *t)
{
	struct lx_fd *fds;
	size_t n;
	int e = load_fds(t->im, t->index, &fds, &n);

	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++) {
		if (fds[i].kind == LX_FD_INHERIT && !fds[i].dup_of) {
			char p[64];

			snprintf(p, sizeof(p), "/proc/%d/fd/%u", t->pid, fds[i].fd);
			if (access(p, F_OK) < 0)
				warn("pid %d fd %u: was stdio from outside the tree, but cryo's own"
				     " fd %u is closed: left closed", t->pid, fds[i].fd, fds[i].fd);
			continue;
		}
		if (fds[i].fdflags & FD_CLOEXEC)
			e = restore_sys(t, "set FD_CLOEXEC", SYS_fcntl, fds[i].fd, F_SETFD,
					FD_CLOEXEC, 0, 0, 0, NULL);
	}
	/* last, so that time spent restoring does not count against timers */
	if (!e)
		e = timerfd_restore(t, fds, n);
	/* after mm_restore: its injected open/close of mapped files would drop
	 * POSIX locks taken earlier */
	if (!e)
		e = locks_restore(t);
	free(fds);
	return e;
}
