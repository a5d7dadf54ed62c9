/* Restore orchestration: validate the whole image first, create the tree
 * of processes with their pids, sessions and groups in cryo's own code,
 * let each exec its original binary under ptrace, rebuild each kind of
 * state into it, and let them all go together. Any failure kills every
 * process created: no half-restored process is left behind. */
#include <fcntl.h>
#include <libgen.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "cryo.h"
#include "err.h"
#include "tty.h"
#include "lazy.h"
#include "shanon.h"
#include "tcp.h"
#include "timens.h"

static int open_swap(const struct img *im, const struct restore_opts *o, struct swapfile **sw)
{
	char *path = NULL;
	int e = image_swap_open(im, o->swapfile, sw, &path);

	if (e == -ENOENT && path && !o->swapfile)
		e = err_ctx(e, "image %s: its swapfile is missing (moved? name it with"
			    " --swapfile PATH)", im->path);
	if (!e)
		e = restore_check_owner(swap_fd(*sw), "swapfile", path ? path : "?",
					o->allow_other_user);
	free(path);
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

#define BINFMT_CR_ARM "/proc/binfmt_cr/arm"

/* binfmt_cr re-executes the original binary and restores what user space
 * cannot (PF_FORKNOEXEC); without it a task execs its binary directly. */
int binfmt_cr_loaded(void)
{
	return access(BINFMT_CR_ARM, W_OK) == 0;
}

/* The armed exec needs a file the caller may execute, but an image is
 * mode 0600 as cryo writes it, or may sit on a noexec mount: hand the
 * module the very bytes cryo validated, in a memfd. */
static int image_memfd(const struct img *im)
{
	int fd = (int)syscall(SYS_memfd_create, "cryo-image", MFD_CLOEXEC);
	uint64_t off = 0;

	if (fd < 0)
		return err_sys(-errno, "image %s: memfd for binfmt_cr", im->path);
	while (off < im->size) {
		ssize_t n = write(fd, im->data + off, im->size - off);

		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;

			close(fd);
			return err_sys(e, "image %s: memfd for binfmt_cr", im->path);
		}
		off += (uint64_t)n;
	}
	return fd;
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

/* The process that cloned this one, as it saw itself: a new task checks
 * it still has that parent once its parent-death signal is armed. */
static pid_t cloned_by;

static pid_t clone_with_pid(pid_t pid)
{
	struct clone_args ca;

	cloned_by = getpid();
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	if (pid) {	/* 0: fresh_pids, the kernel picks */
		ca.set_tid = (uint64_t)(uintptr_t)&pid;
		ca.set_tid_size = 1;
	}
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
		return err_set(-EEXIST, "pid %d is in use (by \"%s\"): stop that process, or"
			       " restore into a new pid namespace with --pidns", pid, comm);
	}
	if (err == EPERM)
		return err_set(-EPERM, "cannot create pid %d: choosing pids needs"
			       " CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (run cryo as root, or"
			       " restore into a new pid namespace with --pidns)", pid);
	return err_sys(-err, "create process with pid %d", pid);
}

/* ---- what a task execs ---- */

struct exec_plan {
	const char *exe;
	char **argv, **envp;
	char *acopy, *ecopy;
	uint64_t exe_dev, exe_ino;
	uint32_t uid[4], gid[4];	/* the credentials the process had */
};

static void exec_plan_free(struct exec_plan *p)
{
	free(p->argv);
	free(p->envp);
	free(p->acopy);
	free(p->ecopy);
}

/* Its binary and argv/envp as checkpointed */
static int exec_plan_init(const struct img *im, uint32_t task, struct exec_plan *p)
{
	struct lx_core *core;
	const void *blob;
	uint64_t len;
	uint32_t rs;
	size_t n;
	int e;

	memset(p, 0, sizeof(*p));
	e = img_records(im, LX_SEC_CORE, task, sizeof(*core), 64, (void **)&core, &n);
	if (e || n != 1) {
		if (!e)
			free(core);
		return err_set(-EINVAL, "image: task %u: no core record", task);
	}
	p->exe_dev = core->exe_dev;
	p->exe_ino = core->exe_ino;
	memcpy(p->uid, core->uid, sizeof(p->uid));
	memcpy(p->gid, core->gid, sizeof(p->gid));
	p->exe = img_string(im, task, core->exe_off);
	free(core);
	if (!p->exe || p->exe[0] != '/')
		return err_set(-EINVAL, "image: task %u: bad executable path", task);
	if (img_find(im, LX_SEC_ARGV, task, &blob, &len, &rs) || !len)
		return err_set(-EINVAL, "image: task %u: no argv", task);
	p->argv = split_blob(blob, len, &p->acopy);
	if (img_find(im, LX_SEC_ENVP, task, &blob, &len, &rs))
		len = 0;
	p->envp = split_blob(blob, len, &p->ecopy);
	if (!p->argv || !p->envp) {
		exec_plan_free(p);
		return -ENOMEM;
	}
	return 0;
}

/* The ids the exec left the process with must be among those it had: a
 * setuid/setgid executable (or one made so since the dump) run under a
 * privileged tracer gains its owner's ids, which the process never had.
 * core_restore() then sets the exact ids. */
static int ids_among(const unsigned int *v, const uint32_t *want)
{
	for (int i = 0; i < 4; i++)
		if (v[i] != want[0] && v[i] != want[1] && v[i] != want[2] && v[i] != want[3])
			return 0;
	return 1;
}

