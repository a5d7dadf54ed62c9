/* Sockets. Unix sockets: pairs whose two ends are both in the process
 * (socketpair(), or a connection the process made to itself) are restored
 * as a socketpair with the bytes queued in each direction, in order, and
 * datagram boundaries kept, and the files in flight (SCM_RIGHTS) on the
 * messages that carried them (LX_SEC_SCM_RIGHTS: the process's own open
 * files found with kcmp, or regular files, directories and ends of its
 * pipes reopened alone; anything else is refused); listening and bound sockets are bound again
 * to their name. TCP: listening sockets are recreated on the same address
 * and port, unconnected ones as they were; UDP: bound and connected
 * sockets with nothing queued; established TCP connections with
 * --tcp-established (tcp.c). Everything else (a unix socket connected
 * outside the process, netlink, packet...) is refused.
 *
 * The dump looks at a pidfd_getfd() duplicate, which shares the target's
 * socket: only getsockopt/getsockname and MSG_PEEK, with SO_PEEK_OFF to
 * walk the queue and put back to its old value after. Unix socket state
 * not visible from a socket (peer, backlog, shutdown) comes from
 * NETLINK_SOCK_DIAG. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"
#include "tcp.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif
#define TCP_ESTABLISHED_ 1
#define TCP_CLOSE_ 7
#define TCP_LISTEN_ 10

#define PEEK_BUF (256u << 10)	/* above the largest unix datagram */

struct sk_peer {
	uint32_t fd;
	uint32_t reserved;
	uint64_t peer_ino;
};

struct unix_info {
	int type, state, shutdown;
	uint64_t peer;
	uint32_t rqueue, wqueue;
	uint64_t vfs_ino, vfs_dev;
	int have_vfs;
	struct sockaddr_un name;
	socklen_t name_len;	/* 0: unnamed */
};

/* NETLINK_SOCK_DIAG for one unix socket inode */
static int unix_diag(pid_t pid, int fd, uint64_t ino, struct unix_info *u)
{
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req r;
	} req;
	union {
		struct nlmsghdr nh;
		uint8_t b[8192];
	} buf;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), e = 0;
	ssize_t n;

	memset(u, 0, sizeof(*u));
	if (s < 0)
		return err_sys(-errno, "pid %d fd %d: sock_diag socket", pid, fd);
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = (uint32_t)ino;
	req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
			   UDIAG_SHOW_RQLEN;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0) {
		e = err_sys(-errno, "pid %d fd %d: sock_diag request", pid, fd);
		goto out;
	}
	n = recv(s, &buf, sizeof(buf), 0);
	if (n < (ssize_t)sizeof(struct nlmsghdr) || !NLMSG_OK(&buf.nh, (size_t)n)) {
		e = err_set(-EIO, "pid %d fd %d: sock_diag: short answer", pid, fd);
		goto out;
	}
	if (buf.nh.nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *ne = NLMSG_DATA(&buf.nh);

		/* ENOENT for every socket: the kernel's unix_diag module is not
		 * loaded (distribution kernels build it as a module) */
		if (ne->error == -ENOENT)
			e = err_set(-ENOENT, "pid %d fd %d: the kernel cannot describe unix socket"
				    " %llu (load the unix_diag module: modprobe unix_diag)", pid, fd,
				    (unsigned long long)ino);
		else
			e = err_sys(ne->error ? ne->error : -EIO, "pid %d fd %d: sock_diag of unix"
				    " socket %llu", pid, fd, (unsigned long long)ino);
		goto out;
	} else {
		struct unix_diag_msg *m = NLMSG_DATA(&buf.nh);
		int len = (int)buf.nh.nlmsg_len - NLMSG_LENGTH(sizeof(*m));
		struct rtattr_ {
			unsigned short rta_len, rta_type;
		} *a = (void *)(m + 1);

		u->type = m->udiag_type;
		u->state = m->udiag_state;
		while (len >= (int)sizeof(*a) && a->rta_len >= sizeof(*a) && a->rta_len <= len) {
			void *p = a + 1;
			size_t pl = a->rta_len - sizeof(*a);

			switch (a->rta_type) {
			case UNIX_DIAG_NAME:
				if (pl && pl < sizeof(u->name.sun_path)) {
					u->name.sun_family = AF_UNIX;
					memcpy(u->name.sun_path, p, pl);
					u->name_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
				}
				break;
			case UNIX_DIAG_VFS: {
				struct unix_diag_vfs *v = p;

				u->vfs_ino = v->udiag_vfs_ino;
				u->vfs_dev = v->udiag_vfs_dev;
				u->have_vfs = 1;
				break;
			}
			case UNIX_DIAG_PEER:
				u->peer = *(uint32_t *)p;
				break;
			case UNIX_DIAG_RQLEN: {
				struct unix_diag_rqlen *q = p;

				u->rqueue = q->udiag_rqueue;
				u->wqueue = q->udiag_wqueue;
				break;
			}
			case UNIX_DIAG_SHUTDOWN:
				u->shutdown = *(uint8_t *)p;
				break;
			}
			len -= (a->rta_len + 3) & ~3;
			a = (void *)((uint8_t *)a + ((a->rta_len + 3) & ~3));
		}
	}
out:
	close(s);
	return e;
}

