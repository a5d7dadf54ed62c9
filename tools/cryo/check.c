/* cryo check [--json]: what this kernel, with these privileges, lets cryo
 * do, found by trying each kernel feature rather than by reading version
 * numbers or config files (distributions backport and disable features;
 * a container may forbid what the kernel has).
 *
 * Each probe is side-effect free for the rest of the system: the ptrace
 * and clone3 probes act on throw-away children of cryo itself, and
 * nothing persistent (sysctls, binfmt entries) is written. The probes
 * then answer, per cryo feature, "available" or "not available, because
 * ..., fix: ...". The exit status is 0 when dump and restore work here. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "injsafe.h"
#include "progress.h"
#include "ptrace.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define CHECK_SCHEMA_VERSION 1

/* Newer than the uapi headers this builds against (Debian 12: 6.1). */
#ifndef PAGEMAP_SCAN
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct page_region {
	uint64_t start, end, categories;
};
#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT	(1 << 3)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC	(1 << 15)
#endif
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define CAP_SYS_PTRACE_BIT		19
#define CAP_SYS_ADMIN_BIT		21
#define CAP_SYS_RESOURCE_BIT		24
#define CAP_CHECKPOINT_RESTORE_BIT	40
#define PM_SOFT_DIRTY			(1ull << 55)

enum probe_id {
	P_PTRACE, P_XSTATE, P_RSEQ, P_VM_READV, P_PIDFD_OPEN, P_PIDFD_GETFD,
	P_CLONE3_SET_TID, P_NS_LAST_PID, P_CAP_CR, P_MM_MAP,
	P_UFFD, P_UFFD_KERNEL, P_UFFD_WP, P_UFFD_MINOR, P_UFFD_WP_ASYNC,
	P_PAGEMAP_SCAN, P_SOFT_DIRTY,
	P_BINFMT_CR, P_BINFMT_MISC, P_BINFMT_ENTRY,
	P_IPC_IDS, P_TIMENS, P_VDSO, P_CAP_RESOURCE, P_PIPE_MAX, P_YAMA, P_WAY_BACK,
	P_MAX
};

/* ok: 1 yes, 0 no; detail says what was found or why not */
struct probe {
	const char *id, *name;
	int ok;
	char detail[320];
};

static struct probe pr[P_MAX] = {
	[P_PTRACE] = { "ptrace", "ptrace seize + interrupt", 0, "" },
	[P_XSTATE] = { "ptrace_xstate", "ptrace xstate regset", 0, "" },
	[P_RSEQ] = { "ptrace_rseq", "ptrace rseq configuration", 0, "" },
	[P_VM_READV] = { "process_vm_readv", "process_vm_readv", 0, "" },
	[P_PIDFD_OPEN] = { "pidfd_open", "pidfd_open", 0, "" },
	[P_PIDFD_GETFD] = { "pidfd_getfd", "pidfd_getfd", 0, "" },
	[P_CLONE3_SET_TID] = { "clone3_set_tid", "clone3 set_tid", 0, "" },
	[P_NS_LAST_PID] = { "ns_last_pid", "ns_last_pid", 0, "" },
	[P_CAP_CR] = { "cap_checkpoint_restore", "CAP_CHECKPOINT_RESTORE/SYS_ADMIN", 0, "" },
	[P_MM_MAP] = { "pr_set_mm_map", "prctl PR_SET_MM_MAP", 0, "" },
	[P_UFFD] = { "userfaultfd", "userfaultfd", 0, "" },
	[P_UFFD_KERNEL] = { "userfaultfd_kernel_faults", "userfaultfd kernel faults", 0, "" },
	[P_UFFD_WP] = { "userfaultfd_wp", "userfaultfd write-protect", 0, "" },
	[P_UFFD_MINOR] = { "userfaultfd_minor", "userfaultfd minor faults", 0, "" },
	[P_UFFD_WP_ASYNC] = { "userfaultfd_wp_async", "userfaultfd async write-protect", 0, "" },
	[P_PAGEMAP_SCAN] = { "pagemap_scan", "PAGEMAP_SCAN ioctl", 0, "" },
	[P_SOFT_DIRTY] = { "soft_dirty", "soft-dirty bits", 0, "" },
	[P_BINFMT_CR] = { "binfmt_cr", "binfmt_cr module", 0, "" },
	[P_BINFMT_MISC] = { "binfmt_misc", "binfmt_misc mounted", 0, "" },
	[P_BINFMT_ENTRY] = { "binfmt_misc_entry", "binfmt_misc 'cryo' entry", 0, "" },
	[P_IPC_IDS] = { "ipc_next_id", "SysV IPC *_next_id", 0, "" },
	[P_TIMENS] = { "time_namespace", "time namespaces", 0, "" },
	[P_VDSO] = { "vdso", "vdso layout", 0, "" },
	[P_CAP_RESOURCE] = { "cap_sys_resource", "CAP_SYS_RESOURCE", 0, "" },
	[P_PIPE_MAX] = { "pipe_max_size", "pipe-max-size", 0, "" },
	[P_YAMA] = { "yama_ptrace_scope", "Yama ptrace scope", 0, "" },
	[P_WAY_BACK] = { "injection_way_back", "injected state recovers", 0, "" },
};