static int check_exec_creds(pid_t pid, const struct exec_plan *p)
{
	char path[64], line[256];
	unsigned int v[4];
	int seen = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return err_sys(-errno, "pid %d: read %s", pid, path);
	while (fgets(line, sizeof(line), f)) {
		int uid = !strncmp(line, "Uid:", 4), gid = !strncmp(line, "Gid:", 4);
		const uint32_t *want = uid ? p->uid : p->gid;

		if (!uid && !gid)
			continue;
		if (sscanf(line + 4, "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]) != 4)
			break;
		seen++;
		if (!ids_among(v, want)) {
			fclose(f);
			return err_set(-EPERM, "pid %d: the exec of %s gave it %s %u %u %u %u, but it"
				       " ran with %u %u %u %u (a setuid or setgid executable):"
				       " refusing to restore", pid, p->exe, uid ? "uids" : "gids",
				       v[0], v[1], v[2], v[3], want[0], want[1], want[2], want[3]);
		}
	}
	fclose(f);
	return seen == 2 ? 0 : err_set(-EIO, "pid %d: no Uid/Gid in %s", pid, path);
}

/* After the exec stop: the binary that runs is the one in the image. */
static int check_exec(pid_t pid, const struct exec_plan *p)
{
	struct stat st;
	char link[64];

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	if (stat(link, &st) < 0 || st.st_ino != p->exe_ino || st.st_dev != p->exe_dev)
		return err_set(-ESTALE, "pid %d: executable %s changed since the dump", pid, p->exe);
	return check_exec_creds(pid, p);
}

/* ---- the image, validated as a whole before any process exists ---- */

struct restore_ctx {
	const struct restore_opts *o;
	struct img im;
	struct lx_task *tasks;
	size_t ntasks;
	struct exec_plan *plans;	/* per task; zombies have none */
	struct swapfile *sw;
	int image_fd;			/* for binfmt_cr, or -1 */
	int *shared;			/* fds of descriptions held by several tasks */
	size_t nshared;
	/* creation protocol */
	int ack[2];			/* every task -> cryo: struct ack records */
	int (*cmd)[2];			/* cryo -> task i */
	int *created;			/* task i exists (its pid is ours to kill) */
	int *acks;			/* per task: ack_bit()s received */
	int *execd;			/* task i is traced, past its exec */
	pid_t *hpid;			/* task i's pid as cryo sees it (--pidns:
					 * in the parent namespace) */
	pid_t init;			/* --pidns: the namespace's init, or 0 */
	int init_rq[2], init_ak[2];	/* its ns_last_pid requests and answers */
};

static int is_zombie(const struct restore_ctx *c, size_t i)
{
	return (c->tasks[i].flags & LX_TASK_ZOMBIE) != 0;
}

static int task_index(const struct restore_ctx *c, uint32_t pid)
{
	for (size_t i = 0; i < c->ntasks; i++)
		if (c->tasks[i].pid == pid)
			return (int)i;
	return -1;
}

static void ctx_free(struct restore_ctx *c)
{
	if (c->sw)
		swap_close(c->sw);
	if (c->image_fd >= 0)
		close(c->image_fd);
	for (size_t i = 0; c->plans && i < c->ntasks; i++)
		exec_plan_free(&c->plans[i]);
	for (size_t i = 0; c->shared && i < c->nshared; i++)
		if (c->shared[i] >= 0)
			close(c->shared[i]);
	for (size_t i = 0; c->cmd && i < c->ntasks; i++) {
		close(c->cmd[i][0]);
		close(c->cmd[i][1]);
	}
	if (c->ack[0] > 0) {
		close(c->ack[0]);
		close(c->ack[1]);
	}
	free(c->plans);
	free(c->shared);
	free(c->cmd);
	free(c->created);
	free(c->acks);
	free(c->execd);
	free(c->hpid);
	free(c->tasks);
	img_close(&c->im);
}

/* The tree's shape: the root first, every parent before its children,
 * unique pids; what a process needs to rebuild is checked per task. */
static int check_tasks(struct restore_ctx *c)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct lx_task *t = &c->tasks[i];
		int pi = task_index(c, t->ppid);

		if (!t->pid || task_index(c, t->pid) != (int)i)
			return err_set(-EINVAL, "image: task %zu: bad or duplicate pid %u", i, t->pid);
		if ((i == 0) != ((t->flags & LX_TASK_ROOT) != 0) || (i == 0 && t->ppid) ||
		    (i && (pi < 0 || pi >= (int)i || is_zombie(c, (size_t)pi))))
			return err_set(-EINVAL, "image: task %zu (pid %u): bad parent %u", i, t->pid,
				       t->ppid);
		if (i == 0 && is_zombie(c, 0))
			return err_set(-EINVAL, "image: the root task is a zombie");
	}
	return 0;
}

