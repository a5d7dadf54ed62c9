/* Image I/O: a crash-safe writer and a validating reader over the ABI in
 * include/lx_ckpt.h. The header and table checks are the shared validator's
 * (the kernel runs the same code); this file only adds what needs a file:
 * reading, section CRCs, and messages that say where an image is broken. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
/* image.h nests a comment opener in a comment (-Wcomment); drop this
 * once the header is fixed */
#include "image.h"

/* Images hold metadata (pages live in the swapfile): up to this size an
 * image is read whole into memory. Larger ones (the pages a packed image
 * carries) are mapped, up to IMG_MAX_MAPPED (image.h); anything larger is
 * corrupt or not an image. */
#define IMG_MAX_SIZE	(1ull << 30)

static uint64_t align8(uint64_t x)
{
	return (x + LX_CKPT_ALIGN - 1) & ~(uint64_t)(LX_CKPT_ALIGN - 1);
}

static const char *task_name(uint32_t task, char buf[16])
{
	if (task == LX_TASK_GLOBAL)
		return "global";
	snprintf(buf, 16, "%u", task);
	return buf;
}

/* The header's lx_crc32c is bitwise; sections can be megabytes (page maps,
 * page sums), so use the SSE4.2 instruction when the CPU has it. The
 * validator recomputes the table CRC with lx_crc32c, which keeps the two
 * implementations honest against each other. */
#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(const uint8_t *p, size_t len)
{
	uint64_t c = 0xffffffffu;
	uint64_t v;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

static uint32_t crc32c(const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_sse42(buf, len);
#endif
	return lx_crc32c(0, buf, len);
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Bytes read (short only at end of file) or -errno. */
static int64_t pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return (int64_t)done;
}

/* ---- writer ---- */

struct strtab {
	uint32_t task;
	char *buf;
	size_t len, cap;
	uint32_t *slot;		/* open-addressing set of offsets; 0 = free,
				 * which is fine as "" is never inserted */
	size_t nslot, used;
};

struct img_writer {
	char *path, *tmp;	/* tmp is NULL once renamed */
	int fd;
	int anon;		/* fd is an O_TMPFILE: tmp has no link until
				 * publish(), so a killed dump leaves nothing */
	int linked;		/* tmp names the file (to unlink on failure) */
	int err;		/* first failure: later calls and commit fail */
	uint64_t off;		/* where the next section goes */
	struct lx_ckpt_section *sec;	/* host order until commit */
	uint32_t nsec, csec;
	struct strtab *st;
	size_t nst;
	char *exe;
	struct exe_ident exe_id;
	uint64_t exe_off;	/* file offset of the exe path, set at commit */
};

/* Every failure before the rename leaves the target as it was: say so, as
 * the user's first worry on ENOSPC is whether the last good image is gone. */
static int wfail(struct img_writer *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int wfail(struct img_writer *w, int err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* EINVAL is our own refusal: what says why, strerror would not */
	err_set(err, "image %s: %s%s%s; the earlier image (if any) is untouched",
		w->path, what, err == -EINVAL ? "" : ": ",
		err == -EINVAL ? "" : strerror(-err));
	if (!w->err)
		w->err = err;
	return err;
}

static void fill_random_suffix(char *s, int n)
{
	static const char set[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static unsigned int seq;
	uint8_t rnd[16];
	int i;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		/* names need only be unlikely to collide: O_EXCL decides */
		unsigned int x = (unsigned int)getpid() * 2654435761u ^
				 (unsigned int)time(NULL) ^ ++seq * 40503u;
		for (i = 0; i < (int)sizeof(rnd); i++, x = x * 1103515245u + 12345u)
			rnd[i] = (uint8_t)(x >> 16);
	}
	for (i = 0; i < n; i++)
		s[i] = set[rnd[i] % (sizeof(set) - 1)];
}

static int make_temp(struct img_writer *w)
{
	const char *slash = strrchr(w->path, '/');
	const char *base = slash ? slash + 1 : w->path;
	size_t dirlen = slash ? (size_t)(slash - w->path) + 1 : 0;
	size_t blen = strlen(base);
	char *suffix;
	int tries;

	if (!blen || !strcmp(base, ".") || !strcmp(base, ".."))
		return err_set(-EINVAL, "image %s: not a file name", w->path);
	w->tmp = malloc(dirlen + 1 + blen + 4 + 6 + 1);
	if (!w->tmp)
		return err_set(-ENOMEM, "image %s: out of memory", w->path);
	memcpy(w->tmp, w->path, dirlen);
	sprintf(w->tmp + dirlen, ".%s.tmpXXXXXX", base);
	suffix = w->tmp + strlen(w->tmp) - 6;
	/* an unnamed file in the image's directory, named only at commit:
	 * a dump killed by SIGKILL (which no cleanup can catch) then leaves
	 * no partial file behind; filesystems without O_TMPFILE get the
	 * named temporary file */
	w->tmp[dirlen] = 0;
	w->fd = open(dirlen ? w->tmp : ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	w->tmp[dirlen] = '.';
	if (w->fd >= 0) {
		w->anon = 1;
		if (fchmod(w->fd, 0600))
			return err_sys(-errno, "image %s: chmod", w->path);
		return 0;
	}
	for (tries = 0; tries < 100; tries++) {
		fill_random_suffix(suffix, 6);
		w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
			     O_CLOEXEC, 0600);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0)
		return err_sys(-errno, "image %s: creating temporary file %s",
			       w->path, w->tmp);
	w->linked = 1;
	/* the umask may have made it narrower, never wider; be exact */
	if (fchmod(w->fd, 0600))
		return err_sys(-errno, "image %s: chmod %s", w->path, w->tmp);
	return 0;
}

static void strtab_free(struct strtab *t)
{
	free(t->buf);
	free(t->slot);
}

static void free_writer(struct img_writer *w)
{
	size_t i;

	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp && w->linked)
		unlink(w->tmp);
	for (i = 0; i < w->nst; i++)
		strtab_free(&w->st[i]);
	free(w->st);
	free(w->sec);
	free(w->exe);
	free(w->tmp);
	free(w->path);
	free(w);
}

int img_create(struct img_writer **wp, const char *path)
{
	struct img_writer *w;
	int ret;

	*wp = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(-ENOMEM, "image %s: out of memory", path);
	w->fd = -1;
	w->off = LX_CKPT_HEADER_SIZE;
	w->path = strdup(path);
	if (!w->path)
		ret = err_set(-ENOMEM, "image %s: out of memory", path);
	else
		ret = make_temp(w);
	if (ret) {
		free_writer(w);
		return ret;
	}
	*wp = w;
	return 0;
}

static int grow_sections(struct img_writer *w)
{
	struct lx_ckpt_section *n;
	uint32_t cap;

	if (w->nsec < w->csec)
		return 0;
	if (w->nsec >= LX_CKPT_MAX_SECTIONS)
		return wfail(w, -E2BIG, "more than %u sections", LX_CKPT_MAX_SECTIONS);
	cap = w->csec ? w->csec * 2 : 32;
	n = realloc(w->sec, (size_t)cap * sizeof(*n));
	if (!n)
		return wfail(w, -ENOMEM, "section table");
	w->sec = n;
	w->csec = cap;
	return 0;
}

int img_add(struct img_writer *w, uint32_t type, uint32_t task,
	    uint32_t record_size, const void *data, size_t len)
{
	struct lx_ckpt_section *s;
	uint64_t off = w->off;
	int ret;

	if (w->err)
		return w->err;
	if (type == 0)
		return wfail(w, -EINVAL, "section %u: type 0 is invalid", w->nsec);
	if (record_size && len % record_size)
		return wfail(w, -EINVAL, "section %u (%s): length %zu is not a multiple "
			     "of the record size %u", w->nsec, lx_section_name(type),
			     len, record_size);
	ret = grow_sections(w);
	if (ret)
		return ret;
	ret = pwrite_all(w->fd, data, len, off);
	if (ret)
		return wfail(w, ret, "writing section %u (%s) at offset %llu",
			     w->nsec, lx_section_name(type), (unsigned long long)off);
	s = &w->sec[w->nsec++];
	s->type = type;
	s->task = task;
	s->offset = off;
	s->length = len;
	s->record_size = record_size;
	/* packed pages: the crc covers the directory, pages have their own sums */
	s->crc = crc32c(data, type == LX_SEC_PACKED_PAGES ? lx_packed_crc_len(data, len) : len);
	/* the gap stays a hole, which reads as the zero padding */
	w->off = align8(off + len);
	return 0;
}

uint32_t img_crc(const void *buf, size_t len)
{
	return crc32c(buf, len);
}

int img_reserve(struct img_writer *w, uint32_t type, uint32_t task, uint64_t len,
		uint64_t *off, uint32_t *index)
{
	struct lx_ckpt_section *s;
	int ret;

	if (w->err)
		return w->err;
	ret = grow_sections(w);
	if (ret)
		return ret;
	*off = w->off;
	*index = w->nsec;
	s = &w->sec[w->nsec++];
	s->type = type;
	s->task = task;
	s->offset = w->off;
	s->length = len;
	s->record_size = 0;
	s->crc = 0;
	w->off = align8(w->off + len);
	return 0;
}

int img_write_at(struct img_writer *w, uint32_t index, uint64_t at, const void *data,
		 size_t len)
{
	const struct lx_ckpt_section *s = &w->sec[index];
	int ret;

	if (w->err)
		return w->err;
	if (index >= w->nsec || at > s->length || len > s->length - at)
		return wfail(w, -EINVAL, "section %u: write of %zu bytes at %llu, beyond it",
			     index, len, (unsigned long long)at);
	ret = pwrite_all(w->fd, data, len, s->offset + at);
	if (ret)
		return wfail(w, ret, "writing section %u (%s) at offset %llu", index,
			     lx_section_name(s->type), (unsigned long long)(s->offset + at));
	return 0;
}

void img_set_crc(struct img_writer *w, uint32_t index, uint32_t crc)
{
	if (index < w->nsec)
		w->sec[index].crc = crc;
}

static struct strtab *strtab_get(struct img_writer *w, uint32_t task)
{
	struct strtab *t;
	size_t i;

	for (i = w->nst; i-- > 0;)
		if (w->st[i].task == task)
			return &w->st[i];
	t = realloc(w->st, (w->nst + 1) * sizeof(*t));
	if (!t) {
		wfail(w, -ENOMEM, "string table");
		return NULL;
	}
	w->st = t;
	t = &w->st[w->nst];
	memset(t, 0, sizeof(*t));
	t->task = task;
	t->buf = calloc(1, 64);
	if (!t->buf) {
		wfail(w, -ENOMEM, "string table");
		return NULL;
	}
	t->cap = 64;
	t->len = 1;		/* offset 0: "" */
	w->nst++;
	return t;
}

static uint32_t *strtab_probe(const struct strtab *t, const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	i = h & (t->nslot - 1);
	while (t->slot[i] && strcmp(t->buf + t->slot[i], s))
		i = (i + 1) & (t->nslot - 1);
	return &t->slot[i];
}

static int strtab_rehash(struct strtab *t)
{
	uint32_t *old = t->slot;
	size_t oldn = t->nslot, i;
	const char *s;

	t->slot = calloc(oldn ? oldn * 2 : 64, sizeof(*t->slot));
	if (!t->slot) {
		t->slot = old;
		return -ENOMEM;
	}
	t->nslot = oldn ? oldn * 2 : 64;
	for (i = 0; i < oldn; i++) {
		if (!old[i])
			continue;
		s = t->buf + old[i];
		*strtab_probe(t, s, strlen(s)) = old[i];
	}
	free(old);
	return 0;
}

static int strtab_append(struct strtab *t, const char *s, size_t n)
{
	size_t cap = t->cap;
	char *b;

	if (t->len + n + 1 > UINT32_MAX)
		return -E2BIG;
	while (cap < t->len + n + 1)
		cap *= 2;
	if (cap != t->cap) {
		b = realloc(t->buf, cap);
		if (!b)
			return -ENOMEM;
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n + 1);
	t->len += n + 1;
	return 0;
}

uint32_t img_str(struct img_writer *w, uint32_t task, const char *s)
{
	struct strtab *t;
	uint32_t *slot, off;
	size_t n;
	int ret;

	if (w->err)
		return 0;
	t = strtab_get(w, task);	/* even for "": readers expect the table */
	if (!t || !s || !*s)
		return 0;
	if ((t->used + 1) * 2 > t->nslot && strtab_rehash(t)) {
		wfail(w, -ENOMEM, "string table");
		return 0;
	}
	n = strlen(s);
	slot = strtab_probe(t, s, n);
	if (*slot)
		return *slot;
	off = (uint32_t)t->len;
	ret = strtab_append(t, s, n);
	if (ret) {
		wfail(w, ret, "string table of task %u", task);
		return 0;
	}
	*slot = off;
	t->used++;
	return off;
}

int img_set_exe(struct img_writer *w, const char *path, const struct exe_ident *id)
{
	size_t n = path ? strlen(path) : 0;

	if (w->err)
		return w->err;
	if (!n || n >= LX_CKPT_PATH_MAX)
		return wfail(w, -EINVAL, "executable path of %zu bytes", n);
	if (id && id->build_id_len > LX_CKPT_BUILD_ID_MAX)
		return wfail(w, -EINVAL, "build-id of %u bytes", id->build_id_len);
	free(w->exe);
	w->exe = strdup(path);
	if (!w->exe)
		return wfail(w, -ENOMEM, "executable path");
	memset(&w->exe_id, 0, sizeof(w->exe_id));
	if (id)
		w->exe_id = *id;
	return 0;
}

/* The exe path goes into the global string table, which therefore always
 * exists: that also guarantees the non-empty table the validator wants. */
static int write_strtabs(struct img_writer *w)
{
	uint32_t exe_str = img_str(w, LX_TASK_GLOBAL, w->exe);
	size_t i;
	int ret;

	if (w->err)
		return w->err;
	for (i = 0; i < w->nst; i++) {
		struct strtab *t = &w->st[i];

		ret = img_add(w, LX_SEC_STRTAB, t->task, 0, t->buf, t->len);
		if (ret)
			return ret;
		if (t->task == LX_TASK_GLOBAL)
			w->exe_off = w->sec[w->nsec - 1].offset + exe_str;
	}
	return 0;
}

static int write_table(struct img_writer *w, uint64_t *off, uint32_t *crc)
{
	size_t len = (size_t)w->nsec * sizeof(struct lx_ckpt_section);
	struct lx_ckpt_section *t = malloc(len);
	uint32_t i;
	int ret;

	if (!t)
		return wfail(w, -ENOMEM, "section table");
	for (i = 0; i < w->nsec; i++) {
		t[i].type = lx_cpu_to_le32(w->sec[i].type);
		t[i].task = lx_cpu_to_le32(w->sec[i].task);
		t[i].offset = lx_cpu_to_le64(w->sec[i].offset);
		t[i].length = lx_cpu_to_le64(w->sec[i].length);
		t[i].record_size = lx_cpu_to_le32(w->sec[i].record_size);
		t[i].crc = lx_cpu_to_le32(w->sec[i].crc);
	}
	*off = w->off;
	*crc = crc32c(t, len);
	ret = pwrite_all(w->fd, t, len, *off);
	free(t);
	if (ret)
		return wfail(w, ret, "writing the section table at offset %llu",
			     (unsigned long long)*off);
	w->off += len;
	return 0;
}

static void fill_header(const struct img_writer *w, struct lx_ckpt_header *h,
			uint64_t table_off, uint32_t table_crc)
{
	const struct exe_ident *id = &w->exe_id;

	memset(h, 0, sizeof(*h));
	memset(h->prelude, ' ', LX_CKPT_PRELUDE_LEN);
	memcpy(h->prelude, LX_CKPT_PRELUDE, sizeof(LX_CKPT_PRELUDE) - 1);
	h->prelude[LX_CKPT_PRELUDE_LEN - 1] = '\n';
	h->abi_id = lx_cpu_to_le32(LX_CKPT_ABI_ID);
	h->version_major = lx_cpu_to_le16(LX_CKPT_VERSION_MAJOR);
	h->version_minor = lx_cpu_to_le16(LX_CKPT_VERSION_MINOR);
	h->header_size = lx_cpu_to_le32(LX_CKPT_HEADER_SIZE);
	h->arch = lx_cpu_to_le32(LX_CKPT_ARCH_X86_64);
	h->flags = lx_cpu_to_le32(LX_CKPT_F_SWAPFILE);
	for (uint32_t i = 0; i < w->nsec; i++)
		if (w->sec[i].type == LX_SEC_PACKED_PAGES)	/* cryo pack */
			h->flags = lx_cpu_to_le32(LX_CKPT_F_PACKED);
	h->page_size = lx_cpu_to_le32(LX_CKPT_PAGE_SIZE);
	h->section_count = lx_cpu_to_le32(w->nsec);
	h->section_entry_size = lx_cpu_to_le32(sizeof(struct lx_ckpt_section));
	h->section_table_offset = lx_cpu_to_le64(table_off);
	h->image_size = lx_cpu_to_le64(w->off);
	h->exe_path_offset = lx_cpu_to_le64(w->exe_off);
	h->exe_path_len = lx_cpu_to_le32((uint32_t)strlen(w->exe));
	h->exe_build_id_len = lx_cpu_to_le32(id->build_id_len);
	h->exe_dev = lx_cpu_to_le64(id->dev);
	h->exe_ino = lx_cpu_to_le64(id->ino);
	h->exe_size = lx_cpu_to_le64(id->size);
	h->exe_mtime_ns = lx_cpu_to_le64(id->mtime_ns);
	memcpy(h->exe_build_id, id->build_id, id->build_id_len);
	h->table_crc = lx_cpu_to_le32(table_crc);
	h->header_crc = lx_cpu_to_le32(lx_ckpt_header_crc(h));
}

static int write_header(struct img_writer *w)
{
	struct lx_ckpt_header h;
	uint64_t table_off = 0;
	uint32_t table_crc = 0;
	int ret;

	ret = write_table(w, &table_off, &table_crc);
	if (ret)
		return ret;
	fill_header(w, &h, table_off, table_crc);
	ret = pwrite_all(w->fd, &h, sizeof(h), 0);
	if (ret)
		return wfail(w, ret, "writing the header");
	return 0;
}

/* Some filesystems cannot fsync a directory (EINVAL); nothing to do there. */
static int fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, ret = 0;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, slash - path);
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		ret = -errno;
	else if (fsync(fd) && errno != EINVAL)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/* Give the O_TMPFILE a (temporary, random, never pre-existing) name:
 * linkat never follows a symlink at the new path, it fails with EEXIST. */
static int link_anon(struct img_writer *w)
{
	char *suffix = w->tmp + strlen(w->tmp) - 6, proc[64];
	int tries, ret = -EEXIST;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	for (tries = 0; tries < 100 && ret == -EEXIST; tries++) {
		fill_random_suffix(suffix, 6);
		ret = 0;
		if (linkat(AT_FDCWD, proc, AT_FDCWD, w->tmp, AT_SYMLINK_FOLLOW) &&
		    linkat(w->fd, "", AT_FDCWD, w->tmp, AT_EMPTY_PATH))
			ret = -errno;
	}
	if (ret)
		return wfail(w, ret, "linking the new image as %s", w->tmp);
	w->linked = 1;
	return 0;
}

static int publish(struct img_writer *w)
{
	int ret;

	if (fsync(w->fd))
		return wfail(w, -errno, "fsync of %s", w->tmp);
	if (w->anon && link_anon(w))
		return w->err;
	ret = close(w->fd);
	w->fd = -1;
	if (ret)
		return wfail(w, -errno, "closing %s", w->tmp);
	if (rename(w->tmp, w->path))
		return wfail(w, -errno, "renaming %s over it", w->tmp);
	free(w->tmp);
	w->tmp = NULL;
	ret = fsync_dir_of(w->path);
	if (ret)
		return err_sys(ret, "image %s: written, but syncing its directory failed, "
			       "so it may not survive a crash", w->path);
	return 0;
}

