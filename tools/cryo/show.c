/* cryo show IMAGE [--json]: what an image holds, for people and scripts.
 *
 * The image is untrusted input: img_open() has checked the header, the
 * section table and every section's CRC, but not what the records say.
 * Everything here is read with img_records() (zero-extended, so images from
 * older or newer minor versions work) and every count, offset and string
 * is checked before use. A record that does not make sense is reported as
 * a "problem" and the summary goes on, because a user inspecting a broken
 * image wants to see as much of it as possible; the exit status is then 1.
 *
 * The JSON schema is documented in docs/image-json.md; bump SCHEMA_VERSION
 * there and here when a field changes meaning or disappears (adding fields
 * does not bump it). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"

#define SHM_DEST_BIT 01000	/* SHM_DEST in the mode, as the kernel reports it */
#include "err.h"
#include "progress.h"

#define SCHEMA_VERSION	1
#define PAGE		4096ull
#define NSIG_KERNEL	64
#define MAX_PROBLEMS	100	/* a thoroughly broken image should not flood */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* ------------------------------------------------------------------ */
/* the image's swapfile, shared with coredump.c                        */

int image_swap_open(const struct img *im, const char *override, struct swapfile **sw,
		    char **pathp)
{
	struct lx_swap_ref *ref;
	const char *p;
	char *path = NULL;
	size_t n;
	int e;

	*sw = NULL;
	if (pathp)
		*pathp = NULL;
	/* pages packed in the image (pack.c) serve unless a swapfile is named */
	e = override ? -ENOENT : packed_swap_open(im, sw, pathp);
	if (e != -ENOENT)
		return e;
	e = img_records(im, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref), sizeof(*ref),
			(void **)&ref, &n);
	if (e == -ENOENT)
		return err_set(-ENOENT, "image %s: names no swapfile (no swap section)", im->path);
	if (e)
		return e;
	if (n != 1) {
		free(ref);
		return err_set(-EINVAL, "image %s: %zu swapfile references, want 1", im->path, n);
	}
	p = override ? override : img_string(im, LX_TASK_GLOBAL, ref->path_off);
	if (!p || !*p) {
		free(ref);
		return p ? err_set(-EINVAL, "image %s: empty swapfile path", im->path) : -EINVAL;
	}
	/* a relative path is relative to the image's directory, so that the
	 * two can be moved together (see dump.c) */
	if (p[0] != '/' && !override) {
		char *c = strdup(im->path);

		if (!c || asprintf(&path, "%s/%s", dirname(c), p) < 0)
			path = NULL;
		free(c);
	} else {
		path = strdup(p);
	}
	if (!path) {
		free(ref);
		return err_set(-ENOMEM, "image %s: out of memory", im->path);
	}
	e = swap_open(sw, path, 0);
	if (!e && memcmp(swap_uuid(*sw), ref->uuid, 16))
		e = err_set(-ESTALE, "swapfile %s is not the one image %s was written to "
			    "(uuid differs)", path, im->path);
	if (!e && swap_slots_end(*sw) < ref->slots_end)
		e = err_set(-ESTALE, "swapfile %s has %llu committed pages, image %s needs %llu "
			    "(truncated or rolled back)", path,
			    (unsigned long long)swap_slots_end(*sw), im->path,
			    (unsigned long long)ref->slots_end);
	free(ref);
	if (e) {
		swap_close(*sw);
		*sw = NULL;
	}
	if (pathp)
		*pathp = path;
	else
		free(path);
	return e;
}

/* ------------------------------------------------------------------ */
/* names                                                               */

static const char *const gpreg_names[LX_GPREGS_NR] = {
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
	"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
	"rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
};
enum { R_RBP = 4, R_RAX = 10, R_ORIG_RAX = 15, R_RIP = 16, R_RSP = 19, R_FS_BASE = 21 };

static const char *const rlimit_names[] = {
	"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
	"memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime",
};
#define NR_RLIMITS ((int)(sizeof(rlimit_names) / sizeof(rlimit_names[0])))
#define RLIM_INF (~0ull)

/* The kernel's initial limits (include/asm-generic/resource.h), which is
 * what "default" means in the summary. nproc and sigpending are computed
 * from memory at boot: for those, this machine's values (our own) are the
 * reference. */
static void default_rlimit(int r, uint64_t *cur, uint64_t *max)
{
	static const uint64_t def[][2] = {
		{ RLIM_INF, RLIM_INF }, { RLIM_INF, RLIM_INF }, { RLIM_INF, RLIM_INF },
		{ 8ull << 20, RLIM_INF }, { 0, RLIM_INF }, { RLIM_INF, RLIM_INF },
		{ 0, 0 }, { 1024, 4096 }, { 8ull << 20, 8ull << 20 },
		{ RLIM_INF, RLIM_INF }, { RLIM_INF, RLIM_INF }, { 0, 0 },
		{ 819200, 819200 }, { 0, 0 }, { 0, 0 }, { RLIM_INF, RLIM_INF },
	};
	struct rlimit own;

	*cur = def[r][0];
	*max = def[r][1];
	if ((r == RLIMIT_NPROC || r == RLIMIT_SIGPENDING) && !getrlimit(r, &own)) {
		*cur = own.rlim_cur;
		*max = own.rlim_max;
	}
}

static const char *vma_kind(uint32_t k)
{
	static const char *const n[] = {
		[LX_VMA_ANON] = "anon", [LX_VMA_FILE_PRIVATE] = "file_private",
		[LX_VMA_FILE_SHARED] = "file_shared", [LX_VMA_SHARED_ANON] = "shared_anon",
		[LX_VMA_VDSO] = "vdso", [LX_VMA_VVAR] = "vvar",
		[LX_VMA_VVAR_VCLOCK] = "vvar_vclock", [LX_VMA_VSYSCALL] = "vsyscall",
		[LX_VMA_SYSV_SHM] = "sysv_shm",
	};

	return k < sizeof(n) / sizeof(n[0]) && n[k] ? n[k] : "unknown";
}

static const struct flag_name {
	uint64_t bit;
	const char *name;
} vmaf_names[] = {
	{ LX_VMAF_GROWSDOWN, "growsdown" }, { LX_VMAF_STACK, "stack" },
	{ LX_VMAF_HEAP, "heap" }, { LX_VMAF_DONTFORK, "dontfork" },
	{ LX_VMAF_WIPEONFORK, "wipeonfork" }, { LX_VMAF_HUGEPAGE, "hugepage" },
	{ LX_VMAF_NOHUGEPAGE, "nohugepage" }, { LX_VMAF_DONTDUMP, "dontdump" },
	{ LX_VMAF_MERGEABLE, "mergeable" }, { LX_VMAF_LOCKED, "locked" },
	{ LX_VMAF_MAYWRITE, "maywrite" }, { 0, NULL },
}, core_flag_names[] = {
	{ LX_CORE_FORKNOEXEC, "forknoexec" }, { LX_CORE_NO_NEW_PRIVS, "no_new_privs" },
	{ LX_CORE_CHILD_SUBREAPER, "child_subreaper" }, { 0, NULL },
}, sa_flag_names[] = {
	{ SA_NOCLDSTOP, "SA_NOCLDSTOP" }, { SA_NOCLDWAIT, "SA_NOCLDWAIT" },
	{ SA_SIGINFO, "SA_SIGINFO" }, { 0x04000000, "SA_RESTORER" },
	{ SA_ONSTACK, "SA_ONSTACK" }, { SA_RESTART, "SA_RESTART" },
	{ SA_NODEFER, "SA_NODEFER" }, { SA_RESETHAND, "SA_RESETHAND" }, { 0, NULL },
}, open_flag_names[] = {
	/* O_LARGEFILE is left out: the kernel sets it on every 64-bit open */
	{ O_CREAT, "O_CREAT" }, { O_EXCL, "O_EXCL" }, { O_NOCTTY, "O_NOCTTY" },
	{ O_TRUNC, "O_TRUNC" }, { O_APPEND, "O_APPEND" }, { O_NONBLOCK, "O_NONBLOCK" },
	{ O_SYNC, "O_SYNC" }, { O_DSYNC, "O_DSYNC" }, { O_DIRECT, "O_DIRECT" },
	{ O_DIRECTORY, "O_DIRECTORY" }, { O_NOFOLLOW, "O_NOFOLLOW" },
	{ O_NOATIME, "O_NOATIME" }, { O_PATH, "O_PATH" }, { 0, NULL },
};

static const char *fd_kind(const struct lx_fd *f)
{
	static const char *const n[] = {
		[LX_FD_CHR] = "chr", [LX_FD_INHERIT] = "inherit",
		[LX_FD_DELETED] = "deleted", [LX_FD_MEMFD] = "memfd", [LX_FD_FIFO] = "fifo",
		[LX_FD_PIPE] = "pipe", [LX_FD_EVENTFD] = "eventfd", [LX_FD_TIMERFD] = "timerfd",
		[LX_FD_SIGNALFD] = "signalfd", [LX_FD_EPOLL] = "epoll",
		[LX_FD_INOTIFY] = "inotify", [LX_FD_SOCKET] = "socket", [LX_FD_PIDFD] = "pidfd",
		[LX_FD_PTY] = "pty",
	};

	if (f->kind == LX_FD_REG)
		return S_ISDIR(f->mode) ? "directory" : "file";
	return f->kind < sizeof(n) / sizeof(n[0]) && n[f->kind] ? n[f->kind] : "unknown";
}

static const char *accmode(uint32_t flags)
{
	switch (flags & O_ACCMODE) {
	case O_RDONLY: return "O_RDONLY";
	case O_WRONLY: return "O_WRONLY";
	case O_RDWR: return "O_RDWR";
	}
	return "O_ACCMODE";
}

/* signal number -> "SIGUSR1", "SIGRTMIN+3"; buf for the computed ones */
static const char *sig_name(int s, char buf[16])
{
	const char *a = s < 32 ? sigabbrev_np(s) : NULL;

	if (a)
		snprintf(buf, 16, "SIG%s", a);
	else if (s >= 34)
		snprintf(buf, 16, "SIGRTMIN+%d", (s - 34) & 63);	/* glibc's SIGRTMIN */
	else
		snprintf(buf, 16, "SIG%d", s & 63);
	return buf;
}

static const char *syscall_name(int64_t nr)
{
	/* the calls a frozen process usually sleeps in */
	static const struct { int nr; const char *name; } t[] = {
		{ 0, "read" }, { 1, "write" }, { 7, "poll" }, { 23, "select" },
		{ 34, "pause" }, { 35, "nanosleep" }, { 43, "accept" }, { 45, "recvfrom" },
		{ 47, "recvmsg" }, { 61, "wait4" }, { 130, "rt_sigsuspend" },
		{ 202, "futex" }, { 219, "restart_syscall" }, { 230, "clock_nanosleep" },
		{ 232, "epoll_wait" }, { 247, "waitid" }, { 270, "pselect6" },
		{ 271, "ppoll" }, { 281, "epoll_pwait" }, { 288, "accept4" },
		{ 441, "epoll_pwait2" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].nr == nr)
			return t[i].name;
	return NULL;
}

