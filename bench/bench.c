/* cryo benchmark driver: runs every workload several times through cryo,
 * the floors (basedump / baserestore) and, when CRIU=/path is given, CRIU,
 * all in the same run, and reports medians and min-max.
 *
 *   bench [-o RESULTS_DIR]          (run by bench/run.sh, i.e. `make bench`)
 *
 * Environment:
 *   CRYO=path         cryo binary (default: tools/cryo/cryo of this tree)
 *   CRIU=path         also run CRIU on every workload
 *   BENCH_QUICK=1     fewer sizes and runs (about a minute)
 *   BENCH_RUNS=N      measured runs per workload (default 6: an even number,
 *                     so each tool goes first equally often; quick 3); one
 *                     more warm-up run comes first and is not counted
 *   BENCH_SIZES=a,b   MiB sizes of the memory workloads (default 1,64,512,1024;
 *                     quick 1,64,512)
 *   BENCH_ONLY=a,b    only these workloads (idle, mem-64M, threads-50, tree-20,
 *                     incr...)
 *   BENCH_INCR_MIB=N  size of the incremental / pre-dump workload (default 1024)
 *   BENCH_DIR=dir     where images and copies are written (default
 *                     /var/tmp: the root filesystem, like the floors)
 *   BENCH_DUMP_PREFIX, BENCH_RESTORE_PREFIX="perf stat -o F --"
 *                     run cryo's dumps / restores under a profiler
 *
 * Per run, for each tool in turn (the order rotates from run to run): start
 * a fresh workload; dump it (it keeps running), measuring the dump's wall
 * time from exec to exit, the longest stop the workload itself saw in its
 * progress loop, and the bytes written; kill it; restore it, measuring from
 * exec until the restored workload answers a ping over its stdio pipes (it
 * must run; for threads and trees, every thread and process must have run);
 * have the restored workload re-hash its memory against the hash it took
 * when it filled it; delete the files and sync before the next tool. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 180000

/* ---------------------------------------------------------------- */
/* what is measured                                                   */

enum tool { T_CRYO, T_BASE, T_CRIU, NTOOLS };
static const char *const tool_name[NTOOLS] = { "cryo", "baseline", "criu" };

enum metric { M_DUMP, M_FREEZE, M_BYTES, M_RESTORE, M_LAZY, NMETRICS };
static const char *const metric_name[NMETRICS] = {
	"dump_s", "freeze_s", "bytes", "restore_s", "lazy_restore_s"
};

#define MAXRUNS 64

struct series {
	double v[MAXRUNS];
	int n;
};

struct workload {
	const char *name;
	const char *argv1, *argv2;
	int mib;		/* memory workloads: size; else 0 */
	int enabled;
	/* status per tool and phase: NULL while all is well */
	char *dump_status[NTOOLS], *restore_status[NTOOLS], *lazy_status;
	struct series s[NTOOLS][NMETRICS];
	int verify_bad;
};

static struct workload wl[16];
static size_t nwl;

static const char *cryo, *criu, *bench_dir, *work, *results;
static char basedump[PATH_MAX], baserestore[PATH_MAX], workload_bin[PATH_MAX];
static int runs = 5, quick, have_lazy;
static FILE *runs_csv;

/* ---------------------------------------------------------------- */
/* small helpers                                                      */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rm_rf(const char *path);

static void die(const char *fmt, ...)
{
	va_list ap;

	if (work)
		rm_rf(work);	/* leave no images behind */
	va_start(ap, fmt);
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	return s;
}

static void add(struct series *s, double v)
{
	if (s->n < MAXRUNS)
		s->v[s->n++] = v;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const struct series *s)
{
	double t[MAXRUNS];

	if (!s->n)
		return NAN;
	memcpy(t, s->v, s->n * sizeof(double));
	qsort(t, s->n, sizeof(double), cmpd);
	return s->n % 2 ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}

static double smin(const struct series *s)
{
	double m = INFINITY;

	for (int i = 0; i < s->n; i++)
		m = s->v[i] < m ? s->v[i] : m;
	return s->n ? m : NAN;
}

static double smax(const struct series *s)
{
	double m = -INFINITY;

	for (int i = 0; i < s->n; i++)
		m = s->v[i] > m ? s->v[i] : m;
	return s->n ? m : NAN;
}

