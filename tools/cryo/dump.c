/* Dump orchestration: freeze, refuse what cannot be restored, walk every
 * kind of state, commit pages then image, and leave the tree exactly as it
 * was (or kill it with --kill). */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

#define RED_ZONE 128

int dump_inject_out(struct dump_task *t, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		    uint64_t a4, int out_arg, void *out, size_t out_len, long *ret)
{
	uint64_t a[4] = { a1, a2, a3, a4 };
	int e;

	if (!t->scratch_ok)
		return err_set(-EFAULT, "pid %d: no room below its stack pointer to read state"
			       " from inside", t->pid);
	if (out_len > sizeof(t->scratch_saved) || out_arg < 1 || out_arg > 4)
		return -EINVAL;
	a[out_arg - 1] = t->scratch;
	e = inj_syscall(&t->inj, nr, a[0], a[1], a[2], a[3], 0, 0, ret);
	if (e)
		return e;
	if (*ret < 0 && *ret > -4096)
		return 0;	/* the caller decides what a failure means */
	return mem_read(t->pid, t->scratch, out, out_len);
}

/* Injected syscalls that return data write it just below the red zone of
 * the frozen stack, which is put back byte for byte before detaching. */
static void scratch_setup(struct dump_task *t)
{
	struct user_regs_struct r;

	if (pt_get_regs(t->pid, &r))
		return;
	t->scratch = (r.rsp - RED_ZONE - sizeof(t->scratch_saved)) & ~15ull;
	t->scratch_ok = mem_read(t->pid, t->scratch, t->scratch_saved,
				 sizeof(t->scratch_saved)) == 0;
	err_clear();
}

static int scratch_restore(struct dump_task *t)
{
	if (!t->scratch_ok)
		return 0;
	return mem_write(t->pid, t->scratch, t->scratch_saved, sizeof(t->scratch_saved));
}

static int refuse_children(struct dump_task *t)
{
	char name[64], *s;
	size_t len;
	int e;

	snprintf(name, sizeof(name), "task/%d/children", t->pid);
	e = proc_read(t->pid, name, &s, &len);
	if (e)
		return e;
	if (len && s[0] != ' ' && s[0] != '\n') {
		int child = atoi(s);

		free(s);
		return err_set(-EOPNOTSUPP, "pid %d: child process %d: process trees are not"
			       " supported yet", t->pid, child);
	}
	free(s);
	return 0;
}

/* Default page store: one per container, named after the root pid, beside
 * the image, so successive dumps of the same tree share it. */
static char *default_swapfile(const char *image, pid_t pid)
{
	char *copy = strdup(image), *dir, *out;

	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/cryo-%d.swap", dir, pid) < 0)
		out = NULL;
	free(copy);
	return out;
}

/* How the image names its swapfile: relative to the image's directory
 * when it lives there, so image and swapfile can be moved together. */
static const char *swap_ref_path(const char *image, const char *swap)
{
	char *ci = strdup(image), *cs = strdup(swap);
	const char *res = swap;

	if (ci && cs && !strcmp(dirname(ci), dirname(cs)))
		res = strrchr(swap, '/') ? strrchr(swap, '/') + 1 : swap;
	free(ci);
	free(cs);
	return res;
}

static int dump_one(struct dump_task *t, const struct dump_opts *o, const char *swap_path)
{
	struct lx_task task;
	struct lx_swap_ref ref;
	int e;

	e = proc_stat(t->pid, 0, &t->stat);
	if (!e)
		e = proc_status(t->pid, 0, &t->status);
	if (!e)
		e = proc_tids(t->pid, &t->tids, &t->ntids);
	if (!e)
		e = refuse_children(t);
	if (!e && t->ntids > 1)
		e = err_set(-EOPNOTSUPP, "pid %d: thread %d: multi-threaded processes are not"
			    " supported yet", t->pid, t->tids[1] == t->pid ? t->tids[0] : t->tids[1]);
	if (!e)
		e = proc_maps(t->pid, &t->vmas, &t->nvmas);
	if (!e)
		e = inj_init(&t->inj, t->pid);
	if (e)
		return e;
	scratch_setup(t);

	e = img_create(&t->w, o->image);
	if (e)
		return e;
	e = swap_open(&t->sw, swap_path, 1);
	memset(&task, 0, sizeof(task));
	task.pid = t->pid;
	task.pgid = t->stat.pgrp;
	task.sid = t->stat.session;
	task.nr_threads = (uint32_t)t->ntids;
	task.flags = LX_TASK_ROOT;
	task.exit_signal = t->stat.exit_signal;
	if (!e)
		e = img_add(t->w, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(task), &task, sizeof(task));
	/* cheap refusals before the expensive pages */
	if (!e)
		e = files_dump(t);
	if (!e)
		e = signals_dump(t);
	if (!e)
		e = core_dump(t);
	if (!e)
		e = threads_dump(t);
	if (!e)
		e = mm_dump(t);
	if (!e)
		e = swap_commit(t->sw);
	if (!e) {
		memset(&ref, 0, sizeof(ref));
		memcpy(ref.uuid, swap_uuid(t->sw), sizeof(ref.uuid));
		ref.snapshot = swap_next_snapshot(t->sw);
		ref.slots_end = swap_slots_end(t->sw);
		ref.path_off = img_str(t->w, LX_TASK_GLOBAL, swap_ref_path(o->image, swap_path));
		e = img_add(t->w, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(ref), &ref, sizeof(ref));
	}
	if (!e) {
		e = img_commit(t->w);
		t->w = NULL;
	}
	return e;
}

int cryo_dump(pid_t pid, const struct dump_opts *o)
{
	struct dump_task t;
	char *swap_path = o->swapfile ? strdup(o->swapfile) : default_swapfile(o->image, pid);
	int e, e2;

	memset(&t, 0, sizeof(t));
	t.pid = pid;
	if (!swap_path)
		return -ENOMEM;
	if (pid == getpid())
		return err_set(-EINVAL, "pid %d is cryo itself", pid);
	e = pt_seize(pid);
	if (e) {
		struct proc_status st;

		err_clear();
		if (kill(pid, 0) < 0 && errno == ESRCH)
			e = err_set(-ESRCH, "pid %d: no such process", pid);
		else if (proc_status(pid, 0, &st) == 0 && st.tracer)
			e = err_set(-EBUSY, "pid %d is already traced by pid %d (a debugger?)",
				    pid, st.tracer);
		else
			e = err_set(-EPERM, "pid %d: not allowed to trace it (another user's process,"
				    " or not dumpable)", pid);
		free(swap_path);
		return e;
	}
	e = pt_interrupt_wait(pid);
	if (!e)
		e = dump_one(&t, o, swap_path);
	if (t.w)
		img_abort(t.w);

	/* Leave the task as it was, whatever happened above */
	e2 = scratch_restore(&t);
	if (!e2)
		e2 = inj_finish(&t.inj);
	if (!e && o->kill_after)
		kill(pid, SIGKILL);
	if (pt_detach(pid) && !e && !o->kill_after)
		e = e2 ? e2 : -ESRCH;
	if (!e && e2)
		e = e2;
	if (!e)
		info("dumped pid %d: %lu pages scanned, %lu written, %lu zero", pid,
		     (unsigned long)t.pages_scanned, (unsigned long)t.pages_written,
		     (unsigned long)t.pages_zero);
	if (t.sw)
		swap_close(t.sw);
	proc_maps_free(t.vmas, t.nvmas);
	free(t.tids);
	free(swap_path);
	return e;
}