static void human(char *buf, size_t len, uint64_t v)
{
	static const char *const unit[] = { "B", "K", "M", "G", "T", "P" };
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", (unsigned long long)v);
	else if (d < 10 && d != (double)(uint64_t)d)
		snprintf(buf, len, "%.1f%s", d, unit[u]);
	else
		snprintf(buf, len, "%.0f%s", d, unit[u]);
}

static void hex_bytes(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = 0;
}

/* ------------------------------------------------------------------ */
/* the model: everything read and checked once, printed twice          */

struct xs_info {
	uint32_t tid, len;
};

struct task_view {
	uint32_t index;
	struct lx_task t;
	struct lx_core core;
	int have_core;
	struct lx_mm mm;
	int have_mm;
	struct lx_vma *vmas;
	size_t nvmas;
	uint64_t *vma_stored, *vma_zero;	/* per VMA, from the page map */
	uint64_t pages_stored, pages_zero, pages_outside, nsums;
	int have_pagemap;
	struct lx_thread *threads;
	size_t nthreads;
	struct lx_gpregs *gp;
	size_t ngp;
	struct xs_info *xs;
	size_t nxs;
	struct lx_fd *fds;
	size_t nfds;
	struct lx_rlimit *rl;
	size_t nrl;
	struct lx_sigaction *sa;
	size_t nsa;
	struct lx_itimer *it;
	size_t nit;
	char **argv;			/* copies, NUL-terminated */
	size_t argc, envc;
	uint64_t auxv_pairs;
};

struct view {
	struct img *im;
	const char *swap_override;
	int verify;
	/* swapfile */
	int have_ref;
	struct lx_swap_ref ref;
	const char *ref_path;
	char *swap_path;
	int swap_present, swap_consistent;
	char *swap_problem;
	uint64_t swap_slots;
	uint64_t max_slot_end;		/* over all page runs */
	uint64_t pages_verified, pages_bad;
	/* tasks */
	struct task_view *tasks;
	size_t ntasks;
	/* findings */
	char **problems;
	size_t nproblems, problems_dropped;
};

static void __attribute__((format(printf, 2, 3))) problem(struct view *v, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL, **n;

	if (v->nproblems >= MAX_PROBLEMS) {
		v->problems_dropped++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	n = realloc(v->problems, (v->nproblems + 1) * sizeof(*n));
	if (!s || !n) {
		free(s);
		if (n)
			v->problems = n;
		v->problems_dropped++;
		return;
	}
	v->problems = n;
	v->problems[v->nproblems++] = s;
}

/* The message recorded by err_set() in a failed image call, as a problem,
 * then cleared so that the next failure records its own. */
static void problem_err(struct view *v)
{
	problem(v, "%s", err_msg());
	err_clear();
}

/* A string from a task's table, or "" with a problem noted. */
static const char *str(struct view *v, uint32_t task, uint32_t off)
{
	const char *s = img_string(v->im, task, off);

	if (!s) {
		problem_err(v);
		return "";
	}
	return s;
}

/* Records of an optional section: absent is fine (count 0, returns 0),
 * malformed is a problem (returns -1). */
static int records(struct view *v, uint32_t type, uint32_t task, size_t want, size_t min,
		   void **out, size_t *count)
{
	int e = img_records(v->im, type, task, want, min, out, count);

	if (e == -ENOENT)
		return 0;
	if (e) {
		problem_err(v);
		return -1;
	}
	return 1;
}

/* NUL-separated strings of a blob, at most max of them copied. */
static char **split_blob(const void *data, uint64_t len, size_t max, size_t *count)
{
	const char *p = data, *end = p + len;
	char **out = calloc(max + 1, sizeof(*out));
	size_t n = 0;

	*count = 0;
	if (!out)
		return NULL;
	while (p < end) {
		const char *z = memchr(p, 0, end - p);
		size_t l = z ? (size_t)(z - p) : (size_t)(end - p);

		if (n < max)
			out[n] = strndup(p, l);
		n++;
		p += l + 1;
	}
	*count = n;
	return out;
}

static void load_pages(struct view *v, struct task_view *tv)
{
	struct lx_page_run *runs = NULL;
	size_t nr = 0, vi = 0;
	const void *sums;
	uint64_t slen;
	uint32_t rs;

	if (records(v, LX_SEC_PAGEMAP, tv->index, sizeof(*runs), sizeof(*runs),
		    (void **)&runs, &nr) <= 0)
		return;
	tv->have_pagemap = 1;
	tv->vma_stored = calloc(tv->nvmas + 1, sizeof(uint64_t));
	tv->vma_zero = calloc(tv->nvmas + 1, sizeof(uint64_t));
	if (!tv->vma_stored || !tv->vma_zero) {
		problem(v, "task %u: out of memory for page counts", tv->index);
		free(runs);
		return;
	}
	for (size_t i = 0; i < nr; i++) {
		const struct lx_page_run *r = &runs[i];
		uint64_t a, end;

		if (r->vaddr % PAGE || !r->npages || !lx_range_ok(r->vaddr, r->npages * PAGE, ~0ull)) {
			problem(v, "task %u: page run %zu at %#llx (%u pages) is malformed",
				tv->index, i, (unsigned long long)r->vaddr, r->npages);
			continue;
		}
		if (i && r->vaddr < runs[i - 1].vaddr + runs[i - 1].npages * PAGE)
			problem(v, "task %u: page run %zu at %#llx overlaps or precedes the one "
				"before it", tv->index, i, (unsigned long long)r->vaddr);
		if (r->slot == LX_SLOT_ZERO)
			tv->pages_zero += r->npages;
		else {
			tv->pages_stored += r->npages;
			if (r->slot > ~0ull - r->npages)
				problem(v, "task %u: page run %zu: slot %llu out of range",
					tv->index, i, (unsigned long long)r->slot);
			else if (r->slot + r->npages > v->max_slot_end)
				v->max_slot_end = r->slot + r->npages;
		}
		/* runs are sorted and so are VMAs (checked in load_vmas): one
		 * sweep; a run is split across VMAs if it spans several */
		a = r->vaddr;
		end = r->vaddr + r->npages * PAGE;
		if (vi && tv->vmas[vi - 1].end > a)
			vi = 0;	/* unsorted input: restart the sweep */
		while (a < end) {
			uint64_t upto, n;

			while (vi < tv->nvmas && tv->vmas[vi].end <= a)
				vi++;
			if (vi >= tv->nvmas || tv->vmas[vi].start >= end) {
				tv->pages_outside += (end - a) / PAGE;
				break;
			}
			if (tv->vmas[vi].start > a) {
				tv->pages_outside += (tv->vmas[vi].start - a) / PAGE;
				a = tv->vmas[vi].start;
			}
			upto = tv->vmas[vi].end < end ? tv->vmas[vi].end : end;
			n = (upto - a) / PAGE;
			if (r->slot == LX_SLOT_ZERO)
				tv->vma_zero[vi] += n;
			else
				tv->vma_stored[vi] += n;
			a = upto;
		}
	}
	free(runs);
	if (tv->pages_outside)
		problem(v, "task %u: %llu pages of the page map lie outside every VMA",
			tv->index, (unsigned long long)tv->pages_outside);
	if (!img_find(v->im, LX_SEC_PAGESUMS, tv->index, &sums, &slen, &rs))
		tv->nsums = slen / 8;
	if (tv->nsums != tv->pages_stored)
		problem(v, "task %u: %llu page checksums for %llu stored pages", tv->index,
			(unsigned long long)tv->nsums, (unsigned long long)tv->pages_stored);
}

static void load_vmas(struct view *v, struct task_view *tv)
{
	if (records(v, LX_SEC_VMAS, tv->index, sizeof(*tv->vmas), 64, (void **)&tv->vmas,
		    &tv->nvmas) <= 0)
		return;
	for (size_t i = 0; i < tv->nvmas; i++) {
		const struct lx_vma *r = &tv->vmas[i];

		if (r->start % PAGE || r->end % PAGE || r->start >= r->end)
			problem(v, "task %u: vma %zu (%#llx-%#llx) is malformed", tv->index, i,
				(unsigned long long)r->start, (unsigned long long)r->end);
		else if (i && r->start < tv->vmas[i - 1].end)
			problem(v, "task %u: vma %zu (%#llx-%#llx) overlaps or precedes the one "
				"before it", tv->index, i, (unsigned long long)r->start,
				(unsigned long long)r->end);
		if (r->kind < LX_VMA_ANON || r->kind > LX_VMA_KIND_LAST)
			problem(v, "task %u: vma %zu (%#llx-%#llx): unknown kind %u", tv->index, i,
				(unsigned long long)r->start, (unsigned long long)r->end, r->kind);
	}
}

static void load_threads(struct view *v, struct task_view *tv)
{
	const uint8_t *xs;
	uint64_t xlen;
	uint32_t rs;

	records(v, LX_SEC_THREADS, tv->index, sizeof(*tv->threads), 64, (void **)&tv->threads,
		&tv->nthreads);
	records(v, LX_SEC_GPREGS, tv->index, sizeof(*tv->gp), sizeof(*tv->gp), (void **)&tv->gp,
		&tv->ngp);
	if (tv->nthreads != tv->t.nr_threads)
		problem(v, "task %u: %zu thread records, the task says %u threads", tv->index,
			tv->nthreads, tv->t.nr_threads);
	if (tv->ngp != tv->nthreads)
		problem(v, "task %u: %zu register sets for %zu threads", tv->index, tv->ngp,
			tv->nthreads);
	/* xstate records are variable-size: le32 tid, le32 len, len bytes */
	if (img_find(v->im, LX_SEC_XSTATE, tv->index, (const void **)&xs, &xlen, &rs))
		return;
	if (rs < 8) {
		problem(v, "task %u: xstate section with record size %u", tv->index, rs);
		return;
	}
	tv->nxs = xlen / rs;
	tv->xs = calloc(tv->nxs + 1, sizeof(*tv->xs));
	if (!tv->xs) {
		tv->nxs = 0;
		return;
	}
	for (size_t i = 0; i < tv->nxs; i++) {
		memcpy(&tv->xs[i].tid, xs + i * rs, 4);
		memcpy(&tv->xs[i].len, xs + i * rs + 4, 4);
		tv->xs[i].tid = lx_le32_to_cpu(tv->xs[i].tid);
		tv->xs[i].len = lx_le32_to_cpu(tv->xs[i].len);
		if (tv->xs[i].len > rs - 8) {
			problem(v, "task %u: xstate of tid %u claims %u bytes in a %u-byte record",
				tv->index, tv->xs[i].tid, tv->xs[i].len, rs);
			tv->xs[i].len = rs - 8;
		}
	}
}

static void load_task(struct view *v, struct task_view *tv)
{
	struct lx_core *core = NULL;
	struct lx_mm *mm = NULL;
	const void *blob;
	uint64_t len;
	uint32_t rs;
	size_t n;

	if (records(v, LX_SEC_CORE, tv->index, sizeof(*core), 64, (void **)&core, &n) > 0 && n) {
		tv->core = core[0];
		tv->have_core = 1;
		tv->core.comm[sizeof(tv->core.comm) - 1] = 0;
		if (tv->core.ngroups > 32) {
			problem(v, "task %u: %u supplementary groups, at most 32 fit", tv->index,
				tv->core.ngroups);
			tv->core.ngroups = 32;
		}
		if (tv->core.exe_build_id_len > LX_CKPT_BUILD_ID_MAX) {
			problem(v, "task %u: build-id of %u bytes", tv->index,
				tv->core.exe_build_id_len);
			tv->core.exe_build_id_len = 0;
		}
	} else if (!core) {
		problem(v, "task %u: no core section (identity, credentials)", tv->index);
	}
	free(core);
	if (records(v, LX_SEC_MM, tv->index, sizeof(*mm), 88, (void **)&mm, &n) > 0 && n) {
		tv->mm = mm[0];
		tv->have_mm = 1;
	}
	free(mm);
	load_vmas(v, tv);
	load_pages(v, tv);
	load_threads(v, tv);
	records(v, LX_SEC_FDS, tv->index, sizeof(*tv->fds), 64, (void **)&tv->fds, &tv->nfds);
	records(v, LX_SEC_RLIMITS, tv->index, sizeof(*tv->rl), sizeof(*tv->rl),
		(void **)&tv->rl, &tv->nrl);
	records(v, LX_SEC_SIGACTS, tv->index, sizeof(*tv->sa), sizeof(*tv->sa),
		(void **)&tv->sa, &tv->nsa);
	if (tv->nsa > NSIG_KERNEL)
		tv->nsa = NSIG_KERNEL;
	records(v, LX_SEC_ITIMERS, tv->index, sizeof(*tv->it), sizeof(*tv->it),
		(void **)&tv->it, &tv->nit);
	if (!img_find(v->im, LX_SEC_ARGV, tv->index, &blob, &len, &rs))
		tv->argv = split_blob(blob, len, 256, &tv->argc);
	if (!img_find(v->im, LX_SEC_ENVP, tv->index, &blob, &len, &rs))
		free(split_blob(blob, len, 0, &tv->envc));
	if (!img_find(v->im, LX_SEC_AUXV, tv->index, &blob, &len, &rs))
		tv->auxv_pairs = len / 16;
}

static void load_swap(struct view *v)
{
	struct lx_swap_ref *ref = NULL;
	struct swapfile *sw = NULL;
	size_t n;
	int e;

	if (records(v, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref), sizeof(*ref),
		    (void **)&ref, &n) <= 0 || n != 1) {
		if (ref)
			problem(v, "image: %zu swapfile references, want 1", n);
		else
			problem(v, "image: names no swapfile (no swap section)");
		free(ref);
		return;
	}
	v->ref = ref[0];
	v->have_ref = 1;
	free(ref);
	v->ref_path = str(v, LX_TASK_GLOBAL, v->ref.path_off);
	e = image_swap_open(v->im, v->swap_override, &sw, &v->swap_path);
	if (sw)
		v->swap_slots = swap_slots_end(sw);
	v->swap_present = e != -ENOENT && v->swap_path;
	if (e) {
		v->swap_problem = strdup(err_msg());
		problem_err(v);
		return;
	}
	v->swap_consistent = 1;
	if (v->max_slot_end > v->ref.slots_end) {
		v->swap_consistent = 0;
		problem(v, "image: page map uses slots up to %llu, beyond the %llu the image "
			"committed", (unsigned long long)v->max_slot_end,
			(unsigned long long)v->ref.slots_end);
	}
	v->swap_present = 1;
	swap_close(sw);
}

