/* Self-recovering injection (see injsafe.h).
 *
 * The way back is the one the kernel uses after a signal handler: an
 * rt_sigframe. At the start of a session cryo writes, below the task's
 * stack pointer (past the red zone and the callers' scratch bytes), a frame
 * F0 holding the task's registers (with the restart of an interrupted
 * syscall applied), its signal mask and its FPU/vector state, preceded by
 * the address of a "mov $15,%rax; syscall" (rt_sigreturn) of the task's
 * own code. Between injected calls the task sits on the "ret" of a
 * "syscall; ret" of its own code with rsp on that address; every injected
 * call runs at that "syscall". So whenever cryo stops being its tracer, the
 * task's next instructions are: finish the call, ret, rt_sigreturn(F0),
 * and it is back where it was, mask and all. While a batch page exists,
 * the way back first goes through a frame F1 whose registers unmap the
 * page through the same "syscall; ret", then F0. Batches run in the page
 * and end by a tkill of an ignored signal made at that "syscall; ret":
 * a tracer sees the signal stop there, with the task already outside the
 * page; an untraced task drops the signal (ignored, and not blocked for
 * the moment) and goes the way back. Only the leader of a process uses a
 * page; other threads run their calls one at a time, so no thread can be
 * inside a page that another thread's way back unmaps. */
#include <cpuid.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "injsafe.h"
#include "ptrace.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define RED_ZONE	128
#define CALLER_SCRATCH	384	/* dump.c and threads.c use 256 bytes below the red zone */
#define HEAD_LEN	320	/* pretcode + ucontext, rounded up to 64 */
#define X86_TF		0x100ull

#define UC_FP_XSTATE		0x1
#define UC_SIGCONTEXT_SS	0x2
#define UC_STRICT_RESTORE_SS	0x4
#ifndef FP_XSTATE_MAGIC1
#define FP_XSTATE_MAGIC1	0x46505853U
#define FP_XSTATE_MAGIC2	0x46505845U
#endif
#define SW_BYTES_OFF		464	/* fxsave's sw_reserved: struct _fpx_sw_bytes */

/* The kernel's x86_64 signal frame (arch/x86/include/uapi/asm/sigcontext.h,
 * asm-generic ucontext): what rt_sigreturn reads at rsp - 8 */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate;
	uint64_t reserved1[8];
};
struct k_frame_head {
	uint64_t pretcode;
	uint64_t uc_flags, uc_link;
	uint64_t ss_sp;
	int32_t ss_flags, ss_pad;
	uint64_t ss_size;
	struct k_sigcontext mc;
	uint64_t uc_sigmask;
};
_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct k_frame_head) == 8 + 304, "rt_sigframe layout");
_Static_assert(sizeof(struct k_frame_head) <= HEAD_LEN, "frame head room");

/* Fault injection for the tests */
void inj_fault_point(void)
{
	static long at = -2, count;

	if (at == -2) {
		const char *s = getenv("CRYO_FAULT_INJECT");

		at = s ? atol(s) : -1;
	}
	if (at > 0 && ++count == at)
		kill(getpid(), SIGKILL);
}

/* --- finding the way back in the task's code --- */

static const uint8_t SEQ_SYSCALL_RET[] = { 0x0f, 0x05, 0xc3 };
static const uint8_t SEQ_SIGRETURN_Q[] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
static const uint8_t SEQ_SIGRETURN_L[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };

/* Offsets found in files already searched this run (a tree shares libc) */
static struct known {
	unsigned major, minor;
	uint64_t ino, pgoff, len;
	int64_t sret, sigret;	/* offset in the mapping, -1: none */
} known[16];
static size_t nknown;

