/* Unix sockets connected between processes of the tree: a socketpair
 * whose ends went to a parent and its child, or a connection accepted by
 * a listener in one process from a client in another. Like a pipe between
 * processes (pipes.c), the connection is rebuilt once by the restorer,
 * before the tree exists, with what was queued on each end, and each end
 * is handed to its holders as a shared description (files_open_shared).
 *
 * Dump: dump.c asks socktree_mark() to find them: every unix socket of
 * the tree whose peer (NETLINK_SOCK_DIAG) is held in the tree too, the two
 * sockets being held by more than one process. Each socket (one open file
 * description per socket inode) gets a share id, and records its peer's;
 * its queue is peeked (without consuming) by one holder only.
 *
 * Restore: the first holder of either end met by files_open_shared makes
 * the connection: socketpair(), or when one end has a name (the accepted
 * end reports its listener's path in getsockname, and the client in
 * getpeername) a connect() to a temporary listener bound to that name, so
 * that both names come back; then the queues are refilled through the
 * other end and shutdown() is done again. Peer credentials (SO_PEERCRED)
 * are the restorer's, as for every restored unix connection. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"
#include "image.h"

/* ---- dump ---- */

struct skref {
	size_t task;
	int fd;
	uint64_t ino, peer;
};

static int collect(struct dump_task *t, size_t nt, struct skref **out, size_t *count)
{
	struct skref *refs = NULL;
	size_t n = 0, cap = 0;
	int e = 0;

	for (size_t i = 0; i < nt && !e; i++) {
		char dir[64];
		DIR *d;
		struct dirent *de;

		if (t[i].zombie)
			continue;
		snprintf(dir, sizeof(dir), "/proc/%d/fd", t[i].pid);
		d = opendir(dir);
		if (!d) {
			e = err_sys(-errno, "pid %d: open %s", t[i].pid, dir);
			break;
		}
		while ((de = readdir(d))) {
			char p[64 + 256 + 2];
			struct stat st;
			uint64_t peer;

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (stat(p, &st) < 0 || !S_ISSOCK(st.st_mode))
				continue;
			/* not a unix socket, or one the kernel cannot describe:
			 * left to socket_dump, which names the reason */
			if (unix_peer_of(t[i].pid, atoi(de->d_name), st.st_ino, &peer)) {
				err_clear();
				continue;
			}
			if (n == cap) {
				struct skref *nr;

				cap = cap ? cap * 2 : 32;
				nr = realloc(refs, cap * sizeof(*nr));
				if (!nr) {
					e = -ENOMEM;
					break;
				}
				refs = nr;
			}
			refs[n++] = (struct skref){ i, atoi(de->d_name), st.st_ino, peer };
		}
		closedir(d);
	}
	if (e) {
		free(refs);
		return e;
	}
	*out = refs;
	*count = n;
	return 0;
}

static const struct skref *find_ino(const struct skref *r, size_t n, uint64_t ino)
{
	for (size_t k = 0; k < n; k++)
		if (r[k].ino == ino)
			return &r[k];
	return NULL;
}

static int mark_end(struct dump_task *t, const struct skref *r, size_t n, uint64_t ino, int id,
		    int peer_id)
{
	int first = 1, e = 0;

	for (size_t k = 0; k < n && !e; k++) {
		struct dump_task *tk = &t[r[k].task];
		struct fd_share *sh;

		if (r[k].ino != ino)
			continue;
		e = share_add(tk, r[k].fd, id);
		if (e)
			break;
		sh = &tk->shares[tk->nshares - 1];
		sh->tree_sock = 1;
		sh->peer_id = peer_id;
		sh->sock_data = first;
		first = 0;
	}
	return e;
}

/* the unix sockets of the tree seen by the last socktree_mark, so that a
 * refusal can tell a peer in the tree from one outside */
static uint64_t *tree_inos;
static size_t ntree_inos;

int socktree_holds(uint64_t ino)
{
	for (size_t k = 0; k < ntree_inos; k++)
		if (tree_inos[k] == ino)
			return 1;
	return 0;
}