/* --verify: read every stored page back and check its sum, the way a
 * restore would, without restoring. */
static void verify_pages(struct view *v)
{
	struct swapfile *sw = NULL;
	uint8_t *buf = malloc(PAGE);

	if (!buf || image_swap_open(v->im, v->swap_override, &sw, NULL)) {
		err_clear();	/* already reported by load_swap */
		free(buf);
		return;
	}
	for (size_t t = 0; t < v->ntasks; t++) {
		struct lx_page_run *runs = NULL;
		const uint8_t *sums;
		uint64_t slen, si = 0;
		uint32_t rs;
		size_t nr;

		if (img_records(v->im, LX_SEC_PAGEMAP, (uint32_t)t, sizeof(*runs), sizeof(*runs),
				(void **)&runs, &nr)) {
			err_clear();
			continue;
		}
		if (img_find(v->im, LX_SEC_PAGESUMS, (uint32_t)t, (const void **)&sums, &slen, &rs))
			slen = 0;
		for (size_t i = 0; i < nr; i++) {
			if (runs[i].slot == LX_SLOT_ZERO)
				continue;
			for (uint32_t k = 0; k < runs[i].npages; k++, si++) {
				uint64_t want;

				if (si >= slen / 8)
					break;	/* count mismatch: already a problem */
				memcpy(&want, sums + si * 8, 8);
				if (swap_read(sw, runs[i].slot + k, 1, buf)) {
					problem_err(v);
					v->pages_bad++;
				} else if (page_sum(buf) != lx_le64_to_cpu(want)) {
					v->pages_bad++;
					problem(v, "task %zu: page at %#llx (slot %llu) fails its "
						"checksum", t,
						(unsigned long long)(runs[i].vaddr + k * PAGE),
						(unsigned long long)(runs[i].slot + k));
				}
				v->pages_verified++;
			}
		}
		free(runs);
	}
	swap_close(sw);
	free(buf);
}

static int load(struct view *v)
{
	struct lx_task *tasks = NULL;
	size_t n = 0;

	if (records(v, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32, (void **)&tasks, &n) == 0)
		problem(v, "image: no tasks section");
	v->tasks = calloc(n + 1, sizeof(*v->tasks));
	if (!v->tasks) {
		free(tasks);
		return err_set(-ENOMEM, "out of memory");
	}
	v->ntasks = n;
	for (size_t i = 0; i < n; i++) {
		v->tasks[i].index = (uint32_t)i;
		v->tasks[i].t = tasks[i];
		if (!(tasks[i].flags & LX_TASK_ZOMBIE))	/* a zombie has no state */
			load_task(v, &v->tasks[i]);
	}
	free(tasks);
	for (uint32_t i = 0; i < v->im->nsec; i++) {
		const struct lx_ckpt_section *s = &v->im->sec[i];

		if (s->task != LX_TASK_GLOBAL && s->task >= n)
			problem(v, "image: section %u (%s) belongs to task %u, the image has %zu",
				i, lx_section_name(s->type), s->task, n);
	}
	load_swap(v);
	if (v->verify && v->swap_consistent)
		verify_pages(v);
	return 0;
}

static void free_view(struct view *v)
{
	for (size_t i = 0; i < v->ntasks; i++) {
		struct task_view *tv = &v->tasks[i];

		free(tv->vmas);
		free(tv->vma_stored);
		free(tv->vma_zero);
		free(tv->threads);
		free(tv->gp);
		free(tv->xs);
		free(tv->fds);
		free(tv->rl);
		free(tv->sa);
		free(tv->it);
		if (tv->argv)
			for (size_t k = 0; k < tv->argc && k < 256; k++)
				free(tv->argv[k]);
		free(tv->argv);
	}
	free(v->tasks);
	for (size_t i = 0; i < v->nproblems; i++)
		free(v->problems[i]);
	free(v->problems);
	free(v->swap_path);
	free(v->swap_problem);
}

static const struct lx_gpregs *regs_of(const struct task_view *tv, size_t thread)
{
	for (size_t i = 0; i < tv->ngp; i++)
		if (tv->gp[i].tid == tv->threads[thread].tid)
			return &tv->gp[i];
	return NULL;
}

static const struct xs_info *xstate_of(const struct task_view *tv, size_t thread)
{
	for (size_t i = 0; i < tv->nxs; i++)
		if (tv->xs[i].tid == tv->threads[thread].tid)
			return &tv->xs[i];
	return NULL;
}

static int argv_shown(const struct task_view *tv)
{
	return tv->argc < 256 ? (int)tv->argc : 256;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

struct json {
	FILE *f;
	int depth;
	int first;	/* no comma before the next member */
};

/* Strings are UTF-8; a byte that is not part of valid UTF-8 (paths are
 * bytes on Linux) becomes U+FFFD so that every JSON parser accepts the
 * output, as documented in docs/image-json.md. */
static void j_quote(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	fputc('"', f);
	while (p < end) {
		unsigned c = *p;
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
			     (c & 0xf8) == 0xf0 ? 4 : 0;
		int ok = len && (size_t)(end - p) >= len;

		for (size_t k = 1; ok && k < len; k++)
			ok = (p[k] & 0xc0) == 0x80;
		if (ok && len == 2 && c < 0xc2)
			ok = 0;		/* overlong */
		if (!ok) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		if (len > 1) {
			fwrite(p, 1, len, f);
			p += len;
			continue;
		}
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
		p++;
	}
	fputc('"', f);
}

static void j_key(struct json *j, const char *key)
{
	if (!j->first)
		fputc(',', j->f);
	j->first = 0;
	fprintf(j->f, "\n%*s", 2 * j->depth, "");
	if (key) {
		j_quote(j->f, key, strlen(key));
		fputs(": ", j->f);
	}
}

static void j_open(struct json *j, const char *key, char c)
{
	j_key(j, key);
	fputc(c, j->f);
	j->depth++;
	j->first = 1;
}

static void j_close(struct json *j, char c)
{
	j->depth--;
	if (!j->first)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	fputc(c, j->f);
	j->first = 0;
}

static void j_str(struct json *j, const char *key, const char *s)
{
	j_key(j, key);
	if (s)
		j_quote(j->f, s, strlen(s));
	else
		fputs("null", j->f);
}

static void j_u64(struct json *j, const char *key, uint64_t x)
{
	j_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)x);
}

static void j_i64(struct json *j, const char *key, int64_t x)
{
	j_key(j, key);
	fprintf(j->f, "%lld", (long long)x);
}

/* addresses, masks and register values: hex strings, exact in every
 * language (JSON numbers above 2^53 are not) */
static void j_hex(struct json *j, const char *key, uint64_t x)
{
	j_key(j, key);
	fprintf(j->f, "\"%#llx\"", (unsigned long long)x);
}

static void j_bool(struct json *j, const char *key, int b)
{
	j_key(j, key);
	fputs(b ? "true" : "false", j->f);
}

static void j_flags(struct json *j, const char *key, const struct flag_name *t, uint64_t v)
{
	j_open(j, key, '[');
	for (; t->name; t++)
		if (v & t->bit)
			j_str(j, NULL, t->name);
	j_close(j, ']');
}

/* a limit: a number, or the string "unlimited" */
static void j_limit(struct json *j, const char *key, uint64_t x)
{
	if (x == RLIM_INF)
		j_str(j, key, "unlimited");
	else
		j_u64(j, key, x);
}

static void j_sigset(struct json *j, const char *key, uint64_t set)
{
	char b[16];

	j_open(j, key, '[');
	for (int s = 1; s <= NSIG_KERNEL; s++)
		if (set & (1ull << (s - 1)))
			j_str(j, NULL, sig_name(s, b));
	j_close(j, ']');
}

