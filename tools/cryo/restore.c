/* Restore orchestration: validate the whole image first, create the task
 * with its pid, let it exec its original binary under ptrace, rebuild each
 * kind of state into it, and let it go. Any failure kills the new task:
 * no half-restored process is left behind. */
#include <fcntl.h>
#include <libgen.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

static int open_swap(const struct img *im, const struct restore_opts *o, struct swapfile **sw)
{
	struct lx_swap_ref *ref;
	const char *p;
	char *path = NULL;
	size_t n;
	int e = img_records(im, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref), sizeof(*ref),
			    (void **)&ref, &n);

	if (e)
		return err_ctx(e, "image %s: swap", im->path);
	if (n != 1) {
		free(ref);
		return err_set(-EINVAL, "image %s: %zu swapfile references", im->path, n);
	}
	p = o->swapfile ? o->swapfile : img_string(im, LX_TASK_GLOBAL, ref->path_off);
	if (!p || !p[0]) {
		free(ref);
		return err_set(-EINVAL, "image %s: bad swapfile path", im->path);
	}
	if (p[0] != '/' && !o->swapfile) {
		char *c = strdup(im->path);

		if (!c || asprintf(&path, "%s/%s", dirname(c), p) < 0)
			path = NULL;
		free(c);
	} else {
		path = strdup(p);
	}
	if (!path) {
		free(ref);
		return -ENOMEM;
	}
	e = swap_open(sw, path, 0);
	if (!e && memcmp(swap_uuid(*sw), ref->uuid, 16))
		e = err_set(-ESTALE, "swapfile %s is not the one image %s was written to", path,
			    im->path);
	if (!e && swap_slots_end(*sw) < ref->slots_end)
		e = err_set(-EIO, "swapfile %s holds %lu pages, image %s needs %lu: it was"
			    " truncated or rolled back", path, (unsigned long)swap_slots_end(*sw),
			    im->path, (unsigned long)ref->slots_end);
	if (e && *sw) {
		swap_close(*sw);
		*sw = NULL;
	}
	free(path);
	free(ref);
	return e;
}

/* NUL-separated blob -> NULL-terminated vector pointing into a copy */
static char **split_blob(const void *blob, uint64_t len, char **copy)
{
	char *c = malloc(len + 1), **v;
	size_t n = 0, k = 0;

	if (!c)
		return NULL;
	memcpy(c, blob, len);
	c[len] = 0;
	for (uint64_t i = 0; i < len; i++)
		if (!c[i])
			n++;
	v = calloc(n + 2, sizeof(*v));
	if (!v) {
		free(c);
		return NULL;
	}
	for (uint64_t i = 0; i < len; i += strlen(c + i) + 1)
		v[k++] = c + i;
	*copy = c;
	return v;
}

struct child_args {
	const struct img *im;
	uint32_t task;
	const char *exe;
	char **argv, **envp;
	int err_fd;
	int image_fd;		/* >= 0: exec the image through binfmt_cr */
};

#define BINFMT_CR_ARM "/proc/binfmt_cr/arm"

/* binfmt_cr re-executes the original binary and restores what user space
 * cannot (PF_FORKNOEXEC); without it the task execs its binary directly. */
int binfmt_cr_loaded(void)
{
	return access(BINFMT_CR_ARM, W_OK) == 0;
}

