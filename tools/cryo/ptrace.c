#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "injsafe.h"
#include "proc.h"
#include "ptrace.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

int pt_seize(pid_t tid)
{
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0)
		return err_sys(-errno, "pid %d: cannot seize with ptrace", tid);
	return 0;
}

/* Wait for tid's next stop; a group-stop or interrupt stop both count. */
static int wait_stop(pid_t tid, int *status)
{
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(-errno, "pid %d: wait", tid);
		}
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return err_set(-ESRCH, "pid %d: exited while cryo worked on it", tid);
		if (WIFSTOPPED(*status))
			return 0;
	}
}

int pt_interrupt_wait(pid_t tid)
{
	int st;

	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return err_sys(-errno, "pid %d: PTRACE_INTERRUPT", tid);
	for (;;) {
		int r = wait_stop(tid, &st);
		int sig;

		if (r)
			return r;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* A signal arrived before the interrupt: let the task take it
		 * after we are done, by stopping it here and re-injecting it
		 * with the detach would reorder it; instead resume it now with
		 * the signal (it is delivered as it would have been) and the
		 * pending interrupt stops it right after. */
		sig = WSTOPSIG(st);
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig) < 0)
			return err_sys(-errno, "pid %d: resume with signal %d", tid, sig);
	}
}

int pt_detach(pid_t tid)
{
	if (ptrace(PTRACE_DETACH, tid, 0, 0) < 0 && errno != ESRCH)
		return err_sys(-errno, "pid %d: detach", tid);
	return 0;
}

int pt_get_regs(pid_t tid, struct user_regs_struct *regs)
{
	struct iovec iov = { regs, sizeof(*regs) };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
		return err_sys(-errno, "tid %d: get registers", tid);
	return 0;
}

int pt_set_regs(pid_t tid, const struct user_regs_struct *regs)
{
	struct iovec iov = { (void *)regs, sizeof(*regs) };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
		return err_sys(-errno, "tid %d: set registers", tid);
	return 0;
}

/* Without XSAVE (old CPUs, VMs with a basic CPU model such as qemu64) the
 * kernel has no NT_X86_XSTATE regset (ENODEV): the FPU/SSE state is the
 * 512-byte FXSAVE area of NT_PRFPREG. An XSAVE area is never 512 bytes
 * (512 legacy + a 64-byte header at least), so the length tells them apart. */
#define FXSAVE_LEN 512

int pt_get_xstate(pid_t tid, void **buf, size_t *len)
{
	/* The kernel trims iov_len to what it has: ask with room to spare. */
	size_t cap = 1 << 16;
	void *p = calloc(1, cap);
	struct iovec iov = { p, cap };

	if (!p)
		return -ENOMEM;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		iov.iov_len = FXSAVE_LEN;
		if (errno != ENODEV ||
		    ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRFPREG, &iov) < 0 ||
		    iov.iov_len != FXSAVE_LEN) {
			free(p);
			return err_sys(-errno, "tid %d: get extended registers (xstate)", tid);
		}
	}
	*buf = p;
	*len = iov.iov_len;
	return 0;
}

int pt_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	uint64_t xstate_bv = 0;

	if (len != FXSAVE_LEN &&
	    ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0)
		return 0;
	if (len != FXSAVE_LEN && errno != ENODEV)
		return err_sys(-errno, "tid %d: set extended registers (xstate, %zu bytes;"
			       " is this the same CPU family?)", tid, len);
	/* FXSAVE image, or an XSAVE image on a kernel without XSAVE: only
	 * x87/SSE state (XSTATE_BV bits 0-1) fits the legacy area */
	if (len > FXSAVE_LEN) {
		memcpy(&xstate_bv, (const char *)buf + FXSAVE_LEN, sizeof(xstate_bv));
		if (xstate_bv & ~3ull)
			return err_set(-EOPNOTSUPP, "tid %d: the image holds AVX or later register"
				       " state (xstate_bv %#llx) and this CPU or kernel has no XSAVE",
				       tid, (unsigned long long)xstate_bv);
	}
	iov.iov_len = FXSAVE_LEN;
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRFPREG, &iov) < 0)
		return err_sys(-errno, "tid %d: set FPU registers (fxsave)", tid);
	return 0;
}

int mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
	char path[64];
	int fd;

	if (n == (ssize_t)len)
		return 0;
	/* Non-readable pages (PROT_NONE with content): FOLL_FORCE via mem */
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "pid %d: open %s", pid, path);
	n = pread(fd, buf, len, (off_t)addr);
	close(fd);
	if (n != (ssize_t)len)
		return err_sys(n < 0 ? -errno : -EIO, "pid %d: read memory at %#lx+%zu",
			       pid, (unsigned long)addr, len);
	return 0;
}

int mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };
	ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
	char path[64];
	int fd;

	if (n == (ssize_t)len)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "pid %d: open %s", pid, path);
	n = pwrite(fd, buf, len, (off_t)addr);
	close(fd);
	if (n != (ssize_t)len)
		return err_sys(n < 0 ? -errno : -EIO, "pid %d: write memory at %#lx+%zu",
			       pid, (unsigned long)addr, len);
	return 0;
}

uint64_t find_syscall_insn(pid_t tid, uint64_t start, uint64_t end)
{
	size_t len = end - start;
	uint8_t *b;
	uint64_t found = 0;

	if (end <= start || len > (1 << 20))
		return 0;
	b = malloc(len);
	if (!b)
		return 0;
	if (mem_read(tid, start, b, len) == 0) {
		for (size_t i = 0; i + 1 < len; i++) {
			if (b[i] == 0x0f && b[i + 1] == 0x05) {
				found = start + i;
				break;
			}
		}
	}
	free(b);
	return found;
}

static uint64_t vdso_syscall(pid_t tid)
{
	char path[64], line[512];
	uint64_t ip = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!ip && fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			ip = find_syscall_insn(tid, s, e);
	}
	fclose(f);
	return ip;
}

/* The vdso is the same image in every process: where its first syscall
 * instruction is, found once per run, is checked (2 bytes) elsewhere */
static uint64_t vdso_insn_off;
static int vdso_insn_known;

int inj_init_vdso(struct injector *inj, pid_t tid, uint64_t start, uint64_t end)
{
	uint8_t b[2];

	memset(inj, 0, sizeof(*inj));
	inj->tid = tid;
	if (vdso_insn_known && start + vdso_insn_off + 2 <= end &&
	    mem_read(tid, start + vdso_insn_off, b, 2) == 0 && b[0] == 0x0f && b[1] == 0x05) {
		inj->syscall_ip = start + vdso_insn_off;
		return 0;
	}
	err_clear();
	inj->syscall_ip = find_syscall_insn(tid, start, end);
	if (!inj->syscall_ip)
		return err_set(-ENOEXEC, "pid %d: no syscall instruction in its vdso"
			       " (vdso unmapped?): cannot inspect it from inside", tid);
	vdso_insn_off = inj->syscall_ip - start;
	vdso_insn_known = 1;
	return 0;
}

int inj_init(struct injector *inj, pid_t tid)
{
	memset(inj, 0, sizeof(*inj));
	inj->tid = tid;
	inj->syscall_ip = vdso_syscall(tid);
	if (!inj->syscall_ip)
		return err_set(-ENOEXEC, "pid %d: no syscall instruction in its vdso"
			       " (vdso unmapped?): cannot inspect it from inside", tid);
	return 0;
}

void inj_set_syscall_ip(struct injector *inj, uint64_t ip)
{
	inj->syscall_ip = ip;
}

/* Resume with PTRACE_SYSCALL and wait for the next syscall stop; signals
 * that show up are kept pending (all are blocked while we inject, only
 * SIGKILL/SIGSTOP can get through) */
static int syscall_step(pid_t tid)
{
	int st, r;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
			return err_sys(-errno, "tid %d: PTRACE_SYSCALL", tid);
		r = wait_stop(tid, &st);
		if (r)
			return r;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			return 0;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;	/* group-stop: keep going */
		warn("tid %d: signal %d arrived during syscall injection", tid, WSTOPSIG(st));
	}
}

#define TRAP_BIT (1ull << (SIGTRAP - 1))

void inj_hint_signals(struct injector *inj, uint64_t pending_or_ignored)
{
	inj->sig_hint = 1;
	inj->hint_bits = pending_or_ignored;
}

