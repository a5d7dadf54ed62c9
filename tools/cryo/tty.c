/* Terminals. A pseudo-terminal whose master is held inside the tree is
 * recreated through /dev/ptmx with its termios, window size, lock state
 * and packet mode; each fd on either end gets its end back, and a session
 * leader of the tree whose controlling terminal it was gets it again
 * (TIOCSCTTY right after its setsid, before it forks) with the foreground
 * group it had. The user's terminal, outside the tree, is accepted only
 * for a shell job (--shell-job): the restored tree joins cryo's session
 * and terminal and takes the foreground if it had it.
 *
 * What cannot be restored is refused by name: bytes queued in a tty (a tty
 * queue cannot be read without consuming it), a pty whose master is
 * outside the tree (beyond stdio, which comes from the restorer), a pty of
 * the tree also open or controlling outside it, consoles and serial
 * lines. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "fds.h"
#include "options.h"
#include "tty.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143
#define PTMX_DEV makedev(5, 2)

static int is_pts(dev_t rdev)
{
	return major(rdev) >= PTS_MAJOR_FIRST && major(rdev) <= PTS_MAJOR_LAST;
}

static int pts_index(dev_t rdev)
{
	return (int)((major(rdev) - PTS_MAJOR_FIRST) * 256 + minor(rdev));
}

/* A readable name for a tty device number, for messages */
static void tty_name(dev_t d, char *out, size_t len)
{
	if (is_pts(d))
		snprintf(out, len, "/dev/pts/%d", pts_index(d));
	else if (major(d) == 4 && minor(d) < 64)
		snprintf(out, len, "the virtual console /dev/tty%u", minor(d));
	else if (major(d) == 4)
		snprintf(out, len, "the serial line /dev/ttyS%u", minor(d) - 64);
	else if (d == makedev(5, 1))
		snprintf(out, len, "the console /dev/console");
	else
		snprintf(out, len, "the terminal device %u:%u", major(d), minor(d));
}

/* ------------------------------------------------------------------ dump */

struct pty_fd {
	size_t task;
	int fd;
	int index;		/* pts number */
	int end;		/* LX_TTY_MASTER / LX_TTY_SLAVE */
};

/* The ptys of the tree being dumped, built by tty_dump_tree before the
 * fd tables are walked. */
static struct {
	struct pty_fd *fds;
	size_t nfds;
	struct lx_tty *ttys;	/* global records, LX_TTY_PTY first by index */
	int *tty_index;		/* pts number of each record, -1: not a pty */
	size_t nttys;
} dt;

static void dt_free(void)
{
	free(dt.fds);
	free(dt.ttys);
	free(dt.tty_index);
	memset(&dt, 0, sizeof(dt));
}

static long tty_of_index(int index)
{
	for (size_t k = 0; k < dt.nttys; k++)
		if (dt.tty_index[k] == index)
			return (long)k;
	return -1;
}

/* Fields 6-8 of /proc/PID/stat: session, tty_nr, tpgid */
static int stat_tty(pid_t pid, pid_t *sid, dev_t *tty, pid_t *tpgid)
{
	char *buf, *p;
	size_t len;
	int tn = 0, e = proc_read(pid, "stat", &buf, &len);
	int ppid, pgrp, s, tp;
	char st;

	if (e)
		return e;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d %d %d %d %d", &st, &ppid, &pgrp, &s, &tn, &tp) != 6) {
		free(buf);
		return err_set(-EIO, "pid %d: cannot parse /proc/%d/stat", pid, pid);
	}
	free(buf);
	*sid = s;
	*tty = (dev_t)(unsigned)tn;
	*tpgid = tp;
	return 0;
}

static int dup_of(pid_t pid, int fd)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), n;

	if (pfd < 0)
		return err_sys(-errno, "pid %d: pidfd_open", pid);
	n = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	if (n < 0)
		n = err_sys(-errno, "pid %d fd %d: pidfd_getfd", pid, fd);
	close(pfd);
	return n;
}

