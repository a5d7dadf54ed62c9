/* Per-process identity and simple state: executable, credentials, cwd,
 * umask, personality, comm, rlimits and prctl flags. */
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cryo.h"
#include "dumpbatch.h"
#include "err.h"
#include "restbatch.h"

#define PF_FORKNOEXEC 0x00000040
#define NR_RLIMITS 16

static int dump_rlimits(struct dump_task *t)
{
	struct lx_rlimit rl[NR_RLIMITS];

	for (int r = 0; r < NR_RLIMITS; r++) {
		struct rlimit cur;

		if (prlimit(t->pid, r, NULL, &cur) < 0 &&
		    (errno != EPERM || proc_rlimit(t->pid, r, &cur) < 0))	/* owner.c */
			return err_sys(-errno, "pid %d: read rlimit %d", t->pid, r);
		rl[r].cur = cur.rlim_cur;
		rl[r].max = cur.rlim_max;
	}
	return img_add(t->w, LX_SEC_RLIMITS, t->index, sizeof(rl[0]), rl, sizeof(rl));
}

int core_dump(struct dump_task *t)
{
	struct lx_core c;
	struct exe_ident id;
	char path[LX_CKPT_PATH_MAX], exe[LX_CKPT_PATH_MAX], mf[64];
	char *s;
	size_t len;
	long ret;
	int e, v;

	memset(&c, 0, sizeof(c));
	c.pid = t->pid;
	c.umask = t->status.umask;
	for (int i = 0; i < 4; i++) {
		c.uid[i] = t->status.uid[i];
		c.gid[i] = t->status.gid[i];
	}
	if (t->status.ngroups > 32)
		return err_set(-EOPNOTSUPP, "pid %d: more than 32 supplementary groups:"
				       " not supported", t->pid);
	c.ngroups = t->status.ngroups;
	for (int i = 0; i < t->status.ngroups; i++)
		c.groups[i] = t->status.groups[i];
	if (t->stat.flags & PF_FORKNOEXEC)
		c.flags |= LX_CORE_FORKNOEXEC;
	if (t->status.no_new_privs)
		c.flags |= LX_CORE_NO_NEW_PRIVS;
	if (t->status.seccomp)
		return err_set(-EOPNOTSUPP, "pid %d: seccomp mode %d: seccomp filters are not"
			       " supported", t->pid, t->status.seccomp);

	e = proc_read(t->pid, "personality", &s, &len);
	if (e)
		return e;
	c.personality = (uint32_t)strtoul(s, NULL, 16);
	free(s);
	e = proc_read(t->pid, "comm", &s, &len);
	if (e)
		return e;
	s[strcspn(s, "\n")] = 0;
	strncpy(c.comm, s, sizeof(c.comm) - 1);
	free(s);

	e = proc_link(t->pid, "cwd", path, sizeof(path));
	if (e)
		return e;
	if (strstr(path, " (deleted)"))
		return err_set(-EOPNOTSUPP, "pid %d: cwd %s: a deleted working directory is not"
			       " supported", t->pid, path);
	c.cwd_off = img_str(t->w, t->index, path);
	e = proc_link(t->pid, "root", path, sizeof(path));
	if (e)
		return e;
	if (strcmp(path, "/"))
		return err_set(-EOPNOTSUPP, "pid %d: root directory %s: a chroot is not supported",
			       t->pid, path);
	c.root_off = img_str(t->w, t->index, path);

	e = proc_link(t->pid, "exe", exe, sizeof(exe));
	if (e)
		return e;
	if (strstr(exe, " (deleted)") || exe[0] != '/')
		return err_set(-EOPNOTSUPP, "pid %d: executable %s: deleted or unreachable"
			       " executables are not supported", t->pid, exe);
	/* identity of the file actually running, checked against the path */
	snprintf(mf, sizeof(mf), "/proc/%d/exe", t->pid);
	e = exe_identify(mf, -1, &id);
	if (!e) {
		struct stat st;

		if (stat(exe, &st) < 0 || st.st_ino != id.ino || st.st_dev != id.dev)
			e = err_set(-ESTALE, "pid %d: executable %s was replaced after it started:"
				    " its code can no longer be found", t->pid, exe);
	}
	if (e)
		return e;
	c.exe_off = img_str(t->w, t->index, exe);
	c.exe_dev = id.dev;
	c.exe_ino = id.ino;
	c.exe_size = id.size;
	c.exe_mtime_ns = id.mtime_ns;
	c.exe_build_id_len = id.build_id_len;
	memcpy(c.exe_build_id, id.build_id, sizeof(c.exe_build_id));
	if (t->index == 0) {
		e = img_set_exe(t->w, exe, &id);
		if (e)
			return e;
	}

	e = dump_inject_out(t, SYS_prctl, PR_GET_PDEATHSIG, 0, 0, 0, 2, &v, sizeof(v), &ret);
	if (e)
		return e;
	c.pdeath_sig = v;
	e = dump_inject_out(t, SYS_prctl, PR_GET_CHILD_SUBREAPER, 0, 0, 0, 2, &v, sizeof(v), &ret);
	if (e)
		return e;
	if (v)
		c.flags |= LX_CORE_CHILD_SUBREAPER;
	e = dump_inject(t, SYS_prctl, PR_GET_DUMPABLE, &ret);
	if (e)
		return e;
	c.dumpable = (uint32_t)ret;

	e = img_add(t->w, LX_SEC_CORE, t->index, sizeof(c), &c, sizeof(c));
	if (!e)
		e = dump_rlimits(t);
	return e;
}