static int getopt_int(int s, int level, int opt)
{
	int v = 0;
	socklen_t l = sizeof(v);

	if (getsockopt(s, level, opt, &v, &l) < 0)
		return 0;
	return v;
}

static const char *family_name(int f)
{
	switch (f) {
	case AF_NETLINK: return "a netlink socket";
	case AF_PACKET: return "a packet socket";
	case AF_INET: return "an IPv4 socket";
	case AF_INET6: return "an IPv6 socket";
	case AF_UNIX: return "a unix socket";
	case AF_VSOCK: return "a vsock socket";
	case AF_ALG: return "an AF_ALG socket";
	}
	return "a socket of this family";
}

/* "127.0.0.1:8080" */
static void addr_str(const void *sa, char *out, size_t len)
{
	const struct sockaddr *s = sa;
	char a[INET6_ADDRSTRLEN] = "?";

	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *in = sa;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(in->sin_port));
	} else if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in = sa;

		inet_ntop(AF_INET6, &in->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(in->sin6_port));
	} else {
		snprintf(out, len, "?");
	}
}

int unix_peer_of(pid_t pid, int fd, uint64_t ino, uint64_t *peer)
{
	struct unix_info u;
	int e = unix_diag(pid, fd, ino, &u);

	*peer = e ? 0 : u.peer;
	return e;
}

int socket_is_outside(struct fd_dump *d, const struct lx_fd *r)
{
	struct unix_info u;
	char p[64];
	const struct fd_share *sh = dump_share(d->t, (int)r->fd);
	int dfd, fam;

	if (sh && sh->tree_sock)
		return 0;	/* its peer is in another process of the tree */
	dfd = fd_dup(d, (int)r->fd);
	if (dfd < 0) {
		err_clear();
		return 1;
	}
	fam = getopt_int(dfd, SOL_SOCKET, SO_DOMAIN);
	close(dfd);
	if (fam != AF_UNIX || unix_diag(d->pid, (int)r->fd, r->ino, &u) || !u.peer) {
		err_clear();
		return 1;
	}
	for (size_t j = 0; j < d->n; j++) {
		struct stat st;

		snprintf(p, sizeof(p), "/proc/%d/fd/%u", d->pid, d->recs[j].fd);
		if (stat(p, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == u.peer)
			return 0;
	}
	return 1;
}

/* A file in flight, duplicated into cryo by the peek: the task's own open
 * file description (kcmp), or one cryo can reopen alone. */
static int scm_classify(struct fd_dump *d, const struct lx_fd *r, int f, struct lx_scm_fd *s)
{
	char proc[64], link[LX_CKPT_PATH_MAX];
	struct stat st, pst;
	ssize_t ln;
	int fl = fcntl(f, F_GETFL);

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f);
	ln = readlink(proc, link, sizeof(link) - 1);
	link[ln > 0 ? ln : 0] = 0;
	if (fstat(f, &st) < 0)
		return err_sys(-errno, "pid %d fd %u: a file in flight: fstat", d->pid, r->fd);
	s->flags = fl < 0 ? 0 : (uint32_t)fl;
	for (size_t i = 0; i < d->n; i++)
		if (syscall(SYS_kcmp, getpid(), d->pid, 0 /* KCMP_FILE */, f, d->recs[i].fd) == 0) {
			s->kind = LX_SCM_DUP;
			s->ref_fd = d->recs[i].fd;
			return 0;
		}
	if (S_ISFIFO(st.st_mode) && !strncmp(link, "pipe:", 5)) {
		for (size_t i = 0; i < d->n; i++)
			if ((d->recs[i].kind == LX_FD_PIPE || d->recs[i].kind == LX_FD_FIFO) &&
			    d->recs[i].ino == st.st_ino && d->recs[i].dev == st.st_dev) {
				s->kind = LX_SCM_PIPE;
				s->ref_fd = d->recs[i].fd;
				return 0;
			}
		return err_set(-EOPNOTSUPP, "pid %d fd %u: a pipe end in flight (SCM_RIGHTS) on this"
			       " unix socket, of a pipe the process holds no other end of, is not"
			       " supported", d->pid, r->fd);
	}
	if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && link[0] == '/' &&
	    stat(link, &pst) == 0 && pst.st_ino == st.st_ino && pst.st_dev == st.st_dev) {
		s->kind = LX_SCM_FILE;
		s->dev = st.st_dev;
		s->ino = st.st_ino;
		s->pos = S_ISREG(st.st_mode) ? (uint64_t)lseek(f, 0, SEEK_CUR) : 0;
		s->path_off = img_str(d->t->w, d->t->index, link);
		return 0;
	}
	return err_set(-EOPNOTSUPP, "pid %d fd %u: a file in flight (SCM_RIGHTS) on this unix"
		       " socket, %s, is not supported (only files the process holds, regular"
		       " files and directories, and ends of pipes it holds)", d->pid, r->fd,
		       link[0] ? link : "?");
}

/* The bytes queued for reading on the socket, without consuming them:
 * MSG_PEEK from SO_PEEK_OFF 0 onwards, then the old offset back. Files in
 * flight come with the peek as duplicates: each is described (scm_classify)
 * and closed. A stream read stops after a message that carries files but
 * glues the messages before it that carry none, and a peek cannot tell
 * where they end (even at an offset, it walks on to the next files): the
 * files are requeued with every byte that one read returns, so a receiver
 * reading less than that gets them with the earlier bytes. */
