#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "proc.h"

static FILE *proc_open(pid_t pid, pid_t tid, const char *name, int *err)
{
	char path[96];
	FILE *f;

	if (tid && tid != pid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", pid, tid, name);
	else
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	f = fopen(path, "re");
	if (!f)
		*err = err_sys(-errno, "pid %d: open %s", pid, path);
	return f;
}

static uint32_t vmflag_bits(const char *s)
{
	static const struct { char n[3]; uint32_t bit; } t[] = {
		{ "gd", VMF_GD }, { "dc", VMF_DC }, { "wf", VMF_WF },
		{ "hg", VMF_HG }, { "nh", VMF_NH }, { "dd", VMF_DD },
		{ "mg", VMF_MG }, { "lo", VMF_LO }, { "io", VMF_IO },
		{ "pf", VMF_PF }, { "um", VMF_UFFD }, { "uw", VMF_UFFD },
		{ "ui", VMF_UFFD }, { "ss", VMF_SS }, { "sl", VMF_SL },
		{ "mw", VMF_MW }, { "sh", VMF_SH }, { "de", VMF_DE },
		{ "ht", VMF_HT }, { "mr", VMF_MR },
	};
	uint32_t bits = 0;

	while (*s) {
		while (*s == ' ')
			s++;
		if (s[0] && s[1] && (s[2] == ' ' || s[2] == '\n' || !s[2])) {
			for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
				if (s[0] == t[i].n[0] && s[1] == t[i].n[1])
					bits |= t[i].bit;
		}
		while (*s && *s != ' ')
			s++;
	}
	return bits;
}

void proc_maps_free(struct proc_vma *vmas, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(vmas[i].path);
	free(vmas);
}

/* smaps rather than maps: VmFlags tells growsdown, madvise state, device
 * memory and userfaultfd registration, none of which maps shows. */
int proc_maps(pid_t pid, struct proc_vma **out, size_t *count)
{
	struct proc_vma *v = NULL, *cur = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	int err = 0;
	FILE *f = proc_open(pid, 0, "smaps", &err);

	if (!f)
		return err;
	while (getline(&line, &lcap, f) > 0) {
		unsigned long s, e, off, ino;
		unsigned maj, min;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &s, &e, perms, &off,
			   &maj, &min, &ino, &pos) >= 7 && pos > 0) {
			char *path = line + pos, *nl;

			if (n == cap) {
				struct proc_vma *nv;

				cap = cap ? cap * 2 : 64;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					err = -ENOMEM;
					break;
				}
				v = nv;
			}
			cur = &v[n++];
			memset(cur, 0, sizeof(*cur));
			cur->start = s;
			cur->end = e;
			cur->pgoff = off;
			cur->prot = (perms[0] == 'r' ? PROT_READ : 0) |
				    (perms[1] == 'w' ? PROT_WRITE : 0) |
				    (perms[2] == 'x' ? PROT_EXEC : 0);
			cur->shared = perms[3] == 's';
			cur->major = maj;
			cur->minor = min;
			cur->ino = ino;
			nl = strchr(path, '\n');
			if (nl)
				*nl = 0;
			if (strlen(path) > 10 && !strcmp(path + strlen(path) - 10, " (deleted)")) {
				path[strlen(path) - 10] = 0;
				cur->deleted = 1;
			}
			cur->path = strdup(path);
			if (!cur->path) {
				err = -ENOMEM;
				break;
			}
		} else if (cur && !strncmp(line, "VmFlags:", 8)) {
			cur->vmflags = vmflag_bits(line + 8);
		}
	}
	free(line);
	fclose(f);
	if (err) {
		proc_maps_free(v, n);
		return err;
	}
	*out = v;
	*count = n;
	return 0;
}

