/* Established TCP connections (--tcp-established): tcp.c */
#ifndef CRYO_TCP_H
#define CRYO_TCP_H

#include "fds.h"

/* dump.c: the user asked for --tcp-established on this dump */
void tcp_dump_enable(int on);
int tcp_dump_enabled(void);
/* An established connection of socket s (a duplicate of r's fd): put it in
 * repair mode and record it (LX_SEC_TCP). Without --tcp-established: the
 * refusal, naming the flag. as/ps: its addresses, for messages. */
int tcp_dump(struct fd_dump *d, const struct lx_fd *r, int s, struct lx_socket *sk,
	     const char *as, const char *ps);
/* End of the dump: every socket put in repair mode leaves it again, unless
 * the tree is killed (kill_it), whose death then closes them silently (no
 * FIN or RST reaches the peer). Safe to call twice. */
void tcp_dump_end(int kill_it);

/* restore: the connection of an LX_SK_TCP_EST record; an fd or -errno
 * after fr_err() */
int tcp_open(struct fd_restore *c, const struct lx_socket *sk);
/* cryo -r: tcp_open() leaves the connections in repair mode, where they
 * send nothing, until tcp_restore_finish() ends it for each process once
 * the whole tree exists (a peer in the tree must be there to answer) */
void tcp_restore_defer(int on);
/* task's connections (hpid: its pid as cryo sees it; pid: for messages) */
int tcp_restore_finish(const struct img *im, uint32_t task, pid_t hpid, pid_t pid);

#endif
