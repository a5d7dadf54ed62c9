/* Threads: freezing every thread of a process, and per thread its
 * registers (general and extended, fs/gs base hence TLS), signal mask,
 * alternate signal stack, clear-child-tid, robust futex list, rseq
 * registration and name. On restore the threads are re-created inside the
 * restored process with their original thread ids (an injected clone3 with
 * set_tid), each one auto-attached through PTRACE_O_TRACECLONE so that it
 * never runs a user instruction before its own registers are in place. */
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "dirty.h"
#include "err.h"
#include "restbatch.h"

/* glibc's sys/ptrace.h has the request but not the struct */
struct rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

#define RED_ZONE 128
#define SCRATCH_LEN 256

/* ---------------------------------------------------------------- dump */

static int has_tid(const pid_t *tids, size_t n, pid_t tid)
{
	for (size_t i = 0; i < n; i++)
		if (tids[i] == tid)
			return 1;
	return 0;
}

/* A few calls report EINTR, not a restart code, when the task merely
 * stops for ptrace (see signal(7), "interruption by a stop signal"):
 * left alone, the frozen thread would see a spurious EINTR after the
 * dump, and the restored one too. When no signal the thread would
 * handle is pending, the EINTR can only come from our freeze, so turn it
 * into -ERESTARTNOHAND: the kernel (on detach) or prepare_resume (on
 * restore) then re-runs the call, and a real handler would still get
 * EINTR as with the original call. Relative timeouts start over. */
static int unfreeze_eintr(pid_t pid, pid_t tid)
{
	static const long eintr_calls[] = {
		SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2,
		SYS_rt_sigtimedwait, SYS_io_getevents, SYS_io_pgetevents,
	};
	struct user_regs_struct r;
	struct proc_status st;
	uint64_t blocked;
	int e = pt_get_regs(tid, &r), hit = 0;

	if (e)
		return e;
	if ((long)r.rax != -EINTR || (long)r.orig_rax < 0)
		return 0;
	for (size_t i = 0; i < sizeof(eintr_calls) / sizeof(eintr_calls[0]); i++)
		hit |= (long)r.orig_rax == eintr_calls[i];
	if (!hit)
		return 0;
	e = proc_status(pid, tid, &st);
	if (e)
		return e;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)8, &blocked) < 0)
		return err_sys(-errno, "pid %d tid %d: read signal mask", pid, tid);
	if ((st.sig_pnd | st.shd_pnd) & ~blocked)
		return 0;	/* a real signal interrupted it: keep EINTR */
	r.rax = (uint64_t)-ERESTARTNOHAND;
	return pt_set_regs(tid, &r);
}

/* A thread that could not be seized because it is exiting or gone: as
 * good as never listed (a thread's exit changes nothing the dump keeps) */
static int thread_gone(pid_t pid, pid_t tid)
{
	struct proc_stat st;
	int e = proc_stat(pid, tid, &st);

	err_clear();
	if (e == -ENOENT || e == -ESRCH)
		return 1;
	return !e && (st.state == 'Z' || st.state == 'X');
}

int threads_freeze(struct dump_task *t)
{
	pid_t *tids = NULL, *now;
	size_t n = 0, nnow, cap = 0;
	int e = 0, added;

	/* the leader is already frozen by the caller */
	do {
		e = proc_tids(t->pid, &now, &nnow);
		if (e)
			break;
		added = 0;
		for (size_t i = 0; i < nnow && !e; i++) {
			if (has_tid(tids, n, now[i]))
				continue;
			if (n == cap) {
				pid_t *nt = realloc(tids, (cap = cap ? 2 * cap : 16) * sizeof(*nt));

				if (!nt) {
					e = -ENOMEM;
					break;
				}
				tids = nt;
			}
			if (now[i] != t->pid) {
				e = pt_seize(now[i]);
				if (e && thread_gone(t->pid, now[i])) {	/* it exited meanwhile */
					err_clear();
					e = 0;
					continue;
				}
				if (e) {
					char why[320];

					err_clear();
					trace_refusal_reason(now[i], why, sizeof(why));	/* owner.c */
					e = err_set(-EPERM, "pid %d: cannot trace its thread %d: %s",
						    t->pid, now[i], why);
					break;
				}
				e = pt_interrupt_wait(now[i]);
				if (e == -ESRCH) {
					/* it exited before it stopped: the wait
					 * that saw it took it off cryo's hands */
					err_clear();
					e = 0;
					continue;
				}
				if (e) {
					e = err_ctx(e, "pid %d: freeze thread %d", t->pid, now[i]);
					/* seized: detach it with the others */
					tids[n++] = now[i];
					break;
				}
			}
			tids[n++] = now[i];
			added = 1;
		}
		free(now);
		/* a thread not yet frozen may have created another one */
	} while (!e && added);

	/* leader first: the image's thread 0 is the leader */
	for (size_t i = 1; i < n; i++)
		if (tids[i] == t->pid) {
			tids[i] = tids[0];
			tids[0] = t->pid;
		}
	free(t->tids);
	t->tids = tids;
	t->ntids = n;
	for (size_t i = 0; i < n && !e; i++)
		e = unfreeze_eintr(t->pid, tids[i]);
	return e;
}

