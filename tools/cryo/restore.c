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
};

/* The new process, from clone to exec. Only the restorer's own memory is
 * here; errors travel to the parent through err_fd (closed by exec). */
static void __attribute__((noreturn)) child_main(struct child_args *a)
{
	char msg[1024] = "";
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
		snprintf(msg, sizeof(msg), "PTRACE_TRACEME: %s", strerror(errno));
		goto fail;
	}
	if (core_restore_preexec(a->im, a->task, msg, sizeof(msg)) < 0)
		goto fail;
	fd = files_restore_preexec(a->im, a->task, a->err_fd, msg, sizeof(msg));
	if (fd < 0)
		goto fail;
	a->err_fd = fd;
	execve(a->exe, a->argv, a->envp);
	snprintf(msg, sizeof(msg), "exec %s: %s", a->exe, strerror(errno));
fail:
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

/* Create the task and let it exec its binary; it stops at the exec trap. */
static int spawn(const struct img *im, uint32_t task, pid_t want, pid_t *out)
{
	struct child_args a = { .im = im, .task = task };
	const struct lx_core *core;
	const void *blob;
	uint64_t len;
	uint32_t rs;
	char *acopy = NULL, *ecopy = NULL, msg[1024];
	int pfd[2], st, e = 0;
	ssize_t n;
	pid_t pid;
	struct stat exe_st;
	char exe_link[64];

	if (img_find(im, LX_SEC_CORE, task, &blob, &len, &rs) || len < 64)
		return err_set(-EINVAL, "image: task %u: no core record", task);
	core = blob;
	a.exe = img_string(im, task, core->exe_off);
	if (!a.exe || a.exe[0] != '/')
		return err_set(-EINVAL, "image: task %u: bad executable path", task);
	if (img_find(im, LX_SEC_ARGV, task, &blob, &len, &rs) || !len)
		return err_set(-EINVAL, "image: task %u: no argv", task);
	a.argv = split_blob(blob, len, &acopy);
	if (img_find(im, LX_SEC_ENVP, task, &blob, &len, &rs))
		len = 0;
	a.envp = split_blob(blob, len, &ecopy);
	if (!a.argv || !a.envp) {
		e = -ENOMEM;
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		e = err_sys(-errno, "pipe");
		goto out;
	}
	fflush(NULL);
	pid = clone_with_pid(want);
	if (pid < 0) {
		e = explain_clone_failure(want, errno);
		close(pfd[0]);
		close(pfd[1]);
		goto out;
	}
	if (pid == 0) {
		close(pfd[0]);
		a.err_fd = pfd[1];
		child_main(&a);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, sizeof(msg) - 1);
	close(pfd[0]);
	if (n > 0) {
		msg[n] = 0;
		waitpid(pid, &st, __WALL);
		e = err_set(-ENOEXEC, "restore pid %d: %s", want, msg);
		goto out;
	}
	if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, __WALL);
		e = err_set(-ECHILD, "restore pid %d: the new process did not stop after exec", want);
		goto out;
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)) < 0) {
		e = err_sys(-errno, "pid %d: PTRACE_SETOPTIONS", pid);
	} else {
		/* the binary that ran is the one the image was made from */
		snprintf(exe_link, sizeof(exe_link), "/proc/%d/exe", pid);
		if (stat(exe_link, &exe_st) < 0 || exe_st.st_ino != core->exe_ino ||
		    exe_st.st_dev != core->exe_dev)
			e = err_set(-ESTALE, "pid %d: executable %s changed since the dump", pid, a.exe);
	}
	if (e) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, __WALL);
		goto out;
	}
	*out = pid;
out:
	free(a.argv);
	free(a.envp);
	free(acopy);
	free(ecopy);
	return e;
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

int cryo_restore(const struct restore_opts *o, pid_t *root_pid)
{
	struct img im;
	struct lx_task *tasks = NULL;
	struct swapfile *sw = NULL;
	struct restore_task t;
	size_t ntasks;
	pid_t pid = 0;
	int e, st;

	memset(&im, 0, sizeof(im));
	e = o->exec_fd >= 0 ? img_open_fd(&im, o->exec_fd, o->image) : img_open(&im, o->image);
	if (e)
		return e;
	e = img_records(&im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32, (void **)&tasks,
			&ntasks);
	if (e)
		e = err_ctx(e, "image %s: tasks", im.path);
	else if (ntasks != 1)
		e = err_set(-EOPNOTSUPP, "image %s: %zu processes: process trees are not supported"
			    " yet", im.path, ntasks);
	/* everything that can be checked is checked before a process exists */
	if (!e)
		e = core_check(&im, 0);
	if (!e)
		e = mm_check(&im, 0, o->allow_changed_files);
	if (!e)
		e = files_check(&im, 0, o->allow_changed_files);
	if (!e)
		e = open_swap(&im, o, &sw);
	if (!e)
		e = spawn(&im, 0, (pid_t)tasks[0].pid, &pid);
	if (e)
		goto out;

	memset(&t, 0, sizeof(t));
	t.im = &im;
	t.opts = o;
	t.index = 0;
	t.pid = pid;
	t.sw = sw;
	e = restore_task_state(&t);
	if (e) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, __WALL);
		e = err_ctx(e, "restore of pid %d failed; the half-built process was killed",
			    (int)tasks[0].pid);
		goto out;
	}
	if (ptrace(PTRACE_DETACH, pid, 0, 0) < 0) {
		e = err_sys(-errno, "pid %d: detach", pid);
		kill(pid, SIGKILL);
		waitpid(pid, &st, __WALL);
		goto out;
	}
	*root_pid = pid;
out:
	if (sw)
		swap_close(sw);
	free(tasks);
	img_close(&im);
	return e;
}