static int seq_at(pid_t pid, uint64_t addr, const uint8_t *seq, size_t len)
{
	uint8_t b[16];
	struct iovec l = { b, len }, r = { (void *)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len && !memcmp(b, seq, len);
}

static int64_t find_seq(const uint8_t *buf, size_t len, const uint8_t *seq, size_t slen)
{
	const uint8_t *p = memmem(buf, len, seq, slen);

	return p ? p - buf : -1;
}

static void search_mapping(pid_t pid, const struct proc_vma *m, int64_t *sret, int64_t *sigret)
{
	size_t len = m->end - m->start;
	struct known *k = NULL;
	uint8_t *buf;
	struct iovec l, r;

	*sret = *sigret = -1;
	for (size_t i = 0; i < nknown; i++)
		if (known[i].major == m->major && known[i].minor == m->minor &&
		    known[i].ino == m->ino && known[i].pgoff == m->pgoff && known[i].len == len &&
		    m->ino) {
			k = &known[i];
			break;
		}
	if (k) {
		*sret = k->sret;
		*sigret = k->sigret;
		return;
	}
	if (len > (64u << 20))
		return;
	buf = malloc(len);
	if (!buf)
		return;
	l = (struct iovec){ buf, len };
	r = (struct iovec){ (void *)m->start, len };
	if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len) {
		*sret = find_seq(buf, len, SEQ_SYSCALL_RET, sizeof(SEQ_SYSCALL_RET));
		*sigret = find_seq(buf, len, SEQ_SIGRETURN_Q, sizeof(SEQ_SIGRETURN_Q));
		if (*sigret < 0)
			*sigret = find_seq(buf, len, SEQ_SIGRETURN_L, sizeof(SEQ_SIGRETURN_L));
		if (m->ino && nknown < sizeof(known) / sizeof(known[0]))
			known[nknown++] = (struct known){ m->major, m->minor, m->ino, m->pgoff, len,
							  *sret, *sigret };
	}
	free(buf);
}

/* The middle of the widest gap of the address space: far from anything
 * that grows (heap, stacks) for the few milliseconds the page lives */
static uint64_t free_range(const struct proc_vma *v, size_t n, uint64_t len)
{
	uint64_t lo = 1ull << 20, best = 0, best_len = 0;
	const uint64_t top = 0x7ffffffff000ull;

	for (size_t i = 0; i <= n; i++) {
		uint64_t end = i < n ? v[i].start : top;

		if (end > lo && end - lo > best_len && end <= top) {
			best = lo;
			best_len = end - lo;
		}
		if (i < n && v[i].end > lo)
			lo = v[i].end;
	}
	if (best_len < len + (4ull << 20))
		return 0;
	return (best + best_len / 2) & ~0xffffull;
}

int inj_recovery_find(struct injector *inj, const struct proc_vma *v, size_t n)
{
	uint64_t sret = 0, sigret = 0;

	memset(&inj->rc, 0, sizeof(inj->rc));
	for (size_t i = 0; i < n && (!sret || !sigret); i++) {
		int64_t a, b;

		if (!(v[i].prot & PROT_EXEC) || v[i].shared || !(v[i].prot & PROT_READ))
			continue;
		if (v[i].path[0] != '/' && strcmp(v[i].path, "[vdso]"))
			continue;	/* code of the task's own files and the vdso only */
		search_mapping(inj->tid, &v[i], &a, &b);
		/* a cached offset is checked in this task's memory */
		if (!sret && a >= 0 && seq_at(inj->tid, v[i].start + a, SEQ_SYSCALL_RET, 3))
			sret = v[i].start + (uint64_t)a;
		if (!sigret && b >= 0 &&
		    (seq_at(inj->tid, v[i].start + b, SEQ_SIGRETURN_Q, sizeof(SEQ_SIGRETURN_Q)) ||
		     seq_at(inj->tid, v[i].start + b, SEQ_SIGRETURN_L, sizeof(SEQ_SIGRETURN_L))))
			sigret = v[i].start + (uint64_t)b;
	}
	if (!sret || !sigret)
		return -ENOENT;
	inj->rc.syscall_ret = sret;
	inj->rc.sigreturn = sigret;
	inj->rc.page_hint = free_range(v, n, 1 << 20);
	return 0;
}

/* --- frames --- */

/* Make the software bytes of an XSAVE image (PTRACE_GETREGSET's, in the
 * standard format) say what a signal frame of this task would: the size
 * up to the last component present in its XSTATE_BV (never more than the
 * task's own frame size, which the kernel checks; the regset is as big as
 * every feature the CPU has, AMX tiles included) and those components,
 * then the end magic. Components absent from XSTATE_BV are in their init
 * state, which is what rt_sigreturn gives them. 0: not an XSAVE image
 * (FXSAVE only: the kernel then restores the legacy area). */
