// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * mkimage - write a minimal, valid cryo image (include/lx_ckpt.h) for
 * binfmt_cr tests, before cryo itself can dump: header + STRTAB/CORE/MM/
 * ARGV sections per task + a global TASKS section + the section table,
 * with every CRC computed by the ABI header's helpers. Optional damage
 * (--corrupt) produces the broken images the module must refuse; the
 * outputs are also usable as fuzz seeds.
 *
 * Not a checkpointer: the images hold no memory, registers or files.
 *
 *   mkimage -o OUT --exe PATH [--argv STR]... [--no-argv] [--forknoexec]
 *           [--mm ARG_START,ARG_END,ENV_START,ENV_END] [--no-mm]
 *           [--no-core] [--no-tasks] [--tasks N] [--child-exe PATH]
 *           [--ident-mismatch dev|ino|size|mtime] [--corrupt KIND]
 *           [--fuzz SEED]
 *
 * --fuzz SEED flips a few random bytes anywhere in the image, then fixes
 * every CRC it can still find (sections, table, header) so the damage gets
 * past the checksums into the parsers.
 *
 * Built static (gcc -static -O2 -Iinclude) to run in the qemu guest.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include "lx_ckpt.h"

#define MAX_TASKS 8
#define MAX_ARGS 64

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mkimage: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mkimage -o OUT --exe PATH [--argv STR]... [--no-argv] [--forknoexec]\n"
		"         [--mm ARG_START,ARG_END,ENV_START,ENV_END] [--no-mm] [--no-core]\n"
		"         [--no-tasks] [--tasks N] [--child-exe PATH]\n"
		"         [--ident-mismatch dev|ino|size|mtime]\n"
		"         [--corrupt short|magic|prelude|version|header-crc|truncate|exe-path|\n"
		"                    table-crc|section-type|section-bounds|section-align|\n"
		"                    section-record|section-crc] [--fuzz SEED]\n");
	exit(2);
}

/* growing output buffer */
static unsigned char *buf;
static size_t len, cap;

static size_t put(const void *p, size_t n)
{
	size_t at = len;

	while (len + n + 8 > cap) {
		cap = cap ? cap * 2 : 65536;
		buf = realloc(buf, cap);
		if (!buf)
			die("out of memory");
	}
	memcpy(buf + len, p, n);
	len += n;
	while (len % LX_CKPT_ALIGN)
		buf[len++] = 0;
	return at;
}

struct sec {
	uint32_t type, task, record_size;
	uint64_t offset, length;
};
static struct sec secs[64];
static unsigned nsec;

static size_t add_section(uint32_t type, uint32_t task, uint32_t rs,
			  const void *data, size_t n)
{
	struct sec *s = &secs[nsec++];

	if (nsec > sizeof(secs) / sizeof(secs[0]))
		die("too many sections");
	s->type = type;
	s->task = task;
	s->record_size = rs;
	s->length = n;
	s->offset = put(data, n);
	return s->offset;
}

struct ident {
	uint64_t dev, ino, size, mtime_ns;
};

static uint64_t encode_dev(dev_t d)	/* the kernel's new_encode_dev() */
{
	uint64_t maj = major(d), min = minor(d);

	return (min & 0xff) | (maj << 8) | ((min & ~0xffull) << 12);
}

static struct ident stat_exe(const char *path)
{
	struct stat st;
	struct ident id;

	if (stat(path, &st))
		die("%s: %s", path, strerror(errno));
	id.dev = encode_dev(st.st_dev);
	id.ino = st.st_ino;
	id.size = st.st_size;
	id.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
		      st.st_mtim.tv_nsec;
	return id;
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		die("bad number '%s'", s);
	return v;
}

/* xorshift64*: reproducible from the seed alone */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dull;
}