int inj_prepare(struct injector *inj)
{
	struct proc_status st;
	uint64_t block = ~0ull;
	int e;

	if (inj->have_saved)
		return 0;
	e = injsafe_prepare(inj);
	if (e != -EAGAIN)
		return e;
	err_clear();
	e = pt_get_regs(inj->tid, &inj->saved);
	if (e)
		return e;
	if (ptrace(PTRACE_GETSIGMASK, inj->tid, (void *)8, &inj->saved_sigmask) < 0)
		return err_sys(-errno, "tid %d: read signal mask", inj->tid);
	/* trap mode only where its SIGTRAP cannot touch the task's state */
	inj->trap = 0;
	if (!inj->no_trap && !getenv("CRYO_NO_TRAP_INJECT")) {
		if (inj->sig_hint)
			inj->trap = !(inj->hint_bits & TRAP_BIT);
		else if (proc_status(inj->tid, inj->tid, &st) == 0)
			inj->trap = !((st.sig_pnd | st.shd_pnd | st.sig_ign) & TRAP_BIT);
		err_clear();
	}
	if (inj->trap)
		block &= ~TRAP_BIT;
	/* Keep signals from interrupting the injected calls */
	if (ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &block) < 0)
		return err_sys(-errno, "tid %d: block signals", inj->tid);
	inj->have_saved = 1;
	return 0;
}

/* Resume from the current stop with PTRACE_SYSCALL, passing sig, and wait
 * for the syscall-entry stop of the call at rip */
static int syscall_step_sig(pid_t tid, int sig)
{
	int st, r;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, (void *)(long)sig) < 0)
			return err_sys(-errno, "tid %d: PTRACE_SYSCALL", tid);
		sig = 0;
		r = wait_stop(tid, &st);
		if (r)
			return r;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			return 0;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;
		warn("tid %d: signal %d arrived during syscall injection", tid, WSTOPSIG(st));
	}
}

int inj_requeue_trap(struct injector *inj)
{
	struct user_regs_struct r = inj->saved;
	uint64_t all = ~0ull;
	int e;

	/* A signal the tracer passes on while it is blocked goes back to the
	 * queue it came from, siginfo intact (ptrace_signal in
	 * kernel/signal.c); a getpid gives us the resume that does it */
	inj->trap = 0;
	if (ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &all) < 0)
		return err_sys(-errno, "tid %d: block signals", inj->tid);
	r.rax = SYS_getpid;
	r.orig_rax = (uint64_t)-1;
	r.rip = inj->syscall_ip;
	e = pt_set_regs(inj->tid, &r);
	if (!e)
		e = syscall_step_sig(inj->tid, SIGTRAP);	/* entry */
	if (!e)
		e = syscall_step(inj->tid);			/* exit */
	return e;
}

/* Trap mode: single-step over the syscall instruction. The kernel reports
 * the step at syscall exit (syscall_exit_work -> user_single_step_report:
 * SIGTRAP, TRAP_BRKPT, rip just past the instruction), one stop in all.
 * *ran is 0 when a foreign SIGTRAP stopped the task before the call ran:
 * the caller re-runs it in slow mode. */
static int step_trap(struct injector *inj, struct user_regs_struct *r, int *ran)
{
	siginfo_t si;
	int st, e;

	*ran = 0;
	inj->stepped = 1;
	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, inj->tid, 0, 0) < 0)
			return err_sys(-errno, "tid %d: PTRACE_SINGLESTEP", inj->tid);
		e = wait_stop(inj->tid, &st);
		if (e)
			return e;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;	/* group-stop: keep going */
		if (WSTOPSIG(st) != SIGTRAP) {
			warn("tid %d: signal %d arrived during syscall injection", inj->tid,
			     WSTOPSIG(st));
			continue;
		}
		e = pt_get_regs(inj->tid, r);
		if (e)
			return e;
		if (ptrace(PTRACE_GETSIGINFO, inj->tid, 0, &si) < 0)
			return err_sys(-errno, "tid %d: PTRACE_GETSIGINFO", inj->tid);
		*ran = r->rip == inj->syscall_ip + 2;
		if (si.si_code == TRAP_BRKPT && *ran)
			return 0;
		/* somebody else's SIGTRAP (kill, tgkill, sigqueue) */
		return inj_requeue_trap(inj);
	}
}

int inj_touches_sig(long nr, uint64_t a1, uint64_t a2, uint64_t a3, int sig)
{
	switch (nr) {
	case SYS_rt_sigaction:
		return a1 == (uint64_t)sig && a2;
	case SYS_rt_sigqueueinfo:
	case SYS_kill:
	case SYS_tkill:
		return a2 == (uint64_t)sig;
	case SYS_rt_tgsigqueueinfo:
	case SYS_tgkill:
		return a3 == (uint64_t)sig;
	}
	return 0;
}

int inj_touches_trap(long nr, uint64_t a1, uint64_t a2, uint64_t a3)
{
	return inj_touches_sig(nr, a1, a2, a3, SIGTRAP);
}

