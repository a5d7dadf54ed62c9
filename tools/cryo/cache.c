/* The application startup cache (issue #11): a per-user directory of
 * entries, one per command line, each the checkpoint of that command at
 * its cache point (run.c makes and uses them).
 *
 *   DIR/lock            flock: shared while an entry is read, exclusive
 *                       while entries are installed or removed
 *   DIR/KEY/image       the checkpoint (0600)
 *   DIR/KEY/swap        its own page store (0600): an entry never changes
 *                       once installed, so concurrent restores only read it
 *   DIR/KEY/meta        what the entry depends on, text (see write_meta)
 *   DIR/.new-XXXXXX/    an entry being built by a first run
 *
 * KEY is a hash of the command line, the executable's path as found, the cwd, the
 * environment minus a short ignore list, the kinds of fds 0-2 (terminal,
 * pipe, file...), the cache point and the user.
 * The identities of the executable and of every file mapped at the cache
 * point (device, inode, size, mtime, ELF build-id) are in meta and are
 * checked at every lookup: a changed file makes the entry stale, and the
 * next run replaces it with a fresh first run. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cryo.h"
#include "cache.h"
#include "err.h"

#define META_MAGIC "cryo-cache 1"
#define META_MAX (4u << 20)

/* Variables that differ between otherwise identical invocations and that
 * programs do not read: bash's last argument, cd's previous directory.
 * A cached run sees the values the first run had. */
static const char *const env_ignore[] = { "_", "OLDPWD" };

int cache_env_ignored(const char *var)
{
	size_t n = strcspn(var, "=");

	for (size_t i = 0; i < sizeof(env_ignore) / sizeof(env_ignore[0]); i++)
		if (strlen(env_ignore[i]) == n && !strncmp(var, env_ignore[i], n))
			return 1;
	return 0;
}

static int mkdir_private(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return err_sys(-errno, "cache: create directory %s", path);
	return 0;
}

int cache_dir(const char *override, char **dir)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	struct stat st;
	char *d = NULL;
	int e = 0;

	*dir = NULL;
	if (override) {
		d = strdup(override);
	} else if (x && x[0] == '/') {
		if (asprintf(&d, "%s/cryo/cache", x) < 0)
			d = NULL;
	} else {
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(geteuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || home[0] != '/')
			return err_set(-ENOENT, "cache: no home directory: use --cache-dir");
		if (asprintf(&d, "%s/.local/state/cryo/cache", home) < 0)
			d = NULL;
	}
	if (!d)
		return -ENOMEM;
	/* each missing level is made private: nothing in it is for others */
	for (char *p = d + 1; *p && !e; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (access(d, F_OK) < 0)
			e = mkdir_private(d);
		*p = '/';
	}
	if (!e)
		e = mkdir_private(d);
	if (!e && stat(d, &st) < 0)
		e = err_sys(-errno, "cache: %s", d);
	if (!e && !S_ISDIR(st.st_mode))
		e = err_set(-ENOTDIR, "cache: %s is not a directory", d);
	if (!e && st.st_uid != geteuid())
		e = err_set(-EPERM, "cache: %s belongs to uid %u, not to you (uid %u)", d,
			    st.st_uid, geteuid());
	/* entries hold the memory of the programs: never in a shared place
	 * (and never chmod what the user named: it could be /tmp) */
	if (!e && (st.st_mode & 077))
		e = err_set(-EPERM, "cache: %s is open to other users (mode %03o): use a private"
			    " directory (chmod 700 %s)", d, st.st_mode & 0777, d);
	if (e) {
		free(d);
		return e;
	}
	*dir = d;
	return 0;
}

static void hash_str(XXH3_state_t *s, const char *tag, const char *v)
{
	XXH3_128bits_update(s, tag, strlen(tag) + 1);
	XXH3_128bits_update(s, v, strlen(v) + 1);
}

/* What kind of file each of fds 0-2 is: programs look at that when they
 * start (isatty for buffering and colours), so a run whose stdout is a
 * terminal and one whose stdout is a pipe get different entries */
static void stdio_kinds(char out[4])
{
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		char k = '-';

		if (fstat(fd, &st) == 0) {
			if (isatty(fd))
				k = 't';
			else if (S_ISFIFO(st.st_mode))
				k = 'p';
			else if (S_ISSOCK(st.st_mode))
				k = 's';
			else if (S_ISREG(st.st_mode))
				k = 'f';
			else if (S_ISCHR(st.st_mode))
				k = 'c';
			else
				k = 'o';
		}
		out[fd] = k;
	}
	out[3] = 0;
}

