/* Unit tests for tools/cryo/image.c and tools/cryo/swap.c: round trips,
 * corruption and truncation detection, crash behaviour of the swapfile.
 * Prints TAP lines; exits non-zero if any check fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "err.h"
/* image.h nests a comment opener in a comment (-Wcomment) */
#include "image.h"
#include "swap.h"

static int ntest, nfail;
static char dir[256];

static void check(int ok, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check(int ok, int line, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", ++ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		printf("\n#   line %d; last error: %s", line, err_msg());
		nfail++;
	}
	putchar('\n');
	fflush(stdout);
}
#define CHECK(cond, ...) check(!!(cond), __LINE__, __VA_ARGS__)

/* The call must fail and its message must contain want. */
#define CHECK_ERR(expr, want, ...) do {					\
	int r_;								\
	err_clear();							\
	r_ = (expr);							\
	check(r_ < 0 && strstr(err_msg(), (want)) != NULL, __LINE__,	\
	      __VA_ARGS__);						\
	if (r_ < 0)							\
		printf("#   -> %s\n", err_msg());			\
} while (0)

/* Rotating buffers: callers that keep a path copy it. */
static char *tpath(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		abort();
	b = malloc(st.st_size + 1);
	if (!b || read(fd, b, st.st_size) != st.st_size)
		abort();
	close(fd);
	*len = st.st_size;
	return b;
}

static void spit(const char *path, const void *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, b, len) != (ssize_t)len)
		abort();
	close(fd);
}

static int count_temps(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n += strstr(e->d_name, ".tmp") != NULL;
	closedir(d);
	return n;
}

/* ---- image fixtures ---- */

struct rec16 {
	uint64_t a, b;
};

static const char argv_blob[] = "prog\0-vv";	/* 9 bytes with the NUL */
static uint32_t off_cwd, off_exe, off_vma, off_swap;

static void fill_ident(struct exe_ident *id)
{
	uint32_t i;

	memset(id, 0, sizeof(*id));
	id->dev = 0x803;
	id->ino = 123456;
	id->size = 98765;
	id->mtime_ns = 1700000000123456789ull;
	id->build_id_len = 20;
	for (i = 0; i < id->build_id_len; i++)
		id->build_id[i] = (uint8_t)(0xa0 + i);
}

static int write_sample(const char *path)
{
	struct img_writer *w;
	struct lx_task tasks[2] = { { .pid = 100, .nr_threads = 1, .flags = LX_TASK_ROOT },
				    { .pid = 101, .ppid = 100, .nr_threads = 2 } };
	struct lx_core core = { .pid = 100 };
	struct lx_vma vmas[3] = { { .start = 0x400000, .end = 0x401000, .kind = LX_VMA_FILE_PRIVATE },
				  { .start = 0x600000, .end = 0x602000, .kind = LX_VMA_ANON },
				  { .start = 0x7ff000, .end = 0x800000, .kind = LX_VMA_ANON } };
	uint64_t sums[5] = { 1, 2, 3, 4, 0xffffffffffffffffull };
	struct rec16 recs[3] = { { 1, 2 }, { 3, 4 }, { 5, 6 } };
	struct exe_ident id;
	int ret;

	fill_ident(&id);
	ret = img_create(&w, path);
	if (ret)
		return ret;
	off_cwd = img_str(w, 0, "/home/x");
	off_exe = img_str(w, 0, "/bin/prog");
	off_vma = img_str(w, 0, "/bin/prog");
	off_swap = img_str(w, LX_TASK_GLOBAL, "pages.swap");
	img_str(w, 1, "");
	core.cwd_off = off_cwd;
	core.exe_off = off_exe;
	vmas[0].path_off = off_vma;
	img_add(w, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(tasks[0]), tasks, sizeof(tasks));
	img_add(w, LX_SEC_CORE, 0, sizeof(core), &core, sizeof(core));
	img_add(w, LX_SEC_VMAS, 0, sizeof(vmas[0]), vmas, sizeof(vmas));
	img_add(w, LX_SEC_ARGV, 0, 0, argv_blob, sizeof(argv_blob));
	img_add(w, LX_SEC_PAGESUMS, 0, 8, sums, sizeof(sums));
	img_add(w, LX_SEC_AUXV, 1, 0, "", 0);
	img_add(w, LX_SEC_ITIMERS, 1, sizeof(recs[0]), recs, sizeof(recs));
	/* a section type from a newer minor version */
	ret = img_add(w, 99, LX_TASK_GLOBAL, 0, "future", 6);
	if (!ret)
		ret = img_set_exe(w, "/usr/bin/prog", &id);
	if (ret) {
		img_abort(w);
		return ret;
	}
	return img_commit(w);
}

