/* Time namespaces (Linux 5.6+, CONFIG_TIME_NS).
 *
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME count from a boot: a tree restored on
 * another host or after a reboot would see them jump, backwards when the
 * new host has been up for less time, which breaks every program that
 * measures time with them. The dump records both clocks as the tree saw
 * them when it was frozen (LX_OPT_CLOCKS in the options record); the
 * restore puts the tree in a new time namespace whose offsets make them
 * continue from there, as if no time had passed while it was stored:
 * what CRIU does (criu/timens.c: offset = dumped value - now). Relative
 * timers (timerfd, POSIX timers, sleeps) keep their remaining time, and an
 * absolute deadline on these clocks (TFD_TIMER_ABSTIME, a restarted
 * clock_nanosleep(TIMER_ABSTIME)) is again as far away as it was.
 *
 * Offsets are absolute, against the host (init) namespace's clocks: a
 * namespace does not nest. The caller of unshare(CLONE_NEWTIME) stays in
 * its namespace; its later children are born in the new one, and the
 * caller itself enters it at its next execve (Linux 6.0+), which is how
 * an in-place restore (./IMAGE) gets there. Offsets can only be written
 * before the first process enters, so this runs before cryo creates any
 * process of the tree. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "options.h"
#include "timens.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define NS_PER_S 1000000000LL

struct offsets {
	int64_t mono, boot;	/* ns */
};

/* the inode of /proc/PID/task/TID/ns/NAME, 0 if gone */
static int ns_ino(const char *prefix, const char *name, ino_t *ino)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "%s/ns/%s", prefix, name);
	if (stat(path, &st) < 0)
		return -errno;
	*ino = st.st_ino;
	return 0;
}

/* "monotonic 12 345\nboottime 0 0\n" of the namespace the children of
 * prefix are born in */
static int read_offsets(const char *prefix, struct offsets *o)
{
	char path[96], name[32];
	long long s, ns;
	FILE *f;
	int n = 0;

	memset(o, 0, sizeof(*o));
	snprintf(path, sizeof(path), "%s/timens_offsets", prefix);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;	/* no time namespaces: none */
	while (fscanf(f, "%31s %lld %lld", name, &s, &ns) == 3) {
		int64_t v = (int64_t)s * NS_PER_S + ns;

		if (!strcmp(name, "monotonic") || !strcmp(name, "1"))
			o->mono = v, n++;
		else if (!strcmp(name, "boottime") || !strcmp(name, "7"))
			o->boot = v, n++;
	}
	fclose(f);
	return n == 2 ? 0 : -EINVAL;
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* the offsets of the namespace prefix (a process) is in: those of the
 * namespace its children get, once we know they are the same */
static int own_offsets(const char *prefix, const char *who, struct offsets *o)
{
	ino_t a = 0, b = 0;
	int e = ns_ino(prefix, "time", &a);

	if (e == -ENOENT) {
		memset(o, 0, sizeof(*o));	/* a kernel without time namespaces */
		return 0;
	}
	if (!e)
		e = ns_ino(prefix, "time_for_children", &b);
	if (e)
		return err_sys(e, "%s: time namespace", who);
	if (a != b)
		return err_set(-EOPNOTSUPP, "%s: has made a time namespace its children would be"
			       " born in, without entering it: not supported", who);
	e = read_offsets(prefix, o);
	return e ? err_sys(e, "%s: read timens_offsets", who) : 0;
}

int timens_clock_of(pid_t pid, clockid_t clk, uint64_t *ns)
{
	char prefix[32];
	struct offsets self, them;
	int64_t v = now_ns(clk);
	ino_t a = 0, b = 0;

	*ns = (uint64_t)v;
	if (clk != CLOCK_MONOTONIC && clk != CLOCK_BOOTTIME)
		return 0;	/* the namespace shifts only these two */
	snprintf(prefix, sizeof(prefix), "/proc/%d", pid);
	if (ns_ino("/proc/self", "time", &a) || ns_ino(prefix, "time", &b) || a == b)
		return 0;	/* no time namespaces, or cryo's own */
	if (read_offsets("/proc/self", &self) || read_offsets(prefix, &them))
		return 0;	/* timens_dump refused what this cannot read */
	v += clk == CLOCK_MONOTONIC ? them.mono - self.mono : them.boot - self.boot;
	*ns = (uint64_t)v;
	return 0;
}

int timens_dump(const struct dump_task *t, size_t n, struct lx_options *opt)
{
	char prefix[64], who[64];
	struct offsets self, tree;
	ino_t root = 0, mine = 0;
	int e, have_root = 0;

	for (size_t i = 0; i < n; i++) {
		if (t[i].zombie)
			continue;	/* a zombie has no namespaces left */
		for (size_t k = 0; k <= t[i].ntids; k++) {
			pid_t tid = k < t[i].ntids ? t[i].tids[k] : t[i].pid;
			ino_t a = 0, b = 0;

			snprintf(prefix, sizeof(prefix), "/proc/%d/task/%d", t[i].pid, tid);
			e = ns_ino(prefix, "time", &a);
			if (e == -ENOENT && !have_root && i == 0 && k == 0 &&
			    access("/proc/self/ns/time", F_OK))
				return 0;	/* a kernel without time namespaces */
			if (!e)
				e = ns_ino(prefix, "time_for_children", &b);
			if (e)
				return err_sys(e, "pid %d tid %d: time namespace", t[i].pid, tid);
			if (!have_root) {
				root = a;
				have_root = 1;
			}
			if (a != root)
				return err_set(-EOPNOTSUPP, "pid %d: in another time namespace than pid"
					       " %d: one tree, one namespace (its clocks would"
					       " change)", t[i].pid, t[0].pid);
			if (a != b)
				return err_set(-EOPNOTSUPP, "pid %d tid %d: has made a time namespace"
					       " its children would be born in: not supported",
					       t[i].pid, tid);
		}
	}
	if (!have_root)
		return 0;	/* only zombies */
	e = own_offsets("/proc/self", "cryo", &self);
	if (!e && !ns_ino("/proc/self", "time", &mine) && mine == root)
		tree = self;	/* the tree runs on cryo's clocks */
	else if (!e) {
		for (size_t i = 0; i < n; i++)
			if (!t[i].zombie) {
				snprintf(prefix, sizeof(prefix), "/proc/%d", t[i].pid);
				snprintf(who, sizeof(who), "pid %d", t[i].pid);
				e = own_offsets(prefix, who, &tree);
				break;
			}
	}
	if (e)
		return e;
	/* read one after the other: cryo's own offsets cancel out */
	opt->mono_ns = (uint64_t)(now_ns(CLOCK_MONOTONIC) - self.mono + tree.mono);
	opt->boot_ns = (uint64_t)(now_ns(CLOCK_BOOTTIME) - self.boot + tree.boot);
	opt->flags |= LX_OPT_CLOCKS;
	return 0;
}

static int write_offsets(int64_t mono, int64_t boot)
{
	char buf[128];
	/* floor division: the kernel wants 0 <= nsec < 1e9 */
	int64_t ms = mono / NS_PER_S - (mono % NS_PER_S < 0),
		bs = boot / NS_PER_S - (boot % NS_PER_S < 0);
	int n = snprintf(buf, sizeof(buf), "%d %lld %lld\n%d %lld %lld\n",
			 CLOCK_MONOTONIC, (long long)ms, (long long)(mono - ms * NS_PER_S),
			 CLOCK_BOOTTIME, (long long)bs, (long long)(boot - bs * NS_PER_S));
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n)
		e = -errno;
	close(fd);
	return e;
}