int cache_key(const struct cache_cmd *c, char key[CACHE_KEY_LEN + 1])
{
	XXH3_state_t *s = XXH3_createState();
	XXH128_hash_t h;
	char uid[32], kinds[4];

	if (!s)
		return -ENOMEM;
	XXH3_128bits_reset(s);
	snprintf(uid, sizeof(uid), "%u", (unsigned)geteuid());
	hash_str(s, "cryo-cache-key", "1");
	hash_str(s, "uid", uid);
	hash_str(s, "point", c->point);
	hash_str(s, "path", c->path);
	hash_str(s, "cwd", c->cwd);
	stdio_kinds(kinds);
	hash_str(s, "stdio", kinds);
	for (char **a = c->argv; *a; a++)
		hash_str(s, "arg", *a);
	for (char **v = c->envp; *v; v++)
		if (!cache_env_ignored(*v))
			hash_str(s, "env", *v);
	h = XXH3_128bits_digest(s);
	XXH3_freeState(s);
	snprintf(key, CACHE_KEY_LEN + 1, "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
	return 0;
}

int cache_lock(const char *dir, int exclusive)
{
	char *p = NULL;
	int fd;

	if (asprintf(&p, "%s/lock", dir) < 0)
		return -ENOMEM;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = err_sys(-errno, "cache: open %s", p);

		free(p);
		return e;
	}
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR) {
			int e = err_sys(-errno, "cache: lock %s", p);

			close(fd);
			free(p);
			return e;
		}
	}
	free(p);
	return fd;
}

void cache_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

char *cache_path(const char *dir, const char *key, const char *file)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s%s%s", dir, key, file ? "/" : "", file ? file : "") < 0)
		return NULL;
	return p;
}

/* ---- meta: one item per line, strings escaped (\\ and \n) ---- */