/* the first line of a file, trimmed; "" if none */
static char *first_error_line(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[1024], *best = NULL;

	if (!f)
		return strdup("");
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			continue;
		/* CRIU logs much; its errors say "Error" */
		if (!best || (strstr(line, "Error") && !strstr(best, "Error"))) {
			free(best);
			best = strdup(line);
		}
	}
	fclose(f);
	return best ? best : strdup("");
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static uint64_t dir_size(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char *p;

		if (e->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", path, e->d_name);
		sum += file_size(p);
		free(p);
	}
	closedir(d);
	return sum;
}

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d) {
		unlink(path);
		return;
	}
	while ((e = readdir(d))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", path, e->d_name);
		rm_rf(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

/* ---------------------------------------------------------------- */
/* processes                                                          */

/* fork+exec argv with fds[i] as its fd i (-1: /dev/null) for i < nfds,
 * nothing else open. */
static pid_t spawn(char *const argv[], const int *fds, int nfds)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int tmp[8];

		signal(SIGPIPE, SIG_DFL);
		for (int i = 0; i < nfds; i++) {
			int src = fds[i] >= 0 ? fds[i] : open("/dev/null", O_RDWR);

			tmp[i] = fcntl(src, F_DUPFD, 64);
			if (tmp[i] < 0)
				_exit(126);
		}
		for (int i = 0; i < nfds; i++)
			if (dup2(tmp[i], i) < 0)
				_exit(126);
		syscall(SYS_close_range, nfds, ~0u, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* argv with the words of the environment variable var (a profiler, for
 * bench/profile.sh) in front; the result is leaked, it is small */
static char **with_prefix(const char *var, char *const argv[])
{
	const char *pre = getenv(var);
	char **v, *copy, *save, *tok;
	size_t n = 0, k = 0;

	if (!pre || !*pre)
		return (char **)argv;
	for (size_t i = 0; argv[i]; i++)
		n++;
	copy = strdup(pre);
	v = calloc(n + strlen(pre) + 2, sizeof(*v));
	if (!copy || !v)
		die("out of memory");
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		v[k++] = tok;
	/* the wrapper finds cryo by its absolute path */
	for (size_t i = 0; argv[i]; i++)
		v[k++] = argv[i];
	if (v[0][0] != '/') {
		char *p = NULL;
		const char *path = getenv("PATH");
		char *pc = strdup(path ? path : "/usr/bin:/bin"), *sv, *d;

		for (d = strtok_r(pc, ":", &sv); d; d = strtok_r(NULL, ":", &sv)) {
			p = xasprintf("%s/%s", d, v[0]);
			if (!access(p, X_OK))
				break;
			free(p);
			p = NULL;
		}
		if (p)
			v[0] = p;
	}
	return v;
}

/* Run argv to completion; its stdout and stderr go to log. Returns the
 * wait status and the wall time from fork to reaped exit. */
static int run_timed(char *const argv[], const char *log, double *secs)
{
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int fds[3] = { -1, lfd, lfd }, st;
	double t0 = now();
	pid_t pid = spawn(argv, fds, 3);

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	*secs = now() - t0;
	close(lfd);
	return st;
}

/* pid and its descendants, children first found by /proc/P/task/T/children */
static size_t descendants(pid_t pid, pid_t *out, size_t max, size_t n)
{
	char path[64];
	DIR *d;
	struct dirent *e;

	if (n < max)
		out[n++] = pid;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return n;
	while ((e = readdir(d))) {
		char cpath[320];
		FILE *f;
		int c;

		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, e->d_name);
		f = fopen(cpath, "re");
		if (!f)
			continue;
		while (fscanf(f, "%d", &c) == 1)
			n = descendants(c, out, max, n);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Kill a tree and wait until every one of its pids is free again (we are
 * the subreaper: orphans come to us). */
static void kill_tree(pid_t root)
{
	pid_t p[256];
	size_t n = descendants(root, p, 256, 0);
	double deadline = now() + 10;

	for (size_t i = 0; i < n; i++)
		kill(p[i], SIGKILL);
	for (size_t i = 0; i < n; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/proc/%d", p[i]);
		while (access(path, F_OK) == 0 && now() < deadline) {
			int st;

			if (waitpid(-1, &st, WNOHANG | __WALL) <= 0)
				usleep(200);
		}
	}
}

static void reap_all(void)
{
	int st;

	while (waitpid(-1, &st, WNOHANG | __WALL) > 0)
		;
}

/* A line from fd within timeout_ms; -1 on EOF or timeout. Byte by byte:
 * replies are short and the pipe is ours alone. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	double deadline = now() + timeout_ms / 1000.0;

	while (n + 1 < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)((deadline - now()) * 1000) + 1;
		char c;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return 0;
}

/* Talk to a workload: send one command byte, read its reply line. */
static int ask(int out, int in, char cmd, char *reply, size_t len)
{
	if (write(out, &cmd, 1) != 1)
		return -1;
	return read_line(in, reply, len, TIMEOUT_MS);
}

/* ---------------------------------------------------------------- */
/* one run                                                            */

struct live {
	pid_t pid;
	int cmd, rep;		/* our ends of its stdin and stdout */
	char cmd_ino[32], rep_ino[32];	/* "pipe:[N]" as the workload sees them */
	pid_t tree[256];	/* its processes: a restore gives them these pids */
	size_t ntree;
};

/* Kill the processes with the workload's pids (a restored copy has them)
 * and wait until every one is free: a restore that follows needs them, and
 * a restored root that exited first leaves its orphans to us, out of
 * reach of kill_tree's walk. */
static void free_tree_pids(const struct live *l)
{
	double deadline = now() + 10;

	for (size_t i = 0; i < l->ntree; i++)
		kill(l->tree[i], SIGKILL);
	for (size_t i = 0; i < l->ntree; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/proc/%d", l->tree[i]);
		while (access(path, F_OK) == 0 && now() < deadline) {
			int st;

			if (waitpid(-1, &st, WNOHANG | __WALL) <= 0)
				usleep(200);
		}
	}
}

static int start_workload(struct workload *w, struct live *l)
{
	int cp[2], rp[2];
	char line[128];
	char *argv[4] = { workload_bin, (char *)w->argv1, (char *)w->argv2, NULL };
	struct stat st;

	if (pipe2(cp, O_CLOEXEC) || pipe2(rp, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	{
		int fds[3] = { cp[0], rp[1], -1 };

		l->pid = spawn(argv, fds, 3);
	}
	close(cp[0]);
	close(rp[1]);
	l->cmd = cp[1];
	l->rep = rp[0];
	fstat(l->cmd, &st);
	snprintf(l->cmd_ino, sizeof(l->cmd_ino), "pipe:[%lu]", (unsigned long)st.st_ino);
	fstat(l->rep, &st);
	snprintf(l->rep_ino, sizeof(l->rep_ino), "pipe:[%lu]", (unsigned long)st.st_ino);
	if (read_line(l->rep, line, sizeof(line), TIMEOUT_MS) || line[0] != 'R') {
		fprintf(stderr, "bench: workload %s did not start\n", w->name);
		return -1;
	}
	l->ntree = descendants(l->pid, l->tree, sizeof(l->tree) / sizeof(l->tree[0]), 0);
	return 0;
}

static void stop_live(struct live *l)
{
	if (l->pid > 0)
		kill_tree(l->pid);
	if (l->cmd >= 0)
		close(l->cmd);
	if (l->rep >= 0)
		close(l->rep);
	l->pid = 0;
	l->cmd = l->rep = -1;
	reap_all();
}

/* The longest stop the workload saw since the previous 'G' */
static double freeze_window(struct live *l)
{
	char line[128];
	unsigned long long maxgap, mingap, iters;

	if (ask(l->cmd, l->rep, 'G', line, sizeof(line)) ||
	    sscanf(line, "G %llu %llu %llu", &maxgap, &mingap, &iters) != 3)
		return NAN;
	return (maxgap - mingap) / 1e9;
}

static char *classify_failure(int st, const char *log)
{
	char *msg = first_error_line(log), *s;

	if (WIFSIGNALED(st))
		s = xasprintf("failed: killed by signal %d %s", WTERMSIG(st), msg);
	else if (strstr(msg, "not supported") || strstr(msg, "unsupported"))
		s = xasprintf("refused: %s", msg);
	else
		s = xasprintf("failed: %s", msg[0] ? msg : "no message");
	free(msg);
	return s;
}

static void set_status(char **slot, char *s)
{
	/* keep the first message: later runs usually say the same */
	if (!*slot)
		*slot = s;
	else
		free(s);
}

struct run_ctx {
	struct workload *w;
	int run;		/* -1: warm-up */
	const char *dir;
	struct live l;
	double v[NTOOLS][NMETRICS];	/* NAN: not measured */
	int dumped[NTOOLS];
};

static void record(struct run_ctx *c, enum tool t, enum metric m, double v)
{
	c->v[t][m] = v;
}

static void dump_with(struct run_ctx *c, enum tool t)
{
	char pidbuf[16], *log, *img, *swap, *out, *dir;
	double secs, fr;
	int st;
	char line[64];

	snprintf(pidbuf, sizeof(pidbuf), "%d", c->l.pid);
	freeze_window(&c->l);	/* start a fresh window */
	usleep(2000);		/* with a few normal gaps in it, to subtract */
	switch (t) {
	case T_CRYO: {
		img = xasprintf("%s/cryo.img", c->dir);
		swap = xasprintf("%s/cryo.swap", c->dir);
		log = xasprintf("%s/cryo-dump.log", c->dir);
		char *argv[] = { (char *)cryo, "-p", pidbuf, "-f", img, "-s", swap, NULL };

		st = run_timed(with_prefix("BENCH_DUMP_PREFIX", argv), log, &secs);
		if (WIFEXITED(st) && !WEXITSTATUS(st)) {
			record(c, t, M_BYTES, file_size(img) + file_size(swap));
			c->dumped[t] = 1;
		}
		free(img);
		free(swap);
		break;
	}
	case T_BASE: {
		out = xasprintf("%s/base.bin", c->dir);
		log = xasprintf("%s/base-dump.log", c->dir);
		char *argv[] = { basedump, out, pidbuf, NULL };

		st = run_timed(argv, log, &secs);
		if (WIFEXITED(st) && !WEXITSTATUS(st)) {
			record(c, t, M_BYTES, file_size(out));
			c->dumped[t] = 1;
		}
		free(out);
		break;
	}
	default: {
		dir = xasprintf("%s/criu", c->dir);
		log = xasprintf("%s/criu-dump.out", c->dir);
		mkdir(dir, 0700);
		char *argv[] = { (char *)criu, "dump", "-t", pidbuf, "-D", dir, "-o", "dump.log",
				 "--leave-running", NULL };

		st = run_timed(argv, log, &secs);
		if (WIFEXITED(st) && !WEXITSTATUS(st)) {
			record(c, t, M_BYTES, dir_size(dir));
			c->dumped[t] = 1;
		} else {
			/* the reason is in CRIU's own log */
			char *dl = xasprintf("%s/dump.log", dir);

			if (file_size(dl)) {
				free(log);
				log = dl;
			} else {
				free(dl);
			}
		}
		free(dir);
		break;
	}
	}
	fr = freeze_window(&c->l);
	if (c->dumped[t]) {
		record(c, t, M_DUMP, secs);
		record(c, t, M_FREEZE, fr);
	} else {
		set_status(&c->w->dump_status[t], classify_failure(st, log));
	}
	free(log);
	/* whatever happened, the workload must still run */
	if (ask(c->l.cmd, c->l.rep, 'P', line, sizeof(line)) || strcmp(line, "P"))
		die("workload %s did not survive the %s dump", c->w->name, tool_name[t]);
}

/* Restore one tool's copy and time it until the workload answers. */
static void restore_with(struct run_ctx *c, enum tool t, int lazy)
{
	int cp[2], rp[2], st = 0, ok = 0;
	char *log = xasprintf("%s/%s-restore%s.log", c->dir, tool_name[t], lazy ? "-lazy" : "");
	char *img = xasprintf("%s/cryo.img", c->dir), *swap = xasprintf("%s/cryo.swap", c->dir);
	char *base = xasprintf("%s/base.bin", c->dir), *dir = xasprintf("%s/criu", c->dir);
	char *inh0 = xasprintf("fd[3]:%s", c->l.cmd_ino), *inh1 = xasprintf("fd[4]:%s", c->l.rep_ino);
	char line[128];
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	double t0, t1 = 0;
	pid_t tool, root = 0;
	char **slot = lazy ? &c->w->lazy_status : &c->w->restore_status[t];

	if (pipe2(cp, O_CLOEXEC) || pipe2(rp, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	/* the ping is already waiting when the restored process looks */
	if (write(cp[1], "P", 1) != 1)
		die("write: %s", strerror(errno));
	t0 = now();
	if (t == T_CRYO) {
		char *argv[] = { (char *)cryo, "-r", "-f", img, "-s", swap, lazy ? "--lazy" : NULL,
				 NULL };
		int fds[3] = { cp[0], rp[1], lfd };

		tool = spawn(with_prefix("BENCH_RESTORE_PREFIX", argv), fds, 3);
		root = c->l.pid;
	} else if (t == T_BASE) {
		char *argv[] = { baserestore, base, NULL };
		int fds[3] = { cp[0], rp[1], lfd };

		tool = spawn(argv, fds, 3);
	} else {
		char *argv[] = { (char *)criu, "restore", "-D", dir, "-o", "restore.log",
				 "--restore-detached", "--inherit-fd", inh0, "--inherit-fd", inh1,
				 NULL };
		int fds[5] = { -1, lfd, lfd, cp[0], rp[1] };

		tool = spawn(argv, fds, 5);
		root = c->l.pid;
	}
	close(cp[0]);
	close(rp[1]);
	if (read_line(rp[0], line, sizeof(line), TIMEOUT_MS) == 0 && !strcmp(line, "P")) {
		t1 = now();
		ok = 1;
	}
	if (ok) {
		/* the memory must be what the workload had */
		if (ask(cp[1], rp[0], 'V', line, sizeof(line)) || strncmp(line, "V ok", 4)) {
			c->w->verify_bad = 1;
			set_status(slot, xasprintf("failed: restored memory differs (%s)", line));
			ok = 0;
		}
	}
	close(cp[1]);		/* EOF: the restored workload exits */
	if (!ok) {
		/* a failed restorer exits by itself with its message: give it
		 * time, so its status is the one reported */
		double deadline = now() + 10;

		while (waitpid(tool, &st, WNOHANG) == 0 && now() < deadline)
			usleep(1000);
		if (now() >= deadline) {
			kill(tool, SIGKILL);
			waitpid(tool, &st, 0);
		}
		tool = 0;
	}
	if (root)
		kill_tree(root);
	if (t == T_CRYO)
		free_tree_pids(&c->l);
	if (tool) {
		/* cryo -r without -d waits for the restored root, which is gone now;
		 * CRIU --restore-detached has exited already */
		if (t == T_BASE)
			kill(tool, SIGKILL);
		waitpid(tool, &st, 0);
	}
	close(rp[0]);
	close(lfd);
	reap_all();
	if (ok) {
		record(c, t, lazy ? M_LAZY : M_RESTORE, t1 - t0);
	} else if (!*slot) {
		char *lg = log;

		if (t == T_CRIU) {
			lg = xasprintf("%s/restore.log", dir);
			set_status(slot, classify_failure(st, lg));
			free(lg);
		} else {
			set_status(slot, classify_failure(st, log));
		}
	}
	free(log);
	free(img);
	free(swap);
	free(base);
	free(dir);
	free(inh0);
	free(inh1);
}

/* Flush what earlier steps left dirty, so that no dump pays for another's
 * writeback. */
static void settle(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
}

static void remove_outputs(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		rm_rf(p);
		free(p);
	}
	if (d)
		closedir(d);
}

/* One run: each tool in turn (the order rotates from run to run) gets a
 * fresh workload, dumps it, restores it, and its files are deleted before
 * the next tool starts, so that every tool writes to the filesystem in the
 * same state (here the root fs is mounted with discard: blocks freed by a
 * delete go back to the host, and writing them again is slow). */
static void one_run(struct workload *w, int run)
{
	struct run_ctx c;
	int nt = criu ? 3 : 2;

	memset(&c, 0, sizeof(c));
	for (int t = 0; t < NTOOLS; t++)
		for (int m = 0; m < NMETRICS; m++)
			c.v[t][m] = NAN;
	c.w = w;
	c.run = run;
	c.dir = xasprintf("%s/%s-%d", work, w->name, run < 0 ? 0 : run);
	rm_rf(c.dir);
	if (mkdir(c.dir, 0700))
		die("mkdir %s: %s", c.dir, strerror(errno));
	for (int i = 0; i < nt; i++) {
		enum tool t = (enum tool)((i + (run < 0 ? 0 : run)) % nt);

		c.l.cmd = c.l.rep = -1;
		if (start_workload(w, &c.l)) {
			stop_live(&c.l);
			continue;
		}
		settle(c.dir);
		dump_with(&c, t);
		stop_live(&c.l);
		if (c.dumped[t]) {
			restore_with(&c, t, 0);
			if (t == T_CRYO && have_lazy)
				restore_with(&c, t, 1);
		}
		remove_outputs(c.dir);
		settle(c.dir);
	}
	rm_rf(c.dir);
	if (run >= 0) {
		for (int t = 0; t < nt; t++)
			for (int m = 0; m < NMETRICS; m++) {
				if (isnan(c.v[t][m]))
					continue;
				add(&w->s[t][m], c.v[t][m]);
				fprintf(runs_csv, "%s,%d,%s,%s,%d,%.9g\n", w->name, w->mib,
					tool_name[t], metric_name[m], run, c.v[t][m]);
			}
		fflush(runs_csv);
	}
	free((char *)c.dir);
}

/* ---------------------------------------------------------------- */
/* reporting                                                          */

static const char *status_of(struct workload *w, enum tool t, int restore)
{
	if (w->dump_status[t])
		return w->dump_status[t];
	return restore ? w->restore_status[t] : NULL;
}

/* "12.3 [11.9-13.0]" in ms, or the status */
static void cell_ms(char *buf, size_t len, const struct series *s)
{
	if (!s->n)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f [%.1f-%.1f]", median(s) * 1e3, smin(s) * 1e3,
			 smax(s) * 1e3);
}

static void cell_ratio(char *buf, size_t len, const struct series *a, const struct series *b)
{
	if (!a->n || !b->n || median(b) <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2fx", median(a) / median(b));
}

static void cell_bytes(char *buf, size_t len, const struct series *s)
{
	double b = median(s);

	if (!s->n)
		snprintf(buf, len, "-");
	else if (b >= 1 << 20)
		snprintf(buf, len, "%.1f MiB", b / (1 << 20));
	else
		snprintf(buf, len, "%.1f KiB", b / 1024);
}

static void print_tables(FILE *f)
{
	char a[64], b[64], r[64], fz[64], fb[64], by[64], bb[64], cr[64], crr[64];

	fprintf(f, "\nDUMP   (ms: median [min-max] of %d runs; freeze = longest stop seen by the workload)\n",
		runs);
	fprintf(f, "%-11s %-24s %-24s %-9s %-22s %-22s %-10s %-10s", "workload", "cryo dump",
		"baseline dump", "cryo/base", "cryo freeze", "baseline freeze", "cryo bytes",
		"base bytes");
	if (criu)
		fprintf(f, " %-24s %-9s", "CRIU dump", "cryo/CRIU");
	fprintf(f, "\n");
	for (size_t i = 0; i < nwl; i++) {
		struct workload *w = &wl[i];
		const char *st = status_of(w, T_CRYO, 0);

		if (!w->enabled)
			continue;
		cell_ms(b, sizeof(b), &w->s[T_BASE][M_DUMP]);
		cell_ms(fb, sizeof(fb), &w->s[T_BASE][M_FREEZE]);
		cell_bytes(bb, sizeof(bb), &w->s[T_BASE][M_BYTES]);
		if (w->dump_status[T_BASE])
			snprintf(b, sizeof(b), "%.60s", w->dump_status[T_BASE]);
		if (st) {
			fprintf(f, "%-11s %-24s %-24s %s\n", w->name, "-", b, st);
		} else {
			cell_ms(a, sizeof(a), &w->s[T_CRYO][M_DUMP]);
			cell_ratio(r, sizeof(r), &w->s[T_CRYO][M_DUMP], &w->s[T_BASE][M_DUMP]);
			cell_ms(fz, sizeof(fz), &w->s[T_CRYO][M_FREEZE]);
			cell_bytes(by, sizeof(by), &w->s[T_CRYO][M_BYTES]);
			fprintf(f, "%-11s %-24s %-24s %-9s %-22s %-22s %-10s %-10s", w->name, a, b, r,
				fz, fb, by, bb);
			if (criu) {
				if (w->dump_status[T_CRIU]) {
					fprintf(f, " CRIU %s", w->dump_status[T_CRIU]);
				} else {
					cell_ms(cr, sizeof(cr), &w->s[T_CRIU][M_DUMP]);
					cell_ratio(crr, sizeof(crr), &w->s[T_CRYO][M_DUMP],
						   &w->s[T_CRIU][M_DUMP]);
					fprintf(f, " %-24s %-9s", cr, crr);
				}
			}
			fprintf(f, "\n");
		}
	}

	fprintf(f, "\nRESTORE   (ms from exec of the restorer until the restored workload answers a ping;"
		" memory re-hashed after)\n");
	fprintf(f, "%-11s %-24s %-24s %-9s %-24s", "workload", "cryo restore", "baseline restore",
		"cryo/base", "cryo lazy restore");
	if (criu)
		fprintf(f, " %-24s %-9s", "CRIU restore", "cryo/CRIU");
	fprintf(f, "\n");
	for (size_t i = 0; i < nwl; i++) {
		struct workload *w = &wl[i];
		const char *st = status_of(w, T_CRYO, 1);
		char lz[256];

		if (!w->enabled)
			continue;
		cell_ms(b, sizeof(b), &w->s[T_BASE][M_RESTORE]);
		if (status_of(w, T_BASE, 1))
			snprintf(b, sizeof(b), "%.60s", status_of(w, T_BASE, 1));
		if (st) {
			fprintf(f, "%-11s %-24s %-24s %s\n", w->name, "-", b, st);
			continue;
		}
		cell_ms(a, sizeof(a), &w->s[T_CRYO][M_RESTORE]);
		cell_ratio(r, sizeof(r), &w->s[T_CRYO][M_RESTORE], &w->s[T_BASE][M_RESTORE]);
		if (!have_lazy)
			snprintf(lz, sizeof(lz), "n/a (not implemented)");
		else if (w->lazy_status)
			snprintf(lz, sizeof(lz), "%.200s", w->lazy_status);
		else
			cell_ms(lz, sizeof(lz), &w->s[T_CRYO][M_LAZY]);
		fprintf(f, "%-11s %-24s %-24s %-9s %-24s", w->name, a, b, r, lz);
		if (criu) {
			if (status_of(w, T_CRIU, 1)) {
				fprintf(f, " CRIU %s", status_of(w, T_CRIU, 1));
			} else {
				cell_ms(cr, sizeof(cr), &w->s[T_CRIU][M_RESTORE]);
				cell_ratio(crr, sizeof(crr), &w->s[T_CRYO][M_RESTORE],
					   &w->s[T_CRIU][M_RESTORE]);
				fprintf(f, " %-24s %-9s", cr, crr);
			}
		}
		fprintf(f, "\n");
	}
	/* the acceptance figure of #8: 1 GiB lazily, until the tree runs */
	{
		struct workload *g = NULL;
		char lz[256];

		for (size_t i = 0; i < nwl; i++)
			if (wl[i].enabled && wl[i].mib == 1024)
				g = &wl[i];
		if (!have_lazy)
			snprintf(lz, sizeof(lz), "n/a (not implemented)");
		else if (!g)
			snprintf(lz, sizeof(lz), "not measured in this run (no 1 GiB workload:"
				 " BENCH_SIZES=1024)");
		else if (g->dump_status[T_CRYO] || g->lazy_status)
			snprintf(lz, sizeof(lz), "%.200s",
				 g->dump_status[T_CRYO] ? g->dump_status[T_CRYO] : g->lazy_status);
		else if (!g->s[T_CRYO][M_LAZY].n)
			snprintf(lz, sizeof(lz), "-");
		else
			snprintf(lz, sizeof(lz), "%.1f ms median [%.1f-%.1f] of %d runs"
				 " (eager %.1f ms; target < 20 ms)",
				 median(&g->s[T_CRYO][M_LAZY]) * 1e3, smin(&g->s[T_CRYO][M_LAZY]) * 1e3,
				 smax(&g->s[T_CRYO][M_LAZY]) * 1e3, g->s[T_CRYO][M_LAZY].n,
				 median(&g->s[T_CRYO][M_RESTORE]) * 1e3);
		fprintf(f, "\nlazy restore of 1 GiB until the tree runs: %s\n", lz);
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.9g", v);
}

static const char *status_text(struct workload *w, enum tool t, enum metric m)
{
	if (m == M_LAZY) {
		if (t != T_CRYO)
			return "n/a";
		if (!have_lazy)
			return "n/a (not implemented)";
		if (w->dump_status[t])
			return w->dump_status[t];
		return w->lazy_status ? w->lazy_status : "ok";
	}
	if (w->dump_status[t])
		return w->dump_status[t];
	if (m == M_RESTORE && w->restore_status[t])
		return w->restore_status[t];
	return "ok";
}

static void write_outputs(const char *meta_json)
{
	char *p = xasprintf("%s/bench.csv", results);
	FILE *csv = fopen(p, "w"), *js, *dat;
	int nt = criu ? 3 : 2;

	if (!csv)
		die("%s: %s", p, strerror(errno));
	fprintf(csv, "workload,mem_mib,tool,metric,median,min,max,n,status\n");
	free(p);
	p = xasprintf("%s/bench.json", results);
	js = fopen(p, "w");
	if (!js)
		die("%s: %s", p, strerror(errno));
	free(p);
	fprintf(js, "{\n  \"meta\": %s,\n  \"workloads\": [\n", meta_json);
	for (size_t i = 0, first = 1; i < nwl; i++) {
		struct workload *w = &wl[i];

		if (!w->enabled)
			continue;
		fprintf(js, "%s    {\"name\": ", first ? "" : ",\n");
		first = 0;
		json_str(js, w->name);
		fprintf(js, ", \"mem_mib\": %d, \"tools\": {", w->mib);
		for (int t = 0; t < nt; t++) {
			fprintf(js, "%s\n      ", t ? "," : "");
			json_str(js, tool_name[t]);
			fprintf(js, ": {");
			for (int m = 0; m < NMETRICS; m++) {
				struct series *s = &w->s[t][m];
				const char *st = status_text(w, t, m);

				if (m == M_LAZY && t != T_CRYO)
					continue;
				if ((m == M_FREEZE || m == M_DUMP || m == M_BYTES) && t == T_CRYO &&
				    w->dump_status[t])
					st = w->dump_status[t];
				fprintf(csv, "%s,%d,%s,%s,", w->name, w->mib, tool_name[t],
					metric_name[m]);
				if (s->n)
					fprintf(csv, "%.9g,%.9g,%.9g,%d,", median(s), smin(s), smax(s),
						s->n);
				else
					fprintf(csv, ",,,0,");
				fputc('"', csv);
				for (const char *q = st; *q; q++)
					fprintf(csv, *q == '"' ? "\"\"" : "%c", *q);
				fprintf(csv, "\"\n");
				fprintf(js, "%s\n        ", m ? "," : "");
				json_str(js, metric_name[m]);
				fprintf(js, ": {\"median\": ");
				json_num(js, median(s));
				fprintf(js, ", \"min\": ");
				json_num(js, smin(s));
				fprintf(js, ", \"max\": ");
				json_num(js, smax(s));
				fprintf(js, ", \"runs\": [");
				for (int k = 0; k < s->n; k++)
					fprintf(js, "%s%.9g", k ? ", " : "", s->v[k]);
				fprintf(js, "], \"status\": ");
				json_str(js, st);
				fprintf(js, "}");
			}
			fprintf(js, "}");
		}
		fprintf(js, "},\n      \"ratios\": {");
		{
			const struct { const char *name; enum tool a, b; enum metric m; } rr[] = {
				{ "dump_cryo_over_baseline", T_CRYO, T_BASE, M_DUMP },
				{ "restore_cryo_over_baseline", T_CRYO, T_BASE, M_RESTORE },
				{ "dump_cryo_over_criu", T_CRYO, T_CRIU, M_DUMP },
				{ "restore_cryo_over_criu", T_CRYO, T_CRIU, M_RESTORE },
			};
			for (size_t k = 0; k < sizeof(rr) / sizeof(rr[0]); k++) {
				struct series *a = &w->s[rr[k].a][rr[k].m], *b = &w->s[rr[k].b][rr[k].m];

				fprintf(js, "%s\"%s\": ", k ? ", " : "", rr[k].name);
				json_num(js, a->n && b->n ? median(a) / median(b) : NAN);
			}
		}
		fprintf(js, "}}");
	}
	fprintf(js, "\n  ]\n}\n");
	fclose(js);
	fclose(csv);

	/* time vs memory size, for the plot */
	p = xasprintf("%s/mem.dat", results);
	dat = fopen(p, "w");
	free(p);
	if (!dat)
		return;
	fprintf(dat, "# mib cryo_dump base_dump criu_dump cryo_restore base_restore criu_restore"
		" (seconds, medians; NaN: not measured)\n");
	for (size_t i = 0; i < nwl; i++) {
		struct workload *w = &wl[i];

		if (!w->enabled || !w->mib)
			continue;
		fprintf(dat, "%d %.6g %.6g %.6g %.6g %.6g %.6g\n", w->mib,
			median(&w->s[T_CRYO][M_DUMP]), median(&w->s[T_BASE][M_DUMP]),
			median(&w->s[T_CRIU][M_DUMP]), median(&w->s[T_CRYO][M_RESTORE]),
			median(&w->s[T_BASE][M_RESTORE]), median(&w->s[T_CRIU][M_RESTORE]));
	}
	fclose(dat);
}

/* ---------------------------------------------------------------- */

/* ---------------------------------------------------------------- */
/* incremental dumps and pre-dumps                                    */

/* One workload of incr_mib MiB per run: a full dump into a fresh swapfile,
 * 1% of the pages dirtied, a second dump into the same swapfile (content
 * dedup: only the changed pages are written), 1% dirtied again, then
 * `cryo --pre-dump` into another fresh swapfile (memory copied while it
 * runs, the freeze copies only what was written since). */
enum incr_metric { I_FULL, I_FULL_FREEZE, I_INCR, I_PRE, I_PRE_FREEZE, I_PRE_FROZEN, NI };
static const char *const incr_name[NI] = {
	"full_dump_s", "full_freeze_s", "incr_dump_s", "predump_s", "predump_freeze_s",
	"predump_frozen_reported_s"
};
static struct series incr_s[NI];
static int incr_mib = 1024, incr_enabled = 1;
static char *incr_status;

/* "frozen for X ms" as cryo -v reports it (the last one in the log) */
static double reported_frozen(const char *log)
{
	FILE *f = fopen(log, "r");
	char line[1024];
	double v = NAN;

	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "frozen for ");

		if (p)
			v = atof(p + 11) / 1e3;
	}
	if (f)
		fclose(f);
	return v;
}

static int incr_dump(struct live *l, const char *dir, const char *name, const char *swap,
		     int pre, double *secs, double *freeze, double *frozen)
{
	char pidbuf[16], line[64];
	char *img = xasprintf("%s/%s.img", dir, name), *log = xasprintf("%s/%s.log", dir, name);
	char *argv[] = { (char *)cryo, "-p", pidbuf, "-f", img, "-s", (char *)swap, "-v",
			 pre ? "--pre-dump" : NULL, NULL };
	int st, ok;

	snprintf(pidbuf, sizeof(pidbuf), "%d", l->pid);
	settle(dir);
	freeze_window(l);
	usleep(2000);
	st = run_timed(argv, log, secs);
	*freeze = freeze_window(l);
	*frozen = reported_frozen(log);
	ok = WIFEXITED(st) && !WEXITSTATUS(st);
	if (!ok)
		set_status(&incr_status, classify_failure(st, log));
	free(img);
	free(log);
	if (ask(l->cmd, l->rep, 'P', line, sizeof(line)) || strcmp(line, "P"))
		die("the incremental workload did not survive the %s dump", name);
	return ok ? 0 : -1;
}

static void incr_run(int run)
{
	char mib[16], line[64];
	struct workload w = { .name = "incr", .argv1 = "mem", .mib = incr_mib };
	struct live l = { .cmd = -1, .rep = -1 };
	double v[NI], fr;
	char *dir = xasprintf("%s/incr-%d", work, run < 0 ? 0 : run), *a, *b;
	int ok;

	for (int m = 0; m < NI; m++)
		v[m] = NAN;
	snprintf(mib, sizeof(mib), "%d", incr_mib);
	w.argv2 = mib;
	rm_rf(dir);
	if (mkdir(dir, 0700))
		die("mkdir %s: %s", dir, strerror(errno));
	a = xasprintf("%s/a.swap", dir);
	b = xasprintf("%s/b.swap", dir);
	ok = !start_workload(&w, &l);
	ok = ok && !incr_dump(&l, dir, "full", a, 0, &v[I_FULL], &v[I_FULL_FREEZE], &fr);
	ok = ok && !ask(l.cmd, l.rep, 'D', line, sizeof(line));
	ok = ok && !incr_dump(&l, dir, "incr", a, 0, &v[I_INCR], &fr, &fr);
	ok = ok && !ask(l.cmd, l.rep, 'D', line, sizeof(line));
	ok = ok && !incr_dump(&l, dir, "pre", b, 1, &v[I_PRE], &v[I_PRE_FREEZE], &v[I_PRE_FROZEN]);
	stop_live(&l);
	rm_rf(dir);
	settle(work);
	if (ok && run >= 0)
		for (int m = 0; m < NI; m++) {
			if (isnan(v[m]))
				continue;
			add(&incr_s[m], v[m]);
			fprintf(runs_csv, "incr-%dM,%d,cryo,%s,%d,%.9g\n", incr_mib, incr_mib,
				incr_name[m], run, v[m]);
		}
	fflush(runs_csv);
	free(a);
	free(b);
	free(dir);
}

static void print_incr(FILE *f)
{
	char c[NI][64], r1[32] = "-", r2[32] = "-";

	if (!incr_enabled)
		return;
	fprintf(f, "\nINCREMENTAL   (%d MiB; 1%% of the pages dirtied before the 2nd and 3rd dump;"
		" ms: median [min-max] of %d runs)\n", incr_mib, incr_s[I_FULL].n);
	if (incr_status)
		fprintf(f, "  %s\n", incr_status);
	for (int m = 0; m < NI; m++)
		cell_ms(c[m], sizeof(c[m]), &incr_s[m]);
	if (incr_s[I_FULL].n && median(&incr_s[I_FULL]) > 0) {
		snprintf(r1, sizeof(r1), "%.1f%%", 100 * median(&incr_s[I_INCR]) /
			 median(&incr_s[I_FULL]));
		snprintf(r2, sizeof(r2), "%.1f%%", 100 * median(&incr_s[I_PRE_FREEZE]) /
			 median(&incr_s[I_FULL]));
	}
	fprintf(f, "%-44s %-24s\n", "full dump (fresh swapfile)", c[I_FULL]);
	fprintf(f, "%-44s %-24s (workload's longest stop)\n", "  its freeze", c[I_FULL_FREEZE]);
	fprintf(f, "%-44s %-24s incremental/full %s\n", "incremental dump (same swapfile, dedup)",
		c[I_INCR], r1);
	fprintf(f, "%-44s %-24s\n", "--pre-dump (fresh swapfile), total", c[I_PRE]);
	fprintf(f, "%-44s %-24s freeze/full dump %s (cryo says %s)\n",
		"  its freeze (workload's longest stop)", c[I_PRE_FREEZE], r2, c[I_PRE_FROZEN]);
}

static void write_incr_json(void)
{
	char *p = xasprintf("%s/incremental.json", results);
	FILE *f;

	if (!incr_enabled || !(f = fopen(p, "w"))) {
		free(p);
		return;
	}
	fprintf(f, "{\"mem_mib\": %d, \"runs\": %d, \"status\": ", incr_mib, incr_s[I_FULL].n);
	json_str(f, incr_status ? incr_status : "ok");
	for (int m = 0; m < NI; m++) {
		fprintf(f, ", \"%s\": {\"median\": ", incr_name[m]);
		json_num(f, incr_s[m].n ? median(&incr_s[m]) : NAN);
		fprintf(f, ", \"min\": ");
		json_num(f, incr_s[m].n ? smin(&incr_s[m]) : NAN);
		fprintf(f, ", \"max\": ");
		json_num(f, incr_s[m].n ? smax(&incr_s[m]) : NAN);
		fprintf(f, "}");
	}
	fprintf(f, "}\n");
	fclose(f);
	free(p);
}

static void add_workload(const char *name, const char *a1, const char *a2, int mib)
{
	wl[nwl++] = (struct workload){ .name = strdup(name), .argv1 = a1,
				       .argv2 = a2 ? strdup(a2) : NULL, .mib = mib, .enabled = 1 };
}

static int in_list(const char *list, const char *name)
{
	char *c = strdup(list), *save, *tok;
	int found = 0;

	for (tok = strtok_r(c, ", ", &save); tok && !found; tok = strtok_r(NULL, ", ", &save))
		found = !strcmp(tok, name);
	free(c);
	return found;
}

static int cryo_has_lazy(void)
{
	char *log = xasprintf("%s/cryo-help.txt", work);
	char *argv[] = { (char *)cryo, "--help", NULL };
	double s;
	FILE *f;
	char line[512];
	int found = 0;

	run_timed(argv, log, &s);
	f = fopen(log, "re");
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, "--lazy") != NULL;
	if (f)
		fclose(f);
	unlink(log);
	free(log);
	return found;
}

static char *cmd_output(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char buf[256] = "";

	if (p) {
		if (!fgets(buf, sizeof(buf), p))
			buf[0] = 0;
		pclose(p);
	}
	buf[strcspn(buf, "\n")] = 0;
	return strdup(buf);
}

int main(int argc, char **argv)
{
	char self[PATH_MAX], *slash, *env, *sizes, *meta, *git, *cryo_ver;
	struct utsname u;
	time_t tnow = time(NULL);
	char date[64];
	double t_start = now();
	int c;

	while ((c = getopt(argc, argv, "o:")) != -1) {
		if (c == 'o')
			results = optarg;
		else
			die("usage: bench [-o RESULTS_DIR]");
	}
	/* our binaries live beside us */
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[sizeof(self) - 1] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	bench_dir = strdup(self);
	snprintf(basedump, sizeof(basedump), "%s/basedump", bench_dir);
	snprintf(baserestore, sizeof(baserestore), "%s/baserestore", bench_dir);
	snprintf(workload_bin, sizeof(workload_bin), "%s/workload", bench_dir);
	cryo = getenv("CRYO");
	if (!cryo || !*cryo)
		cryo = xasprintf("%s/../../tools/cryo/cryo", bench_dir);	/* bench/bin/ */
	{
		char *r = realpath(cryo, NULL);

		if (!r)
			die("cryo binary %s: %s", cryo, strerror(errno));
		cryo = r;
	}
	criu = getenv("CRIU");
	if (criu && !*criu)
		criu = NULL;
	if (criu && access(criu, X_OK))
		die("CRIU=%s: %s", criu, strerror(errno));
	if (!results)
		results = xasprintf("%s/results", bench_dir);
	if (mkdir(results, 0755) && errno != EEXIST)
		die("mkdir %s: %s", results, strerror(errno));
	env = getenv("BENCH_QUICK");
	quick = env && *env && strcmp(env, "0");
	runs = quick ? 3 : 6;
	env = getenv("BENCH_RUNS");
	if (env && atoi(env) > 0)
		runs = atoi(env) < MAXRUNS ? atoi(env) : MAXRUNS;
	sizes = getenv("BENCH_SIZES");
	if (!sizes || !*sizes)
		sizes = quick ? "1,64,512" : "1,64,512,1024";
	env = getenv("BENCH_DIR");
	work = xasprintf("%s/cryo-bench.%d", env && *env ? env : "/var/tmp", getpid());
	if (mkdir(work, 0700))
		die("mkdir %s: %s", work, strerror(errno));

	/* orphans of restored trees (CRIU detaches) come back to us */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);

	add_workload("idle", "idle", NULL, 0);
	{
		char *s = strdup(sizes), *save, *tok;

		for (tok = strtok_r(s, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
			char name[32];
			int mib = atoi(tok);

			if (mib <= 0 || nwl >= 12)
				die("BENCH_SIZES: bad size '%s'", tok);
			snprintf(name, sizeof(name), "mem-%dM", mib);
			add_workload(name, "mem", tok, mib);
		}
		free(s);
	}
	add_workload("threads-50", "threads", "50", 0);
	add_workload("tree-20", "tree", "20", 0);
	env = getenv("BENCH_ONLY");
	if (env && *env)
		for (size_t i = 0; i < nwl; i++)
			wl[i].enabled = in_list(env, wl[i].name);

	env = getenv("BENCH_INCR_MIB");
	if (env && atoi(env) > 0)
		incr_mib = atoi(env);
	env = getenv("BENCH_ONLY");
	if (env && *env)
		incr_enabled = in_list(env, "incr");
	have_lazy = cryo_has_lazy();
	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S%z", localtime(&tnow));
	{
		char *cmd = xasprintf("git -C '%s' describe --always --dirty 2>/dev/null", bench_dir);

		git = cmd_output(cmd);
		free(cmd);
		cmd = xasprintf("'%s' --version 2>&1", cryo);
		cryo_ver = cmd_output(cmd);
		free(cmd);
	}
	meta = xasprintf("{\"date\": \"%s\", \"kernel\": \"%s %s\", \"cpus\": %ld, \"git\": \"%s\","
			 " \"cryo\": \"%s\", \"cryo_version\": \"%s\", \"criu\": %s%s%s,"
			 " \"runs\": %d, \"warmup_runs\": 1, \"quick\": %s, \"dir\": \"%s\"}",
			 date, u.sysname, u.release, sysconf(_SC_NPROCESSORS_ONLN), git, cryo,
			 cryo_ver, criu ? "\"" : "", criu ? criu : "null", criu ? "\"" : "", runs,
			 quick ? "true" : "false", work);
	printf("cryo bench: %s, kernel %s, %ld CPUs, git %s\n", cryo_ver, u.release,
	       sysconf(_SC_NPROCESSORS_ONLN), git);
	printf("cryo: %s   CRIU: %s   runs: %d (+1 warm-up)   files: %s\n", cryo,
	       criu ? criu : "not given (CRIU=/path/to/criu to compare)", runs, work);
	fflush(stdout);

	{
		char *p = xasprintf("%s/runs.csv", results);

		runs_csv = fopen(p, "w");
		if (!runs_csv)
			die("%s: %s", p, strerror(errno));
		fprintf(runs_csv, "workload,mem_mib,tool,metric,run,value\n");
		free(p);
	}
	for (size_t i = 0; i < nwl; i++) {
		struct workload *w = &wl[i];
		double t0 = now();

		if (!w->enabled)
			continue;
		printf("  %-11s", w->name);
		fflush(stdout);
		for (int r = -1; r < runs; r++) {
			one_run(w, r);
			printf(".");
			fflush(stdout);
		}
		printf(" %.1f s\n", now() - t0);
	}
	if (incr_enabled) {
		double t0 = now();

		printf("  %-11s", "incr");
		fflush(stdout);
		for (int r = -1; r < runs; r++) {
			incr_run(r);
			printf(".");
			fflush(stdout);
		}
		printf(" %.1f s\n", now() - t0);
	}
	fclose(runs_csv);
	rm_rf(work);
	print_tables(stdout);
	print_incr(stdout);
	{
		char *p = xasprintf("%s/table.txt", results);
		FILE *f = fopen(p, "w");

		if (f) {
			fprintf(f, "cryo bench %s: %s, kernel %s, git %s, %d runs (+1 warm-up)\n", date,
				cryo_ver, u.release, git, runs);
			print_tables(f);
			print_incr(f);
			fclose(f);
		}
		free(p);
	}
	write_outputs(meta);
	write_incr_json();
	printf("\n%s/{bench.csv,bench.json,runs.csv,table.txt,mem.dat} written; total %.0f s\n",
	       results, now() - t_start);
	for (size_t i = 0; i < nwl; i++)
		if (wl[i].verify_bad)
			return 1;
	return 0;
}
