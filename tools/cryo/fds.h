/* Internal interface between files.c (the fd table) and the files that
 * handle one kind of fd each (pipes.c, sockets.c, eventfd.c, ...).
 *
 * Dump: files.c walks /proc/PID/fd, fills the generic lx_fd record (flags,
 * owner, dup detection), and hands anything that is not a plain path to
 * the kind's *_dump(), which appends its own records to d->sec[type] and
 * bytes to d->data. Nothing here may change the dumped process: kinds look
 * at /proc/PID/fdinfo or at a pidfd_getfd() duplicate, and only through
 * calls that neither consume nor modify (peek, tee, getsockopt).
 *
 * Restore, in the new process before exec (see files_restore_preexec):
 * phase 1 creates each open file description with the kind's *_open()
 * (anywhere in the fd table: files.c moves it to a staging number),
 * phase 2 sets status flags and owners, phase 3 puts every fd at its
 * number, phase 4 runs what needs final numbers (epoll registrations).
 * After exec, files_restore() injects what must be done last or inside the
 * restored task (FD_CLOEXEC, arming timerfds, POSIX locks). */
#ifndef CRYO_FDS_H
#define CRYO_FDS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cryo.h"

/* Queued data and file contents kept in the image; beyond this a dump is
 * refused rather than blowing up the image (which is read whole). */
#define FD_DATA_MAX	(256ull << 20)

struct recbuf {
	uint8_t *p;
	size_t len, cap;
};
int recbuf_add(struct recbuf *b, const void *rec, size_t len);

struct fd_dump {
	struct dump_task *t;
	pid_t pid;
	int pidfd;
	struct lx_fd *recs;		/* every fd, ascending */
	size_t n;
	struct recbuf sec[LX_SEC_TYPE_MAX];	/* per-kind records by section */
	struct recbuf data;		/* LX_SEC_FDDATA */
	struct recbuf sk_peers;		/* struct sk_peer: unix peers to resolve */
};

/* A duplicate of the target's fd in cryo (pidfd_getfd), O_CLOEXEC. It
 * shares the target's open file description: never change its state. */
int fd_dup(struct fd_dump *d, int fd);
/* Append bytes to LX_SEC_FDDATA; sets *off. */
int fd_data(struct fd_dump *d, const void *buf, size_t len, uint64_t *off);
/* The record of fd in d->recs, NULL if the process has no such fd. */
struct lx_fd *fd_rec(struct fd_dump *d, int fd);
/* Value after "key" in fdinfo text (strtoull with base), -ENOENT if absent */
int fdinfo_u64(const char *info, const char *key, int base, uint64_t *v);

/* per-kind dump: r is the generic record (fd, flags, dev/ino, mode filled);
 * the kind sets r->kind and appends its records. info = fdinfo text. */
int eventfd_dump(struct fd_dump *d, struct lx_fd *r, const char *info);
int timerfd_dump(struct fd_dump *d, struct lx_fd *r, const char *info);
int signalfd_dump(struct fd_dump *d, struct lx_fd *r, const char *info);
int epoll_dump(struct fd_dump *d, struct lx_fd *r, const char *info);
int inotify_dump(struct fd_dump *d, struct lx_fd *r, const char *info);
int pipe_dump(struct fd_dump *d, struct lx_fd *r, const char *link);
int socket_dump(struct fd_dump *d, struct lx_fd *r, const char *link);
/* stdio socket whose peer is not in the process: from the restorer */
int socket_is_outside(struct fd_dump *d, const struct lx_fd *r);
/* the peer inode of unix socket ino (pid's fd), 0 if unconnected */
int unix_peer_of(pid_t pid, int fd, uint64_t ino, uint64_t *peer);
/* copy what is queued on socket s (a duplicate of r) into sk's data */
int socket_peek_queue(struct fd_dump *d, const struct lx_fd *r, int s, int type,
		      struct lx_socket *sk);