int timens_restore(const struct img *im, enum timens_mode mode)
{
	struct lx_options o;
	struct offsets self;
	int64_t host_mono, host_boot, dmono, dboot;
	ino_t a = 0, b = 0;
	int e = options_read(im, &o), why;
	const char *hint = "";

	if (e)
		return e;
	if (!(o.flags & LX_OPT_CLOCKS)) {
		info("image %s has no clock values (an older cryo, or a kernel without time"
		     " namespaces, dumped it): the tree gets this"
		     " host's clocks", im->path);
		return 0;
	}
	if (mode == TIMENS_OFF) {
		info("--no-timens: the tree gets this host's clocks");
		return 0;
	}
	e = own_offsets("/proc/self", "cryo", &self);
	if (e)
		return e;
	host_mono = now_ns(CLOCK_MONOTONIC) - self.mono;
	host_boot = now_ns(CLOCK_BOOTTIME) - self.boot;
	dmono = (int64_t)o.mono_ns - host_mono;	/* the offsets to write */
	dboot = (int64_t)o.boot_ns - host_boot;
	if (mode == TIMENS_IF_BACKWARD && dmono <= 0 && dboot <= 0)
		return 0;	/* this host's clocks only move on from the image's */
	if (access("/proc/self/ns/time", F_OK)) {
		why = ENOSYS;
		hint = " (no time namespaces here: Linux 5.6+ with CONFIG_TIME_NS)";
	} else if (unshare(CLONE_NEWTIME) < 0) {
		why = errno;
		if (why == EPERM)
			hint = " (needs CAP_SYS_ADMIN: run cryo as root, or with --pidns)";
	} else if ((why = -write_offsets(dmono, dboot)) != 0) {
		/* the new namespace kept cryo's offsets: as if there were none */
		if (why == EPERM)
			hint = " (needs CAP_SYS_TIME)";
	} else if (ns_ino("/proc/self", "time", &a) || ns_ino("/proc/self", "time_for_children",
								 &b) || a == b) {
		why = EIO;
		hint = " (the new namespace is not there)";
	} else {
		info("clocks continue from the dump: CLOCK_MONOTONIC %+.3f s, CLOCK_BOOTTIME %+.3f s"
		     " from this host's", (double)dmono / 1e9, (double)dboot / 1e9);
		return 0;
	}
	if (dmono > 0 || dboot > 0)
		return err_set(-why, "image %s: this host's clocks are behind the image's"
			       " (CLOCK_MONOTONIC by %.3f s: another host, or a reboot), and no time"
			       " namespace can make them continue: %s%s; --no-timens restores"
			       " anyway with the clocks going back", im->path,
			       (double)dmono / 1e9, strerror(why), hint);
	warn("image %s: no time namespace (%s%s): the tree's CLOCK_MONOTONIC jumps %.3f s"
	     " forward, as after a pause (--no-timens: this warning off)", im->path,
	     strerror(why), hint, (double)-dmono / 1e9);
	return 0;
}
