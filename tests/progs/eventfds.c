/* eventfds: an eventfd with count 7 (O_NONBLOCK, FD_CLOEXEC) and one in
 * semaphore mode with count 3. Check: the first reads 7, the second reads
 * 1 (semaphore) and then shows count 2 in fdinfo; flags kept; the values
 * are written back so the check can run again. */
#include "scenario.h"
#include <sys/eventfd.h>

static int efd, sfd;

static uint64_t fdinfo_count(int fd)
{
	char p[64], *s, *k;
	size_t len;
	uint64_t v = ~0ull;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	s = scn_read_file(p, &len);
	if (s && (k = strstr(s, "eventfd-count:")))
		v = strtoull(k + 14, NULL, 16);
	free(s);
	return v;
}

static void check(void)
{
	uint64_t v = 0, one = 1, seven = 7;
	ssize_t n = read(efd, &v, sizeof(v));

	SCN_EXPECT(n == 8 && v == 7, "eventfd read returned %zd, value %llu, want 7", n,
		   (unsigned long long)v);
	if (n == 8 && write(efd, &seven, sizeof(seven)) != 8)
		scn_fail("eventfd write: %s", strerror(errno));
	n = read(sfd, &v, sizeof(v));
	SCN_EXPECT(n == 8 && v == 1, "semaphore eventfd read %zd, value %llu, want 1", n,
		   (unsigned long long)v);
	SCN_EXPECT(fdinfo_count(sfd) == 2, "semaphore count after one read %llu, want 2",
		   (unsigned long long)fdinfo_count(sfd));
	if (n == 8 && write(sfd, &one, sizeof(one)) != 8)
		scn_fail("semaphore write: %s", strerror(errno));
	SCN_EXPECT(fcntl(efd, F_GETFD) == FD_CLOEXEC, "eventfd lost FD_CLOEXEC");
	SCN_EXPECT(fcntl(efd, F_GETFL) & O_NONBLOCK, "eventfd lost O_NONBLOCK");
	SCN_EXPECT(fcntl(sfd, F_GETFD) == 0, "semaphore eventfd has FD_CLOEXEC");
	SCN_EXPECT(fcntl(sfd, F_GETFL) & O_NONBLOCK, "semaphore eventfd lost O_NONBLOCK");
}

int main(void)
{
	scn_init("eventfds");
	efd = eventfd(7, EFD_NONBLOCK | EFD_CLOEXEC);
	sfd = eventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE);
	if (efd < 0 || sfd < 0)
		scn_die("eventfd: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