static void put_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void unesc(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '\\' && (s[1] == '\\' || s[1] == 'n')) {
			*o++ = s[1] == 'n' ? '\n' : '\\';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

struct dep {
	struct exe_ident id;
	char *path;
};

static int add_dep(struct dep **v, size_t *n, const char *path, const struct exe_ident *id)
{
	struct dep *nv;

	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].id.dev == id->dev && (*v)[i].id.ino == id->ino)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n].id = *id;
	nv[*n].path = strdup(path);
	if (!nv[*n].path)
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void free_deps(struct dep *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/* A path that names the process itself, by its old pid */
static int names_self(const char *path, pid_t pid)
{
	char pre[32];
	int n = snprintf(pre, sizeof(pre), "/proc/%d/", (int)pid);

	return !strncmp(path, pre, (size_t)n) || !strncmp(path, "/proc/self/", 11) ||
	       !strncmp(path, "/proc/thread-self/", 18);
}

/* A cached run gets a new pid: refuse what holds on to the old one */
static int check_pid_deps(const struct img *im, pid_t pid)
{
	struct lx_fd *fds = NULL;
	struct lx_posix_timer *tm = NULL;
	size_t n = 0;
	int e = img_records(im, LX_SEC_FDS, 0, sizeof(*fds), 64, (void **)&fds, &n);

	if (e == -ENOENT) {
		err_clear();
		e = 0;
	}
	for (size_t i = 0; i < n && !e; i++) {
		const char *p = fds[i].path_off ? img_string(im, 0, fds[i].path_off) : NULL;

		if (fds[i].fd > 2 && p && names_self(p, pid))
			e = err_set(-EOPNOTSUPP, "fd %u is %s, a file of the process itself: a"
				    " cached run has another pid", fds[i].fd, p);
		else if (fds[i].owner_pid == (uint32_t)pid)
			e = err_set(-EOPNOTSUPP, "fd %u sends SIGIO to the process's own pid: a"
				    " cached run has another pid", fds[i].fd);
	}
	free(fds);
	if (e)
		return e;
	n = 0;
	e = img_records(im, LX_SEC_POSIX_TIMERS, 0, sizeof(*tm), 8, (void **)&tm, &n);
	if (e == -ENOENT) {
		err_clear();
		e = 0;
	}
	for (size_t i = 0; i < n && !e; i++)
		if (tm[i].notify == 4 /* SIGEV_THREAD_ID */)
			e = err_set(-EOPNOTSUPP, "a POSIX timer signals thread %u by its id: a"
				    " cached run has another pid", tm[i].notify_tid);
	free(tm);
	return e;
}

/* The executable and every file mapped, as the image recorded them; the
 * build-id read now must come from the file with the recorded identity */
static int image_deps(const struct img *im, pid_t pid, struct dep **deps, size_t *ndeps)
{
	struct lx_core *core = NULL;
	struct lx_vma *vmas = NULL;
	struct exe_ident id;
	size_t n = 0;
	int e = img_records(im, LX_SEC_CORE, 0, sizeof(*core), 64, (void **)&core, &n);
	const char *exe;

	if (e || n != 1) {
		free(core);
		return e ? e : err_set(-EINVAL, "cache: image: no core record");
	}
	exe = img_string(im, 0, core->exe_off);
	memset(&id, 0, sizeof(id));
	id.dev = core->exe_dev;
	id.ino = core->exe_ino;
	id.size = core->exe_size;
	id.mtime_ns = core->exe_mtime_ns;
	id.build_id_len = core->exe_build_id_len;
	if (id.build_id_len > LX_CKPT_BUILD_ID_MAX)
		id.build_id_len = 0;
	memcpy(id.build_id, core->exe_build_id, id.build_id_len);
	free(core);
	if (!exe)
		return err_set(-EINVAL, "cache: image: no executable path");
	e = add_dep(deps, ndeps, exe, &id);
	if (e)
		return e;
	e = img_records(im, LX_SEC_VMAS, 0, sizeof(*vmas), 64, (void **)&vmas, &n);
	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++) {
		const struct lx_vma *v = &vmas[i];
		const char *p;
		struct exe_ident now;

		if (v->kind != LX_VMA_FILE_PRIVATE && v->kind != LX_VMA_FILE_SHARED)
			continue;
		p = img_string(im, 0, v->path_off);
		if (!p || p[0] != '/') {
			e = err_set(-EINVAL, "cache: image: mapping at %#llx has no path",
				    (unsigned long long)v->start);
			break;
		}
		if (names_self(p, pid)) {
			e = err_set(-EOPNOTSUPP, "%s is mapped, a file of the process itself: a"
				    " cached run has another pid", p);
			break;
		}
		e = exe_identify(p, -1, &now);
		if (!e && (now.dev != v->dev || now.ino != v->ino || now.size != v->size ||
			   now.mtime_ns != v->mtime_ns))
			e = err_set(-ESTALE, "%s changed while the first run was being cached", p);
		if (!e)
			e = add_dep(deps, ndeps, p, &now);
	}
	free(vmas);
	return e;
}

static void put_hex(FILE *f, const uint8_t *b, size_t n)
{
	if (!n)
		fputc('-', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
}

static int write_file_synced(const char *path, FILE *f)
{
	int e = 0;

	if (fflush(f) || fsync(fileno(f)) < 0)
		e = err_sys(-errno, "cache: write %s", path);
	if (fclose(f) && !e)
		e = err_sys(-errno, "cache: write %s", path);
	return e;
}

static int file_ident(const char *path, struct cache_read *r)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->size = (uint64_t)st.st_size;
	r->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	return 0;
}