int threads_unfreeze(struct dump_task *t)
{
	int e = 0;

	for (size_t i = 0; i < t->ntids; i++)
		if (t->tids[i] != t->pid) {
			int r = pt_detach(t->tids[i]);

			if (!e)
				e = r;
		}
	return e;
}

/* Injection into one frozen thread, writing outputs into a scratch area
 * below the red zone of that thread's stack; the leader uses the dump's
 * own injector and scratch (dump_inject_out). */
struct thread_inj {
	struct dump_task *t;
	pid_t tid;
	struct injector own;
	struct injector *inj;
	uint64_t scratch;
	uint8_t saved[SCRATCH_LEN];
	int scratch_ok;
};

static int tinj_init(struct thread_inj *ti, struct dump_task *t, pid_t tid)
{
	struct user_regs_struct r;
	int e;

	memset(ti, 0, sizeof(*ti));
	ti->t = t;
	ti->tid = tid;
	if (tid == t->pid) {
		ti->inj = &t->inj;
		return 0;
	}
	/* same address space: the leader's vdso syscall instruction */
	ti->own.tid = tid;
	ti->own.syscall_ip = t->inj.syscall_ip;
	ti->own.rc = t->inj.rc;
	ti->inj = &ti->own;
	e = pt_get_regs(tid, &r);
	if (e)
		return e;
	ti->scratch = (r.rsp - RED_ZONE - SCRATCH_LEN) & ~15ull;
	e = mem_read(tid, ti->scratch, ti->saved, SCRATCH_LEN);
	if (e)
		return err_ctx(e, "pid %d tid %d: no room below its stack pointer", t->pid, tid);
	ti->scratch_ok = 1;
	return 0;
}

static int tinj_out(struct thread_inj *ti, long nr, uint64_t a1, uint64_t a2, int out_arg,
		    void *out, size_t out_len, long *ret)
{
	uint64_t a[2] = { a1, a2 };
	int e;

	if (ti->tid == ti->t->pid)
		return dump_inject_out(ti->t, nr, a1, a2, 0, 0, out_arg, out, out_len, ret);
	if (out_len > SCRATCH_LEN || out_arg < 1 || out_arg > 2)
		return -EINVAL;
	a[out_arg - 1] = ti->scratch;
	e = inj_syscall(ti->inj, nr, a[0], a[1], 0, 0, 0, 0, ret);
	if (e)
		return e;
	if (*ret < 0 && *ret > -4096)
		return err_sys((int)*ret, "pid %d tid %d: injected syscall %ld", ti->t->pid,
			       ti->tid, nr);
	return mem_read(ti->tid, ti->scratch, out, out_len);
}

/* Put the thread back as it was frozen: scratch bytes, then registers. */
static int tinj_finish(struct thread_inj *ti)
{
	int e = 0, e2;

	if (ti->inj != &ti->own)
		return 0;	/* the leader is finished by dump.c */
	if (ti->scratch_ok)
		e = mem_write(ti->tid, ti->scratch, ti->saved, SCRATCH_LEN);
	e2 = inj_finish(&ti->own);
	return e ? e : e2;
}

/* A thread's clear-tid address and alternate stack in one batch, in the
 * page the leader mapped for all threads; -EAGAIN: inject one by one */
