/* Ownership and privilege boundaries (issue #9): who could have written what
 * a restore reads, and why a dump may not trace a process.
 *
 * Who could have written what a restore reads:
 *
 * An image and its swapfile steer everything a restore does: which files
 * cryo opens for the tree (as root, before the tree drops to the image's
 * ids), which ids it sets, what code and memory the processes get. If root
 * restored files another user could have written, that user would act as
 * root. So root restores only files owned by root and not writable by
 * others, unless --allow-other-user says the image is trusted anyway. An
 * unprivileged user restores only with ids it already has (core_check), so
 * whoever wrote its image gains nothing from it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

int restore_check_owner(int fd, const char *what, const char *path, int allow_other_user)
{
	struct stat st;

	/* fd < 0: pages packed inside the image, whose file was checked */
	if (allow_other_user || geteuid() != 0 || fd < 0)
		return 0;
	if (fstat(fd, &st) < 0)
		return err_sys(-errno, "%s %s: stat", what, path);
	if (st.st_uid != 0)
		return err_set(-EPERM, "%s %s is owned by uid %u, not root: cryo running as root"
			       " restores only what root wrote (use --allow-other-user if you"
			       " trust it)", what, path, (unsigned)st.st_uid);
	if (st.st_mode & S_IWOTH)
		return err_set(-EPERM, "%s %s is writable by every user (mode %04o): cryo running"
			       " as root restores only what root wrote (use --allow-other-user if"
			       " you trust it)", what, path, (unsigned)(st.st_mode & 07777));
	return 0;
}

/* img_open / img_open_fd, checking the owner of the very file read */
int restore_img_open(struct img *im, const struct restore_opts *o)
{
	int fd = o->exec_fd, e;

	if (fd < 0) {
		/* O_NONBLOCK so a FIFO in place of an image fails instead of hanging */
		fd = open(o->image, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return err_sys(-errno, "image %s: open", o->image);
	}
	e = restore_check_owner(fd, "image", o->image, o->allow_other_user);
	if (!e)
		e = img_open_fd(im, fd, o->image);
	if (fd != o->exec_fd)
		close(fd);
	return e;
}

/* Why PTRACE_SEIZE of pid was refused, as far as /proc tells: the reason
 * goes into the error, so that the user knows what to change. */
void trace_refusal_reason(pid_t pid, char *buf, size_t len)
{
	char path[64], line[256];
	unsigned int uid[4] = { 0 }, tracer = 0;
	int have_uid = 0, scope = -1;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Uid:", 4))
			have_uid = sscanf(line + 4, "%u %u %u %u", &uid[0], &uid[1], &uid[2],
					  &uid[3]) == 4;
		else if (!strncmp(line, "TracerPid:", 10))
			tracer = (unsigned)strtoul(line + 10, NULL, 10);
	}
	if (f)
		fclose(f);
	f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (f && fscanf(f, "%d", &scope) != 1)
		scope = -1;
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	if (tracer)
		snprintf(buf, len, "it is already traced by pid %u (a debugger, strace, or"
			 " another cryo)", tracer);
	else if (geteuid() == 0)
		snprintf(buf, len, "ptrace refused it even to root (a security module or"
			 " a different user namespace)");
	else if (have_uid && (uid[0] != geteuid() || uid[1] != geteuid() || uid[2] != geteuid()))
		snprintf(buf, len, "permission denied: it runs as uid %u %u %u (real, effective,"
			 " saved) and you are uid %u: another user's or a setuid process;"
			 " only root can dump it", uid[0], uid[1], uid[2], geteuid());
	else if (stat(path, &st) == 0 && st.st_uid != geteuid())
		/* the kernel gives the files in /proc/PID (not the directory)
		 * of a non-dumpable process to root */
		snprintf(buf, len, "permission denied: it is not dumpable (it called"
			 " prctl(PR_SET_DUMPABLE, 0), or exec'd a setuid/setgid or unreadable"
			 " program, or changed ids); only root can dump it");
	else if (scope >= 1)
		snprintf(buf, len, "permission denied by Yama (kernel.yama.ptrace_scope = %d:"
			 " only a parent may trace; run cryo as root)", scope);
	else
		snprintf(buf, len, "permission denied (another user's process, not dumpable,"
			 " or already traced)");
}

/* prlimit() on another user's process needs CAP_SYS_RESOURCE, which root
 * may lack (containers, this project's CI): read what /proc/PID/limits
 * shows to everyone instead. Its rows are the resources in RLIMIT_ order:
 * "%-25s %-20s %-20s %-10s", values a number or "unlimited". */
int proc_rlimit(pid_t pid, int resource, struct rlimit *rl)
{
	char path[64], line[256], soft[32], hard[32];
	int row = -1, e = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (row++ != resource)
			continue;
		if (strlen(line) > 26 && sscanf(line + 26, "%31s %31s", soft, hard) == 2) {
			rl->rlim_cur = strcmp(soft, "unlimited") ? strtoull(soft, NULL, 10) : RLIM_INFINITY;
			rl->rlim_max = strcmp(hard, "unlimited") ? strtoull(hard, NULL, 10) : RLIM_INFINITY;
			e = 0;
		}
		break;
	}
	fclose(f);
	return e;
}