/* ---- image tests ---- */

static void test_header(const struct img *im, const char *path)
{
	const struct lx_ckpt_header *h = im->hdr;
	struct exe_ident id;
	struct stat st;

	fill_ident(&id);
	stat(path, &st);
	CHECK((st.st_mode & 07777) == 0600, "image mode is 0600 (is %o)", st.st_mode & 07777);
	CHECK(count_temps() == 0, "no temporary file left behind");
	CHECK(!memcmp(h->prelude, LX_CKPT_PRELUDE, sizeof(LX_CKPT_PRELUDE) - 1) &&
	      h->prelude[LX_CKPT_PRELUDE_LEN - 1] == '\n' &&
	      !memchr(h->prelude, 0, LX_CKPT_PRELUDE_LEN),
	      "prelude: shell line, spaces, newline, no NUL");
	CHECK(lx_le32_to_cpu(h->flags) == LX_CKPT_F_SWAPFILE &&
	      lx_le32_to_cpu(h->page_size) == 4096 &&
	      lx_le64_to_cpu(h->image_size) == (uint64_t)st.st_size &&
	      lx_le32_to_cpu(h->section_entry_size) == sizeof(struct lx_ckpt_section),
	      "header flags, page size, image size, entry size");
	CHECK(lx_le32_to_cpu(h->exe_path_len) == 13 &&
	      !memcmp(im->data + lx_le64_to_cpu(h->exe_path_offset), "/usr/bin/prog", 13),
	      "exe path stored in the file");
	CHECK(lx_le64_to_cpu(h->exe_dev) == id.dev && lx_le64_to_cpu(h->exe_ino) == id.ino &&
	      lx_le64_to_cpu(h->exe_size) == id.size &&
	      lx_le64_to_cpu(h->exe_mtime_ns) == id.mtime_ns &&
	      lx_le32_to_cpu(h->exe_build_id_len) == 20 &&
	      !memcmp(h->exe_build_id, id.build_id, 20),
	      "exe identity in the header");
}

static void test_sections(const struct img *im)
{
	const void *d;
	uint64_t len;
	uint32_t rs, i;
	int crc_ok = 1, align_ok = 1;

	for (i = 0; i < im->nsec; i++) {
		const struct lx_ckpt_section *s = &im->sec[i];

		align_ok &= s->offset % 8 == 0;
		crc_ok &= lx_crc32c(0, im->data + s->offset, s->length) == s->crc;
	}
	CHECK(align_ok, "every section is 8-aligned");
	CHECK(crc_ok, "section CRCs agree with the reference lx_crc32c");
	CHECK(!img_find(im, LX_SEC_ARGV, 0, &d, &len, &rs) && len == sizeof(argv_blob) &&
	      rs == 0 && !memcmp(d, argv_blob, len), "blob section round-trips");
	CHECK(!img_find(im, LX_SEC_AUXV, 1, &d, &len, NULL) && len == 0,
	      "empty section round-trips");
	CHECK(!img_find(im, 99, LX_TASK_GLOBAL, &d, &len, NULL) && len == 6 &&
	      !memcmp(d, "future", 6), "unknown section type is kept");
	CHECK(!img_find(im, LX_SEC_PAGESUMS, 0, &d, &len, &rs) && len == 40 && rs == 8 &&
	      ((const uint64_t *)d)[4] == 0xffffffffffffffffull, "record section round-trips");
	CHECK(img_find(im, LX_SEC_PAGESUMS, 1, &d, &len, &rs) == -ENOENT,
	      "img_find: absent (type, task) is -ENOENT");
}