static void json_header(struct json *j, const struct view *v)
{
	const struct lx_ckpt_header *h = v->im->hdr;
	char bid[2 * LX_CKPT_BUILD_ID_MAX + 1];

	j_u64(j, "schema_version", SCHEMA_VERSION);
	j_open(j, "image", '{');
	j_str(j, "path", v->im->path);
	j_u64(j, "size", v->im->size);
	j_u64(j, "version_major", lx_le16_to_cpu(h->version_major));
	j_u64(j, "version_minor", lx_le16_to_cpu(h->version_minor));
	j_str(j, "arch", "x86_64");
	j_u64(j, "page_size", lx_le32_to_cpu(h->page_size));
	j_bool(j, "pages_in_swapfile", !!(lx_le32_to_cpu(h->flags) & LX_CKPT_F_SWAPFILE));
	j_bool(j, "pages_packed", !!(lx_le32_to_cpu(h->flags) & LX_CKPT_F_PACKED));
	{
		/* the header's exe path is NUL-free but not NUL-terminated */
		uint64_t off = lx_le64_to_cpu(h->exe_path_offset);
		uint32_t len = lx_le32_to_cpu(h->exe_path_len);

		j_key(j, "exe");
		j_quote(j->f, (const char *)v->im->data + off, len);
	}
	hex_bytes(bid, h->exe_build_id, lx_le32_to_cpu(h->exe_build_id_len));
	j_str(j, "exe_build_id", bid);
	j_close(j, '}');
}

static void json_packed(struct json *j, const struct view *v)
{
	struct packed_info pi;

	if (packed_parse(v->im, &pi, NULL, NULL, NULL)) {
		err_clear();	/* a bad section is already a problem */
		j_key(j, "packed_pages");
		fputs("null", j->f);
		return;
	}
	j_open(j, "packed_pages", '{');
	j_u64(j, "section", (uint64_t)pi.section);
	j_u64(j, "pages", pi.npages);
	j_u64(j, "runs", pi.nruns);
	j_u64(j, "bytes", pi.npages * PAGE);
	j_bool(j, "used", !v->swap_override);
	j_close(j, '}');
}

static void json_swap(struct json *j, const struct view *v)
{
	char uuid[33];

	if (!v->have_ref) {
		j_key(j, "swapfile");
		fputs("null", j->f);
		return;
	}
	hex_bytes(uuid, v->ref.uuid, 16);
	j_open(j, "swapfile", '{');
	j_str(j, "path", v->ref_path);
	j_str(j, "resolved_path", v->swap_path);
	j_str(j, "uuid", uuid);
	j_u64(j, "snapshot", v->ref.snapshot);
	j_u64(j, "slots_end", v->ref.slots_end);
	j_u64(j, "slots_used_end", v->max_slot_end);
	j_bool(j, "present", v->swap_present);
	j_bool(j, "consistent", v->swap_consistent);
	if (v->swap_present && v->swap_path)
		j_u64(j, "swapfile_slots", v->swap_slots);
	j_str(j, "problem", v->swap_problem);
	if (v->verify) {
		j_u64(j, "pages_verified", v->pages_verified);
		j_u64(j, "pages_bad", v->pages_bad);
	}
	j_close(j, '}');
}

static void json_threads(struct json *j, struct view *v, const struct task_view *tv)
{
	j_open(j, "threads", '[');
	for (size_t i = 0; i < tv->nthreads; i++) {
		const struct lx_thread *th = &tv->threads[i];
		const struct lx_gpregs *gp = regs_of(tv, i);
		const struct xs_info *xs = xstate_of(tv, i);
		char comm[17];

		memcpy(comm, th->comm, 16);
		comm[16] = 0;
		j_open(j, NULL, '{');
		j_u64(j, "tid", th->tid);
		j_str(j, "comm", comm);
		j_hex(j, "sigmask", th->sigmask);
		j_sigset(j, "blocked", th->sigmask);
		j_sigset(j, "pending", th->sig_pending);
		if (gp) {
			j_open(j, "regs", '{');
			for (int r = 0; r < LX_GPREGS_NR; r++)
				j_hex(j, gpreg_names[r], gp->regs[r]);
			j_close(j, '}');
			if ((int64_t)gp->regs[R_ORIG_RAX] >= 0) {
				j_i64(j, "syscall", (int64_t)gp->regs[R_ORIG_RAX]);
				j_str(j, "syscall_name", syscall_name((int64_t)gp->regs[R_ORIG_RAX]));
			}
		} else {
			problem(v, "task %u: thread %u has no registers", tv->index, th->tid);
		}
		j_u64(j, "xstate_bytes", xs ? xs->len : 0);
		j_hex(j, "clear_tid_addr", th->clear_tid_addr);
		j_hex(j, "robust_list", th->robust_list);
		j_hex(j, "rseq_addr", th->rseq_addr);
		j_u64(j, "rseq_len", th->rseq_len);
		j_open(j, "sigaltstack", '{');
		j_hex(j, "sp", th->sas_sp);
		j_u64(j, "size", th->sas_size);
		j_u64(j, "flags", th->sas_flags);
		j_close(j, '}');
		j_close(j, '}');
	}
	j_close(j, ']');
}

static void json_vmas(struct json *j, struct view *v, const struct task_view *tv)
{
	j_open(j, "vmas", '[');
	for (size_t i = 0; i < tv->nvmas; i++) {
		const struct lx_vma *r = &tv->vmas[i];
		char prot[4] = { r->prot & PROT_READ ? 'r' : '-', r->prot & PROT_WRITE ? 'w' : '-',
				 r->prot & PROT_EXEC ? 'x' : '-', 0 };
		int file = r->kind == LX_VMA_FILE_PRIVATE || r->kind == LX_VMA_FILE_SHARED;

		j_open(j, NULL, '{');
		j_hex(j, "start", r->start);
		j_hex(j, "end", r->end);
		j_u64(j, "size", r->end > r->start ? r->end - r->start : 0);
		j_str(j, "prot", prot);
		j_bool(j, "shared", r->kind == LX_VMA_FILE_SHARED || r->kind == LX_VMA_SHARED_ANON ||
				    r->kind == LX_VMA_SYSV_SHM);
		j_str(j, "kind", vma_kind(r->kind));
		j_str(j, "path", file ? str(v, tv->index, r->path_off) : NULL);
		if (file) {
			j_u64(j, "pgoff", r->pgoff);
			j_u64(j, "dev", r->dev);
			j_u64(j, "ino", r->ino);
			j_u64(j, "file_size", r->size);
			j_u64(j, "file_mtime_ns", r->mtime_ns);
		}
		if (r->kind == LX_VMA_SHARED_ANON) {
			j_u64(j, "pgoff", r->pgoff);
			j_u64(j, "shared_id", r->shared_id);
		}
		if (r->kind == LX_VMA_SYSV_SHM) {
			j_u64(j, "pgoff", r->pgoff);
			j_u64(j, "shm_id", r->ino);
		}
		j_flags(j, "flags", vmaf_names, r->flags);
		if (tv->have_pagemap) {
			j_u64(j, "pages_stored", tv->vma_stored[i]);
			j_u64(j, "pages_zero", tv->vma_zero[i]);
		}
		j_close(j, '}');
	}
	j_close(j, ']');
}

/* The pty end of fd (LX_SEC_TTYS of the task), NULL if none */
static const struct lx_tty_fd *tty_fd_of(const struct lx_tty_fd *t, size_t n, uint32_t fd)
{
	for (size_t k = 0; k < n; k++)
		if (t[k].fd == fd)
			return &t[k];
	return NULL;
}

/* Files in flight queued on socket fd (LX_SEC_SCM_RIGHTS of the task) */
static size_t scm_count(const struct lx_scm_fd *s, size_t n, uint32_t fd)
{
	size_t c = 0;

	for (size_t k = 0; k < n; k++)
		c += s[k].fd == fd;
	return c;
}

/* The TCP connection record of fd (LX_SEC_TCP of the task), NULL if none */
static const struct lx_tcp *tcp_of(const struct lx_tcp *t, size_t n, uint32_t fd)
{
	for (size_t k = 0; k < n; k++)
		if (t[k].fd == fd)
			return &t[k];
	return NULL;
}

/* "127.0.0.1:8080" from a recorded address, "?" if it is not one */
static void inet_text(const uint8_t *a, uint32_t len, char *out, size_t olen)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	sa_family_t fam = 0;
	char h[INET6_ADDRSTRLEN] = "?";

	if (len >= sizeof(fam))
		memcpy(&fam, a, sizeof(fam));
	if (len == sizeof(in) && fam == AF_INET) {
		memcpy(&in, a, sizeof(in));
		inet_ntop(AF_INET, &in.sin_addr, h, sizeof(h));
		snprintf(out, olen, "%s:%u", h, ntohs(in.sin_port));
	} else if (len == sizeof(in6) && fam == AF_INET6) {
		memcpy(&in6, a, sizeof(in6));
		inet_ntop(AF_INET6, &in6.sin6_addr, h, sizeof(h));
		snprintf(out, olen, "[%s]:%u", h, ntohs(in6.sin6_port));
	} else {
		snprintf(out, olen, "?");
	}
}

/* The socket record of fd (LX_SEC_SOCKETS of the task), NULL if none */
static const struct lx_socket *sock_of(const struct lx_socket *s, size_t n, uint32_t fd)
{
	for (size_t k = 0; k < n; k++)
		if (s[k].fd == fd)
			return &s[k];
	return NULL;
}