static int add_fd(struct pty_fd f)
{
	struct pty_fd *n = realloc(dt.fds, (dt.nfds + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	dt.fds = n;
	dt.fds[dt.nfds++] = f;
	return 0;
}

static int add_tty(int index, const struct lx_tty *rec)
{
	struct lx_tty *n = realloc(dt.ttys, (dt.nttys + 1) * sizeof(*n));
	int *ix;

	if (!n)
		return -ENOMEM;
	dt.ttys = n;
	ix = realloc(dt.tty_index, (dt.nttys + 1) * sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	dt.tty_index = ix;
	dt.ttys[dt.nttys] = *rec;
	dt.tty_index[dt.nttys++] = index;
	return 0;
}

struct scan_arg { const struct dump_task *t; size_t i; };

static int scan_fd(int fd, const char *path, const struct stat *st, void *arg)
{
	const struct scan_arg *a = arg;
	pid_t pid = a->t[a->i].pid;
	int dfd, idx, e = 0;

	(void)path;
	if (!S_ISCHR(st->st_mode))
		return 0;
	if (is_pts(st->st_rdev))
		return add_fd((struct pty_fd){ a->i, fd, pts_index(st->st_rdev), LX_TTY_SLAVE });
	if (st->st_rdev != PTMX_DEV)
		return 0;
	dfd = dup_of(pid, fd);
	if (dfd < 0)
		return dfd;
	if (ioctl(dfd, TIOCGPTN, &idx) < 0)
		e = err_sys(-errno, "pid %d fd %d: a pty master: TIOCGPTN", pid, fd);
	close(dfd);
	return e ? e : add_fd((struct pty_fd){ a->i, fd, idx, LX_TTY_MASTER });
}

/* Every fd of the tree on a pty end; a pty record per master held */
static int scan_tree(struct dump_task *t, size_t n)
{
	int e = 0;

	for (size_t i = 0; i < n && !e; i++) {
		struct scan_arg a = { t, i };

		if (!t[i].zombie)
			e = proc_each_fd(t[i].pid, scan_fd, &a);
	}
	/* one record per pty whose master is in the tree */
	for (size_t k = 0; k < dt.nfds && !e; k++) {
		struct lx_tty rec;

		if (dt.fds[k].end != LX_TTY_MASTER || tty_of_index(dt.fds[k].index) >= 0)
			continue;
		memset(&rec, 0, sizeof(rec));
		rec.kind = LX_TTY_PTY;
		rec.index = (uint32_t)dt.fds[k].index;
		e = add_tty(dt.fds[k].index, &rec);
	}
	return e;
}

/* Settings of pty k, read on a duplicate of its master: termios and window
 * size ioctls on a master act on the slave side */
static int pty_settings(struct dump_task *t, size_t k)
{
	struct lx_tty *rec = &dt.ttys[k];
	const struct pty_fd *m = NULL, *s = NULL;
	struct termios tio;
	struct winsize ws;
	int mfd, sfd = -1, v, e = 0, in = 0, out = 0, sin = 0, sout = 0;

	for (size_t j = 0; j < dt.nfds; j++) {
		if (dt.fds[j].index != dt.tty_index[k])
			continue;
		if (dt.fds[j].end == LX_TTY_MASTER && !m)
			m = &dt.fds[j];
		if (dt.fds[j].end == LX_TTY_SLAVE && !s)
			s = &dt.fds[j];
	}
	mfd = dup_of(t[m->task].pid, m->fd);
	if (mfd < 0)
		return mfd;
	if (s) {
		sfd = dup_of(t[s->task].pid, s->fd);
		if (sfd < 0) {
			close(mfd);
			return sfd;
		}
	}
	/* queued bytes cannot be read without consuming them */
	if (ioctl(mfd, FIONREAD, &in) < 0)
		in = 0;
	if (ioctl(mfd, TIOCOUTQ, &out) < 0)
		out = 0;
	if (sfd >= 0 && ioctl(sfd, FIONREAD, &sin) < 0)
		sin = 0;
	if (sfd >= 0 && ioctl(sfd, TIOCOUTQ, &sout) < 0)
		sout = 0;
	if (in || out)
		e = err_set(-EOPNOTSUPP, "pid %d fd %d: pty master of /dev/pts/%d: %d byte(s) written"
			    " by the slave side are not yet read (and %d queued): a tty queue cannot"
			    " be saved without consuming it; dump when the program has read them",
			    t[m->task].pid, m->fd, dt.tty_index[k], in, out);
	else if (sin || sout)
		e = err_set(-EOPNOTSUPP, "pid %d fd %d: pty /dev/pts/%d: %d byte(s) of input not yet"
			    " read (and %d of output queued): a tty queue cannot be saved without"
			    " consuming it; dump when the program has read them", t[s->task].pid,
			    s->fd, dt.tty_index[k], sin, sout);
	if (!e && ioctl(mfd, TIOCGPKT, &v) == 0 && v) {
		/* packet mode: a status change waiting for the master's reader
		 * shows as POLLPRI, and no byte count has it */
		struct pollfd p = { mfd, POLLPRI, 0 };

		if (poll(&p, 1, 0) == 1 && (p.revents & POLLPRI))
			e = err_set(-EOPNOTSUPP, "pid %d fd %d: pty master of /dev/pts/%d in packet mode"
				    " has a status change not yet read: a tty queue cannot be saved"
				    " without consuming it; dump when the program has read it",
				    t[m->task].pid, m->fd, dt.tty_index[k]);
	}
	if (!e && tcgetattr(mfd, &tio) == 0 && ioctl(mfd, TIOCGWINSZ, &ws) == 0) {
		rec->flags |= LX_TTYF_TERMIOS;
		rec->iflag = tio.c_iflag;
		rec->oflag = tio.c_oflag;
		rec->cflag = tio.c_cflag;
		rec->lflag = tio.c_lflag;
		rec->line = tio.c_line;
		memcpy(rec->cc, tio.c_cc, sizeof(rec->cc) < sizeof(tio.c_cc) ? sizeof(rec->cc)
		       : sizeof(tio.c_cc));
		rec->rows = ws.ws_row;
		rec->cols = ws.ws_col;
		rec->xpixel = ws.ws_xpixel;
		rec->ypixel = ws.ws_ypixel;
	} else if (!e) {
		e = err_sys(-errno, "pid %d fd %d: pty /dev/pts/%d: read its termios",
			    t[m->task].pid, m->fd, dt.tty_index[k]);
	}
	if (!e && ioctl(mfd, TIOCGPTLCK, &v) == 0 && v)
		rec->flags |= LX_TTYF_LOCKED;
	if (!e && ioctl(mfd, TIOCGPKT, &v) == 0 && v)
		rec->flags |= LX_TTYF_PACKET;
	close(mfd);
	if (sfd >= 0)
		close(sfd);
	return e;
}

static int in_tree(struct dump_task *t, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].pid == pid)
			return 1;
	return 0;
}

static int tree_has_pgrp(struct dump_task *t, size_t n, pid_t pgrp)
{
	for (size_t i = 0; i < n; i++)
		if (!t[i].zombie && t[i].stat.pgrp == pgrp)
			return 1;
	return 0;
}

/* A pty of the tree must not be held or controlling outside it: the
 * restore could not give the outside process its end back. */
static int check_outside(struct dump_task *t, size_t n)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int e = 0;

	if (!proc)
		return err_sys(-errno, "open /proc");
	while (!e && (de = readdir(proc))) {
		pid_t pid = atoi(de->d_name), sid, tpg;
		char dir[64];
		dev_t ctty;
		DIR *d;
		struct dirent *fe;

		if (pid <= 0 || pid == getpid() || in_tree(t, n, pid))
			continue;
		if (stat_tty(pid, &sid, &ctty, &tpg) == 0 && is_pts(ctty) &&
		    tty_of_index(pts_index(ctty)) >= 0) {
			e = err_set(-EOPNOTSUPP, "pid %d: /dev/pts/%d, a pty of the tree, is the"
				    " controlling terminal of pid %d outside the tree: not supported",
				    t[0].pid, pts_index(ctty), pid);
			break;
		}
		err_clear();
		snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
		d = opendir(dir);
		if (!d)
			continue;
		while (!e && (fe = readdir(d))) {
			char p[64 + 256 + 2];
			struct stat st;
			int fd = atoi(fe->d_name);

			if (fe->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, fe->d_name);
			if (stat(p, &st) < 0 || !S_ISCHR(st.st_mode))
				continue;
			if (is_pts(st.st_rdev) && tty_of_index(pts_index(st.st_rdev)) >= 0)
				e = err_set(-EOPNOTSUPP, "/dev/pts/%d, a pty whose master is in the tree"
					    " (pid %d), is also open in pid %d fd %d outside the tree:"
					    " not supported", pts_index(st.st_rdev), t[0].pid, pid, fd);
			if (st.st_rdev != PTMX_DEV)
				continue;
			for (size_t k = 0; k < dt.nfds && !e; k++)
				if (dt.fds[k].end == LX_TTY_MASTER &&
				    syscall(SYS_kcmp, t[dt.fds[k].task].pid, pid, 0 /* KCMP_FILE */,
					    dt.fds[k].fd, fd) == 0)
					e = err_set(-EOPNOTSUPP, "pid %d fd %d: the master of /dev/pts/%d"
						    " is also held by pid %d fd %d outside the tree: not"
						    " supported", t[dt.fds[k].task].pid, dt.fds[k].fd,
						    dt.fds[k].index, pid, fd);
		}
		closedir(d);
	}
	closedir(proc);
	return e;
}

/* Controlling terminals: a pty of the tree (its session leader is in the
 * tree), or the user's terminal of a shell job; nothing else. */
static int check_sessions(struct dump_task *t, size_t n, int shell_job, struct lx_options *opt)
{
	pid_t root_sid = t[0].stat.session;
	int outside_session = !in_tree(t, n, root_sid), e = 0, shell_rec = 0;

	for (size_t i = 0; i < n && !e; i++) {
		pid_t sid, tpg;
		dev_t ctty;
		char name[64];
		long k;

		if (t[i].zombie)
			continue;
		e = stat_tty(t[i].pid, &sid, &ctty, &tpg);
		if (e || !ctty)
			continue;
		tty_name(ctty, name, sizeof(name));
		k = is_pts(ctty) ? tty_of_index(pts_index(ctty)) : -1;
		if (k >= 0) {
			struct lx_tty *rec = &dt.ttys[k];

			if (!in_tree(t, n, sid))
				e = err_set(-EOPNOTSUPP, "pid %d: its controlling terminal %s is a pty"
					    " of the tree, but its session %d is led outside the tree:"
					    " not supported", t[i].pid, name, sid);
			for (size_t j = 0; j < n && !e; j++)
				if (t[j].pid == sid && t[j].zombie)
					e = err_set(-EOPNOTSUPP, "pid %d: the leader of its session %d,"
						    " whose controlling terminal is %s, has exited: not"
						    " supported", t[i].pid, sid, name);
			else if (tpg > 0 && !tree_has_pgrp(t, n, tpg))
				e = err_set(-EOPNOTSUPP, "pid %d: the foreground process group %d of"
					    " its terminal %s is outside the tree: not supported",
					    t[i].pid, tpg, name);
			rec->sid = (uint32_t)sid;
			rec->fg_pgid = tpg > 0 ? (uint32_t)tpg : 0;
			continue;
		}
		if (sid == root_sid && outside_session) {
			/* a job started from the user's shell */
			if (!shell_job)
				e = err_set(-EOPNOTSUPP, "pid %d: its session %d and controlling"
					    " terminal %s belong to a process outside the tree (a job"
					    " started from a shell): use --shell-job to dump it; the"
					    " restore then joins cryo's terminal", t[i].pid, sid, name);
			else if (!shell_rec) {
				struct lx_tty rec;

				memset(&rec, 0, sizeof(rec));
				rec.kind = LX_TTY_SHELL;
				/* the foreground group comes back only if it is the tree's */
				/* a group of the tree (led inside it); the root's group
				 * from outside becomes cryo's own at restore */
				if (tpg > 0 && in_tree(t, n, tpg) && tree_has_pgrp(t, n, tpg))
					rec.fg_pgid = (uint32_t)tpg;
				e = add_tty(-1, &rec);
				shell_rec = 1;
				opt->flags |= LX_OPT_SHELL_JOB;
			}
			continue;
		}
		e = err_set(-EOPNOTSUPP, "pid %d: its controlling terminal, %s, is not supported (only"
			    " a pty whose master is in the tree, or the user's terminal of a job"
			    " dumped with --shell-job)", t[i].pid, name);
	}
	return e;
}

