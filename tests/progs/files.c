/* files: opens argv[1] O_WRONLY|O_APPEND|O_CREAT and appends 100 bytes;
 * creates argv[2] with 8192 known bytes, opens it O_RDONLY|O_CLOEXEC and
 * seeks to 1234. Check:
 *  - both fds still are those files (same numbers, dev/ino, /proc link),
 *  - F_GETFL equal to start-up (access mode, O_APPEND), FD_CLOEXEC kept,
 *  - read-only fd: offset 1234, reading returns the bytes at 1234 (then it
 *    seeks back so the check can run again),
 *  - append fd: offset at the end; after lseek(fd, 0, SEEK_SET) a 16-byte
 *    record written lands at the end (O_APPEND semantics); the whole file
 *    is the 100 bytes plus one record per check,
 *  - no fd other than 0, 1, 2 and these two is open. */
#include "scenario.h"
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#define RO_SIZE 8192
#define RO_OFF 1234
#define FIRST 100
#define REC 16

static const char *apath, *rpath;
static char areal[PATH_MAX], rreal[PATH_MAX];
static int afd, rfd;
static int afl0, rfl0;
static struct stat ast0, rst0;
static unsigned nchecks;
static long long asize;		/* what the append file should measure */

static unsigned char ro_byte(size_t k)
{
	return (unsigned char)(k * 7 + k / 251);
}

static unsigned char first_byte(size_t k)
{
	return k == FIRST - 1 ? '\n' : (unsigned char)('a' + k % 26);
}

static void check_ident(int fd, const char *path, const char *real, const struct stat *st0)
{
	struct stat st, pst;
	char link[64], target[PATH_MAX];
	ssize_t n;

	if (fstat(fd, &st) != 0) {
		scn_fail("fstat(fd %d): %s", fd, strerror(errno));
		return;
	}
	SCN_EXPECT(st.st_dev == st0->st_dev && st.st_ino == st0->st_ino,
		   "fd %d: ino %lu, was %lu", fd, (unsigned long)st.st_ino,
		   (unsigned long)st0->st_ino);
	if (stat(path, &pst) == 0)
		SCN_EXPECT(pst.st_ino == st.st_ino, "fd %d is not %s", fd, path);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		scn_fail("readlink %s: %s", link, strerror(errno));
		return;
	}
	target[n] = '\0';
	SCN_EXPECT(strcmp(target, real) == 0, "fd %d -> %s, want %s", fd, target, real);
}