static void json_fds(struct json *j, struct view *v, const struct task_view *tv)
{
	struct lx_tty_fd *tt = NULL;
	struct lx_scm_fd *sc = NULL;
	struct lx_socket *sk = NULL;
	struct lx_tcp *tc = NULL;
	size_t ntt = 0, nsc = 0, nsk = 0, ntc = 0;

	records(v, LX_SEC_TTYS, tv->index, sizeof(*tt), 12, (void **)&tt, &ntt);
	records(v, LX_SEC_SCM_RIGHTS, tv->index, sizeof(*sc), 16, (void **)&sc, &nsc);
	records(v, LX_SEC_SOCKETS, tv->index, sizeof(*sk), sizeof(*sk), (void **)&sk, &nsk);
	records(v, LX_SEC_TCP, tv->index, sizeof(*tc), sizeof(*tc), (void **)&tc, &ntc);
	j_open(j, "fds", '[');
	for (size_t i = 0; i < tv->nfds; i++) {
		const struct lx_fd *f = &tv->fds[i];
		const struct lx_tty_fd *te = tty_fd_of(tt, ntt, f->fd);

		j_open(j, NULL, '{');
		j_u64(j, "fd", f->fd);
		j_str(j, "kind", fd_kind(f));
		j_str(j, "path", f->kind == LX_FD_INHERIT && !f->path_off ? NULL :
				 str(v, tv->index, f->path_off));
		j_str(j, "access", accmode(f->flags));
		j_flags(j, "flags", open_flag_names, f->flags);
		j_u64(j, "flags_raw", f->flags);
		j_bool(j, "cloexec", !!(f->fdflags & FD_CLOEXEC));
		j_u64(j, "pos", f->pos);
		j_key(j, "mode");
		fprintf(j->f, "\"%#o\"", f->mode);
		if (f->kind == LX_FD_PTY && te) {
			j_u64(j, "tty", te->tty);
			j_str(j, "end", te->end == LX_TTY_MASTER ? "master" : "slave");
		}
		if (f->share_id)
			j_u64(j, "share_id", f->share_id);
		if (f->kind == LX_FD_SOCKET) {
			const struct lx_socket *k = sock_of(sk, nsk, f->fd);

			j_u64(j, "files_in_flight", scm_count(sc, nsc, f->fd));
			if (k && k->state == LX_SK_TREE_PAIR)
				j_u64(j, "peer_share_id", k->peer_share);
			if (k && k->state == LX_SK_PEER_GONE)
				j_bool(j, "peer_closed", 1);
			if (k && k->state == LX_SK_TCP_EST && tcp_of(tc, ntc, f->fd)) {
				const struct lx_tcp *t = tcp_of(tc, ntc, f->fd);
				char a[80];

				j_open(j, "tcp", '{');
				inet_text(k->addr, k->addr_len, a, sizeof(a));
				j_str(j, "local", a);
				inet_text(k->peer, k->peer_len, a, sizeof(a));
				j_str(j, "peer", a);
				j_u64(j, "send_seq", t->snd_seq);
				j_u64(j, "recv_seq", t->rcv_seq);
				j_u64(j, "send_queued", t->sndq_len);
				j_u64(j, "send_unsent", t->unsent);
				j_u64(j, "recv_queued", t->rcvq_len);
				j_u64(j, "mss", t->mss);
				j_bool(j, "wscale", (t->flags & LX_TCPF_WSCALE) != 0);
				j_u64(j, "snd_wscale", t->snd_wscale);
				j_u64(j, "rcv_wscale", t->rcv_wscale);
				j_bool(j, "sack", (t->flags & LX_TCPF_SACK) != 0);
				j_bool(j, "timestamps", (t->flags & LX_TCPF_TIMESTAMPS) != 0);
				j_u64(j, "snd_wnd", t->snd_wnd);
				j_u64(j, "rcv_wnd", t->rcv_wnd);
				j_close(j, '}');
			}
		}
		j_close(j, '}');
	}
	j_close(j, ']');
	free(tt);
	free(sc);
	free(sk);
	free(tc);
}

static void json_signals(struct json *j, const struct task_view *tv)
{
	uint64_t ign = 0;
	char b[16];

	j_open(j, "signals", '{');
	j_open(j, "handled", '[');
	for (size_t s = 0; s < tv->nsa; s++) {
		const struct lx_sigaction *a = &tv->sa[s];

		if (a->handler == (uint64_t)(uintptr_t)SIG_IGN)
			ign |= 1ull << s;
		if (a->handler <= 1)
			continue;
		j_open(j, NULL, '{');
		j_str(j, "signal", sig_name((int)s + 1, b));
		j_u64(j, "number", s + 1);
		j_hex(j, "handler", a->handler);
		j_flags(j, "flags", sa_flag_names, a->flags);
		j_hex(j, "mask", a->mask);
		j_close(j, '}');
	}
	j_close(j, ']');
	j_sigset(j, "ignored", ign);
	j_sigset(j, "blocked", tv->nthreads ? tv->threads[0].sigmask : 0);
	j_sigset(j, "pending", tv->have_core ? tv->core.sig_pending : 0);
	j_close(j, '}');
	j_open(j, "itimers", '[');
	for (size_t i = 0; i < tv->nit && i < 3; i++) {
		static const char *const which[] = { "real", "virtual", "prof" };

		j_open(j, NULL, '{');
		j_str(j, "which", which[i]);
		j_u64(j, "interval_us", tv->it[i].interval_us);
		j_u64(j, "value_us", tv->it[i].value_us);
		j_close(j, '}');
	}
	j_close(j, ']');
}

static void json_rlimits(struct json *j, const struct task_view *tv)
{
	j_open(j, "rlimits", '[');
	for (size_t r = 0; r < tv->nrl && r < (size_t)NR_RLIMITS; r++) {
		uint64_t dc, dm;

		default_rlimit((int)r, &dc, &dm);
		j_open(j, NULL, '{');
		j_str(j, "resource", rlimit_names[r]);
		j_limit(j, "cur", tv->rl[r].cur);
		j_limit(j, "max", tv->rl[r].max);
		j_bool(j, "default", tv->rl[r].cur == dc && tv->rl[r].max == dm);
		j_close(j, '}');
	}
	j_close(j, ']');
}

static void json_task(struct json *j, struct view *v, const struct task_view *tv)
{
	const struct lx_core *c = &tv->core;
	char bid[2 * LX_CKPT_BUILD_ID_MAX + 1];

	j_open(j, NULL, '{');
	j_u64(j, "index", tv->index);
	j_u64(j, "pid", tv->t.pid);
	j_u64(j, "ppid", tv->t.ppid);
	j_u64(j, "pgid", tv->t.pgid);
	j_u64(j, "sid", tv->t.sid);
	j_bool(j, "root", !!(tv->t.flags & LX_TASK_ROOT));
	j_u64(j, "exit_signal", tv->t.exit_signal);
	j_bool(j, "zombie", !!(tv->t.flags & LX_TASK_ZOMBIE));
	if (tv->t.flags & LX_TASK_ZOMBIE)
		j_u64(j, "exit_status", tv->t.exit_status);
	if (tv->have_core) {
		hex_bytes(bid, c->exe_build_id, c->exe_build_id_len);
		j_open(j, "exe", '{');
		j_str(j, "path", str(v, tv->index, c->exe_off));
		j_u64(j, "dev", c->exe_dev);
		j_u64(j, "ino", c->exe_ino);
		j_u64(j, "size", c->exe_size);
		j_u64(j, "mtime_ns", c->exe_mtime_ns);
		j_str(j, "build_id", bid);
		j_close(j, '}');
		j_str(j, "comm", c->comm);
		j_str(j, "cwd", str(v, tv->index, c->cwd_off));
		j_str(j, "root_dir", str(v, tv->index, c->root_off));
		j_key(j, "umask");
		fprintf(j->f, "\"%04o\"", c->umask & 07777);
		j_hex(j, "personality", c->personality);
		j_open(j, "uid", '[');
		for (int i = 0; i < 4; i++)
			j_u64(j, NULL, c->uid[i]);
		j_close(j, ']');
		j_open(j, "gid", '[');
		for (int i = 0; i < 4; i++)
			j_u64(j, NULL, c->gid[i]);
		j_close(j, ']');
		j_open(j, "groups", '[');
		for (uint32_t i = 0; i < c->ngroups; i++)
			j_u64(j, NULL, c->groups[i]);
		j_close(j, ']');
		j_flags(j, "flags", core_flag_names, c->flags);
		j_u64(j, "pdeath_signal", c->pdeath_sig);
		j_u64(j, "dumpable", c->dumpable);
	} else {
		j_str(j, "exe", NULL);
	}
	j_open(j, "cmdline", '[');
	for (int i = 0; i < argv_shown(tv); i++)
		j_str(j, NULL, tv->argv[i] ? tv->argv[i] : "");
	j_close(j, ']');
	j_u64(j, "environ_count", tv->envc);
	j_u64(j, "auxv_entries", tv->auxv_pairs);
	if (tv->have_mm) {
		j_open(j, "mm", '{');
		j_hex(j, "start_code", tv->mm.start_code);
		j_hex(j, "end_code", tv->mm.end_code);
		j_hex(j, "start_data", tv->mm.start_data);
		j_hex(j, "end_data", tv->mm.end_data);
		j_hex(j, "start_brk", tv->mm.start_brk);
		j_hex(j, "brk", tv->mm.brk);
		j_hex(j, "start_stack", tv->mm.start_stack);
		j_hex(j, "arg_start", tv->mm.arg_start);
		j_hex(j, "arg_end", tv->mm.arg_end);
		j_hex(j, "env_start", tv->mm.env_start);
		j_hex(j, "env_end", tv->mm.env_end);
		j_bool(j, "thp_disabled", !!(tv->mm.flags & LX_MM_THP_DISABLE));
		j_close(j, '}');
	}
	json_threads(j, v, tv);
	json_vmas(j, v, tv);
	j_open(j, "pages", '{');
	j_u64(j, "stored", tv->pages_stored);
	j_u64(j, "zero", tv->pages_zero);
	j_u64(j, "checksums", tv->nsums);
	j_close(j, '}');
	json_fds(j, v, tv);
	json_signals(j, tv);
	json_rlimits(j, tv);
	j_close(j, '}');
}

static void json_sections(struct json *j, const struct view *v)
{
	j_open(j, "sections", '[');
	for (uint32_t i = 0; i < v->im->nsec; i++) {
		const struct lx_ckpt_section *s = &v->im->sec[i];

		j_open(j, NULL, '{');
		j_u64(j, "index", i);
		j_u64(j, "type", s->type);
		j_str(j, "name", lx_section_name(s->type));
		j_bool(j, "known", s->type < LX_SEC_TYPE_MAX);
		if (s->task == LX_TASK_GLOBAL) {
			j_key(j, "task");
			fputs("null", j->f);
		} else {
			j_u64(j, "task", s->task);
		}
		j_u64(j, "offset", s->offset);
		j_u64(j, "length", s->length);
		j_u64(j, "record_size", s->record_size);
		j_close(j, '}');
	}
	j_close(j, ']');
}

static void json_ttys(struct json *j, struct view *v)
{
	struct lx_tty *t = NULL;
	size_t nt = 0;

	j_open(j, "ttys", '[');
	if (records(v, LX_SEC_TTYS, LX_TASK_GLOBAL, sizeof(*t), 64, (void **)&t, &nt) > 0) {
		for (size_t i = 0; i < nt; i++) {
			j_open(j, NULL, '{');
			j_str(j, "kind", t[i].kind == LX_TTY_PTY ? "pty" :
			      t[i].kind == LX_TTY_SHELL ? "shell" : "unknown");
			j_u64(j, "index", t[i].index);
			j_bool(j, "packet", !!(t[i].flags & LX_TTYF_PACKET));
			j_bool(j, "locked", !!(t[i].flags & LX_TTYF_LOCKED));
			j_u64(j, "rows", t[i].rows);
			j_u64(j, "cols", t[i].cols);
			j_hex(j, "lflag", t[i].lflag);
			j_u64(j, "sid", t[i].sid);
			j_u64(j, "fg_pgid", t[i].fg_pgid);
			j_close(j, '}');
		}
	}
	j_close(j, ']');
	free(t);
}

/* ---- global records: options, SysV IPC ---- */

static void *global_records(struct view *v, uint32_t type, size_t want, size_t *n)
{
	void *r = NULL;

	*n = 0;
	if (img_records(v->im, type, LX_TASK_GLOBAL, want, want, &r, n)) {
		if (img_find(v->im, type, LX_TASK_GLOBAL, &(const void *){ NULL },
			     &(uint64_t){ 0 }, &(uint32_t){ 0 }) == 0)
			problem_err(v);
		err_clear();
		return NULL;
	}
	return r;
}