int socktree_mark(struct dump_task *t, size_t nt, int *next_id)
{
	struct skref *r;
	size_t n;
	int e = collect(t, nt, &r, &n);

	if (e)
		return e;
	free(tree_inos);
	ntree_inos = 0;
	tree_inos = malloc((n ? n : 1) * sizeof(*tree_inos));
	if (!tree_inos) {
		free(r);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++)
		tree_inos[ntree_inos++] = r[k].ino;
	for (size_t a = 0; a < n && !e; a++) {
		const struct skref *b = find_ino(r, n, r[a].peer);
		int spread = 0, ida;

		/* connected, unmarked, mutual (a datagram socket connected to a
		 * named one is not a pair), both in the tree */
		if (!r[a].peer || dump_share_id(&t[r[a].task], r[a].fd) || !b ||
		    b->peer != r[a].ino)
			continue;
		for (size_t k = 0; k < n; k++)
			if ((r[k].ino == r[a].ino || r[k].ino == r[a].peer) && r[k].task != r[a].task)
				spread = 1;
		if (!spread)
			continue;	/* both ends in one process: sockets.c */
		ida = ++*next_id;
		++*next_id;
		e = mark_end(t, r, n, r[a].ino, ida, ida + 1);
		if (!e)
			e = mark_end(t, r, n, r[a].peer, ida + 1, ida);
	}
	free(r);
	return e;
}

int socktree_dump(struct fd_dump *d, const struct lx_fd *r, int s, struct lx_socket *sk,
		  uint64_t peer_ino)
{
	const struct fd_share *sh = dump_share(d->t, (int)r->fd);
	size_t had = d->sec[LX_SEC_SCM_RIGHTS].len;
	int e;

	sk->state = LX_SK_TREE_PAIR;
	sk->peer_share = (uint32_t)sh->peer_id;
	if (!sh->sock_data)
		return 0;
	e = socket_peek_queue(d, r, s, (int)sk->type, sk);
	/* files in flight: only those reopened by path (the restorer makes
	 * the connection before any process of the tree holds a file), and
	 * only when no process holds the same file open, whose offset
	 * would then no longer be shared with the one in flight */
	for (size_t k = had / sizeof(struct lx_scm_fd);
	     !e && k < d->sec[LX_SEC_SCM_RIGHTS].len / sizeof(struct lx_scm_fd); k++) {
		const struct lx_scm_fd *f = (const struct lx_scm_fd *)d->sec[LX_SEC_SCM_RIGHTS].p + k;
		pid_t other = proc_fd_holder(r->dev, peer_ino, d->pid), holder;

		if (f->kind != LX_SCM_FILE)
			e = err_set(-EOPNOTSUPP, "pid %d fd %u: a file in flight (SCM_RIGHTS) on a unix"
				    " socket connected to pid %d (another process of the tree) that is"
				    " an open file of the receiver or a pipe end is not supported (only"
				    " regular files and directories)", d->pid, r->fd, other);
		else if ((holder = proc_fd_holder((dev_t)f->dev, (ino_t)f->ino, 0)))
			e = err_set(-EOPNOTSUPP, "pid %d fd %u: a file in flight (SCM_RIGHTS) on a unix"
				    " socket connected to pid %d (another process of the tree) is"
				    " also open in pid %d: not supported (its open file description"
				    " could not stay shared)", d->pid, r->fd, other, holder);
	}
	return e;
}

/* ---- restore, in the restorer ---- */

struct tree_sock {
	uint32_t id[2];		/* share ids of the two ends */
	int fd[2];		/* -1 once handed out */
};

static struct tree_sock *socks;
static size_t nsocks;

/* unix listeners opened here (shared by several processes): a connection
 * accepted from one of them is made through it, its file being the one
 * at the name now */
struct tree_listener {
	int fd;
	uint32_t addr_len;
	uint8_t addr[128];
};

static struct tree_listener *listeners;
static size_t nlisteners;

/* A socket record of share id `share` anywhere in the tree, preferring the
 * one holding its queue; *task its task, *fd_rec its lx_fd */
