/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * lx_ckpt.h - the cryo checkpoint image ABI.
 *
 * This is the only definition of the on-disk format. It is shared by the
 * user-space tool (tools/cryo) and the kernel module (fs/binfmt_cr), and it
 * carries the one header/section-table validator both of them run, so that
 * fuzzing the validator in user space also covers the kernel.
 *
 * Rules of the format (see ksummit-2010-cr-abi):
 *  - every field is fixed-width little-endian, naturally aligned, and laid
 *    out identically for 32- and 64-bit readers (no pointers, no longs);
 *  - the header fits in the first 256 bytes (the kernel's BINPRM_BUF_SIZE);
 *  - everything after the header lives in typed sections, each with an
 *    explicit offset, length, record size and CRC32C;
 *  - records only grow by appending fields: a reader takes
 *    min(record_size, sizeof(its struct)) bytes and zero-fills the rest;
 *  - an incompatible change bumps LX_CKPT_VERSION_MAJOR and readers refuse it.
 *
 * The validator is plain C with no libc: it must compile unchanged in the
 * kernel, so it takes buffers and lengths and returns 0 or a negative
 * LX_E* code, never touching files itself.
 */
#ifndef LX_CKPT_H
#define LX_CKPT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/stddef.h>
typedef u8 lx_u8;
typedef u16 lx_le16;
typedef u32 lx_le32;
typedef u64 lx_le64;
#else
#include <stdint.h>
#include <stddef.h>
typedef uint8_t lx_u8;
typedef uint16_t lx_le16;
typedef uint32_t lx_le32;
typedef uint64_t lx_le64;
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define lx_le16_to_cpu(x) __builtin_bswap16(x)
#define lx_le32_to_cpu(x) __builtin_bswap32(x)
#define lx_le64_to_cpu(x) __builtin_bswap64(x)
#else
#define lx_le16_to_cpu(x) ((lx_le16)(x))
#define lx_le32_to_cpu(x) ((lx_le32)(x))
#define lx_le64_to_cpu(x) ((lx_le64)(x))
#endif
#define lx_cpu_to_le16(x) lx_le16_to_cpu(x)
#define lx_cpu_to_le32(x) lx_le32_to_cpu(x)
#define lx_cpu_to_le64(x) lx_le64_to_cpu(x)

/*
 * The image starts with a shell line. On a machine with neither binfmt_cr
 * nor the binfmt_misc entry, execve() fails with ENOEXEC and the shell runs
 * the file as a script: the line then hands the image to cryo, or says what
 * is needed, instead of "LX_CKPT: not found". Its first 8 bytes are the
 * magic both binfmt handlers match. It ends in '\n' before any NUL so shells
 * do not take the file for a binary.
 */
#define LX_CKPT_MAGIC		"LX_CKPT="
#define LX_CKPT_MAGIC_LEN	8
#define LX_CKPT_PRELUDE_LEN	112
#define LX_CKPT_PRELUDE \
	"LX_CKPT=1;command -v cryo>/dev/null&&exec cryo -r -f \"$0\";" \
	"echo \"$0: cryo image, needs cryo\">&2;exit 126"

#define LX_CKPT_ABI_ID		0x31595243u	/* "CRY1" */
#define LX_CKPT_VERSION_MAJOR	1
#define LX_CKPT_VERSION_MINOR	0
#define LX_CKPT_HEADER_SIZE	256
#define LX_CKPT_ARCH_X86_64	0xc000003eu	/* AUDIT_ARCH_X86_64 */
#define LX_CKPT_PAGE_SIZE	4096
#define LX_CKPT_BUILD_ID_MAX	32
#define LX_CKPT_PATH_MAX	4096
#define LX_CKPT_MAX_SECTIONS	(1u << 20)
#define LX_CKPT_ALIGN		8

/* header flags */
#define LX_CKPT_F_SWAPFILE	(1u << 0)	/* pages live in a swapfile */
#define LX_CKPT_F_PACKED	(1u << 1)	/* pages are carried in the image
						 * (LX_SEC_PACKED_PAGES), instead */

struct lx_ckpt_header {
	char	 prelude[LX_CKPT_PRELUDE_LEN];	/* magic + shell line + '\n' */
	lx_le32  abi_id;			/* LX_CKPT_ABI_ID */
	lx_le16  version_major;
	lx_le16  version_minor;
	lx_le32  header_size;			/* LX_CKPT_HEADER_SIZE */
	lx_le32  arch;				/* LX_CKPT_ARCH_* */
	lx_le32  flags;				/* LX_CKPT_F_* */
	lx_le32  page_size;
	lx_le32  section_count;
	lx_le32  section_entry_size;		/* >= sizeof(lx_ckpt_section) */
	lx_le64  section_table_offset;
	lx_le64  image_size;			/* whole file, for truncation */
	/* the original executable of the root task, for binfmt_cr */
	lx_le64  exe_path_offset;		/* NUL-free bytes inside file */
	lx_le32  exe_path_len;
	lx_le32  exe_build_id_len;
	lx_le64  exe_dev;			/* st_dev as new_encode_dev */
	lx_le64  exe_ino;
	lx_le64  exe_size;
	lx_le64  exe_mtime_ns;
	lx_u8	 exe_build_id[LX_CKPT_BUILD_ID_MAX];
	lx_le32  table_crc;			/* crc32c of the section table */
	lx_le32  header_crc;			/* crc32c of these 256 bytes,
						 * with this field as zero */
	lx_le64  reserved;
};

/* section table entry */
struct lx_ckpt_section {
	lx_le32 type;		/* LX_SEC_* */
	lx_le32 task;		/* index into LX_SEC_TASKS, or LX_TASK_GLOBAL */
	lx_le64 offset;		/* from the start of the file, 8-aligned */
	lx_le64 length;		/* bytes */
	lx_le32 record_size;	/* 0 for a blob; else length % record_size == 0 */
	lx_le32 crc;		/* crc32c of the section's bytes */
};
#define LX_TASK_GLOBAL	0xffffffffu

enum lx_section_type {
	LX_SEC_TASKS = 1,	/* global: lx_task records, parents first */
	LX_SEC_SWAP,		/* global: lx_swap_ref */
	LX_SEC_STRTAB,		/* per task or global: NUL-terminated strings */
	LX_SEC_CORE,		/* lx_core: per-process identity and state */
	LX_SEC_MM,		/* lx_mm: hidden mm state */
	LX_SEC_AUXV,		/* blob: le64 pairs ending with AT_NULL */
	LX_SEC_ARGV,		/* blob: NUL-separated argv as exec'd */
	LX_SEC_ENVP,		/* blob: NUL-separated envp */
	LX_SEC_VMAS,		/* lx_vma records, ascending addresses */
	LX_SEC_PAGEMAP,		/* lx_page_run records, ascending addresses */
	LX_SEC_PAGESUMS,	/* le64 XXH3 per stored page, in run order */
	LX_SEC_THREADS,		/* lx_thread records, thread 0 is the leader */
	LX_SEC_GPREGS,		/* lx_gpregs records, one per thread */
	LX_SEC_XSTATE,		/* records: le32 tid, le32 len, xsave bytes */
	LX_SEC_FDS,		/* lx_fd records */
	LX_SEC_RLIMITS,		/* lx_rlimit records, index = resource */
	LX_SEC_SIGACTS,		/* lx_sigaction records, index = signo - 1 */
	LX_SEC_ITIMERS,		/* lx_itimer records: real, virtual, prof */
	LX_SEC_SIGINFO,		/* lx_siginfo records: pending signals, queue order */
	LX_SEC_POSIX_TIMERS,	/* lx_posix_timer records, ascending ids */
	LX_SEC_FDDATA,		/* blob: contents of files and queues, at offsets named in records */
	LX_SEC_PIPES,		/* lx_pipe records, ascending fds */
	LX_SEC_EVENTFDS,	/* lx_eventfd records */
	LX_SEC_TIMERFDS,	/* lx_timerfd records */
	LX_SEC_SIGNALFDS,	/* lx_signalfd records */
	LX_SEC_EPOLL,		/* lx_epoll_tfd records: one per registration */
	LX_SEC_INOTIFY,		/* lx_inotify_watch records: one per watch */
	LX_SEC_SOCKETS,		/* lx_socket records */
	LX_SEC_LOCKS,		/* lx_lock records: file locks held, per fd */
	/*
	 * Reserved for work in progress on separate branches, so their
	 * numbers never collide; each branch defines its records below.
	 */
	LX_SEC_SYSV_SHM,	/* global: SysV shared memory segments */
	LX_SEC_SYSV_SEM,	/* global: SysV semaphore sets */
	LX_SEC_SYSV_MSG,	/* global: SysV message queues */
	LX_SEC_TTYS,		/* pseudo-terminals held by the tree */
	LX_SEC_OPTIONS,		/* global: choices made at dump time
				 * (--allow-leak, --shell-job, pid ns) */
	LX_SEC_PACKED_PAGES,	/* global: pages carried inside the image
				 * (cryo pack, streams) */
	LX_SEC_SCM_RIGHTS,	/* fds in flight in unix socket queues */
	LX_SEC_SHARED_ANON,	/* global: lx_shared_anon, MAP_SHARED|MAP_ANONYMOUS
				 * objects, one per object however many map it */
	LX_SEC_TCP,		/* per task: established TCP connections
				 * (--tcp-established, TCP_REPAIR) */
	LX_SEC_TYPE_MAX
};

/* LX_SEC_TASKS */
struct lx_task {
	lx_le32 pid;
	lx_le32 ppid;		/* pid of parent inside the image, 0 if root */
	lx_le32 pgid;
	lx_le32 sid;
	lx_le32 nr_threads;
	lx_le32 flags;		/* LX_TASK_* */
	lx_le32 exit_signal;	/* signal sent to parent on exit */
	lx_le32 exit_status;	/* LX_TASK_ZOMBIE: wait status for the parent */
};
#define LX_TASK_ROOT	(1u << 0)
#define LX_TASK_ZOMBIE	(1u << 1)	/* exited, not yet reaped: no state */

/* LX_SEC_SWAP: which page store holds this image's pages */
struct lx_swap_ref {
	lx_u8	uuid[16];	/* of the swapfile */
	lx_le64 snapshot;	/* snapshot id inside it */
	lx_le64 slots_end;	/* committed slots when this image was made */
	lx_le32 path_off;	/* into the global strtab; relative paths are
				 * relative to the image's directory */
	lx_le32 reserved;
};

/* LX_SEC_CORE */
struct lx_core {
	lx_le32 pid;
	lx_le32 umask;
	lx_le32 personality;
	lx_le32 flags;		/* LX_CORE_* */
	char	comm[16];
	lx_le32 uid[4];		/* real, effective, saved, fs */
	lx_le32 gid[4];
	lx_le32 cwd_off;	/* strtab */
	lx_le32 root_off;	/* strtab */
	lx_le32 exe_off;	/* strtab */
	lx_le32 exe_build_id_len;
	lx_le64 exe_dev;
	lx_le64 exe_ino;
	lx_le64 exe_size;
	lx_le64 exe_mtime_ns;
	lx_u8	exe_build_id[LX_CKPT_BUILD_ID_MAX];
	lx_le64 sig_pending;	/* shared pending set (refused if non-zero) */
	lx_le32 pdeath_sig;
	lx_le32 dumpable;
	lx_le32 ngroups;
	lx_le32 groups[32];
	lx_le32 reserved;
};
#define LX_CORE_FORKNOEXEC	(1u << 0)	/* PF_FORKNOEXEC: never exec'd */
#define LX_CORE_NO_NEW_PRIVS	(1u << 1)
#define LX_CORE_CHILD_SUBREAPER	(1u << 2)

/* LX_SEC_MM: the fields of prctl(PR_SET_MM_MAP) */
struct lx_mm {
	lx_le64 start_code, end_code;
	lx_le64 start_data, end_data;
	lx_le64 start_brk, brk;
	lx_le64 start_stack;
	lx_le64 arg_start, arg_end;
	lx_le64 env_start, env_end;
	lx_le64 flags;		/* LX_MM_*: THP disable, ... */
};
#define LX_MM_THP_DISABLE	(1u << 0)

/* LX_SEC_VMAS */
struct lx_vma {
	lx_le64 start, end;
	lx_le64 pgoff;		/* file offset in bytes */
	lx_le32 prot;		/* PROT_* */
	lx_le32 kind;		/* LX_VMA_* */
	lx_le32 flags;		/* LX_VMAF_* */
	lx_le32 path_off;	/* strtab, file-backed kinds */
	lx_le64 dev, ino, size, mtime_ns;	/* identity of the file */
	lx_le32 open_flags;	/* O_RDONLY / O_RDWR for the mapping */
	lx_le32 shared_id;	/* LX_VMA_SHARED_ANON: 1 + index of its object in
				 * LX_SEC_SHARED_ANON, pgoff the offset in it;
				 * 0: an object of this mapping alone (older images) */
	lx_le64 content_sum;	/* vdso: XXH3 of its bytes, to detect a
				 * kernel whose vdso differs */
};
enum lx_vma_kind {
	LX_VMA_ANON = 1,	/* private anonymous (heap, stack included) */
	LX_VMA_FILE_PRIVATE,	/* private file: clean pages from file */
	LX_VMA_FILE_SHARED,	/* shared file: by reference */
	LX_VMA_SHARED_ANON,	/* MAP_SHARED|MAP_ANONYMOUS */
	LX_VMA_VDSO,
	LX_VMA_VVAR,
	LX_VMA_VVAR_VCLOCK,
	LX_VMA_VSYSCALL,
	LX_VMA_SYSV_SHM,	/* shmat() of the LX_SEC_SYSV_SHM segment whose id
				 * is in `ino`; pgoff: offset in the segment */
	LX_VMA_KIND_LAST = LX_VMA_SYSV_SHM	/* readers check kinds against this */
};
#define LX_VMAF_GROWSDOWN	(1u << 0)
#define LX_VMAF_STACK		(1u << 1)
#define LX_VMAF_HEAP		(1u << 2)
#define LX_VMAF_DONTFORK	(1u << 3)
#define LX_VMAF_WIPEONFORK	(1u << 4)
#define LX_VMAF_HUGEPAGE	(1u << 5)
#define LX_VMAF_NOHUGEPAGE	(1u << 6)
#define LX_VMAF_DONTDUMP	(1u << 7)
#define LX_VMAF_MERGEABLE	(1u << 8)
#define LX_VMAF_LOCKED		(1u << 9)
#define LX_VMAF_MAYWRITE	(1u << 10)	/* can be mprotect'ed writable */

/* LX_SEC_PAGEMAP */
struct lx_page_run {
	lx_le64 vaddr;
	lx_le64 slot;		/* first slot in the swapfile; LX_SLOT_ZERO */
	lx_le32 npages;
	lx_le32 flags;
};
#define LX_SLOT_ZERO	0xffffffffffffffffull

/* LX_SEC_THREADS */
struct lx_thread {
	lx_le32 tid;
	lx_le32 flags;
	lx_le64 sigmask;
	lx_le64 clear_tid_addr;
	lx_le64 robust_list, robust_len;
	lx_le64 rseq_addr;
	lx_le32 rseq_len, rseq_sig;
	lx_le64 sas_sp, sas_size;
	lx_le32 sas_flags;
	lx_le32 reserved;
	lx_le64 sig_pending;	/* per-thread pending set */
	char	comm[16];
};

/* LX_SEC_GPREGS: x86-64 struct user_regs_struct, in its order */
#define LX_GPREGS_NR 27
struct lx_gpregs {
	lx_le32 tid;
	lx_le32 reserved;
	lx_le64 regs[LX_GPREGS_NR];
};

/* LX_SEC_FDS */
struct lx_fd {
	lx_le32 fd;
	lx_le32 kind;		/* LX_FD_* */
	lx_le32 fdflags;	/* FD_CLOEXEC */
	lx_le32 flags;		/* O_* status and access flags */
	lx_le64 pos;
	lx_le64 dev, ino, size, mtime_ns;
	lx_le32 mode;		/* st_mode */
	lx_le32 path_off;	/* strtab */
	lx_le64 rdev;
	/* appended for issue #6 */
	lx_le32 dup_of;		/* 1 + an earlier fd sharing this open file
				 * description (dup), 0 if none */
	lx_le32 seals;		/* memfd: F_GET_SEALS */
	lx_le32 owner_type;	/* F_GETOWN_EX: F_OWNER_TID/PID/PGRP */
	lx_le32 owner_pid;	/* 0: no owner (F_SETOWN never called) */
	lx_le32 owner_sig;	/* F_GETSIG, 0: SIGIO */
	lx_le32 reserved2;
	lx_le64 data_off;	/* LX_FD_DELETED, LX_FD_MEMFD: content, in */
	lx_le64 data_len;	/* LX_SEC_FDDATA */
	/* appended for issue #5 */
	lx_le32 share_id;	/* 1 + index of an open file description held by
				 * several processes of the tree (LX_SEC_TASKS
				 * order of first holder); 0: this process only */
	lx_le32 reserved3;
};
enum lx_fd_kind {
	LX_FD_REG = 1,		/* regular file or directory, reopened by path */
	LX_FD_CHR,		/* character device, reopened by path */
	LX_FD_INHERIT,		/* stdio from outside the tree: restorer's own */
	LX_FD_DELETED,		/* regular file unlinked while open: content in
				 * FDDATA, recreated unnamed (O_TMPFILE) in its
				 * directory; path_off is its last path */
	LX_FD_MEMFD,		/* memfd: name in path_off, content, seals */
	LX_FD_FIFO,		/* named pipe, reopened by path; lx_pipe record */
	LX_FD_PIPE,		/* pipe, both ends in the process; lx_pipe */
	LX_FD_EVENTFD,		/* lx_eventfd */
	LX_FD_TIMERFD,		/* lx_timerfd */
	LX_FD_SIGNALFD,		/* lx_signalfd */
	LX_FD_EPOLL,		/* registrations in LX_SEC_EPOLL */
	LX_FD_INOTIFY,		/* watches in LX_SEC_INOTIFY */
	LX_FD_SOCKET,		/* lx_socket */
	LX_FD_PIDFD,		/* pidfd of the process itself */
	LX_FD_PTY,		/* an end of a pseudo-terminal of the tree: lx_tty_fd */
	LX_FD_KIND_MAX
};

/* LX_SEC_RLIMITS */
struct lx_rlimit {
	lx_le64 cur, max;
};

/* LX_SEC_SIGACTS: the kernel's struct sigaction for rt_sigaction */
struct lx_sigaction {
	lx_le64 handler;
	lx_le64 flags;
	lx_le64 restorer;
	lx_le64 mask;
};

/* LX_SEC_ITIMERS */
struct lx_itimer {
	lx_le64 interval_us;
	lx_le64 value_us;
};

/* LX_SEC_SIGINFO: one queued signal, with the kernel's 128-byte siginfo as
 * PTRACE_PEEKSIGINFO returns it; re-queued in record order */
struct lx_siginfo {
	lx_le32 tid;		/* thread whose private queue held it; 0: shared */
	lx_le32 reserved;
	lx_u8	info[128];
};

/* LX_SEC_POSIX_TIMERS: a timer_create() timer */
struct lx_posix_timer {
	lx_le32 id;		/* kernel timer id, restored as is */
	lx_le32 clock;		/* clockid_t */
	lx_le32 notify;		/* sigev_notify: SIGEV_SIGNAL/NONE/THREAD_ID */
	lx_le32 signo;
	lx_le64 value;		/* sigev_value */
	lx_le32 notify_tid;	/* SIGEV_THREAD_ID target */
	lx_le32 overrun;	/* timer_getoverrun() at dump (not restored) */
	lx_le64 value_ns;	/* time to next expiry, 0 if disarmed */
	lx_le64 interval_ns;
};

/* LX_SEC_PIPES: one record per pipe or FIFO fd */
struct lx_pipe {
	lx_le32 fd;
	lx_le32 size;		/* F_GETPIPE_SZ */
	lx_le64 id;		/* pipe inode: fds with the same id share a pipe */
	lx_le64 data_off;	/* queued bytes, in LX_SEC_FDDATA, on the first */
	lx_le64 data_len;	/* record of each pipe (0 on the others) */
};

/* LX_SEC_EVENTFDS */
struct lx_eventfd {
	lx_le32 fd;
	lx_le32 flags;		/* LX_EFD_* */
	lx_le64 count;
};
#define LX_EFD_SEMAPHORE	(1u << 0)

/* LX_SEC_TIMERFDS */
struct lx_timerfd {
	lx_le32 fd;
	lx_le32 clockid;
	lx_le32 settime_flags;	/* TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET */
	lx_le32 reserved;
	lx_le64 ticks;		/* expirations not yet read */
	lx_le64 value_ns;	/* time to the next expiry, 0: disarmed */
	lx_le64 interval_ns;
	lx_le64 now_ns;		/* the timer's clock at dump (absolute timers) */
};

/* LX_SEC_SIGNALFDS */
struct lx_signalfd {
	lx_le32 fd;
	lx_le32 reserved;
	lx_le64 mask;		/* signals 1..64, bit signo - 1 */
};

/* LX_SEC_EPOLL: fd `tfd` is registered in epoll fd `fd` */
struct lx_epoll_tfd {
	lx_le32 fd;
	lx_le32 tfd;
	lx_le32 events;		/* EPOLLIN ... EPOLLET EPOLLONESHOT */
	lx_le32 reserved;
	lx_le64 data;
};

/* LX_SEC_INOTIFY */
struct lx_inotify_watch {
	lx_le32 fd;
	lx_le32 wd;		/* restored with the same number */
	lx_le32 mask;		/* as inotify_add_watch takes it */
	lx_le32 path_off;	/* strtab: the watched inode's path at dump */
	lx_le64 ino, dev;	/* its identity, checked at restore */
};

/* LX_SEC_SOCKETS */
struct lx_socket {
	lx_le32 fd;
	lx_le32 family;		/* AF_UNIX, AF_INET, AF_INET6 */
	lx_le32 type;		/* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	lx_le32 protocol;
	lx_le32 state;		/* LX_SK_* */
	lx_le32 peer_fd;	/* LX_SK_PAIR: the fd of the other end */
	lx_le32 backlog;	/* LX_SK_LISTEN */
	lx_le32 shutdown;	/* LX_SHUT_* already done on this end */
	lx_le32 opts;		/* LX_SKO_* */
	lx_le32 sndbuf;		/* as getsockopt reports it (doubled) */
	lx_le32 rcvbuf;
	lx_le32 addr_len;	/* bound name, 0: unbound */
	lx_u8	addr[128];
	lx_le32 peer_len;	/* LX_SK_CONNECTED: the peer's address */
	lx_le32 peer_share;	/* LX_SK_TREE_PAIR: share_id (LX_SEC_FDS) of the
				 * peer's description, held by another process */
	lx_u8	peer[128];
	lx_le64 vfs_ino;	/* unix: the socket file bound to, to tell it */
	lx_le64 vfs_dev;	/* from another file at that path at restore */
	lx_le64 data_off;	/* bytes queued for reading on this end, in */
	lx_le64 data_len;	/* FDDATA; datagrams as le32 length + bytes */
};
enum lx_sk_state {
	LX_SK_UNBOUND = 1,	/* socket() only */
	LX_SK_BOUND,		/* bound, neither listening nor connected */
	LX_SK_LISTEN,
	LX_SK_PAIR,		/* connected to another socket of the process */
	LX_SK_CONNECTED,	/* datagram socket connected to peer[] */
	LX_SK_TREE_PAIR,	/* connected to a socket of the tree held by another
				 * process (peer_share); this end's queue is saved
				 * (data_len) by one of its holders only */
	LX_SK_PEER_GONE,	/* connected outside the tree, --allow-leak=socket:
				 * a pair whose other end is closed at restore */
	LX_SK_TCP_EST,		/* an established TCP connection from addr[] to
				 * peer[] (--tcp-established): its lx_tcp record
				 * in LX_SEC_TCP of the same task */
};
#define LX_SHUT_RD		(1u << 0)
#define LX_SHUT_WR		(1u << 1)
#define LX_SKO_REUSEADDR	(1u << 0)
#define LX_SKO_REUSEPORT	(1u << 1)
#define LX_SKO_V6ONLY		(1u << 2)
#define LX_SKO_PASSCRED		(1u << 3)
#define LX_SKO_KEEPALIVE	(1u << 4)
#define LX_SKO_NODELAY		(1u << 5)

/*
 * LX_SEC_TCP, per task: one record per LX_SK_TCP_EST socket, what the
 * kernel's TCP repair mode reads and writes back (see tools/cryo/tcp.c).
 * Sequence numbers are those after the last byte of each queue: the send
 * queue holds the bytes from snd_seq - sndq_len (not yet acknowledged by
 * the peer, the last `unsent` of them never sent), the receive queue those
 * from rcv_seq - rcvq_len (not yet read by the process).
 */
struct lx_tcp {
	lx_le32 fd;
	lx_le32 flags;		/* LX_TCPF_*: options the two ends agreed on */
	lx_le32 snd_seq;	/* TCP_QUEUE_SEQ of the send queue (write_seq) */
	lx_le32 rcv_seq;	/* ... of the receive queue (rcv_nxt) */
	lx_le32 mss;		/* TCP_MAXSEG in repair mode (mss_clamp) */
	lx_le32 snd_wscale;	/* LX_TCPF_WSCALE: window scales */
	lx_le32 rcv_wscale;
	lx_le32 timestamp;	/* TCP_TIMESTAMP: the connection's clock */
	lx_le32 snd_wl1;	/* TCP_REPAIR_WINDOW */
	lx_le32 snd_wnd;
	lx_le32 max_window;
	lx_le32 rcv_wnd;
	lx_le32 rcv_wup;
	lx_le32 unsent;		/* SIOCOUTQNSD: tail of the send queue never sent */
	lx_le64 sndq_off;	/* the send queue's bytes, in LX_SEC_FDDATA */
	lx_le64 sndq_len;
	lx_le64 rcvq_off;	/* the receive queue's bytes, in LX_SEC_FDDATA */
	lx_le64 rcvq_len;
};
#define LX_TCPF_WSCALE		(1u << 0)
#define LX_TCPF_SACK		(1u << 1)
#define LX_TCPF_TIMESTAMPS	(1u << 2)
#define LX_TCPF_KNOWN		((1u << 3) - 1)

/* LX_SEC_LOCKS */
struct lx_lock {
	lx_le32 fd;
	lx_le32 kind;		/* LX_LOCK_* */
	lx_le32 type;		/* LX_LOCK_READ or LX_LOCK_WRITE */
	lx_le32 reserved;
	lx_le64 start;
	lx_le64 len;		/* 0: to the end of the file, and beyond */
};
enum lx_lock_kind {
	LX_LOCK_FLOCK = 1,	/* flock(2) */
	LX_LOCK_POSIX,		/* fcntl(F_SETLK), owned by the process */
	LX_LOCK_OFD,		/* fcntl(F_OFD_SETLK), owned by the open file */
};
#define LX_LOCK_READ	1
#define LX_LOCK_WRITE	2

/*
 * LX_SEC_OPTIONS: one record, choices the user made at dump time that the
 * restore must honour. Absent means all zero.
 */
struct lx_options {
	lx_le32 flags;		/* LX_OPT_* */
	lx_le32 allow_leak;	/* LX_LEAK_* kinds accepted with --allow-leak */
	lx_le64 mono_ns;	/* LX_OPT_CLOCKS: the tree's CLOCK_MONOTONIC and */
	lx_le64 boot_ns;	/* CLOCK_BOOTTIME at the freeze, as it saw them */
	lx_le64 reserved[1];
};
#define LX_OPT_SHELL_JOB	(1u << 0)	/* --shell-job: the tree's terminal
						 * and session were the user's */
#define LX_OPT_CLOCKS		(1u << 1)	/* mono_ns and boot_ns are set: the
						 * restore can make them continue */
#define LX_OPT_TCP_ESTABLISHED	(1u << 2)	/* --tcp-established: the image
						 * may hold LX_SEC_TCP connections */
#define LX_OPT_KNOWN		(LX_OPT_SHELL_JOB | LX_OPT_CLOCKS | LX_OPT_TCP_ESTABLISHED)
#define LX_LEAK_PIPE		(1u << 0)
#define LX_LEAK_FILE		(1u << 1)	/* an open file description */
#define LX_LEAK_SHM		(1u << 2)	/* shared memory (SysV, shared anon, memfd) */
#define LX_LEAK_IPC		(1u << 3)	/* SysV semaphores, message queues */
#define LX_LEAK_SOCKET		(1u << 4)
#define LX_LEAK_NS		(1u << 5)	/* a namespace */
#define LX_LEAK_ALL		((1u << 6) - 1)

/*
 * LX_SEC_PACKED_PAGES: the pages of a swapfile snapshot carried inside the
 * image (cryo pack, cryo -p PID -f -), so that it restores with no swapfile.
 * The image's other sections are unchanged: page runs keep their swapfile
 * slot numbers and LX_SEC_SWAP still names where the pages came from; a
 * reader that finds this section takes slots from here instead.
 *
 * Layout, offsets from the start of the section:
 *   struct lx_packed_hdr at 0;
 *   nruns struct lx_packed_run at runs_off: ascending, disjoint slot ranges,
 *       each naming the index of its first page in the data area;
 *   npages le64 XXH3-64 page checksums at sums_off, in data order;
 *   npages 4 KiB pages at data_off, data_off % 8 == 0.
 * The section table's crc covers only the directory, bytes [0, data_off):
 * each page is covered by its own checksum instead, so that a damaged page
 * is named (address, slot) at restore and the CRC is not computed twice
 * over the bulk of the image. The image's own LX_SEC_PAGESUMS still apply.
 */
#define LX_PACKED_MAGIC		"CRYOPACK"
#define LX_PACKED_VERSION	1

struct lx_packed_hdr {
	char	magic[8];	/* LX_PACKED_MAGIC */
	lx_le32 version;	/* LX_PACKED_VERSION */
	lx_le32 hdr_size;	/* sizeof(struct lx_packed_hdr) or more */
	lx_le64 nruns;
	lx_le64 npages;
	lx_le64 runs_off;	/* from the section start */
	lx_le64 sums_off;
	lx_le64 data_off;	/* = bytes covered by the section crc */
	lx_le64 data_len;	/* npages * LX_CKPT_PAGE_SIZE */
	lx_u8	uuid[16];	/* the swapfile the pages came from */
	lx_le64 snapshot;	/* and its snapshot (as LX_SEC_SWAP) */
	lx_le64 slots_end;	/* slots the packed ranges may use */
};

struct lx_packed_run {
	lx_le64 slot;		/* first swapfile slot of the range */
	lx_le64 npages;
	lx_le64 index;		/* its first page in the data area */
};

/*
 * How many leading bytes of a packed-pages section its crc covers: the
 * directory, as its header says, or the whole section when the header is
 * not readable (so that a damaged header fails the CRC check).
 */
static inline lx_le64 lx_packed_crc_len(const void *sec, lx_le64 len)
{
	/* byte by byte: callers may not have checked the alignment yet */
	const lx_u8 *b = (const lx_u8 *)sec + offsetof(struct lx_packed_hdr, data_off);
	lx_le64 d = 0;
	int i;

	if (len < sizeof(struct lx_packed_hdr))
		return len;
	for (i = 7; i >= 0; i--)
		d = (d << 8) | b[i];
	return d <= len ? d : len;
}

/*
 * LX_SEC_TTYS, global: the terminals of the tree, one lx_tty each; fds and
 * controlling terminals refer to them by index. Per task: one lx_tty_fd
 * per LX_FD_PTY fd.
 */
struct lx_tty {
	lx_le32 kind;		/* LX_TTY_* */
	lx_le32 index;		/* LX_TTY_PTY: pts number at dump (informative) */
	lx_le32 flags;		/* LX_TTYF_* */
	lx_le32 sid;		/* session (its leader is in the tree) whose
				 * controlling terminal this is; 0: none */
	lx_le32 fg_pgid;	/* that session's foreground process group, a
				 * group of the tree; 0: none, or outside */
	lx_le32 iflag, oflag, cflag, lflag;	/* termios as tcgetattr gives it */
	lx_le16 rows, cols, xpixel, ypixel;	/* TIOCGWINSZ */
	lx_u8	line;
	lx_u8	cc[32];
	lx_u8	reserved[7];
	lx_le32 reserved2;
};
enum lx_tty_kind {
	LX_TTY_PTY = 1,		/* a pty pair whose master is held in the tree */
	LX_TTY_SHELL,		/* --shell-job: the user's terminal, outside the
				 * tree; only sid = 0 and fg_pgid are meaningful */
};
#define LX_TTYF_LOCKED		(1u << 0)	/* TIOCGPTLCK: slave locked */
#define LX_TTYF_PACKET		(1u << 1)	/* TIOCPKT packet mode on the master */
#define LX_TTYF_TERMIOS		(1u << 2)	/* termios and window size are valid */

struct lx_tty_fd {
	lx_le32 fd;
	lx_le32 tty;		/* index into the global LX_SEC_TTYS */
	lx_le32 end;		/* LX_TTY_MASTER or LX_TTY_SLAVE */
	lx_le32 reserved;
};
#define LX_TTY_MASTER	1
#define LX_TTY_SLAVE	2

/*
 * LX_SEC_SCM_RIGHTS, per task: one record per file in flight (SCM_RIGHTS)
 * in the receive queue of a unix socket pair of the task, in queue order;
 * the records of one message are consecutive and share data_at.
 */
struct lx_scm_fd {
	lx_le32 fd;		/* the socket whose receive queue holds it */
	lx_le32 kind;		/* LX_SCM_* */
	lx_le64 data_at;	/* its message in the socket's queued data: stream:
				 * offset of the message's first byte; datagram:
				 * offset of its le32 length */
	lx_le64 data_len;	/* stream: the message's length; datagram: 0 */
	lx_le32 ref_fd;		/* LX_SCM_DUP, LX_SCM_PIPE: a fd of the task */
	lx_le32 flags;		/* O_* of the file in flight */
	lx_le64 pos;		/* LX_SCM_FILE: file offset */
	lx_le64 dev, ino;	/* LX_SCM_FILE: identity, checked at restore */
	lx_le32 path_off;	/* LX_SCM_FILE: strtab */
	lx_le32 reserved;
};
enum lx_scm_kind {
	LX_SCM_DUP = 1,		/* the open file description of ref_fd */
	LX_SCM_FILE,		/* a regular file or directory, reopened by path */
	LX_SCM_PIPE,		/* a new description of the pipe held at ref_fd */
};

/*
 * SysV IPC objects of the tree (LX_SEC_SYSV_*, global). Variable-size
 * contents (segment bytes, semaphore values, queued messages) live in the
 * global LX_SEC_FDDATA blob at data_off/data_len. Restored with the same
 * ids through /proc/sys/kernel/{shm,sem,msg}_next_id.
 */
struct lx_sysv_perm {
	lx_le32 id;		/* shmid/semid/msqid as the kernel gave it */
	lx_le32 key;		/* 0: IPC_PRIVATE */
	lx_le32 uid, gid;	/* owner */
	lx_le32 cuid, cgid;	/* creator */
	lx_le32 mode;		/* permission bits, plus SHM_DEST/SHM_LOCKED */
	lx_le32 flags;		/* LX_IPC_* */
};
#define LX_IPC_LEAKED	(1u << 0)	/* also used outside the tree (--allow-leak) */

struct lx_sysv_shm {
	struct lx_sysv_perm perm;
	lx_le64 size;		/* shm_segsz */
	lx_le64 data_off;	/* contents up to the last non-zero page; */
	lx_le64 data_len;	/* the rest of the segment is zero */
	lx_le32 cpid, lpid;	/* at dump, for information */
};

struct lx_sysv_sem {
	struct lx_sysv_perm perm;
	lx_le32 nsems;
	lx_le32 reserved;
	lx_le64 data_off;	/* nsems le32 values (semval) */
	lx_le64 data_len;
};

struct lx_sysv_msg {
	struct lx_sysv_perm perm;
	lx_le64 qbytes;		/* msg_qbytes */
	lx_le32 qnum;		/* messages, in queue order, in data: */
	lx_le32 reserved;	/* le64 mtype, le64 length, bytes, pad to 8 */
	lx_le64 data_off;
	lx_le64 data_len;
};

/*
 * LX_SEC_SHARED_ANON, global: one shared anonymous object (its pages are
 * in the PAGEMAP of its mappings: each page of the object once, in the
 * first mapping, in LX_SEC_TASKS then address order, that covers it).
 * The first task that maps it creates it at restore; later ones map the
 * same object.
 */
struct lx_shared_anon {
	lx_le64 size;		/* bytes (the object's i_size) */
	lx_le64 ino;		/* shmem inode at dump, for information */
	lx_le32 first_task;	/* index in LX_SEC_TASKS of its first mapper */
	lx_le32 flags;		/* LX_SHANON_* */
	lx_le32 nmaps;		/* mappings in the tree, for information */
	lx_le32 reserved;
};
#define LX_SHANON_LEAKED	(1u << 0)	/* also mapped outside the tree (--allow-leak) */

_Static_assert(sizeof(struct lx_ckpt_header) == LX_CKPT_HEADER_SIZE,
	       "header must fill exactly BINPRM_BUF_SIZE");
_Static_assert(sizeof(LX_CKPT_PRELUDE) < LX_CKPT_PRELUDE_LEN,
	       "prelude line must leave room for its newline");
_Static_assert(sizeof(struct lx_ckpt_section) == 32, "section entry size");
_Static_assert(sizeof(struct lx_vma) % 8 == 0, "vma record alignment");
_Static_assert(sizeof(struct lx_fd) % 8 == 0, "fd record alignment");
_Static_assert(sizeof(struct lx_tcp) == 88, "tcp record size");
_Static_assert(sizeof(struct lx_socket) % 8 == 0, "socket record alignment");
_Static_assert(sizeof(struct lx_timerfd) % 8 == 0, "timerfd record alignment");
_Static_assert(sizeof(struct lx_inotify_watch) % 8 == 0, "inotify record alignment");
_Static_assert(sizeof(struct lx_core) % 8 == 0, "core record alignment");
_Static_assert(sizeof(struct lx_thread) % 8 == 0, "thread record alignment");
_Static_assert(sizeof(struct lx_packed_hdr) == 96, "packed pages header");
_Static_assert(sizeof(struct lx_packed_run) == 24, "packed run alignment");
_Static_assert(sizeof(struct lx_tty) % 8 == 0, "tty record alignment");
_Static_assert(sizeof(struct lx_scm_fd) % 8 == 0, "scm_rights record alignment");
_Static_assert(sizeof(struct lx_tty_fd) % 8 == 0, "tty fd record alignment");
_Static_assert(sizeof(struct lx_sysv_shm) % 8 == 0, "sysv shm record alignment");
_Static_assert(sizeof(struct lx_sysv_sem) % 8 == 0, "sysv sem record alignment");
_Static_assert(sizeof(struct lx_sysv_msg) % 8 == 0, "sysv msg record alignment");
_Static_assert(sizeof(struct lx_options) % 8 == 0, "options record alignment");
_Static_assert(sizeof(struct lx_shared_anon) % 8 == 0, "shared anon record alignment");

/* Validator error codes (negative), stable for messages and tests. */
enum lx_ckpt_err {
	LX_OK = 0,
	LX_E_SHORT = 1,		/* buffer shorter than the header */
	LX_E_MAGIC,
	LX_E_ABI,
	LX_E_VERSION,
	LX_E_HEADER_SIZE,
	LX_E_ARCH,
	LX_E_PAGE_SIZE,
	LX_E_HEADER_CRC,
	LX_E_TABLE_BOUNDS,
	LX_E_TABLE_CRC,
	LX_E_EXE_PATH,
	LX_E_BUILD_ID,
	LX_E_SECTION_BOUNDS,
	LX_E_SECTION_ALIGN,
	LX_E_SECTION_RECORD,
	LX_E_SECTION_TYPE,
	LX_E_PRELUDE,
	LX_E_MAX
};

static inline const char *lx_ckpt_strerror(int err)
{
	static const char *const msg[LX_E_MAX] = {
		[LX_OK] = "ok",
		[LX_E_SHORT] = "file shorter than the 256-byte header",
		[LX_E_MAGIC] = "not a cryo image (no LX_CKPT magic)",
		[LX_E_ABI] = "unknown ABI identifier",
		[LX_E_VERSION] = "unsupported major version",
		[LX_E_HEADER_SIZE] = "bad header size",
		[LX_E_ARCH] = "image is for another architecture",
		[LX_E_PAGE_SIZE] = "image page size differs",
		[LX_E_HEADER_CRC] = "header checksum mismatch",
		[LX_E_TABLE_BOUNDS] = "section table outside the file",
		[LX_E_TABLE_CRC] = "section table checksum mismatch",
		[LX_E_EXE_PATH] = "executable path outside the file or bad",
		[LX_E_BUILD_ID] = "bad build-id length",
		[LX_E_SECTION_BOUNDS] = "section outside the file",
		[LX_E_SECTION_ALIGN] = "section misaligned",
		[LX_E_SECTION_RECORD] = "section length not a multiple of its record size",
		[LX_E_SECTION_TYPE] = "unknown section type",
		[LX_E_PRELUDE] = "bad prelude line",
	};

	if (err < 0)
		err = -err;
	if (err >= LX_E_MAX || !msg[err])
		return "unknown error";
	return msg[err];
}

/* CRC32C (Castagnoli), bitwise-reflected, table-free: used only on the
 * header and small tables here; cryo has a faster one for bulk data. */
static inline lx_le32 lx_crc32c(lx_le32 crc, const void *buf, lx_le64 len)
{
	const lx_u8 *p = (const lx_u8 *)buf;
	int k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* crc32c of a header with header_crc taken as zero */
static inline lx_le32 lx_ckpt_header_crc(const struct lx_ckpt_header *h)
{
	static const lx_u8 zero[4];
	const lx_u8 *p = (const lx_u8 *)h;
	lx_le64 at = (lx_le64)offsetof(struct lx_ckpt_header, header_crc);
	lx_le32 crc;

	crc = lx_crc32c(0, p, at);
	crc = lx_crc32c(crc, zero, 4);
	return lx_crc32c(crc, p + at + 4, LX_CKPT_HEADER_SIZE - at - 4);
}

/* a + b <= limit, without overflow */
static inline int lx_range_ok(lx_le64 a, lx_le64 b, lx_le64 limit)
{
	return a <= limit && b <= limit - a;
}

/*
 * Check the 256-byte header against the file size. On success the caller
 * may trust: the table lies inside the file, the exe path lies inside the
 * file with 1..LX_CKPT_PATH_MAX-1 bytes, the build-id length fits.
 * It does not read the table or the path; see lx_ckpt_validate_table().
 */
static inline int lx_ckpt_validate_header(const void *buf, lx_le64 buf_len,
					  lx_le64 file_size)
{
	const struct lx_ckpt_header *h = (const struct lx_ckpt_header *)buf;
	lx_le64 table_off, table_len, nsec, entsz, path_off, path_len;
	int i, nl = -1;

	if (buf_len < LX_CKPT_HEADER_SIZE || file_size < LX_CKPT_HEADER_SIZE)
		return -LX_E_SHORT;
	for (i = 0; i < LX_CKPT_MAGIC_LEN; i++)
		if (h->prelude[i] != LX_CKPT_MAGIC[i])
			return -LX_E_MAGIC;
	if (lx_le32_to_cpu(h->abi_id) != LX_CKPT_ABI_ID)
		return -LX_E_ABI;
	if (lx_le16_to_cpu(h->version_major) != LX_CKPT_VERSION_MAJOR)
		return -LX_E_VERSION;
	for (i = 0; i < LX_CKPT_PRELUDE_LEN; i++) {
		if (h->prelude[i] == '\n') {
			nl = i;
			break;
		}
		if (h->prelude[i] == '\0')
			return -LX_E_PRELUDE;
	}
	if (nl < 0)
		return -LX_E_PRELUDE;
	if (lx_le32_to_cpu(h->header_size) != LX_CKPT_HEADER_SIZE)
		return -LX_E_HEADER_SIZE;
	if (lx_le32_to_cpu(h->arch) != LX_CKPT_ARCH_X86_64)
		return -LX_E_ARCH;
	if (lx_le32_to_cpu(h->page_size) != LX_CKPT_PAGE_SIZE)
		return -LX_E_PAGE_SIZE;
	if (lx_ckpt_header_crc(h) != lx_le32_to_cpu(h->header_crc))
		return -LX_E_HEADER_CRC;
	if (lx_le64_to_cpu(h->image_size) != file_size)
		return -LX_E_TABLE_BOUNDS;

	nsec = lx_le32_to_cpu(h->section_count);
	entsz = lx_le32_to_cpu(h->section_entry_size);
	table_off = lx_le64_to_cpu(h->section_table_offset);
	if (nsec == 0 || nsec > LX_CKPT_MAX_SECTIONS ||
	    entsz < sizeof(struct lx_ckpt_section) || entsz > 4096 ||
	    entsz % LX_CKPT_ALIGN)
		return -LX_E_TABLE_BOUNDS;
	table_len = nsec * entsz;
	if (table_off < LX_CKPT_HEADER_SIZE || table_off % LX_CKPT_ALIGN ||
	    !lx_range_ok(table_off, table_len, file_size))
		return -LX_E_TABLE_BOUNDS;

	path_off = lx_le64_to_cpu(h->exe_path_offset);
	path_len = lx_le32_to_cpu(h->exe_path_len);
	if (path_len == 0 || path_len >= LX_CKPT_PATH_MAX ||
	    path_off < LX_CKPT_HEADER_SIZE ||
	    !lx_range_ok(path_off, path_len, file_size))
		return -LX_E_EXE_PATH;
	if (lx_le32_to_cpu(h->exe_build_id_len) > LX_CKPT_BUILD_ID_MAX)
		return -LX_E_BUILD_ID;
	return 0;
}

/*
 * Check the section table (read from the file at section_table_offset,
 * table_len = section_count * section_entry_size bytes) against the header.
 * On success every section lies inside the file, is 8-aligned, and its
 * length is a multiple of its record size. Section CRCs are checked by the
 * reader when it reads a section (the kernel reads only what it needs).
 * If bad_index is not NULL, it receives the index of the failing entry.
 */
static inline int lx_ckpt_validate_table(const void *hdr_buf,
					 const void *table, lx_le64 table_len,
					 lx_le64 file_size, lx_le32 *bad_index)
{
	const struct lx_ckpt_header *h = (const struct lx_ckpt_header *)hdr_buf;
	lx_le64 nsec = lx_le32_to_cpu(h->section_count);
	lx_le64 entsz = lx_le32_to_cpu(h->section_entry_size);
	const lx_u8 *t = (const lx_u8 *)table;
	lx_le64 i;

	if (table_len != nsec * entsz)
		return -LX_E_TABLE_BOUNDS;
	if (lx_crc32c(0, table, table_len) != lx_le32_to_cpu(h->table_crc))
		return -LX_E_TABLE_CRC;
	for (i = 0; i < nsec; i++) {
		const struct lx_ckpt_section *s =
			(const struct lx_ckpt_section *)(t + i * entsz);
		lx_le64 off = lx_le64_to_cpu(s->offset);
		lx_le64 len = lx_le64_to_cpu(s->length);
		lx_le32 rs = lx_le32_to_cpu(s->record_size);
		lx_le32 type = lx_le32_to_cpu(s->type);

		if (bad_index)
			*bad_index = (lx_le32)i;
		/* unknown types from newer minor versions are skipped by
		 * readers, but type 0 is never valid */
		if (type == 0)
			return -LX_E_SECTION_TYPE;
		if (off < LX_CKPT_HEADER_SIZE || !lx_range_ok(off, len, file_size))
			return -LX_E_SECTION_BOUNDS;
		if (off % LX_CKPT_ALIGN)
			return -LX_E_SECTION_ALIGN;
		if (rs && len % rs)
			return -LX_E_SECTION_RECORD;
	}
	return 0;
}

static inline const char *lx_section_name(lx_le32 type)
{
	static const char *const names[LX_SEC_TYPE_MAX] = {
		[LX_SEC_TASKS] = "tasks", [LX_SEC_SWAP] = "swap",
		[LX_SEC_STRTAB] = "strtab", [LX_SEC_CORE] = "core",
		[LX_SEC_MM] = "mm", [LX_SEC_AUXV] = "auxv",
		[LX_SEC_ARGV] = "argv", [LX_SEC_ENVP] = "envp",
		[LX_SEC_VMAS] = "vmas", [LX_SEC_PAGEMAP] = "pagemap",
		[LX_SEC_PAGESUMS] = "pagesums", [LX_SEC_THREADS] = "threads",
		[LX_SEC_GPREGS] = "gpregs", [LX_SEC_XSTATE] = "xstate",
		[LX_SEC_FDS] = "fds", [LX_SEC_RLIMITS] = "rlimits",
		[LX_SEC_SIGACTS] = "sigacts", [LX_SEC_ITIMERS] = "itimers",
		[LX_SEC_SIGINFO] = "siginfo", [LX_SEC_POSIX_TIMERS] = "posix_timers",
		[LX_SEC_FDDATA] = "fddata", [LX_SEC_PIPES] = "pipes",
		[LX_SEC_EVENTFDS] = "eventfds", [LX_SEC_TIMERFDS] = "timerfds",
		[LX_SEC_SIGNALFDS] = "signalfds", [LX_SEC_EPOLL] = "epoll",
		[LX_SEC_INOTIFY] = "inotify", [LX_SEC_SOCKETS] = "sockets",
		[LX_SEC_LOCKS] = "locks", [LX_SEC_SYSV_SHM] = "sysv_shm",
		[LX_SEC_SYSV_SEM] = "sysv_sem", [LX_SEC_SYSV_MSG] = "sysv_msg",
		[LX_SEC_TTYS] = "ttys", [LX_SEC_OPTIONS] = "options",
		[LX_SEC_PACKED_PAGES] = "packed_pages",
		[LX_SEC_SCM_RIGHTS] = "scm_rights",
		[LX_SEC_SHARED_ANON] = "shared_anon", [LX_SEC_TCP] = "tcp",
	};

	if (type < LX_SEC_TYPE_MAX && names[type])
		return names[type];
	return "unknown";
}

#endif /* LX_CKPT_H */