/* semaphore k of a set, or -1 if its value lies outside the blob */
static long sem_value(const struct view *v, const struct lx_sysv_sem *s, uint32_t k)
{
	const void *blob;
	uint64_t len;
	uint32_t rs, val;

	if (img_find(v->im, LX_SEC_FDDATA, LX_TASK_GLOBAL, &blob, &len, &rs) ||
	    !lx_range_ok(s->data_off, (uint64_t)k * 4 + 4, len) || (uint64_t)k * 4 + 4 > s->data_len)
		return -1;
	memcpy(&val, (const uint8_t *)blob + s->data_off + 4 * k, 4);
	return (long)lx_le32_to_cpu(val);
}

/* what every SysV object has: id, key, owner, mode, leaked */
static void json_sysv_perm(struct json *j, const struct lx_sysv_perm *p)
{
	j_u64(j, "id", p->id);
	j_hex(j, "key", p->key);
	j_u64(j, "uid", p->uid);
	j_u64(j, "gid", p->gid);
	j_hex(j, "mode", p->mode);
	j_bool(j, "leaked", (p->flags & LX_IPC_LEAKED) != 0);
}

static void json_globals(struct json *j, struct view *v)
{
	struct lx_shared_anon *sa;
	struct lx_options o;
	struct lx_sysv_shm *shm;
	struct lx_sysv_sem *sem;
	struct lx_sysv_msg *msg;
	size_t n;
	char names[128];

	if (options_read(v->im, &o)) {
		problem_err(v);
		memset(&o, 0, sizeof(o));
	}
	j_open(j, "options", '{');
	j_bool(j, "shell_job", (o.flags & LX_OPT_SHELL_JOB) != 0);
	j_bool(j, "tcp_established", (o.flags & LX_OPT_TCP_ESTABLISHED) != 0);
	j_open(j, "allow_leak", '[');
	if (o.allow_leak) {
		char *save = NULL, *tok;

		options_leak_names(o.allow_leak, names, sizeof(names));
		for (tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			j_str(j, NULL, tok);
	}
	j_close(j, ']');
	j_close(j, '}');
	j_open(j, "clocks", '{');
	j_bool(j, "recorded", (o.flags & LX_OPT_CLOCKS) != 0);
	j_u64(j, "monotonic_ns", o.mono_ns);
	j_u64(j, "boottime_ns", o.boot_ns);
	j_close(j, '}');
	j_open(j, "sysv", '{');
	j_open(j, "shm", '[');
	shm = global_records(v, LX_SEC_SYSV_SHM, sizeof(*shm), &n);
	for (size_t i = 0; i < n; i++) {
		j_open(j, NULL, '{');
		json_sysv_perm(j, &shm[i].perm);
		j_u64(j, "size", shm[i].size);
		j_u64(j, "stored", shm[i].data_len);
		j_close(j, '}');
	}
	free(shm);
	j_close(j, ']');
	j_open(j, "sem", '[');
	sem = global_records(v, LX_SEC_SYSV_SEM, sizeof(*sem), &n);
	for (size_t i = 0; i < n; i++) {
		j_open(j, NULL, '{');
		json_sysv_perm(j, &sem[i].perm);
		j_open(j, "values", '[');
		for (uint32_t k = 0; k < sem[i].nsems && k < 65536; k++)
			j_i64(j, NULL, sem_value(v, &sem[i], k));
		j_close(j, ']');
		j_close(j, '}');
	}
	free(sem);
	j_close(j, ']');
	j_open(j, "msg", '[');
	msg = global_records(v, LX_SEC_SYSV_MSG, sizeof(*msg), &n);
	for (size_t i = 0; i < n; i++) {
		j_open(j, NULL, '{');
		json_sysv_perm(j, &msg[i].perm);
		j_u64(j, "messages", msg[i].qnum);
		j_u64(j, "bytes", msg[i].data_len);
		j_u64(j, "qbytes", msg[i].qbytes);
		j_close(j, '}');
	}
	free(msg);
	j_close(j, ']');
	j_close(j, '}');
	j_open(j, "shared_anon", '[');
	sa = global_records(v, LX_SEC_SHARED_ANON, sizeof(*sa), &n);
	for (size_t i = 0; i < n; i++) {
		j_open(j, NULL, '{');
		j_u64(j, "id", i + 1);
		j_u64(j, "size", sa[i].size);
		j_u64(j, "ino", sa[i].ino);
		j_u64(j, "first_task", sa[i].first_task);
		j_u64(j, "mappings", sa[i].nmaps);
		j_bool(j, "leaked", (sa[i].flags & LX_SHANON_LEAKED) != 0);
		j_close(j, '}');
	}
	free(sa);
	j_close(j, ']');
}

static void text_globals(FILE *f, struct view *v)
{
	struct lx_shared_anon *sa;
	struct lx_options o;
	struct lx_sysv_shm *shm;
	struct lx_sysv_sem *sem;
	struct lx_sysv_msg *msg;
	size_t n;
	char names[128], sz[16];

	if (options_read(v->im, &o)) {
		problem_err(v);
		memset(&o, 0, sizeof(o));
	}
	if ((o.flags & LX_OPT_CLOCKS))
		fprintf(f, "clocks   CLOCK_MONOTONIC %llu.%03llu s, CLOCK_BOOTTIME %llu.%03llu s at"
			" the dump (the restore continues them)\n",
			(unsigned long long)(o.mono_ns / 1000000000ull),
			(unsigned long long)(o.mono_ns / 1000000ull % 1000),
			(unsigned long long)(o.boot_ns / 1000000000ull),
			(unsigned long long)(o.boot_ns / 1000000ull % 1000));
	if ((o.flags & ~(uint32_t)LX_OPT_CLOCKS) || o.allow_leak)
		fprintf(f, "options  %s%sallow-leak %s\n",
			(o.flags & LX_OPT_SHELL_JOB) ? "shell-job, " : "",
			(o.flags & LX_OPT_TCP_ESTABLISHED) ? "tcp-established, " : "",
			options_leak_names(o.allow_leak, names, sizeof(names)));
	shm = global_records(v, LX_SEC_SYSV_SHM, sizeof(*shm), &n);
	for (size_t i = 0; i < n; i++) {
		human(sz, sizeof(sz), shm[i].size);
		fprintf(f, "sysv shm   id %u key %#x, %s, mode %04o uid %u gid %u, %llu bytes"
			" stored%s%s\n", shm[i].perm.id, shm[i].perm.key, sz,
			shm[i].perm.mode & 0777, shm[i].perm.uid, shm[i].perm.gid,
			(unsigned long long)shm[i].data_len,
			(shm[i].perm.mode & SHM_DEST_BIT) ? ", removed (kept while attached)" : "",
			(shm[i].perm.flags & LX_IPC_LEAKED) ? ", leaked" : "");
	}
	free(shm);
	sem = global_records(v, LX_SEC_SYSV_SEM, sizeof(*sem), &n);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "sysv sem   id %u key %#x, mode %04o uid %u gid %u%s, values",
			sem[i].perm.id, sem[i].perm.key, sem[i].perm.mode & 0777, sem[i].perm.uid,
			sem[i].perm.gid, (sem[i].perm.flags & LX_IPC_LEAKED) ? ", leaked" : "");
		for (uint32_t k = 0; k < sem[i].nsems && k < 16; k++)
			fprintf(f, " %ld", sem_value(v, &sem[i], k));
		fputs(sem[i].nsems > 16 ? " ...\n" : "\n", f);
	}
	free(sem);
	msg = global_records(v, LX_SEC_SYSV_MSG, sizeof(*msg), &n);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "sysv msg   id %u key %#x, mode %04o uid %u gid %u%s, %u message%s\n",
			msg[i].perm.id, msg[i].perm.key, msg[i].perm.mode & 0777, msg[i].perm.uid,
			msg[i].perm.gid, (msg[i].perm.flags & LX_IPC_LEAKED) ? ", leaked" : "",
			msg[i].qnum, msg[i].qnum == 1 ? "" : "s");
	free(msg);
	sa = global_records(v, LX_SEC_SHARED_ANON, sizeof(*sa), &n);
	for (size_t i = 0; i < n; i++) {
		human(sz, sizeof(sz), sa[i].size);
		fprintf(f, "shared anonymous object %zu: %s, %u mappings, first in task %u"
			" (inode %llu at dump)%s\n", i + 1, sz, sa[i].nmaps, sa[i].first_task,
			(unsigned long long)sa[i].ino,
			(sa[i].flags & LX_SHANON_LEAKED) ? ", leaked" : "");
	}
	free(sa);
}

static void print_json(struct view *v)
{
	struct json j = { .f = stdout, .first = 1 };

	fputc('{', j.f);
	j.depth = 1;
	json_header(&j, v);
	json_swap(&j, v);
	json_packed(&j, v);
	j_open(&j, "tasks", '[');
	for (size_t i = 0; i < v->ntasks; i++)
		json_task(&j, v, &v->tasks[i]);
	j_close(&j, ']');
	json_globals(&j, v);
	json_ttys(&j, v);
	json_sections(&j, v);
	/* last, so that problems found while printing are in it too */
	j_open(&j, "problems", '[');
	for (size_t i = 0; i < v->nproblems; i++)
		j_str(&j, NULL, v->problems[i]);
	if (v->problems_dropped) {
		char more[64];

		snprintf(more, sizeof(more), "... and %zu more", v->problems_dropped);
		j_str(&j, NULL, more);
	}
	j_close(&j, ']');
	fputs("\n}\n", j.f);
}

/* ------------------------------------------------------------------ */
/* text                                                                */

static void print_flags(FILE *f, const struct flag_name *t, uint64_t v, const char *sep)
{
	int first = 1;

	for (; t->name; t++) {
		if (!(v & t->bit))
			continue;
		fprintf(f, "%s%s", first ? "" : sep, t->name);
		first = 0;
	}
	if (first)
		fputs("-", f);
}

static void print_sigset(FILE *f, uint64_t set)
{
	/* SIGKILL and SIGSTOP cannot be blocked: a mask of "everything"
	 * lacks them, and reads better as what it leaves out */
	uint64_t all = ~0ull & ~(1ull << (SIGKILL - 1)) & ~(1ull << (SIGSTOP - 1));
	int invert = __builtin_popcountll(set) > 40;
	char b[16];
	int first = 1;

	if (invert && (set & all) == all) {
		fputs("all", f);
		return;
	}
	if (invert) {
		fputs("all but", f);
		set = ~set & all;
		first = 0;
	}
	for (int s = 1; s <= NSIG_KERNEL; s++) {
		if (!(set & (1ull << (s - 1))))
			continue;
		fprintf(f, "%s%s", first ? "" : " ", sig_name(s, b));
		first = 0;
	}
	if (first)
		fputs("none", f);
}

static void print_limit(FILE *f, uint64_t x)
{
	if (x == RLIM_INF)
		fputs("unlimited", f);
	else
		fprintf(f, "%llu", (unsigned long long)x);
}

static void text_tree(struct view *v, FILE *f, size_t i, int depth)
{
	const struct task_view *tv = &v->tasks[i];

	fprintf(f, "  %*s%u %s%s\n", 2 * depth, "", tv->t.pid,
		tv->have_core ? tv->core.comm : "?", tv->t.flags & LX_TASK_ROOT ? " (root)" : "");
	if ((size_t)depth >= v->ntasks)
		return;		/* a ppid cycle: each task still printed once as a root */
	for (size_t k = 0; k < v->ntasks; k++)
		if (k != i && v->tasks[k].t.ppid == tv->t.pid)
			text_tree(v, f, k, depth + 1);
}