int socket_peek_queue(struct fd_dump *d, const struct lx_fd *r, int s, int type,
		      struct lx_socket *sk)
{
	struct recbuf q = { 0 };
	uint8_t *buf = malloc(PEEK_BUF);
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int) * 253)];
	} cm;
	int old = getopt_int(s, SOL_SOCKET, SO_PEEK_OFF), zero = 0, e = 0;
	socklen_t ol = sizeof(old);

	if (!buf)
		return -ENOMEM;
	if (getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &old, &ol) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		free(buf);
		return err_sys(-errno, "pid %d fd %u: SO_PEEK_OFF", d->pid, r->fd);
	}
	for (long k = 0; k < (1l << 22) && !e; k++) {
		struct iovec iov = { buf, PEEK_BUF };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = &cm, .msg_controllen = sizeof(cm) };
		ssize_t n = recvmsg(s, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		uint64_t base = q.len;
		int nfds = 0;

		if (n < 0) {
			if (errno != EAGAIN)
				e = err_sys(-errno, "pid %d fd %u: peek at the queued data", d->pid,
					    r->fd);
			break;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int *fds;
			size_t nf;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			fds = (int *)CMSG_DATA(c);
			nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t f = 0; f < nf; f++) {
				struct lx_scm_fd rec;

				memset(&rec, 0, sizeof(rec));
				rec.fd = r->fd;
				rec.data_at = base;
				if (!e)
					e = scm_classify(d, r, fds[f], &rec);
				if (!e)
					e = recbuf_add(&d->sec[LX_SEC_SCM_RIGHTS], &rec, sizeof(rec));
				close(fds[f]);
				nfds++;
			}
		}
		if (!e && (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			e = err_set(-EOPNOTSUPP, "pid %d fd %u: a queued message is larger than %u"
				    " bytes", d->pid, r->fd, PEEK_BUF);
		if (e)
			break;
		if (type == SOCK_STREAM) {
			if (n == 0)	/* end of stream: the peer shut down */
				break;
			if (nfds) {
				struct lx_scm_fd *all = (struct lx_scm_fd *)d->sec[LX_SEC_SCM_RIGHTS].p;
				size_t na = d->sec[LX_SEC_SCM_RIGHTS].len / sizeof(*all);

				for (size_t f = na - (size_t)nfds; f < na; f++)
					all[f].data_len = (uint64_t)n;
			}
			if (!e)
				e = recbuf_add(&q, buf, (size_t)n);
		} else {
			uint32_t l = (uint32_t)n;

			e = recbuf_add(&q, &l, sizeof(l));
			if (!e)
				e = recbuf_add(&q, buf, (size_t)n);
		}
	}
	if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && !e)
		e = err_sys(-errno, "pid %d fd %u: put SO_PEEK_OFF back", d->pid, r->fd);
	if (!e && q.len)
		e = fd_data(d, q.p, q.len, &sk->data_off);
	if (!e)
		sk->data_len = q.len;
	free(q.p);
	free(buf);
	return e;
}

/* A bound unix name must still lead to the socket's own file, so that the
 * restore can tell it from a file someone else put there. */
static int check_unix_name(struct fd_dump *d, const struct lx_fd *r, const struct unix_info *u)
{
	char path[sizeof(u->name.sun_path) + 64];
	struct stat st;

	if (!u->name_len || u->name.sun_path[0] == 0)
		return 0;	/* unnamed or abstract */
	if (u->name.sun_path[0] == '/')
		snprintf(path, sizeof(path), "%s", u->name.sun_path);
	else
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", d->pid, u->name.sun_path);
	if (stat(path, &st) < 0 || !u->have_vfs || st.st_ino != u->vfs_ino)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: unix socket bound to %s, whose file"
			       " was removed or replaced (relative to the working directory?):"
			       " not supported", d->pid, r->fd, u->name.sun_path);
	return 0;
}

static int dump_unix(struct fd_dump *d, struct lx_fd *r, int s, struct lx_socket *sk)
{
	struct unix_info u;
	int e = unix_diag(d->pid, (int)r->fd, r->ino, &u), queued = 0;

	if (e)
		return e;
	sk->shutdown = (uint32_t)u.shutdown & 3;
	sk->vfs_ino = u.vfs_ino;
	sk->vfs_dev = u.vfs_dev;
	if (u.name_len) {
		memcpy(sk->addr, &u.name, u.name_len);
		sk->addr_len = u.name_len;
	}
	if (getopt_int(s, SOL_SOCKET, SO_PASSCRED))
		sk->opts |= LX_SKO_PASSCRED;
	if (u.state == TCP_LISTEN_) {
		if (u.rqueue)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: listening unix socket with %u"
				       " connection(s) not yet accepted: not supported", d->pid,
				       r->fd, u.rqueue);
		sk->state = LX_SK_LISTEN;
		sk->backlog = u.wqueue;
		return check_unix_name(d, r, &u);
	}
	if (u.peer && dump_share(d->t, (int)r->fd) && dump_share(d->t, (int)r->fd)->tree_sock)
		return socktree_dump(d, r, s, sk, u.peer);
	if (u.peer) {
		struct sk_peer sp = { .fd = r->fd, .peer_ino = u.peer };

		sk->state = LX_SK_PAIR;
		return recbuf_add(&d->sk_peers, &sp, sizeof(sp));
	}
	if (u.state == TCP_ESTABLISHED_ && u.type != SOCK_DGRAM)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: unix socket whose peer is gone (closed"
			       " by the other side): not supported", d->pid, r->fd);
	if (ioctl(s, FIONREAD, &queued) == 0 && queued)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: unconnected unix socket with %d bytes"
			       " queued (their senders cannot be restored): not supported", d->pid,
			       r->fd, queued);
	sk->state = u.name_len ? LX_SK_BOUND : LX_SK_UNBOUND;
	return check_unix_name(d, r, &u);
}