static int arm_binfmt_cr(uint32_t task, char *msg, size_t len)
{
	char cmd[32];
	int fd = open(BINFMT_CR_ARM, O_WRONLY | O_CLOEXEC), n;

	if (fd < 0) {
		snprintf(msg, len, "open %s: %s", BINFMT_CR_ARM, strerror(errno));
		return -1;
	}
	n = snprintf(cmd, sizeof(cmd), "arm %u", task);
	if (write(fd, cmd, n) != n) {
		snprintf(msg, len, "arm binfmt_cr: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The new process, from clone to exec (also the restorer itself when it
 * becomes the restored process in place). Only the restorer's own memory
 * is here; errors travel to the parent through err_fd (closed by exec), or
 * to stderr when err_fd < 0. */
static void __attribute__((noreturn)) child_main(struct child_args *a, int traceme)
{
	char msg[1024] = "";
	int keep[2] = { a->err_fd, a->image_fd };

	if (traceme) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
			snprintf(msg, sizeof(msg), "PTRACE_TRACEME: %s", strerror(errno));
			goto fail;
		}
	}
	if (core_restore_preexec(a->im, a->task, msg, sizeof(msg)) < 0)
		goto fail;
	if (files_restore_preexec(a->im, a->task, keep, 2, msg, sizeof(msg)) < 0)
		goto fail;
	a->err_fd = keep[0];
	if (keep[1] >= 0) {
		if (arm_binfmt_cr(a->task, msg, sizeof(msg)) < 0)
			goto fail;
		syscall(SYS_execveat, keep[1], "", a->argv, a->envp, AT_EMPTY_PATH);
		snprintf(msg, sizeof(msg), "exec the image through binfmt_cr: %s", strerror(errno));
	} else {
		execve(a->exe, a->argv, a->envp);
		snprintf(msg, sizeof(msg), "exec %s: %s", a->exe, strerror(errno));
	}
fail:
	if (a->err_fd < 0) {
		fprintf(stderr, "cryo: %s\n", msg);
		_exit(1);
	}
	if (write(a->err_fd, msg, strlen(msg)) < 0)
		_exit(126);
	_exit(127);
}

static pid_t clone_with_pid(pid_t pid)
{
	struct clone_args ca;

	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&pid;
	ca.set_tid_size = 1;
	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

static int explain_clone_failure(pid_t pid, int err)
{
	char comm[64] = "?", path[64];
	FILE *f;

	if (err == EEXIST) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		return err_set(-EEXIST, "pid %d is in use (by \"%s\"): stop that process first;"
			       " restoring into a new pid namespace (--pidns) is not available yet",
			       pid, comm);
	}
	if (err == EPERM)
		return err_set(-EPERM, "cannot create pid %d: choosing pids needs"
			       " CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (run cryo as root)", pid);
	return err_sys(-err, "create process with pid %d", pid);
}

struct exec_plan {
	struct child_args a;
	char *acopy, *ecopy;
	uint64_t exe_dev, exe_ino;
};

static void exec_plan_free(struct exec_plan *p)
{
	free(p->a.argv);
	free(p->a.envp);
	free(p->acopy);
	free(p->ecopy);
}

/* What the new task execs: its binary and argv/envp as checkpointed. */
static int exec_plan_init(const struct img *im, uint32_t task, int image_fd,
			  struct exec_plan *p)
{
	struct lx_core *core;
	const void *blob;
	uint64_t len;
	uint32_t rs;
	size_t n;
	int e;

	memset(p, 0, sizeof(*p));
	p->a.im = im;
	p->a.task = task;
	p->a.err_fd = -1;
	p->a.image_fd = image_fd;
	e = img_records(im, LX_SEC_CORE, task, sizeof(*core), 64, (void **)&core, &n);
	if (e || n != 1) {
		if (!e)
			free(core);
		return err_set(-EINVAL, "image: task %u: no core record", task);
	}
	p->exe_dev = core->exe_dev;
	p->exe_ino = core->exe_ino;
	p->a.exe = img_string(im, task, core->exe_off);
	free(core);
	if (!p->a.exe || p->a.exe[0] != '/')
		return err_set(-EINVAL, "image: task %u: bad executable path", task);
	if (img_find(im, LX_SEC_ARGV, task, &blob, &len, &rs) || !len)
		return err_set(-EINVAL, "image: task %u: no argv", task);
	p->a.argv = split_blob(blob, len, &p->acopy);
	if (img_find(im, LX_SEC_ENVP, task, &blob, &len, &rs))
		len = 0;
	p->a.envp = split_blob(blob, len, &p->ecopy);
	if (!p->a.argv || !p->a.envp) {
		exec_plan_free(p);
		return -ENOMEM;
	}
	return 0;
}

/* After the exec stop: the binary that runs is the one in the image. */
static int check_exec(pid_t pid, const struct exec_plan *p)
{
	struct stat st;
	char link[64];

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	if (stat(link, &st) < 0 || st.st_ino != p->exe_ino || st.st_dev != p->exe_dev)
		return err_set(-ESTALE, "pid %d: executable %s changed since the dump", pid, p->a.exe);
	return 0;
}

static void kill_reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	waitpid(pid, &st, __WALL);
}

