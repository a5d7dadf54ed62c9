/* Startup cache benchmark (issue #11): a Python program that imports a
 * dozen heavy modules, started cold (python3 -c) and from cryo's startup
 * cache (cryo run --cache), in alternating order, in the same run.
 *
 *   startup [-o RESULTS_DIR]          (run by bench/run.sh, i.e. `make bench`)
 *
 * Environment: CRYO, BENCH_QUICK, BENCH_RUNS, BENCH_DIR as for bench/bench.c;
 * PYTHON=path (default /usr/bin/python3). BENCH_ONLY selects this benchmark
 * when it names startup-python (or is unset).
 *
 * Two cache points, one row each: "stdin" (the script's first read of its
 * stdin, found by cryo; the program is unmodified) and "stop" (the script
 * stops itself with os.kill(os.getpid(), signal.SIGSTOP) after its
 * imports). Times are wall times from fork+exec to exit with the input
 * already in a pipe; every run's output is checked against the cold run's
 * (it depends on the input, which changes from run to run). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXRUNS 64
#define IMPORTS "import json, asyncio, http.server, email.mime.text, decimal, sqlite3," \
		" xml.etree.ElementTree, argparse, logging, os, signal, sys; "
#define WORK "d = sys.stdin.read(); print(json.dumps({'n': len(d), 'upper': d.upper()," \
	     " 'seventh': str(decimal.Decimal(len(d)) / 7)}))"

static const char *script_stdin = IMPORTS WORK;
static const char *script_stop = IMPORTS "os.kill(os.getpid(), signal.SIGSTOP); " WORK;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "startup bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* Run argv with input in its stdin pipe; returns exit status, *secs, and
 * its stdout in out (NUL-terminated, truncated) */
