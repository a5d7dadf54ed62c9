/* Dump floor (baseline a): the least a ptrace-based checkpointer must do to
 * save a process tree's memory to a file on the same filesystem.
 *
 *   basedump OUT PID
 *
 * Freeze every thread of PID and of its descendants (PTRACE_SEIZE +
 * PTRACE_INTERRUPT), copy every page that holds the process's own data
 * (present or swapped, not the page cache of a file mapping: the same
 * selection cryo makes, from /proc/PID/pagemap) with process_vm_readv in
 * 8 MiB batches into OUT with write(), fsync, detach. No image format, no
 * checksums, no zero-page detection, no other kernel state. Prints the
 * bytes copied. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096ul
#define BATCH (8ul << 20)
#define MAXIOV 1024
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_FILE (1ull << 61)

static pid_t *pids, *tids;
static size_t npids, ntids, cap_p, cap_t;

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "basedump: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, ": %s\n", strerror(errno));
	exit(1);
}

static void push(pid_t **v, size_t *n, size_t *cap, pid_t x)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = realloc(*v, *cap * sizeof(**v));
		if (!*v)
			die("%s", "realloc");
	}
	(*v)[(*n)++] = x;
}

/* The process, its threads, and recursively its children (after freezing,
 * so the set cannot change under us; a child forked before the freeze of
 * its parent is frozen in the next pass). */
static void collect(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;

	push(&pids, &npids, &cap_p, pid);
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		die("%s", path);
	while ((e = readdir(d))) {
		pid_t tid = atoi(e->d_name);
		FILE *f;
		char cpath[96];
		int child;

		if (tid <= 0)
			continue;
		if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
			die("seize %s", e->d_name);
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
			die("interrupt %s", e->d_name);
		push(&tids, &ntids, &cap_t, tid);
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%d/children", pid, tid);
		f = fopen(cpath, "re");
		if (!f)
			continue;
		while (fscanf(f, "%d", &child) == 1)
			collect(child);
		fclose(f);
	}
	closedir(d);
}

static void wait_stopped(void)
{
	for (size_t i = 0; i < ntids; i++) {
		int st;

		for (;;) {
			if (waitpid(tids[i], &st, __WALL) < 0)
				die("%s", "waitpid");
			if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP)
				break;
			if (WIFSTOPPED(st))	/* a signal: let it through, the interrupt stays pending */
				ptrace(PTRACE_CONT, tids[i], 0, (void *)(long)WSTOPSIG(st));
			else
				die("%s", "a task exited");
		}
	}
}

static int out_fd;
static char *buf;
static struct iovec riov[MAXIOV];
static size_t nriov, buffered;
static uint64_t total;

static void flush(pid_t pid)
{
	struct iovec l = { buf, buffered };
	ssize_t n;

	if (!buffered)
		return;
	n = process_vm_readv(pid, &l, 1, riov, nriov, 0);
	if (n != (ssize_t)buffered)
		die("%s", "process_vm_readv");
	for (size_t off = 0; off < buffered;) {
		n = write(out_fd, buf + off, buffered - off);
		if (n <= 0)
			die("%s", "write");
		off += n;
	}
	total += buffered;
	nriov = buffered = 0;
}

static void add(pid_t pid, uint64_t addr, uint64_t len)
{
	while (len) {
		uint64_t n = len < BATCH - buffered ? len : BATCH - buffered;

		if (nriov && (uint64_t)riov[nriov - 1].iov_base + riov[nriov - 1].iov_len == addr)
			riov[nriov - 1].iov_len += n;
		else
			riov[nriov++] = (struct iovec){ (void *)addr, n };
		buffered += n;
		addr += n;
		len -= n;
		if (buffered == BATCH || nriov == MAXIOV)
			flush(pid);
	}
}

static void copy_process(pid_t pid)
{
	char path[64], line[512];
	FILE *maps;
	int pm;
	uint64_t *ent = malloc(BATCH / PAGE * 8);

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	maps = fopen(path, "re");
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	if (!maps || pm < 0 || !ent)
		die("%s", path);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		char perms[8], name[256] = "";

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &start, &end, perms, name) < 3)
			continue;
		if (perms[0] != 'r' || !strcmp(name, "[vvar]") || !strcmp(name, "[vvar_vclock]") ||
		    !strcmp(name, "[vdso]") || !strcmp(name, "[vsyscall]"))
			continue;
		for (uint64_t a = start; a < end;) {
			uint64_t n = (end - a) / PAGE, run = 0, run_at = 0;

			if (n > BATCH / PAGE)
				n = BATCH / PAGE;
			if (pread(pm, ent, n * 8, (off_t)(a / PAGE * 8)) != (ssize_t)(n * 8))
				die("%s", "pagemap");
			for (uint64_t i = 0; i <= n; i++) {
				int want = i < n && (ent[i] & (PM_PRESENT | PM_SWAP)) &&
					   !(ent[i] & PM_FILE);

				if (want && !run++)
					run_at = a + i * PAGE;
				if (!want && run) {
					add(pid, run_at, run * PAGE);
					run = 0;
				}
			}
			a += n * PAGE;
		}
	}
	flush(pid);
	fclose(maps);
	close(pm);
	free(ent);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: basedump OUT PID\n");
		return 2;
	}
	collect(atoi(argv[2]));
	wait_stopped();
	out_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	buf = malloc(BATCH);
	if (out_fd < 0 || !buf)
		die("%s", argv[1]);
	for (size_t i = 0; i < npids; i++)
		copy_process(pids[i]);
	if (fsync(out_fd))
		die("%s", "fsync");
	close(out_fd);
	for (size_t i = 0; i < ntids; i++)
		ptrace(PTRACE_DETACH, tids[i], 0, 0);
	printf("%llu\n", (unsigned long long)total);
	return 0;
}