static int ctx_init(struct restore_ctx *c, const struct restore_opts *o)
{
	int e;

	memset(c, 0, sizeof(*c));
	c->o = o;
	c->image_fd = -1;
	c->ack[0] = c->ack[1] = -1;
	e = restore_img_open(&c->im, o);	/* owner.c */
	if (e)
		return e;
	e = img_records(&c->im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*c->tasks), 32,
			(void **)&c->tasks, &c->ntasks);
	if (e)
		return err_ctx(e, "image %s: tasks", c->im.path);
	if (!c->ntasks || c->ntasks > 4096)
		return err_set(-EINVAL, "image %s: %zu tasks", c->im.path, c->ntasks);
	e = check_tasks(c);
	/* a new pid is only consistent for one process of one thread: the
	 * pids of other tasks and threads are kept in user memory (glibc's
	 * thread descriptors) and in the image's parent/thread links */
	if (!e && o->fresh_pids && (c->ntasks != 1 || c->tasks[0].nr_threads != 1))
		e = err_set(-EOPNOTSUPP, "image %s: %zu processes, %u threads: a restore with"
			    " new pids needs one single-threaded process", c->im.path, c->ntasks,
			    c->tasks[0].nr_threads);
	c->plans = calloc(c->ntasks, sizeof(*c->plans));
	if (!c->plans)
		return -ENOMEM;
	/* everything that can be checked is checked before a process exists */
	for (size_t i = 0; i < c->ntasks && !e; i++) {
		if (is_zombie(c, i))
			continue;
		e = core_check(&c->im, (uint32_t)i);
		if (!e)
			e = mm_check(&c->im, (uint32_t)i, o->allow_changed_files);
		if (!e)
			e = files_check(&c->im, (uint32_t)i, o->allow_changed_files);
		if (!e)
			e = exec_plan_init(&c->im, (uint32_t)i, &c->plans[i]);
		if (e)
			e = err_ctx(e, "pid %u", c->tasks[i].pid);
	}
	if (!e)
		e = open_swap(&c->im, o, &c->sw);
	if (!e && binfmt_cr_loaded()) {
		/* the module reads the image itself: hand it the same bytes */
		if (o->exec_fd >= 0) {
			c->image_fd = fcntl(o->exec_fd, F_DUPFD_CLOEXEC, 3);
			if (c->image_fd < 0)
				e = err_sys(-errno, "image %s: reopen for binfmt_cr", o->image);
		} else {
			c->image_fd = image_memfd(&c->im);
			if (c->image_fd < 0)
				e = c->image_fd;
		}
	}
	return e;
}

/* ---- inside a new process, until it execs ---- */

/* One message from a task to cryo; short enough for an atomic pipe write */
struct ack {
	uint32_t task;
	char what;		/* 'C' created, 'D' children created, 'K' ok, 'E' error */
	char msg[1019];
};

static void send_ack(struct restore_ctx *c, uint32_t task, char what, const char *msg)
{
	struct ack a;

	memset(&a, 0, sizeof(a));
	a.task = task;
	a.what = what;
	if (msg)
		snprintf(a.msg, sizeof(a.msg), "%s", msg);
	if (write(c->ack[1], &a, sizeof(a)) != sizeof(a))
		_exit(126);
}

static void __attribute__((noreturn)) task_fail(struct restore_ctx *c, uint32_t task,
						const char *msg)
{
	send_ack(c, task, 'E', msg);
	_exit(127);
}

/* A zombie in the image: exit as it did, for its restored parent to reap */
static void __attribute__((noreturn)) become_zombie(struct restore_ctx *c, uint32_t idx)
{
	const struct lx_task *t = &c->tasks[idx];
	int st = (int)t->exit_status;
	const void *names;
	uint64_t len;
	uint32_t rs;

	/* its name, if the image kept it: the one string of its table (after
	 * the empty string every table starts with) */
	if (!img_find(&c->im, LX_SEC_STRTAB, idx, &names, &len, &rs) && len > 2 &&
	    !*(const char *)names && memchr((const char *)names + 1, 0, len - 1))
		prctl(PR_SET_NAME, (const char *)names + 1);
	err_clear();

	if (WIFSIGNALED(st)) {
		struct rlimit no_core = { 0, 0 };
		sigset_t all;

		setrlimit(RLIMIT_CORE, &no_core);
		signal(WTERMSIG(st), SIG_DFL);
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		raise(WTERMSIG(st));
		_exit(128 + WTERMSIG(st));
	}
	_exit(WEXITSTATUS(st));
}

static void __attribute__((noreturn)) task_main(struct restore_ctx *c, uint32_t idx);

static void __attribute__((noreturn)) exec_task(struct restore_ctx *c, uint32_t idx)
{
	struct exec_plan *p = &c->plans[idx];
	char msg[1024] = "";
	int keep[3] = { c->ack[1], c->cmd[idx][0], c->image_fd }, e;

	if (core_restore_preexec(&c->im, idx, msg, sizeof(msg)) < 0)
		task_fail(c, idx, msg);
	if (tty_restore_fg((pid_t)c->tasks[idx].pid, msg, sizeof(msg)) < 0)
		task_fail(c, idx, msg);
	e = files_restore_preexec(&c->im, idx, keep, 3, c->shared, (int)c->nshared, msg,
				  sizeof(msg));
	/* moved even when it then fails: its report must reach cryo */
	c->ack[1] = keep[0];
	if (e < 0)
		task_fail(c, idx, msg);
	if (keep[2] >= 0 && arm_binfmt_cr(idx, msg, sizeof(msg)) == 0) {
		syscall(SYS_execveat, keep[2], "", p->argv, p->envp, AT_EMPTY_PATH);
		if (errno == ENOEXEC || errno == EPERM) {
			/* EPERM: the credential guard (setuid, setgid, file caps) */
			snprintf(msg, sizeof(msg), "binfmt_cr refused the image: %s (the kernel log"
				 " says why: dmesg | grep binfmt_cr)", strerror(errno));
			task_fail(c, idx, msg);
		}
		/* the module went away: the binary itself, without what only
		 * the module restores */
	}
	execve(p->exe, p->argv, p->envp);
	snprintf(msg, sizeof(msg), "exec %s: %s", p->exe, strerror(errno));
	task_fail(c, idx, msg);
}

