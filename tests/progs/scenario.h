/* Shared helpers for the scenario programs in tests/progs.
 *
 * Conventions (tests/bats/helpers.bash relies on them):
 *  - Output goes to stdout, one line per event, flushed at once.
 *  - When setup is complete the program prints the line "READY".
 *  - SIGUSR1 requests a check: the handler only sets a flag, the main loop
 *    runs the check and prints exactly one line, "PASS <name>" or
 *    "FAIL <name>: <details>", then goes on waiting, so the check can run
 *    before the dump and again after the restore.
 *  - SIGTERM makes the program _exit(0).
 *  - Programs never spin: they sleep in short nanosleeps or block in a call.
 *  - scn_init() closes every inherited fd above 2, so the fd table holds only
 *    stdio plus what the scenario opens itself.
 *  - Setup failures print "FAIL <name>: setup: ..." and exit 2.
 */
#ifndef CRYO_TESTS_SCENARIO_H
#define CRYO_TESTS_SCENARIO_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define SCN_UNUSED __attribute__((unused))

static const char *scn_name SCN_UNUSED = "scenario";
static volatile sig_atomic_t scn_check_requested SCN_UNUSED;
static char scn_fail_buf[2048] SCN_UNUSED;
static size_t scn_fail_len SCN_UNUSED;
static int scn_nfail SCN_UNUSED;

static void SCN_UNUSED scn_on_usr1(int sig)
{
	(void)sig;
	scn_check_requested = 1;
}

static void SCN_UNUSED scn_on_term(int sig)
{
	(void)sig;
	_exit(0);
}

/* Setup failed: report and exit 2. */
static void SCN_UNUSED __attribute__((format(printf, 1, 2), noreturn))
scn_die(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: setup: ", scn_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(2);
}

/* Call first: names the scenario, closes inherited fds > 2, and makes
 * SIGTERM exit 0. No SIGUSR1 handler yet (see scn_install_check). */
static void SCN_UNUSED scn_init(const char *name)
{
	struct sigaction sa;

	scn_name = name;
	if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = scn_on_term;
	if (sigaction(SIGTERM, &sa, NULL) != 0)
		scn_die("sigaction(SIGTERM): %s", strerror(errno));
}

/* SIGUSR1 -> check request. No SA_RESTART: a short sleep just ends early. */
static void SCN_UNUSED scn_install_check(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = scn_on_usr1;
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		scn_die("sigaction(SIGUSR1): %s", strerror(errno));
}

static void SCN_UNUSED scn_ready(void)
{
	printf("READY\n");
	fflush(stdout);
}

/* ---- check reporting ---- */
static void SCN_UNUSED scn_check_begin(void)
{
	scn_nfail = 0;
	scn_fail_len = 0;
	scn_fail_buf[0] = '\0';
}

/* Record one failed expectation (details accumulate, "; "-separated). */
static void SCN_UNUSED __attribute__((format(printf, 1, 2)))
scn_fail(const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	scn_nfail++;
	if (scn_fail_len + 8 >= sizeof(scn_fail_buf))
		return;
	if (scn_fail_len) {
		memcpy(scn_fail_buf + scn_fail_len, "; ", 3);
		scn_fail_len += 2;
	}
	room = sizeof(scn_fail_buf) - scn_fail_len;
	va_start(ap, fmt);
	n = vsnprintf(scn_fail_buf + scn_fail_len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	scn_fail_len += ((size_t)n < room) ? (size_t)n : room - 1;
	/* one line only */
	for (size_t i = 0; i < scn_fail_len; i++)
		if (scn_fail_buf[i] == '\n')
			scn_fail_buf[i] = ' ';
}

#define SCN_EXPECT(cond, ...)			\
	do {					\
		if (!(cond))			\
			scn_fail(__VA_ARGS__);	\
	} while (0)

/* Print the verdict line; returns 1 on PASS. */
static int SCN_UNUSED scn_check_end(void)
{
	if (scn_nfail == 0)
		printf("PASS %s\n", scn_name);
	else
		printf("FAIL %s: %s (%d failed)\n", scn_name, scn_fail_buf, scn_nfail);
	fflush(stdout);
	return scn_nfail == 0;
}

/* ---- waiting ---- */
/* Sleep ms milliseconds; returns early (EINTR) when a signal arrives. */
static void SCN_UNUSED scn_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Run check() if SIGUSR1 asked for it. */
static void SCN_UNUSED scn_poll(void (*check)(void))
{
	if (!scn_check_requested)
		return;
	scn_check_requested = 0;
	scn_check_begin();
	check();
	scn_check_end();
}

/* Wait forever in 50 ms sleeps, running check() on request. */
static void SCN_UNUSED __attribute__((noreturn)) scn_loop(void (*check)(void))
{
	for (;;) {
		scn_poll(check);
		scn_sleep_ms(50);
	}
}

/* ---- small utilities ---- */
static uint64_t SCN_UNUSED scn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Read a whole (proc) file into a malloc'ed buffer. Returns NULL on error. */
static char SCN_UNUSED *scn_read_file(const char *path, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb)
				goto err;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return buf;
err:
	close(fd);
	free(buf);
	return NULL;
}

/* One line of /proc/self/maps. */
struct scn_vma {
	uintptr_t start, end;
	char perms[8];
	unsigned long long offset;
	unsigned long inode;
	char path[4096];
	char line[4200];
};

/* Find the VMA containing addr. Returns 1 if found, 0 if not, -1 on error. */
static int SCN_UNUSED scn_find_vma(uintptr_t addr, struct scn_vma *v)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[sizeof(v->line)];
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, ino;
		unsigned long long off;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %llx %*x:%*x %lu %n",
			   &s, &e, perms, &off, &ino, &pos) < 5)
			continue;
		if (addr < s || addr >= e)
			continue;
		v->start = s;
		v->end = e;
		snprintf(v->perms, sizeof(v->perms), "%s", perms);
		v->offset = off;
		v->inode = ino;
		snprintf(v->path, sizeof(v->path), "%s", pos ? line + pos : "");
		v->path[strcspn(v->path, "\n")] = '\0';
		snprintf(v->line, sizeof(v->line), "%s", line);
		v->line[strcspn(v->line, "\n")] = '\0';
		found = 1;
		break;
	}
	fclose(f);
	return found;
}

/* 64-bit mix (splitmix64 finalizer): a pattern that depends on x. */
static inline uint64_t SCN_UNUSED scn_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif
