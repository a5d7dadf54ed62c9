/* cryo run --cache -- CMD ARGS...: start CMD from its cached warmed-up
 * state when the cache holds a valid entry for this exact invocation;
 * otherwise run it, checkpoint it at its cache point into a new entry,
 * and let it go on as if nothing had happened (cache.c keeps entries).
 *
 * Cache points: "stop", the program stops itself with raise(SIGSTOP);
 * "stdin", additionally the moment it first waits for input on fd 0,
 * found by tracing its system calls (PTRACE_SYSCALL) until one reads,
 * polls or selects on fd 0: that call is skipped and the task backed up
 * onto its syscall instruction, so both the first run (continued) and
 * every cached run issue it afresh. */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "cache.h"
#include "timens.h"
#include "err.h"

extern char **environ;

static pid_t run_child = -1;

/* SIGTERM/SIGHUP to cryo are for the program; SIGINT/SIGQUIT from a
 * terminal reach the program directly (same process group) */
static void forward(int sig)
{
	if (run_child > 0)
		kill(run_child, sig);
}

static void parent_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
}

static int wait_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* execvp's search, done once here so that the key names the file */
static char *resolve(const char *cmd)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(cmd, '/'))
		return strdup(cmd);
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		struct stat st;

		if (n == 0)
			snprintf(buf, sizeof(buf), "./%s", cmd);
		else
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, cmd);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return strdup(buf);
		path += n + (path[n] == ':');
	}
	return NULL;
}

/* ---- the stdin cache point ---- */

static int read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int epoll_has_stdin(pid_t pid, uint64_t epfd)
{
	char path[64], line[256];
	int hit = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, (int)epfd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!hit && fgets(line, sizeof(line), f)) {
		unsigned tfd;

		if (sscanf(line, "tfd: %u", &tfd) == 1 && tfd == 0)
			hit = 1;
	}
	fclose(f);
	return hit;
}

/* Does this system call wait for (or take) input from fd 0? */
static int waits_on_stdin(pid_t pid, const struct __ptrace_syscall_info *si)
{
	const uint64_t *a = si->entry.args;

	switch (si->entry.nr) {
	case SYS_read: case SYS_readv: case SYS_pread64: case SYS_preadv: case SYS_preadv2:
	case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg:
	case SYS_splice: case SYS_tee: case SYS_copy_file_range:
		return a[0] == 0;
	case SYS_sendfile:
		return a[1] == 0;
	case SYS_poll: case SYS_ppoll: {
		struct pollfd p[64];
		size_t n = a[1] < 64 ? a[1] : 64;

		if (!a[0] || read_mem(pid, a[0], p, n * sizeof(p[0])))
			return 0;
		for (size_t i = 0; i < n; i++)
			if (p[i].fd == 0 && (p[i].events & (POLLIN | POLLPRI | POLLRDNORM)))
				return 1;
		return 0;
	}
	case SYS_select: case SYS_pselect6: {
		uint64_t set;

		if ((int64_t)a[0] <= 0 || !a[1] || read_mem(pid, a[1], &set, sizeof(set)))
			return 0;
		return set & 1;
	}
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
		return epoll_has_stdin(pid, a[0]);
	}
	return 0;
}

/* At the entry stop of that call: skip it and put the task back on its
 * syscall instruction with the number in rax, so it is issued again */
static int back_up(pid_t pid)
{
	struct user_regs_struct r;
	long word;

	if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
		return err_sys(-errno, "pid %d: read registers", pid);
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, pid, (void *)(uintptr_t)(r.rip - 2), 0);
	if (errno || (word & 0xffff) != 0x050f)
		return err_set(-EOPNOTSUPP, "pid %d: no syscall instruction before %#llx", pid,
			       (unsigned long long)r.rip);
	r.rax = r.orig_rax;
	r.orig_rax = (unsigned long long)-1;
	r.rip -= 2;
	if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0)
		return err_sys(-errno, "pid %d: write registers", pid);
	return 0;
}

/* The files a first run read before its cache point: its inputs, whose
 * change makes the entry stale (a script, its modules, its configuration) */
struct reads {
	struct cache_read *v;
	size_t n;
	int overflow;		/* more than READS_MAX: not cached */
};

#define READS_MAX 50000
/* A first run that reaches no cache point within this many system calls
 * goes on untraced (and uncached): tracing costs two stops per call */
#define TRACE_MAX_SYSCALLS 200000

static void reads_free(struct reads *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].path);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* At the exit of a successful open: a regular file opened read-only (not
 * created or truncated) is an input. Outputs, directories, pseudo-files
 * and deleted files are not: they would make every entry stale. */
static void note_open(pid_t pid, uint64_t flags, long fd, struct reads *r)
{
	char link[64], path[PATH_MAX];
	struct cache_read *nv;
	struct stat st;
	ssize_t n;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_PATH)))
		return;
	snprintf(link, sizeof(link), "/proc/%d/fd/%ld", pid, fd);
	if (stat(link, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return;
	path[n] = 0;
	if (path[0] != '/' || !strncmp(path, "/proc/", 6) || !strncmp(path, "/sys/", 5) ||
	    (n > 10 && !strcmp(path + n - 10, " (deleted)")))
		return;
	/* the last few catch re-opens; other duplicates only cost a stat */
	for (size_t i = r->n > 8 ? r->n - 8 : 0; i < r->n; i++)
		if (r->v[i].dev == st.st_dev && r->v[i].ino == st.st_ino)
			return;
	if (r->n >= READS_MAX || !(nv = realloc(r->v, (r->n + 1) * sizeof(*nv)))) {
		r->overflow = 1;
		return;
	}
	r->v = nv;
	nv[r->n] = (struct cache_read){ st.st_dev, st.st_ino, (uint64_t)st.st_size,
		(uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec,
		strdup(path) };
	if (nv[r->n].path)
		r->n++;
	else
		r->overflow = 1;
}

/* Trace the traced-from-exec child until its cache point, noting the
 * files it reads. Returns 1 when it is there (detached, in a group stop),
 * 0 when it exited (*st), or -errno (it was let go untraced). */
static int trace_to_point(pid_t pid, int *st, int stdin_point, struct reads *rd)
{
	uint64_t open_flags = 0;
	int sig = 0, in_open = 0;
	long calls = 0;

	if (waitpid(pid, st, 0) != pid)
		return err_sys(-errno, "wait for pid %d", pid);
	if (!WIFSTOPPED(*st))
		return 0;	/* the exec failed: it said why */
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
				  PTRACE_O_TRACEEXEC)) < 0)
		return err_sys(-errno, "pid %d: PTRACE_SETOPTIONS", pid);
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, 0, (void *)(long)sig) < 0)
			return err_sys(-errno, "pid %d: PTRACE_SYSCALL", pid);
		sig = 0;
		if (waitpid(pid, st, 0) != pid) {
			if (errno == EINTR)
				continue;
			return err_sys(-errno, "wait for pid %d", pid);
		}
		if (WIFEXITED(*st) || WIFSIGNALED(*st))
			return 0;
		if (!WIFSTOPPED(*st) || (*st >> 16))
			continue;	/* an exec (a script's interpreter) */
		if (WSTOPSIG(*st) == (SIGTRAP | 0x80)) {
			struct __ptrace_syscall_info si;

			if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(si), &si) <= 0)
				return err_sys(-errno, "pid %d: PTRACE_GET_SYSCALL_INFO", pid);
			if (si.op == PTRACE_SYSCALL_INFO_EXIT) {
				if (in_open && !si.exit.is_error)
					note_open(pid, open_flags, (long)si.exit.rval, rd);
				in_open = 0;
				continue;
			}
			if (si.op != PTRACE_SYSCALL_INFO_ENTRY)
				continue;
			if (++calls > TRACE_MAX_SYSCALLS) {
				ptrace(PTRACE_DETACH, pid, 0, 0);
				return err_set(-ETIME, "no cache point in its first %d system calls",
					       TRACE_MAX_SYSCALLS);
			}
			in_open = 1;
			if (si.entry.nr == SYS_open)
				open_flags = si.entry.args[1];
			else if (si.entry.nr == SYS_openat)
				open_flags = si.entry.args[2];
			else if (si.entry.nr != SYS_openat2 ||
				 read_mem(pid, si.entry.args[2], &open_flags, sizeof(open_flags)))
				in_open = 0;
			if (!stdin_point || !waits_on_stdin(pid, &si))
				continue;
			if (back_up(pid)) {
				ptrace(PTRACE_DETACH, pid, 0, 0);
				return -EOPNOTSUPP;
			}
		} else if (WSTOPSIG(*st) == SIGSTOP) {
			/* it stopped itself: that is a cache point too */
		} else {
			sig = WSTOPSIG(*st);	/* its own signal: deliver it */
			continue;
		}
		/* let go, and stop before it executes anything */
		if (ptrace(PTRACE_DETACH, pid, 0, (void *)(long)SIGSTOP) < 0)
			return err_sys(-errno, "pid %d: detach", pid);
		if (waitpid(pid, st, WUNTRACED) != pid)
			return err_sys(-errno, "wait for pid %d", pid);
		if (!WIFSTOPPED(*st))
			return 0;
		return 1;
	}
}

/* A cached run hands its own fds 0-2 to the restored program, so the
 * program's 0-2 at the cache point must still be the ones it was given */