int cache_write_meta(const char *tmp, const struct cache_cmd *c, pid_t pid,
		     const struct cache_read *reads, size_t nreads)
{
	struct img im;
	struct lx_task *tasks = NULL;
	struct dep *deps = NULL;
	size_t ntasks = 0, ndeps = 0;
	char *ipath = NULL, *mpath = NULL, *mtmp = NULL;
	FILE *f = NULL;
	int e, fd;

	if (asprintf(&ipath, "%s/image", tmp) < 0 || asprintf(&mpath, "%s/meta", tmp) < 0 ||
	    asprintf(&mtmp, "%s/meta.tmp", tmp) < 0) {
		e = -ENOMEM;
		goto out_free;
	}
	e = img_open(&im, ipath);
	if (e)
		goto out_free;
	e = img_records(&im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32, (void **)&tasks,
			&ntasks);
	if (!e && ntasks != 1)
		e = err_set(-EOPNOTSUPP, "%zu processes at the cache point: a cached run gets a"
			    " new pid, which works for one single-threaded process only", ntasks);
	if (!e && tasks[0].nr_threads != 1)
		e = err_set(-EOPNOTSUPP, "%u threads at the cache point: a cached run gets a"
			    " new pid, which works for one single-threaded process only",
			    tasks[0].nr_threads);
	free(tasks);
	if (!e)
		e = check_pid_deps(&im, pid);
	if (!e)
		e = image_deps(&im, pid, &deps, &ndeps);
	img_close(&im);
	if (e)
		goto out_free;
	fd = open(mtmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		e = err_sys(-errno, "cache: create %s", mtmp);
		if (fd >= 0)
			close(fd);
		goto out_free;
	}
	fprintf(f, "%s\npoint %s\nexe ", META_MAGIC, c->point);
	put_esc(f, c->exe);
	fputs("\ncwd ", f);
	put_esc(f, c->cwd);
	fputc('\n', f);
	for (char **a = c->argv; *a; a++) {
		fputs("arg ", f);
		put_esc(f, *a);
		fputc('\n', f);
	}
	for (size_t i = 0; i < ndeps; i++) {
		const struct exe_ident *id = &deps[i].id;

		fprintf(f, "dep %llu %llu %llu %llu ", (unsigned long long)id->dev,
			(unsigned long long)id->ino, (unsigned long long)id->size,
			(unsigned long long)id->mtime_ns);
		put_hex(f, id->build_id, id->build_id_len);
		fputc(' ', f);
		put_esc(f, deps[i].path);
		fputc('\n', f);
	}
	/* the file CMD named (a script is read, not mapped), then what the
	 * program read; each by its identity now, which must still be the
	 * one it had when it was opened */
	{
		struct cache_read self = { 0 };

		if (!file_ident(c->exe, &self)) {
			self.path = (char *)c->exe;
			fprintf(f, "read %llu %llu %llu %llu ", (unsigned long long)self.dev,
				(unsigned long long)self.ino, (unsigned long long)self.size,
				(unsigned long long)self.mtime_ns);
			put_esc(f, c->exe);
			fputc('\n', f);
		}
	}
	for (size_t i = 0; i < nreads && !e; i++) {
		const struct cache_read *r = &reads[i];
		struct cache_read now;
		size_t k;

		for (k = 0; k < ndeps && (deps[k].id.dev != r->dev || deps[k].id.ino != r->ino); k++)
			;
		if (k < ndeps)
			continue;	/* mapped: checked with its build-id */
		if (file_ident(r->path, &now) || now.dev != r->dev || now.ino != r->ino ||
		    now.size != r->size || now.mtime_ns != r->mtime_ns)
			e = err_set(-ESTALE, "%s changed while the first run was being cached",
				    r->path);
		fprintf(f, "read %llu %llu %llu %llu ", (unsigned long long)r->dev,
			(unsigned long long)r->ino, (unsigned long long)r->size,
			(unsigned long long)r->mtime_ns);
		put_esc(f, r->path);
		fputc('\n', f);
	}
	if (e) {
		fclose(f);
		unlink(mtmp);
		goto out_free;
	}
	e = write_file_synced(mtmp, f);
	if (!e && rename(mtmp, mpath) < 0)
		e = err_sys(-errno, "cache: rename %s", mtmp);
out_free:
	free_deps(deps, ndeps);
	free(ipath);
	free(mpath);
	free(mtmp);
	return e;
}

/* ---- reading an entry ---- */

struct meta {
	char *text;
	char *point, *exe, *cwd;
	char **args;
	size_t nargs;
	struct dep *deps;
	size_t ndeps;
	struct cache_read *reads;	/* paths point into text */
	size_t nreads;
	time_t used;		/* mtime of meta: the last run from it */
};