static int xstate_sw_bytes(uint8_t *x, size_t xlen)
{
	uint64_t bv, feats;
	uint32_t size = 576, magic1 = FP_XSTATE_MAGIC1, magic2 = FP_XSTATE_MAGIC2, ext;

	if (xlen < 576)
		return 0;
	memcpy(&bv, x + 512, sizeof(bv));
	for (unsigned f = 2; f < 63; f++) {
		unsigned eax, ebx, ecx, edx;

		if (!(bv & (1ull << f)))
			continue;
		if (!__get_cpuid_count(0xd, f, &eax, &ebx, &ecx, &edx) || !eax ||
		    ebx + eax > xlen)
			return 0;	/* a component we cannot place: no XSAVE frame */
		if (ebx + eax > size)
			size = ebx + eax;
	}
	feats = bv | 3;
	ext = size + 4;
	memcpy(x + SW_BYTES_OFF, &magic1, 4);
	memcpy(x + SW_BYTES_OFF + 4, &ext, 4);
	memcpy(x + SW_BYTES_OFF + 8, &feats, 8);
	memcpy(x + SW_BYTES_OFF + 16, &size, 4);
	memset(x + SW_BYTES_OFF + 20, 0, 28);
	memcpy(x + size, &magic2, 4);
	return 1;
}

/* A frame at addr (64-aligned) into buf: rt_sigreturn there gives the task
 * regs (rip, rsp... all of them), the signal mask, and the FPU state of
 * xs (NULL: reset, a later frame sets it). The alternate stack is left as
 * it is: uc_stack carries an invalid mode, which rt_sigreturn ignores. */
static void frame_build(uint8_t *buf, uint64_t addr, const struct injector *inj,
			const struct user_regs_struct *r, uint64_t mask, const uint8_t *xs,
			size_t xlen)
{
	struct k_frame_head h;
	struct k_sigcontext *mc = &h.mc;

	memset(&h, 0, sizeof(h));
	h.pretcode = inj->rc.sigreturn;
	h.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	h.ss_flags = 3;		/* neither 0, SS_ONSTACK nor SS_DISABLE */
	mc->r8 = r->r8; mc->r9 = r->r9; mc->r10 = r->r10; mc->r11 = r->r11;
	mc->r12 = r->r12; mc->r13 = r->r13; mc->r14 = r->r14; mc->r15 = r->r15;
	mc->rdi = r->rdi; mc->rsi = r->rsi; mc->rbp = r->rbp; mc->rbx = r->rbx;
	mc->rdx = r->rdx; mc->rax = r->rax; mc->rcx = r->rcx; mc->rsp = r->rsp;
	mc->rip = r->rip;
	mc->eflags = r->eflags & ~X86_TF;
	mc->cs = (uint16_t)r->cs;
	mc->ss = (uint16_t)r->ss;
	h.uc_sigmask = mask;
	if (xs) {
		memcpy(buf + HEAD_LEN, xs, xlen);
		if (xstate_sw_bytes(buf + HEAD_LEN, xlen))
			h.uc_flags |= UC_FP_XSTATE;
		mc->fpstate = addr + HEAD_LEN;
	}
	memcpy(buf, &h, sizeof(h));
}