static void check_fd_table(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char extra[256] = "";
	size_t len = 0;

	if (!d) {
		scn_fail("opendir /proc/self/fd: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd <= 2 || fd == afd || fd == rfd || fd == dirfd(d))
			continue;
		if (len < sizeof(extra) - 16)
			len += (size_t)snprintf(extra + len, sizeof(extra) - len, " %d", fd);
	}
	closedir(d);
	SCN_EXPECT(len == 0, "unexpected open fds:%s", extra);
}

static void check_ro(void)
{
	unsigned char buf[256];
	off_t cur = lseek(rfd, 0, SEEK_CUR);
	ssize_t n;
	size_t bad = 0;

	SCN_EXPECT(cur == RO_OFF, "ro fd %d offset %lld, want %d", rfd, (long long)cur, RO_OFF);
	if (cur != RO_OFF)
		return;
	n = read(rfd, buf, sizeof(buf));
	SCN_EXPECT(n == (ssize_t)sizeof(buf), "ro fd read returned %zd (%s)", n,
		   n < 0 ? strerror(errno) : "short");
	for (ssize_t k = 0; k < n; k++)
		if (buf[k] != ro_byte(RO_OFF + (size_t)k))
			bad++;
	SCN_EXPECT(bad == 0, "ro fd: %zu of %zd bytes read at %d differ", bad, n, RO_OFF);
	if (lseek(rfd, RO_OFF, SEEK_SET) != RO_OFF)
		scn_fail("lseek back: %s", strerror(errno));
}

static void check_append(void)
{
	struct stat st;
	off_t cur = lseek(afd, 0, SEEK_CUR);
	char rec[32];
	unsigned char *data;
	size_t len = 0, bad = 0, first = 0;
	ssize_t w;

	SCN_EXPECT(cur == asize, "append fd %d offset %lld, want %lld", afd, (long long)cur, asize);
	if (fstat(afd, &st) == 0)
		SCN_EXPECT(st.st_size == asize, "append file size %lld, want %lld",
			   (long long)st.st_size, asize);
	/* O_APPEND: the write goes to the end even from offset 0 */
	if (lseek(afd, 0, SEEK_SET) != 0)
		scn_fail("lseek(append fd, 0): %s", strerror(errno));
	snprintf(rec, sizeof(rec), "CHECK%010u\n", nchecks);
	w = write(afd, rec, REC);
	if (w != REC) {
		scn_fail("append write returned %zd: %s", w, w < 0 ? strerror(errno) : "short");
		return;
	}
	nchecks++;
	asize += REC;
	cur = lseek(afd, 0, SEEK_CUR);
	SCN_EXPECT(cur == asize, "after append: offset %lld, want %lld", (long long)cur, asize);

	data = (unsigned char *)scn_read_file(apath, &len);
	if (!data) {
		scn_fail("read %s: %s", apath, strerror(errno));
		return;
	}
	SCN_EXPECT(len == (size_t)asize, "append file has %zu bytes, want %lld", len, asize);
	for (size_t k = 0; k < len && k < (size_t)asize; k++) {
		unsigned char want;

		if (k < FIRST) {
			want = first_byte(k);
		} else {
			snprintf(rec, sizeof(rec), "CHECK%010u\n", (unsigned)((k - FIRST) / REC));
			want = (unsigned char)rec[(k - FIRST) % REC];
		}
		if (data[k] != want) {
			if (!bad)
				first = k;
			bad++;
		}
	}
	SCN_EXPECT(bad == 0, "append file: %zu bytes differ, first at %zu", bad, first);
	free(data);
}

static void check(void)
{
	int fl;

	check_ident(afd, apath, areal, &ast0);
	check_ident(rfd, rpath, rreal, &rst0);
	fl = fcntl(afd, F_GETFL);
	SCN_EXPECT(fl == afl0 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_APPEND),
		   "append fd %d F_GETFL %#x, was %#x", afd, fl, afl0);
	fl = fcntl(rfd, F_GETFL);
	SCN_EXPECT(fl == rfl0 && (fl & O_ACCMODE) == O_RDONLY && !(fl & O_APPEND),
		   "ro fd %d F_GETFL %#x, was %#x", rfd, fl, rfl0);
	fl = fcntl(afd, F_GETFD);
	SCN_EXPECT(fl == 0, "append fd %d F_GETFD %d, want 0", afd, fl);
	fl = fcntl(rfd, F_GETFD);
	SCN_EXPECT(fl == FD_CLOEXEC, "ro fd %d F_GETFD %d, want FD_CLOEXEC", rfd, fl);
	check_ro();
	check_append();
	check_fd_table();
}

int main(int argc, char **argv)
{
	unsigned char buf[RO_SIZE];
	int fd;

	scn_init("files");
	if (argc < 3)
		scn_die("usage: files APPEND_FILE RO_FILE");
	apath = argv[1];
	rpath = argv[2];

	for (size_t k = 0; k < RO_SIZE; k++)
		buf[k] = ro_byte(k);
	fd = open(rpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, RO_SIZE) != RO_SIZE || close(fd) != 0)
		scn_die("create %s: %s", rpath, strerror(errno));

	afd = open(apath, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (afd < 0)
		scn_die("open %s: %s", apath, strerror(errno));
	if (ftruncate(afd, 0) != 0)
		scn_die("ftruncate %s: %s", apath, strerror(errno));
	for (size_t k = 0; k < FIRST; k++)
		buf[k] = first_byte(k);
	if (write(afd, buf, FIRST) != FIRST)
		scn_die("write %s: %s", apath, strerror(errno));
	asize = FIRST;

	rfd = open(rpath, O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		scn_die("open %s: %s", rpath, strerror(errno));
	if (lseek(rfd, RO_OFF, SEEK_SET) != RO_OFF)
		scn_die("lseek: %s", strerror(errno));

	afl0 = fcntl(afd, F_GETFL);
	rfl0 = fcntl(rfd, F_GETFL);
	if (fstat(afd, &ast0) != 0 || fstat(rfd, &rst0) != 0)
		scn_die("fstat: %s", strerror(errno));
	if (!realpath(apath, areal) || !realpath(rpath, rreal))
		scn_die("realpath: %s", strerror(errno));

	scn_install_check();
	scn_ready();
	scn_loop(check);
}