static void __attribute__((format(printf, 3, 4))) set(enum probe_id p, int ok, const char *fmt, ...)
{
	va_list ap;

	pr[p].ok = ok;
	va_start(ap, fmt);
	vsnprintf(pr[p].detail, sizeof(pr[p].detail), fmt, ap);
	va_end(ap);
}

/* first line of a small file, without its newline; NULL if unreadable */
static char *read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	char *r;

	if (!f)
		return NULL;
	r = fgets(buf, (int)len, f);
	fclose(f);
	if (r)
		buf[strcspn(buf, "\n")] = 0;
	return r;
}

static uint64_t cap_eff(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long v = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int has_cap(int bit)
{
	return (cap_eff() >> bit) & 1;
}

/* ---- ptrace, process_vm_readv, pidfd: on a throw-away child ---- */

static const volatile uint64_t probe_marker = 0x63727970726f6265ull;	/* "cryprobe" */

/* The child inherits the pipe whose fd the pidfd_getfd probe copies. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* never outlive cryo, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return pid;
}

static void reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
		;
}

static void probe_process_vm(pid_t pid)
{
	uint64_t got = 0;
	struct iovec l = { &got, sizeof(got) };
	struct iovec r = { (void *)&probe_marker, sizeof(got) };
	ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);

	if (n == (ssize_t)sizeof(got) && got == probe_marker)
		set(P_VM_READV, 1, "reads a child's memory");
	else
		set(P_VM_READV, 0, "%s", n < 0 ? strerror(errno) : "short or wrong read");
}

static void probe_pidfd(pid_t pid, int fd_in_child)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), got;

	if (pfd < 0) {
		set(P_PIDFD_OPEN, 0, "%s%s", strerror(errno),
		    errno == ENOSYS ? " (needs Linux 5.3)" : "");
		set(P_PIDFD_GETFD, 0, "needs pidfd_open");
		return;
	}
	set(P_PIDFD_OPEN, 1, "works");
	got = (int)syscall(SYS_pidfd_getfd, pfd, fd_in_child, 0);
	if (got >= 0) {
		set(P_PIDFD_GETFD, 1, "copies a child's fd");
		close(got);
	} else {
		set(P_PIDFD_GETFD, 0, "%s%s", strerror(errno),
		    errno == ENOSYS ? " (needs Linux 5.6)" : "");
	}
	close(pfd);
}

static void probe_regs(pid_t pid)
{
	struct user_regs_struct regs;
	size_t cap = 1 << 16;
	uint8_t *xs = malloc(cap);
	struct iovec iov = { xs, cap };
	struct {
		uint64_t ptr;
		uint32_t size, sig, flags, pad;
	} rseq;
	long r;

	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0) {
		set(P_PTRACE, 0, "PTRACE_GETREGS: %s", strerror(errno));
		free(xs);
		return;
	}
	if (xs && ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0) {
		uint64_t xcr0 = 0;

		/* the kernel puts XCR0 in the fxsave area's software bytes */
		if (iov.iov_len >= 472)
			memcpy(&xcr0, xs + 464, 8);
		set(P_XSTATE, 1, "%zu bytes, xcr0 %#llx", iov.iov_len, (unsigned long long)xcr0);
	} else {
		set(P_XSTATE, 0, "PTRACE_GETREGSET NT_X86_XSTATE: %s", strerror(errno));
	}
	free(xs);
	r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(rseq), &rseq);
	if (r == (long)sizeof(rseq))
		set(P_RSEQ, 1, "works");
	else
		set(P_RSEQ, 0, "%s (needs Linux 5.13; rseq areas are then not restored)",
		    r < 0 ? strerror(errno) : "short answer");
}