static void test_strings(const struct img *im)
{
	struct lx_core *core = NULL;
	struct lx_vma *vma = NULL;
	const char *s;
	size_t n = 0, nv = 0;

	CHECK(off_exe == off_vma && off_cwd && off_exe != off_cwd,
	      "img_str deduplicates identical strings");
	CHECK(!img_records(im, LX_SEC_CORE, 0, sizeof(*core), sizeof(*core),
			   (void **)&core, &n) && n == 1 && core->pid == 100,
	      "core record read back");
	CHECK(!img_records(im, LX_SEC_VMAS, 0, sizeof(*vma), sizeof(*vma),
			   (void **)&vma, &nv) && nv == 3 && vma[2].start == 0x7ff000,
	      "vma records read back");
	s = core ? img_string(im, 0, core->cwd_off) : NULL;
	CHECK(s && !strcmp(s, "/home/x"), "string via core->cwd_off");
	s = vma ? img_string(im, 0, vma[0].path_off) : NULL;
	CHECK(s && !strcmp(s, "/bin/prog"), "string via vma->path_off");
	s = img_string(im, LX_TASK_GLOBAL, off_swap);
	CHECK(s && !strcmp(s, "pages.swap"), "global string");
	s = img_string(im, 1, 0);
	CHECK(s && !*s, "offset 0 is the empty string");
	s = img_string(im, 7, 0);
	CHECK(s && !*s, "offset 0 without a table is still the empty string");
	err_clear();
	CHECK(!img_string(im, 0, 100000) && strstr(err_msg(), "strtab"),
	      "out-of-range string offset fails naming the strtab");
	err_clear();
	CHECK(!img_string(im, 7, 3) && strstr(err_msg(), "no string table"),
	      "string of a task without a table fails");
	free(core);
	free(vma);
}

static void test_records(const struct img *im)
{
	uint8_t *r = NULL, zero[8] = { 0 };
	size_t n = 0;
	int ok;

	ok = !img_records(im, LX_SEC_ITIMERS, 1, 24, 8, (void **)&r, &n) && n == 3;
	CHECK(ok, "16-byte records read as 24-byte structs");
	if (ok) {
		struct rec16 x;

		memcpy(&x, r + 2 * 24, 16);
		CHECK(x.a == 5 && x.b == 6 && !memcmp(r + 24 + 16, zero, 8) &&
		      !memcmp(r + 2 * 24 + 16, zero, 8), "records copied and zero-extended");
	}
	free(r);
	r = NULL;
	ok = !img_records(im, LX_SEC_ITIMERS, 1, 8, 8, (void **)&r, &n) && n == 3;
	CHECK(ok && ((uint64_t *)r)[2] == 5, "records truncated to a smaller struct");
	free(r);
	CHECK_ERR(img_records(im, LX_SEC_ITIMERS, 1, 24, 20, (void **)&r, &n),
		  "(itimers)", "record size below min_size is an error naming the section");
	CHECK_ERR(img_records(im, LX_SEC_ARGV, 0, 8, 8, (void **)&r, &n),
		  "(argv)", "records of a blob section is an error");
	CHECK(img_records(im, LX_SEC_FDS, 0, 8, 8, (void **)&r, &n) == -ENOENT,
	      "records of a missing section is -ENOENT");
}

static void test_prelude_runs(const char *path)
{
	char cmd[700];
	int st;

	snprintf(cmd, sizeof(cmd), "PATH=/nonexistent /bin/sh '%s' 2>/dev/null", path);
	st = system(cmd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 126,
	      "sh runs the prelude: exit 126 without cryo (status %d)", st);
}

static void test_open_fd(const char *path)
{
	struct img im;
	int fd = open(path, O_RDONLY);
	int ok;

	lseek(fd, 1000, SEEK_SET);
	ok = !img_open_fd(&im, fd, "execfd");
	CHECK(ok && im.nsec > 0, "img_open_fd ignores the file offset");
	if (ok)
		img_close(&im);
	close(fd);
}

static void flip_expect(const uint8_t *orig, size_t len, size_t at, const char *want,
			const char *what)
{
	uint8_t *b = malloc(len);
	struct img im;

	memcpy(b, orig, len);
	b[at] ^= 0x40;
	spit(tpath("bad"), b, len);
	free(b);
	CHECK_ERR(img_open(&im, tpath("bad")), want, "flipped byte %zu (%s) detected", at, what);
}

