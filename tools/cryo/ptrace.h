/* ptrace plumbing: freezing tasks without their cooperation, register
 * sets, and running system calls inside a stopped task. */
#ifndef CRYO_PTRACE_H
#define CRYO_PTRACE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* PTRACE_SEIZE + PTRACE_INTERRUPT, then wait for the stop. */
int pt_seize(pid_t tid);
int pt_interrupt_wait(pid_t tid);
int pt_detach(pid_t tid);

int pt_get_regs(pid_t tid, struct user_regs_struct *regs);
int pt_set_regs(pid_t tid, const struct user_regs_struct *regs);
/* Extended state: *buf is malloc'ed with the size the kernel reports. */
int pt_get_xstate(pid_t tid, void **buf, size_t *len);
int pt_set_xstate(pid_t tid, const void *buf, size_t len);

/* Kernel-internal restart codes seen in rax of a task stopped in a syscall */
#define ERESTARTSYS		512
#define ERESTARTNOINTR		513
#define ERESTARTNOHAND		514
#define ERESTART_RESTARTBLOCK	516

/* A stopped task we run system calls in. The task must be in a ptrace
 * stop; syscalls run at syscall_ip (the address of a `syscall`
 * instruction in the task's address space), and the task's registers are
 * put back by inj_finish().
 *
 * Two ways to run one: "trap" mode single-steps over the instruction (one
 * stop, reported at syscall exit as a SIGTRAP), "slow" mode stops at
 * syscall entry and exit (two stops). Trap mode needs SIGTRAP unblocked
 * while we inject: the kernel forces the step's SIGTRAP, and forcing a
 * blocked or ignored signal resets the task's handler for it to SIG_DFL.
 * So it is used only when SIGTRAP is neither ignored nor pending when the
 * injection starts; a SIGTRAP that arrives meanwhile is told apart by its
 * si_code and put back in its queue (inj_requeue_trap). */
struct injector {
	pid_t tid;
	uint64_t syscall_ip;
	struct user_regs_struct saved;
	uint64_t saved_sigmask;
	int have_saved;
	int trap;		/* trap mode (set when the registers are saved) */
	int no_trap;		/* caller's choice: never use trap mode */
	int stepped;		/* single-stepped since the registers were saved */
	int sig_hint;		/* hint_bits are known: no /proc read to pick the mode */
	uint64_t hint_bits;	/* pending (thread and shared) | ignored signals */
	/* self-recovering injection (injsafe.h): rc.sigreturn != 0 asks for it */
	struct {
		uint64_t syscall_ret, sigreturn, page_hint;
	} rc;
	int safe;		/* this session's state recovers by itself */
	int stop_sig;		/* an ignored signal that ends a batch; 0: none */
	uint64_t chain;		/* rsp of the way back in force */
	uint64_t chain_plain;	/* back to the saved state */
	uint64_t chain_unmap;	/* the same, unmapping the batch page first */
	uint64_t area;		/* stack bytes the frames use, and their old content */
	size_t area_len;
	void *area_saved;
	uint64_t page, page_len;	/* the batch page the way back unmaps */
};

/* Prepare: save the task's registers and find a syscall instruction in
 * its vdso (so nothing in the task's memory changes). */
int inj_init(struct injector *inj, pid_t tid);
/* The same, with the vdso's range known already (from /proc/PID/maps) */
int inj_init_vdso(struct injector *inj, pid_t tid, uint64_t start, uint64_t end);
/* Use this address for the syscall instruction from now on. */
void inj_set_syscall_ip(struct injector *inj, uint64_t ip);
/* Run one syscall; *ret gets the raw return (negative errno on error).
 * Returns 0 if the syscall ran, -errno if ptrace failed. */
int inj_syscall(struct injector *inj, long nr, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret);
/* The caller read /proc/PID/status for this thread already: its pending
 * (SigPnd | ShdPnd) and ignored (SigIgn) signals pick the mode */
void inj_hint_signals(struct injector *inj, uint64_t pending_or_ignored);
/* Save registers and signal mask, block signals and pick the mode, as the
 * first inj_syscall does (a no-op after that). */
int inj_prepare(struct injector *inj);
/* The task is in a signal-delivery stop for a SIGTRAP that is not ours:
 * put it back in its queue (it stays pending, blocked, as it would have
 * without trap mode) and leave trap mode. The task's registers are
 * clobbered (a getpid runs at syscall_ip). */
int inj_requeue_trap(struct injector *inj);
/* The call could make SIGTRAP ignored or pending (trap mode must not run
 * it, nor anything after it) */
int inj_touches_trap(long nr, uint64_t a1, uint64_t a2, uint64_t a3);
/* The same for any signal */
int inj_touches_sig(long nr, uint64_t a1, uint64_t a2, uint64_t a3, int sig);
/* Put back the saved registers, with the syscall restart the kernel would
 * have applied (see regs_apply_restart). The signal mask is put back too. */
int inj_finish(struct injector *inj);
/* The task is gone: forget its injected state without touching it */
void inj_abandon(struct injector *inj);
/* Turn "stopped in an interrupted syscall" registers into "about to
 * restart it" registers, as the kernel does when no handler runs. */
void regs_apply_restart(struct user_regs_struct *r);

/* Find "0f 05" in [start, end) of tid's memory; 0 if none. */
uint64_t find_syscall_insn(pid_t tid, uint64_t start, uint64_t end);

/* Memory access to a stopped task. Both handle non-readable/writable
 * pages through /proc/PID/mem (FOLL_FORCE) when process_vm_* refuses. */
int mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len);

#endif