static void probe_ptrace(void)
{
	int p[2], st;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC)) {
		set(P_PTRACE, 0, "pipe: %s", strerror(errno));
		return;
	}
	pid = spawn_sleeper();
	if (pid < 0) {
		set(P_PTRACE, 0, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	probe_process_vm(pid);
	probe_pidfd(pid, p[0]);
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0) {
		set(P_PTRACE, 0, "PTRACE_SEIZE: %s%s", strerror(errno),
		    errno == EPERM ? " (Yama, a seccomp filter or an LSM forbids it)" : "");
	} else if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		set(P_PTRACE, 0, "PTRACE_INTERRUPT: %s", strerror(errno));
	} else if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st) ||
		   (st >> 16) != PTRACE_EVENT_STOP) {
		set(P_PTRACE, 0, "the child did not stop for PTRACE_INTERRUPT (status %#x)", st);
	} else {
		set(P_PTRACE, 1, "works on a child");
		probe_regs(pid);
	}
	if (!pr[P_PTRACE].ok) {
		set(P_XSTATE, 0, "needs ptrace");
		set(P_RSEQ, 0, "needs ptrace");
	}
	reap(pid);
	close(p[0]);
	close(p[1]);
}

/* The way back of injected state (injsafe.c), end to end: a child blocked
 * in read() is left mid-injection, as a killed cryo would leave it (a
 * detach changes no register), and must go back to its read by itself and
 * answer. */
