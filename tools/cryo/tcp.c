/* Established TCP connections, with the kernel's TCP repair mode
 * (--tcp-established; the design of CRIU's soccr).
 *
 * Dump: the socket (a pidfd_getfd duplicate, which shares the target's
 * socket) goes into repair mode, where the kernel sends nothing for it and
 * lets its state be read: both queues (a MSG_PEEK of each, chosen with
 * TCP_REPAIR_QUEUE), the sequence numbers after them (TCP_QUEUE_SEQ), the
 * options the two ends agreed on (TCP_INFO, TCP_MAXSEG), the windows
 * (TCP_REPAIR_WINDOW) and the timestamp clock (TCP_TIMESTAMP). A tree that
 * keeps running gets its sockets out of repair mode before it runs again
 * (TCP_REPAIR_OFF_NO_WP: not even a window probe, the connection goes on
 * untouched); a tree killed with --kill dies with them still in repair
 * mode, so that their close sends neither FIN nor RST and the peer keeps
 * its end open for the restore.
 *
 * Restore: a new socket in repair mode is bound to the old address (repair
 * mode forces the reuse, past a listener on the same port), given the old
 * sequence numbers and "connected" without a SYN; then the options, the
 * receive queue, the part of the send queue the peer may have seen (as
 * sent: what it has not acknowledged is retransmitted by the timer), the
 * windows and the clock. cryo -r leaves it in repair mode, where it sends
 * nothing, until every process of the tree exists (a peer in the tree must
 * be there to answer, else it would reset the connection): then
 * tcp_restore_finish() ends repair mode without a window probe and sends
 * the never-sent tail of the send queue as the process would have. A
 * failed restore kills the tree with its sockets still in repair mode:
 * the peer sees nothing.
 *
 * ./IMAGE (in place, one process) ends repair mode in tcp_open() itself.
 *
 * Not handled: a connection in another state than established (closing,
 * half-closed, still connecting) is refused; nothing locks the network
 * (unlike CRIU's --tcp-established), so bytes the peer sends after the
 * queues were read are acknowledged by the kernel and lost with the killed
 * process, and bytes it sends before the restore reset it: the peer must
 * wait (a request/response peer does). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "tcp.h"

#ifndef TCP_REPAIR_ON
#define TCP_REPAIR_ON 1
#define TCP_REPAIR_OFF 0
#define TCP_REPAIR_OFF_NO_WP (-1)
#endif
#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif
#define TCP_ESTABLISHED_ 1

static int dump_on;
static int restore_defer;	/* cryo -r: repair mode off once the tree is whole */

/* sockets of the dumped tree in repair mode: cryo's duplicates */
static struct repaired {
	int fd;
	pid_t pid;
	uint32_t tfd;
	int reuse;	/* SO_REUSEADDR, which leaving repair mode clears */
} *repaired;
static size_t nrepaired;

void tcp_dump_enable(int on)
{
	dump_on = on;
}

int tcp_dump_enabled(void)
{
	return dump_on;
}