/* Create the task and let it exec its binary; it stops at the exec trap. */
static int spawn(struct exec_plan *p, pid_t want, pid_t *out)
{
	char msg[1024];
	int pfd[2], st, e = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys(-errno, "pipe");
	fflush(NULL);
	pid = clone_with_pid(want);
	if (pid < 0) {
		e = explain_clone_failure(want, errno);
		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (pid == 0) {
		close(pfd[0]);
		p->a.err_fd = pfd[1];
		child_main(&p->a, 1);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, sizeof(msg) - 1);
	close(pfd[0]);
	if (n > 0) {
		msg[n] = 0;
		waitpid(pid, &st, __WALL);
		return err_set(-ENOEXEC, "restore pid %d: %s", want, msg);
	}
	if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP) {
		kill_reap(pid);
		return err_set(-ECHILD, "restore pid %d: the new process did not stop after exec", want);
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)) < 0)
		e = err_sys(-errno, "pid %d: PTRACE_SETOPTIONS", pid);
	if (!e)
		e = check_exec(pid, p);
	if (e) {
		kill_reap(pid);
		return e;
	}
	*out = pid;
	return 0;
}

static int restore_task_state(struct restore_task *t)
{
	int e = inj_init(&t->inj, t->pid);

	if (!e)
		e = mm_restore(t);
	if (!e)
		e = files_restore(t);
	if (!e)
		e = signals_restore(t);
	if (!e)
		e = core_restore(t);
	if (!e)
		e = threads_restore(t);	/* last: final registers */
	return e;
}

/* An image, validated as a whole before any process exists. */
struct restore_ctx {
	struct img im;
	struct lx_task *tasks;
	size_t ntasks;
	struct swapfile *sw;
	int image_fd;		/* for binfmt_cr, or -1 */
};

static void ctx_free(struct restore_ctx *c)
{
	if (c->sw)
		swap_close(c->sw);
	if (c->image_fd >= 0)
		close(c->image_fd);
	free(c->tasks);
	img_close(&c->im);
}

static int ctx_init(struct restore_ctx *c, const struct restore_opts *o)
{
	int e;

	memset(c, 0, sizeof(*c));
	c->image_fd = -1;
	e = o->exec_fd >= 0 ? img_open_fd(&c->im, o->exec_fd, o->image) : img_open(&c->im, o->image);
	if (e)
		return e;
	e = img_records(&c->im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*c->tasks), 32,
			(void **)&c->tasks, &c->ntasks);
	if (e)
		e = err_ctx(e, "image %s: tasks", c->im.path);
	else if (c->ntasks != 1)
		e = err_set(-EOPNOTSUPP, "image %s: %zu processes: process trees are not supported"
			    " yet", c->im.path, c->ntasks);
	if (!e)
		e = core_check(&c->im, 0);
	if (!e)
		e = mm_check(&c->im, 0, o->allow_changed_files);
	if (!e)
		e = files_check(&c->im, 0, o->allow_changed_files);
	if (!e)
		e = open_swap(&c->im, o, &c->sw);
	if (!e && binfmt_cr_loaded()) {
		/* the module reads the image itself: hand it the same file */
		c->image_fd = o->exec_fd >= 0 ? fcntl(o->exec_fd, F_DUPFD_CLOEXEC, 3) :
			      open(o->image, O_RDONLY | O_CLOEXEC);
		if (c->image_fd < 0)
			e = err_sys(-errno, "image %s: reopen for binfmt_cr", o->image);
	}
	return e;
}

/* Rebuild the stopped task, then let it go; on failure it is killed. */
static int finish_task(struct restore_ctx *c, const struct restore_opts *o, pid_t pid)
{
	struct restore_task t;
	int e;

	memset(&t, 0, sizeof(t));
	t.im = &c->im;
	t.opts = o;
	t.index = 0;
	t.pid = pid;
	t.sw = c->sw;
	e = restore_task_state(&t);
	if (!e && ptrace(PTRACE_DETACH, pid, 0, 0) < 0)
		e = err_sys(-errno, "pid %d: detach", pid);
	if (e) {
		kill(pid, SIGKILL);
		return err_ctx(e, "restore of pid %d failed; the half-built process was killed",
			       (int)c->tasks[0].pid);
	}
	return 0;
}