static int write_task(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };

	/* process_vm_writev only: never FOLL_FORCE into what the task could
	 * not write itself */
	return process_vm_writev(tid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* The registers the task comes back with: those it was stopped with, and
 * a syscall it was interrupted in set to run again, as the kernel does
 * when no handler runs. rt_sigreturn forgets the kernel's restart block,
 * so a call that would have resumed through restart_syscall is re-run
 * from its start (a relative timeout starts over). */
static void back_regs(const struct injector *inj, struct user_regs_struct *r)
{
	*r = inj->saved;
	if ((long)r->orig_rax >= 0 && (long)r->rax == -ERESTART_RESTARTBLOCK) {
		r->rax = r->orig_rax;
		r->rip -= 2;
		r->orig_rax = (uint64_t)-1;
	}
	regs_apply_restart(r);
}

/* The task's registers while it waits for the next call: on the "ret" */
static int park(struct injector *inj)
{
	struct user_regs_struct r = inj->saved;

	r.rip = inj->rc.syscall_ret + 2;
	r.rsp = inj->chain;
	r.orig_rax = (uint64_t)-1;
	r.eflags &= ~X86_TF;
	return pt_set_regs(inj->tid, &r);
}

int injsafe_prepare(struct injector *inj)
{
	struct user_regs_struct back;
	uint64_t top, f0, all = ~0ull;
	void *xs = NULL;
	size_t xlen = 0, f0_len;
	uint8_t *buf = NULL;
	int e;

	if (!inj->rc.sigreturn || getenv("CRYO_UNSAFE_INJECT"))
		return -EAGAIN;
	e = pt_get_regs(inj->tid, &inj->saved);
	if (e)
		return e;
	if (ptrace(PTRACE_GETSIGMASK, inj->tid, (void *)8, &inj->saved_sigmask) < 0)
		return err_sys(-errno, "tid %d: read signal mask", inj->tid);
	e = pt_get_xstate(inj->tid, &xs, &xlen);
	if (e)
		return e;
	e = -EAGAIN;
	f0_len = HEAD_LEN + ((xlen + 4 + 63) & ~(size_t)63);
	if (inj->saved.rsp < (1 << 20))
		goto out;
	top = (inj->saved.rsp - RED_ZONE - CALLER_SCRATCH) & ~63ull;
	f0 = top - f0_len;
	inj->chain_plain = f0;
	inj->chain_unmap = f0 - HEAD_LEN;
	inj->area = inj->chain_unmap;
	inj->area_len = top - inj->area;
	inj->area_saved = malloc(inj->area_len);
	buf = calloc(1, f0_len);
	if (!inj->area_saved || !buf) {
		e = -ENOMEM;
		goto out;
	}
	{
		struct iovec l = { inj->area_saved, inj->area_len },
			     r = { (void *)inj->area, inj->area_len };

		/* no room there (a tiny or odd stack): the old way */
		if (process_vm_readv(inj->tid, &l, 1, &r, 1, 0) != (ssize_t)inj->area_len)
			goto out;
	}
	back_regs(inj, &back);
	frame_build(buf, f0, inj, &back, inj->saved_sigmask, xs, xlen);
	if (write_task(inj->tid, f0, buf, f0_len))
		goto out;
	inj->chain = inj->chain_plain;
	inj->stop_sig = 0;
	inj->page = 0;
	/* from here on the task's state leads back to F0: registers first,
	 * then the mask (F0 restores it too) */
	e = park(inj);
	inj_fault_point();
	if (!e && ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &all) < 0) {
		e = err_sys(-errno, "tid %d: block signals", inj->tid);
		back = inj->saved;
		regs_apply_restart(&back);
		pt_set_regs(inj->tid, &back);	/* parked: put it back */
	}
	inj_fault_point();
	if (e)
		goto out;
	inj->safe = 1;
	inj->trap = 0;
	inj->have_saved = 1;
out:
	if (e && !inj->safe) {
		free(inj->area_saved);
		inj->area_saved = NULL;
	}
	free(buf);
	free(xs);
	return e;
}

/* Resume with `how` and wait for the next stop that is not a group stop
 * or one of stop_sig's signals somebody else sent (the task ignores it:
 * dropping it changes nothing). *st: the wait status. */
static int resume_wait(struct injector *inj, int how, int *st, int want_stop_sig)
{
	struct user_regs_struct r;
	siginfo_t si;

	for (;;) {
		if (ptrace(how, inj->tid, 0, 0) < 0)
			return err_sys(-errno, "tid %d: resume (ptrace %d)", inj->tid, how);
		while (waitpid(inj->tid, st, __WALL) < 0)
			if (errno != EINTR)
				return err_sys(-errno, "tid %d: wait", inj->tid);
		if (WIFEXITED(*st) || WIFSIGNALED(*st))
			return err_set(-ESRCH, "pid %d: exited while cryo worked on it", inj->tid);
		if (!WIFSTOPPED(*st) || (*st >> 16) == PTRACE_EVENT_STOP)
			continue;
		if (WSTOPSIG(*st) == (SIGTRAP | 0x80))
			return 0;
		if (inj->stop_sig && WSTOPSIG(*st) == inj->stop_sig) {
			/* ours: a tkill made at the "syscall; ret" (si_pid is in
			 * the task's pid namespace: not comparable to ours) */
			if (want_stop_sig && ptrace(PTRACE_GETSIGINFO, inj->tid, 0, &si) == 0 &&
			    si.si_code == SI_TKILL && pt_get_regs(inj->tid, &r) == 0 &&
			    r.rip == inj->rc.syscall_ret + 2)
				return 0;
			err_clear();
			continue;
		}
		warn("tid %d: signal %d arrived during syscall injection", inj->tid,
		     WSTOPSIG(*st));
	}
}