static int stdio_unchanged(pid_t pid)
{
	for (int fd = 0; fd < 3; fd++) {
		long r = syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, fd, fd);

		if (r != 0)
			return err_set(-EOPNOTSUPP, "its fd %d is no longer the stdio it was started"
				       " with", fd);
	}
	return 0;
}

/* At the cache point (stopped): checkpoint into a new entry */
static int make_entry(const char *dir, const char *key, const struct cache_cmd *c, pid_t pid,
		      const struct reads *rd)
{
	struct dump_opts d = { 0 };
	char *tmp = NULL, *img = NULL, *swp = NULL;
	mode_t old_umask;
	int e, quiet = log_level;

	e = rd->overflow ? err_set(-E2BIG, "it read more than %d files before its cache point",
				   READS_MAX) : 0;
	if (!e)
		e = stdio_unchanged(pid);
	if (!e)
		e = cache_new_tmp(dir, &tmp);
	if (e)
		return e;
	if (asprintf(&img, "%s/image", tmp) < 0 || asprintf(&swp, "%s/swap", tmp) < 0) {
		e = -ENOMEM;
		goto out;
	}
	d.image = img;
	d.swapfile = swp;
	old_umask = umask(077);
	if (log_level < 2)
		log_level = 0;	/* the dump's summary line is not the program's output */
	e = cryo_dump(pid, &d);
	log_level = quiet;
	umask(old_umask);
	if (!e)
		e = cache_write_meta(tmp, c, pid, rd->v, rd->n);
	if (!e)
		e = cache_install(dir, key, tmp);
out:
	if (e && tmp)
		cache_remove_dir(tmp);
	free(tmp);
	free(img);
	free(swp);
	return e;
}

/* Until the program exits. A tracing error may leave it traced: let it go
 * from any ptrace stop. uncached: a SIGSTOP meant as its cache point (the
 * first one) is answered with SIGCONT, since no entry is made. */