static int dump_inet(struct fd_dump *d, struct lx_fd *r, int s, struct lx_socket *sk)
{
	struct sockaddr_storage a, p;
	socklen_t al = sizeof(a), pl = sizeof(p);
	char as[80], ps[80];
	int queued = 0;

	if (getsockname(s, (struct sockaddr *)&a, &al) < 0)
		return err_sys(-errno, "pid %d fd %u: getsockname", d->pid, r->fd);
	memcpy(sk->addr, &a, al);
	sk->addr_len = al;
	if (getopt_int(s, SOL_SOCKET, SO_REUSEADDR))
		sk->opts |= LX_SKO_REUSEADDR;
	if (getopt_int(s, SOL_SOCKET, SO_REUSEPORT))
		sk->opts |= LX_SKO_REUSEPORT;
	if (getopt_int(s, SOL_SOCKET, SO_KEEPALIVE))
		sk->opts |= LX_SKO_KEEPALIVE;
	if (sk->family == AF_INET6 && getopt_int(s, IPPROTO_IPV6, IPV6_V6ONLY))
		sk->opts |= LX_SKO_V6ONLY;
	addr_str(&a, as, sizeof(as));
	/* port 0 after getsockname: never bound */
	sk->state = ((struct sockaddr_in *)&a)->sin_port ? LX_SK_BOUND : LX_SK_UNBOUND;
	if (sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP) {
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);

		if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
			return err_sys(-errno, "pid %d fd %u: TCP_INFO", d->pid, r->fd);
		if (getopt_int(s, IPPROTO_TCP, TCP_NODELAY))
			sk->opts |= LX_SKO_NODELAY;
		if (ti.tcpi_state == TCP_LISTEN_) {
			/* for listeners, tcp_info holds the accept queue */
			if (ti.tcpi_unacked)
				return err_set(-EOPNOTSUPP, "pid %d fd %u: TCP listening socket %s with"
					       " %u connection(s) not yet accepted: not supported",
					       d->pid, r->fd, as, ti.tcpi_unacked);
			sk->state = LX_SK_LISTEN;
			sk->backlog = ti.tcpi_sacked;
			return 0;
		}
		if (ti.tcpi_state != TCP_CLOSE_) {
			if (getpeername(s, (struct sockaddr *)&p, &pl) == 0)
				addr_str(&p, ps, sizeof(ps));
			else
				snprintf(ps, sizeof(ps), "?");
			/* tcp.c: with --tcp-established, else its refusal */
			return tcp_dump(d, r, s, sk, as, ps);
		}
		return 0;
	}
	if (sk->type != SOCK_DGRAM || sk->protocol != IPPROTO_UDP)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: %s of type %d protocol %d is not"
			       " supported", d->pid, r->fd, family_name(sk->family), sk->type,
			       sk->protocol);
	if (ioctl(s, FIONREAD, &queued) == 0 && queued)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: UDP socket %s with datagrams queued:"
			       " not supported", d->pid, r->fd, as);
	if (getpeername(s, (struct sockaddr *)&p, &pl) == 0) {
		memcpy(sk->peer, &p, pl);
		sk->peer_len = pl;
		sk->state = LX_SK_CONNECTED;
	}
	return 0;
}

int socket_dump(struct fd_dump *d, struct lx_fd *r, const char *link)
{
	struct lx_socket sk;
	int s = fd_dup(d, (int)r->fd), e;

	(void)link;
	if (s < 0)
		return s;
	memset(&sk, 0, sizeof(sk));
	sk.fd = r->fd;
	sk.family = (uint32_t)getopt_int(s, SOL_SOCKET, SO_DOMAIN);
	sk.type = (uint32_t)getopt_int(s, SOL_SOCKET, SO_TYPE);
	sk.protocol = (uint32_t)getopt_int(s, SOL_SOCKET, SO_PROTOCOL);
	sk.sndbuf = (uint32_t)getopt_int(s, SOL_SOCKET, SO_SNDBUF);
	sk.rcvbuf = (uint32_t)getopt_int(s, SOL_SOCKET, SO_RCVBUF);
	if (sk.family == AF_UNIX && (sk.type == SOCK_STREAM || sk.type == SOCK_DGRAM ||
				     sk.type == SOCK_SEQPACKET))
		e = dump_unix(d, r, s, &sk);
	else if (sk.family == AF_INET || sk.family == AF_INET6)
		e = dump_inet(d, r, s, &sk);
	else
		e = err_set(-EOPNOTSUPP, "pid %d fd %u: %s is not supported", d->pid, r->fd,
			    family_name((int)sk.family));
	close(s);
	r->kind = LX_FD_SOCKET;
	if (!e)
		e = recbuf_add(&d->sec[LX_SEC_SOCKETS], &sk, sizeof(sk));
	return e;
}