static int thread_reads_batched(struct thread_inj *ti, uint64_t page, uint64_t *clear_tid,
				stack_t *ss)
{
	struct inj_batch b;
	void *loc[2];
	uint64_t a[2];
	int e, e2;

	if (!page || ti->inj != &ti->own)
		return -EAGAIN;
	e = batch_begin_at(&b, ti->inj, page, BATCH_PAGE);
	if (e)
		return e;
	a[0] = batch_mem(&b, sizeof(*clear_tid), &loc[0]);
	a[1] = batch_mem(&b, sizeof(*ss), &loc[1]);
	e = batch_add(&b, SYS_prctl, PR_GET_TID_ADDRESS, a[0], 0, 0, 0, 0);
	if (!e)
		e = batch_add(&b, SYS_sigaltstack, 0, a[1], 0, 0, 0, 0);
	if (!e)
		e = batch_run(&b);
	for (int i = 0; i < 2 && !e; i++)
		if (b.ret[i] < 0 && b.ret[i] > -4096)
			e = err_sys((int)b.ret[i], "pid %d tid %d: injected syscall %ld",
				    ti->t->pid, ti->tid, i ? (long)SYS_sigaltstack : (long)SYS_prctl);
	if (!e) {
		memcpy(clear_tid, loc[0], sizeof(*clear_tid));
		memcpy(ss, loc[1], sizeof(*ss));
	}
	e2 = batch_end(&b);
	return e ? e : e2;
}

static int dump_one_thread(struct dump_task *t, size_t idx, struct lx_thread *th,
			   struct lx_gpregs *gp, uint8_t **xsrec, size_t *xsrec_len, uint64_t page)
{
	pid_t tid = t->tids[idx];
	struct thread_inj ti;
	struct proc_status st;
	struct user_regs_struct regs;
	struct rseq_conf rseq;
	stack_t ss;
	uint64_t clear_tid = 0, head = 0, hlen = 0;
	void *xs = NULL;
	size_t xlen = 0;
	char name[64], *s;
	size_t len;
	long ret;
	int e, e2;

	memset(th, 0, sizeof(*th));
	th->tid = (uint32_t)tid;
	e = proc_status(t->pid, tid, &st);
	if (e)
		return e;
	/* per-thread state that cryo restores once per process */
	if (memcmp(st.uid, t->status.uid, sizeof(st.uid)) ||
	    memcmp(st.gid, t->status.gid, sizeof(st.gid)))
		return err_set(-EOPNOTSUPP, "pid %d tid %d: credentials: differ from the main"
			       " thread's (per-thread setuid): not supported", t->pid, tid);
	if (st.seccomp)
		return err_set(-EOPNOTSUPP, "pid %d tid %d: seccomp mode %d: seccomp filters are"
			       " not supported", t->pid, tid, st.seccomp);
	th->sig_pending = st.sig_pnd;

	snprintf(name, sizeof(name), "task/%d/comm", tid);
	e = proc_read(t->pid, name, &s, &len);
	if (e)
		return e;
	s[strcspn(s, "\n")] = 0;
	strncpy(th->comm, s, sizeof(th->comm) - 1);
	free(s);