int proc_stat(pid_t pid, pid_t tid, struct proc_stat *st)
{
	char buf[2048], *p;
	int err = 0;
	FILE *f = proc_open(pid, tid, "stat", &err);
	size_t n;
	unsigned long long v[52];
	int i;

	if (!f)
		return err;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* opened, then the process was reaped: the read finds nothing */
	if (!n)
		return err_set(-ESRCH, "pid %d: exited while cryo worked on it", tid ? tid : pid);
	/* comm may contain spaces and parentheses: fields follow the last ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return err_set(-EINVAL, "pid %d: cannot parse /proc/%d/stat", pid, pid);
	memset(st, 0, sizeof(*st));
	st->state = p[2];
	p += 3;
	/* v[k] is field k+4 of proc(5) (field 3 is the state) */
	for (i = 0; i < 52 - 4 + 1 && *p; i++) {
		char *end;

		v[i] = strtoull(p, &end, 10);
		if (end == p) {
			long long sv = strtoll(p, &end, 10);

			v[i] = (unsigned long long)sv;
		}
		p = end;
		while (*p == ' ')
			p++;
	}
	if (i < 48)
		return err_set(-EINVAL, "pid %d: short /proc/%d/stat (%d fields)", pid, pid, i + 3);
#define F(k) v[(k) - 4]
	st->ppid = (pid_t)F(4);
	st->pgrp = (pid_t)F(5);
	st->session = (pid_t)F(6);
	st->tty_nr = (int)F(7);
	st->flags = (unsigned long)F(9);
	st->nice = (long)F(19);
	st->starttime = F(22);
	st->start_code = F(26);
	st->end_code = F(27);
	st->start_stack = F(28);
	st->exit_signal = (int)F(38);
	if (i >= 49)
		st->exit_code = (int)F(52);
	st->start_data = F(45);
	st->end_data = F(46);
	st->start_brk = F(47);
	st->arg_start = F(48);
	st->arg_end = F(49);
	st->env_start = F(50);
	st->env_end = F(51);
#undef F
	return 0;
}

static void parse_ids(const char *s, unsigned *out, int n)
{
	for (int i = 0; i < n; i++) {
		char *end;

		out[i] = (unsigned)strtoul(s, &end, 10);
		s = end;
	}
}

int proc_status(pid_t pid, pid_t tid, struct proc_status *st)
{
	char line[1024];
	int err = 0;
	FILE *f = proc_open(pid, tid, "status", &err);

	if (!f)
		return err;
	memset(st, 0, sizeof(*st));
	while (fgets(line, sizeof(line), f)) {
		char *val = strchr(line, ':');

		if (!val)
			continue;
		*val++ = 0;
		if (!strcmp(line, "Umask"))
			st->umask = (unsigned)strtoul(val, NULL, 8);
		else if (!strcmp(line, "Uid"))
			parse_ids(val, (unsigned *)st->uid, 4);
		else if (!strcmp(line, "Gid"))
			parse_ids(val, (unsigned *)st->gid, 4);
		else if (!strcmp(line, "Groups")) {
			char *p = val, *end;

			while (st->ngroups < 64) {
				unsigned long g = strtoul(p, &end, 10);

				if (end == p)
					break;
				st->groups[st->ngroups++] = (gid_t)g;
				p = end;
			}
		} else if (!strcmp(line, "SigPnd"))
			st->sig_pnd = strtoull(val, NULL, 16);
		else if (!strcmp(line, "ShdPnd"))
			st->shd_pnd = strtoull(val, NULL, 16);
		else if (!strcmp(line, "SigBlk"))
			st->sig_blk = strtoull(val, NULL, 16);
		else if (!strcmp(line, "SigIgn"))
			st->sig_ign = strtoull(val, NULL, 16);
		else if (!strcmp(line, "SigCgt"))
			st->sig_cgt = strtoull(val, NULL, 16);
		else if (!strcmp(line, "Threads"))
			st->threads = atoi(val);
		else if (!strcmp(line, "NoNewPrivs"))
			st->no_new_privs = atoi(val);
		else if (!strcmp(line, "Seccomp"))
			st->seccomp = atoi(val);
		else if (!strcmp(line, "TracerPid"))
			st->tracer = atoi(val);
		else if (!strcmp(line, "CapEff"))
			st->cap_eff = strtoull(val, NULL, 16);
	}
	fclose(f);
	return 0;
}