static struct lx_socket *sk_of(struct fd_dump *d, uint32_t fd)
{
	struct lx_socket *sk = (struct lx_socket *)d->sec[LX_SEC_SOCKETS].p;
	size_t n = d->sec[LX_SEC_SOCKETS].len / sizeof(*sk);

	for (size_t i = 0; i < n; i++)
		if (sk[i].fd == fd)
			return &sk[i];
	return NULL;
}

/* Pair every connected unix socket with its peer in the process, and copy
 * what is queued on each end. */
int sockets_dump_finish(struct fd_dump *d)
{
	struct sk_peer *sp = (struct sk_peer *)d->sk_peers.p;
	size_t n = d->sk_peers.len / sizeof(*sp);
	int e = 0;

	for (size_t i = 0; i < n && !e; i++) {
		struct lx_socket *sk = sk_of(d, sp[i].fd), *pk = NULL;
		struct lx_fd *r = fd_rec(d, (int)sp[i].fd);
		int s;

		for (size_t j = 0; j < n && !pk; j++) {
			struct lx_fd *q = fd_rec(d, (int)sp[j].fd);

			/* mutual: a datagram socket connected to a named one is not
			 * a pair, its peer may be connected elsewhere */
			if (q && q->ino == sp[i].peer_ino && sp[j].peer_ino == r->ino)
				pk = sk_of(d, sp[j].fd);
		}
		if (!sk || !pk) {
			/* name who holds the other end (a leak, or another
			 * process of the tree), looked for only now */
			pid_t other = r ? proc_fd_holder(r->dev, sp[i].peer_ino, d->pid) : 0;

			if (other && socktree_holds(sp[i].peer_ino))
				return err_set(-EOPNOTSUPP, "pid %d fd %u: a unix %ssocket connected to"
					       " the named socket of pid %d (another process of the"
					       " tree), which is not connected back, is not supported",
					       d->pid, sp[i].fd, sk && sk->type == SOCK_DGRAM ?
					       "datagram " : "", other);
			if (sk && r && (d->t->allow_leak & LX_LEAK_SOCKET)) {
				size_t had = d->sec[LX_SEC_SCM_RIGHTS].len;

				warn("pid %d fd %u: a unix socket connected %s: restored with its"
				     " peer closed (--allow-leak=socket)", d->pid, sk->fd,
				     other ? "outside the tree" : "to a closed socket");
				sk->state = LX_SK_PEER_GONE;
				s = fd_dup(d, (int)sk->fd);
				if (s < 0)
					return s;
				e = socket_peek_queue(d, r, s, (int)sk->type, sk);
				close(s);
				if (!e && d->sec[LX_SEC_SCM_RIGHTS].len != had)
					e = err_set(-EOPNOTSUPP, "pid %d fd %u: files in flight (SCM_RIGHTS)"
						    " on a unix socket connected outside the tree are not"
						    " supported, even with --allow-leak=socket", d->pid,
						    sk->fd);
				continue;
			}
			if (other)
				return err_set(-EOPNOTSUPP, "pid %d fd %u: a unix socket connected to"
					       " a socket held by pid %d outside the tree is not"
					       " supported: a restore could not reconnect it"
					       " (--allow-leak=socket restores it with its peer"
					       " closed)", d->pid, sp[i].fd, other);
			return err_set(-EOPNOTSUPP, "pid %d fd %u: a unix socket connected to a"
				       " socket outside the process is not supported", d->pid,
				       sp[i].fd);
		}
		if (sk->addr_len || pk->addr_len)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: a named unix socket connected to"
				       " fd %u of the same process is not supported", d->pid,
				       sk->fd, pk->fd);
		sk->peer_fd = pk->fd;
		s = fd_dup(d, (int)sk->fd);
		if (s < 0)
			return s;
		e = socket_peek_queue(d, r, s, (int)sk->type, sk);
		close(s);
	}
	return e;
}

int sockets_pipe_in_flight(struct fd_dump *d, uint64_t ino, int want_write)
{
	const struct lx_scm_fd *s = (const struct lx_scm_fd *)d->sec[LX_SEC_SCM_RIGHTS].p;
	size_t n = d->sec[LX_SEC_SCM_RIGHTS].len / sizeof(*s);

	for (size_t i = 0; i < n; i++) {
		const struct lx_fd *ref = fd_rec(d, (int)s[i].ref_fd);
		unsigned acc = s[i].flags & O_ACCMODE;

		if (s[i].kind == LX_SCM_PIPE && ref && ref->ino == ino &&
		    (want_write ? acc != O_RDONLY : acc != O_WRONLY))
			return 1;
	}
	return 0;
}

/* ---- restore ---- */