/* The life of a restored process before its exec, in cryo's code: take
 * its session, create its children (so they inherit it), then do what
 * cryo says: lead or join its group, and exec once cryo traces it. */
static void __attribute__((noreturn)) task_main(struct restore_ctx *c, uint32_t idx)
{
	const struct lx_task *t = &c->tasks[idx];
	char msg[512], cmd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* until the exec: cryo died */
	/* a parent that failed and exited before the line above: no signal
	 * will come, and nobody would kill this half-made task */
	if (getppid() != cloned_by)
		_exit(1);
	send_ack(c, idx, 'C', NULL);
	if (is_zombie(c, idx))
		become_zombie(c, idx);
	if (t->sid == t->pid && setsid() < 0) {
		snprintf(msg, sizeof(msg), "pid %u: setsid: %s", t->pid, strerror(errno));
		task_fail(c, idx, msg);
	}
	/* before any child: members inherit the controlling terminal */
	if (t->sid == t->pid && tty_restore_ctty((pid_t)t->pid, msg, sizeof(msg)) < 0)
		task_fail(c, idx, msg);
	for (size_t k = idx + 1; k < c->ntasks; k++) {
		pid_t pid;

		if (c->tasks[k].ppid != t->pid)
			continue;
		pid = clone_with_pid((pid_t)c->tasks[k].pid);
		if (pid == 0)
			task_main(c, (uint32_t)k);
		if (pid < 0) {
			explain_clone_failure((pid_t)c->tasks[k].pid, errno);
			task_fail(c, idx, err_msg());
		}
	}
	send_ack(c, idx, 'D', NULL);
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);	/* Yama: cryo is no ancestor */
	for (;;) {
		if (read(c->cmd[idx][0], &cmd, 1) != 1)
			_exit(1);
		if (cmd == 'L' || cmd == 'J') {
			if (setpgid(0, cmd == 'L' ? 0 : (pid_t)t->pgid) < 0) {
				snprintf(msg, sizeof(msg), "pid %u: join process group %u: %s",
					 t->pid, t->pgid, strerror(errno));
				task_fail(c, idx, msg);
			}
			send_ack(c, idx, 'K', NULL);
		} else if (cmd == 'X') {
			prctl(PR_SET_PTRACER, 0);
			exec_task(c, idx);
		}
	}
}

/* ---- cryo's side of the protocol ---- */

static int read_ack(struct restore_ctx *c, struct ack *a)
{
	ssize_t n = read(c->ack[0], a, sizeof(*a));

	if (n != sizeof(*a))
		return err_set(-EPIPE, "restore: lost contact with the new processes");
	if (a->task >= c->ntasks)
		return err_set(-EPROTO, "restore: bad report from a new process (task %u of %zu)",
			       a->task, c->ntasks);
	if (a->what == 'C')
		c->created[a->task] = 1;
	if (a->what == 'E') {
		char who[32];

		snprintf(who, sizeof(who), "restore pid %u", c->tasks[a->task].pid);
		return err_set(-ENOEXEC, "%s: %s", who, err_skip_named(who, a->msg));
	}
	return 0;
}

static int ack_bit(char what)
{
	return what == 'C' ? 1 : what == 'D' ? 2 : what == 'K' ? 4 : 0;
}

/* Wait until each task in want[] has sent `what` (messages of any kind
 * may come in any order; each is remembered) */
static int wait_acks(struct restore_ctx *c, char what, const int *want)
{
	int e = 0;

	for (;;) {
		struct ack a;
		size_t missing = 0;

		for (size_t i = 0; i < c->ntasks; i++)
			missing += want[i] && !(c->acks[i] & ack_bit(what));
		if (!missing)
			break;
		e = read_ack(c, &a);
		if (e)
			break;
		c->acks[a.task] |= ack_bit(a.what);
	}
	return e;
}

static int send_cmd(struct restore_ctx *c, size_t i, char cmd)
{
	if (write(c->cmd[i][1], &cmd, 1) != 1)
		return err_sys(-errno, "restore pid %u: command", c->tasks[i].pid);
	return 0;
}

/* Sessions come from setsid at creation; groups: leaders first, then the
 * members join. A group from outside the tree (the root's, at dump) is
 * cryo's own, which every task inherited. */
static int set_groups(struct restore_ctx *c)
{
	uint32_t outside = c->tasks[0].pgid;
	int *want = calloc(c->ntasks, sizeof(int)), e = 0;

	if (!want)
		return -ENOMEM;
	for (int pass = 0; pass < 2 && !e; pass++) {
		memset(want, 0, c->ntasks * sizeof(int));
		for (size_t i = 0; i < c->ntasks; i++)
			c->acks[i] &= ~ack_bit('K');
		for (size_t i = 0; i < c->ntasks && !e; i++) {
			const struct lx_task *t = &c->tasks[i];
			int leader = t->pgid == t->pid;

			if (is_zombie(c, i) || (t->pgid == outside && !leader) ||
			    leader != (pass == 0))
				continue;
			/* a session leader already leads its group */
			if (leader && t->sid == t->pid)
				continue;
			want[i] = 1;
			e = send_cmd(c, i, leader ? 'L' : 'J');
		}
		if (!e)
			e = wait_acks(c, 'K', want);
	}
	free(want);
	return e;
}

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