static void meta_free(struct meta *m)
{
	free(m->text);
	free(m->args);
	free(m->deps);	/* paths point into text */
	free(m->reads);
	memset(m, 0, sizeof(*m));
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

_Static_assert(2 * LX_CKPT_BUILD_ID_MAX + 1 == 65, "parse_dep reads at most 65 hex digits");

static int parse_dep(char *s, struct dep *d)
{
	unsigned long long dev, ino, size, mt;
	char bid[2 * LX_CKPT_BUILD_ID_MAX + 2];
	int used = 0;

	memset(d, 0, sizeof(*d));
	if (sscanf(s, "%llu %llu %llu %llu %65s %n", &dev, &ino, &size, &mt, bid, &used) != 5 ||
	    !used || s[used] != '/')
		return -1;
	d->id.dev = dev;
	d->id.ino = ino;
	d->id.size = size;
	d->id.mtime_ns = mt;
	if (strcmp(bid, "-")) {
		size_t n = strlen(bid);

		if (n % 2 || n / 2 > LX_CKPT_BUILD_ID_MAX)
			return -1;
		for (size_t i = 0; i < n / 2; i++) {
			int h = hexval(bid[2 * i]), l = hexval(bid[2 * i + 1]);

			if (h < 0 || l < 0)
				return -1;
			d->id.build_id[i] = (uint8_t)(h << 4 | l);
		}
		d->id.build_id_len = (uint32_t)(n / 2);
	}
	d->path = s + used;
	unesc(d->path);
	return 0;
}

static int meta_read(const char *dir, const char *key, struct meta *m)
{
	char *path = cache_path(dir, key, "meta"), *line, *save = NULL;
	struct stat st;
	ssize_t got;
	int fd, e = 0, lineno = 0;

	memset(m, 0, sizeof(*m));
	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno == ENOENT ? -ENOENT : err_sys(-errno, "cache: open %s", path);
		free(path);
		return e;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > META_MAX ||
	    !(m->text = malloc((size_t)st.st_size + 1))) {
		close(fd);
		e = err_set(-EINVAL, "cache: %s: unreadable", path);
		free(path);
		return e;
	}
	m->used = st.st_mtime;
	got = read(fd, m->text, (size_t)st.st_size);
	close(fd);
	if (got != st.st_size) {
		e = err_set(-EINVAL, "cache: %s: short read", path);
		goto out;
	}
	m->text[got] = 0;
	for (line = strtok_r(m->text, "\n", &save); line && !e;
	     line = strtok_r(NULL, "\n", &save), lineno++) {
		if (lineno == 0) {
			if (strcmp(line, META_MAGIC))
				e = -EINVAL;
		} else if (!strncmp(line, "point ", 6)) {
			m->point = line + 6;
		} else if (!strncmp(line, "exe ", 4)) {
			m->exe = line + 4;
			unesc(m->exe);
		} else if (!strncmp(line, "cwd ", 4)) {
			m->cwd = line + 4;
			unesc(m->cwd);
		} else if (!strncmp(line, "arg ", 4)) {
			char **nv = realloc(m->args, (m->nargs + 1) * sizeof(char *));

			if (!nv) {
				e = -ENOMEM;
				break;
			}
			m->args = nv;
			m->args[m->nargs] = line + 4;
			unesc(m->args[m->nargs++]);
		} else if (!strncmp(line, "read ", 5)) {
			struct cache_read *nv = realloc(m->reads, (m->nreads + 1) * sizeof(*nv));
			unsigned long long dev, ino, size, mt;
			int used = 0;

			if (!nv) {
				e = -ENOMEM;
				break;
			}
			m->reads = nv;
			if (sscanf(line + 5, "%llu %llu %llu %llu %n", &dev, &ino, &size, &mt,
				   &used) != 4 || !used || line[5 + used] != '/') {
				e = -EINVAL;
				break;
			}
			nv[m->nreads] = (struct cache_read){ dev, ino, size, mt, line + 5 + used };
			unesc(nv[m->nreads++].path);
		} else if (!strncmp(line, "dep ", 4)) {
			struct dep *nv = realloc(m->deps, (m->ndeps + 1) * sizeof(*nv));

			if (!nv) {
				e = -ENOMEM;
				break;
			}
			m->deps = nv;
			if (parse_dep(line + 4, &m->deps[m->ndeps++]))
				e = -EINVAL;
		}
	}
	if (!e && (!m->point || !m->exe || !m->cwd || !m->ndeps))
		e = -EINVAL;
	if (e == -EINVAL)
		e = err_set(-EINVAL, "cache: %s is damaged", path);
out:
	if (e)
		meta_free(m);
	free(path);
	return e;
}

