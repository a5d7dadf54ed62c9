/* Image streams (see pack.c for packed images):
 *  - cryo -p PID -f - dumps into a private temporary directory, packs, and
 *    writes the packed image to stdout while the tree is still frozen (so a
 *    failed write leaves it running, even with --kill);
 *  - cryo -r -f - spools stdin to a memfd, since the reader wants random
 *    access, checks it for truncation, and restores from that fd. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "pack.h"

#define STREAM_MAX	IMG_MAX_MAPPED	/* the most image.c takes */

struct stream_dir {
	char dir[4096], image[4200], swap[4200], packed[4200];
	pid_t *pids;		/* the tree, from the image */
	size_t npids;
};

/* The pids of the image's tasks, to wait for after --kill */
static void note_pids(struct stream_dir *s)
{
	struct lx_task *t = NULL;
	size_t n = 0;
	struct img im;

	if (img_open(&im, s->image)) {
		err_clear();
		return;
	}
	if (!img_records(&im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*t), 32, (void **)&t, &n)) {
		s->pids = calloc(n ? n : 1, sizeof(*s->pids));
		for (size_t i = 0; s->pids && i < n; i++)
			s->pids[s->npids++] = (pid_t)t[i].pid;
	}
	err_clear();	/* best effort: only a wait depends on it */
	free(t);
	img_close(&im);
}

/* With --kill, the stream ends (stdout closes) only once the killed
 * processes are gone, so that a restore reading it on this same machine
 * finds their pids free: `cryo -p PID -f - --kill | cryo -r -f -` works. */
static void wait_gone(const struct stream_dir *s)
{
	for (int tries = 0; tries < 1000; tries++) {	/* 10 s */
		size_t left = 0;

		for (size_t i = 0; i < s->npids; i++) {
			if (s->pids[i] <= 0)
				continue;
			/* a task killed while we traced it stays our zombie (not
			 * its parent's) until we wait for it: hand it back */
			waitpid(s->pids[i], NULL, WNOHANG | __WALL);
			if (kill(s->pids[i], 0) == 0 || errno != ESRCH)
				left++;
		}
		if (!left)
			return;
		usleep(10000);
	}
	warn("stream: killed processes still exist after 10 s (zombies whose parent does "
	     "not reap them?): a restore on this machine may find their pids in use");
}

static int stream_dir_make(struct stream_dir *s)
{
	const char *t = getenv("TMPDIR");

	if (!t || !*t)
		t = "/tmp";
	snprintf(s->dir, sizeof(s->dir), "%s/cryo-stream.XXXXXX", t);
	if (!mkdtemp(s->dir))
		return err_sys(-errno, "stream: creating a temporary directory in %s "
			       "(set TMPDIR)", t);
	snprintf(s->image, sizeof(s->image), "%s/image", s->dir);
	snprintf(s->swap, sizeof(s->swap), "%s/pages.swap", s->dir);
	snprintf(s->packed, sizeof(s->packed), "%s/packed", s->dir);
	return 0;
}

static void stream_dir_remove(struct stream_dir *s)
{
	unlink(s->image);
	unlink(s->swap);
	unlink(s->packed);
	rmdir(s->dir);
}