static int load_core(const struct img *im, uint32_t task, struct lx_core *c)
{
	struct lx_core *p;
	size_t n;
	int e = img_records(im, LX_SEC_CORE, task, sizeof(*p), 64, (void **)&p, &n);

	if (e)
		return err_ctx(e, "image: task %u: core", task);
	if (n != 1) {
		free(p);
		return err_set(-EINVAL, "image: task %u: %zu core records", task, n);
	}
	*c = *p;
	free(p);
	c->comm[sizeof(c->comm) - 1] = 0;
	if (c->ngroups > 32)
		return err_set(-EINVAL, "image: task %u: bad group count", task);
	return 0;
}

static int drop_all_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return (int)syscall(SYS_capset, &h, d);
}

/* In the new process, before exec: credentials first (only ever dropping:
 * the invoker must already hold what the image asks for), then the state
 * exec keeps. Runs in the child: no allocation that could fail silently,
 * errors go to errbuf. */
int core_restore_preexec(const struct img *im, uint32_t task, char *errbuf, size_t errlen)
{
	struct lx_core c;
	const char *cwd;
	gid_t groups[32];
	int e = load_core(im, task, &c);

	if (e) {
		snprintf(errbuf, errlen, "%s", err_msg());
		return e;
	}
	for (uint32_t i = 0; i < c.ngroups; i++)
		groups[i] = c.groups[i];
	if (getuid() == 0 && geteuid() == 0) {
		if (setgroups(c.ngroups, groups) < 0 ||
		    setresgid(c.gid[0], c.gid[1], c.gid[2]) < 0 ||
		    setresuid(c.uid[0], c.uid[1], c.uid[2]) < 0) {
			snprintf(errbuf, errlen, "pid %u: set credentials uid %u gid %u: %s",
				 c.pid, c.uid[1], c.gid[1], strerror(errno));
			return -errno;
		}
	} else if (drop_all_caps() < 0) {
		/* an unprivileged cryo may hold capabilities (CAP_CHECKPOINT_RESTORE,
		 * perhaps ambient) that the image never recorded: they must not
		 * pass to the restored process, nor through the exec of a setuid
		 * file */
		snprintf(errbuf, errlen, "pid %u: drop cryo's capabilities: %s", c.pid,
			 strerror(errno));
		return -errno;
	}
	/* before the exec, as the process had it: the kernel then ignores the
	 * executable's setuid/setgid bits and file capabilities */
	if ((c.flags & LX_CORE_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(errbuf, errlen, "pid %u: set no_new_privs: %s", c.pid, strerror(errno));
		return -errno;
	}
	if (personality(c.personality) < 0) {
		snprintf(errbuf, errlen, "pid %u: personality %#x: %s", c.pid, c.personality,
			 strerror(errno));
		return -errno;
	}
	umask(c.umask);
	cwd = img_string(im, task, c.cwd_off);
	if (!cwd || chdir(cwd) < 0) {
		snprintf(errbuf, errlen, "pid %u: working directory %s: %s", c.pid,
			 cwd ? cwd : "(bad)", cwd ? strerror(errno) : "bad string");
		return -ENOENT;
	}
	return 0;
}

int core_restore(struct restore_task *t)
{
	struct lx_core c;
	struct lx_rlimit *rl;
	size_t n;
	uint64_t a;
	int e = load_core(t->im, t->index, &c);

	if (e)
		return e;
	/* the exact ids: an exec of a setuid program may have left others
	 * (restore.c checked they are among the process's own); a change of
	 * ids clears dumpable, set below */
	e = restore_defer(t, "set gids", SYS_setresgid, c.gid[0], c.gid[1], c.gid[2], 0, 0, 0, -1);
	if (!e)
		e = restore_defer(t, "set uids", SYS_setresuid, c.uid[0], c.uid[1], c.uid[2], 0, 0, 0,
				  -1);
	if (!e)
		e = restore_defer(t, "set fsgid", SYS_setfsgid, c.gid[3], 0, 0, 0, 0, 0, -1);
	if (!e)
		e = restore_defer(t, "set fsuid", SYS_setfsuid, c.uid[3], 0, 0, 0, 0, 0, -1);
	if (!e)
		e = restore_put(t, 0, c.comm, sizeof(c.comm), &a);
	if (!e)
		e = restore_defer(t, "set comm", SYS_prctl, PR_SET_NAME, a, 0, 0, 0, 0, -1);
	/* always: the restorer armed it with SIGKILL until the exec */
	if (!e)
		e = restore_defer(t, "set parent-death signal", SYS_prctl, PR_SET_PDEATHSIG,
				  c.pdeath_sig, 0, 0, 0, 0, -1);
	if (!e && (c.flags & LX_CORE_CHILD_SUBREAPER))
		e = restore_defer(t, "set child subreaper", SYS_prctl, PR_SET_CHILD_SUBREAPER, 1,
				  0, 0, 0, 0, -1);
	/* dumpable: late, in core_restore_dumpable */
	if (!e && (c.flags & LX_CORE_NO_NEW_PRIVS))
		e = restore_defer(t, "set no_new_privs", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1,
				  0, 0, 0, 0, -1);
	/* one injected batch for all of the above (restbatch.c) */
	if (!e)
		e = restore_flush(t);
	if (e)
		return e;
	if (c.flags & LX_CORE_FORKNOEXEC)
		warn("pid %d: it never called exec, but without binfmt_cr the restored process"
		     " counts as exec'd (its parent can no longer setpgid() it)", t->pid);

	e = img_records(t->im, LX_SEC_RLIMITS, t->index, sizeof(*rl), sizeof(*rl), (void **)&rl, &n);
	if (e)
		return err_ctx(e, "image: task %u: rlimits", t->index);
	for (size_t r = 0; r < n && r < NR_RLIMITS && !e; r++) {
		struct rlimit want = { rl[r].cur, rl[r].max }, have;

		if ((prlimit(t->pid, r, NULL, &have) == 0 || proc_rlimit(t->pid, r, &have) == 0) &&
		    have.rlim_cur == want.rlim_cur && have.rlim_max == want.rlim_max)
			continue;
		if (prlimit(t->pid, r, &want, NULL) == 0)
			continue;
		if (errno == EPERM) {
			/* another user's process, and cryo lacks CAP_SYS_RESOURCE:
			 * the process sets its own (owner.c has the dump side) */
			uint64_t addr;

			e = restore_put(t, 0, &want, sizeof(want), &addr);
			if (!e)
				e = restore_sys(t, "set rlimit", SYS_prlimit64, 0, r, addr, 0, 0,
						0, NULL);
		} else {
			e = -errno;
		}
		if (e)
			e = err_ctx(e, "pid %d: set rlimit %zu to %llu/%llu (this needs"
				    " CAP_SYS_RESOURCE when raising the hard limit)", t->pid, r,
				    (unsigned long long)want.rlim_cur,
				    (unsigned long long)want.rlim_max);
	}
	free(rl);
	return e;
}

/* The dumpable flag, once cryo is done with the task's memory and fds: an
 * unprivileged cryo (no CAP_SYS_PTRACE) can no longer write the memory of
 * a non-dumpable tracee, nor look at its fds. Called by threads_restore
 * before the final registers. */
int core_restore_dumpable(struct restore_task *t)
{
	struct lx_core c;
	int e = load_core(t->im, t->index, &c);

	if (!e)
		e = restore_sys(t, "set dumpable", SYS_prctl, PR_SET_DUMPABLE, c.dumpable,
				0, 0, 0, 0, NULL);
	return e;
}

/* Called before anything is created: can this user restore this image? */
int core_check(const struct img *im, uint32_t task)
{
	struct lx_core c;
	int e = load_core(im, task, &c);

	if (e)
		return e;
	if (geteuid() != 0 && (c.uid[0] != getuid() || c.uid[1] != geteuid() ||
			       c.uid[2] != geteuid() || c.gid[1] != getegid()))
		return err_set(-EPERM, "pid %u ran as uid %u gid %u; you are uid %u: cryo only"
			       " restores with credentials you already have (run cryo as %s)",
			       c.pid, c.uid[1], c.gid[1], geteuid(),
			       c.uid[1] ? "that uid, or as root" : "root");
	return 0;
}
