// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * target - the "original executable" named by test images: what binfmt_cr
 * runs on the armed path. It reports what the kernel set up for it:
 *
 *   TARGET argc=N
 *   argv[i]=...
 *   cmdline=<"/proc/self/cmdline" with NULs shown as '|'>
 *   mm arg_start=A arg_end=B env_start=C env_end=D   (decimal)
 *   exe=<readlink /proc/self/exe>
 *   uid=R euid=E
 *
 * With an argument "--wait-stdin" it instead prints "ready", then waits
 * for EOF on stdin (a parent can act on it while it runs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void show_cmdline(void)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/cmdline", "r");
	size_t n, i;

	if (!f) {
		printf("cmdline=<none>\n");
		return;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	for (i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = '|';
	buf[n] = '\0';
	printf("cmdline=%s\n", buf);
}

static void show_mm(void)
{
	char buf[4096], *p;
	FILE *f = fopen("/proc/self/stat", "r");
	unsigned long long v[4];
	size_t n;
	int field;

	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return;
	/* field 3 follows ") "; arg_start..env_end are fields 48..51 */
	p += 2;
	for (field = 3; field < 48 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4)
		return;
	printf("mm arg_start=%llu arg_end=%llu env_start=%llu env_end=%llu\n",
	       v[0], v[1], v[2], v[3]);
}

int main(int argc, char **argv)
{
	char exe[4096];
	ssize_t n;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--wait-stdin")) {
			char c;

			printf("ready\n");
			fflush(stdout);
			while (read(0, &c, 1) > 0)
				;
			return 0;
		}
	}
	printf("TARGET argc=%d\n", argc);
	for (i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	show_cmdline();
	show_mm();
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	printf("exe=%s\n", exe);
	printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
	return 0;
}
