/* Open file descriptions the tree shares with a process outside it.
 *
 * A regular file opened once and inherited by a process outside the tree
 * (a shell that redirected a whole job into a file, a parent that kept
 * its copy) has one offset for both sides; a restore can only give the
 * tree a description of its own. Finding the outside holders means
 * looking at every fd of every process, so it is done only when the tree
 * holds a candidate: a regular file whose offset matters (not O_APPEND,
 * where every write goes to the end anyway). Candidates are matched by
 * inode first, then confirmed with kcmp(KCMP_FILE). Pipes (pipes.c),
 * SysV objects (ipc.c) and sockets (sockets.c) are checked where they
 * are dumped.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

struct cand {
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
};

static int in_tree(const struct dump_task *t, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].pid == pid)
			return 1;
	return 0;
}

struct cand_list { pid_t pid; struct cand *c; size_t n; };

static int add_cand(int fd, const char *path, const struct stat *st, void *arg)
{
	struct cand_list *l = arg;
	struct cand *n;
	uint64_t pos;
	int flags = 0;

	(void)path;
	if (!S_ISREG(st->st_mode))
		return 0;
	if (proc_fdinfo(l->pid, fd, &pos, &flags, NULL)) {
		err_clear();
		return 0;
	}
	if (flags & O_APPEND)
		return 0;
	n = realloc(l->c, (l->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	l->c = n;
	n[l->n++] = (struct cand){ l->pid, fd, st->st_dev, st->st_ino };
	return 0;
}

static int add_cands(pid_t pid, struct cand **c, size_t *nc)
{
	struct cand_list l = { pid, *c, *nc };
	int e = proc_each_fd(pid, add_cand, &l);

	*c = l.c;
	*nc = l.n;
	return e;
}

struct outside { pid_t pid; const struct cand *c; size_t nc; uint32_t allow; };

/* An fd of the outside process o->pid that is one of the candidates */
static int check_outside_fd(int fd, const char *path, const struct stat *st, void *arg)
{
	const struct outside *o = arg;
	const struct cand *c = o->c;
	char link[4096];
	ssize_t ln;

	if (!S_ISREG(st->st_mode))
		return 0;
	for (size_t k = 0; k < o->nc; k++) {
		if (c[k].ino != st->st_ino || c[k].dev != st->st_dev ||
		    syscall(SYS_kcmp, c[k].pid, o->pid, 0 /* KCMP_FILE */, c[k].fd, fd) != 0)
			continue;
		ln = readlink(path, link, sizeof(link) - 1);
		link[ln > 0 ? ln : 0] = 0;
		if (o->allow & LX_LEAK_FILE) {
			warn("pid %d fd %d (%s): its open file is shared with pid %d outside"
			     " the tree: the restore gives the tree its own offset"
			     " (--allow-leak=file)", c[k].pid, c[k].fd, link, o->pid);
			continue;
		}
		return err_set(-EOPNOTSUPP, "pid %d fd %d (%s): its open file description"
			       " (one offset) is shared with pid %d outside the tree: a"
			       " restore could not share it again; stop that process, or"
			       " accept a private offset with --allow-leak=file", c[k].pid,
			       c[k].fd, link, o->pid);
	}
	return 0;
}

/* The first fd of an outside process that is one of the candidates */
static int scan_outside(const struct dump_task *t, size_t n, const struct cand *c, size_t nc,
			uint32_t allow)
{
	DIR *pd = opendir("/proc");
	struct dirent *pe;
	int e = 0;

	if (!pd)
		return err_sys(-errno, "open /proc");
	while (!e && (pe = readdir(pd))) {
		struct outside o = { atoi(pe->d_name), c, nc, allow };

		if (o.pid <= 0 || o.pid == getpid() || in_tree(t, n, o.pid))
			continue;
		e = proc_each_fd(o.pid, check_outside_fd, &o);
		if (e > 0 || (e < 0 && e != -EOPNOTSUPP)) {
			e = 0;	/* gone, or not ours to read: not a holder we can name */
			err_clear();
		}
	}
	closedir(pd);
	return e;
}

int leaks_check_files(const struct dump_task *t, size_t n, uint32_t allow_leak)
{
	struct cand *c = NULL;
	size_t nc = 0;
	int e = 0;

	for (size_t i = 0; i < n && !e; i++)
		if (!t[i].zombie)
			e = add_cands(t[i].pid, &c, &nc);
	if (!e && nc)
		e = scan_outside(t, n, c, nc, allow_leak);
	free(c);
	return e;
}