static void probe_way_back(void)
{
	int in[2], out[2], st, ok = 0;
	struct proc_vma *v = NULL;
	struct injector inj;
	size_t n = 0;
	pid_t pid;
	long ret;
	char c = 'x';

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
		set(P_WAY_BACK, 0, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (read(in[0], &c, 1) == 1)
			if (write(out[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	if (pid < 0 || ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0 ||
	    ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0 || waitpid(pid, &st, __WALL) != pid) {
		set(P_WAY_BACK, 0, "needs ptrace");
		goto out;
	}
	if (proc_maps(pid, &v, &n) || inj_init(&inj, pid) || inj_recovery_find(&inj, v, n)) {
		err_clear();
		set(P_WAY_BACK, 0, "no \"syscall; ret\" and signal trampoline found in a child");
		goto out;
	}
	if (inj_syscall(&inj, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret) || !inj.safe || ret != pid) {
		err_clear();
		set(P_WAY_BACK, 0, "the frames could not be set up in a child");
		goto out;
	}
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	if (write(in[1], &c, 1) == 1) {
		struct pollfd p = { out[0], POLLIN, 0 };

		ok = poll(&p, 1, 2000) == 1 && read(out[0], &c, 1) == 1;
	}
	if (ok)
		set(P_WAY_BACK, 1, "a child left mid-injection went back to its read by itself");
	else
		set(P_WAY_BACK, 0, "a child left mid-injection did not resume: a SIGKILL of cryo"
		    " during a dump could harm the process");
out:
	free(inj.area_saved);
	proc_maps_free(v, n);
	if (pid > 0)
		reap(pid);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

/* ---- pids ---- */

/* clone3 with set_tid is how a restore gets the process its pid back. The
 * probe asks for a pid that is free now, in our own pid namespace: that is
 * exactly what a restore does. The child exits at once. */
static void probe_clone3(void)
{
	char buf[64];
	long last = 300, max = 32768;
	int err = 0;

	if (read_line("/proc/sys/kernel/ns_last_pid", buf, sizeof(buf)))
		last = strtol(buf, NULL, 10);
	if (read_line("/proc/sys/kernel/pid_max", buf, sizeof(buf)))
		max = strtol(buf, NULL, 10);
	for (int tries = 0; tries < 8; tries++) {
		pid_t want = (pid_t)(last + 1000 + tries * 37), got;
		struct clone_args ca;
		int st;

		if (want >= max)
			want = (pid_t)(300 + tries * 37);
		if (kill(want, 0) == 0 || errno != ESRCH)
			continue;	/* taken */
		memset(&ca, 0, sizeof(ca));
		ca.exit_signal = SIGCHLD;
		ca.set_tid = (uint64_t)(uintptr_t)&want;
		ca.set_tid_size = 1;
		got = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		if (got == 0)
			_exit(0);
		if (got > 0) {
			while (waitpid(got, &st, 0) < 0 && errno == EINTR)
				;
			if (got == want)
				set(P_CLONE3_SET_TID, 1, "created a child with pid %d on request", want);
			else
				set(P_CLONE3_SET_TID, 0, "asked for pid %d, got %d", want, got);
			return;
		}
		err = errno;
		if (err != EEXIST)
			break;	/* taken in between: try another */
	}
	set(P_CLONE3_SET_TID, 0, "%s%s", strerror(err),
	    err == EPERM ? " (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)" :
	    err == ENOSYS ? " (no clone3: needs Linux 5.3)" :
	    err == EINVAL || err == E2BIG ? " (no set_tid: needs Linux 5.5)" : "");
}

static void probe_pids(void)
{
	probe_clone3();
	if (access("/proc/sys/kernel/ns_last_pid", F_OK))
		set(P_NS_LAST_PID, 0, "absent (needs CONFIG_CHECKPOINT_RESTORE)");
	else if (access("/proc/sys/kernel/ns_last_pid", W_OK))
		set(P_NS_LAST_PID, 0, "not writable here: %s", strerror(errno));
	else
		set(P_NS_LAST_PID, 1, "writable");
	if (has_cap(CAP_CHECKPOINT_RESTORE_BIT) || has_cap(CAP_SYS_ADMIN_BIT))
		set(P_CAP_CR, 1, "%s", has_cap(CAP_CHECKPOINT_RESTORE_BIT) ?
		    "CAP_CHECKPOINT_RESTORE" : "CAP_SYS_ADMIN");
	else
		set(P_CAP_CR, 0, "neither capability is effective");
}

static void probe_mm_map(void)
{
	unsigned int size = 0;

	/* PR_SET_MM_MAP_SIZE only reports the struct size: nothing changes */
	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0) == 0)
		set(P_MM_MAP, 1, "struct prctl_mm_map of %u bytes", size);
	else
		set(P_MM_MAP, 0, "%s%s", strerror(errno),
		    errno == EINVAL ? " (needs CONFIG_CHECKPOINT_RESTORE)" : "");
}

/* ---- memory tracking ---- */

static void probe_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	char buf[32];
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int unpriv = -1;

	if (read_line("/proc/sys/vm/unprivileged_userfaultfd", buf, sizeof(buf)))
		unpriv = atoi(buf);
	if (fd >= 0) {
		set(P_UFFD_KERNEL, 1, "faults from kernel mode are delivered too");
	} else if (errno == EPERM) {
		/* without privilege (and unprivileged_userfaultfd=0) only
		 * user-mode faults can be handled: a restored process whose
		 * read() lands on a missing page would get EFAULT */
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
		set(P_UFFD_KERNEL, 0, "only with UFFD_USER_MODE_ONLY (unprivileged_userfaultfd=%d;"
		    " run as root or set it to 1)", unpriv);
	} else {
		set(P_UFFD_KERNEL, 0, "%s", strerror(errno));
	}
	if (fd < 0) {
		set(P_UFFD, 0, "%s%s", strerror(errno),
		    errno == ENOSYS ? " (needs CONFIG_USERFAULTFD)" : "");
		set(P_UFFD_WP, 0, "needs userfaultfd");
		set(P_UFFD_MINOR, 0, "needs userfaultfd");
		set(P_UFFD_WP_ASYNC, 0, "needs userfaultfd");
		return;
	}
	/* with features 0 the kernel answers with all it supports */
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		set(P_UFFD, 0, "UFFDIO_API: %s", strerror(errno));
		close(fd);
		return;
	}
	close(fd);
	set(P_UFFD, 1, "features %#llx, unprivileged_userfaultfd=%d",
	    (unsigned long long)api.features, unpriv);
	set(P_UFFD_WP, !!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP), "%s",
	    api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP ? "supported" : "not supported");
	set(P_UFFD_MINOR, !!(api.features & UFFD_FEATURE_MINOR_SHMEM), "%s",
	    api.features & UFFD_FEATURE_MINOR_SHMEM ? "supported for shmem" : "not supported");
	set(P_UFFD_WP_ASYNC, !!(api.features & UFFD_FEATURE_WP_ASYNC), "%s",
	    api.features & UFFD_FEATURE_WP_ASYNC ? "supported" : "not supported (needs Linux 6.7)");
}