int proc_read(pid_t pid, const char *name, char **buf, size_t *len)
{
	char path[96];
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	int fd;

	if (!b)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(b);
		return err_sys(-errno, "pid %d: open %s", pid, path);
	}
	for (;;) {
		ssize_t r = read(fd, b + n, cap - n);

		if (r < 0) {
			int e = -errno;

			close(fd);
			free(b);
			return err_sys(e, "pid %d: read %s", pid, path);
		}
		if (r == 0)
			break;
		n += r;
		if (n == cap) {
			char *nb = realloc(b, cap * 2 + 1);

			if (!nb) {
				close(fd);
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
	}
	close(fd);
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

int proc_link(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[96];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	n = readlink(path, buf, size - 1);
	if (n < 0)
		return err_sys(-errno, "pid %d: readlink %s", pid, path);
	if ((size_t)n == size - 1)
		return err_set(-ENAMETOOLONG, "pid %d: %s: path too long", pid, path);
	buf[n] = 0;
	return 0;
}

int proc_tids(pid_t pid, pid_t **tids, size_t *count)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	pid_t *t = NULL;
	size_t n = 0, cap = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return err_sys(-errno, "pid %d: open %s", pid, path);
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		if (n == cap) {
			pid_t *nt;

			cap = cap ? cap * 2 : 16;
			nt = realloc(t, cap * sizeof(*t));
			if (!nt) {
				closedir(d);
				free(t);
				return -ENOMEM;
			}
			t = nt;
		}
		t[n++] = tid;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		if (t[i] == pid) {
			t[i] = t[0];
			t[0] = pid;
		}
	}
	*tids = t;
	*count = n;
	return 0;
}

int proc_fdinfo(pid_t pid, int fd, uint64_t *pos, int *flags, char **text)
{
	char name[48];
	size_t len;
	char *buf, *p;
	int e;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	e = proc_read(pid, name, &buf, &len);
	if (e)
		return e;
	p = strstr(buf, "pos:");
	*pos = p ? strtoull(p + 4, NULL, 10) : 0;
	p = strstr(buf, "flags:");
	*flags = p ? (int)strtoul(p + 6, NULL, 8) : 0;
	if (text)
		*text = buf;
	else
		free(buf);
	return 0;
}

int proc_each_fd(pid_t pid, proc_fd_fn fn, void *arg)
{
	char dir[64];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return err_sys(-errno, "pid %d: open %s", pid, dir);
	while (!r && (de = readdir(d))) {
		char path[64 + 256 + 2];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0)
			r = fn(atoi(de->d_name), path, &st, arg);
	}
	closedir(d);
	return r;
}

struct holder_match { dev_t dev; ino_t ino; };

static int holds(int fd, const char *path, const struct stat *st, void *arg)
{
	const struct holder_match *m = arg;

	(void)fd;
	(void)path;
	return st->st_ino == m->ino && st->st_dev == m->dev;
}

pid_t proc_fd_holder(dev_t dev, ino_t ino, pid_t exclude)
{
	struct holder_match m = { dev, ino };
	DIR *pd = opendir("/proc");
	struct dirent *pe;
	pid_t found = 0;

	if (!pd)
		return 0;
	while (!found && (pe = readdir(pd))) {
		pid_t pid = atoi(pe->d_name);

		if (pid <= 0 || pid == exclude)
			continue;
		if (proc_each_fd(pid, holds, &m) > 0)
			found = pid;
		err_clear();	/* a process that went away, or is not ours to read */
	}
	closedir(pd);
	return found;
}
