/* Shared state of one dump or restore, handed to each kind of kernel
 * object (mm.c, files.c, signals.c, ...). Each kind has its dump and its
 * restore side by side in its own file. */
#ifndef CRYO_H
#define CRYO_H

#include <stdint.h>
#include <sys/types.h>

#include "lx_ckpt.h"
#include "image.h"
#include "proc.h"
#include "ptrace.h"
#include "swap.h"
#include "pack.h"

#define CRYO_VERSION "0.1.0"

struct dump_opts {
	const char *image;
	const char *swapfile;	/* NULL: default beside the image */
	int kill_after;
	/* after the image is committed, with the tree still frozen: an error
	 * fails the dump and leaves the tree running (stream.c) */
	int (*after_commit)(const struct dump_opts *o);
	void *hook_arg;
	int shell_job;		/* --shell-job: accept the user's terminal */
	uint32_t allow_leak;	/* LX_LEAK_* accepted with --allow-leak */
	int pre_dump;		/* --pre-dump=N: copy rounds while running (dirty.c) */
	int leave_stopped;	/* --leave-stopped: SIGSTOP the tree once dumped */
	int tcp_established;	/* --tcp-established: TCP repair (tcp.c) */
};

struct restore_opts {
	const char *image;
	const char *swapfile;	/* NULL: as recorded in the image */
	int detach;
	int allow_changed_files;
	int lazy;		/* --lazy: anonymous pages served by lazy.c */
	int exec_fd;		/* >= 0: image handed over by binfmt (AT_EXECFD) */
	int allow_other_user;	/* root: restore files another user owns */
	int fresh_pids;		/* cryo run --cache: the kernel picks the pid (a
				 * single-process, single-threaded image only) */
	int pidns;		/* --pidns: new pid (and IPC) namespace */
	int timens;		/* enum timens_mode (timens.h): clocks */
	int leave_stopped;	/* --leave-stopped: the tree starts stopped (SIGSTOP) */
};

/* owner.c: as root, restore only what root wrote (or --allow-other-user) */
int restore_check_owner(int fd, const char *what, const char *path, int allow_other_user);
int restore_img_open(struct img *im, const struct restore_opts *o);
struct restore_task;
int core_restore_dumpable(struct restore_task *t);	/* core.c */
/* why PTRACE_SEIZE of pid failed, for the error message */
void trace_refusal_reason(pid_t pid, char *buf, size_t len);
/* rlimit of another user's process without CAP_SYS_RESOURCE (/proc/PID/limits) */
struct rlimit;
int proc_rlimit(pid_t pid, int resource, struct rlimit *rl);

/* One process being dumped: frozen, with its /proc state read once. */
struct dump_task {
	pid_t pid;
	uint32_t index;			/* in LX_SEC_TASKS */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vma *vmas;
	size_t nvmas;
	pid_t *tids;
	size_t ntids;
	struct injector inj;		/* leader, for state only readable inside */
	uint64_t scratch;		/* 256 bytes below the red zone, saved */
	uint8_t scratch_saved[256];
	int scratch_ok;
	struct img_writer *w;
	struct swapfile *sw;
	uint32_t allow_leak;		/* LX_LEAK_* the user accepted */
	/* counters for the report */
	uint64_t pages_scanned, pages_written, pages_zero;
	int seized, zombie;
	struct dirty_task *dirty;	/* --pre-dump: pages copied before the freeze */
	struct fd_share {			/* descriptions shared in the tree */
		int fd, id;
		int tree_pipe;			/* an end of a pipe between processes */
		int pipe_data;			/* ... the one whose queued bytes are saved */
		int tree_sock;			/* a unix socket connected in the tree */
		int sock_data;			/* ... the holder that saves its queue */
		int peer_id;			/* ... share id of its peer */
	} *shares;
	size_t nshares;
};

/* 1 + index of the open file description fd shares with other processes
 * of the tree, 0 if it is this process's alone (see LX_SEC_FDS share_id) */
uint32_t dump_share_id(const struct dump_task *t, int fd);
int share_add(struct dump_task *t, int fd, int id);
/* The fd's entry, NULL if it shares nothing */
const struct fd_share *dump_share(const struct dump_task *t, int fd);
/* socktree.c: share ids for unix sockets connected between processes */
int socktree_mark(struct dump_task *t, size_t nt, int *next_id);

/* Run a syscall that writes up to 256 bytes of output into the dump
 * scratch area, and copy the output back. */
int dump_inject_out(struct dump_task *t, long nr, uint64_t a1, uint64_t a2,
		    uint64_t a3, uint64_t a4, int out_arg, void *out, size_t out_len, long *ret);

/* One process being restored: created, exec'd, stopped under ptrace. */
struct restore_task {
	const struct img *im;
	const struct restore_opts *opts;
	uint32_t index;
	pid_t pid;
	struct injector inj;
	uint64_t scratch;		/* RW page block mapped in the task */
	size_t scratch_len;
	struct swapfile *sw;
	int allow_changed;
	pid_t *tids;			/* threads.c: every thread, leader first */
	size_t ntids;
};

/* Put back the leader's registers, signal mask and the bytes under its
 * stack: no more injected syscalls into it after this. */
int dump_end_injection(struct dump_task *t);
/* -EINTR (with a message) once a held SIGINT/SIGTERM/... is pending */
int dump_interrupted(void);

/* Copy data into the restore scratch area at offset off; returns the
 * task address. */
int restore_put(struct restore_task *t, size_t off, const void *data, size_t len, uint64_t *addr);
/* Inject a syscall, failing with a message on a negative return. */
int restore_sys(struct restore_task *t, const char *what, long nr, uint64_t a1,
		uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret);

/* ---- kinds: dump and restore side by side ---- */
/* mm.c: address space, pages, hidden mm state */
int mm_dump(struct dump_task *t);
int mm_check(const struct img *im, uint32_t task, int allow_changed);	/* before creating anything */
int mm_restore(struct restore_task *t);
int mm_unmap_scratch(struct restore_task *t);

/* files.c: file descriptors, cwd */
int files_dump(struct dump_task *t);
int files_check(const struct img *im, uint32_t task, int allow_changed);
int files_restore_preexec(const struct img *im, uint32_t task, int *keep, int nkeep,
			  int *shared, int nshared, char *errbuf, size_t errlen);
int files_shared_count(const struct img *im, uint32_t task, size_t *max);
int files_open_shared(const struct img *im, uint32_t task, int *shared, size_t nshared);
void files_shared_done(void);	/* after the last files_open_shared */
int files_restore(struct restore_task *t);
/* set by cryo run --cache: fds 0-2 come from the restorer whatever they were */
extern int files_stdio_from_restorer;

/* core.c: identity, creds, umask, rlimits, personality, comm, prctl state */
int core_dump(struct dump_task *t);
int core_restore_preexec(const struct img *im, uint32_t task, char *errbuf, size_t errlen);
int core_restore(struct restore_task *t);
int core_check(const struct img *im, uint32_t task);

/* signals.c: dispositions, itimers, pending signals with their siginfo */
int signals_dump(struct dump_task *t);
int signals_restore(struct restore_task *t);
/* Queue the pending signals of thread tid (0: the shared queue) from
 * inside that thread (inj); called by threads_restore. */
int signals_restore_pending(struct restore_task *t, struct injector *inj, pid_t tid);

/* timers.c: POSIX timers (dumped by signals_dump, restored by
 * threads_restore once the threads they may notify exist) */
int timers_dump(struct dump_task *t);
int timers_restore(struct restore_task *t);

/* threads.c: registers and per-thread state */
/* Freeze every thread (the leader is frozen already), re-scanning until no
 * new one appears; t->tids gets them, leader first. */
int threads_freeze(struct dump_task *t);
int threads_unfreeze(struct dump_task *t);	/* detach all but the leader */
int threads_dump(struct dump_task *t);
/* Create the other threads, then per-thread state, timers, pending
 * signals and final registers of all: the last step before detach. */
int threads_restore(struct restore_task *t);
int threads_detach(struct restore_task *t);	/* all but the leader */
/* Inject a syscall into one thread of a restored task. */
int thread_sys(struct restore_task *t, struct injector *inj, const char *what, long nr,
	       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, long *ret);

/* options.c: the LX_SEC_OPTIONS record */
int options_parse_leak(const char *arg, uint32_t *kinds);
const char *options_leak_names(uint32_t kinds, char *buf, size_t len);
int options_write(struct img_writer *w, const struct lx_options *o);
int options_read(const struct img *im, struct lx_options *o);

/* leaks.c: open files the tree shares with processes outside it */
int leaks_check_files(const struct dump_task *t, size_t n, uint32_t allow_leak);

/* ipc.c: SysV shm, semaphores, message queues of the tree (global) */
int ipc_dump(const struct dump_task *t, size_t n, uint32_t allow_leak, struct img_writer *w);
int ipc_present(const struct img *im);
int ipc_restore(const struct img *im);	/* create them all, with their ids */
int ipc_restore_finish(void);		/* after every task attached */
void ipc_restore_abort(void);		/* remove what ipc_restore created */

/* elf.c */
int exe_identify(const char *path, int fd, struct exe_ident *id);

/* verbs (main.c dispatches "cryo VERB ..."): each returns an exit status */
int cmd_register(int argc, char **argv);		/* binfmt.c */
int cmd_unregister(int argc, char **argv);		/* binfmt.c */
int cmd_binfmt_exec(int argc, char **argv);		/* binfmt.c */
int binfmt_exec_fd(void);				/* binfmt.c: AT_EXECFD or -1 */
int cmd_show(int argc, char **argv);			/* show.c */
int cmd_check(int argc, char **argv);			/* check.c */
int cmd_core(int argc, char **argv);			/* coredump.c */
int cmd_snapshots(int argc, char **argv);		/* snapshots.c */
int cmd_run(int argc, char **argv);			/* run.c */
int cmd_cache(int argc, char **argv);			/* cache.c */
/* show.c: open the swapfile an image names (or override), resolved as a
 * restore does, and check it is that swapfile and holds the image's pages;
 * *path (if not NULL) gets the resolved path, malloc'ed, even on failure */
int image_swap_open(const struct img *im, const char *override, struct swapfile **sw,
		    char **path);
int wait_root(pid_t pid);				/* main.c */

/* dump.c / restore.c */
int cryo_dump(pid_t pid, const struct dump_opts *o);
int cryo_restore(const struct restore_opts *o, pid_t *root_pid);
int cryo_restore_inplace(const struct restore_opts *o);
/* The child cryo -r waits for: the tree's root, or with --pidns the
 * namespace's init, which exits with the root's status */
pid_t restore_waited_child(pid_t root);
/* ns_last_pid of the restored tree's pid namespace (with --pidns, written
 * by its init, which alone may) */
int restore_set_last_pid(pid_t v);
int binfmt_cr_loaded(void);

#endif