static int run(char *const argv[], const char *input, double *secs, char *out, size_t outlen)
{
	int in[2], o[2], st;
	size_t got = 0;
	double t0;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) || pipe2(o, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	/* the input waits in the pipe before the program starts */
	if (write(in[1], input, strlen(input)) != (ssize_t)strlen(input))
		die("write input: %s", strerror(errno));
	close(in[1]);
	t0 = now();
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	for (;;) {
		ssize_t n = read(o[0], out + got, outlen - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == outlen - 1)
			break;
	}
	out[got] = 0;
	close(o[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*secs = now() - t0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct series {
	double v[MAXRUNS];
	int n;
};

static double median(struct series *s)
{
	double c[MAXRUNS];

	memcpy(c, s->v, sizeof(double) * s->n);
	qsort(c, s->n, sizeof(double), cmpd);
	return s->n % 2 ? c[s->n / 2] : (c[s->n / 2 - 1] + c[s->n / 2]) / 2;
}

static double smin(struct series *s)
{
	double m = s->v[0];

	for (int i = 1; i < s->n; i++)
		m = s->v[i] < m ? s->v[i] : m;
	return m;
}

static double smax(struct series *s)
{
	double m = s->v[0];

	for (int i = 1; i < s->n; i++)
		m = s->v[i] > m ? s->v[i] : m;
	return m;
}

struct row {
	const char *point;
	double first;		/* the run that filled the cache */
	struct series cold, cached;
	char status[256];
};

static void bench_point(struct row *r, const char *cryo, const char *python, const char *dir,
			int runs)
{
	const char *script = strcmp(r->point, "stop") ? script_stdin : script_stop;
	char *cold[] = { (char *)python, "-c", (char *)script, NULL };
	char *cached[] = { (char *)cryo, "run", "--cache", "--cache-dir", (char *)dir,
			   "--cache-point", (char *)r->point, "--", (char *)python, "-c",
			   (char *)script, NULL };
	char want[4096], got[4096], input[64];
	double t;
	int st;

	/* the cold run of the "stop" script stops itself: measure the cold
	 * start with the stdin script, which does the same work */
	cold[2] = (char *)script_stdin;
	snprintf(input, sizeof(input), "fill\n");
	st = run(cached, input, &r->first, got, sizeof(got));
	if (st) {
		snprintf(r->status, sizeof(r->status), "failed: first run exited %d", st);
		return;
	}
	for (int i = -1; i < runs; i++) {	/* -1: warm-up, not counted */
		snprintf(input, sizeof(input), "run %d of %s\n", i, r->point);
		for (int k = 0; k < 2; k++) {
			/* alternate which goes first */
			int do_cold = (k == 0) == (i % 2 == 0);

			st = run(do_cold ? cold : cached, input, &t, do_cold ? want : got,
				 sizeof(want));
			if (st) {
				snprintf(r->status, sizeof(r->status), "failed: %s run exited %d",
					 do_cold ? "cold" : "cached", st);
				return;
			}
			if (i >= 0)
				(do_cold ? &r->cold : &r->cached)->v[i] = t;
		}
		if (strcmp(want, got)) {
			snprintf(r->status, sizeof(r->status), "failed: cached output differs:"
				 " %.80s vs %.80s", got, want);
			return;
		}
	}
	r->cold.n = r->cached.n = runs;
	snprintf(r->status, sizeof(r->status), "ok");
}

static void print_rows(FILE *f, struct row *rows, int n, const char *python, int runs)
{
	fprintf(f, "\nStartup cache (cryo run --cache): %s -c \"import json, asyncio, http.server,"
		" email.mime.text, decimal, sqlite3, xml.etree.ElementTree, argparse, logging; ...\"\n"
		"%d runs (+1 warm-up) each, alternating; medians [min-max]; wall time exec to exit\n\n",
		python, runs);
	fprintf(f, "%-18s %-22s %-22s %-10s %s\n", "cache point", "cold start ms",
		"cached start ms", "cold/cached", "first run (fills the cache) ms");
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		char a[64], b[64];

		if (strcmp(r->status, "ok")) {
			fprintf(f, "%-18s %s\n", r->point, r->status);
			continue;
		}
		snprintf(a, sizeof(a), "%.1f [%.1f-%.1f]", median(&r->cold) * 1e3,
			 smin(&r->cold) * 1e3, smax(&r->cold) * 1e3);
		snprintf(b, sizeof(b), "%.1f [%.1f-%.1f]", median(&r->cached) * 1e3,
			 smin(&r->cached) * 1e3, smax(&r->cached) * 1e3);
		fprintf(f, "%-18s %-22s %-22s %-10.2f %.1f\n", r->point, a, b,
			median(&r->cold) / median(&r->cached), r->first * 1e3);
	}
}

int main(int argc, char **argv)
{
	const char *results = NULL, *env, *python, *cryo;
	char self[PATH_MAX], *slash, *dir, *p;
	struct row rows[2] = { { .point = "stdin" }, { .point = "stop" } };
	int runs, quick;
	FILE *f;

	if (argc == 3 && !strcmp(argv[1], "-o"))
		results = argv[2];
	else if (argc != 1)
		die("usage: startup [-o RESULTS_DIR]");
	env = getenv("BENCH_ONLY");
	if (env && *env && !strstr(env, "startup-python"))
		return 0;
	python = getenv("PYTHON");
	if (!python || !*python)
		python = "/usr/bin/python3";
	if (access(python, X_OK)) {
		printf("startup cache: %s not found: skipped (PYTHON=path)\n", python);
		return 0;
	}
	python = realpath(python, NULL);
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[sizeof(self) - 1] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	cryo = getenv("CRYO");
	if (!cryo || !*cryo) {
		if (asprintf(&p, "%s/../../tools/cryo/cryo", self) < 0)
			die("no memory");
		cryo = p;
	}
	cryo = realpath(cryo, NULL);
	if (!cryo)
		die("cryo binary: %s", strerror(errno));
	env = getenv("BENCH_QUICK");
	quick = env && *env && strcmp(env, "0");
	runs = quick ? 5 : 10;
	env = getenv("BENCH_RUNS");
	if (env && atoi(env) > 0)
		runs = atoi(env) < MAXRUNS ? atoi(env) : MAXRUNS;
	env = getenv("BENCH_DIR");
	if (asprintf(&dir, "%s/cryo-startup.%d", env && *env ? env : "/var/tmp", getpid()) < 0)
		die("no memory");
	printf("  startup-python ");
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		bench_point(&rows[i], cryo, python, dir, runs);
		printf(".");
		fflush(stdout);
	}
	printf("\n");
	{
		char *rm;

		if (asprintf(&rm, "rm -rf '%s'", dir) >= 0 && system(rm) != 0)
			fprintf(stderr, "startup bench: could not remove %s\n", dir);
	}
	print_rows(stdout, rows, 2, python, runs);
	if (!results)
		return 0;
	if (asprintf(&p, "%s/table.txt", results) >= 0 && (f = fopen(p, "a"))) {
		print_rows(f, rows, 2, python, runs);
		fclose(f);
	}
	if (asprintf(&p, "%s/startup.json", results) >= 0 && (f = fopen(p, "w"))) {
		fprintf(f, "{\"python\": \"%s\", \"runs\": %d, \"warmup_runs\": 1, \"points\": [",
			python, runs);
		for (int i = 0; i < 2; i++) {
			struct row *r = &rows[i];
			int ok = !strcmp(r->status, "ok");

			fprintf(f, "%s\n  {\"cache_point\": \"%s\", \"status\": \"%s\"", i ? "," : "",
				r->point, ok ? "ok" : "failed");
			if (ok) {
				fprintf(f, ", \"first_run_s\": %.6f, \"cold_median_s\": %.6f,"
					" \"cached_median_s\": %.6f, \"ratio_cold_over_cached\": %.3f,"
					" \"cold_s\": [", r->first, median(&r->cold),
					median(&r->cached), median(&r->cold) / median(&r->cached));
				for (int k = 0; k < r->cold.n; k++)
					fprintf(f, "%s%.6f", k ? ", " : "", r->cold.v[k]);
				fprintf(f, "], \"cached_s\": [");
				for (int k = 0; k < r->cached.n; k++)
					fprintf(f, "%s%.6f", k ? ", " : "", r->cached.v[k]);
				fprintf(f, "]");
			}
			fprintf(f, "}");
		}
		fprintf(f, "\n]}\n");
		fclose(f);
	}
	for (int i = 0; i < 2; i++)
		if (strcmp(rows[i].status, "ok"))
			return 1;
	return 0;
}