/* Each pty fd is handed out by the restorer, which makes the pty once:
 * give every one a share id (the same for one open file description). */
static int pty_shares(struct dump_task *t, size_t n)
{
	int next = 0, e = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t s = 0; s < t[i].nshares; s++)
			if (t[i].shares[s].id > next)
				next = t[i].shares[s].id;
	for (size_t k = 0; k < dt.nfds && !e; k++) {
		const struct pty_fd *f = &dt.fds[k];
		int id = 0;

		if (tty_of_index(f->index) < 0 || dump_share_id(&t[f->task], f->fd))
			continue;
		for (size_t j = 0; j < k && !id; j++)
			if (dt.fds[j].index == f->index && dt.fds[j].end == f->end &&
			    syscall(SYS_kcmp, t[dt.fds[j].task].pid, t[f->task].pid, 0,
				    dt.fds[j].fd, f->fd) == 0)
				id = (int)dump_share_id(&t[dt.fds[j].task], dt.fds[j].fd);
		e = share_add(&t[f->task], f->fd, id ? id : ++next);
	}
	return e;
}

int tty_dump_tree(struct dump_task *t, size_t n, int shell_job, struct img_writer *w,
		  struct lx_options *opt)
{
	int e;

	dt_free();
	e = scan_tree(t, n);
	for (size_t k = 0; k < dt.nttys && !e; k++)
		e = pty_settings(t, k);
	if (!e && dt.nttys)
		e = check_outside(t, n);
	if (!e)
		e = check_sessions(t, n, shell_job, opt);
	if (!e)
		e = pty_shares(t, n);
	if (!e && dt.nttys)
		e = img_add(w, LX_SEC_TTYS, LX_TASK_GLOBAL, sizeof(*dt.ttys), dt.ttys,
			    dt.nttys * sizeof(*dt.ttys));
	return e;
}