static int set_int(int s, int level, int opt, int v)
{
	return setsockopt(s, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

static const char *state_name(int st)
{
	static const char *const n[] = {
		[1] = "established", [2] = "SYN sent", [3] = "SYN received",
		[4] = "FIN wait 1", [5] = "FIN wait 2", [6] = "time wait", [7] = "closed",
		[8] = "close wait", [9] = "last ACK", [10] = "listen", [11] = "closing",
	};

	return st > 0 && st < (int)(sizeof(n) / sizeof(n[0])) && n[st] ? n[st] : "unknown";
}

/* The bytes of one queue (repair mode), len of them */
static int peek_queue(struct fd_dump *d, const struct lx_fd *r, int s, int queue, uint32_t len,
		      uint64_t *off)
{
	uint8_t *buf;
	ssize_t n;
	int old = -1, zero = 0, e = 0;
	socklen_t ol = sizeof(old);

	*off = 0;
	if (!len)
		return 0;
	if (set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
		return err_sys(-errno, "pid %d fd %u: TCP_REPAIR_QUEUE", d->pid, r->fd);
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	/* a peek offset the process set (SO_PEEK_OFF) would move the
	 * receive queue's peek, and be moved by it: 0, then back */
	if (queue == TCP_RECV_QUEUE && getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &old, &ol) == 0 &&
	    old >= 0 && setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		e = err_sys(-errno, "pid %d fd %u: SO_PEEK_OFF", d->pid, r->fd);
	if (!e) {
		n = recv(s, buf, len, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0)
			e = err_sys(-errno, "pid %d fd %u: read the TCP %s queue", d->pid, r->fd,
				    queue == TCP_RECV_QUEUE ? "receive" : "send");
		else if ((uint32_t)n != len)
			e = err_set(-EAGAIN, "pid %d fd %u: the TCP %s queue holds %zd bytes, not"
				    " %u", d->pid, r->fd, queue == TCP_RECV_QUEUE ? "receive" : "send",
				    n, len);
	}
	if (old >= 0 && setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && !e)
		e = err_sys(-errno, "pid %d fd %u: put SO_PEEK_OFF back", d->pid, r->fd);
	if (!e)
		e = fd_data(d, buf, len, off);
	free(buf);
	return e;
}

static int queue_seq(int s, int queue, uint32_t *seq)
{
	socklen_t l = sizeof(*seq);

	if (set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue) ||
	    getsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &l) < 0)
		return -errno;
	return 0;
}

/* One consistent reading of the connection (repair mode). The peer may
 * still send while the tree is frozen: the reading is taken again when
 * the receive queue grew under it. */
static int read_state(struct fd_dump *d, const struct lx_fd *r, int s, struct lx_tcp *t)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t l;
	int inq = 0, outq = 0, unsent = 0, mss = 0, e;
	uint32_t rcv2 = 0;

	for (int tries = 0;; tries++) {
		size_t had = d->data.len;

		memset(t, 0, sizeof(*t));
		t->fd = r->fd;
		e = queue_seq(s, TCP_RECV_QUEUE, &t->rcv_seq);
		if (!e)
			e = queue_seq(s, TCP_SEND_QUEUE, &t->snd_seq);
		if (e)
			return err_sys(e, "pid %d fd %u: TCP_QUEUE_SEQ", d->pid, r->fd);
		if (ioctl(s, SIOCINQ, &inq) < 0 || ioctl(s, SIOCOUTQ, &outq) < 0 ||
		    ioctl(s, SIOCOUTQNSD, &unsent) < 0)
			return err_sys(-errno, "pid %d fd %u: TCP queue sizes", d->pid, r->fd);
		if (inq < 0 || outq < 0 || unsent < 0 || unsent > outq)
			return err_set(-EIO, "pid %d fd %u: bad TCP queue sizes", d->pid, r->fd);
		t->rcvq_len = (uint64_t)inq;
		t->sndq_len = (uint64_t)outq;
		t->unsent = (uint32_t)unsent;
		e = peek_queue(d, r, s, TCP_RECV_QUEUE, (uint32_t)inq, &t->rcvq_off);
		if (!e)
			e = peek_queue(d, r, s, TCP_SEND_QUEUE, (uint32_t)outq, &t->sndq_off);
		if (!e)
			e = queue_seq(s, TCP_RECV_QUEUE, &rcv2) ? -errno : 0;
		if (!e && rcv2 == t->rcv_seq)
			break;
		if (e && e != -EAGAIN)
			return e;
		/* bytes arrived meanwhile: drop what was copied, again */
		d->data.len = had;
		if (tries >= 20)
			return err_set(-EAGAIN, "pid %d fd %u: the peer of this TCP connection keeps"
				       " sending; no consistent reading of its queues", d->pid, r->fd);
		err_clear();
		usleep(1000);
	}
	l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return err_sys(-errno, "pid %d fd %u: TCP_INFO", d->pid, r->fd);
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		t->flags |= LX_TCPF_WSCALE;
		t->snd_wscale = ti.tcpi_snd_wscale;
		t->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (ti.tcpi_options & TCPI_OPT_SACK)
		t->flags |= LX_TCPF_SACK;
	if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS)
		t->flags |= LX_TCPF_TIMESTAMPS;
	l = sizeof(mss);
	if (getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, &l) < 0 || mss <= 0)
		return err_sys(mss <= 0 ? -EIO : -errno, "pid %d fd %u: TCP_MAXSEG", d->pid, r->fd);
	t->mss = (uint32_t)mss;
	l = sizeof(t->timestamp);
	if (getsockopt(s, IPPROTO_TCP, TCP_TIMESTAMP, &t->timestamp, &l) < 0)
		return err_sys(-errno, "pid %d fd %u: TCP_TIMESTAMP", d->pid, r->fd);
	l = sizeof(w);
	if (getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0)
		return err_sys(-errno, "pid %d fd %u: TCP_REPAIR_WINDOW", d->pid, r->fd);
	t->snd_wl1 = w.snd_wl1;
	t->snd_wnd = w.snd_wnd;
	t->max_window = w.max_window;
	t->rcv_wnd = w.rcv_wnd;
	t->rcv_wup = w.rcv_wup;
	return 0;
}

