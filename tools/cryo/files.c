/* File descriptors of the common kinds: regular files and directories
 * (reopened by path at their offset), character devices like /dev/null
 * (reopened by path), and stdio that leads outside the tree (a terminal,
 * a pipe or socket of the caller), which the restored process takes from
 * the restorer, the way a shell job inherits its terminal. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

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
	       !strcmp(p, "/dev/console");
}

static const char *anon_kind(const char *link)
{
	/* "anon_inode:[eventfd]" -> "eventfd", "anon_inode:inotify" -> "inotify" */
	const char *k = link + strlen("anon_inode:");

	if (*k == '[')
		k++;
	return k;
}

static int dump_fd(struct dump_task *t, int fd, struct lx_fd *r)
{
	char name[64], link[LX_CKPT_PATH_MAX];
	struct stat st;
	uint64_t pos;
	int flags, e;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	snprintf(name, sizeof(name), "fd/%d", fd);
	e = proc_link(t->pid, name, link, sizeof(link));
	if (e)
		return e;
	snprintf(name, sizeof(name), "/proc/%d/fd/%d", t->pid, fd);
	if (stat(name, &st) < 0)
		return err_sys(-errno, "pid %d fd %d (%s): stat", t->pid, fd, link);
	e = proc_fdinfo(t->pid, fd, &pos, &flags, NULL);
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

	if (!strncmp(link, "anon_inode:", 11))
		return err_set(-EOPNOTSUPP, "pid %d fd %d: %.*s is not supported", t->pid, fd,
			       (int)strcspn(anon_kind(link), "]"), anon_kind(link));
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
	    (S_ISCHR(st.st_mode) && is_tty_path(link))) {
		const char *kind = S_ISFIFO(st.st_mode) ? "a pipe or FIFO" :
				   S_ISSOCK(st.st_mode) ? "a socket" : "a terminal";

		if (fd <= 2) {
			r->kind = LX_FD_INHERIT;
			return 0;
		}
		return err_set(-EOPNOTSUPP, "pid %d fd %d: %s (%s) is not supported", t->pid,
			       fd, kind, link);
	}
	if (link[0] != '/')
		return err_set(-EOPNOTSUPP, "pid %d fd %d: %s is not supported", t->pid, fd, link);
	if (strstr(link, " (deleted)"))
		return err_set(-EOPNOTSUPP, "pid %d fd %d: %s: a file deleted while open is not"
			       " supported", t->pid, fd, link);
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		struct stat pst;

		if (stat(link, &pst) < 0 || pst.st_ino != st.st_ino || pst.st_dev != st.st_dev)
			return err_set(-EOPNOTSUPP, "pid %d fd %d: %s: the open file is no longer at"
				       " that path", t->pid, fd, link);
		r->kind = LX_FD_REG;
	} else if (S_ISCHR(st.st_mode) && stateless_chr(link)) {
		r->kind = LX_FD_CHR;
	} else {
		return err_set(-EOPNOTSUPP, "pid %d fd %d: %s: this kind of file (mode %o) is not"
			       " supported", t->pid, fd, link, st.st_mode & S_IFMT);
	}
	r->path_off = img_str(t->w, t->index, link);
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int files_dump(struct dump_task *t)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int *fds = NULL;
	size_t n = 0, cap = 0;
	struct lx_fd *recs;
	int e = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", t->pid);
	d = opendir(path);
	if (!d)
		return err_sys(-errno, "pid %d: open %s", t->pid, path);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			int *nf;

			cap = cap ? cap * 2 : 64;
			nf = realloc(fds, cap * sizeof(*fds));
			if (!nf) {
				closedir(d);
				free(fds);
				return -ENOMEM;
			}
			fds = nf;
		}
		fds[n++] = atoi(de->d_name);
	}
	closedir(d);
	qsort(fds, n, sizeof(*fds), cmp_int);
	recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs) {
		free(fds);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !e; i++)
		e = dump_fd(t, fds[i], &recs[i]);
	if (!e)
		e = img_add(t->w, LX_SEC_FDS, t->index, sizeof(*recs), recs, n * sizeof(*recs));
	free(recs);
	free(fds);
	return e;
}

static int load_fds(const struct img *im, uint32_t task, struct lx_fd **fds, size_t *n)
{
	int e = img_records(im, LX_SEC_FDS, task, sizeof(**fds), 64, (void **)fds, n);

	if (e)
		return err_ctx(e, "image: task %u: fds", task);
	for (size_t i = 0; i < *n; i++) {
		struct lx_fd *r = &(*fds)[i];

		if (r->fd > (1u << 20) || (i && r->fd <= (*fds)[i - 1].fd) ||
		    r->kind < LX_FD_REG || r->kind > LX_FD_INHERIT ||
		    (r->kind != LX_FD_INHERIT && !img_string(im, task, r->path_off))) {
			free(*fds);
			return err_set(-EINVAL, "image: task %u: fd record %zu is malformed", task, i);
		}
	}
	return 0;
}