static void kill_created(struct restore_ctx *c)
{
	/* children first: a parent killed first could not reap, but we only
	 * care that nothing we made keeps running */
	if (c->init > 0) {
		kill(c->init, SIGKILL);	/* and with it the whole namespace */
		return;
	}
	for (size_t i = c->ntasks; i-- > 0;)
		if (c->created[i])
			kill(c->hpid[i], SIGKILL);
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

/* fresh_pids: threading libraries keep the thread id where the kernel
 * clears it at exit (glibc's pd->tid is its set_tid_address): the dumped
 * id found there becomes the new one, so the library agrees with getpid */
static int renumber_tid_word(struct restore_task *t)
{
	struct lx_thread *th = NULL;
	uint32_t v;
	size_t n = 0;
	int e = img_records(t->im, LX_SEC_THREADS, t->index, sizeof(*th), 8, (void **)&th, &n);

	if (e)
		return e;
	if (n == 1 && th[0].clear_tid_addr) {
		if (!mem_read(t->pid, th[0].clear_tid_addr, &v, sizeof(v)) && v == th[0].tid) {
			v = (uint32_t)t->pid;
			e = mem_write(t->pid, th[0].clear_tid_addr, &v, sizeof(v));
		} else {
			err_clear();	/* no thread id there: nothing to renumber */
		}
	}
	free(th);
	return e;
}

static int rebuild(struct restore_ctx *c, size_t i)
{
	struct restore_task t;
	int e;

	memset(&t, 0, sizeof(t));
	t.im = &c->im;
	t.opts = c->o;
	t.index = (uint32_t)i;
	t.pid = c->hpid[i];
	t.sw = c->sw;
	e = check_exec(t.pid, &c->plans[i]);
	if (!e)
		e = restore_task_state(&t);
	if (!e && c->o->fresh_pids)
		e = renumber_tid_word(&t);
	/* the other threads go now, whole; the leader with the tree below */
	if (!e)
		e = threads_detach(&t);
	free(t.tids);
	return e;
}

/* Descriptions held by several processes are opened once, here, and
 * every holder dup()s its fd from the copy it inherited. */
static int open_shared(struct restore_ctx *c)
{
	size_t max = 0;
	int e = 0;

	for (size_t i = 0; i < c->ntasks && !e; i++) {
		if (!is_zombie(c, i))
			e = files_shared_count(&c->im, (uint32_t)i, &max);
	}
	if (e || !max)
		return e;
	c->shared = malloc(max * sizeof(int));
	if (!c->shared)
		return -ENOMEM;
	c->nshared = max;
	for (size_t k = 0; k < max; k++)
		c->shared[k] = -1;
	for (size_t i = 0; i < c->ntasks && !e; i++)
		if (!is_zombie(c, i))
			e = files_open_shared(&c->im, (uint32_t)i, c->shared, max);
	files_shared_done();
	return e;
}

/* What the dump accepted: said once, so a user is not surprised that a
 * resource shared with the outside at dump time is private now */
static int note_options(const struct img *im)
{
	struct lx_options opt;
	char names[128];
	int e = options_read(im, &opt);

	if (!e && opt.allow_leak)
		info("image %s was dumped with --allow-leak=%s: what the tree shared with outside"
		     " processes is restored as its own copy", im->path,
		     options_leak_names(opt.allow_leak, names, sizeof(names)));
	return e;
}

/* ---- --pidns ---- */

static pid_t waited;	/* what cryo -r waits for: see restore_waited_child */
/* --pidns: cryo asks the namespace's init to write its ns_last_pid (an
 * unprivileged restored task cannot choose its threads' ids itself, and
 * /proc/sys/kernel/ns_last_pid is the writer's own namespace's) */
static int init_req = -1, init_ans = -1;
#define INIT_REQ_FD 1000
#define INIT_ANS_FD 1001

static int write_last_pid(pid_t v)
{
	char buf[32];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC), n, e = 0;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d", v);
	if (write(fd, buf, (size_t)n) != n)
		e = -errno;
	close(fd);
	return e;
}

int restore_set_last_pid(pid_t v)
{
	int32_t err = 0;

	if (init_req < 0)
		return write_last_pid(v);
	if (write(init_req, &v, sizeof(v)) != sizeof(v) ||
	    read(init_ans, &err, sizeof(err)) != sizeof(err))
		return -EPIPE;
	return -err;
}

static void init_channel_close(void)
{
	if (init_req >= 0)
		close(init_req);
	if (init_ans >= 0)
		close(init_ans);
	init_req = init_ans = -1;
}

pid_t restore_waited_child(pid_t root)
{
	return waited ? waited : root;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e = 0;
	size_t len = strlen(text);

	if (fd < 0)
		return err_sys(-errno, "open %s", path);
	if (write(fd, text, len) != (ssize_t)len)
		e = err_sys(-errno, "write %s", path);
	close(fd);
	return e;
}

