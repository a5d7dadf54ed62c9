/* Executable checkpoints: `./IMAGE` runs cryo in the process the shell
 * started, with the image open as AT_EXECFD, through either the binfmt_cr
 * kernel module or a binfmt_misc entry that `cryo register` installs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

#define MISC_DIR "/proc/sys/fs/binfmt_misc"
#define MISC_ENTRY MISC_DIR "/cryo"

static int misc_mounted(void)
{
	if (access(MISC_DIR "/register", W_OK) == 0)
		return 0;
	if (mount("binfmt_misc", MISC_DIR, "binfmt_misc", 0, NULL) < 0)
		return err_sys(-errno, "mount binfmt_misc at %s", MISC_DIR);
	return 0;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return err_sys(-errno, "open %s", path);
	n = write(fd, s, strlen(s));
	close(fd);
	if (n != (ssize_t)strlen(s))
		return err_sys(n < 0 ? -errno : -EIO, "write %s", path);
	return 0;
}

/* 'P' keeps argv[0]; 'O' hands the image over as AT_EXECFD (never a path
 * that could be swapped); 'F' pins this cryo binary now. No 'C': the
 * image's mode bits must never decide credentials. */
int cmd_register(int argc, char **argv)
{
	char self[PATH_MAX], rule[PATH_MAX + 64];
	ssize_t n;
	int e;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: cryo register\n");
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		fprintf(stderr, "cryo: /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	self[n] = 0;
	e = misc_mounted();
	if (!e && access(MISC_ENTRY, F_OK) == 0)
		e = write_file(MISC_ENTRY, "-1");
	snprintf(rule, sizeof(rule), ":cryo:M::" LX_CKPT_MAGIC "::%s:POF", self);
	if (!e)
		e = write_file(MISC_DIR "/register", rule);
	if (e) {
		fprintf(stderr, "cryo: register: %s%s\n", err_msg(),
			e == -EPERM || e == -EACCES ? " (registering needs root)" : "");
		return 1;
	}
	if (binfmt_cr_loaded())
		printf("registered %s for LX_CKPT images (binfmt_cr is loaded and takes"
		       " precedence)\n", self);
	else
		printf("registered %s for LX_CKPT images: chmod +x an image and run it\n", self);
	return 0;
}

int cmd_unregister(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: cryo unregister\n");
		return 2;
	}
	if (access(MISC_ENTRY, F_OK) < 0) {
		fprintf(stderr, "cryo: unregister: no binfmt_misc entry %s\n", MISC_ENTRY);
		return 1;
	}
	if (write_file(MISC_ENTRY, "-1")) {
		fprintf(stderr, "cryo: unregister: %s (unregistering needs root)\n", err_msg());
		return 1;
	}
	return 0;
}

/* AT_EXECFD, if the kernel handed us an image */
int binfmt_exec_fd(void)
{
	unsigned long fd;

	errno = 0;
	fd = getauxval(AT_EXECFD);
	if (errno == ENOENT || fd > INT_MAX)
		return -1;
	return (int)fd;
}

/* binfmt_cr:   cryo --binfmt-exec IMAGE-NAME ARGV...
 * binfmt_misc: cryo IMAGE-NAME ARGV0 ARGV... (flags P and O)
 * Either way the image itself is the AT_EXECFD file; the name is only
 * for messages. */
int cmd_binfmt_exec(int argc, char **argv)
{
	struct restore_opts o = { .exec_fd = binfmt_exec_fd() };
	int e;

	if (o.exec_fd < 0) {
		fprintf(stderr, "cryo: --binfmt-exec is for the kernel: no AT_EXECFD image was"
			" handed over\n");
		return 2;
	}
	if (argc > 1 && !strcmp(argv[1], "--binfmt-exec")) {
		argc--;
		argv++;
	}
	o.image = argc > 1 ? argv[1] : "(AT_EXECFD image)";
	e = cryo_restore_inplace(&o);
	/* only failures return here */
	fprintf(stderr, "cryo: %s: %s\n", o.image, err_msg());
	return e ? 1 : 0;
}