int tcp_dump(struct fd_dump *d, const struct lx_fd *r, int s, struct lx_socket *sk,
	     const char *as, const char *ps)
{
	struct sockaddr_storage p;
	socklen_t pl = sizeof(p);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	struct repaired *nr;
	struct lx_tcp t;
	int keep, e, reuse = 0;
	socklen_t rl = sizeof(reuse);

	if (!dump_on)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: an established TCP connection (%s -> %s)"
			       " is not supported without --tcp-established", d->pid, r->fd, as, ps);
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
		return err_sys(-errno, "pid %d fd %u: TCP_INFO", d->pid, r->fd);
	if (ti.tcpi_state != TCP_ESTABLISHED_)
		return err_set(-EOPNOTSUPP, "pid %d fd %u: a TCP connection (%s -> %s) in state"
			       " %s is not supported (only established ones, --tcp-established)",
			       d->pid, r->fd, as, ps, state_name(ti.tcpi_state));
	if (getpeername(s, (struct sockaddr *)&p, &pl) < 0 || pl > sizeof(sk->peer))
		return err_sys(-errno, "pid %d fd %u: getpeername", d->pid, r->fd);
	memcpy(sk->peer, &p, pl);
	sk->peer_len = pl;
	sk->state = LX_SK_TCP_EST;
	if (getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuse, &rl) < 0)
		return err_sys(-errno, "pid %d fd %u: SO_REUSEADDR", d->pid, r->fd);
	if (set_int(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))
		return err_sys(-errno, "pid %d fd %u: TCP repair mode for the connection %s -> %s%s",
			       d->pid, r->fd, as, ps, errno == EPERM ? " (--tcp-established needs"
			       " CAP_NET_ADMIN)" : "");
	/* from here on, tcp_dump_end() takes it out of repair mode */
	keep = fcntl(s, F_DUPFD_CLOEXEC, 3);
	nr = keep < 0 ? NULL : realloc(repaired, (nrepaired + 1) * sizeof(*nr));
	if (!nr) {
		e = keep < 0 ? -errno : -ENOMEM;
		if (keep >= 0)
			close(keep);
		set_int(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
		if (reuse)
			set_int(s, SOL_SOCKET, SO_REUSEADDR, reuse);
		return err_sys(e, "pid %d fd %u: keep the TCP socket", d->pid, r->fd);
	}
	repaired = nr;
	repaired[nrepaired++] = (struct repaired){ .fd = keep, .pid = d->pid, .tfd = r->fd,
						       .reuse = reuse };
	e = read_state(d, r, s, &t);
	if (!e)
		e = recbuf_add(&d->sec[LX_SEC_TCP], &t, sizeof(t));
	return e;
}

void tcp_dump_end(int kill_it)
{
	for (size_t i = 0; i < nrepaired; i++) {
		if (!kill_it && (set_int(repaired[i].fd, IPPROTO_TCP, TCP_REPAIR,
					 TCP_REPAIR_OFF_NO_WP) ||
				 (repaired[i].reuse && set_int(repaired[i].fd, SOL_SOCKET,
							       SO_REUSEADDR, repaired[i].reuse))))
			warn("pid %d fd %u: TCP repair mode off: %s", repaired[i].pid,
			     repaired[i].tfd, strerror(errno));
		close(repaired[i].fd);
	}
	free(repaired);
	repaired = NULL;
	nrepaired = 0;
}

/* ---- restore ---- */

void tcp_restore_defer(int on)
{
	restore_defer = on;
}

/* The tail of the send queue that was never sent, sent now as the process
 * would (out of repair mode: the window and the peer decide when) */
static int send_unsent(int s, const uint8_t *p, uint64_t len, char *why, size_t wlen)
{
	uint64_t at = 0;

	while (at < len) {
		ssize_t k = send(s, p + at, (size_t)(len - at), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k <= 0) {
			snprintf(why, wlen, "queue the %llu unsent bytes (%llu in): %s",
				 (unsigned long long)len, (unsigned long long)at,
				 k < 0 ? strerror(errno) : "no progress");
			return k < 0 ? -errno : -EIO;
		}
		at += (uint64_t)k;
	}
	return 0;
}

/* Bytes into a queue in repair mode: they become the receive queue, or
 * the send queue as sent */