/* New pid and IPC namespaces for the children cryo creates from now on
 * (cryo itself stays where it is for pids; SysV objects are created in
 * the new IPC namespace). Without privilege, first a user namespace that
 * maps the caller's uid and gid to themselves: cryo gets the capabilities
 * it needs there (set_tid, *_next_id), the restored processes keep their
 * ids, and no other id exists in it. */
static int enter_namespaces(void)
{
	int flags = CLONE_NEWPID | CLONE_NEWIPC, e;

#ifdef __SANITIZE_ADDRESS__
	/* LeakSanitizer's end-of-process check clones a tracer, which fails
	 * once the pid namespace for cryo's children has died with its init:
	 * check now, while it can (sanitizer builds only; later leaks of
	 * this run go unchecked) */
	__lsan_do_leak_check();
#endif
	if (geteuid() != 0) {
		char map[64];
		uid_t uid = geteuid();
		gid_t gid = getegid();

		if (unshare(CLONE_NEWUSER) < 0)
			return err_sys(-errno, "--pidns: new user namespace");
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
		e = write_file("/proc/self/uid_map", map);
		if (!e)
			e = write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
		if (!e)
			e = write_file("/proc/self/gid_map", map);
		if (e)
			return err_ctx(e, "--pidns: map uid %u and gid %u", (unsigned)uid,
				       (unsigned)gid);
	}
	if (unshare(flags) < 0)
		return err_sys(-errno, "--pidns: new pid and IPC namespaces%s",
			       errno == EPERM ? " (needs CAP_SYS_ADMIN, or user namespaces)" : "");
	return 0;
}

/* pid 1 of the new namespace: creates the root with its pid, reaps
 * orphans, and exits with the root's status (128+N if killed by N), so
 * that cryo -r, waiting for it, passes that status on. Its end kills what
 * is left in the namespace. */
static void __attribute__((noreturn)) init_main(struct restore_ctx *c)
{
	pid_t root, r;
	int st;

	prctl(PR_SET_NAME, "cryo-init");
	root = clone_with_pid((pid_t)c->tasks[0].pid);
	if (root == 0)
		task_main(c, 0);
	if (root < 0) {
		explain_clone_failure((pid_t)c->tasks[0].pid, errno);
		task_fail(c, 0, err_msg());
	}
	/* nothing of cryo's stays open here (a pipe end kept by init would
	 * hide an EOF from the tree) but the request channel */
	if (dup2(c->init_rq[0], INIT_REQ_FD) < 0 || dup2(c->init_ak[1], INIT_ANS_FD) < 0)
		_exit(1);
	syscall(SYS_close_range, 3, INIT_REQ_FD - 1, 0);
	syscall(SYS_close_range, INIT_ANS_FD + 1, ~0u, 0);
	for (;;) {
		pid_t v;
		int32_t err;

		if (read(INIT_REQ_FD, &v, sizeof(v)) != sizeof(v))
			break;	/* cryo is done (or gone) */
		err = -write_last_pid(v);
		if (write(INIT_ANS_FD, &err, sizeof(err)) != sizeof(err))
			break;
	}
	close(INIT_REQ_FD);
	close(INIT_ANS_FD);
	for (;;) {
		r = waitpid(-1, &st, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			_exit(1);
		if (r != root)
			continue;
		if (WIFEXITED(st))
			_exit(WEXITSTATUS(st));
		if (WIFSIGNALED(st))
			_exit(128 + WTERMSIG(st));
	}
}

/* "NSpid: 4711 12" -> the first (cryo's) and the last (innermost) */
static int nspid(pid_t pid, pid_t *inner)
{
	char path[64], line[256];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p, *end;
		long v = 0;

		if (strncmp(line, "NSpid:", 6))
			continue;
		for (p = line + 6;; p = end) {
			long x = strtol(p, &end, 10);

			if (end == p)
				break;
			v = x;
		}
		*inner = (pid_t)v;
		found = 1;
		break;
	}
	fclose(f);
	return found;
}

/* Every task exists: find each one's pid in cryo's namespace, walking the
 * descendants of the namespace's init */
static int map_host_pids(struct restore_ctx *c)
{
	pid_t *todo = malloc((c->ntasks + 1) * sizeof(pid_t));
	size_t n = 0, found = 0;

	if (!todo)
		return -ENOMEM;
	todo[n++] = c->init;
	while (n) {
		pid_t p = todo[--n], inner;
		char path[64], *buf = NULL, *q, *end;
		size_t len;

		if (p != c->init && nspid(p, &inner)) {
			int k = task_index(c, (uint32_t)inner);

			if (k >= 0) {
				c->hpid[k] = p;
				c->created[k] = 1;
				found++;
			}
		}
		snprintf(path, sizeof(path), "task/%d/children", p);
		if (proc_read(p, path, &buf, &len)) {
			err_clear();
			continue;
		}
		for (q = buf;; q = end) {
			long kid = strtol(q, &end, 10);

			if (end == q)
				break;
			if (n < c->ntasks + 1)
				todo[n++] = (pid_t)kid;
		}
		free(buf);
	}
	free(todo);
	if (found != c->ntasks)
		return err_set(-ESRCH, "--pidns: found %zu of the %zu restored processes in the new"
			       " namespace", found, c->ntasks);
	return 0;
}