/* socktree.c: unix sockets connected between processes of the tree */
int socktree_dump(struct fd_dump *d, const struct lx_fd *r, int s, struct lx_socket *sk,
		  uint64_t peer_ino);
/* a connected unix socket of the tree holds peer inode ino (after socktree_mark) */
int socktree_holds(uint64_t ino);
int locks_dump(struct fd_dump *d, struct lx_fd *r, const char *info);
/* after every fd has its record: cross-fd checks (pipe ends, peers) */
int pipes_dump_finish(struct fd_dump *d);
int sockets_dump_finish(struct fd_dump *d);
/* An end of pipe ino (a writer if want_write, else a reader) is in flight
 * on a socket of the process (after sockets_dump_finish) */
int sockets_pipe_in_flight(struct fd_dump *d, uint64_t ino, int want_write);

/* ---- restore ---- */
struct fd_sec {
	int loaded;
	void *recs;
	size_t n, size;
};

struct fd_restore {
	const struct img *im;
	uint32_t task;
	struct lx_fd *fds;
	size_t n;
	int *staged;			/* per record: fd holding it until phase 3 */
	int base;			/* staging fds live at or above this */
	const uint8_t *data;		/* LX_SEC_FDDATA */
	uint64_t data_len;
	struct fd_sec sec[LX_SEC_TYPE_MAX];
	char *errbuf;
	size_t errlen;
};

/* Record an error for the restorer (we run in the child: no err_set) */
int fr_err(struct fd_restore *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The record of kind section type for fd, NULL if absent (error set) */
const void *fr_rec(struct fd_restore *c, uint32_t type, size_t size, uint32_t fd);
/* All records of a section; NULL with *n = 0 if none */
const void *fr_recs(struct fd_restore *c, uint32_t type, size_t size, size_t *n);
/* Bytes [off, off+len) of FDDATA, NULL if out of range */
const uint8_t *fr_data(struct fd_restore *c, uint64_t off, uint64_t len);
/* Index of the record for fd, -1 if none */
long fr_index(struct fd_restore *c, uint32_t fd);
/* Move fd to the staging area for record i (closes fd) */
int fr_stage(struct fd_restore *c, size_t i, int fd);
int write_all(int fd, const void *buf, size_t len);

/* phase 1: create the open file description of record i; return an fd
 * (anywhere) or -errno after fr_err(). A kind that creates several at
 * once (a pipe, a socketpair) stages the others with fr_stage(). */
int eventfd_open(struct fd_restore *c, size_t i);
int timerfd_open(struct fd_restore *c, size_t i);
int signalfd_open(struct fd_restore *c, size_t i);
int epoll_open(struct fd_restore *c, size_t i);
int inotify_open(struct fd_restore *c, size_t i);
int pipe_open(struct fd_restore *c, size_t i);
/* an end of a pipe between processes of the tree (restorer side) */
int pipe_open_tree(struct fd_restore *c, size_t i);
void pipes_tree_done(void);
int socket_open(struct fd_restore *c, size_t i);
int socket_set_opts(struct fd_restore *c, const struct lx_socket *sk, int s);
int socket_shut(struct fd_restore *c, const struct lx_socket *sk, int s);
/* send what was queued for `to` (records of c's task) through `from` */
int socket_refill(struct fd_restore *c, const struct lx_socket *to, int from);
/* a socket held by several processes, or an end of a connection between
 * processes (restorer side, socktree.c) */
int socket_open_tree(struct fd_restore *c, size_t i);
void socktree_done(void);
/* phase 4: every fd is at its number */
int epoll_restore_late(struct fd_restore *c);
/* socket pairs with files in flight: refilled once every fd has its number */
int sockets_restore_late(struct fd_restore *c);
/* after exec, by injection */
int timerfd_restore(struct restore_task *t, const struct lx_fd *fds, size_t n);
int locks_restore(struct restore_task *t);

#endif