/* Recompute whatever CRCs the (damaged) header and table still locate. */
static void refix_all(size_t n)
{
	struct lx_ckpt_header *h = (struct lx_ckpt_header *)buf;
	uint64_t toff = lx_le64_to_cpu(h->section_table_offset);
	uint64_t nsec_ = lx_le32_to_cpu(h->section_count);
	uint64_t entsz = lx_le32_to_cpu(h->section_entry_size);
	uint64_t i;

	if (n < sizeof(*h))
		return;
	if (entsz >= sizeof(struct lx_ckpt_section) && nsec_ <= 4096 &&
	    lx_range_ok(toff, nsec_ * entsz, n)) {
		for (i = 0; i < nsec_; i++) {
			struct lx_ckpt_section *sp =
				(struct lx_ckpt_section *)(buf + toff + i * entsz);
			uint64_t off = lx_le64_to_cpu(sp->offset);
			uint64_t l = lx_le64_to_cpu(sp->length);

			if (lx_range_ok(off, l, n) &&
			    !(off < toff + nsec_ * entsz && toff < off + l))
				sp->crc = lx_cpu_to_le32(lx_crc32c(0, buf + off, l));
		}
		h->table_crc = lx_cpu_to_le32(lx_crc32c(0, buf + toff, nsec_ * entsz));
	}
	h->header_crc = lx_cpu_to_le32(lx_ckpt_header_crc(h));
}

static void fix_crcs(struct lx_ckpt_header *h, size_t table_off,
		     size_t table_len)
{
	h->table_crc = lx_cpu_to_le32(lx_crc32c(0, buf + table_off, table_len));
	h->header_crc = lx_cpu_to_le32(lx_ckpt_header_crc(h));
}