int img_commit(struct img_writer *w)
{
	int ret = w->err;

	if (!ret && !w->exe)
		ret = wfail(w, -EINVAL, "no executable recorded (img_set_exe not called)");
	if (!ret)
		ret = write_strtabs(w);
	if (!ret)
		ret = write_header(w);
	if (!ret)
		ret = publish(w);
	free_writer(w);
	return ret;
}

void img_abort(struct img_writer *w)
{
	if (w)
		free_writer(w);
}

/* ---- reader ---- */

static int load(struct img *im, int fd)
{
	struct stat st;
	int64_t got;

	if (fstat(fd, &st))
		return err_sys(-errno, "image %s: stat", im->path);
	if (!S_ISREG(st.st_mode))
		return err_set(-EINVAL, "image %s: not a regular file", im->path);
	if ((uint64_t)st.st_size > IMG_MAX_MAPPED)
		return err_set(-EFBIG, "image %s: %llu bytes, more than the 1 TiB "
			       "an image may have (not an image, or corrupt)",
			       im->path, (unsigned long long)st.st_size);
	if ((uint64_t)st.st_size > IMG_MAX_SIZE || getenv("CRYO_IMG_MAP")) {
		/* private and writable like a malloc'ed copy; pages come in as
		 * they are used (a restore reads each packed page once) */
		void *p = mmap(NULL, st.st_size ? st.st_size : 1, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_NORESERVE, fd, 0);

		if (p == MAP_FAILED)
			return err_sys(-errno, "image %s: map %llu bytes", im->path,
				       (unsigned long long)st.st_size);
		im->data = p;
		im->mapped = st.st_size ? st.st_size : 1;
		im->size = (uint64_t)st.st_size;
		return 0;
	}
	im->data = malloc(st.st_size ? st.st_size : 1);
	if (!im->data)
		return err_set(-ENOMEM, "image %s: out of memory for %llu bytes",
			       im->path, (unsigned long long)st.st_size);
	/* pread: an AT_EXECFD's offset is whatever the kernel left */
	got = pread_all(fd, im->data, st.st_size, 0);
	if (got < 0)
		return err_sys((int)got, "image %s: read", im->path);
	if (got < st.st_size)
		return err_set(-EIO, "image %s: truncated while reading: "
			       "got %lld of %lld bytes", im->path,
			       (long long)got, (long long)st.st_size);
	im->size = (uint64_t)got;
	return 0;
}