int socket_set_opts(struct fd_restore *c, const struct lx_socket *sk, int s)
{
	int one = 1;

#define SETOPT(flag, level, opt)						\
	if ((sk->opts & (flag)) && setsockopt(s, level, opt, &one, sizeof(one)) < 0)	\
		return fr_err(c, -errno, "fd %u: setsockopt " #opt ": %s", sk->fd,	\
			      strerror(errno));
	SETOPT(LX_SKO_REUSEADDR, SOL_SOCKET, SO_REUSEADDR)
	SETOPT(LX_SKO_REUSEPORT, SOL_SOCKET, SO_REUSEPORT)
	SETOPT(LX_SKO_KEEPALIVE, SOL_SOCKET, SO_KEEPALIVE)
	SETOPT(LX_SKO_PASSCRED, SOL_SOCKET, SO_PASSCRED)
	SETOPT(LX_SKO_NODELAY, IPPROTO_TCP, TCP_NODELAY)
#undef SETOPT
	if (sk->family == AF_INET6) {
		int v6 = !!(sk->opts & LX_SKO_V6ONLY);

		if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6)) < 0)
			return fr_err(c, -errno, "fd %u: IPV6_V6ONLY: %s", sk->fd, strerror(errno));
	}
	/* buffer sizes only when they were set: setting one pins it (TCP
	 * stops autotuning it) */
	if (sk->sndbuf && (uint32_t)getopt_int(s, SOL_SOCKET, SO_SNDBUF) != sk->sndbuf) {
		int v = (int)sk->sndbuf / 2;

		setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	if (sk->rcvbuf && (uint32_t)getopt_int(s, SOL_SOCKET, SO_RCVBUF) != sk->rcvbuf) {
		int v = (int)sk->rcvbuf / 2;

		setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	}
	return 0;
}

/* Bind to the recorded name. A unix socket file left at the path by the
 * dumped process itself (same inode) is removed first; any other file
 * there is an error. */
static int bind_name(struct fd_restore *c, const struct lx_socket *sk, int s)
{
	const struct sockaddr_un *un = (const void *)sk->addr;
	int tmp_reuse = 0, zero = 0, one = 1;

	if (sk->addr_len > sizeof(sk->addr))
		return fr_err(c, -EINVAL, "fd %u: bad socket address length", sk->fd);
	if (sk->family == AF_UNIX && sk->addr_len > offsetof(struct sockaddr_un, sun_path) &&
	    un->sun_path[0]) {
		char path[sizeof(un->sun_path) + 1];
		struct stat st;

		snprintf(path, sizeof(path), "%.*s",
			 (int)(sk->addr_len - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode) || st.st_ino != sk->vfs_ino)
				return fr_err(c, -EADDRINUSE, "fd %u: unix socket path %s is now"
					      " another file", sk->fd, path);
			if (unlink(path) < 0)
				return fr_err(c, -errno, "fd %u: remove the old socket file %s: %s",
					      sk->fd, path, strerror(errno));
		}
	}
	/* a listener binds its port past connections of the old one still
	 * in TIME_WAIT, as the original could with SO_REUSEADDR */
	if ((sk->family == AF_INET || sk->family == AF_INET6) && sk->state == LX_SK_LISTEN &&
	    !(sk->opts & LX_SKO_REUSEADDR)) {
		tmp_reuse = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(s, (const struct sockaddr *)sk->addr, sk->addr_len) < 0) {
		char as[80];

		if (sk->family == AF_UNIX)
			snprintf(as, sizeof(as), "%s%.60s", un->sun_path[0] ? "" : "@",
				 un->sun_path + !un->sun_path[0]);
		else
			addr_str(sk->addr, as, sizeof(as));
		return fr_err(c, -errno, "fd %u: bind to %s: %s", sk->fd, as, strerror(errno));
	}
	if (tmp_reuse)
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
	return 0;
}

/* The files in flight queued for socket fd, NULL if none */
static const struct lx_scm_fd *scm_of(struct fd_restore *c, uint32_t fd, size_t *n)
{
	size_t all;
	const struct lx_scm_fd *r = fr_recs(c, LX_SEC_SCM_RIGHTS, sizeof(*r), &all);
	size_t first = all;

	*n = 0;
	for (size_t i = 0; i < all; i++)
		if (r[i].fd == fd) {
			if (first == all)
				first = i;
			++*n;
		}
	return *n ? r + first : NULL;
}

/* A file in flight, recreated in the new process (every fd at its number) */
static int scm_open(struct fd_restore *c, const struct lx_scm_fd *f, int *opened)
{
	char p[64];
	int fd;

	*opened = 0;
	switch (f->kind) {
	case LX_SCM_DUP:
		if (fcntl((int)f->ref_fd, F_GETFD) < 0)
			return fr_err(c, -EBADF, "fd %u: a file in flight is fd %u, which is not open",
				      f->fd, f->ref_fd);
		return (int)f->ref_fd;
	case LX_SCM_PIPE:
		/* a new open of the same pipe: never wait for the other end */
		snprintf(p, sizeof(p), "/proc/self/fd/%u", f->ref_fd);
		fd = open(p, (int)(f->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 && !(f->flags & O_NONBLOCK))
			fcntl(fd, F_SETFL, (int)(f->flags & ~(unsigned)O_ACCMODE) & ~O_NONBLOCK);
		break;
	case LX_SCM_FILE: {
		const char *path = img_string(c->im, c->task, f->path_off);
		struct stat st;

		if (!path)
			return fr_err(c, -EINVAL, "fd %u: bad path of a file in flight", f->fd);
		fd = open(path, (int)(f->flags & ~(unsigned)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) |
			  O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != f->ino || st.st_dev != f->dev)) {
			close(fd);
			return fr_err(c, -ESTALE, "fd %u: %s, a file in flight, is a different file"
				      " than at dump time", f->fd, path);
		}
		if (fd >= 0 && S_ISREG(st.st_mode) && lseek(fd, (off_t)f->pos, SEEK_SET) < 0) {
			close(fd);
			return fr_err(c, -errno, "fd %u: seek %s: %s", f->fd, path, strerror(errno));
		}
		if (fd < 0)
			return fr_err(c, -errno, "fd %u: open %s, a file in flight: %s", f->fd, path,
				      strerror(errno));
		*opened = 1;
		return fd;
	}
	default:
		return fr_err(c, -EINVAL, "fd %u: unknown kind %u of a file in flight", f->fd, f->kind);
	}
	if (fd < 0)
		return fr_err(c, -errno, "fd %u: reopen the pipe of fd %u for a file in flight: %s",
			      f->fd, f->ref_fd, strerror(errno));
	*opened = 1;
	return fd;
}

