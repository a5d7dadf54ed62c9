/* unlinked: creates argv[1] with 100000 patterned bytes, opens it O_RDWR
 * (offset 777) and O_RDONLY (offset 5), then unlinks it. Check: both fds
 * still read the pattern at their offsets, share the inode (a byte written
 * through one is read through the other), nlink is 0, the name is gone. */
#include "scenario.h"
#include <sys/stat.h>

#define SIZE 100000

static int rw, ro;
static const char *path;

static unsigned char pat(size_t k)
{
	return (unsigned char)(k * 13 + k / 997);
}

static void check_at(int fd, off_t off)
{
	unsigned char b[64];
	size_t bad = 0;

	SCN_EXPECT(lseek(fd, 0, SEEK_CUR) == off, "fd %d offset %lld, want %lld", fd,
		   (long long)lseek(fd, 0, SEEK_CUR), (long long)off);
	if (pread(fd, b, sizeof(b), off) != sizeof(b)) {
		scn_fail("pread fd %d: %s", fd, strerror(errno));
		return;
	}
	for (size_t k = 0; k < sizeof(b); k++)
		bad += b[k] != pat((size_t)off + k);
	SCN_EXPECT(!bad, "fd %d: %zu bytes differ at %lld", fd, bad, (long long)off);
}

static void check(void)
{
	struct stat st;
	unsigned char c = 0x5a, o = pat(SIZE - 1), got = 0;

	check_at(rw, 777);
	check_at(ro, 5);
	SCN_EXPECT(fstat(rw, &st) == 0 && st.st_nlink == 0 && st.st_size == SIZE,
		   "nlink %lu size %lld", (unsigned long)st.st_nlink, (long long)st.st_size);
	SCN_EXPECT(access(path, F_OK) < 0, "%s exists again", path);
	SCN_EXPECT((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "ro fd is not O_RDONLY");
	if (pwrite(rw, &c, 1, SIZE - 1) != 1 || pread(ro, &got, 1, SIZE - 1) != 1 || got != c)
		scn_fail("fds do not share the file: wrote %#x read %#x", c, got);
	if (pwrite(rw, &o, 1, SIZE - 1) != 1)
		scn_fail("pwrite back: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	static unsigned char buf[SIZE];

	scn_init("unlinked");
	if (argc < 2)
		scn_die("usage: unlinked PATH");
	path = argv[1];
	for (size_t k = 0; k < SIZE; k++)
		buf[k] = pat(k);
	rw = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (rw < 0 || write(rw, buf, SIZE) != SIZE)
		scn_die("create %s: %s", path, strerror(errno));
	ro = open(path, O_RDONLY);
	if (ro < 0 || lseek(rw, 777, SEEK_SET) != 777 || lseek(ro, 5, SEEK_SET) != 5 ||
	    unlink(path) < 0)
		scn_die("open/unlink %s: %s", path, strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