static int find_end(const struct img *im, uint32_t share, struct lx_socket *out, uint32_t *task)
{
	struct lx_task *tasks;
	size_t nt;
	int e = img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32,
			    (void **)&tasks, &nt), found = 0;

	if (e)
		return e;
	free(tasks);
	for (size_t t = 0; t < nt && found < 2; t++) {
		struct lx_fd *fds;
		struct lx_socket *sk;
		size_t nf, ns;

		if (img_records(im, LX_SEC_FDS, (uint32_t)t, sizeof(*fds), sizeof(*fds),
				(void **)&fds, &nf)) {
			err_clear();
			continue;
		}
		if (img_records(im, LX_SEC_SOCKETS, (uint32_t)t, sizeof(*sk), sizeof(*sk),
				(void **)&sk, &ns)) {
			err_clear();
			free(fds);
			continue;
		}
		for (size_t k = 0; k < ns && found < 2; k++) {
			if (sk[k].state != LX_SK_TREE_PAIR)
				continue;
			for (size_t f = 0; f < nf; f++)
				if (fds[f].fd == sk[k].fd && fds[f].share_id == share &&
				    !fds[f].dup_of && (!found || sk[k].data_len)) {
					*out = sk[k];
					*task = (uint32_t)t;
					found = sk[k].data_len ? 2 : 1;
					break;
				}
		}
		free(sk);
		free(fds);
	}
	if (!found)
		return err_set(-EINVAL, "image: no socket record for shared description %u", share);
	return 0;
}

/* The pid of task index t, for messages (0 if the image has none) */
static unsigned task_pid(const struct img *im, uint32_t t)
{
	struct lx_task *tasks;
	size_t nt;
	unsigned pid = 0;

	if (img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32, (void **)&tasks,
			&nt)) {
		err_clear();
		return 0;
	}
	if (t < nt)
		pid = tasks[t].pid;
	free(tasks);
	return pid;
}

/* What was queued for reading on `to` (a record of task), sent through
 * its peer `from`, with its files in flight: sockets.c's refill, over the
 * records of that task. Only files reopened by path can be in flight
 * here (the restorer holds no fd of the tree yet): any other kind in an
 * image is refused, never looked up among the restorer's own fds. */
static int tree_refill(struct fd_restore *c, uint32_t task, const struct lx_socket *to,
		       int from)
{
	struct fd_restore t;
	const struct lx_scm_fd *f;
	const void *blob;
	uint64_t dlen;
	uint32_t rs;
	size_t n;
	int e = 0;

	memset(&t, 0, sizeof(t));
	t.im = c->im;
	t.task = task;
	t.errbuf = c->errbuf;
	t.errlen = c->errlen;
	if (img_find(c->im, LX_SEC_FDDATA, task, &blob, &dlen, &rs) == 0) {
		t.data = blob;
		t.data_len = dlen;
	}
	f = fr_recs(&t, LX_SEC_SCM_RIGHTS, sizeof(*f), &n);
	for (size_t k = 0; k < n && !e; k++)
		if (f[k].fd == to->fd && f[k].kind != LX_SCM_FILE)
			e = err_set(-EINVAL, "image: task %u fd %u: a file in flight of kind %u on a"
				    " socket between processes", task, to->fd, f[k].kind);
	if (!e && socket_refill(&t, to, from) < 0)
		e = err_set(-EIO, "pid %u %s (a socket between processes)", task_pid(c->im, task),
			    c->errbuf);
	for (size_t k = 0; k < LX_SEC_TYPE_MAX; k++)
		free(t.sec[k].recs);
	return e;
}

/* A unix name as bind() takes it, if the restorer can bind it for the
 * process: abstract, or an absolute path (a relative one is relative to
 * the process's working directory, not the restorer's) */
static int usable_name(const struct lx_socket *sk)
{
	const struct sockaddr_un *un = (const void *)sk->addr;
	size_t base = offsetof(struct sockaddr_un, sun_path);

	return sk->addr_len > base && sk->addr_len <= sizeof(sk->addr) &&
	       (un->sun_path[0] == 0 || un->sun_path[0] == '/');
}

/* The connection through a temporary listener bound to the accepted end's
 * name, so that getsockname/getpeername report it as before. 1: done;
 * 0: not possible (the name is taken), sv untouched. */