/* -ESTALE with a message naming the first file that changed */
static int meta_check(const char *dir, const char *key, const struct meta *m)
{
	static const char *const files[] = { "image", "swap" };

	for (size_t i = 0; i < 2; i++) {
		char *p = cache_path(dir, key, files[i]);
		int ok = p && access(p, R_OK) == 0;

		free(p);
		if (!ok)
			return err_set(-ESTALE, "its %s is missing", files[i]);
	}
	for (size_t i = 0; i < m->ndeps; i++) {
		const struct dep *d = &m->deps[i];
		struct exe_ident now;

		if (exe_identify(d->path, -1, &now)) {
			err_clear();
			return err_set(-ESTALE, "%s is gone", d->path);
		}
		if (now.dev != d->id.dev || now.ino != d->id.ino)
			return err_set(-ESTALE, "%s was replaced", d->path);
		if (now.size != d->id.size || now.mtime_ns != d->id.mtime_ns)
			return err_set(-ESTALE, "%s changed (size or mtime)", d->path);
		if (now.build_id_len != d->id.build_id_len ||
		    memcmp(now.build_id, d->id.build_id, now.build_id_len))
			return err_set(-ESTALE, "%s has another build-id", d->path);
	}
	for (size_t i = 0; i < m->nreads; i++) {
		const struct cache_read *r = &m->reads[i];
		struct cache_read now;

		if (file_ident(r->path, &now))
			return err_set(-ESTALE, "%s is gone", r->path);
		if (now.dev != r->dev || now.ino != r->ino)
			return err_set(-ESTALE, "%s was replaced", r->path);
		if (now.size != r->size || now.mtime_ns != r->mtime_ns)
			return err_set(-ESTALE, "%s changed (size or mtime)", r->path);
	}
	return 0;
}

int cache_lookup(const char *dir, const char *key, const struct cache_cmd *c)
{
	struct meta m;
	int e = meta_read(dir, key, &m);

	if (e == -ENOENT) {
		err_clear();
		return 0;
	}
	if (e)
		return err_set(-ESTALE, "%s", err_msg());
	if (strcmp(m.exe, c->exe) || strcmp(m.point, c->point))
		e = err_set(-ESTALE, "the command now runs %s", c->exe);
	if (!e)
		e = meta_check(dir, key, &m);
	meta_free(&m);
	return e ? e : 1;
}

int cache_new_tmp(const char *dir, char **tmp)
{
	if (asprintf(tmp, "%s/.new-XXXXXX", dir) < 0)
		return -ENOMEM;
	if (!mkdtemp(*tmp)) {
		int e = err_sys(-errno, "cache: create a directory in %s", dir);

		free(*tmp);
		*tmp = NULL;
		return e;
	}
	return 0;
}

int cache_remove_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int e = 0;

	if (!d)
		return errno == ENOENT ? 0 : err_sys(-errno, "cache: open %s", path);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && !e)
			e = err_sys(-errno, "cache: remove %s/%s", path, de->d_name);
	closedir(d);
	if (!e && rmdir(path) < 0)
		e = err_sys(-errno, "cache: remove %s", path);
	return e;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* The new entry replaces any old one whole: a reader sees either */
int cache_install(const char *dir, const char *key, const char *tmp)
{
	char *final = cache_path(dir, key, NULL), *old = NULL;
	int lk, e = 0;

	sync_dir(tmp);
	if (!final)
		return -ENOMEM;
	lk = cache_lock(dir, 1);
	if (lk < 0) {
		free(final);
		return lk;
	}
	if (rename(tmp, final) < 0) {
		if (errno != ENOTEMPTY && errno != EEXIST) {
			e = err_sys(-errno, "cache: rename %s to %s", tmp, final);
		} else if (asprintf(&old, "%s/.old-XXXXXX", dir) < 0 || !mkdtemp(old)) {
			e = err_sys(-ENOMEM, "cache: replace %s", final);
		} else if (rename(final, old) < 0 || rename(tmp, final) < 0) {
			e = err_sys(-errno, "cache: replace %s", final);
		}
	}
	if (!e)
		sync_dir(dir);
	cache_unlock(lk);
	if (old)
		cache_remove_dir(old);
	free(old);
	free(final);
	return e;
}

void cache_touch(const char *dir, const char *key)
{
	char *p = cache_path(dir, key, "meta");

	if (p)
		utimensat(AT_FDCWD, p, NULL, 0);
	free(p);
}

/* ---- cryo cache ls | rm | gc ---- */