	if (syscall(SYS_get_robust_list, tid, &head, &hlen) < 0)
		return err_sys(-errno, "pid %d tid %d: get_robust_list", t->pid, tid);
	th->robust_list = head;
	th->robust_len = hlen;
	memset(&rseq, 0, sizeof(rseq));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(rseq), &rseq) < 0)
		return err_sys(-errno, "pid %d tid %d: rseq: PTRACE_GET_RSEQ_CONFIGURATION",
			       t->pid, tid);
	if (rseq.flags)
		return err_set(-EOPNOTSUPP, "pid %d tid %d: rseq: flags %#x not supported",
			       t->pid, tid, rseq.flags);
	th->rseq_addr = rseq.rseq_abi_pointer;
	th->rseq_len = rseq.rseq_abi_size;
	th->rseq_sig = rseq.signature;

	/* registers as they were when frozen, before any injection */
	if (idx == 0 && t->inj.have_saved)
		regs = t->inj.saved;
	else if ((e = pt_get_regs(tid, &regs)))
		return e;
	dirty_fix_regs(t, tid, &regs);	/* a sleep a pre-dump interrupted */
	memset(gp, 0, sizeof(*gp));
	gp->tid = (uint32_t)tid;
	memcpy(gp->regs, &regs, sizeof(regs));
	e = pt_get_xstate(tid, &xs, &xlen);
	if (e)
		return e;
	*xsrec = malloc(8 + xlen);
	if (!*xsrec) {
		free(xs);
		return -ENOMEM;
	}
	((uint32_t *)*xsrec)[0] = (uint32_t)tid;
	((uint32_t *)*xsrec)[1] = (uint32_t)xlen;
	memcpy(*xsrec + 8, xs, xlen);
	*xsrec_len = 8 + xlen;
	free(xs);

	/* what only the thread itself can tell */
	e = tinj_init(&ti, t, tid);
	if (!e && ti.inj == &ti.own)
		inj_hint_signals(&ti.own, st.sig_pnd | st.shd_pnd | st.sig_ign);
	if (!e) {
		e = thread_reads_batched(&ti, page, &clear_tid, &ss);
		if (e != -EAGAIN)
			goto got_reads;
		e = 0;
	}
	if (!e)
		e = tinj_out(&ti, SYS_prctl, PR_GET_TID_ADDRESS, 0, 2, &clear_tid,
			     sizeof(clear_tid), &ret);
	if (!e)
		e = tinj_out(&ti, SYS_sigaltstack, 0, 0, 2, &ss, sizeof(ss), &ret);
	if (!e && ret < 0)
		e = err_sys((int)ret, "pid %d tid %d: sigaltstack", t->pid, tid);
got_reads:
	if (!e) {
		th->clear_tid_addr = clear_tid;
		th->sas_sp = (uint64_t)ss.ss_sp;
		th->sas_size = ss.ss_size;
		th->sas_flags = (uint32_t)ss.ss_flags;
	}
	/* the mask as frozen, not the all-blocked one of the injector */
	if (!e && ti.inj->have_saved)
		th->sigmask = ti.inj->saved_sigmask;
	else if (!e && ptrace(PTRACE_GETSIGMASK, tid, (void *)8, &th->sigmask) < 0)
		e = err_sys(-errno, "pid %d tid %d: read signal mask", t->pid, tid);
	e2 = tinj_finish(&ti);
	return e ? e : e2;
}

int threads_dump(struct dump_task *t)
{
	struct lx_thread *th = calloc(t->ntids, sizeof(*th));
	struct lx_gpregs *gp = calloc(t->ntids, sizeof(*gp));
	uint8_t *xs = NULL, *rec = NULL;
	size_t xs_len = 0, rec_len = 0;
	struct inj_batch page = { 0 };
	int e = 0;

	if (!th || !gp) {
		e = -ENOMEM;
		goto out;
	}
	if (!t->ntids || t->tids[0] != t->pid) {
		e = err_set(-EINVAL, "pid %d: threads were not frozen", t->pid);
		goto out;
	}
	/* one page for the other threads' batches, mapped by the leader;
	 * not when injected state recovers by itself: a page is used only
	 * by the thread whose way back unmaps it (injsafe.c) */
	if (t->ntids > 1 && !t->inj.rc.sigreturn) {
		e = batch_begin(&page, &t->inj);
		if (e == -EAGAIN) {
			err_clear();
			e = 0;
		}
		if (e)
			goto out;
	}
	for (size_t i = 0; i < t->ntids && !e; i++) {
		e = dump_one_thread(t, i, &th[i], &gp[i], &rec, &rec_len, page.page);
		if (e)
			break;
		if (!xs) {
			xs = malloc(t->ntids * rec_len);
			xs_len = rec_len;
			if (!xs)
				e = -ENOMEM;
		} else if (rec_len != xs_len) {
			e = err_set(-EOPNOTSUPP, "pid %d tid %d: xstate: %zu bytes, other threads"
				    " have %zu", t->pid, t->tids[i], rec_len - 8, xs_len - 8);
		}
		if (!e)
			memcpy(xs + i * xs_len, rec, rec_len);
		free(rec);
		rec = NULL;
	}
	if (!e)
		e = img_add(t->w, LX_SEC_THREADS, t->index, sizeof(*th), th, t->ntids * sizeof(*th));
	if (!e)
		e = img_add(t->w, LX_SEC_GPREGS, t->index, sizeof(*gp), gp, t->ntids * sizeof(*gp));
	if (!e)
		e = img_add(t->w, LX_SEC_XSTATE, t->index, (uint32_t)xs_len, xs, t->ntids * xs_len);
out:
	if (page.page) {
		int e2 = batch_end(&page);

		if (!e)
			e = e2;
	}
	free(rec);
	free(xs);
	free(th);
	free(gp);
	return e;
}