int files_check(const struct img *im, uint32_t task, int allow_changed)
{
	struct lx_fd *fds;
	size_t n;
	int e = load_fds(im, task, &fds, &n);

	for (size_t i = 0; i < n && !e; i++) {
		const struct lx_fd *r = &fds[i];
		const char *p = img_string(im, task, r->path_off);
		struct stat st;
		uint64_t mt;

		if (r->kind == LX_FD_INHERIT)
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
	if (!e)
		free(fds);
	return e;
}

/* In the new process before exec: build the fd table. keep[] are the
 * restorer's own fds (error pipe, image), moved above every fd the image
 * uses and updated in place; -1 entries are ignored. Files are opened
 * without O_CLOEXEC so they survive the exec; FD_CLOEXEC is set after it. */
int files_restore_preexec(const struct img *im, uint32_t task, int *keep, int nkeep,
			  char *errbuf, size_t errlen)
{
	struct lx_fd *fds;
	size_t n;
	int e = load_fds(im, task, &fds, &n), top, inherit[3] = { 0, 0, 0 }, from;

	if (e) {
		snprintf(errbuf, errlen, "%s", err_msg());
		return e;
	}
	top = n ? (int)fds[n - 1].fd + 1 : 3;
	if (top < 3)
		top = 3;
	for (int k = 0; k < nkeep; k++) {
		int nk;

		if (keep[k] < 0)
			continue;
		nk = fcntl(keep[k], F_DUPFD_CLOEXEC, top);
		if (nk < 0) {
			snprintf(errbuf, errlen, "move restorer fd %d: %s", keep[k], strerror(errno));
			free(fds);
			return -errno;
		}
		close(keep[k]);
		keep[k] = nk;
		if (nk >= top)
			top = nk + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (fds[i].kind == LX_FD_INHERIT && fds[i].fd < 3)
			inherit[fds[i].fd] = 1;
	/* everything that is not inherited stdio or ours goes */
	for (int fd = 0; fd < 3; fd++)
		if (!inherit[fd])
			close(fd);
	from = 3;
	for (int fd = 3; fd < top; fd++) {
		int kept = 0;

		for (int k = 0; k < nkeep; k++)
			kept |= keep[k] == fd;
		if (kept) {
			if (fd > from)
				syscall(SYS_close_range, from, fd - 1, 0);
			from = fd + 1;
		}
	}
	syscall(SYS_close_range, from, ~0u, 0);
	for (size_t i = 0; i < n; i++) {
		const struct lx_fd *r = &fds[i];
		const char *p = img_string(im, task, r->path_off);
		int of = (int)r->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
		int fd;
		struct stat st;

		if (r->kind == LX_FD_INHERIT)
			continue;
		fd = open(p, of | O_CLOEXEC);
		if (fd < 0) {
			snprintf(errbuf, errlen, "fd %u: open %s: %s", r->fd, p, strerror(errno));
			free(fds);
			return -errno;
		}
		if (fstat(fd, &st) < 0 || st.st_ino != r->ino || st.st_dev != r->dev) {
			snprintf(errbuf, errlen, "fd %u: %s is a different file than at dump time",
				 r->fd, p);
			free(fds);
			return -ESTALE;
		}
		if (r->kind == LX_FD_REG && S_ISREG(st.st_mode) &&
		    lseek(fd, (off_t)r->pos, SEEK_SET) < 0) {
			snprintf(errbuf, errlen, "fd %u: seek %s to %lu: %s", r->fd, p,
				 (unsigned long)r->pos, strerror(errno));
			free(fds);
			return -errno;
		}
		if (fd != (int)r->fd) {
			if (dup3(fd, (int)r->fd, 0) < 0) {
				snprintf(errbuf, errlen, "fd %u: dup: %s", r->fd, strerror(errno));
				free(fds);
				return -errno;
			}
			close(fd);
		} else {
			fcntl(fd, F_SETFD, 0);
		}
	}
	free(fds);
	return 0;
}

int files_restore(struct restore_task *t)
{
	struct lx_fd *fds;
	size_t n;
	int e = load_fds(t->im, t->index, &fds, &n);

	for (size_t i = 0; i < n && !e; i++) {
		if (fds[i].kind == LX_FD_INHERIT) {
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
	if (!e)
		free(fds);
	return e;
}