static int write_fd_all(int fd, int src, uint64_t len)
{
	uint64_t done = 0;
	off_t off = 0;

	while (done < len) {
		ssize_t n = sendfile(fd, src, &off, len - done > (1u << 30) ? (1u << 30) : len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
			char buf[65536];
			ssize_t r = pread(src, buf, sizeof(buf), off);

			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			for (ssize_t w = 0; w < r;) {
				ssize_t k = write(fd, buf + w, r - w);

				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0)
					return k < 0 ? -errno : -EIO;
				w += k;
			}
			off += r;
			done += r;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

/* dump_opts.after_commit of a stream dump: the tree is still frozen */
static int stream_out(const struct dump_opts *o)
{
	struct stream_dir *s = o->hook_arg;
	struct stat st;
	uint64_t size;
	int e, fd;

	e = pack_path(s->image, s->swap, s->packed);
	if (e)
		return err_ctx(e, "stream");
	note_pids(s);
	fd = open(s->packed, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		e = err_sys(-errno, "stream: reopening %s", s->packed);
		if (fd >= 0)
			close(fd);
		return e;
	}
	size = (uint64_t)st.st_size;
	e = write_fd_all(STDOUT_FILENO, fd, size);
	close(fd);
	if (e)
		return err_sys(e, "stream: writing the image to stdout (%llu bytes); the "
			       "processes were left running", (unsigned long long)size);
	if (!fstat(STDOUT_FILENO, &st) && S_ISREG(st.st_mode) && fsync(STDOUT_FILENO))
		return err_sys(-errno, "stream: fsync of stdout");
	info("stream: %llu bytes written to stdout", (unsigned long long)size);
	return 0;
}

int stream_dump(pid_t pid, const struct dump_opts *o)
{
	struct dump_opts d = *o;
	struct stream_dir s;
	void (*old)(int);
	int e;

	if (o->swapfile)
		return err_set(-EINVAL, "-f - writes a self-contained image to stdout: "
			       "--swapfile does not apply");
	if (isatty(STDOUT_FILENO))
		return err_set(-EINVAL, "-f -: stdout is a terminal; redirect it to a file "
			       "or pipe (the image is binary)");
	e = stream_dir_make(&s);
	if (e)
		return e;
	d.image = s.image;
	d.swapfile = s.swap;
	d.after_commit = stream_out;
	d.hook_arg = &s;
	/* a reader that goes away must fail the write (EPIPE), not kill cryo
	 * while it holds the tree frozen */
	old = signal(SIGPIPE, SIG_IGN);
	s.pids = NULL;
	s.npids = 0;
	e = cryo_dump(pid, &d);
	signal(SIGPIPE, old);
	stream_dir_remove(&s);
	if (!e && o->kill_after)
		wait_gone(&s);
	free(s.pids);
	return e;
}

int stream_spool_stdin(void)
{
	const struct lx_ckpt_header *h;
	uint8_t hdr[LX_CKPT_HEADER_SIZE];
	uint64_t got = 0, claimed, toff;
	struct stat st;
	char *buf;
	int fd, e = 0;

	if (isatty(STDIN_FILENO))
		return err_set(-EINVAL, "-f -: stdin is a terminal; pipe an image into it");
	if (!fstat(STDIN_FILENO, &st) && S_ISREG(st.st_mode)) {
		fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return err_sys(-errno, "stdin: dup");
		got = (uint64_t)st.st_size;
	} else {
		fd = memfd_create("cryo-stdin-image", MFD_CLOEXEC);
		if (fd < 0)
			return err_sys(-errno, "stdin: memfd_create");
		/* cryo's own spool: private like any file cryo writes (a memfd
		 * starts at 0777, which the root-restores-only-root check refuses) */
		if (fchmod(fd, 0600) < 0) {
			e = err_sys(-errno, "stdin: fchmod of the spool");
			close(fd);
			return e;
		}
		buf = malloc(1u << 20);
		if (!buf) {
			close(fd);
			return err_set(-ENOMEM, "stdin: out of memory");
		}
		for (;;) {
			ssize_t n = read(STDIN_FILENO, buf, 1u << 20);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				e = err_sys(-errno, "stdin: read after %llu bytes",
					    (unsigned long long)got);
				break;
			}
			if (n == 0)
				break;
			if (got + n > STREAM_MAX) {
				e = err_set(-EFBIG, "stdin: more than the 1 TiB an image may have");
				break;
			}
			if (pwrite(fd, buf, n, (off_t)got) != n) {
				e = err_sys(-errno, "stdin: spooling to memory");
				break;
			}
			got += n;
		}
		free(buf);
	}
	if (!e && got == 0)
		e = err_set(-EINVAL, "stdin: empty stream, no image (did the dump fail?)");
	else if (!e && got < LX_CKPT_HEADER_SIZE)
		e = err_set(-EINVAL, "stdin: truncated stream: it ends at byte %llu, inside "
			    "the %d-byte header", (unsigned long long)got, LX_CKPT_HEADER_SIZE);
	if (!e && pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr)) {
		h = (const void *)hdr;
		claimed = lx_le64_to_cpu(h->image_size);
		toff = lx_le64_to_cpu(h->section_table_offset);
		/* only a header that checks out can say how long the image is */
		if (lx_ckpt_validate_header(hdr, sizeof(hdr), claimed) == 0 && claimed > got)
			e = err_set(-EINVAL, "stdin: truncated stream: it ends at byte %llu of "
				    "the %llu its header announces, %s the section table "
				    "(at offset %llu); nothing was restored",
				    (unsigned long long)got, (unsigned long long)claimed,
				    got < toff ? "before" : "inside", (unsigned long long)toff);
		else if (lx_ckpt_validate_header(hdr, sizeof(hdr), claimed) == 0 && claimed < got)
			e = err_set(-EINVAL, "stdin: %llu bytes of trailing data after the "
				    "%llu-byte image", (unsigned long long)(got - claimed),
				    (unsigned long long)claimed);
	}
	if (e) {
		close(fd);
		return e;
	}
	/* the stream is spent: the restored process must not inherit it */
	{
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			close(null);
		}
	}
	return fd;
}