static int fill(struct fd_restore *c, const struct lx_socket *sk, int s, int queue,
		const uint8_t *p, uint64_t len)
{
	uint64_t at = 0;

	if (len && set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
		return fr_err(c, -errno, "fd %u: TCP_REPAIR_QUEUE: %s", sk->fd, strerror(errno));
	while (at < len) {
		size_t chunk = len - at > (64u << 10) ? (64u << 10) : (size_t)(len - at);
		ssize_t k = send(s, p + at, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k <= 0)
			return fr_err(c, k < 0 ? -errno : -EIO, "fd %u: refill the TCP %s queue (%llu"
				      " of %llu bytes in): %s", sk->fd, queue == TCP_RECV_QUEUE ?
				      "receive" : "send", (unsigned long long)at,
				      (unsigned long long)len, k < 0 ? strerror(errno) : "no progress");
		at += (uint64_t)k;
	}
	return 0;
}

static int repair_opts(int s, const struct lx_tcp *t)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n].opt_code = TCPOPT_MAXSEG;
	o[n++].opt_val = t->mss;
	if (t->flags & LX_TCPF_WSCALE) {
		o[n].opt_code = TCPOPT_WINDOW;
		o[n++].opt_val = t->snd_wscale | (t->rcv_wscale << 16);
	}
	if (t->flags & LX_TCPF_SACK) {
		o[n].opt_code = TCPOPT_SACK_PERMITTED;
		o[n++].opt_val = 0;
	}
	if (t->flags & LX_TCPF_TIMESTAMPS) {
		o[n].opt_code = TCPOPT_TIMESTAMP;
		o[n++].opt_val = 0;
	}
	return setsockopt(s, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))) < 0
		? -errno : 0;
}

static void addr_text(const void *sa, char *out, size_t len)
{
	const struct sockaddr *a = sa;
	char h[INET6_ADDRSTRLEN] = "?";

	if (a->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, h, sizeof(h));
		snprintf(out, len, "%s:%u", h, ntohs(((const struct sockaddr_in *)sa)->sin_port));
	} else if (a->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, h, sizeof(h));
		snprintf(out, len, "[%s]:%u", h, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	} else {
		snprintf(out, len, "?");
	}
}

static int addr_ok(const struct lx_socket *sk, const uint8_t *a, uint32_t len)
{
	sa_family_t f;

	if (len > sizeof(sk->addr) || len < sizeof(f))
		return 0;
	memcpy(&f, a, sizeof(f));
	return f == sk->family && len == (sk->family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6));
}

/* Repair mode would let a second socket take the addresses of a connection
 * that is still open here (the dumped process still runs, or was restored
 * already): the kernel's lookup of the connection by its addresses
 * (inet_diag) finds it. A listener on the local port is no obstacle. */
static int still_open(const struct lx_socket *sk)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	union {
		struct nlmsghdr nh;
		uint8_t b[4096];
	} buf;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), found = 0;
	ssize_t n;

	if (s < 0)
		return 0;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = (uint8_t)sk->family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (sk->family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sk->addr, *p = (const void *)sk->peer;

		req.r.id.idiag_sport = a->sin_port;
		req.r.id.idiag_dport = p->sin_port;
		memcpy(req.r.id.idiag_src, &a->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &p->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *a = (const void *)sk->addr, *p = (const void *)sk->peer;

		req.r.id.idiag_sport = a->sin6_port;
		req.r.id.idiag_dport = p->sin6_port;
		memcpy(req.r.id.idiag_src, &a->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &p->sin6_addr, 16);
	}
	if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) == sizeof(req) &&
	    (n = recv(s, &buf, sizeof(buf), 0)) >= (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) &&
	    NLMSG_OK(&buf.nh, (size_t)n) && buf.nh.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
		const struct inet_diag_msg *m = NLMSG_DATA(&buf.nh);

		/* the lookup falls back on a listener of the local port */
		found = m->idiag_state != 10 /* TCP_LISTEN */ && m->idiag_state != 6 /* TIME_WAIT */ &&
			m->idiag_state != 7 /* CLOSE */ && m->id.idiag_dport == req.r.id.idiag_dport &&
			m->id.idiag_sport == req.r.id.idiag_sport;
	}
	close(s);
	return found;
}