static int check_header(struct img *im)
{
	const struct lx_ckpt_header *h = (const void *)im->data;
	uint64_t claimed, path_off;
	int ret;

	ret = lx_ckpt_validate_header(im->data, im->size, im->size);
	if (ret == -LX_E_SHORT)
		return err_set(-EINVAL, "image %s: header: %s (file has %llu bytes)",
			       im->path, lx_ckpt_strerror(ret),
			       (unsigned long long)im->size);
	/* the validator checks the size only after the header CRC, so a
	 * mismatch here is a real truncation, not a corrupt size field */
	claimed = lx_le64_to_cpu(h->image_size);
	if (ret == -LX_E_TABLE_BOUNDS && claimed != im->size)
		return err_set(-EINVAL, "image %s: %s: header says %llu bytes, file has %llu",
			       im->path, claimed > im->size ? "truncated" : "trailing data",
			       (unsigned long long)claimed, (unsigned long long)im->size);
	if (ret)
		return err_set(-EINVAL, "image %s: header: %s", im->path,
			       lx_ckpt_strerror(ret));
	path_off = lx_le64_to_cpu(h->exe_path_offset);
	if (memchr(im->data + path_off, 0, lx_le32_to_cpu(h->exe_path_len)))
		return err_set(-EINVAL, "image %s: header: executable path at offset %llu "
			       "contains a NUL byte", im->path,
			       (unsigned long long)path_off);
	im->hdr = h;
	return 0;
}