static void probe_pagemap(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct page_region reg[4];
	struct pm_scan_arg a;
	uint64_t ent = 0;
	long r;

	if (m == MAP_FAILED || fd < 0) {
		set(P_PAGEMAP_SCAN, 0, "%s", strerror(errno));
		set(P_SOFT_DIRTY, 0, "%s", strerror(errno));
		goto out;
	}
	m[0] = 1;
	m[2 * pg] = 1;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.start = (uint64_t)(uintptr_t)m;
	a.end = a.start + 4 * pg;
	a.vec = (uint64_t)(uintptr_t)reg;
	a.vec_len = 4;
	a.category_anyof_mask = PAGE_IS_PRESENT;
	a.return_mask = PAGE_IS_PRESENT;
	r = ioctl(fd, PAGEMAP_SCAN, &a);
	if (r == 2)
		set(P_PAGEMAP_SCAN, 1, "finds present pages");
	else if (r >= 0)
		set(P_PAGEMAP_SCAN, 0, "answered %ld regions for 2 separate pages", r);
	else
		set(P_PAGEMAP_SCAN, 0, "%s%s", strerror(errno),
		    errno == ENOTTY ? " (needs Linux 6.7)" : "");

	/* soft-dirty: clear the bits, write, and see whether bit 55 comes
	 * back. Kernels without CONFIG_MEM_SOFT_DIRTY accept the clear but
	 * never set the bit. Clearing only affects cryo itself. */
	{
		int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);

		if (cr < 0 || write(cr, "4", 1) != 1) {
			set(P_SOFT_DIRTY, 0, "/proc/self/clear_refs: %s", strerror(errno));
			if (cr >= 0)
				close(cr);
			goto out;
		}
		close(cr);
	}
	m[pg] = 2;
	if (pread(fd, &ent, 8, (off_t)((uintptr_t)(m + pg) / pg * 8)) != 8)
		set(P_SOFT_DIRTY, 0, "reading pagemap: %s", strerror(errno));
	else if (ent & PM_SOFT_DIRTY)
		set(P_SOFT_DIRTY, 1, "pages written after clear_refs are marked");
	else
		set(P_SOFT_DIRTY, 0, "not tracked (kernel built without CONFIG_MEM_SOFT_DIRTY)");
out:
	if (fd >= 0)
		close(fd);
	if (m != MAP_FAILED)
		munmap(m, 4 * pg);
}

/* ---- executable images ---- */

static void probe_binfmt(void)
{
	char buf[256];

	if (read_line("/proc/binfmt_cr/status", buf, sizeof(buf)))
		set(P_BINFMT_CR, 1, "loaded: %s", buf);
	else
		set(P_BINFMT_CR, 0, "not loaded (no /proc/binfmt_cr/status)");
	if (read_line("/proc/sys/fs/binfmt_misc/status", buf, sizeof(buf)))
		set(P_BINFMT_MISC, 1, "mounted, %s", buf);
	else
		set(P_BINFMT_MISC, 0, "not mounted at /proc/sys/fs/binfmt_misc");
	if (read_line("/proc/sys/fs/binfmt_misc/cryo", buf, sizeof(buf)))
		set(P_BINFMT_ENTRY, !strcmp(buf, "enabled"), "%s", buf);
	else
		set(P_BINFMT_ENTRY, 0, "not registered");
}

/* ---- namespaces and ids ---- */

static void probe_ipc(void)
{
	static const char *const f[] = { "shm_next_id", "sem_next_id", "msg_next_id" };
	char path[64], missing[128] = "";
	int ok = 1;

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/sys/kernel/%s", f[i]);
		if (access(path, W_OK)) {
			ok = 0;
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s (%s)", missing[0] ? ", " : "", f[i], strerror(errno));
		}
	}
	if (ok)
		set(P_IPC_IDS, 1, "shm, sem and msg ids can be chosen");
	else
		set(P_IPC_IDS, 0, "%s", missing);
}

/* unshare(CLONE_NEWTIME) and write its offsets (what cryo -r does) in a
 * child that exits at once: the only way to know both the kernel support
 * and the privilege (CAP_SYS_ADMIN, then CAP_SYS_TIME) */