int main(int argc, char **argv)
{
	const char *out = NULL, *exe = NULL, *child_exe = NULL;
	const char *corrupt = NULL, *mismatch = NULL;
	uint64_t fuzz = 0;
	const char *args[MAX_ARGS];
	int nargs = 0, no_argv = 0, forknoexec = 0, no_mm = 0, no_core = 0;
	int no_tasks = 0, ntasks = 1, have_mm = 0;
	uint64_t mmv[4] = { 0, 0, 0, 0 };
	size_t exe_str_off[MAX_TASKS], strtab_off0 = 0, table_off, table_len;
	size_t argv_sec_off = 0, write_len;
	struct lx_ckpt_header h;
	struct lx_ckpt_section *t;
	struct ident id, cid;
	int i, fd;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-o") && v) {
			out = v, i++;
		} else if (!strcmp(a, "--exe") && v) {
			exe = v, i++;
		} else if (!strcmp(a, "--child-exe") && v) {
			child_exe = v, i++;
		} else if (!strcmp(a, "--argv") && v) {
			if (nargs == MAX_ARGS)
				die("too many --argv");
			args[nargs++] = v, i++;
		} else if (!strcmp(a, "--no-argv")) {
			no_argv = 1;
		} else if (!strcmp(a, "--forknoexec")) {
			forknoexec = 1;
		} else if (!strcmp(a, "--mm") && v) {
			char *dup = strdup(v), *p = dup, *tok;
			int k = 0;

			while ((tok = strsep(&p, ",")) && k < 4)
				mmv[k++] = parse_u64(tok);
			if (k != 4)
				die("--mm needs four comma-separated numbers");
			free(dup);
			have_mm = 1, i++;
		} else if (!strcmp(a, "--no-mm")) {
			no_mm = 1;
		} else if (!strcmp(a, "--no-core")) {
			no_core = 1;
		} else if (!strcmp(a, "--no-tasks")) {
			no_tasks = 1;
		} else if (!strcmp(a, "--tasks") && v) {
			ntasks = (int)parse_u64(v), i++;
			if (ntasks < 1 || ntasks > MAX_TASKS)
				die("--tasks: 1..%d", MAX_TASKS);
		} else if (!strcmp(a, "--ident-mismatch") && v) {
			mismatch = v, i++;
		} else if (!strcmp(a, "--fuzz") && v) {
			fuzz = parse_u64(v) + 1, i++;
		} else if (!strcmp(a, "--corrupt") && v) {
			corrupt = v, i++;
		} else {
			usage();
		}
	}
	if (!out || !exe)
		usage();
	if (!nargs && !no_argv)
		args[nargs++] = exe;

	id = stat_exe(exe);
	cid = child_exe ? stat_exe(child_exe) : id;
	if (mismatch) {
		if (!strcmp(mismatch, "dev"))
			id.dev ^= 1, cid.dev ^= 1;
		else if (!strcmp(mismatch, "ino"))
			id.ino++, cid.ino++;
		else if (!strcmp(mismatch, "size"))
			id.size++, cid.size++;
		else if (!strcmp(mismatch, "mtime"))
			id.mtime_ns += 1000000000ull, cid.mtime_ns += 1000000000ull;
		else
			usage();
	}

	memset(&h, 0, sizeof(h));
	put(&h, sizeof(h));	/* placeholder, written at the end */

	for (i = 0; i < ntasks; i++) {
		const char *path = (i && child_exe) ? child_exe : exe;
		const struct ident *pid_id = (i && child_exe) ? &cid : &id;
		size_t plen = strlen(path);
		char *st = calloc(1, plen + 2);
		struct lx_core core;
		struct lx_mm mm;
		size_t off;

		/* strtab: offset 0 is the empty string, then the exe path */
		memcpy(st + 1, path, plen);
		off = add_section(LX_SEC_STRTAB, i, 0, st, plen + 2);
		free(st);
		exe_str_off[i] = 1;
		if (i == 0)
			strtab_off0 = off;

		if (!no_core) {
			memset(&core, 0, sizeof(core));
			core.pid = lx_cpu_to_le32(100 + i);
			core.umask = lx_cpu_to_le32(022);
			core.flags = lx_cpu_to_le32(forknoexec ? LX_CORE_FORKNOEXEC : 0);
			strncpy(core.comm, "mkimage-task", sizeof(core.comm) - 1);
			core.exe_off = lx_cpu_to_le32((uint32_t)exe_str_off[i]);
			core.exe_dev = lx_cpu_to_le64(pid_id->dev);
			core.exe_ino = lx_cpu_to_le64(pid_id->ino);
			core.exe_size = lx_cpu_to_le64(pid_id->size);
			core.exe_mtime_ns = lx_cpu_to_le64(pid_id->mtime_ns);
			add_section(LX_SEC_CORE, i, sizeof(core), &core, sizeof(core));
		}
		if (!no_mm) {
			memset(&mm, 0, sizeof(mm));
			if (have_mm) {
				mm.arg_start = lx_cpu_to_le64(mmv[0]);
				mm.arg_end = lx_cpu_to_le64(mmv[1]);
				mm.env_start = lx_cpu_to_le64(mmv[2]);
				mm.env_end = lx_cpu_to_le64(mmv[3]);
			}
			add_section(LX_SEC_MM, i, sizeof(mm), &mm, sizeof(mm));
		}
		if (!no_argv) {
			size_t n = 0, k;
			char *blob;

			for (k = 0; k < (size_t)nargs; k++)
				n += strlen(args[k]) + 1;
			blob = malloc(n + 1);
			n = 0;
			for (k = 0; k < (size_t)nargs; k++) {
				strcpy(blob + n, args[k]);
				n += strlen(args[k]) + 1;
			}
			off = add_section(LX_SEC_ARGV, i, 0, blob, n);
			if (i == 0)
				argv_sec_off = off;
			free(blob);
		}
	}
	if (!no_tasks) {
		struct lx_task tasks[MAX_TASKS];

		memset(tasks, 0, sizeof(tasks));
		for (i = 0; i < ntasks; i++) {
			tasks[i].pid = lx_cpu_to_le32(100 + i);
			tasks[i].ppid = lx_cpu_to_le32(i ? 100 : 0);
			tasks[i].pgid = lx_cpu_to_le32(100);
			tasks[i].sid = lx_cpu_to_le32(100);
			tasks[i].nr_threads = lx_cpu_to_le32(1);
			tasks[i].flags = lx_cpu_to_le32(i ? 0 : LX_TASK_ROOT);
			tasks[i].exit_signal = lx_cpu_to_le32(17);
		}
		add_section(LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(struct lx_task),
			    tasks, ntasks * sizeof(struct lx_task));
	}

	/* section CRCs, then the table */
	{
		struct lx_ckpt_section tab[64];
		unsigned k;

		memset(tab, 0, sizeof(tab));
		for (k = 0; k < nsec; k++) {
			tab[k].type = lx_cpu_to_le32(secs[k].type);
			tab[k].task = lx_cpu_to_le32(secs[k].task);
			tab[k].offset = lx_cpu_to_le64(secs[k].offset);
			tab[k].length = lx_cpu_to_le64(secs[k].length);
			tab[k].record_size = lx_cpu_to_le32(secs[k].record_size);
			tab[k].crc = lx_cpu_to_le32(lx_crc32c(0, buf + secs[k].offset,
							      secs[k].length));
		}
		table_len = nsec * sizeof(struct lx_ckpt_section);
		table_off = put(tab, table_len);
	}

	memset(&h, 0, sizeof(h));
	memcpy(h.prelude, LX_CKPT_PRELUDE "\n", sizeof(LX_CKPT_PRELUDE));
	h.abi_id = lx_cpu_to_le32(LX_CKPT_ABI_ID);
	h.version_major = lx_cpu_to_le16(LX_CKPT_VERSION_MAJOR);
	h.version_minor = lx_cpu_to_le16(LX_CKPT_VERSION_MINOR);
	h.header_size = lx_cpu_to_le32(LX_CKPT_HEADER_SIZE);
	h.arch = lx_cpu_to_le32(LX_CKPT_ARCH_X86_64);
	h.page_size = lx_cpu_to_le32(LX_CKPT_PAGE_SIZE);
	h.section_count = lx_cpu_to_le32(nsec);
	h.section_entry_size = lx_cpu_to_le32(sizeof(struct lx_ckpt_section));
	h.section_table_offset = lx_cpu_to_le64(table_off);
	h.image_size = lx_cpu_to_le64(len);
	h.exe_path_offset = lx_cpu_to_le64(strtab_off0 + exe_str_off[0]);
	h.exe_path_len = lx_cpu_to_le32(strlen(exe));
	h.exe_dev = lx_cpu_to_le64(id.dev);
	h.exe_ino = lx_cpu_to_le64(id.ino);
	h.exe_size = lx_cpu_to_le64(id.size);
	h.exe_mtime_ns = lx_cpu_to_le64(id.mtime_ns);
	memcpy(buf, &h, sizeof(h));
	fix_crcs(&h, table_off, table_len);
	memcpy(buf, &h, sizeof(h));

	write_len = len;
	t = (struct lx_ckpt_section *)(buf + table_off);
	if (corrupt) {
		struct lx_ckpt_header *hp = (struct lx_ckpt_header *)buf;

		if (!strcmp(corrupt, "short")) {
			write_len = 100;
		} else if (!strcmp(corrupt, "magic")) {
			hp->prelude[0] = 'X';
		} else if (!strcmp(corrupt, "prelude")) {
			memset(hp->prelude + LX_CKPT_MAGIC_LEN, 'x',
			       LX_CKPT_PRELUDE_LEN - LX_CKPT_MAGIC_LEN);
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "version")) {
			hp->version_major = lx_cpu_to_le16(LX_CKPT_VERSION_MAJOR + 1);
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "header-crc")) {
			hp->flags ^= lx_cpu_to_le32(0x80000000u);
		} else if (!strcmp(corrupt, "truncate")) {
			write_len = len - 8;
		} else if (!strcmp(corrupt, "exe-path")) {
			hp->exe_path_len = 0;
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "table-crc")) {
			t[0].crc ^= lx_cpu_to_le32(1);
		} else if (!strcmp(corrupt, "section-type")) {
			t[nsec - 1].type = 0;
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "section-bounds")) {
			t[nsec - 1].length = lx_cpu_to_le64(len);
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "section-align")) {
			t[nsec - 1].offset = lx_cpu_to_le64(lx_le64_to_cpu(t[nsec - 1].offset) + 4);
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "section-record")) {
			t[nsec - 1].record_size = lx_cpu_to_le32(7);
			fix_crcs(hp, table_off, table_len);
		} else if (!strcmp(corrupt, "section-crc")) {
			/* data damage the table cannot see: the kernel finds
			 * it when it reads the section (armed path) */
			if (!argv_sec_off)
				die("--corrupt section-crc needs an argv section");
			buf[argv_sec_off] ^= 0x20;
		} else {
			usage();
		}
	}

	if (fuzz) {
		unsigned k, flips;

		rnd_state = fuzz * 0x9e3779b97f4a7c15ull;
		flips = 1 + rnd() % 4;
		for (k = 0; k < flips; k++) {
			size_t at = rnd() % write_len;
			unsigned kind = rnd() % 4;

			if (kind == 0)
				buf[at] ^= 1u << (rnd() % 8);
			else if (kind == 1)
				buf[at] = (unsigned char)rnd();
			else if (kind == 2)
				buf[at] = 0xff;
			else
				buf[at] = 0;
		}
		if (rnd() % 8)	/* mostly: get past the checksums */
			refix_all(write_len);
		if (rnd() % 16 == 0)
			write_len = rnd() % write_len;
	}

	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0)
		die("%s: %s", out, strerror(errno));
	if (write(fd, buf, write_len) != (ssize_t)write_len || close(fd))
		die("%s: write: %s", out, strerror(errno));
	return 0;
}