int tty_is_outside(const struct lx_fd *r)
{
	if ((dev_t)r->rdev == PTMX_DEV)
		return 0;
	return !is_pts((dev_t)r->rdev) || tty_of_index(pts_index((dev_t)r->rdev)) < 0;
}

int tty_dump(struct fd_dump *d, struct lx_fd *r, const char *link)
{
	struct lx_tty_fd tf;
	char name[64];
	long k;
	int end;

	memset(&tf, 0, sizeof(tf));
	if (is_pts((dev_t)r->rdev)) {
		k = tty_of_index(pts_index((dev_t)r->rdev));
		end = LX_TTY_SLAVE;
		if (k < 0)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: %s, a pty whose master is outside"
				       " the tree, is supported only as stdio (fds 0-2, taken from"
				       " the restorer's)", d->pid, r->fd, link);
	} else if ((dev_t)r->rdev == PTMX_DEV) {
		int dfd = fd_dup(d, (int)r->fd), idx = -1;

		if (dfd < 0)
			return dfd;
		if (ioctl(dfd, TIOCGPTN, &idx) < 0)
			idx = -1;
		close(dfd);
		k = tty_of_index(idx);
		end = LX_TTY_MASTER;
	} else if ((dev_t)r->rdev == makedev(5, 0) && !strcmp(link, "/dev/tty")) {
		pid_t sid, tpg;
		dev_t ctty;
		int e = stat_tty(d->pid, &sid, &ctty, &tpg);

		/* "the controlling terminal": reopened by name in the restored
		 * process, which gets its terminal back before its files */
		if (e)
			return e;
		if (!ctty || r->share_id)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: /dev/tty %s: not supported", d->pid,
				       r->fd, ctty ? "shared with another process of the tree" :
				       "of a process that has no controlling terminal any more");
		r->kind = LX_FD_CHR;
		r->path_off = img_str(d->t->w, d->t->index, "/dev/tty");
		return 0;
	} else {
		tty_name((dev_t)r->rdev, name, sizeof(name));
		return err_set(-EOPNOTSUPP, "pid %d fd %u: a terminal, %s (%s), is not supported"
			       " (only pseudo-terminals whose master is in the tree)", d->pid, r->fd,
			       name, link);
	}
	if (k < 0)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: %s: pty not found in the tree scan",
			       d->pid, r->fd, link);
	if (!r->share_id)
		return err_set(-EINVAL, "pid %d fd %u: pty end without a share id", d->pid, r->fd);
	r->kind = LX_FD_PTY;
	tf.fd = r->fd;
	tf.tty = (uint32_t)k;
	tf.end = (uint32_t)end;
	return recbuf_add(&d->sec[LX_SEC_TTYS], &tf, sizeof(tf));
}

/* --------------------------------------------------------------- restore */

static struct {
	struct lx_tty *ttys;
	size_t n;
	int *master;		/* restorer's master per record, -1: not made */
	int loaded;
} rt;

