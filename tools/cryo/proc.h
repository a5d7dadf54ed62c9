/* /proc parsers. Each returns 0 or -errno with a message naming the pid
 * and the file. */
#ifndef CRYO_PROC_H
#define CRYO_PROC_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* VmFlags from smaps that matter to cryo */
#define VMF_GD	(1u << 0)	/* grows down */
#define VMF_DC	(1u << 1)	/* MADV_DONTFORK */
#define VMF_WF	(1u << 2)	/* MADV_WIPEONFORK */
#define VMF_HG	(1u << 3)	/* MADV_HUGEPAGE */
#define VMF_NH	(1u << 4)	/* MADV_NOHUGEPAGE */
#define VMF_DD	(1u << 5)	/* MADV_DONTDUMP */
#define VMF_MG	(1u << 6)	/* MADV_MERGEABLE */
#define VMF_LO	(1u << 7)	/* mlocked */
#define VMF_IO	(1u << 8)	/* I/O or PFN map: device memory */
#define VMF_PF	(1u << 9)
#define VMF_UFFD (1u << 10)	/* userfaultfd-registered */
#define VMF_SS	(1u << 11)	/* shadow stack */
#define VMF_SL	(1u << 12)	/* sealed */
#define VMF_MW	(1u << 13)	/* may write */
#define VMF_SH	(1u << 14)	/* shared */
#define VMF_DE	(1u << 15)	/* do not expand on mremap */
#define VMF_HT	(1u << 16)	/* hugetlb */
#define VMF_MR	(1u << 17)	/* may read */

struct proc_vma {
	uint64_t start, end, pgoff;
	int prot;		/* PROT_* */
	int shared;		/* 's' in perms */
	unsigned major, minor;
	uint64_t ino;
	uint32_t vmflags;	/* VMF_* */
	char *path;		/* "" for anonymous; "[heap]" etc. */
	int deleted;		/* path ended in " (deleted)", stripped */
};

int proc_maps(pid_t pid, struct proc_vma **vmas, size_t *n);
void proc_maps_free(struct proc_vma *vmas, size_t n);

struct proc_stat {
	char state;
	pid_t ppid, pgrp, session;
	int tty_nr;
	unsigned long flags;
	unsigned long long starttime;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_signal;
	int exit_code;		/* zombies: the wait status */
	long nice;
};

int proc_stat(pid_t pid, pid_t tid, struct proc_stat *st);

struct proc_status {
	unsigned umask;
	uid_t uid[4];
	gid_t gid[4];
	int ngroups;
	gid_t groups[64];
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	int threads;
	int no_new_privs;
	int seccomp;
	pid_t tracer;
	uint64_t cap_eff;
};

int proc_status(pid_t pid, pid_t tid, struct proc_status *st);

/* Whole small file into a malloc'ed buffer (NUL-terminated). */
int proc_read(pid_t pid, const char *name, char **buf, size_t *len);
/* readlink of /proc/PID/<name> */
int proc_link(pid_t pid, const char *name, char *buf, size_t size);
/* Thread ids of pid, leader first. */
int proc_tids(pid_t pid, pid_t **tids, size_t *n);
/* "pos:" and "flags:" of /proc/PID/fdinfo/FD, and the raw text */
int proc_fdinfo(pid_t pid, int fd, uint64_t *pos, int *flags, char **text);

/*
 * Call fn for each open fd of pid with its /proc/PID/fd/N path and a stat
 * of the file it refers to (fds closed meanwhile are skipped). fn returns 0
 * to go on, anything else to stop, and proc_each_fd returns that. An
 * unreadable fd directory is -errno with a message.
 */
struct stat;
typedef int (*proc_fd_fn)(int fd, const char *path, const struct stat *st, void *arg);
int proc_each_fd(pid_t pid, proc_fd_fn fn, void *arg);

/* Some process other than exclude with an fd on (dev, ino), 0 if none:
 * names the other side of a leak in refusal messages. */
pid_t proc_fd_holder(dev_t dev, ino_t ino, pid_t exclude);

#endif