static void test_corruption(const char *path)
{
	const struct lx_ckpt_header *h;
	struct lx_ckpt_section *t;
	struct img im, bad;
	uint64_t toff;
	uint8_t *b;
	size_t len;
	char want[128];
	uint32_t i;

	if (img_open(&im, path))
		return;
	b = slurp(path, &len);
	for (i = 0; i < im.nsec; i++) {
		const struct lx_ckpt_section *s = &im.sec[i];

		if (!s->length)
			continue;
		snprintf(want, sizeof(want), "section %u (%s) at offset %llu: checksum mismatch",
			 i, lx_section_name(s->type), (unsigned long long)s->offset);
		flip_expect(b, len, s->offset + s->length / 2, want, lx_section_name(s->type));
	}
	h = (const void *)b;
	toff = lx_le64_to_cpu(h->section_table_offset);
	flip_expect(b, len, toff + 9, "section table at offset", "table");
	flip_expect(b, len, 0, "header: not a cryo image", "magic");
	flip_expect(b, len, 60, "header: header checksum mismatch", "prelude");
	flip_expect(b, len, offsetof(struct lx_ckpt_header, exe_ino),
		    "header: header checksum mismatch", "exe_ino");
	flip_expect(b, len, lx_le64_to_cpu(h->exe_path_offset) + 2, "(strtab)", "exe path");

	/* a bad entry under a valid table CRC: the validator names it */
	t = (void *)(b + toff);
	t[3].offset = lx_cpu_to_le64(lx_le64_to_cpu(t[3].offset) + 4);
	((struct lx_ckpt_header *)b)->table_crc =
		lx_cpu_to_le32(lx_crc32c(0, t, (size_t)im.nsec * sizeof(*t)));
	((struct lx_ckpt_header *)b)->header_crc = lx_cpu_to_le32(lx_ckpt_header_crc(h));
	spit(tpath("bad"), b, len);
	snprintf(want, sizeof(want), "section 3 (%s) at offset %llu: section misaligned",
		 lx_section_name(im.sec[3].type), (unsigned long long)im.sec[3].offset + 4);
	CHECK_ERR(img_open(&bad, tpath("bad")), want, "misaligned entry 3 named by the validator");
	free(b);
	img_close(&im);
}

static void test_truncation(const char *path)
{
	static const size_t cut[] = { 0, 1, 255 };
	const struct lx_ckpt_header *h;
	size_t len, i, at[5];
	uint8_t *b = slurp(path, &len);

	h = (const void *)b;
	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		struct img im;

		spit(tpath("cut"), b, cut[i]);
		CHECK_ERR(img_open(&im, tpath("cut")), "shorter than the 256-byte header",
			  "truncated to %zu bytes", cut[i]);
	}
	at[0] = 256;
	at[1] = 300;
	at[2] = lx_le64_to_cpu(h->section_table_offset);
	at[3] = len / 2;
	at[4] = len - 1;
	for (i = 0; i < 5; i++) {
		struct img im;

		spit(tpath("cut"), b, at[i]);
		CHECK_ERR(img_open(&im, tpath("cut")), "truncated: header says",
			  "truncated to %zu of %zu bytes", at[i], len);
	}
	b = realloc(b, len + 8);
	memset(b + len, 0, 8);
	spit(tpath("cut"), b, len + 8);
	{
		struct img im;

		CHECK_ERR(img_open(&im, tpath("cut")), "trailing data", "extended by 8 bytes");
	}
	free(b);
}