int tcp_open(struct fd_restore *c, const struct lx_socket *sk)
{
	const struct lx_tcp *t = fr_rec(c, LX_SEC_TCP, sizeof(*t), sk->fd);
	const uint8_t *rq, *sq;
	char as[80], ps[80];
	int s, e = 0;

	if (!t)
		return -EINVAL;
	if ((sk->family != AF_INET && sk->family != AF_INET6) || sk->type != SOCK_STREAM ||
	    !addr_ok(sk, sk->addr, sk->addr_len) || !addr_ok(sk, sk->peer, sk->peer_len) ||
	    (t->flags & ~LX_TCPF_KNOWN) || t->unsent > t->sndq_len || t->sndq_len > INT32_MAX ||
	    t->rcvq_len > INT32_MAX || t->snd_wscale > 14 || t->rcv_wscale > 14 || !t->mss)
		return fr_err(c, -EINVAL, "fd %u: bad TCP connection record", sk->fd);
	rq = fr_data(c, t->rcvq_off, t->rcvq_len);
	sq = fr_data(c, t->sndq_off, t->sndq_len);
	if (!rq || !sq)
		return fr_err(c, -EINVAL, "fd %u: TCP queue outside the fddata section", sk->fd);
	addr_text(sk->addr, as, sizeof(as));
	addr_text(sk->peer, ps, sizeof(ps));
	if (still_open(sk))
		return fr_err(c, -EADDRINUSE, "fd %u: the TCP connection %s -> %s is still open here"
			      " (is the dumped process still running?)", sk->fd, as, ps);
	s = socket((int)sk->family, SOCK_STREAM, IPPROTO_TCP);
	if (s < 0)
		return fr_err(c, -errno, "fd %u: socket: %s", sk->fd, strerror(errno));
	if (set_int(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)) {
		e = -errno;
		fr_err(c, e, "fd %u: TCP repair mode for the connection %s -> %s: %s%s", sk->fd, as,
		       ps, strerror(-e), e == -EPERM ? " (restoring an established TCP connection"
		       " needs CAP_NET_ADMIN)" : "");
		goto fail;
	}
	e = socket_set_opts(c, sk, s);
	if (e)
		goto fail;
	/* the sequence numbers where each queue starts: refilling them
	 * moves both to where they were */
	if (set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    set_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(t->rcv_seq - (uint32_t)t->rcvq_len)) ||
	    set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(t->snd_seq - (uint32_t)t->sndq_len))) {
		e = fr_err(c, -errno, "fd %u: TCP_QUEUE_SEQ: %s", sk->fd, strerror(errno));
		goto fail;
	}
	if (bind(s, (const struct sockaddr *)sk->addr, sk->addr_len) < 0) {
		e = fr_err(c, -errno, "fd %u: bind the TCP connection to %s: %s", sk->fd, as,
			   strerror(errno));
		goto fail;
	}
	/* in repair mode: no SYN, the socket is established at once */
	if (connect(s, (const struct sockaddr *)sk->peer, sk->peer_len) < 0) {
		e = fr_err(c, -errno, "fd %u: reconnect the TCP connection %s -> %s: %s", sk->fd,
			   as, ps, strerror(errno));
		goto fail;
	}
	/* options before any byte is queued to send: the kernel takes them
	 * only while nothing was sent */
	e = repair_opts(s, t);
	if (e) {
		fr_err(c, e, "fd %u: TCP_REPAIR_OPTIONS: %s", sk->fd, strerror(-e));
		goto fail;
	}
	if (t->flags & LX_TCPF_TIMESTAMPS || t->timestamp) {
		if (set_int(s, IPPROTO_TCP, TCP_TIMESTAMP, (int)t->timestamp)) {
			e = fr_err(c, -errno, "fd %u: TCP_TIMESTAMP: %s", sk->fd, strerror(errno));
			goto fail;
		}
	}
	e = fill(c, sk, s, TCP_RECV_QUEUE, rq, t->rcvq_len);
	if (!e)	/* the part the peer may have seen: as sent, retransmitted if need be */
		e = fill(c, sk, s, TCP_SEND_QUEUE, sq, t->sndq_len - t->unsent);
	if (e)
		goto fail;
	/* after the queues: the window's edge may be past the start of the
	 * receive queue, never past its end */
	{
		struct tcp_repair_window w = {
			.snd_wl1 = t->snd_wl1, .snd_wnd = t->snd_wnd, .max_window = t->max_window,
			.rcv_wnd = t->rcv_wnd, .rcv_wup = t->rcv_wup,
		};

		if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0) {
			e = fr_err(c, -errno, "fd %u: TCP_REPAIR_WINDOW: %s", sk->fd,
				   strerror(errno));
			goto fail;
		}
	}
	if (set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)) {
		e = fr_err(c, -errno, "fd %u: TCP_REPAIR_QUEUE: %s", sk->fd, strerror(errno));
		goto fail;
	}
	/* cryo -r: in repair mode, nothing is sent (no retransmission, no
	 * probe) until every process of the tree, and so every peer in it,
	 * is restored: tcp_restore_finish() */
	if (restore_defer)
		return s;
	if (set_int(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)) {
		e = fr_err(c, -errno, "fd %u: TCP repair mode off: %s", sk->fd, strerror(errno));
		goto fail;
	}
	/* leaving repair mode cleared the socket's own reuse setting */
	if ((sk->opts & LX_SKO_REUSEADDR) && set_int(s, SOL_SOCKET, SO_REUSEADDR, 1)) {
		e = fr_err(c, -errno, "fd %u: SO_REUSEADDR: %s", sk->fd, strerror(errno));
		goto fail;
	}
	if (t->unsent) {
		char why[160];

		e = send_unsent(s, sq + (t->sndq_len - t->unsent), t->unsent, why, sizeof(why));
		if (e) {
			fr_err(c, e, "fd %u: %s", sk->fd, why);
			goto fail;
		}
	}
	return s;