static int has_parent(const struct view *v, size_t i)
{
	for (size_t k = 0; k < v->ntasks; k++)
		if (k != i && v->tasks[k].t.pid == v->tasks[i].t.ppid && v->tasks[i].t.ppid)
			return 1;
	return 0;
}

static void text_threads(FILE *f, struct view *v, const struct task_view *tv)
{
	fprintf(f, "  threads  %zu\n", tv->nthreads);
	for (size_t i = 0; i < tv->nthreads; i++) {
		const struct lx_thread *th = &tv->threads[i];
		const struct lx_gpregs *gp = regs_of(tv, i);
		const struct xs_info *xs = xstate_of(tv, i);
		char comm[17];

		memcpy(comm, th->comm, 16);
		comm[16] = 0;
		fprintf(f, "    tid %u%s%s%s:", th->tid, comm[0] ? " (" : "", comm,
			comm[0] ? ")" : "");
		if (gp) {
			int64_t nr = (int64_t)gp->regs[R_ORIG_RAX];

			fprintf(f, " rip %#llx rsp %#llx rbp %#llx",
				(unsigned long long)gp->regs[R_RIP],
				(unsigned long long)gp->regs[R_RSP],
				(unsigned long long)gp->regs[R_RBP]);
			if (nr >= 0) {
				const char *name = syscall_name(nr);

				fprintf(f, ", in syscall %lld%s%s%s (rax %lld)", (long long)nr,
					name ? " (" : "", name ? name : "", name ? ")" : "",
					(long long)gp->regs[R_RAX]);
			}
			fprintf(f, ", fs_base %#llx", (unsigned long long)gp->regs[R_FS_BASE]);
		} else {
			fputs(" no registers", f);
			problem(v, "task %u: thread %u has no registers", tv->index, th->tid);
		}
		fprintf(f, ", xstate %u bytes\n", xs ? xs->len : 0);
		fputs("      blocked ", f);
		print_sigset(f, th->sigmask);
		if (th->sig_pending) {
			fputs("; pending ", f);
			print_sigset(f, th->sig_pending);
		}
		if (th->sas_size)
			fprintf(f, "; sigaltstack %#llx size %llu",
				(unsigned long long)th->sas_sp, (unsigned long long)th->sas_size);
		if (th->rseq_addr)
			fprintf(f, "; rseq %#llx", (unsigned long long)th->rseq_addr);
		fputc('\n', f);
	}
}

static void text_vmas(FILE *f, struct view *v, const struct task_view *tv)
{
	uint64_t mapped = 0;
	char sz[16], st[16];

	for (size_t i = 0; i < tv->nvmas; i++)
		if (tv->vmas[i].end > tv->vmas[i].start)
			mapped += tv->vmas[i].end - tv->vmas[i].start;
	human(sz, sizeof(sz), mapped);
	human(st, sizeof(st), tv->pages_stored * PAGE);
	fprintf(f, "  memory   %zu VMAs, %s mapped; %llu pages stored (%s), %llu zero\n",
		tv->nvmas, sz, (unsigned long long)tv->pages_stored, st,
		(unsigned long long)tv->pages_zero);
	if (tv->have_mm)
		fprintf(f, "    code %#llx-%#llx data %#llx-%#llx brk %#llx-%#llx stack %#llx\n",
			(unsigned long long)tv->mm.start_code, (unsigned long long)tv->mm.end_code,
			(unsigned long long)tv->mm.start_data, (unsigned long long)tv->mm.end_data,
			(unsigned long long)tv->mm.start_brk, (unsigned long long)tv->mm.brk,
			(unsigned long long)tv->mm.start_stack);
	if (!tv->nvmas)
		return;
	fprintf(f, "    %-33s %6s %-4s %-12s %7s %6s  %s\n", "ADDRESS", "SIZE", "PROT", "KIND",
		"STORED", "ZERO", "PATH / FLAGS");
	for (size_t i = 0; i < tv->nvmas; i++) {
		const struct lx_vma *r = &tv->vmas[i];
		int shared = r->kind == LX_VMA_FILE_SHARED || r->kind == LX_VMA_SHARED_ANON ||
			     r->kind == LX_VMA_SYSV_SHM;
		int file = r->kind == LX_VMA_FILE_PRIVATE || r->kind == LX_VMA_FILE_SHARED;

		human(sz, sizeof(sz), r->end > r->start ? r->end - r->start : 0);
		fprintf(f, "    %016llx-%016llx %6s %c%c%c%c %-12s %7llu %6llu  ",
			(unsigned long long)r->start, (unsigned long long)r->end, sz,
			r->prot & PROT_READ ? 'r' : '-', r->prot & PROT_WRITE ? 'w' : '-',
			r->prot & PROT_EXEC ? 'x' : '-', shared ? 's' : 'p', vma_kind(r->kind),
			(unsigned long long)(tv->have_pagemap ? tv->vma_stored[i] : 0),
			(unsigned long long)(tv->have_pagemap ? tv->vma_zero[i] : 0));
		if (file)
			fprintf(f, "%s @%#llx", str(v, tv->index, r->path_off),
				(unsigned long long)r->pgoff);
		else if (r->kind >= LX_VMA_VDSO && r->kind <= LX_VMA_VSYSCALL)
			fprintf(f, "[%s]", vma_kind(r->kind));
		else if (r->kind == LX_VMA_SHARED_ANON && r->shared_id)
			fprintf(f, "object %u @%#llx", r->shared_id, (unsigned long long)r->pgoff);
		else if (r->kind == LX_VMA_SYSV_SHM)
			fprintf(f, "segment %llu @%#llx", (unsigned long long)r->ino,
				(unsigned long long)r->pgoff);
		if (r->flags) {
			fputs(file || r->kind >= LX_VMA_VDSO ||
			      (r->kind == LX_VMA_SHARED_ANON && r->shared_id) ? " " : "", f);
			print_flags(f, vmaf_names, r->flags, ",");
		}
		fputc('\n', f);
	}
}

static void text_fds(FILE *f, struct view *v, const struct task_view *tv)
{
	struct lx_tty_fd *tt = NULL;
	struct lx_scm_fd *sc = NULL;
	struct lx_socket *sk = NULL;
	struct lx_tcp *tc = NULL;
	size_t ntt = 0, nsc = 0, nsk = 0, ntc = 0;

	records(v, LX_SEC_TTYS, tv->index, sizeof(*tt), 12, (void **)&tt, &ntt);
	records(v, LX_SEC_SCM_RIGHTS, tv->index, sizeof(*sc), 16, (void **)&sc, &nsc);
	records(v, LX_SEC_SOCKETS, tv->index, sizeof(*sk), sizeof(*sk), (void **)&sk, &nsk);
	records(v, LX_SEC_TCP, tv->index, sizeof(*tc), sizeof(*tc), (void **)&tc, &ntc);
	fprintf(f, "  fds      %zu\n", tv->nfds);
	for (size_t i = 0; i < tv->nfds; i++) {
		const struct lx_fd *d = &tv->fds[i];
		const char *p = str(v, tv->index, d->path_off);

		fprintf(f, "    %3u %-9s %s%s %s", d->fd, fd_kind(d),
			d->kind == LX_FD_INHERIT ? "(from the restorer) " : "",
			*p ? p : "-", accmode(d->flags));
		for (const struct flag_name *t = open_flag_names; t->name; t++)
			if (d->flags & t->bit)
				fprintf(f, "|%s", t->name);
		if (d->kind == LX_FD_REG && !S_ISDIR(d->mode))
			fprintf(f, " pos %llu", (unsigned long long)d->pos);
		if (d->fdflags & FD_CLOEXEC)
			fputs(" cloexec", f);
		if (d->kind == LX_FD_PTY && tty_fd_of(tt, ntt, d->fd))
			fprintf(f, " %s of tty %u", tty_fd_of(tt, ntt, d->fd)->end == LX_TTY_MASTER ?
				"master" : "slave", tty_fd_of(tt, ntt, d->fd)->tty);
		if (d->share_id)
			fprintf(f, " shared #%u", d->share_id);
		if (d->kind == LX_FD_SOCKET && sock_of(sk, nsk, d->fd)) {
			const struct lx_socket *k = sock_of(sk, nsk, d->fd);

			if (k->state == LX_SK_TREE_PAIR)
				fprintf(f, ", connected to shared #%u", k->peer_share);
			else if (k->state == LX_SK_PEER_GONE)
				fputs(", peer closed at restore (--allow-leak=socket)", f);
			else if (k->state == LX_SK_TCP_EST && tcp_of(tc, ntc, d->fd)) {
				const struct lx_tcp *t = tcp_of(tc, ntc, d->fd);
				char a[80], b[80];

				inet_text(k->addr, k->addr_len, a, sizeof(a));
				inet_text(k->peer, k->peer_len, b, sizeof(b));
				fprintf(f, ", TCP %s -> %s established: %llu bytes to send (%u unsent),"
					" %llu to read, seq %u/%u, mss %u%s%s%s", a, b,
					(unsigned long long)t->sndq_len, t->unsent,
					(unsigned long long)t->rcvq_len, t->snd_seq, t->rcv_seq, t->mss,
					(t->flags & LX_TCPF_WSCALE) ? ", wscale" : "",
					(t->flags & LX_TCPF_SACK) ? ", sack" : "",
					(t->flags & LX_TCPF_TIMESTAMPS) ? ", timestamps" : "");
			} else if (k->state == LX_SK_TCP_EST) {
				fputs(", TCP established (no connection record)", f);
			}
		}
		if (d->kind == LX_FD_SOCKET && scm_count(sc, nsc, d->fd))
			fprintf(f, ", %zu file(s) in flight", scm_count(sc, nsc, d->fd));
		fputc('\n', f);
	}
	free(tt);
	free(sc);
	free(sk);
	free(tc);
}

static void text_signals(FILE *f, const struct task_view *tv)
{
	uint64_t ign = 0;
	int any = 0;
	char b[16];

	fputs("  signals\n", f);
	for (size_t s = 0; s < tv->nsa; s++) {
		const struct lx_sigaction *a = &tv->sa[s];

		if (a->handler == 1)
			ign |= 1ull << s;
		if (a->handler <= 1)
			continue;
		fprintf(f, "    handled %-10s handler %#llx flags ", sig_name((int)s + 1, b),
			(unsigned long long)a->handler);
		print_flags(f, sa_flag_names, a->flags, "|");
		if (a->mask) {
			fputs(" mask ", f);
			print_sigset(f, a->mask);
		}
		fputc('\n', f);
		any = 1;
	}
	if (!any)
		fputs("    handled none\n", f);
	fputs("    ignored ", f);
	print_sigset(f, ign);
	fputc('\n', f);
	if (tv->have_core && tv->core.sig_pending) {
		fputs("    pending (process) ", f);
		print_sigset(f, tv->core.sig_pending);
		fputc('\n', f);
	}
	for (size_t i = 0; i < tv->nit && i < 3; i++) {
		static const char *const which[] = { "real", "virtual", "prof" };

		if (!tv->it[i].value_us && !tv->it[i].interval_us)
			continue;
		fprintf(f, "    itimer %s: next in %llu us, every %llu us\n", which[i],
			(unsigned long long)tv->it[i].value_us,
			(unsigned long long)tv->it[i].interval_us);
	}
}