/* Load and check the global records against the tasks */
int tty_check(const struct img *im)
{
	struct lx_options opt;
	struct lx_task *tasks = NULL;
	size_t nt = 0;
	int e;

	if (rt.loaded)
		return 0;
	/* unknown options (a newer cryo's) would be ignored: refuse them */
	e = options_read(im, &opt);
	if (e)
		return e;
	e = img_records(im, LX_SEC_TTYS, LX_TASK_GLOBAL, sizeof(*rt.ttys), 64,
			(void **)&rt.ttys, &rt.n);
	if (e == -ENOENT) {
		rt.loaded = 1;
		return 0;
	}
	if (e)
		return e;
	e = img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32, (void **)&tasks,
			&nt);
	if (e)
		return e;
	rt.master = malloc((rt.n ? rt.n : 1) * sizeof(int));
	if (!rt.master) {
		free(tasks);
		return -ENOMEM;
	}
	for (size_t k = 0; k < rt.n && !e; k++) {
		const struct lx_tty *r = &rt.ttys[k];
		int sid_ok = !r->sid, fg_ok = !r->fg_pgid;

		rt.master[k] = -1;
		for (size_t i = 0; i < nt; i++) {
			if (r->sid && tasks[i].pid == r->sid && tasks[i].sid == r->sid &&
			    !(tasks[i].flags & LX_TASK_ZOMBIE))
				sid_ok = 1;
			if (r->fg_pgid && tasks[i].pgid == r->fg_pgid)
				fg_ok = 1;
		}
		if ((r->kind != LX_TTY_PTY && r->kind != LX_TTY_SHELL) || !sid_ok || !fg_ok ||
		    (r->kind == LX_TTY_SHELL && (r->sid || !(opt.flags & LX_OPT_SHELL_JOB))))
			e = err_set(-EINVAL, "image %s: tty record %zu is malformed", im->path, k);
	}
	free(tasks);
	if (!e)
		rt.loaded = 1;
	return e;
}

static int make_pty(size_t k, char *msg, size_t len)
{
	const struct lx_tty *r = &rt.ttys[k];
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), zero = 0, one = 1;

	if (m < 0) {
		snprintf(msg, len, "pty %zu: open /dev/ptmx: %s", k, strerror(errno));
		return -1;
	}
	if (ioctl(m, TIOCSPTLCK, &zero) < 0) {
		snprintf(msg, len, "pty %zu: unlock: %s", k, strerror(errno));
		goto fail;
	}
	if (r->flags & LX_TTYF_TERMIOS) {
		struct termios tio;
		struct winsize ws = { r->rows, r->cols, r->xpixel, r->ypixel };

		memset(&tio, 0, sizeof(tio));
		tio.c_iflag = r->iflag;
		tio.c_oflag = r->oflag;
		tio.c_cflag = r->cflag;
		tio.c_lflag = r->lflag;
		tio.c_line = r->line;
		memcpy(tio.c_cc, r->cc, sizeof(r->cc) < sizeof(tio.c_cc) ? sizeof(r->cc)
		       : sizeof(tio.c_cc));
		tio.c_ispeed = cfgetispeed(&tio);
		tio.c_ospeed = cfgetospeed(&tio);
		if (tcsetattr(m, TCSANOW, &tio) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0) {
			snprintf(msg, len, "pty %zu: set termios and window size: %s", k,
				 strerror(errno));
			goto fail;
		}
	}
	if ((r->flags & LX_TTYF_PACKET) && ioctl(m, TIOCPKT, &one) < 0) {
		snprintf(msg, len, "pty %zu: packet mode: %s", k, strerror(errno));
		goto fail;
	}
	rt.master[k] = m;
	return m;
fail:
	close(m);
	return -1;
}

static int master_of(size_t k, char *msg, size_t len)
{
	if (k >= rt.n || rt.ttys[k].kind != LX_TTY_PTY) {
		snprintf(msg, len, "tty %zu: not a pty of the image", k);
		return -1;
	}
	return rt.master[k] >= 0 ? rt.master[k] : make_pty(k, msg, len);
}