static int create_tree(struct restore_ctx *c)
{
	int *live = calloc(c->ntasks, sizeof(int)), e = 0;
	pid_t root;

	c->cmd = calloc(c->ntasks, sizeof(*c->cmd));
	c->created = calloc(c->ntasks, sizeof(int));
	c->acks = calloc(c->ntasks, sizeof(int));
	c->execd = calloc(c->ntasks, sizeof(int));
	c->hpid = calloc(c->ntasks, sizeof(pid_t));
	if (!live || !c->cmd || !c->created || !c->acks || !c->execd || !c->hpid) {
		free(live);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->ntasks; i++) {
		c->cmd[i][0] = c->cmd[i][1] = -1;
		c->hpid[i] = (pid_t)c->tasks[i].pid;	/* --pidns: map_host_pids */
	}
	if (pipe2(c->ack, O_CLOEXEC) < 0)
		e = err_sys(-errno, "restore: pipe for the new processes' reports");
	for (size_t i = 0; i < c->ntasks && !e; i++) {
		live[i] = !is_zombie(c, i);
		if (pipe2(c->cmd[i], O_CLOEXEC) < 0)
			e = err_sys(-errno, "restore pid %u: command pipe", c->tasks[i].pid);
	}
	if (!e)
		e = tty_check(&c->im);
	if (!e)
		e = open_shared(c);
	if (e) {
		free(live);
		return e;
	}
	fflush(NULL);
	if (c->o->pidns) {
		if (pipe2(c->init_rq, O_CLOEXEC) < 0 || pipe2(c->init_ak, O_CLOEXEC) < 0) {
			free(live);
			return err_sys(-errno, "--pidns: pipes to the new namespace's init");
		}
		c->init = fork();
		if (c->init == 0)
			init_main(c);
		close(c->init_rq[0]);
		close(c->init_ak[1]);
		init_req = c->init_rq[1];
		init_ans = c->init_ak[0];
		if (c->init < 0) {
			init_channel_close();
			free(live);
			return err_sys(-errno, "fork the new pid namespace's init");
		}
	} else {
		root = clone_with_pid(c->o->fresh_pids ? 0 : (pid_t)c->tasks[0].pid);
		if (root == 0)
			task_main(c, 0);
		if (root < 0) {
			free(live);
			return explain_clone_failure((pid_t)c->tasks[0].pid, errno);
		}
		if (c->o->fresh_pids) {
			/* from here on the task is known by the pid it got */
			struct lx_task *t = &c->tasks[0];

			if (t->sid == t->pid)
				t->sid = (uint32_t)root;
			if (t->pgid == t->pid)
				t->pgid = (uint32_t)root;
			t->pid = (uint32_t)root;
			c->hpid[0] = root;
		}
		c->created[0] = 1;
	}
	{
		int *all = malloc(c->ntasks * sizeof(int));

		if (!all) {
			free(live);
			return -ENOMEM;
		}
		for (size_t i = 0; i < c->ntasks; i++)
			all[i] = 1;
		/* every task exists (zombies included), every parent is done */
		e = wait_acks(c, 'C', all);
		free(all);
	}
	if (!e && c->init > 0)
		e = map_host_pids(c);
	if (!e)
		e = wait_acks(c, 'D', live);
	if (!e)
		e = set_groups(c);
	if (!e)
		e = tty_restore_tree_made(&c->im);
	/* trace each task, let it exec, and catch it before its first
	 * instruction */
	for (size_t i = 0; i < c->ntasks && !e; i++) {
		pid_t pid = c->hpid[i];

		if (is_zombie(c, i))
			continue;
		if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)(PTRACE_O_EXITKILL |
			   PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)) < 0) {
			e = err_sys(-errno, "restore pid %d: trace it", pid);
			break;
		}
		c->execd[i] = 1;
		e = send_cmd(c, i, 'X');
		if (!e)
			e = wait_exec_stop(pid);
		if (e == -ECHILD) {
			struct ack a;

			/* it exited: its last message says why */
			e = read_ack(c, &a);
			if (!e)
				e = err_set(-ECHILD, "restore pid %d: exited before its exec", pid);
		}
	}
	free(live);
	return e;
}