static void text_rlimits(FILE *f, const struct task_view *tv)
{
	int any = 0;

	for (size_t r = 0; r < tv->nrl && r < (size_t)NR_RLIMITS; r++) {
		uint64_t dc, dm;

		default_rlimit((int)r, &dc, &dm);
		if (tv->rl[r].cur == dc && tv->rl[r].max == dm)
			continue;
		if (!any)
			fputs("  rlimits  (those that differ from the kernel's defaults)\n", f);
		any = 1;
		fprintf(f, "    %-10s ", rlimit_names[r]);
		print_limit(f, tv->rl[r].cur);
		fputs(" / ", f);
		print_limit(f, tv->rl[r].max);
		fputs("  (default ", f);
		print_limit(f, dc);
		fputs(" / ", f);
		print_limit(f, dm);
		fputs(")\n", f);
	}
	if (!any)
		fputs("  rlimits  kernel defaults\n", f);
}

static void text_task(FILE *f, struct view *v, const struct task_view *tv)
{
	const struct lx_core *c = &tv->core;

	fprintf(f, "\ntask %u: pid %u, ppid %u, pgid %u, sid %u%s", tv->index, tv->t.pid,
		tv->t.ppid, tv->t.pgid, tv->t.sid, tv->t.flags & LX_TASK_ROOT ? " (root)" : "");
	if (tv->t.flags & LX_TASK_ZOMBIE)
		fprintf(f, ", zombie with wait status %#x", tv->t.exit_status);
	fputc('\n', f);
	if (tv->have_core) {
		char bid[2 * LX_CKPT_BUILD_ID_MAX + 1];

		hex_bytes(bid, c->exe_build_id, c->exe_build_id_len);
		fprintf(f, "  exe      %s\n", str(v, tv->index, c->exe_off));
		fprintf(f, "           dev %#llx ino %llu size %llu%s%s\n",
			(unsigned long long)c->exe_dev, (unsigned long long)c->exe_ino,
			(unsigned long long)c->exe_size, bid[0] ? " build-id " : "", bid);
	}
	fputs("  cmdline ", f);
	for (int i = 0; i < argv_shown(tv); i++)
		fprintf(f, " %s", tv->argv[i] ? tv->argv[i] : "");
	if (tv->argc > 256)
		fprintf(f, " ... (%zu arguments)", tv->argc);
	fprintf(f, "\n  environ  %zu variables\n", tv->envc);
	if (tv->have_core) {
		fprintf(f, "  comm     %s\n", c->comm);
		fprintf(f, "  cwd      %s\n", str(v, tv->index, c->cwd_off));
		fprintf(f, "  creds    uid %u/%u/%u/%u gid %u/%u/%u/%u, %u groups\n", c->uid[0],
			c->uid[1], c->uid[2], c->uid[3], c->gid[0], c->gid[1], c->gid[2],
			c->gid[3], c->ngroups);
		fprintf(f, "  state    umask %04o, personality %#x, dumpable %u, pdeath signal %u,"
			" flags ", c->umask & 07777, c->personality, c->dumpable, c->pdeath_sig);
		print_flags(f, core_flag_names, c->flags, ",");
		fputc('\n', f);
	}
	text_threads(f, v, tv);
	text_vmas(f, v, tv);
	text_fds(f, v, tv);
	text_signals(f, tv);
	text_rlimits(f, tv);
}

/* LX_SEC_OPTIONS and the global LX_SEC_TTYS */
static void text_ttys(FILE *f, struct view *v)
{
	struct lx_tty *t = NULL;
	size_t nt = 0;

	if (records(v, LX_SEC_TTYS, LX_TASK_GLOBAL, sizeof(*t), 64, (void **)&t, &nt) > 0)
		fprintf(f, "ttys     %zu\n", nt);
	for (size_t i = 0; i < nt; i++) {
		if (t[i].kind == LX_TTY_PTY)
			fprintf(f, "    %zu pty /dev/pts/%u (at dump) %ux%u%s%s", i, t[i].index,
				t[i].cols, t[i].rows, t[i].flags & LX_TTYF_PACKET ? ", packet" : "",
				t[i].flags & LX_TTYF_LOCKED ? ", locked" : "");
		else
			fprintf(f, "    %zu %s", i, t[i].kind == LX_TTY_SHELL ?
				"the user's terminal (shell job)" : "unknown kind");
		if (t[i].sid)
			fprintf(f, ", controlling terminal of session %u", t[i].sid);
		if (t[i].fg_pgid)
			fprintf(f, ", foreground group %u", t[i].fg_pgid);
		fputc('\n', f);
	}
	free(t);
}

static void print_text(struct view *v)
{
	const struct lx_ckpt_header *h = v->im->hdr;
	FILE *f = stdout;
	struct packed_info pi;
	int packed;
	char sz[16];

	/* pages packed in the image (pack.c) serve unless --swapfile is given */
	packed = !v->swap_override && !packed_parse(v->im, &pi, NULL, NULL, NULL);
	err_clear();	/* a bad packed section is already a problem (load_swap) */
	human(sz, sizeof(sz), v->im->size);
	fprintf(f, "image    %s: %s, ABI %u.%u, x86_64, %u sections\n", v->im->path, sz,
		lx_le16_to_cpu(h->version_major), lx_le16_to_cpu(h->version_minor), v->im->nsec);
	fprintf(f, "exe      %.*s\n", (int)lx_le32_to_cpu(h->exe_path_len),
		(const char *)v->im->data + lx_le64_to_cpu(h->exe_path_offset));
	if (v->have_ref) {
		char uuid[33];

		hex_bytes(uuid, v->ref.uuid, 16);
		fprintf(f, "swapfile %s", v->ref_path);
		if (packed)
			fputs(" (not needed: the pages are packed in the image)", f);
		else if (v->swap_path && strcmp(v->swap_path, v->ref_path))
			fprintf(f, " (%s)", v->swap_path);
		fprintf(f, "\n         uuid %s, snapshot %llu, %llu slots committed at dump\n",
			uuid, (unsigned long long)v->ref.snapshot,
			(unsigned long long)v->ref.slots_end);
		if (v->swap_consistent && packed)
			fputs("         the packed pages match the image's page maps\n", f);
		else if (v->swap_consistent)
			fprintf(f, "         present and consistent (%llu slots now)\n",
				(unsigned long long)v->swap_slots);
		else
			fprintf(f, "         %s: %s\n", v->swap_present ? "NOT CONSISTENT" : "MISSING",
				v->swap_problem ? v->swap_problem : "see problems");
		if (v->verify)
			fprintf(f, "         %llu pages read back, %llu fail their checksum\n",
				(unsigned long long)v->pages_verified,
				(unsigned long long)v->pages_bad);
	} else {
		fputs("swapfile none named\n", f);
	}
	if (packed)
		fprintf(f, "packed   %llu pages (%llu KiB) in %llu runs, section %d\n",
			(unsigned long long)pi.npages, (unsigned long long)pi.npages * 4,
			(unsigned long long)pi.nruns, pi.section);
	fprintf(f, "tree     %zu task%s\n", v->ntasks, v->ntasks == 1 ? "" : "s");
	for (size_t i = 0; i < v->ntasks; i++)
		if (!has_parent(v, i))
			text_tree(v, f, i, 0);
	text_globals(f, v);
	text_ttys(f, v);
	for (size_t i = 0; i < v->ntasks; i++)
		text_task(f, v, &v->tasks[i]);

	fprintf(f, "\nsections %u\n", v->im->nsec);
	for (uint32_t i = 0; i < v->im->nsec; i++) {
		const struct lx_ckpt_section *s = &v->im->sec[i];
		char task[16];

		if (s->task == LX_TASK_GLOBAL)
			snprintf(task, sizeof(task), "global");
		else
			snprintf(task, sizeof(task), "task %u", s->task);
		human(sz, sizeof(sz), s->length);
		fprintf(f, "    %3u %-9s %-8s %7s at %llu", i, lx_section_name(s->type), task, sz,
			(unsigned long long)s->offset);
		if (s->record_size)
			fprintf(f, ", %llu record%s of %u bytes",
				(unsigned long long)(s->length / s->record_size),
				s->length / s->record_size == 1 ? "" : "s", s->record_size);
		if (s->type >= LX_SEC_TYPE_MAX)
			fprintf(f, " (type %u, from a newer cryo: skipped)", s->type);
		fputc('\n', f);
	}
	if (v->nproblems) {
		fprintf(f, "\nproblems %zu\n", v->nproblems + v->problems_dropped);
		for (size_t i = 0; i < v->nproblems; i++)
			fprintf(f, "    %s\n", v->problems[i]);
		if (v->problems_dropped)
			fprintf(f, "    ... and %zu more\n", v->problems_dropped);
	}
}

/* ------------------------------------------------------------------ */

static void show_usage(FILE *f)
{
	fputs("usage: cryo show IMAGE [--json] [--verify] [--swapfile PATH]\n"
	      "\n"
	      "Summarize a checkpoint image: tasks, executable, threads and registers,\n"
	      "memory map with stored page counts, files, signals, rlimits, and the\n"
	      "swapfile it refers to.\n"
	      "\n"
	      "  --json           machine-readable output (schema: docs/image-json.md)\n"
	      "      --verify     read every stored page back and check its checksum\n"
	      "  -s, --swapfile PATH  the swapfile to check instead of the one named\n"
	      "\n"
	      "Exit status: 0 the image is readable and consistent; 1 it is unreadable\n"
	      "(the message names the section), or problems were found (listed at the\n"
	      "end; the swapfile is missing, for instance); 2 usage error.\n", f);
}

int cmd_show(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_VERIFY };
	static const struct option lo[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "swapfile", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct view v = { 0 };
	struct img im;
	int json = 0, c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = 1; break;
		case OPT_VERIFY: v.verify = 1; break;
		case 's': v.swap_override = optarg; break;
		case 'h': show_usage(stdout); return EXIT_OK;
		default: show_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		show_usage(stderr);
		return EXIT_USAGE;
	}
	progress_disable();	/* stdout may be JSON; keep stderr quiet too */
	if (img_open(&im, argv[optind])) {
		report_error("%s", err_msg());
		return EXIT_FAIL;
	}
	v.im = &im;
	if (load(&v)) {
		report_error("%s", err_msg());
		free_view(&v);
		img_close(&im);
		return EXIT_FAIL;
	}
	if (json)
		print_json(&v);
	else
		print_text(&v);
	ret = v.nproblems ? EXIT_FAIL : EXIT_OK;
	if (v.nproblems && json)
		fprintf(stderr, "cryo: image %s: %zu problem%s (see \"problems\")\n", im.path,
			v.nproblems, v.nproblems == 1 ? "" : "s");
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "cryo: writing the summary: %s\n", strerror(errno));
		ret = EXIT_FAIL;
	}
	free_view(&v);
	img_close(&im);
	return ret;
}