int injsafe_syscall(struct injector *inj, long nr, const uint64_t a[6], long *ret)
{
	struct user_regs_struct r = inj->saved;
	int st, e;

	r.rax = (uint64_t)nr;
	r.orig_rax = (uint64_t)-1;
	r.rdi = a[0];
	r.rsi = a[1];
	r.rdx = a[2];
	r.r10 = a[3];
	r.r8 = a[4];
	r.r9 = a[5];
	r.rip = inj->rc.syscall_ret;
	r.rsp = inj->chain;
	r.eflags &= ~X86_TF;
	e = pt_set_regs(inj->tid, &r);
	inj_fault_point();
	if (!e)
		e = resume_wait(inj, PTRACE_SYSCALL, &st, 0);	/* entry */
	inj_fault_point();
	if (!e)
		e = resume_wait(inj, PTRACE_SYSCALL, &st, 0);	/* exit */
	inj_fault_point();
	if (!e)
		e = pt_get_regs(inj->tid, &r);
	if (e)
		return err_ctx(e, "tid %d: injected syscall %ld", inj->tid, nr);
	if (r.rip != inj->rc.syscall_ret + 2)
		return err_set(-EIO, "tid %d: injected syscall %ld ended at %#llx, not %#llx",
			       inj->tid, nr, (unsigned long long)r.rip,
			       (unsigned long long)inj->rc.syscall_ret + 2);
	*ret = (long)r.rax;
	return 0;
}

/* An ignored signal, not blocked and not pending, to end batches with:
 * one the task has set to SIG_IGN, or one whose default is to ignore it
 * and that has no handler. None: batches are not used. */
static int pick_stop_sig(struct injector *inj)
{
	static const int dfl_ignored[] = { SIGURG, SIGWINCH, SIGCHLD };
	struct proc_status st;
	uint64_t busy;

	if (proc_status(inj->tid, inj->tid, &st)) {
		err_clear();
		return 0;
	}
	busy = inj->saved_sigmask | st.sig_pnd | st.shd_pnd | st.sig_cgt;
	for (size_t i = 0; i < sizeof(dfl_ignored) / sizeof(dfl_ignored[0]); i++) {
		uint64_t bit = 1ull << (dfl_ignored[i] - 1);

		if (!(busy & bit))
			return dfl_ignored[i];
	}
	for (int s = 1; s < 64; s++) {
		uint64_t bit = 1ull << (s - 1);

		if (s != SIGKILL && s != SIGSTOP && (st.sig_ign & bit) && !(busy & bit))
			return s;
	}
	return 0;
}

int injsafe_undo(struct injector *inj, long nr, uint64_t a0, uint64_t a1)
{
	struct user_regs_struct r = inj->saved;
	uint8_t buf[HEAD_LEN];

	if (!inj->safe)
		return -EAGAIN;
	if (inj->page)
		return -EBUSY;	/* the one undo frame unmaps the batch page */
	/* F1: the call through "syscall; ret", whose ret leads to F0 */
	r.rax = (uint64_t)nr;
	r.rdi = a0;
	r.rsi = a1;
	r.rip = inj->rc.syscall_ret;
	r.rsp = inj->chain_plain;
	memset(buf, 0, sizeof(buf));
	frame_build(buf, inj->chain_unmap, inj, &r, ~0ull, NULL, 0);
	if (write_task(inj->tid, inj->chain_unmap, buf, sizeof(buf)))
		return err_set(-EFAULT, "tid %d: write its way back", inj->tid);
	inj->chain = inj->chain_unmap;
	return park(inj);
}

int injsafe_undo_none(struct injector *inj)
{
	if (!inj->safe || inj->chain == inj->chain_plain)
		return 0;
	inj->chain = inj->chain_plain;
	return park(inj);
}