int cryo_restore(const struct restore_opts *o, pid_t *root_pid)
{
	struct restore_ctx c;
	int e, st;

	tcp_restore_defer(1);
	e = ctx_init(&c, o);
	if (!e)
		e = shanon_restore_begin(&c.im);
	if (!e && o->lazy)	/* before any process: the server holds none of their files */
		e = lazy_start(&c.im, c.sw);
	if (!e)
		e = note_options(&c.im);
	if (!e && o->pidns)
		e = enter_namespaces();
	if (!e)		/* in --pidns's user namespace, before any process of the tree */
		e = timens_restore(&c.im, (enum timens_mode)o->timens);
	if (!e)
		e = ipc_restore(&c.im);
	if (!e)
		e = create_tree(&c);
	for (size_t i = 0; i < c.ntasks && !e; i++)
		if (!is_zombie(&c, i))
			e = rebuild(&c, i);
	if (!e)
		e = ipc_restore_finish();
	/* every peer in the tree exists: the TCP connections may send */
	for (size_t i = 0; i < c.ntasks && !e; i++)
		if (!is_zombie(&c, i))
			e = tcp_restore_finish(&c.im, (uint32_t)i, c.hpid[i], (pid_t)c.tasks[i].pid);
	init_channel_close();	/* init goes on to reap */
	/* before the detach: until the page server has answered, cryo's death
	 * still kills the tree (PTRACE_O_EXITKILL) */
	if (!e)
		e = lazy_go();
	/* all together, once every process is whole; --leave-stopped: a
	 * SIGSTOP pending at the detach stops each one before it runs */
	for (size_t i = 0; i < c.ntasks && !e && o->leave_stopped; i++)
		if (c.execd && c.execd[i] && kill(c.hpid[i], SIGSTOP) < 0)
			e = err_sys(-errno, "pid %u: stop", c.tasks[i].pid);
	for (size_t i = 0; i < c.ntasks && !e; i++)
		if (c.execd && c.execd[i] && ptrace(PTRACE_DETACH, c.hpid[i], 0, 0) < 0)
			e = err_sys(-errno, "pid %u: detach", c.tasks[i].pid);
	if (e && c.created) {
		kill_created(&c);
		if (c.init > 0) {
			/* init ends once every pid of its namespace is free:
			 * reap our tracees (threads included) on the way */
			pid_t r;

			while ((r = waitpid(-1, &st, __WALL)) > 0 && r != c.init)
				;
		}
		else if (c.created[0])
			waitpid(c.hpid[0], &st, __WALL);
		e = err_ctx(e, "restore failed; every process it had created was killed");
	}
	lazy_finish(!e);
	if (e)
		ipc_restore_abort();
	if (!e) {
		*root_pid = c.hpid[0];
		waited = c.init > 0 ? c.init : c.hpid[0];
	}
	shanon_restore_end();
	ctx_free(&c);
	return e;
}

/* ---- in place: the process running cryo becomes the restored one ----
 * Used when a user runs ./IMAGE: the kernel (binfmt_cr or binfmt_misc)
 * started cryo in the process the shell created, and that process, with
 * its pid and parent, must become the checkpointed program. A grandchild
 * (reparented away, so the restored program never sees a strange child)
 * traces this process through its exec and rebuilds it. */

static void __attribute__((noreturn)) tracer_main(struct restore_ctx *c, pid_t target,
						  int go_fd)
{
	struct restore_task t;
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
		_exit(1);	/* it printed why */
	if (!e)
		e = check_exec(target, &c->plans[0]);
	if (!e) {
		memset(&t, 0, sizeof(t));
		t.im = &c->im;
		t.opts = c->o;
		t.pid = target;
		t.sw = c->sw;
		e = restore_task_state(&t);
		if (!e)
			e = threads_detach(&t);
		free(t.tids);
	}
	if (!e && ptrace(PTRACE_DETACH, target, 0, 0) < 0)
		e = err_sys(-errno, "pid %d: detach", target);
	if (e) {
		kill(target, SIGKILL);
		report_error("%s", err_msg());
		_exit(1);
	}
	_exit(0);
}

int cryo_restore_inplace(const struct restore_opts *o)
{
	struct restore_ctx c;
	struct exec_plan *p;
	char msg[1024] = "", ok = 0;
	int sync[2], st, e, keep[2];
	pid_t self = getpid(), mid;

	tcp_restore_defer(1);
	e = ctx_init(&c, o);
	if (!e)
		e = shanon_restore_begin(&c.im);
	if (!e && c.ntasks != 1)
		e = err_set(-EOPNOTSUPP, "image %s holds %zu processes: run trees with cryo -r -f",
			    c.im.path, c.ntasks);
	if (!e && ipc_present(&c.im))
		e = err_set(-EOPNOTSUPP, "image %s holds SysV IPC objects: restore it with"
			    " cryo -r -f", c.im.path);
	if (!e)		/* this process enters it at its exec */
		e = timens_restore(&c.im, (enum timens_mode)o->timens);
	if (e)
		goto out;
	if (pipe2(sync, O_CLOEXEC) < 0) {
		e = err_sys(-errno, "restore in place: image %s: sync pipe", c.im.path);
		goto out;
	}
	/* Yama may restrict tracing to descendants of the tracer: allow ours */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
	fflush(NULL);
	mid = fork();
	if (mid < 0) {
		e = err_sys(-errno, "restore in place: image %s: fork the tracer", c.im.path);
		goto out;
	}
	if (mid == 0) {
		pid_t tracer = fork();

		if (tracer == 0) {
			close(sync[0]);
			setsid();
			tracer_main(&c, self, sync[1]);
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
	p = &c.plans[0];
	keep[0] = c.image_fd;
	keep[1] = -1;
	if (core_restore_preexec(&c.im, 0, msg, sizeof(msg)) < 0 ||
	    files_restore_preexec(&c.im, 0, keep, 2, NULL, 0, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "cryo: %s\n", msg);
		_exit(1);
	}
	if (keep[0] >= 0 && arm_binfmt_cr(0, msg, sizeof(msg)) == 0) {
		syscall(SYS_execveat, keep[0], "", p->argv, p->envp, AT_EMPTY_PATH);
		if (errno == ENOEXEC || errno == EPERM) {
			fprintf(stderr, "cryo: binfmt_cr refused the image: %s (the kernel log"
				" says why: dmesg | grep binfmt_cr)\n", strerror(errno));
			_exit(1);
		}
	}
	msg[0] = 0;
	execve(p->exe, p->argv, p->envp);
	fprintf(stderr, "cryo: exec %s: %s\n", p->exe, msg[0] ? msg : strerror(errno));
	_exit(1);
out:
	shanon_restore_end();
	ctx_free(&c);
	return e;
}