static void test_writer_failures(const char *path)
{
	struct img_writer *w;
	struct rlimit old, lim;
	uint8_t *before, *after, *big;
	size_t blen, alen;
	struct img im;
	int ret;

	before = slurp(path, &blen);

	err_clear();
	ret = img_create(&w, path);
	CHECK(!ret, "img_create over an existing image");
	if (!ret) {
		img_add(w, LX_SEC_ARGV, 0, 0, "x", 1);
		CHECK_ERR(img_commit(w), "img_set_exe", "commit without img_set_exe fails");
	}
	CHECK(count_temps() == 0, "failed commit removed its temporary file");

	if (!img_create(&w, path)) {
		CHECK_ERR(img_add(w, LX_SEC_VMAS, 0, 16, "123456789", 9),
			  "record size 16", "length not a multiple of the record size");
		CHECK(img_commit(w) < 0 && count_temps() == 0,
		      "commit after a refused add fails and cleans up");
	}
	if (!img_create(&w, path)) {
		img_add(w, LX_SEC_ARGV, 0, 0, "new", 3);
		img_abort(w);
	}
	CHECK(count_temps() == 0, "img_abort removes the temporary file");

	/* a full disk, approximated by RLIMIT_FSIZE (EFBIG instead of ENOSPC) */
	big = calloc(1, 256 << 10);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 64 << 10;
	signal(SIGXFSZ, SIG_IGN);
	ret = img_create(&w, path);
	if (!ret) {
		setrlimit(RLIMIT_FSIZE, &lim);
		CHECK_ERR(img_add(w, LX_SEC_PAGESUMS, 0, 8, big, 256 << 10),
			  "earlier image (if any) is untouched", "write error names the image");
		setrlimit(RLIMIT_FSIZE, &old);
		CHECK(img_commit(w) < 0, "commit after a write error fails");
	}
	signal(SIGXFSZ, SIG_DFL);
	free(big);
	CHECK(count_temps() == 0, "no temporary file after a write error");
	after = slurp(path, &alen);
	CHECK(alen == blen && !memcmp(before, after, blen) && !img_open(&im, path),
	      "earlier image untouched and valid");
	img_close(&im);
	free(before);
	free(after);

	CHECK_ERR(img_create(&w, tpath("nodir/img")), "nodir/img",
		  "img_create in a missing directory names the path");
}

