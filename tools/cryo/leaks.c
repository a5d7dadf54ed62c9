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

static int add_cands(pid_t pid, struct cand **c, size_t *nc)
{
	char dir[64];
	DIR *d;
	struct dirent *de;
	int e = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return err_sys(-errno, "pid %d: open %s", pid, dir);
	while ((de = readdir(d)) && !e) {
		char p[64 + 256 + 2];
		struct stat st;
		uint64_t pos;
		int fd = atoi(de->d_name), flags = 0;
		struct cand *n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (proc_fdinfo(pid, fd, &pos, &flags, NULL)) {
			err_clear();
			continue;
		}
		if (flags & O_APPEND)
			continue;
		n = realloc(*c, (*nc + 1) * sizeof(**c));
		if (!n) {
			e = -ENOMEM;
			break;
		}
		*c = n;
		(*c)[(*nc)++] = (struct cand){ pid, fd, st.st_dev, st.st_ino };
	}
	closedir(d);
	return e;
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
		pid_t pid = atoi(pe->d_name);
		char dir[64];
		DIR *d;
		struct dirent *de;

		if (pid <= 0 || pid == getpid() || in_tree(t, n, pid))
			continue;
		snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
		d = opendir(dir);
		if (!d)
			continue;
		while (!e && (de = readdir(d))) {
			char p[64 + 256 + 2], link[4096];
			struct stat st;
			ssize_t ln;

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			for (size_t k = 0; k < nc && !e; k++) {
				if (c[k].ino != st.st_ino || c[k].dev != st.st_dev ||
				    syscall(SYS_kcmp, c[k].pid, pid, 0 /* KCMP_FILE */, c[k].fd,
					    atoi(de->d_name)) != 0)
					continue;
				ln = readlink(p, link, sizeof(link) - 1);
				link[ln > 0 ? ln : 0] = 0;
				if (allow & LX_LEAK_FILE) {
					warn("pid %d fd %d (%s): its open file is shared with pid %d outside"
					     " the tree: the restore gives the tree its own offset"
					     " (--allow-leak=file)", c[k].pid, c[k].fd, link, pid);
					continue;
				}
				e = err_set(-EOPNOTSUPP, "pid %d fd %d (%s): its open file description"
					    " (one offset) is shared with pid %d outside the tree: a"
					    " restore could not share it again; stop that process, or"
					    " accept a private offset with --allow-leak=file", c[k].pid,
					    c[k].fd, link, pid);
			}
		}
		closedir(d);
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
