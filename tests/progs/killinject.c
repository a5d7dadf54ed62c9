/* killinject CRYO_PID TARGET_PID [TIMEOUT_MS [SIGNO [HOME_PC]]]: SIGKILL (or signal
 * SIGNO) cryo at the moment it is running an injected system call in
 * TARGET: the target's program counter has left the place where it sat
 * before cryo started, HOME_PC (read by the caller from the last field of
 * /proc/TARGET/syscall; default: read at killinject's start). cryo's
 * injected calls run at a "syscall" instruction of the target's libc or
 * vdso. Polls /proc/TARGET/syscall (root, or the same
 * user). Prints "KILLED pc=..." and exits 0, or exits 1 ("NOT SEEN") if
 * cryo exited or TIMEOUT_MS (default 5000) passed first. Not a scenario
 * program: a tool for tests/bats/reliability.bats. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int vdso_range(pid_t pid, unsigned long *lo, unsigned long *hi)
{
	char path[64], line[512];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", lo, hi) == 2) {
			found = 1;
			break;
		}
	fclose(f);
	return found ? 0 : -1;
}

/* The pc in /proc/PID/syscall ("nr a1..a6 sp pc"), 0 if running or unknown */
static unsigned long read_pc(const char *path)
{
	char buf[512], *sp;
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	sp = strrchr(buf, ' ');
	return sp && !strncmp(sp + 1, "0x", 2) ? strtoul(sp + 1, NULL, 16) : 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	pid_t cryo, target;
	int sig = SIGKILL;
	unsigned long lo, hi, pc, home;
	long deadline;
	char path[64], buf[512];
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: killinject CRYO_PID TARGET_PID [TIMEOUT_MS [SIGNO]]\n");
		return 2;
	}
	cryo = atoi(argv[1]);
	target = atoi(argv[2]);
	deadline = now_ms() + (argc > 3 ? atol(argv[3]) : 5000);
	if (argc > 4)
		sig = atoi(argv[4]);
	if (vdso_range(target, &lo, &hi)) {
		fprintf(stderr, "killinject: no [vdso] in pid %d\n", target);
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%d/syscall", target);
	home = argc > 5 ? strtoul(argv[5], NULL, 16) : read_pc(path);
	while (now_ms() < deadline) {
		ssize_t n;
		char *sp;

		if (kill(cryo, 0) < 0 && errno == ESRCH)
			break;
		fd = open(path, O_RDONLY);
		if (fd < 0)
			break;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		/* "nr a1..a6 sp pc", "-1 sp pc" or "running": pc is last */
		sp = strrchr(buf, ' ');
		if (!sp || strncmp(sp + 1, "0x", 2))
			continue;
		pc = strtoul(sp + 1, NULL, 16);
		if ((pc >= lo && pc < hi) || (home && pc != home)) {
			kill(cryo, sig);
			printf("KILLED (signal %d) pc=%#lx syscall: %s", sig, pc, buf);
			return 0;
		}
	}
	printf("NOT SEEN\n");
	return 1;
}
