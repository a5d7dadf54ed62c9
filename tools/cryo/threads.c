/* Threads: registers (general and extended), the signal mask, the
 * alternate signal stack, clear-child-tid, the robust futex list and the
 * rseq registration. Only single-threaded processes for now: a second
 * thread is refused by name. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

/* glibc's sys/ptrace.h has the request but not the struct */
struct rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

int threads_dump(struct dump_task *t)
{
	struct lx_thread th;
	struct lx_gpregs gp;
	struct user_regs_struct regs;
	struct rseq_conf rseq;
	stack_t ss;
	uint64_t clear_tid = 0, head = 0, hlen = 0;
	void *xs = NULL;
	size_t xlen = 0;
	uint8_t *rec;
	long ret;
	int e;

	if (t->ntids > 1)
		return err_set(-EOPNOTSUPP, "pid %d: thread %d: multi-threaded processes are not"
			       " supported yet", t->pid, t->tids[1]);
	memset(&th, 0, sizeof(th));
	th.tid = t->pid;
	if (t->inj.have_saved)
		th.sigmask = t->inj.saved_sigmask;
	else if (ptrace(PTRACE_GETSIGMASK, t->pid, (void *)8, &th.sigmask) < 0)
		return err_sys(-errno, "tid %d: read signal mask", t->pid);
	if (t->status.sig_pnd)
		return err_set(-EOPNOTSUPP, "tid %d: pending signal %d: pending signals are not"
			       " supported yet", t->pid, __builtin_ctzll(t->status.sig_pnd) + 1);

	e = dump_inject_out(t, SYS_prctl, PR_GET_TID_ADDRESS, 0, 0, 0, 2, &clear_tid,
			    sizeof(clear_tid), &ret);
	if (e)
		return e;
	th.clear_tid_addr = clear_tid;
	if (syscall(SYS_get_robust_list, t->pid, &head, &hlen) < 0)
		return err_sys(-errno, "tid %d: get_robust_list", t->pid);
	th.robust_list = head;
	th.robust_len = hlen;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, (void *)sizeof(rseq), &rseq) ==
	    sizeof(rseq)) {
		th.rseq_addr = rseq.rseq_abi_pointer;
		th.rseq_len = rseq.rseq_abi_size;
		th.rseq_sig = rseq.signature;
	}
	e = dump_inject_out(t, SYS_sigaltstack, 0, 0, 0, 0, 2, &ss, sizeof(ss), &ret);
	if (e)
		return e;
	th.sas_sp = (uint64_t)ss.ss_sp;
	th.sas_size = ss.ss_size;
	th.sas_flags = (uint32_t)ss.ss_flags;

	/* registers as they were when frozen, not the injector's */
	if (t->inj.have_saved)
		regs = t->inj.saved;
	else if ((e = pt_get_regs(t->pid, &regs)))
		return e;
	memset(&gp, 0, sizeof(gp));
	gp.tid = t->pid;
	memcpy(gp.regs, &regs, sizeof(regs));
	e = pt_get_xstate(t->pid, &xs, &xlen);
	if (e)
		return e;
	rec = malloc(8 + xlen);
	if (!rec) {
		free(xs);
		return -ENOMEM;
	}
	((uint32_t *)rec)[0] = (uint32_t)t->pid;
	((uint32_t *)rec)[1] = (uint32_t)xlen;
	memcpy(rec + 8, xs, xlen);
	free(xs);
	e = img_add(t->w, LX_SEC_THREADS, t->index, sizeof(th), &th, sizeof(th));
	if (!e)
		e = img_add(t->w, LX_SEC_GPREGS, t->index, sizeof(gp), &gp, sizeof(gp));
	if (!e)
		e = img_add(t->w, LX_SEC_XSTATE, t->index, (uint32_t)(8 + xlen), rec, 8 + xlen);
	free(rec);
	return e;
}

_Static_assert(sizeof(struct user_regs_struct) == LX_GPREGS_NR * 8, "gpregs layout");

/* Registers of a task frozen in an interrupted syscall become registers
 * that re-run it, so the restored task sees no spurious EINTR. A sleep
 * the kernel was resuming through restart_syscall cannot be re-run: its
 * remaining time lived in the old kernel task. */
static void prepare_resume(pid_t tid, struct user_regs_struct *r)
{
	if ((long)r->orig_rax >= 0 && (long)r->rax == -ERESTART_RESTARTBLOCK) {
		if ((long)r->orig_rax == SYS_restart_syscall) {
			warn("tid %d: interrupted while resuming a sleep: it returns EINTR", tid);
			r->rax = (uint64_t)-EINTR;
			r->orig_rax = (uint64_t)-1;
			return;
		}
		/* re-run the original call: relative timeouts start over */
		r->rax = r->orig_rax;
		r->rip -= 2;
		r->orig_rax = (uint64_t)-1;
		return;
	}
	regs_apply_restart(r);
}

int threads_restore(struct restore_task *t)
{
	struct lx_thread *th;
	struct lx_gpregs *gp;
	struct user_regs_struct regs;
	const void *xs;
	uint64_t xlen, a;
	uint32_t rs;
	size_t n, ng;
	int e;

	e = img_records(t->im, LX_SEC_THREADS, t->index, sizeof(*th), 64, (void **)&th, &n);
	if (e)
		return err_ctx(e, "image: task %u: threads", t->index);
	e = img_records(t->im, LX_SEC_GPREGS, t->index, sizeof(*gp), sizeof(*gp), (void **)&gp, &ng);
	if (e) {
		free(th);
		return err_ctx(e, "image: task %u: gpregs", t->index);
	}
	if (n != 1 || ng != 1 || img_find(t->im, LX_SEC_XSTATE, t->index, &xs, &xlen, &rs) ||
	    xlen < 8 || ((const uint32_t *)xs)[1] != xlen - 8) {
		e = err_set(-EINVAL, "image: task %u: thread records are inconsistent", t->index);
		goto out;
	}

	if (th->sas_size || th->sas_flags) {
		stack_t ss = { .ss_sp = (void *)th->sas_sp, .ss_size = th->sas_size,
			       .ss_flags = (int)th->sas_flags & ~SS_ONSTACK };

		e = restore_put(t, 0, &ss, sizeof(ss), &a);
		if (!e)
			e = restore_sys(t, "sigaltstack", SYS_sigaltstack, a, 0, 0, 0, 0, 0, NULL);
	}
	if (!e && th->robust_list)
		e = restore_sys(t, "set_robust_list", SYS_set_robust_list, th->robust_list,
				th->robust_len, 0, 0, 0, 0, NULL);
	if (!e)
		e = restore_sys(t, "set_tid_address", SYS_set_tid_address, th->clear_tid_addr,
				0, 0, 0, 0, 0, NULL);
	if (!e)
		e = mm_unmap_scratch(t);
	/* rseq last: from here on every return to user space updates it */
	if (!e && th->rseq_addr)
		e = restore_sys(t, "rseq", SYS_rseq, th->rseq_addr, th->rseq_len, 0,
				th->rseq_sig, 0, 0, NULL);
	if (e)
		goto out;

	e = pt_set_xstate(t->pid, (const uint8_t *)xs + 8, xlen - 8);
	if (e)
		goto out;
	memcpy(&regs, gp->regs, sizeof(regs));
	prepare_resume(t->pid, &regs);
	e = pt_set_regs(t->pid, &regs);
	if (!e && ptrace(PTRACE_SETSIGMASK, t->pid, (void *)8, &th->sigmask) < 0)
		e = err_sys(-errno, "tid %d: set signal mask", t->pid);
	t->inj.have_saved = 0;	/* these registers are final */
out:
	free(th);
	free(gp);
	return e;
}