static int connect_named(const struct lx_socket *acc, int sv[2])
{
	const struct sockaddr_un *un = (const void *)acc->addr;
	char path[sizeof(un->sun_path) + 1] = "";
	int l, cl = -1, ac = -1, ok = 0;

	for (size_t k = 0; k < nlisteners; k++) {
		if (listeners[k].addr_len != acc->addr_len ||
		    memcmp(listeners[k].addr, acc->addr, acc->addr_len))
			continue;
		cl = socket(AF_UNIX, (int)acc->type | SOCK_CLOEXEC, 0);
		if (cl < 0)
			return 0;
		if (connect(cl, (const struct sockaddr *)acc->addr, acc->addr_len) == 0 &&
		    (ac = accept4(listeners[k].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			sv[0] = ac;
			sv[1] = cl;
			return 1;
		}
		close(cl);
		return 0;
	}
	if (un->sun_path[0]) {
		struct stat st;

		snprintf(path, sizeof(path), "%.*s",
			 (int)(acc->addr_len - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
		/* only the listener's own old file may be replaced; it is
		 * removed by the listener's restore anyway (sockets.c) */
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode) || st.st_ino != acc->vfs_ino || unlink(path) < 0)
				return 0;
		}
	}
	l = socket(AF_UNIX, (int)acc->type | SOCK_CLOEXEC, 0);
	if (l < 0)
		return 0;
	if (bind(l, (const struct sockaddr *)acc->addr, acc->addr_len) == 0) {
		if (listen(l, 1) == 0 && (cl = socket(AF_UNIX, (int)acc->type | SOCK_CLOEXEC, 0)) >= 0 &&
		    connect(cl, (const struct sockaddr *)acc->addr, acc->addr_len) == 0 &&
		    (ac = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0)
			ok = 1;
		if (path[0])
			unlink(path);
	}
	close(l);
	if (!ok) {
		if (cl >= 0)
			close(cl);
		return 0;
	}
	sv[0] = ac;
	sv[1] = cl;
	return 1;
}

static int make_pair(struct fd_restore *c, size_t i, const struct lx_socket *mine,
		     struct tree_sock *ts)
{
	struct lx_socket me, peer;
	uint32_t tme, tpeer;
	int sv[2], e;

	/* the records holding the queues (another holder of this end, in
	 * another process, may be the one that saved it) */
	e = find_end(c->im, c->fds[i].share_id, &me, &tme);
	if (!e)
		e = find_end(c->im, mine->peer_share, &peer, &tpeer);
	if (e)
		return e;
	if (peer.peer_share != c->fds[i].share_id || peer.type != me.type ||
	    me.type != mine->type || me.peer_share != mine->peer_share)
		return err_set(-EINVAL, "image: task %u fd %u: bad socket pair between processes",
			       c->task, mine->fd);
	if (!me.addr_len && !peer.addr_len) {
		e = socketpair(AF_UNIX, (int)me.type | SOCK_CLOEXEC, 0, sv);
	} else if (me.type != SOCK_DGRAM && !(me.addr_len && peer.addr_len) &&
		   usable_name(me.addr_len ? &me : &peer) &&
		   connect_named(me.addr_len ? &me : &peer, sv)) {
		if (!me.addr_len) {	/* sv[0]: the accepted (named) end */
			int x = sv[0];

			sv[0] = sv[1];
			sv[1] = x;
		}
		e = 0;
	} else {
		warn("pid %u fd %u: a named unix socket connected to another process of the"
		     " tree: restored as a socket pair, without its name (getsockname/"
		     "getpeername report none)", task_pid(c->im, c->task), mine->fd);
		e = socketpair(AF_UNIX, (int)me.type | SOCK_CLOEXEC, 0, sv);
	}
	if (e < 0)
		return err_sys(-errno, "pid %u fd %u: socketpair", task_pid(c->im, c->task),
			       mine->fd);
	e = socket_set_opts(c, &me, sv[0]);
	if (!e)
		e = socket_set_opts(c, &peer, sv[1]);
	if (e)
		e = err_set(e, "%s", c->errbuf);
	if (!e)
		e = tree_refill(c, tme, &me, sv[1]);
	if (!e)
		e = tree_refill(c, tpeer, &peer, sv[0]);
	if (!e && (socket_shut(c, &me, sv[0]) || socket_shut(c, &peer, sv[1])))
		e = err_set(-EIO, "%s", c->errbuf);
	if (e) {
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	ts->id[0] = c->fds[i].share_id;
	ts->id[1] = mine->peer_share;
	ts->fd[0] = sv[0];
	ts->fd[1] = sv[1];
	return 0;
}

/* A socket file bound here, by the restorer, gets the mode and owner the
 * process's own bind() would have given it (its umask, its fs ids) */
static int own_like_task(struct fd_restore *c, const struct lx_socket *sk)
{
	const struct sockaddr_un *un = (const void *)sk->addr;
	char path[sizeof(un->sun_path) + 1];
	struct lx_core *core;
	size_t n;
	int e;

	if (sk->addr_len <= offsetof(struct sockaddr_un, sun_path) || un->sun_path[0] != '/')
		return 0;
	snprintf(path, sizeof(path), "%.*s",
		 (int)(sk->addr_len - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
	e = img_records(c->im, LX_SEC_CORE, c->task, sizeof(*core), 64, (void **)&core, &n);
	if (e)
		return err_ctx(e, "image: task %u: core", c->task);
	if (n != 1) {
		free(core);
		return err_set(-EINVAL, "image: task %u: %zu core records", c->task, n);
	}
	if (chmod(path, 0777 & ~core->umask) < 0)
		e = err_sys(-errno, "pid %u fd %u: chmod the socket file %s", core->pid, sk->fd,
			    path);
	else if (geteuid() == 0 && (core->uid[3] || core->gid[3]) &&
		 lchown(path, core->uid[3], core->gid[3]) < 0)
		e = err_sys(-errno, "pid %u fd %u: chown the socket file %s", core->pid, sk->fd,
			    path);
	free(core);
	return e;
}

int socket_open_tree(struct fd_restore *c, size_t i)
{
	const struct lx_socket *sk = fr_rec(c, LX_SEC_SOCKETS, sizeof(*sk), c->fds[i].fd);
	uint32_t id = c->fds[i].share_id;
	struct tree_sock *ts = NULL;
	int fd;

	if (!sk)
		return err_set(-EINVAL, "%s", c->errbuf);
	if (sk->state != LX_SK_TREE_PAIR) {
		/* one socket held by several processes (a listener
		 * inherited by forked workers): made here, handed out */
		if (sk->family == AF_UNIX && sk->addr_len && !usable_name(sk) &&
		    sk->state != LX_SK_UNBOUND)
			return err_set(-EOPNOTSUPP, "pid %u fd %u: a unix socket bound to a relative"
				       " name shared between processes is not supported",
				       task_pid(c->im, c->task), sk->fd);
		fd = socket_open(c, i);
		if (fd < 0)
			return err_set(fd, "%s", c->errbuf);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (sk->family == AF_UNIX && sk->state != LX_SK_UNBOUND) {
			int e = own_like_task(c, sk);

			if (e) {
				close(fd);
				return e;
			}
		}
		if (sk->family == AF_UNIX && sk->state == LX_SK_LISTEN && sk->addr_len &&
		    sk->addr_len <= sizeof(sk->addr)) {
			struct tree_listener *nl = realloc(listeners,
							   (nlisteners + 1) * sizeof(*nl));

			if (!nl) {
				close(fd);
				return -ENOMEM;
			}
			listeners = nl;
			nl[nlisteners].fd = fd;
			nl[nlisteners].addr_len = sk->addr_len;
			memcpy(nl[nlisteners].addr, sk->addr, sk->addr_len);
			nlisteners++;
		}
		return fd;
	}
	for (size_t k = 0; k < nsocks && !ts; k++)
		if (socks[k].id[0] == id || socks[k].id[1] == id)
			ts = &socks[k];
	if (!ts) {
		struct tree_sock *ns = realloc(socks, (nsocks + 1) * sizeof(*ns));
		int e;

		if (!ns)
			return -ENOMEM;
		socks = ns;
		ts = &socks[nsocks];
		e = make_pair(c, i, sk, ts);
		if (e)
			return e;
		nsocks++;
	}
	for (int k = 0; k < 2; k++)
		if (ts->id[k] == id && ts->fd[k] >= 0) {
			fd = ts->fd[k];
			ts->fd[k] = -1;
			return fd;
		}
	return err_set(-EINVAL, "image: task %u fd %u: socket end %u opened twice", c->task,
		       sk->fd, id);
}

void socktree_done(void)
{
	for (size_t k = 0; k < nsocks; k++)
		for (int j = 0; j < 2; j++)
			if (socks[k].fd[j] >= 0)
				close(socks[k].fd[j]);
	free(socks);
	socks = NULL;
	nsocks = 0;
	free(listeners);	/* their fds are the shared descriptions' */
	listeners = NULL;
	nlisteners = 0;
}