static int timens_probe_child(void)
{
	int fd;

	if (unshare(CLONE_NEWTIME))
		return errno & 0x7f;
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1 0 0\n", 6) != 6)
		return (errno & 0x7f) | 0x80;
	return 0;
}

static void probe_timens(void)
{
	pid_t pid;
	int st = 0;

	if (access("/proc/self/ns/time", F_OK)) {
		set(P_TIMENS, 0, "no /proc/self/ns/time (needs Linux 5.6, CONFIG_TIME_NS)");
		return;
	}
	pid = fork();
	if (pid == 0)
		_exit(timens_probe_child());
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		set(P_TIMENS, 0, "could not run the probe");
		return;
	}
	if (WEXITSTATUS(st) == 0)
		set(P_TIMENS, 1, "a new time namespace can be created with clock offsets");
	else if (WEXITSTATUS(st) & 0x80)
		set(P_TIMENS, 0, "write timens_offsets: %s%s", strerror(WEXITSTATUS(st) & 0x7f),
		    (WEXITSTATUS(st) & 0x7f) == EPERM ? " (needs CAP_SYS_TIME)" : "");
	else
		set(P_TIMENS, 0, "unshare(CLONE_NEWTIME): %s%s", strerror(WEXITSTATUS(st)),
		    WEXITSTATUS(st) == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
}

static void probe_vdso(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512], out[256] = "";
	unsigned long s, e;

	if (!f) {
		set(P_VDSO, 0, "/proc/self/maps: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char *name = strchr(line, '[');

		if (!name || sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		name[strcspn(name, "\n")] = 0;
		if (strcmp(name, "[vvar]") && strcmp(name, "[vvar_vclock]") &&
		    strcmp(name, "[vdso]") && strcmp(name, "[vsyscall]"))
			continue;
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s %lu pages",
			 out[0] ? ", " : "", name, (e - s) / 4096);
	}
	fclose(f);
	set(P_VDSO, out[0] != 0, "%s", out[0] ? out : "no vdso mapped");
}

