/* Terminals (tty.c): pty pairs held by the tree, controlling terminals,
 * shell jobs. */
#ifndef CRYO_TTY_H
#define CRYO_TTY_H

#include "cryo.h"

struct fd_dump;
struct fd_restore;

/* dump, before the fd tables: find the ptys of the tree, check controlling
 * terminals (--shell-job sets LX_OPT_SHELL_JOB in opt), give pty fds their
 * share ids, write the global LX_SEC_TTYS */
int tty_dump_tree(struct dump_task *t, size_t n, int shell_job, struct img_writer *w,
		  struct lx_options *opt);
/* a terminal fd: a pty end of the tree, or refused by name */
int tty_dump(struct fd_dump *d, struct lx_fd *r, const char *link);
/* stdio on a terminal that is not a pty of the tree */
int tty_is_outside(const struct lx_fd *r);

/* restore: check the records (before any process exists) */
int tty_check(const struct img *im);
/* phase 1 of a LX_FD_PTY fd (in the restorer: the pty is made once) */
int tty_open(struct fd_restore *c, size_t i);
/* in a new session leader right after setsid: its controlling terminal */
int tty_restore_ctty(pid_t pid, char *msg, size_t len);
/* in a session leader before exec, once every group exists */
int tty_restore_fg(pid_t pid, char *msg, size_t len);
/* in cryo once groups are set: a shell job's foreground, pty locks, and
 * the restorer's masters closed */
int tty_restore_tree_made(const struct img *im);
/* cryo takes its terminal's foreground back after the job ended */
void tty_restore_giveback(void);

#endif