static void entry_to_cpu(struct lx_ckpt_section *d, const uint8_t *raw)
{
	struct lx_ckpt_section s;

	memcpy(&s, raw, sizeof(s));
	d->type = lx_le32_to_cpu(s.type);
	d->task = lx_le32_to_cpu(s.task);
	d->offset = lx_le64_to_cpu(s.offset);
	d->length = lx_le64_to_cpu(s.length);
	d->record_size = lx_le32_to_cpu(s.record_size);
	d->crc = lx_le32_to_cpu(s.crc);
}

static int check_table(struct img *im)
{
	const struct lx_ckpt_header *h = im->hdr;
	uint64_t toff = lx_le64_to_cpu(h->section_table_offset);
	uint32_t n = lx_le32_to_cpu(h->section_count);
	uint32_t esz = lx_le32_to_cpu(h->section_entry_size);
	const uint8_t *t = im->data + toff;
	struct lx_ckpt_section *sec, bad;
	uint32_t i, bad_index = UINT32_MAX;
	int ret;

	ret = lx_ckpt_validate_table(h, t, (uint64_t)n * esz, im->size, &bad_index);
	if (ret && (ret == -LX_E_TABLE_CRC || ret == -LX_E_TABLE_BOUNDS ||
		    bad_index >= n))
		return err_set(-EINVAL, "image %s: section table at offset %llu: %s",
			       im->path, (unsigned long long)toff,
			       lx_ckpt_strerror(ret));
	if (ret) {
		entry_to_cpu(&bad, t + (uint64_t)bad_index * esz);
		return err_set(-EINVAL, "image %s: section %u (%s) at offset %llu: %s",
			       im->path, bad_index, lx_section_name(bad.type),
			       (unsigned long long)bad.offset, lx_ckpt_strerror(ret));
	}
	sec = calloc(n, sizeof(*sec));
	if (!sec)
		return err_set(-ENOMEM, "image %s: out of memory", im->path);
	for (i = 0; i < n; i++)
		entry_to_cpu(&sec[i], t + (uint64_t)i * esz);
	im->sec = sec;
	im->nsec = n;
	return 0;
}