fail:
	/* still in repair mode if it got there: closing sends nothing */
	close(s);
	return e;
}

int tcp_restore_finish(const struct img *im, uint32_t task, pid_t hpid, pid_t pid)
{
	struct lx_socket *sk = NULL;
	struct lx_tcp *tc = NULL;
	size_t nsk = 0, ntc = 0;
	const void *blob = NULL;
	uint64_t blen = 0;
	uint32_t rs;
	int pidfd = -1, e = 0;

	if (img_records(im, LX_SEC_TCP, task, sizeof(*tc), sizeof(*tc), (void **)&tc, &ntc) ||
	    !ntc) {
		err_clear();
		free(tc);
		return 0;
	}
	if (img_records(im, LX_SEC_SOCKETS, task, sizeof(*sk), sizeof(*sk), (void **)&sk, &nsk)) {
		free(tc);
		return err_ctx(-EINVAL, "pid %d: TCP connections without socket records", pid);
	}
	if (img_find(im, LX_SEC_FDDATA, task, &blob, &blen, &rs)) {
		err_clear();
		blob = NULL;
		blen = 0;
	}
	pidfd = (int)syscall(SYS_pidfd_open, hpid, 0);
	if (pidfd < 0)
		e = err_sys(-errno, "pid %d: pidfd_open", pid);
	for (size_t i = 0; i < nsk && !e; i++) {
		const struct lx_tcp *t = NULL;
		char why[160];
		int s;

		if (sk[i].state != LX_SK_TCP_EST)
			continue;
		for (size_t k = 0; k < ntc && !t; k++)
			if (tc[k].fd == sk[i].fd)
				t = &tc[k];
		if (!t || t->unsent > t->sndq_len ||
		    (t->unsent && !lx_range_ok(t->sndq_off, t->sndq_len, blen))) {
			e = err_set(-EINVAL, "pid %d fd %u: bad TCP connection record", pid, sk[i].fd);
			break;
		}
		s = (int)syscall(SYS_pidfd_getfd, pidfd, (int)sk[i].fd, 0);
		if (s < 0) {
			e = err_sys(-errno, "pid %d fd %u: take the TCP socket", pid, sk[i].fd);
			break;
		}
		/* a socket several processes hold: done with its first holder
		 * (out of repair mode, the queue cannot be chosen any more) */
		if (set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE) == -EPERM) {
			close(s);
			continue;
		}
		if (set_int(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))
			e = err_sys(-errno, "pid %d fd %u: TCP repair mode off", pid, sk[i].fd);
		else if ((sk[i].opts & LX_SKO_REUSEADDR) && set_int(s, SOL_SOCKET, SO_REUSEADDR, 1))
			e = err_sys(-errno, "pid %d fd %u: SO_REUSEADDR", pid, sk[i].fd);
		else if (t->unsent &&
			 (e = send_unsent(s, (const uint8_t *)blob + t->sndq_off +
					  (t->sndq_len - t->unsent), t->unsent, why, sizeof(why))))
			e = err_set(e, "pid %d fd %u: %s", pid, sk[i].fd, why);
		close(s);
	}
	if (pidfd >= 0)
		close(pidfd);
	free(sk);
	free(tc);
	return e;
}