static void probe_limits(void)
{
	char buf[64];

	if (has_cap(CAP_SYS_RESOURCE_BIT))
		set(P_CAP_RESOURCE, 1, "effective");
	else
		set(P_CAP_RESOURCE, 0, "not effective");
	if (read_line("/proc/sys/fs/pipe-max-size", buf, sizeof(buf)))
		set(P_PIPE_MAX, 1, "%s bytes", buf);
	else
		set(P_PIPE_MAX, 0, "unreadable");
	if (read_line("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf)))
		set(P_YAMA, atoi(buf) < 3, "%s%s", buf,
		    atoi(buf) >= 3 ? " (ptrace disabled entirely)" :
		    atoi(buf) >= 2 && !has_cap(CAP_SYS_PTRACE_BIT) ? " (needs CAP_SYS_PTRACE)" : "");
	else
		set(P_YAMA, 1, "Yama not present");
}

/* ------------------------------------------------------------------ */
/* features                                                            */

struct feature {
	const char *id, *name;
	int ok;
	char detail[400];
};

enum feature_id {
	F_DUMP, F_RESTORE, F_PID, F_THREADS, F_FDS, F_LAZY, F_INCR, F_EXEC, F_IPC, F_TIMENS,
	F_PIPES, F_RLIMITS, F_RSEQ, F_SURVIVE, F_MAX
};

static struct feature ft[F_MAX] = {
	[F_DUMP] = { "dump", "dump (checkpoint)", 0, "" },
	[F_RESTORE] = { "restore", "restore", 0, "" },
	[F_PID] = { "pid_restore", "same pid on restore", 0, "" },
	[F_THREADS] = { "threads", "threads (same tids)", 0, "" },
	[F_FDS] = { "fd_copy", "pipes, sockets, event fds", 0, "" },
	[F_LAZY] = { "lazy_restore", "lazy restore", 0, "" },
	[F_INCR] = { "incremental", "incremental dumps", 0, "" },
	[F_EXEC] = { "executable_images", "./IMAGE executable images", 0, "" },
	[F_IPC] = { "sysv_ipc_ids", "SysV IPC with the same ids", 0, "" },
	[F_TIMENS] = { "time_namespace", "monotonic clocks across hosts", 0, "" },
	[F_PIPES] = { "big_pipes", "pipes above pipe-max-size", 0, "" },
	[F_RLIMITS] = { "raise_hard_rlimits", "hard rlimits above cryo's", 0, "" },
	[F_RSEQ] = { "rseq", "rseq registrations", 0, "" },
	[F_SURVIVE] = { "dump_survives_cryo", "dump survives cryo's death", 0, "" },
};

static void __attribute__((format(printf, 3, 4))) feat(enum feature_id f, int ok, const char *fmt, ...)
{
	va_list ap;

	ft[f].ok = ok;
	va_start(ap, fmt);
	vsnprintf(ft[f].detail, sizeof(ft[f].detail), fmt, ap);
	va_end(ap);
}

/* why a feature is missing: the first failed probe among those it needs */
static const char *why(const enum probe_id *need, size_t n, char *buf, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (!pr[need[i]].ok) {
			snprintf(buf, len, "%s: %s", pr[need[i]].name, pr[need[i]].detail);
			return buf;
		}
	return NULL;
}

#define NEED(f, label, ...)							\
	do {									\
		static const enum probe_id need_[] = { __VA_ARGS__ };		\
		char b_[400];							\
		const char *w_ = why(need_, sizeof(need_) / sizeof(need_[0]), b_, sizeof(b_)); \
		feat(f, !w_, "%s", w_ ? w_ : label);				\
	} while (0)

static void derive(void)
{
	char buf[64];

	NEED(F_DUMP, "ptrace, registers and memory of a process can be read",
	     P_YAMA, P_PTRACE, P_XSTATE, P_VM_READV);
	NEED(F_RESTORE, "processes can be rebuilt with their pid and hidden mm state",
	     P_YAMA, P_PTRACE, P_XSTATE, P_MM_MAP, P_CLONE3_SET_TID);
	NEED(F_PID, "clone3(set_tid) gives a process the pid it had", P_CLONE3_SET_TID);
	NEED(F_THREADS, "threads can be stopped together and recreated with their tids",
	     P_PTRACE, P_CLONE3_SET_TID);
	NEED(F_FDS, "pidfd_getfd copies a process's fds", P_PIDFD_OPEN, P_PIDFD_GETFD);
	NEED(F_LAZY, "userfaultfd serves missing pages, from kernel faults too",
	     P_UFFD, P_UFFD_KERNEL);
	if (pr[P_SOFT_DIRTY].ok)
		feat(F_INCR, 1, "soft-dirty bits track written pages");
	else if (pr[P_PAGEMAP_SCAN].ok && pr[P_UFFD_WP_ASYNC].ok)
		feat(F_INCR, 1, "PAGEMAP_SCAN with userfaultfd async write-protect tracks written "
		     "pages (soft-dirty: %s)", pr[P_SOFT_DIRTY].detail);
	else
		feat(F_INCR, 1, "by page checksums only: every page is read again (soft-dirty: "
		     "%s; PAGEMAP_SCAN: %s)", pr[P_SOFT_DIRTY].detail, pr[P_PAGEMAP_SCAN].detail);
	if (pr[P_BINFMT_CR].ok)
		feat(F_EXEC, 1, "binfmt_cr is loaded");
	else if (pr[P_BINFMT_ENTRY].ok)
		feat(F_EXEC, 1, "the binfmt_misc 'cryo' entry hands images to cryo");
	else if (pr[P_BINFMT_MISC].ok)
		feat(F_EXEC, 0, "binfmt_cr not loaded and no binfmt_misc 'cryo' entry (%s); "
		     "fix: run `cryo register`, or load binfmt_cr", pr[P_BINFMT_ENTRY].detail);
	else
		feat(F_EXEC, 0, "binfmt_cr not loaded and binfmt_misc not mounted; fix: `mount -t "
		     "binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc` and run `cryo register`, "
		     "or load binfmt_cr");
	NEED(F_IPC, "*_next_id choose the ids of new SysV objects", P_IPC_IDS);
	if (pr[P_TIMENS].ok)
		feat(F_TIMENS, 1, "cryo -r restores a tree in a new time namespace: its"
		     " CLOCK_MONOTONIC and CLOCK_BOOTTIME continue from the dump");
	else if (access("/proc/self/ns/time", F_OK) == 0 && geteuid() != 0)
		feat(F_TIMENS, 0, "%s: %s; as root or with --pidns (a user namespace) cryo -r"
		     " makes the clocks continue from the dump", pr[P_TIMENS].name,
		     pr[P_TIMENS].detail);
	else
		feat(F_TIMENS, 0, "%s: %s; the restored tree gets this host's clocks (a"
		     " warning if they jump forward, a refusal if back)", pr[P_TIMENS].name,
		     pr[P_TIMENS].detail);
	if (pr[P_CAP_RESOURCE].ok)
		feat(F_PIPES, 1, "CAP_SYS_RESOURCE lifts pipe-max-size");
	else
		feat(F_PIPES, 0, "without CAP_SYS_RESOURCE a pipe is at most %s",
		     read_line("/proc/sys/fs/pipe-max-size", buf, sizeof(buf)) ?
		     strcat(buf, " bytes") : "pipe-max-size");
	NEED(F_RLIMITS, "CAP_SYS_RESOURCE raises hard limits", P_CAP_RESOURCE);
	NEED(F_RSEQ, "ptrace reports rseq registrations", P_RSEQ);
	NEED(F_SURVIVE, "a process cryo was inspecting returns to its own state if cryo is"
	     " killed (not processes with a CET shadow stack)", P_WAY_BACK);
}

/* ------------------------------------------------------------------ */
/* output                                                              */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);	/* details are ASCII; be safe */
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct utsname *u)
{
	printf("{\n  \"schema_version\": %d,\n  \"kernel\": {\"release\": ", CHECK_SCHEMA_VERSION);
	json_str(u->release);
	printf(", \"machine\": ");
	json_str(u->machine);
	printf("},\n  \"probes\": {");
	for (int i = 0; i < P_MAX; i++) {
		printf("%s\n    ", i ? "," : "");
		json_str(pr[i].id);
		printf(": {\"ok\": %s, \"name\": ", pr[i].ok ? "true" : "false");
		json_str(pr[i].name);
		printf(", \"detail\": ");
		json_str(pr[i].detail);
		putchar('}');
	}
	printf("\n  },\n  \"features\": {");
	for (int i = 0; i < F_MAX; i++) {
		printf("%s\n    ", i ? "," : "");
		json_str(ft[i].id);
		printf(": {\"available\": %s, \"name\": ", ft[i].ok ? "true" : "false");
		json_str(ft[i].name);
		printf(", \"detail\": ");
		json_str(ft[i].detail);
		putchar('}');
	}
	printf("\n  }\n}\n");
}