/* Send len bytes with the files of records g[0..ng) attached */
static int send_with_files(struct fd_restore *c, const struct lx_socket *to, int from,
			   const uint8_t *p, size_t len, const struct lx_scm_fd *g, size_t ng,
			   ssize_t *sent)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int) * 253)];
	} cm;
	int fds[253], opened[253], e = 0;
	size_t k;
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (ng > 253)
		return fr_err(c, -EINVAL, "fd %u: more than 253 files in one message", to->fd);
	for (k = 0; k < ng && !e; k++) {
		fds[k] = scm_open(c, &g[k], &opened[k]);
		if (fds[k] < 0)
			e = fds[k];
	}
	if (!e) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = &cm;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * ng);
		cm.h.cmsg_level = SOL_SOCKET;
		cm.h.cmsg_type = SCM_RIGHTS;
		cm.h.cmsg_len = CMSG_LEN(sizeof(int) * ng);
		memcpy(CMSG_DATA(&cm.h), fds, sizeof(int) * ng);
		*sent = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (*sent < 0)
			e = fr_err(c, -errno, "fd %u: requeue a message with %zu file(s): %s", to->fd,
				   ng, strerror(errno));
	}
	for (size_t j = 0; j < k; j++)
		if (fds[j] >= 0 && opened[j])
			close(fds[j]);
	return e;
}

/* Send what was queued for `to` through its peer `from`, with the files
 * in flight on the messages that carried them */
static int refill(struct fd_restore *c, const struct lx_socket *to, int from)
{
	const uint8_t *p = fr_data(c, to->data_off, to->data_len);
	uint64_t at = 0;
	size_t ng = 0, gi = 0;
	const struct lx_scm_fd *g = scm_of(c, to->fd, &ng);

	if (!p)
		return fr_err(c, -EINVAL, "fd %u: queued data outside the fddata section", to->fd);
	while (at < to->data_len) {
		size_t len, nf = 0;
		ssize_t k;
		uint64_t msg_at = at;
		int e;

		if (to->type == SOCK_STREAM) {
			uint64_t next = gi < ng ? g[gi].data_at : to->data_len;

			if (next < at || next > to->data_len ||
			    (gi < ng && (g[gi].data_len == 0 || g[gi].data_len > to->data_len - next)))
				return fr_err(c, -EINVAL, "fd %u: bad file-in-flight record", to->fd);
			if (next == at && gi < ng) {
				len = (size_t)g[gi].data_len;
				while (gi + nf < ng && g[gi + nf].data_at == at)
					nf++;
			} else {
				len = (size_t)(next - at);
			}
		} else {
			uint32_t l;

			if (to->data_len - at < 4)
				return fr_err(c, -EINVAL, "fd %u: bad datagram framing", to->fd);
			memcpy(&l, p + at, 4);
			at += 4;
			if (l > to->data_len - at)
				return fr_err(c, -EINVAL, "fd %u: bad datagram framing", to->fd);
			len = l;
			while (gi + nf < ng && g[gi + nf].data_at == msg_at)
				nf++;
		}
		if (nf) {
			e = send_with_files(c, to, from, p + at, len, g + gi, nf, &k);
			if (e)
				return e;
			gi += nf;
		} else {
			k = send(from, p + at, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k < 0)
				return fr_err(c, -errno, "fd %u: requeue %zu bytes: %s (socket buffers"
					      " smaller than at dump?)", to->fd, len, strerror(errno));
		}
		if (to->type != SOCK_STREAM && (size_t)k != len)
			return fr_err(c, -EIO, "fd %u: short datagram", to->fd);
		at += (uint64_t)k;
	}
	if (gi != ng)
		return fr_err(c, -EINVAL, "fd %u: %zu file(s) in flight beyond the queued data",
			      to->fd, ng - gi);
	return 0;
}

int socket_refill(struct fd_restore *c, const struct lx_socket *to, int from)
{
	return refill(c, to, from);
}

int socket_shut(struct fd_restore *c, const struct lx_socket *sk, int s)
{
	static const int how[4] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };

	if (sk->shutdown & 3 && shutdown(s, how[sk->shutdown & 3]) < 0)
		return fr_err(c, -errno, "fd %u: shutdown: %s", sk->fd, strerror(errno));
	return 0;
}