int tty_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const struct lx_tty_fd *tf = fr_rec(c, LX_SEC_TTYS, sizeof(*tf), r->fd);
	char msg[256];
	int m, fd;

	if (!tf)
		return -EINVAL;
	if (!rt.loaded && tty_check(c->im))
		return fr_err(c, -EINVAL, "fd %u: %s", r->fd, err_msg());
	m = master_of(tf->tty, msg, sizeof(msg));
	if (m < 0)
		return fr_err(c, -EIO, "fd %u: %s", r->fd, msg);
	if (tf->end == LX_TTY_MASTER)
		fd = fcntl(m, F_DUPFD_CLOEXEC, 3);
	else if (tf->end == LX_TTY_SLAVE)
		/* never as the restorer's controlling terminal */
		fd = ioctl(m, TIOCGPTPEER, (int)(r->flags & O_ACCMODE) | O_NOCTTY | O_CLOEXEC);
	else
		return fr_err(c, -EINVAL, "fd %u: bad pty end %u", r->fd, tf->end);
	if (fd < 0)
		return fr_err(c, -errno, "fd %u: open the %s of pty %u: %s", r->fd,
			      tf->end == LX_TTY_MASTER ? "master" : "slave", tf->tty,
			      strerror(errno));
	return fd;
}

int tty_restore_ctty(pid_t pid, char *msg, size_t len)
{
	for (size_t k = 0; k < rt.n; k++) {
		int m, s;

		if (rt.ttys[k].kind != LX_TTY_PTY || rt.ttys[k].sid != (uint32_t)pid)
			continue;
		m = master_of(k, msg, len);
		if (m < 0)
			return -1;
		s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0) {
			snprintf(msg, len, "pid %d: take pty %zu as controlling terminal: %s", pid, k,
				 strerror(errno));
			if (s >= 0)
				close(s);
			return -1;
		}
		close(s);
	}
	return 0;
}

/* tcsetpgrp with SIGTTOU held: the caller may be in a background group */
static int set_fg(int fd, pid_t pgrp)
{
	sigset_t ttou, old;
	int r;

	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	r = tcsetpgrp(fd, pgrp) < 0 ? -errno : 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

int tty_restore_fg(pid_t pid, char *msg, size_t len)
{
	for (size_t k = 0; k < rt.n; k++) {
		int e;

		if (rt.ttys[k].kind != LX_TTY_PTY || rt.ttys[k].sid != (uint32_t)pid ||
		    !rt.ttys[k].fg_pgid || rt.master[k] < 0)
			continue;
		e = set_fg(rt.master[k], (pid_t)rt.ttys[k].fg_pgid);
		if (e) {
			snprintf(msg, len, "pid %d: make group %u the foreground of its terminal: %s",
				 pid, rt.ttys[k].fg_pgid, strerror(-e));
			return -1;
		}
	}
	return 0;
}

static int shell_tty = -1;	/* cryo's terminal, given to a restored job */
static pid_t shell_pgrp;	/* ... whose group got the foreground */

int tty_restore_tree_made(const struct img *im)
{
	int e = 0, one = 1;

	for (size_t k = 0; k < rt.n && !e; k++) {
		const struct lx_tty *r = &rt.ttys[k];

		if (r->kind == LX_TTY_SHELL && r->fg_pgid) {
			int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

			if (fd < 0) {
				warn("%s: a shell job that had its terminal's foreground, but cryo has"
				     " no controlling terminal: restored without one", im->path);
				continue;
			}
			if (tcgetpgrp(fd) != getpgrp()) {
				/* cryo itself runs in the background: so does the job */
				info("%s: cryo is not in its terminal's foreground: the restored"
				     " job stays in the background", im->path);
				close(fd);
				continue;
			}
			e = set_fg(fd, (pid_t)r->fg_pgid);
			if (e) {
				e = err_sys(e, "give the terminal's foreground to the restored group"
					    " %u", r->fg_pgid);
				close(fd);
			} else {
				shell_tty = fd;
				shell_pgrp = (pid_t)r->fg_pgid;
			}
		}
		if (r->kind == LX_TTY_PTY && rt.master[k] >= 0) {
			if ((r->flags & LX_TTYF_LOCKED) && ioctl(rt.master[k], TIOCSPTLCK, &one) < 0)
				e = err_sys(-errno, "pty %zu: lock it again", k);
			close(rt.master[k]);
			rt.master[k] = -1;
		}
	}
	return e;
}

void tty_restore_giveback(void)
{
	pid_t cur;

	if (shell_tty < 0)
		return;
	/* still the job's (or its group is gone): the terminal is cryo's again */
	cur = tcgetpgrp(shell_tty);
	if (cur == shell_pgrp || (cur > 0 && kill(-cur, 0) < 0))
		set_fg(shell_tty, getpgrp());
	close(shell_tty);
	shell_tty = -1;
}