_Static_assert(sizeof(struct user_regs_struct) == LX_GPREGS_NR * 8, "gpregs layout");

/* ------------------------------------------------------------- restore */

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

int thread_sys(struct restore_task *t, struct injector *inj, const char *what, long nr,
	       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, long *ret)
{
	long r;
	int e = inj_syscall(inj, nr, a1, a2, a3, a4, 0, 0, &r);

	if (e)
		return e;
	if (ret)
		*ret = r;
	if (r < 0 && r > -4096)
		return err_sys((int)r, "pid %d tid %d: %s", t->pid, inj->tid, what);
	return 0;
}

/* Wait for a stop of tid; an exit is an error. */
static int wait_stopped(pid_t tid, int *status)
{
	for (;;) {
		if (waitpid(tid, status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(-errno, "tid %d: wait", tid);
		}
		if (WIFSTOPPED(*status))
			return 0;
		return err_set(-ESRCH, "tid %d: exited during restore", tid);
	}
}

/* clone3 in trap mode: PTRACE_SINGLESTEP stops at PTRACE_EVENT_CLONE and
 * then at syscall exit (SIGTRAP, TRAP_BRKPT), one stop less than
 * PTRACE_SYSCALL. *ran = 0: a SIGTRAP of somebody else came before the
 * call ran (requeued): *r holds the registers to run it the slow way.
 * The new thread does not inherit the single-step (copy_process). */
static int clone3_step(struct injector *inj, unsigned long *msg, struct user_regs_struct *r,
		       int *ran)
{
	struct user_regs_struct want = *r;
	siginfo_t si;
	int st, e;

	*ran = 0;
	inj->stepped = 1;
	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, inj->tid, 0, 0) < 0)
			return err_sys(-errno, "pid %d: PTRACE_SINGLESTEP", inj->tid);
		e = wait_stopped(inj->tid, &st);
		if (e)
			return e;
		if ((st >> 16) == PTRACE_EVENT_CLONE) {
			if (ptrace(PTRACE_GETEVENTMSG, inj->tid, 0, msg) < 0)
				return err_sys(-errno, "pid %d: PTRACE_GETEVENTMSG", inj->tid);
			continue;
		}
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;
		if (WSTOPSIG(st) != SIGTRAP)
			return err_set(-EINTR, "pid %d: signal %d while creating a thread", inj->tid,
				       WSTOPSIG(st));
		e = pt_get_regs(inj->tid, r);
		if (!e && ptrace(PTRACE_GETSIGINFO, inj->tid, 0, &si) < 0)
			e = err_sys(-errno, "pid %d: PTRACE_GETSIGINFO", inj->tid);
		if (e)
			return e;
		*ran = r->rip == inj->syscall_ip + 2;
		if (si.si_code == TRAP_BRKPT && *ran)
			return 0;
		/* somebody else's SIGTRAP: put it back */
		{
			struct user_regs_struct done = *r;

			e = inj_requeue_trap(inj);
			*r = *ran ? done : want;
			return e;
		}
	}
}

/* Run clone3(args) in the leader, stopping at each syscall stop: the
 * PTRACE_EVENT_CLONE stop in between carries the new thread, which the
 * kernel attached to us and stopped before its first instruction. */
