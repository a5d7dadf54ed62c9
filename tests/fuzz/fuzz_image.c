/* libFuzzer target: the image reader. The input is written to a memfd and
 * opened with img_open_fd(), then every section is walked the way restore
 * does (img_records with each record struct, img_string on every string
 * offset, blobs via img_find), and finally `cryo show` and `cryo show
 * --json` run on it (show.c: the most thorough reader of records). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "image.h"
#include "fixcrc.h"

struct rec_type {
	uint32_t type;
	size_t size;
};

static const struct rec_type rec_types[] = {
	{ LX_SEC_TASKS, sizeof(struct lx_task) },
	{ LX_SEC_SWAP, sizeof(struct lx_swap_ref) },
	{ LX_SEC_CORE, sizeof(struct lx_core) },
	{ LX_SEC_MM, sizeof(struct lx_mm) },
	{ LX_SEC_VMAS, sizeof(struct lx_vma) },
	{ LX_SEC_PAGEMAP, sizeof(struct lx_page_run) },
	{ LX_SEC_THREADS, sizeof(struct lx_thread) },
	{ LX_SEC_GPREGS, sizeof(struct lx_gpregs) },
	{ LX_SEC_FDS, sizeof(struct lx_fd) },
	{ LX_SEC_RLIMITS, sizeof(struct lx_rlimit) },
	{ LX_SEC_SIGACTS, sizeof(struct lx_sigaction) },
	{ LX_SEC_ITIMERS, sizeof(struct lx_itimer) },
	{ LX_SEC_SIGINFO, sizeof(struct lx_siginfo) },
	{ LX_SEC_POSIX_TIMERS, sizeof(struct lx_posix_timer) },
	{ LX_SEC_PIPES, sizeof(struct lx_pipe) },
	{ LX_SEC_EVENTFDS, sizeof(struct lx_eventfd) },
	{ LX_SEC_TIMERFDS, sizeof(struct lx_timerfd) },
	{ LX_SEC_SIGNALFDS, sizeof(struct lx_signalfd) },
	{ LX_SEC_EPOLL, sizeof(struct lx_epoll_tfd) },
	{ LX_SEC_INOTIFY, sizeof(struct lx_inotify_watch) },
	{ LX_SEC_SOCKETS, sizeof(struct lx_socket) },
	{ LX_SEC_LOCKS, sizeof(struct lx_lock) },
};

static volatile uint64_t sink;

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += b[i];
	sink += s;
}

static void str(const struct img *im, uint32_t task, uint32_t off)
{
	const char *s = img_string(im, task, off);

	if (s)
		touch(s, strlen(s));
	err_clear();
}

/* string offsets inside records, as restore and show use them */
static void strings_of(const struct img *im, uint32_t type, uint32_t task,
		       const void *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (type) {
		case LX_SEC_SWAP:
			str(im, LX_TASK_GLOBAL, ((const struct lx_swap_ref *)recs)[i].path_off);
			break;
		case LX_SEC_CORE: {
			const struct lx_core *c = &((const struct lx_core *)recs)[i];
			str(im, task, c->cwd_off);
			str(im, task, c->root_off);
			str(im, task, c->exe_off);
			break;
		}
		case LX_SEC_VMAS:
			str(im, task, ((const struct lx_vma *)recs)[i].path_off);
			break;
		case LX_SEC_FDS: {
			const struct lx_fd *f = &((const struct lx_fd *)recs)[i];
			const void *d;
			uint64_t len;

			str(im, task, f->path_off);
			/* data_off/len into FDDATA: check the way restore must */
			if (!img_find(im, LX_SEC_FDDATA, task, &d, &len, NULL) &&
			    f->data_off <= len && f->data_len <= len - f->data_off)
				touch((const uint8_t *)d + f->data_off,
				      f->data_len > 4096 ? 4096 : f->data_len);
			break;
		}
		case LX_SEC_INOTIFY:
			str(im, task, ((const struct lx_inotify_watch *)recs)[i].path_off);
			break;
		}
	}
}

static void walk(const struct img *im)
{
	uint32_t task;

	for (uint32_t i = 0; i < im->nsec; i++) {
		const struct lx_ckpt_section *s = &im->sec[i];
		const void *d;
		uint64_t len;
		uint32_t rs;

		task = s->task;
		if (!img_find(im, s->type, task, &d, &len, &rs))
			touch(d, len);
		for (size_t k = 0; k < sizeof(rec_types) / sizeof(rec_types[0]); k++) {
			void *recs;
			size_t n;

			if (rec_types[k].type != s->type)
				continue;
			if (!img_records(im, s->type, task, rec_types[k].size, 8, &recs, &n)) {
				touch(recs, n * rec_types[k].size);
				strings_of(im, s->type, task, recs, n);
				free(recs);
			}
			err_clear();
		}
		if (s->type == LX_SEC_STRTAB) {
			/* a few offsets across the table, and past it */
			str(im, task, 0);
			str(im, task, (uint32_t)(s->length / 2));
			str(im, task, (uint32_t)s->length);
			str(im, task, (uint32_t)s->length - 1);
		}
	}
	str(im, 12345, 0);
	str(im, 12345, 1);
}

/* packed pages (pack.c): validate the section, then read every slot its
 * runs claim through swap_read, as a restore would (each page is checked
 * against its sum there) */
static void packed(const struct img *im)
{
	const struct lx_packed_run *runs;
	struct packed_info pi;
	struct swapfile *sw = NULL;
	uint8_t page[LX_CKPT_PAGE_SIZE];

	if (packed_parse(im, &pi, &runs, NULL, NULL) == 0 &&
	    packed_swap_open(im, &sw, NULL) == 0) {
		for (uint64_t r = 0; r < pi.nruns && r < 64; r++)
			for (uint64_t k = 0; k < runs[r].npages && k < 64; k++)
				if (swap_read(sw, runs[r].slot + k, 1, page) == 0)
					touch(page, sizeof(page));
		/* a slot no run holds, and one past the end */
		(void)swap_read(sw, pi.slots_end ? pi.slots_end - 1 : 0, 1, page);
		(void)swap_read(sw, pi.slots_end, 1, page);
		swap_close(sw);
	}
	err_clear();
}

static int devnull = -1;

static void show(int fd, int json)
{
	char path[64], *argv[4];
	int argc = 0, saved_out, saved_err;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[argc++] = "show";
	if (json)
		argv[argc++] = "--json";
	argv[argc++] = path;
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(devnull, 1);
	dup2(devnull, 2);
	(void)cmd_show(argc, argv);
	fflush(stdout);
	fflush(stderr);
	clearerr(stdout);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	err_clear();
}

static void one(const uint8_t *data, size_t size)
{
	struct img im;
	int fd;

	if (devnull < 0)
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	err_clear();
	if (img_open_fd(&im, fd, "fuzz") == 0) {
		walk(&im);
		packed(&im);
		img_close(&im);
		err_clear();
		if (!getenv("FUZZ_NO_SHOW")) {
			show(fd, 0);
			show(fd, 1);
		}
	}
	err_clear();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	one(data, size);
	fixed = malloc(size ? size : 1);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	fuzz_fix_crcs(fixed, size);
	if (size < LX_CKPT_HEADER_SIZE || memcmp(fixed, data, size))
		one(fixed, size);
	free(fixed);
	return 0;
}