static int check_sections(const struct img *im)
{
	const struct lx_ckpt_section *s;
	uint32_t i;

	for (i = 0; i < im->nsec; i++) {
		s = &im->sec[i];
		uint64_t len = s->type == LX_SEC_PACKED_PAGES ?
			lx_packed_crc_len(im->data + s->offset, s->length) : s->length;

		if (crc32c(im->data + s->offset, len) != s->crc)
			return err_set(-EINVAL, "image %s: section %u (%s) at offset %llu: "
				       "checksum mismatch", im->path, i,
				       lx_section_name(s->type),
				       (unsigned long long)s->offset);
	}
	return 0;
}

int img_open_fd(struct img *im, int fd, const char *name)
{
	int ret;

	memset(im, 0, sizeof(*im));
	if (!name)
		name = "(fd)";
	im->path = strdup(name);
	if (!im->path)
		return err_set(-ENOMEM, "image %s: out of memory", name);
	ret = load(im, fd);
	if (!ret)
		ret = check_header(im);
	if (!ret)
		ret = check_table(im);
	if (!ret)
		ret = check_sections(im);
	if (ret)
		img_close(im);
	return ret;
}

int img_open(struct img *im, const char *path)
{
	int fd, ret;

	memset(im, 0, sizeof(*im));
	/* O_NONBLOCK so a FIFO in place of an image fails instead of hanging */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "image %s: open", path);
	ret = img_open_fd(im, fd, path);
	close(fd);
	return ret;
}