static int wait_child(pid_t pid, int uncached)
{
	int st;

	for (;;) {
		if (waitpid(pid, &st, WUNTRACED) != pid) {
			if (errno == EINTR)
				continue;
			report_error("wait for pid %d: %s", pid, strerror(errno));
			return 1;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return wait_status(st);
		if (!WIFSTOPPED(st))
			continue;
		if (ptrace(PTRACE_DETACH, pid, 0, (void *)(long)((st >> 16) ||
			   (WSTOPSIG(st) & 0x80) ? 0 : WSTOPSIG(st))) == 0)
			continue;	/* it was a ptrace stop */
		if (uncached && WSTOPSIG(st) == SIGSTOP) {
			uncached = 0;
			kill(pid, SIGCONT);
		}
	}
}

/* Run CMD, traced; at its cache point, make the entry and let it go on.
 * Tracing is what finds the stdin cache point and the files the program
 * reads before its cache point; it ends there. */
static int first_run(const char *dir, const char *key, const struct cache_cmd *c, int stdin_point)
{
	struct reads rd = { 0 };
	int st, e;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		report_error("fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		/* only stdio goes to CMD: a cached run could not hand it more */
		syscall(SYS_close_range, 3, ~0u, 0);
		if (dir && ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
			fprintf(stderr, "cryo: run: PTRACE_TRACEME: %s (a first run is traced by"
				" cryo: run it without strace -f or a debugger)\n", strerror(errno));
			_exit(127);
		}
		execve(c->path, c->argv, c->envp);
		fprintf(stderr, "cryo: run: exec %s: %s\n", c->path, strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	run_child = pid;
	parent_signals();
	e = dir ? trace_to_point(pid, &st, stdin_point, &rd) : 0;
	if (!dir) {
		e = 0;		/* no cache: just run it, and wait */
	} else if (e == 1) {
		e = make_entry(dir, key, c, pid, &rd);
		if (e)
			warn("%s: not cached: %s", c->argv[0], err_msg());
		else
			info("%s: cached as %s", c->argv[0], key);
		err_clear();
		kill(pid, SIGCONT);
		e = 0;
	} else if (e < 0) {
		warn("%s: not cached: %s", c->argv[0], err_msg());
		err_clear();
		kill(pid, SIGCONT);
	} else {
		reads_free(&rd);
		return wait_status(st);	/* exited before any cache point */
	}
	reads_free(&rd);
	return wait_child(pid, !dir || e < 0);
}

/* Restore the entry under a new pid with this invocation's stdio. 0 and
 * *status on success; -errno when nothing ran (the caller runs afresh). */
static int cached_run(const char *dir, const char *key, int *status)
{
	/* a cached run is a new run on this host: its clocks, unless they are
	 * behind the warmed-up state's (made before a reboot) */
	struct restore_opts r = { .exec_fd = -1, .fresh_pids = 1,
				  .timens = TIMENS_IF_BACKWARD };
	char *img = cache_path(dir, key, "image"), *swp = cache_path(dir, key, "swap");
	pid_t pid = 0;
	int e, lk;

	if (!img || !swp) {
		free(img);
		free(swp);
		return -ENOMEM;
	}
	r.image = img;
	r.swapfile = swp;
	files_stdio_from_restorer = 1;
	lk = cache_lock(dir, 0);	/* no entry is replaced while it is read */
	e = lk < 0 ? lk : 0;
	if (!e) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		e = cryo_restore(&r, &pid);
		cache_unlock(lk);
	}
	files_stdio_from_restorer = 0;
	free(img);
	free(swp);
	if (e)
		return e;
	cache_touch(dir, key);
	info("restored from cache entry %s as pid %d", key, pid);
	run_child = pid;
	parent_signals();
	*status = wait_root(pid);
	return 0;
}

static void run_usage(FILE *f)
{
	fprintf(f,
"usage: cryo run --cache [--cache-dir DIR] [--cache-point stop|stdin] [-q|-v]\n"
"                -- CMD [ARGS...]\n"
"\n"
"Run CMD from the cache when it holds this invocation (same CMD, ARGS, cwd,\n"
"environment, and unchanged executable and libraries); otherwise run it,\n"
"checkpoint it at its cache point into the cache, and let it continue.\n"
"Cache points: stop (default), CMD stops itself with raise(SIGSTOP);\n"
"stdin, CMD first waits for input on fd 0 (or stops itself). The first run\n"
"is traced until then; the files it reads, the executable and its libraries\n"
"are checked at every lookup, and a change makes the run start afresh.\n"
"CMD gets fds 0-2 only; a cached run gets a new pid and this invocation's\n"
"stdin, stdout and stderr.\n"
"Exit status: CMD's (128+N if killed by signal N); 127 if CMD is not found.\n"
"See also: cryo cache ls | rm | gc.\n");
}

int cmd_run(int argc, char **argv)
{
	enum { OPT_CACHE = 256, OPT_DIR, OPT_POINT, OPT_LOG_FILE };
	static const struct option lo[] = {
		{ "cache", no_argument, NULL, OPT_CACHE },
		{ "cache-dir", required_argument, NULL, OPT_DIR },
		{ "cache-point", required_argument, NULL, OPT_POINT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *dir_opt = NULL, *point = "stop";
	char key[CACHE_KEY_LEN + 1], cwd[PATH_MAX], *dir = NULL, *exe, *path;
	struct cache_cmd c;
	int opt, use_cache = 0, e, status;

	while ((opt = getopt_long(argc, argv, "+qvh", lo, NULL)) != -1) {
		switch (opt) {
		case OPT_CACHE: use_cache = 1; break;
		case OPT_DIR: dir_opt = optarg; break;
		case OPT_POINT:
			if (strcmp(optarg, "stop") && strcmp(optarg, "stdin")) {
				fprintf(stderr, "cryo: run: --cache-point is stop or stdin, not '%s'\n",
					optarg);
				return 2;
			}
			point = optarg;
			break;
		case 'q': log_level = 0; break;
		case 'v': log_level = 2; break;
		case OPT_LOG_FILE:
			if (log_open(optarg)) {
				report_error("%s", err_msg());
				return 2;
			}
			break;
		case 'h': run_usage(stdout); return 0;
		default: run_usage(stderr); return 2;
		}
	}
	if (optind >= argc || !use_cache) {
		run_usage(stderr);
		return 2;
	}
	path = resolve(argv[optind]);
	exe = path ? realpath(path, NULL) : NULL;
	if (!exe) {
		fprintf(stderr, "cryo: run: %s: %s\n", argv[optind],
			path ? strerror(errno) : "command not found");
		free(path);
		return 127;
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		report_error("run: getcwd: %s", strerror(errno));
		free(exe);
		free(path);
		return 1;
	}
	c.path = path;
	c.exe = exe;
	c.argv = argv + optind;
	c.envp = environ;
	c.cwd = cwd;
	c.point = point;
	e = cache_key(&c, key);
	if (!e)
		e = cache_dir(dir_opt, &dir);
	if (e) {
		/* no cache: still run the program, as asked */
		warn("%s: not cached: %s", argv[optind], err_msg());
		err_clear();
		status = first_run(NULL, NULL, &c, 0);
		free(exe);
		free(path);
		return status;
	}
	e = cache_lookup(dir, key, &c);
	if (e == 1) {
		e = cached_run(dir, key, &status);
		if (!e)
			goto out;
		warn("%s: cache entry %s: %s; running it afresh", argv[optind], key, err_msg());
	} else if (e < 0) {
		info("%s: cache entry %s is stale (%s): running it afresh", argv[optind], key,
		     err_msg());
	}
	err_clear();
	status = first_run(dir, key, &c, !strcmp(point, "stdin"));
out:
	free(dir);
	free(exe);
	free(path);
	return status;
}