static int inject_clone3(struct restore_task *t, uint64_t args, pid_t *child, pid_t *inner)
{
	struct injector *inj = &t->inj;
	struct user_regs_struct r;
	unsigned long msg = 0;
	int st, stops = 0, e;
	long ret;

	*child = 0;
	if (!inj->have_saved) {	/* saves the registers and blocks signals */
		e = inj_syscall(inj, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
		if (e)
			return e;
	}
	r = inj->saved;
	r.rax = SYS_clone3;
	r.orig_rax = (uint64_t)-1;
	r.rdi = args;
	r.rsi = sizeof(struct clone_args);
	r.rip = inj->syscall_ip;
	e = pt_set_regs(t->pid, &r);
	/* trap mode: single-step it, one stop less (see ptrace.h) */
	if (!e && inj->trap) {
		e = clone3_step(inj, &msg, &r, &stops);
		if (!e && stops)
			goto created;
		if (!e)
			e = pt_set_regs(t->pid, &r);	/* not run: the slow way */
	}
	while (!e && stops < 2) {
		if (ptrace(PTRACE_SYSCALL, t->pid, 0, 0) < 0)
			return err_sys(-errno, "pid %d: PTRACE_SYSCALL", t->pid);
		e = wait_stopped(t->pid, &st);
		if (e)
			break;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			stops++;
		else if ((st >> 16) == PTRACE_EVENT_CLONE) {
			if (ptrace(PTRACE_GETEVENTMSG, t->pid, 0, &msg) < 0)
				e = err_sys(-errno, "pid %d: PTRACE_GETEVENTMSG", t->pid);
		} else if ((st >> 16) != PTRACE_EVENT_STOP)
			e = err_set(-EINTR, "pid %d: signal %d while creating a thread", t->pid,
				    WSTOPSIG(st));
	}
	if (!e)
		e = pt_get_regs(t->pid, &r);
created:
	if (e)
		return e;
	if ((long)r.rax < 0)
		return (int)(long)r.rax;
	/* the new thread's first stop: SIGSTOP, discarded by the next resume.
	 * The event message names it in cryo's pid namespace; rax in the
	 * task's (they differ under cryo -r --pidns) */
	*child = msg ? (pid_t)msg : (pid_t)r.rax;
	*inner = (pid_t)r.rax;
	return wait_stopped(*child, &st);
}

/* A thread of the restored process with thread id tid. clone3's set_tid
 * needs CAP_CHECKPOINT_RESTORE in the restored task, which a restored
 * unprivileged process no longer has: then cryo steers the next pid
 * through ns_last_pid itself and checks that it got it. */
static int create_thread(struct restore_task *t, pid_t tid, pid_t *got)
{
	struct clone_args ca;
	uint64_t a, tid_a;
	pid_t inner = 0;
	int e;

	memset(&ca, 0, sizeof(ca));
	/* what pthread_create asks for, minus what the image restores itself
	 * (TLS: fs base is in the registers; clear-child-tid: set_tid_address) */
	ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
		   CLONE_SYSVSEM;
	e = restore_put(t, 4096, &tid, sizeof(tid), &tid_a);
	ca.set_tid = tid_a;
	ca.set_tid_size = 1;
	if (!e)
		e = restore_put(t, 4096 + 64, &ca, sizeof(ca), &a);
	if (e)
		return e;
	e = inject_clone3(t, a, got, &inner);
	if (e == -EPERM) {
		ca.set_tid = 0;
		ca.set_tid_size = 0;
		e = restore_put(t, 4096 + 64, &ca, sizeof(ca), &a);
		if (!e)
			e = restore_set_last_pid(tid - 1);
		if (e)
			return err_sys(e, "pid %d: cannot choose thread id %d (set_tid needs"
				       " CAP_CHECKPOINT_RESTORE; ns_last_pid): run cryo as root, or"
				       " restore with --pidns", t->pid, tid);
		e = inject_clone3(t, a, got, &inner);
		if (!e && inner != tid)
			return err_set(-EEXIST, "pid %d: thread id %d: got %d instead (another"
				       " process took it meanwhile)", t->pid, tid, inner);
	}
	if (e == -EEXIST)
		return err_set(e, "pid %d: thread id %d is in use by another process: stop it"
			       " first, or restore into a new pid namespace with --pidns", t->pid, tid);
	if (e < 0 && !*got)
		return err_sys(e, "pid %d: create thread %d", t->pid, tid);
	return e;
}

/* After threads were created, a failure must reap them: traced threads
 * stay zombies until their tracer waits for them, and the caller's wait
 * for the leader would never return. */
static void kill_threads(struct restore_task *t)
{
	int st;

	if (t->ntids <= 1)
		return;
	kill(t->pid, SIGKILL);
	for (size_t i = 1; i < t->ntids; i++)
		while (waitpid(t->tids[i], &st, __WALL) < 0 && errno == EINTR)
			;
	t->ntids = 1;
}

/* thread_state's calls in one batch (restbatch.c); -EAGAIN: one by one */
static int thread_state_batched(struct restore_task *t, struct injector *inj,
				const struct lx_thread *th)
{
	static const char *const what[] = { "sigaltstack", "set_robust_list", "set_tid_address",
					    "set thread name" };
	struct inj_batch b;
	int which[4], n = 0, e, e2;
	void *loc;
	uint64_t a;

	e = restore_batch_begin(t, inj, &b);
	if (e)
		return e;
	if (th->sas_size || th->sas_flags) {
		stack_t ss = { .ss_sp = (void *)th->sas_sp, .ss_size = th->sas_size,
			       .ss_flags = (int)th->sas_flags & ~SS_ONSTACK };

		a = batch_mem(&b, sizeof(ss), &loc);
		memcpy(loc, &ss, sizeof(ss));
		e = batch_add(&b, SYS_sigaltstack, a, 0, 0, 0, 0, 0);
		which[n++] = 0;
	}
	if (!e && th->robust_list) {
		e = batch_add(&b, SYS_set_robust_list, th->robust_list, th->robust_len, 0, 0, 0, 0);
		which[n++] = 1;
	}
	if (!e) {
		e = batch_add(&b, SYS_set_tid_address, th->clear_tid_addr, 0, 0, 0, 0, 0);
		which[n++] = 2;
	}
	if (!e && inj != &t->inj) {
		a = batch_mem(&b, 16, &loc);
		memcpy(loc, th->comm, 16);
		((char *)loc)[15] = 0;
		e = batch_add(&b, SYS_prctl, PR_SET_NAME, a, 0, 0, 0, 0);
		which[n++] = 3;
	}
	if (!e)
		e = batch_run(&b);
	for (int i = 0; i < n && !e; i++)
		if (b.ret[i] < 0 && b.ret[i] > -4096)
			e = err_sys((int)b.ret[i], "pid %d tid %d: %s", t->pid, inj->tid,
				    what[which[i]]);
	e2 = batch_end(&b);
	return e ? e : e2;
}

/* Per-thread state set from inside each thread (shared memory, so the
 * leader's scratch area serves every thread). */
static int thread_state(struct restore_task *t, struct injector *inj, const struct lx_thread *th)
{
	uint64_t a;
	int e = thread_state_batched(t, inj, th);

	if (e != -EAGAIN)
		return e ? e : signals_restore_pending(t, inj, (pid_t)th->tid);
	e = 0;

	if (th->sas_size || th->sas_flags) {
		stack_t ss = { .ss_sp = (void *)th->sas_sp, .ss_size = th->sas_size,
			       .ss_flags = (int)th->sas_flags & ~SS_ONSTACK };

		e = restore_put(t, 0, &ss, sizeof(ss), &a);
		if (!e)
			e = thread_sys(t, inj, "sigaltstack", SYS_sigaltstack, a, 0, 0, 0, NULL);
	}
	if (!e && th->robust_list)
		e = thread_sys(t, inj, "set_robust_list", SYS_set_robust_list, th->robust_list,
			       th->robust_len, 0, 0, NULL);
	if (!e)
		e = thread_sys(t, inj, "set_tid_address", SYS_set_tid_address,
			       th->clear_tid_addr, 0, 0, 0, NULL);
	/* the leader's name is the process's comm, restored by core.c */
	if (!e && inj != &t->inj) {
		char comm[16];

		memcpy(comm, th->comm, sizeof(comm));
		comm[15] = 0;
		e = restore_put(t, 0, comm, sizeof(comm), &a);
		if (!e)
			e = thread_sys(t, inj, "set thread name", SYS_prctl, PR_SET_NAME, a, 0, 0,
				       NULL);
	}
	if (!e)
		e = signals_restore_pending(t, inj, (pid_t)th->tid);
	return e;
}

/* The thread's final registers and mask; it stays stopped until detach. */
static int thread_final(struct injector *inj, const struct lx_gpregs *gp, const void *xs,
			size_t xlen, uint64_t sigmask)
{
	struct user_regs_struct regs;
	int e = pt_set_xstate(inj->tid, xs, xlen);

	if (e)
		return e;
	memcpy(&regs, gp->regs, sizeof(regs));
	prepare_resume(inj->tid, &regs);
	e = pt_set_regs(inj->tid, &regs);
	if (!e && ptrace(PTRACE_SETSIGMASK, inj->tid, (void *)8, &sigmask) < 0)
		e = err_sys(-errno, "tid %d: set signal mask", inj->tid);
	inj->have_saved = 0;	/* these registers are final */
	return e;
}

int threads_restore(struct restore_task *t)
{
	struct lx_thread *th = NULL;
	struct lx_gpregs *gp = NULL;
	struct injector *inj = NULL;
	const uint8_t *xs;
	uint64_t xlen;
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
	if (!n || n != ng || img_find(t->im, LX_SEC_XSTATE, t->index, (const void **)&xs, &xlen, &rs) ||
	    rs < 8 || xlen != (uint64_t)rs * n) {
		e = err_set(-EINVAL, "image: task %u: thread records are inconsistent", t->index);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const uint32_t *x = (const uint32_t *)(xs + i * rs);

		if (gp[i].tid != th[i].tid || x[0] != th[i].tid || x[1] != rs - 8) {
			e = err_set(-EINVAL, "image: task %u: thread %u: records are inconsistent",
				    t->index, th[i].tid);
			goto out;
		}
	}
	inj = calloc(n, sizeof(*inj));
	t->tids = calloc(n, sizeof(*t->tids));
	if (!inj || !t->tids) {
		e = -ENOMEM;
		goto out;
	}
	t->tids[0] = t->pid;
	t->ntids = 1;

	/* create the other threads; each stops at birth (PTRACE_O_TRACECLONE) */
	if (n > 1 && ptrace(PTRACE_SETOPTIONS, t->pid, 0, (void *)(long)(PTRACE_O_EXITKILL |
			    PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE)) < 0)
		e = err_sys(-errno, "pid %d: PTRACE_SETOPTIONS", t->pid);
	for (size_t i = 1; i < n && !e; i++) {
		pid_t got = 0;

		e = create_thread(t, (pid_t)th[i].tid, &got);
		if (got)
			t->tids[t->ntids++] = got;
		inj[i].tid = got;
		inj[i].syscall_ip = t->inj.syscall_ip;
		/* a new thread: SIGTRAP is ignored or pending for it only if it
		 * is for the leader (shared handlers and queue), and the
		 * leader's mode says it is not: no /proc read to find out */
		if (t->inj.have_saved && t->inj.trap)
			inj_hint_signals(&inj[i], 0);
	}
	if (!e && n > 1 && ptrace(PTRACE_SETOPTIONS, t->pid, 0,
				  (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)) < 0)
		e = err_sys(-errno, "pid %d: PTRACE_SETOPTIONS", t->pid);

	for (size_t i = 0; i < n && !e; i++)
		e = thread_state(t, i ? &inj[i] : &t->inj, &th[i]);
	/* after the threads: a timer may notify one of them (SIGEV_THREAD_ID) */
	if (!e)
		e = timers_restore(t);
	/* process-wide pending signals, once every thread blocks them all */
	if (!e)
		e = signals_restore_pending(t, &t->inj, 0);
	if (!e)
		e = mm_unmap_scratch(t);
	/* rseq last: from here on every return to user space updates it */
	for (size_t i = 0; i < n && !e; i++)
		if (th[i].rseq_addr)
			e = thread_sys(t, i ? &inj[i] : &t->inj, "rseq", SYS_rseq, th[i].rseq_addr,
				       th[i].rseq_len, 0, th[i].rseq_sig, NULL);
	if (!e)
		e = core_restore_dumpable(t);	/* late: see core.c */
	for (size_t i = 0; i < n && !e; i++)
		e = thread_final(i ? &inj[i] : &t->inj, &gp[i], xs + i * rs + 8, rs - 8,
				 th[i].sigmask);
out:
	if (e)
		kill_threads(t);
	free(inj);
	free(th);
	free(gp);
	return e;
}

int threads_detach(struct restore_task *t)
{
	int e = 0;

	for (size_t i = 0; i < t->ntids; i++)
		if (t->tids[i] != t->pid && ptrace(PTRACE_DETACH, t->tids[i], 0, 0) < 0 && !e)
			e = err_sys(-errno, "pid %d tid %d: detach", t->pid, t->tids[i]);
	return e;
}