static void test_reader_refusals(void)
{
	struct img im;
	int fd;

	fd = open(tpath("huge"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (ftruncate(fd, (1ll << 30) + 1))
		abort();
	close(fd);
	/* above 1 GiB the reader maps instead of reading: the header refuses it */
	CHECK_ERR(img_open(&im, tpath("huge")), "no LX_CKPT magic",
		  "a file over 1 GiB is mapped and refused by its header");
	fd = open(tpath("huge"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (ftruncate(fd, (1ll << 40) + 1))
		abort();
	close(fd);
	CHECK_ERR(img_open(&im, tpath("huge")), "1 TiB", "images over 1 TiB refused");
	unlink(tpath("huge"));
	unlink(tpath("huge"));
	mkfifo(tpath("fifo"), 0600);
	CHECK_ERR(img_open(&im, tpath("fifo")), "not a regular file", "a FIFO is refused");
	CHECK_ERR(img_open(&im, tpath("missing")), "missing", "missing image names the path");
}

static void test_image(void)
{
	char path[512];
	struct img im;
	int ret;

	snprintf(path, sizeof(path), "%s", tpath("out.img"));
	err_clear();
	ret = write_sample(path);
	CHECK(!ret, "write an image with sections, strings and exe fields");
	ret = ret ? ret : img_open(&im, path);
	CHECK(!ret, "img_open of the written image");
	if (ret)
		return;
	test_header(&im, path);
	test_sections(&im);
	test_strings(&im);
	test_records(&im);
	img_close(&im);
	test_prelude_runs(path);
	test_open_fd(path);
	test_corruption(path);
	test_truncation(path);
	test_writer_failures(path);
	test_reader_refusals();
}

/* ---- swapfile tests ---- */

static void fill_page(uint8_t *p, unsigned int seed)
{
	unsigned int i;

	for (i = 0; i < SWAP_PAGE; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static int pages_ok(struct swapfile *sw, uint64_t first, size_t n, unsigned int seed0)
{
	uint8_t *buf = malloc(n * SWAP_PAGE), want[SWAP_PAGE];
	size_t i;
	int ok = !swap_read(sw, first, n, buf);

	for (i = 0; ok && i < n; i++) {
		fill_page(want, seed0 + i);
		ok = !memcmp(buf + i * SWAP_PAGE, want, SWAP_PAGE);
	}
	free(buf);
	return ok;
}

static int append_seeded(struct swapfile *sw, size_t n, unsigned int seed0, uint64_t *first)
{
	uint8_t *buf = malloc(n * SWAP_PAGE);
	size_t i;
	int ret;

	for (i = 0; i < n; i++)
		fill_page(buf + i * SWAP_PAGE, seed0 + i);
	ret = swap_append(sw, buf, n, first);
	free(buf);
	return ret;
}

static uint64_t sb_generation(const char *path, int which)
{
	uint64_t g;
	int fd = open(path, O_RDONLY);

	if (pread(fd, &g, 8, which * SWAP_PAGE + 32) != 8)
		g = 0;
	close(fd);
	return lx_le64_to_cpu(g);
}

static void test_swap_basic(const char *path)
{
	struct swapfile *sw;
	uint8_t uuid[16], zero[16] = { 0 };
	uint64_t first = 99;
	struct stat st;
	int ret;

	err_clear();
	ret = swap_open(&sw, path, 1);
	CHECK(!ret, "swap_open creates a swapfile");
	if (ret)
		return;
	stat(path, &st);
	CHECK((st.st_mode & 07777) == 0600 && st.st_size == SWAP_DATA_OFFSET,
	      "swapfile mode 0600, two superblocks");
	memcpy(uuid, swap_uuid(sw), 16);
	CHECK(memcmp(uuid, zero, 16) && swap_slots_end(sw) == 0, "fresh: uuid set, no slots");
	CHECK(!append_seeded(sw, 3, 0, &first) && first == 0, "append 3 pages at slot 0");
	CHECK_ERR(swap_read(sw, 0, 1, zero), "slot 0", "uncommitted slot is not readable");
	CHECK(!swap_commit(sw) && swap_slots_end(sw) == 3, "commit: 3 slots");
	CHECK(swap_next_snapshot(sw) == 1 && swap_next_snapshot(sw) == 2, "snapshot ids 1, 2");
	CHECK(!append_seeded(sw, 2, 3, &first) && first == 3, "append 2 pages at slot 3");
	CHECK(!swap_commit(sw) && swap_slots_end(sw) == 5, "commit: 5 slots");
	swap_close(sw);

	ret = swap_open(&sw, path, 0);
	CHECK(!ret, "reopen");
	if (ret)
		return;
	CHECK(swap_slots_end(sw) == 5 && !memcmp(swap_uuid(sw), uuid, 16),
	      "reopened: same uuid, 5 slots");
	CHECK(pages_ok(sw, 0, 5, 0), "all 5 pages read back");
	CHECK(pages_ok(sw, 3, 2, 3), "pages 3-4 read back alone");
	CHECK_ERR(swap_read(sw, 4, 2, uuid), "slot 4", "read past the end names the slot");
	CHECK(swap_next_snapshot(sw) == 3, "snapshot counter persisted");
	CHECK(!swap_commit(sw), "commit with no pages");
	swap_close(sw);
}

static void test_swap_crash(const char *path)
{
	struct swapfile *sw;
	uint64_t first, end;
	int ret;

	ret = swap_open(&sw, path, 0);
	if (ret)
		return;
	end = swap_slots_end(sw);
	CHECK(!append_seeded(sw, 2, 100, &first) && first == end, "append without commit");
	swap_close(sw);	/* the crash */
	ret = swap_open(&sw, path, 0);
	CHECK(!ret && swap_slots_end(sw) == end, "after the crash: end unchanged");
	if (ret)
		return;
	CHECK(pages_ok(sw, 0, end, 0), "earlier slots intact");
	CHECK(!append_seeded(sw, 1, end, &first) && first == end && !swap_commit(sw) &&
	      pages_ok(sw, 0, end + 1, 0), "next append reuses the uncommitted slots");
	swap_close(sw);
}

/* Leave superblock A current, then corrupt it: B's state must win. */
static void test_swap_fallback(const char *path)
{
	struct swapfile *sw;
	uint64_t first, end_b;
	uint8_t junk = 0x5a;
	int fd;

	if (swap_open(&sw, path, 0))
		return;
	if (sb_generation(path, 0) > sb_generation(path, 1)) {
		swap_next_snapshot(sw);
		swap_commit(sw);	/* now B is current */
	}
	end_b = swap_slots_end(sw);
	CHECK(!append_seeded(sw, 1, (unsigned int)end_b, &first) && !swap_commit(sw),
	      "commit into superblock A");
	CHECK(sb_generation(path, 0) == sb_generation(path, 1) + 1, "A is one generation ahead");
	swap_close(sw);
	fd = open(path, O_WRONLY);
	if (pwrite(fd, &junk, 1, 20) != 1)
		abort();
	close(fd);
	err_clear();
	CHECK(!swap_open(&sw, path, 0) && swap_slots_end(sw) == end_b && pages_ok(sw, 0, end_b, 0),
	      "corrupt superblock A: falls back to B (%llu slots)", (unsigned long long)end_b);
	swap_close(sw);
	fd = open(path, O_WRONLY);
	if (pwrite(fd, &junk, 1, SWAP_PAGE + 20) != 1)
		abort();
	close(fd);
	CHECK_ERR(swap_open(&sw, path, 0), path, "both superblocks corrupt: error names the file");
}

static void test_swap_lock(const char *path)
{
	struct swapfile *a, *b, *c;
	uint64_t fa, fc;

	if (swap_open(&a, path, 1) || swap_open(&b, path, 0) || swap_open(&c, path, 0))
		return;
	CHECK(!append_seeded(a, 2, 0, &fa) && fa == 0, "writer A appends");
	CHECK_ERR(append_seeded(b, 1, 0, &fc), "in use", "second writer refused while A appends");
	CHECK(!swap_commit(a), "writer A commits");
	CHECK(!append_seeded(c, 1, 2, &fc) && fc == 2 && !swap_commit(c),
	      "a writer opened earlier sees A's commit");
	swap_close(a);
	swap_close(b);
	swap_close(c);
}

static void test_swap_failures(const char *path)
{
	struct swapfile *sw;
	struct rlimit old, lim;
	uint64_t end, first;
	uint8_t junk[SWAP_DATA_OFFSET];

	if (swap_open(&sw, path, 1))
		return;
	end = swap_slots_end(sw);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = SWAP_DATA_OFFSET + (end + 1) * SWAP_PAGE;
	signal(SIGXFSZ, SIG_IGN);
	setrlimit(RLIMIT_FSIZE, &lim);
	CHECK_ERR(append_seeded(sw, 4, 500, &first), "stays valid",
		  "append past a size limit fails clearly");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	swap_close(sw);
	CHECK(!swap_open(&sw, path, 0) && swap_slots_end(sw) == end && pages_ok(sw, 0, end, 0),
	      "after the failed append the file is as committed");
	swap_close(sw);

	if (truncate(path, SWAP_DATA_OFFSET + SWAP_PAGE))
		abort();
	CHECK_ERR(swap_open(&sw, path, 0), "truncated", "truncated swapfile refused");

	memset(junk, 'x', sizeof(junk));
	spit(tpath("notswap"), junk, sizeof(junk));
	CHECK_ERR(swap_open(&sw, tpath("notswap"), 0), "no valid superblock", "not a swapfile");
	if (symlink(path, tpath("link")))
		abort();
	CHECK_ERR(swap_open(&sw, tpath("link"), 1), "symbolic link", "symlink refused");
	CHECK_ERR(swap_open(&sw, tpath("absent"), 0), "absent", "missing swapfile without create");
}

static void test_page_sum(void)
{
	uint8_t a[SWAP_PAGE], b[SWAP_PAGE];

	fill_page(a, 1);
	memcpy(b, a, sizeof(b));
	CHECK(page_sum(a) == XXH3_64bits(a, SWAP_PAGE) && page_sum(a) == page_sum(b),
	      "page_sum is XXH3-64 of the page");
	b[4095] ^= 1;
	CHECK(page_sum(a) != page_sum(b), "page_sum sees a one-bit change");
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char swp[512], lck[512];

	snprintf(dir, sizeof(dir), "%s/cryo-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(swp, sizeof(swp), "%s", tpath("pages.swap"));
	snprintf(lck, sizeof(lck), "%s", tpath("lock.swap"));
	test_image();
	test_page_sum();
	test_swap_basic(swp);
	test_swap_crash(swp);
	test_swap_fallback(swp);
	test_swap_lock(lck);
	test_swap_failures(lck);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	printf("1..%d\n", ntest);
	if (nfail)
		printf("# %d of %d checks failed\n", nfail, ntest);
	return nfail ? 1 : 0;
}