static void print_text(const struct utsname *u)
{
	printf("kernel %s %s\n\nkernel features\n", u->release, u->machine);
	for (int i = 0; i < P_MAX; i++)
		printf("  %-34s %-3s  %s\n", pr[i].name, pr[i].ok ? "yes" : "no", pr[i].detail);
	printf("\ncryo features here\n");
	for (int i = 0; i < F_MAX; i++)
		printf("  %-34s %-13s  %s\n", ft[i].name, ft[i].ok ? "available" : "not available",
		       ft[i].detail);
}

static void check_usage(FILE *f)
{
	fputs("usage: cryo check [--json]\n"
	      "\n"
	      "Probe the running kernel, with cryo's privileges, for every feature cryo\n"
	      "can use, and say which cryo features are available here and why not.\n"
	      "\n"
	      "  --json    machine-readable output (schema: docs/image-json.md)\n"
	      "\n"
	      "Exit status: 0 dump and restore work here; 1 they do not; 2 usage error.\n", f);
}

int cmd_check(int argc, char **argv)
{
	enum { OPT_JSON = 256 };
	static const struct option lo[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct utsname u;
	int json = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = 1; break;
		case 'h': check_usage(stdout); return EXIT_OK;
		default: check_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		check_usage(stderr);
		return EXIT_USAGE;
	}
	progress_disable();
	if (uname(&u)) {
		fprintf(stderr, "cryo: uname: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	fflush(stdout);	/* children of the probes must not repeat buffered output */
	probe_limits();
	probe_ptrace();
	probe_way_back();
	probe_pids();
	probe_mm_map();
	probe_uffd();
	probe_pagemap();
	probe_binfmt();
	probe_ipc();
	probe_timens();
	probe_vdso();
	derive();
	if (json)
		print_json(&u);
	else
		print_text(&u);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "cryo: writing the report: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return ft[F_DUMP].ok && ft[F_RESTORE].ok ? EXIT_OK : EXIT_FAIL;
}