static int open_pair(struct fd_restore *c, size_t i, const struct lx_socket *sk)
{
	const struct lx_socket *pk = fr_rec(c, LX_SEC_SOCKETS, sizeof(*pk), sk->peer_fd);
	long pi = fr_index(c, sk->peer_fd);
	int sv[2], e;
	size_t n;

	if (!pk || pi < 0 || c->fds[pi].kind != LX_FD_SOCKET || c->fds[pi].dup_of ||
	    pk->peer_fd != sk->fd || pk->type != sk->type)
		return fr_err(c, -EINVAL, "fd %u: bad socket pair record", sk->fd);
	if (socketpair(AF_UNIX, (int)sk->type, 0, sv) < 0)
		return fr_err(c, -errno, "fd %u: socketpair: %s", sk->fd, strerror(errno));
	e = socket_set_opts(c, sk, sv[0]);
	if (!e)
		e = socket_set_opts(c, pk, sv[1]);
	/* with files in flight, the queues are refilled once every fd they
	 * may name is at its number (sockets_restore_late) */
	if (!e && !scm_of(c, sk->fd, &n) && !scm_of(c, pk->fd, &n)) {
		e = refill(c, sk, sv[1]);
		if (!e)
			e = refill(c, pk, sv[0]);
		if (!e)
			e = socket_shut(c, sk, sv[0]);
		if (!e)
			e = socket_shut(c, pk, sv[1]);
	}
	if (!e)
		e = fr_stage(c, (size_t)pi, sv[1]);
	else
		close(sv[1]);
	(void)i;
	if (e) {
		close(sv[0]);
		return e;
	}
	return sv[0];
}

/* --allow-leak=socket: the peer outside the tree is gone; the reader
 * gets what was queued, then end of stream */
static int open_orphan(struct fd_restore *c, const struct lx_socket *sk)
{
	int sv[2], e;
	size_t n;

	if (scm_of(c, sk->fd, &n))
		return fr_err(c, -EINVAL, "fd %u: files in flight on a socket without peer", sk->fd);
	if (socketpair(AF_UNIX, (int)sk->type, 0, sv) < 0)
		return fr_err(c, -errno, "fd %u: socketpair: %s", sk->fd, strerror(errno));
	e = socket_set_opts(c, sk, sv[0]);
	if (!e)
		e = refill(c, sk, sv[1]);
	if (!e)
		e = socket_shut(c, sk, sv[0]);
	close(sv[1]);
	if (e) {
		close(sv[0]);
		return e;
	}
	return sv[0];
}

int socket_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const struct lx_socket *sk = fr_rec(c, LX_SEC_SOCKETS, sizeof(*sk), r->fd);
	int s, e = 0;

	if (!sk)
		return -EINVAL;
	if (sk->state == LX_SK_PAIR)
		return open_pair(c, i, sk);
	if (sk->state == LX_SK_TREE_PAIR)	/* socktree.c, in the restorer */
		return fr_err(c, -EINVAL, "fd %u: an end of a socket pair between processes"
			      " without its shared description", r->fd);
	if (sk->state == LX_SK_PEER_GONE)
		return open_orphan(c, sk);
	if (sk->state == LX_SK_TCP_EST)
		return tcp_open(c, sk);
	s = socket((int)sk->family, (int)sk->type, (int)sk->protocol);
	if (s < 0)
		return fr_err(c, -errno, "fd %u: socket: %s", r->fd, strerror(errno));
	e = socket_set_opts(c, sk, s);
	if (!e && sk->state != LX_SK_UNBOUND && sk->addr_len)
		e = bind_name(c, sk, s);
	if (!e && sk->state == LX_SK_LISTEN && listen(s, (int)sk->backlog) < 0)
		e = fr_err(c, -errno, "fd %u: listen: %s", r->fd, strerror(errno));
	if (!e && sk->state == LX_SK_CONNECTED &&
	    (sk->peer_len > sizeof(sk->peer) ||
	     connect(s, (const struct sockaddr *)sk->peer, sk->peer_len) < 0))
		e = fr_err(c, -errno, "fd %u: connect: %s", r->fd, strerror(errno));
	if (!e)
		e = socket_shut(c, sk, s);
	if (e) {
		close(s);
		return e;
	}
	return s;
}

int sockets_restore_late(struct fd_restore *c)
{
	size_t n, ns;
	const struct lx_socket *sk = fr_recs(c, LX_SEC_SOCKETS, sizeof(*sk), &ns);
	int e = 0;

	for (size_t i = 0; i < ns && !e; i++) {
		const struct lx_socket *pk;

		if (sk[i].state != LX_SK_PAIR || sk[i].fd > sk[i].peer_fd ||
		    (!scm_of(c, sk[i].fd, &n) && !scm_of(c, sk[i].peer_fd, &n)))
			continue;
		pk = fr_rec(c, LX_SEC_SOCKETS, sizeof(*pk), sk[i].peer_fd);
		if (!pk)
			return -EINVAL;
		e = refill(c, &sk[i], (int)pk->fd);
		if (!e)
			e = refill(c, pk, (int)sk[i].fd);
		if (!e)
			e = socket_shut(c, &sk[i], (int)sk[i].fd);
		if (!e)
			e = socket_shut(c, pk, (int)pk->fd);
	}
	return e;
}