struct entry {
	char key[CACHE_KEY_LEN + 1];
	uint64_t bytes;
	time_t used;
	char *why;		/* stale: why; NULL if usable */
	char *cmd;
};

static int is_key(const char *s)
{
	size_t n = strlen(s);

	if (n != CACHE_KEY_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return 0;
	return 1;
}

static uint64_t dir_bytes(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return sum;
}

static char *join_args(const struct meta *m)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < m->nargs; i++)
		len += strlen(m->args[i]) + 1;
	s = calloc(1, len);
	for (size_t i = 0; s && i < m->nargs; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, m->args[i]);
	}
	for (char *p = s; p && *p; p++)
		if (*p == '\n')
			*p = ' ';
	return s;
}

static void entries_free(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].why);
		free(v[i].cmd);
	}
	free(v);
}

static int list_entries(const char *dir, struct entry **out, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct entry *v = NULL;
	size_t n = 0;

	if (!d)
		return err_sys(-errno, "cache: open %s", dir);
	while ((de = readdir(d))) {
		struct entry *nv, *en;
		struct meta m;
		char *p;
		int e;

		if (!is_key(de->d_name))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		en = &v[n++];
		memset(en, 0, sizeof(*en));
		memcpy(en->key, de->d_name, CACHE_KEY_LEN);	/* is_key: exactly that long */
		en->key[CACHE_KEY_LEN] = 0;
		p = cache_path(dir, en->key, NULL);
		en->bytes = p ? dir_bytes(p) : 0;
		free(p);
		e = meta_read(dir, en->key, &m);
		if (!e) {
			en->used = m.used;
			en->cmd = join_args(&m);
			e = meta_check(dir, en->key, &m);
			meta_free(&m);
		} else if (e == -ENOENT) {
			err_set(-ENOENT, "no meta file");
		}
		if (e)
			en->why = strdup(err_msg());
		err_clear();
	}
	closedir(d);
	*out = v;
	*count = n;
	return 0;
}

static void human(uint64_t b, char *buf, size_t len)
{
	if (b >= 10ull << 20)
		snprintf(buf, len, "%lluM", (unsigned long long)(b >> 20));
	else
		snprintf(buf, len, "%lluK", (unsigned long long)((b + 1023) >> 10));
}

static int remove_entry(const char *dir, const char *key)
{
	char *p = cache_path(dir, key, NULL);
	int e = p ? cache_remove_dir(p) : -ENOMEM;

	free(p);
	return e;
}

static int by_used(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* Leftovers of first runs that died before installing (an hour is far
 * longer than any dump): .new-* and .old-* directories */
static void remove_leftovers(const char *dir, time_t now)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		char *p;

		if (strncmp(de->d_name, ".new-", 5) && strncmp(de->d_name, ".old-", 5))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || now - st.st_mtime < 3600)
			continue;
		if (asprintf(&p, "%s/%s", dir, de->d_name) >= 0) {
			if (!cache_remove_dir(p))
				printf("removed %s (an unfinished first run)\n", p);
			free(p);
		}
	}
	closedir(d);
}

static void cache_usage(FILE *f)
{
	fprintf(f,
"usage: cryo cache ls [--cache-dir DIR]\n"
"       cryo cache rm [--cache-dir DIR] KEY... | --all\n"
"       cryo cache gc [--cache-dir DIR] [--max-age DAYS] [--max-size MIB]\n"
"\n"
"ls lists the entries: key, size on disk, last use, whether the files they\n"
"depend on are unchanged, command line. gc removes stale entries (a file\n"
"they depend on changed), entries unused for more than --max-age days\n"
"(default 30), then the least recently used until the cache holds at most\n"
"--max-size MiB (default 1024), and unfinished first runs older than 1 h.\n");
}

