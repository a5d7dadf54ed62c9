/* counter: appends an incrementing counter, one number per line, to argv[1]
 * every 20 ms (O_WRONLY|O_CREAT|O_APPEND, one write(2) per line).
 * Check: the fd still is argv[1], flags kept, and the file size and fd
 * offset equal the bytes this process wrote (nothing lost or duplicated). */
#include "scenario.h"
#include <sys/stat.h>

static const char *path;
static int fd = -1;
static unsigned long long next;
static long long written;

static void check(void)
{
	struct stat st, pst;
	int fl;
	off_t cur;

	if (fstat(fd, &st) != 0) {
		scn_fail("fstat(fd %d): %s", fd, strerror(errno));
		return;
	}
	if (stat(path, &pst) != 0)
		scn_fail("stat(%s): %s", path, strerror(errno));
	else
		SCN_EXPECT(st.st_dev == pst.st_dev && st.st_ino == pst.st_ino,
			   "fd %d is not %s (ino %lu vs %lu)", fd, path,
			   (unsigned long)st.st_ino, (unsigned long)pst.st_ino);
	SCN_EXPECT(st.st_size == written, "file size %lld, this process wrote %lld bytes",
		   (long long)st.st_size, written);
	fl = fcntl(fd, F_GETFL);
	SCN_EXPECT(fl != -1 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_APPEND),
		   "fd %d flags %#x, want O_WRONLY|O_APPEND", fd, fl);
	cur = lseek(fd, 0, SEEK_CUR);
	SCN_EXPECT(cur == written, "fd %d offset %lld, want %lld", fd, (long long)cur, written);
}

int main(int argc, char **argv)
{
	scn_init("counter");
	if (argc < 2)
		scn_die("usage: counter FILE");
	path = argv[1];
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		scn_die("open %s: %s", path, strerror(errno));
	scn_install_check();
	scn_ready();
	for (;;) {
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "%llu\n", next);
		ssize_t w = write(fd, buf, (size_t)len);

		if (w != len) {
			printf("FAIL counter: write of %llu returned %zd: %s\n", next, w,
			       w < 0 ? strerror(errno) : "short");
			fflush(stdout);
			exit(1);
		}
		written += len;
		next++;
		scn_poll(check);
		scn_sleep_ms(20);
	}
}
