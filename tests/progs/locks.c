/* locks: flock(LOCK_EX) on argv[1]; POSIX write lock on bytes 10..19 and
 * read lock on 100..EOF of argv[2]; OFD write lock on all of argv[3].
 * Check: the locks are listed in /proc/self/fdinfo; another open file of
 * argv[1] cannot flock it; a child process's F_SETLK on argv[2] bytes 15
 * and 200 fails (write) while byte 50 succeeds; another open file cannot
 * take an OFD lock on argv[3]. */
#include "scenario.h"
#include <sys/file.h>
#include <sys/wait.h>

static int f1, f2, f3;
static const char *p1, *p2, *p3;

static int child_setlk(off_t start, short type)
{
	pid_t c = fork();
	int st;

	if (c == 0) {
		int fd = open(p2, O_RDWR);
		struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start,
				    .l_len = 1 };

		_exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
	}
	if (c < 0 || waitpid(c, &st, 0) != c)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check(void)
{
	int fd = open(p1, O_RDONLY | O_CLOEXEC);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	SCN_EXPECT(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK,
		   "flock on %s was not held", p1);
	if (fd >= 0)
		close(fd);
	SCN_EXPECT(child_setlk(15, F_WRLCK) == 1, "POSIX write lock on 10..19 not held");
	SCN_EXPECT(child_setlk(200, F_WRLCK) == 1, "POSIX read lock on 100.. not held");
	SCN_EXPECT(child_setlk(200, F_RDLCK) == 0, "POSIX read lock on 100.. is a write lock");
	SCN_EXPECT(child_setlk(50, F_WRLCK) == 0, "byte 50 is locked");
	fd = open(p3, O_RDWR | O_CLOEXEC);
	SCN_EXPECT(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) < 0 && errno == EAGAIN,
		   "OFD lock on %s not held", p3);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10 };
	struct flock r = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100 };
	struct flock o = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	scn_init("locks");
	if (argc < 4)
		scn_die("usage: locks F1 F2 F3");
	p1 = argv[1];
	p2 = argv[2];
	p3 = argv[3];
	f1 = open(p1, O_RDWR | O_CREAT, 0644);
	f2 = open(p2, O_RDWR | O_CREAT, 0644);
	f3 = open(p3, O_RDWR | O_CREAT, 0644);
	if (f1 < 0 || f2 < 0 || f3 < 0 || flock(f1, LOCK_EX) || fcntl(f2, F_SETLK, &w) ||
	    fcntl(f2, F_SETLK, &r) || fcntl(f3, F_OFD_SETLK, &o))
		scn_die("locks: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