void img_close(struct img *im)
{
	free(im->path);
	if (im->mapped)
		munmap(im->data, im->mapped);
	else
		free(im->data);
	free((void *)im->sec);
	memset(im, 0, sizeof(*im));
}

static int find_index(const struct img *im, uint32_t type, uint32_t task)
{
	uint32_t i;

	for (i = 0; i < im->nsec; i++)
		if (im->sec[i].type == type && im->sec[i].task == task)
			return (int)i;
	return -1;
}

/* -ENOENT records no message: absent sections are often optional. */
int img_find(const struct img *im, uint32_t type, uint32_t task,
	     const void **data, uint64_t *len, uint32_t *record_size)
{
	int i = find_index(im, type, task);

	if (i < 0)
		return -ENOENT;
	*data = im->data + im->sec[i].offset;
	*len = im->sec[i].length;
	if (record_size)
		*record_size = im->sec[i].record_size;
	return 0;
}

int img_records(const struct img *im, uint32_t type, uint32_t task,
		size_t want, size_t min_size, void **out, size_t *count)
{
	const struct lx_ckpt_section *s;
	const uint8_t *src;
	uint8_t *buf;
	size_t i, n, cp;
	int idx = find_index(im, type, task);

	*out = NULL;
	*count = 0;
	if (idx < 0)
		return -ENOENT;
	s = &im->sec[idx];
	if (!s->record_size || s->record_size < min_size || !want)
		return err_set(-EINVAL, "image %s: section %d (%s) at offset %llu: "
			       "record size %u, need at least %zu", im->path, idx,
			       lx_section_name(type), (unsigned long long)s->offset,
			       s->record_size, min_size ? min_size : 1);
	n = s->length / s->record_size;
	buf = calloc(n ? n : 1, want);
	if (!buf)
		return err_set(-ENOMEM, "image %s: section %d (%s): out of memory "
			       "for %zu records", im->path, idx,
			       lx_section_name(type), n);
	cp = s->record_size < want ? s->record_size : want;
	src = im->data + s->offset;
	for (i = 0; i < n; i++)
		memcpy(buf + i * want, src + i * s->record_size, cp);
	*out = buf;
	*count = n;
	return 0;
}

const char *img_string(const struct img *im, uint32_t task, uint32_t off)
{
	int idx = find_index(im, LX_SEC_STRTAB, task);
	const struct lx_ckpt_section *s;
	const char *base;
	char tb[16];

	if (idx < 0 && off == 0)
		return "";
	if (idx < 0) {
		err_set(-ENOENT, "image %s: no string table for task %s (string offset %u)",
			im->path, task_name(task, tb), off);
		return NULL;
	}
	s = &im->sec[idx];
	base = (const char *)im->data + s->offset;
	if (off >= s->length || !memchr(base + off, 0, s->length - off)) {
		err_set(-EINVAL, "image %s: section %d (strtab) at offset %llu: "
			"string offset %u %s (table has %llu bytes)", im->path, idx,
			(unsigned long long)s->offset, off,
			off >= s->length ? "out of range" : "not NUL-terminated",
			(unsigned long long)s->length);
		return NULL;
	}
	return base + off;
}