int injsafe_map_page(struct injector *inj, uint64_t len, uint64_t *page)
{
	uint64_t addr = inj->rc.page_hint, all = ~0ull, mask;
	uint64_t a[6] = { addr, len, PROT_READ | PROT_WRITE | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0 };
	long ret;
	int e;

	if (!inj->safe || !addr || inj->chain != inj->chain_plain)
		return -EAGAIN;
	if (!inj->stop_sig) {
		inj->stop_sig = pick_stop_sig(inj);
		if (!inj->stop_sig)
			return -EAGAIN;
		mask = all & ~(1ull << (inj->stop_sig - 1));
		if (ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &mask) < 0)
			return err_sys(-errno, "tid %d: block signals", inj->tid);
	}
	/* the way back unmaps the page from before it exists: MAP_FIXED_NOREPLACE
	 * puts it at addr, which is free in the frozen process */
	e = injsafe_undo(inj, SYS_munmap, addr, len);
	if (e)
		return e;
	e = injsafe_syscall(inj, SYS_mmap, a, &ret);
	if (!e && (uint64_t)ret == addr) {
		inj->page = addr;
		inj->page_len = len;
		*page = addr;
		return 0;
	}
	/* refused (W+X under MDWE or an LSM) or taken: no page */
	if (!e)
		e = injsafe_undo_none(inj);
	if (!e && !(ret < 0 && ret > -4096)) {	/* a kernel that ignored NOREPLACE */
		uint64_t u[6] = { (uint64_t)ret, len };

		e = injsafe_syscall(inj, SYS_munmap, u, &ret);
	}
	return e ? e : -EAGAIN;
}

int injsafe_unmap_page(struct injector *inj)
{
	uint64_t a[6] = { inj->page, inj->page_len };
	long ret;
	int e;

	if (!inj->page)
		return 0;
	/* the unmap runs in any case now: the way back need not do it */
	inj->chain = inj->chain_plain;
	e = injsafe_syscall(inj, SYS_munmap, a, &ret);
	if (!e && ret < 0)
		e = err_sys((int)ret, "tid %d: unmap the batch page", inj->tid);
	if (!e)
		inj->page = 0;
	return e;
}

int injsafe_run_stub(struct injector *inj, uint64_t rip, uint64_t rbx)
{
	struct user_regs_struct r = inj->saved;
	int st, e;

	r.rip = rip;
	r.rbx = rbx;
	r.rsp = inj->chain;
	r.orig_rax = (uint64_t)-1;
	r.eflags &= ~X86_TF;
	e = pt_set_regs(inj->tid, &r);
	inj_fault_point();
	if (!e)
		e = resume_wait(inj, PTRACE_CONT, &st, 1);
	inj_fault_point();
	if (!e)
		e = pt_get_regs(inj->tid, &r);
	if (!e && r.rip != inj->rc.syscall_ret + 2)
		e = err_set(-EIO, "tid %d: batch stopped at %#llx", inj->tid,
			    (unsigned long long)r.rip);
	return e;
}

int injsafe_finish(struct injector *inj)
{
	struct user_regs_struct r;
	int e = injsafe_unmap_page(inj);

	/* mask first: a cryo killed in between leaves registers that still
	 * lead back to F0, which sets the same mask */
	if (!e && ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &inj->saved_sigmask) < 0)
		e = err_sys(-errno, "tid %d: restore signal mask", inj->tid);
	inj_fault_point();
	if (!e) {
		r = inj->saved;
		regs_apply_restart(&r);
		e = pt_set_regs(inj->tid, &r);
	}
	inj_fault_point();
	/* the frames' bytes last: nothing leads to them any more */
	if (!e && write_task(inj->tid, inj->area, inj->area_saved, inj->area_len))
		e = err_set(-EFAULT, "tid %d: put back its stack below %#llx", inj->tid,
			    (unsigned long long)(inj->area + inj->area_len));
	/* done either way: a task that died or cannot be traced any more
	 * gives no second chance (release_task finishes once) */
	free(inj->area_saved);
	inj->area_saved = NULL;
	inj->safe = 0;
	inj->have_saved = 0;
	return e;
}