int cryo_restore(const struct restore_opts *o, pid_t *root_pid)
{
	struct restore_ctx c;
	struct exec_plan plan;
	pid_t pid = 0;
	int e, st;

	e = ctx_init(&c, o);
	if (!e)
		e = exec_plan_init(&c.im, 0, c.image_fd, &plan);
	if (e) {
		ctx_free(&c);
		return e;
	}
	e = spawn(&plan, (pid_t)c.tasks[0].pid, &pid);
	if (!e) {
		e = finish_task(&c, o, pid);
		if (e)
			waitpid(pid, &st, __WALL);
	}
	if (!e)
		*root_pid = pid;
	exec_plan_free(&plan);
	ctx_free(&c);
	return e;
}

/* ---- in place: the process running cryo becomes the restored one ----
 * Used when a user runs ./IMAGE: the kernel (binfmt_cr or binfmt_misc)
 * started cryo in the process the shell created, and that process, with
 * its pid and parent, must become the checkpointed program. A grandchild
 * (reparented away, so the restored program never sees a strange child)
 * traces this process through its exec and rebuilds it. */

static int wait_exec_stop(pid_t pid)
{
	for (;;) {
		int st;

		if (waitpid(pid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(-errno, "wait for pid %d", pid);
		}
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return -ECHILD;	/* it reported its own error */
		if (!WIFSTOPPED(st))
			continue;
		if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
			/* still inside execve: step to its syscall-exit stop so
			 * that injected syscalls start from user space */
			if (ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0 ||
			    waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st) ||
			    WSTOPSIG(st) != (SIGTRAP | 0x80))
				return err_set(-ECHILD, "pid %d: no stop after exec", pid);
			return 0;
		}
		/* anything else before the exec: let it through unchanged */
		if (ptrace(PTRACE_CONT, pid, 0,
			   (void *)(long)((st >> 16) ? 0 : WSTOPSIG(st))) < 0)
			return err_sys(-errno, "pid %d: resume before exec", pid);
	}
}

static void __attribute__((noreturn)) tracer_main(struct restore_ctx *c,
						  const struct restore_opts *o,
						  struct exec_plan *p, pid_t target, int go_fd)
{
	char ok = 1;
	int e;

	if (ptrace(PTRACE_SEIZE, target, 0, (void *)(long)(PTRACE_O_EXITKILL |
		   PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)) < 0) {
		fprintf(stderr, "cryo: restore in place: trace pid %d: %s\n", target,
			strerror(errno));
		_exit(1);
	}
	if (write(go_fd, &ok, 1) != 1)
		_exit(1);
	close(go_fd);
	e = wait_exec_stop(target);
	if (e == -ECHILD)
		_exit(1);
	if (!e)
		e = check_exec(target, p);
	if (!e)
		e = finish_task(c, o, target);
	if (e) {
		kill(target, SIGKILL);
		fprintf(stderr, "cryo: %s\n", err_msg());
		_exit(1);
	}
	_exit(0);
}

int cryo_restore_inplace(const struct restore_opts *o)
{
	struct restore_ctx c;
	struct exec_plan plan;
	int sync[2], st, e;
	pid_t self = getpid(), mid;
	char ok = 0;

	e = ctx_init(&c, o);
	if (!e)
		e = exec_plan_init(&c.im, 0, c.image_fd, &plan);
	if (e) {
		ctx_free(&c);
		return e;
	}
	if (pipe2(sync, O_CLOEXEC) < 0) {
		e = err_sys(-errno, "pipe");
		goto out;
	}
	/* Yama may restrict tracing to descendants of the tracer: allow ours */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
	fflush(NULL);
	mid = fork();
	if (mid < 0) {
		e = err_sys(-errno, "fork");
		goto out;
	}
	if (mid == 0) {
		pid_t tracer = fork();

		if (tracer == 0) {
			close(sync[0]);
			setsid();
			tracer_main(&c, o, &plan, self, sync[1]);
		}
		_exit(tracer < 0);
	}
	close(sync[1]);
	waitpid(mid, &st, 0);
	if (read(sync[0], &ok, 1) != 1 || !ok) {
		close(sync[0]);
		e = err_set(-ECHILD, "restore in place: the tracer did not start");
		goto out;
	}
	close(sync[0]);
	prctl(PR_SET_PTRACER, 0);
	/* from here this process becomes the restored program */
	swap_close(c.sw);
	c.sw = NULL;
	child_main(&plan.a, 0);
out:
	exec_plan_free(&plan);
	ctx_free(&c);
	return e;
}