int inj_syscall(struct injector *inj, long nr, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret)
{
	struct user_regs_struct r, done;
	uint64_t all = ~0ull;
	int e, ran = 0;

	e = inj_prepare(inj);
	if (e)
		return e;
	if (inj->safe) {
		uint64_t a[6] = { a1, a2, a3, a4, a5, a6 };

		return injsafe_syscall(inj, nr, a, ret);
	}
	/* A call that makes SIGTRAP ignored (the step's SIGTRAP would reset
	 * it) or pending: from here on, two stops per call */
	if (inj->trap && inj_touches_trap(nr, a1, a2, a3)) {
		if (ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &all) < 0)
			return err_sys(-errno, "tid %d: block signals", inj->tid);
		inj->trap = 0;
	}
	r = inj->saved;
	r.rax = nr;
	r.orig_rax = (uint64_t)-1;	/* not in a syscall: no restart logic */
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	r.rip = inj->syscall_ip;
	e = pt_set_regs(inj->tid, &r);
	if (!e && inj->trap) {
		e = step_trap(inj, &done, &ran);
		if (!e && ran) {
			*ret = (long)done.rax;
			return 0;
		}
		if (!e)	/* a foreign SIGTRAP came first: run it the slow way */
			e = pt_set_regs(inj->tid, &r);
	}
	if (!e)
		e = syscall_step(inj->tid);	/* entry */
	if (!e)
		e = syscall_step(inj->tid);	/* exit */
	if (!e)
		e = pt_get_regs(inj->tid, &r);
	if (e)
		return err_ctx(e, "tid %d: injected syscall %ld", inj->tid, nr);
	*ret = (long)r.rax;
	return 0;
}

/* What the kernel does on the way out of a syscall interrupted by a
 * signal that had no handler: we stop at a syscall-exit stop, where the
 * kernel will not do it for us. */
void regs_apply_restart(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		r->rax = SYS_restart_syscall;
		r->rip -= 2;
		break;
	}
	r->orig_rax = (uint64_t)-1;
}

/* PTRACE_SINGLESTEP leaves the task set to trap after its next instruction
 * until a tracer resumes it otherwise; a tracer that dies (SIGKILL) does
 * not clear it, and the untraced task would die of that SIGTRAP. Resume it
 * with PTRACE_CONT, which clears it, and with an interrupt pending, which
 * stops it again before it runs an instruction. */
static int clear_step(struct injector *inj)
{
	uint64_t all = ~0ull;
	int st, e;

	/* no SIGTRAP of somebody else can be taken on the way (nothing is
	 * forced here: PTRACE_CONT does not step) */
	if (ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &all) < 0)
		return err_sys(-errno, "tid %d: block signals", inj->tid);
	inj->trap = 0;
	if (ptrace(PTRACE_INTERRUPT, inj->tid, 0, 0) < 0)
		return err_sys(-errno, "tid %d: PTRACE_INTERRUPT", inj->tid);
	if (ptrace(PTRACE_CONT, inj->tid, 0, 0) < 0)
		return err_sys(-errno, "tid %d: PTRACE_CONT", inj->tid);
	for (;;) {
		e = wait_stop(inj->tid, &st);
		if (e)
			return e;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			break;
		warn("tid %d: signal %d arrived during syscall injection", inj->tid, WSTOPSIG(st));
		if (ptrace(PTRACE_CONT, inj->tid, 0, 0) < 0)
			return err_sys(-errno, "tid %d: PTRACE_CONT", inj->tid);
	}
	inj->stepped = 0;
	return 0;
}

int inj_finish(struct injector *inj)
{
	struct user_regs_struct r;
	int e;

	if (!inj->have_saved)
		return 0;
	inj->sig_hint = 0;	/* it described the task when this session began */
	if (inj->safe)
		return injsafe_finish(inj);
	if (inj->stepped) {
		e = clear_step(inj);
		if (e)
			return e;
	}
	r = inj->saved;
	regs_apply_restart(&r);
	e = pt_set_regs(inj->tid, &r);
	if (!e && ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &inj->saved_sigmask) < 0)
		e = err_sys(-errno, "tid %d: restore signal mask", inj->tid);
	inj->have_saved = 0;
	return e;
}

void inj_abandon(struct injector *inj)
{
	free(inj->area_saved);
	inj->area_saved = NULL;
	inj->safe = 0;
	inj->have_saved = 0;
}