int cmd_cache(int argc, char **argv)
{
	enum { OPT_DIR = 256, OPT_AGE, OPT_SIZE, OPT_ALL };
	static const struct option lo[] = {
		{ "cache-dir", required_argument, NULL, OPT_DIR },
		{ "max-age", required_argument, NULL, OPT_AGE },
		{ "max-size", required_argument, NULL, OPT_SIZE },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *dir_opt = NULL, *verb;
	double max_age = 30, max_size = 1024;
	struct entry *v = NULL;
	size_t n = 0;
	char *dir = NULL, *end;
	int c, all = 0, st = 0, lk, e;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cache_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	if (strcmp(verb, "ls") && strcmp(verb, "rm") && strcmp(verb, "gc")) {
		cache_usage(stderr);
		return 2;
	}
	argc--;
	argv++;
	argv[0] = (char *)"cryo: cache";	/* getopt's messages name argv[0] */
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case OPT_DIR: dir_opt = optarg; break;
		case OPT_AGE:
		case OPT_SIZE: {
			double x = strtod(optarg, &end);

			if (*end || x < 0) {
				fprintf(stderr, "cryo: cache: --%s: '%s' is not a number >= 0\n",
					c == OPT_AGE ? "max-age" : "max-size", optarg);
				return 2;
			}
			*(c == OPT_AGE ? &max_age : &max_size) = x;
			break;
		}
		case OPT_ALL: all = 1; break;
		case 'q': log_level = 0; break;
		case 'h': cache_usage(stdout); return 0;
		default: cache_usage(stderr); return 2;
		}
	}
	if ((!strcmp(verb, "rm") ? (all == (optind < argc)) : optind != argc) ||
	    (all && strcmp(verb, "rm"))) {
		cache_usage(stderr);
		return 2;
	}
	e = cache_dir(dir_opt, &dir);
	if (e) {
		report_error("%s", err_msg());
		return 1;
	}
	lk = cache_lock(dir, strcmp(verb, "ls") != 0);
	if (lk < 0) {
		report_error("%s", err_msg());
		free(dir);
		return 1;
	}
	if (!strcmp(verb, "rm") && !all) {
		for (int i = optind; i < argc; i++) {
			char *p = is_key(argv[i]) ? cache_path(dir, argv[i], NULL) : NULL;

			if (!p || access(p, F_OK) < 0) {
				fprintf(stderr, "cryo: cache: no entry %s in %s\n", argv[i], dir);
				st = 1;
			} else if (remove_entry(dir, argv[i])) {
				report_error("%s", err_msg());
				st = 1;
			}
			free(p);
		}
		goto out;
	}
	e = list_entries(dir, &v, &n);
	if (e) {
		report_error("%s", err_msg());
		st = 1;
		goto out;
	}
	qsort(v, n, sizeof(*v), by_used);
	if (!strcmp(verb, "ls")) {
		printf("%-32s %6s  %-16s  %-5s  %s\n", "KEY", "SIZE", "LAST USED", "STATE",
		       "COMMAND");
		for (size_t i = n; i-- > 0;) {
			char sz[32], when[32];
			struct tm tm;

			human(v[i].bytes, sz, sizeof(sz));
			localtime_r(&v[i].used, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
			printf("%s %6s  %-16s  %-5s  %s\n", v[i].key, sz, v[i].used ? when : "-",
			       v[i].why ? "stale" : "ok", v[i].cmd ? v[i].cmd : "?");
			if (v[i].why && log_level > 0)
				printf("%33s(%s)\n", "", v[i].why);
		}
	} else if (!strcmp(verb, "rm")) {
		for (size_t i = 0; i < n; i++)
			if (remove_entry(dir, v[i].key)) {
				report_error("%s", err_msg());
				st = 1;
			}
	} else {
		time_t now = time(NULL);
		uint64_t total = 0, limit = (uint64_t)(max_size * 1048576.0);

		for (size_t i = 0; i < n; i++) {
			const char *why = v[i].why ? v[i].why : NULL;
			char age[64];

			if (!why && difftime(now, v[i].used) > max_age * 86400.0) {
				snprintf(age, sizeof(age), "unused for more than %g days", max_age);
				why = age;
			}
			if (why) {
				if (remove_entry(dir, v[i].key)) {
					report_error("%s", err_msg());
					st = 1;
				} else {
					printf("removed %s: %s\n", v[i].key, why);
				}
				v[i].bytes = 0;
			}
			total += v[i].bytes;
		}
		/* least recently used first */
		for (size_t i = 0; i < n && total > limit; i++) {
			if (!v[i].bytes)
				continue;
			if (remove_entry(dir, v[i].key)) {
				report_error("%s", err_msg());
				st = 1;
				continue;
			}
			printf("removed %s: the cache is over %g MiB\n", v[i].key, max_size);
			total -= v[i].bytes;
		}
		remove_leftovers(dir, now);
	}
out:
	entries_free(v, n);
	cache_unlock(lk);
	free(dir);
	return st;
}
