/* memfds: memfd "cryo-sealed" (10000 patterned bytes, offset 300, seals
 * F_SEAL_SHRINK|F_SEAL_GROW) and memfd "cryo-plain" (no sealing allowed,
 * 5 bytes). Check: names, contents, offsets, seals (growing fails), and
 * that the plain one still cannot be sealed. */
#include "scenario.h"
#include <sys/mman.h>

static int m1, m2;

static void check(void)
{
	char p[64], link[256] = "", b[16];
	ssize_t n;
	size_t bad = 0;
	unsigned char buf[10000];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", m1);
	n = readlink(p, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	SCN_EXPECT(!strcmp(link, "/memfd:cryo-sealed (deleted)"), "m1 is %s", link);
	SCN_EXPECT(fcntl(m1, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "m1 seals %#x",
		   fcntl(m1, F_GET_SEALS));
	SCN_EXPECT(lseek(m1, 0, SEEK_CUR) == 300, "m1 offset %lld",
		   (long long)lseek(m1, 0, SEEK_CUR));
	if (pread(m1, buf, sizeof(buf), 0) != sizeof(buf))
		scn_fail("m1 read: %s", strerror(errno));
	for (size_t k = 0; k < sizeof(buf); k++)
		bad += buf[k] != (unsigned char)(k * 7);
	SCN_EXPECT(!bad, "m1: %zu bytes differ", bad);
	SCN_EXPECT(ftruncate(m1, 20000) < 0 && errno == EPERM, "m1 could grow");
	SCN_EXPECT(fcntl(m2, F_GET_SEALS) == F_SEAL_SEAL, "m2 seals %#x", fcntl(m2, F_GET_SEALS));
	SCN_EXPECT(pread(m2, b, sizeof(b), 0) == 5 && !memcmp(b, "plain", 5), "m2 content");
	SCN_EXPECT(fcntl(m2, F_GETFD) == FD_CLOEXEC, "m2 lost FD_CLOEXEC");
}

int main(void)
{
	unsigned char buf[10000];

	scn_init("memfds");
	for (size_t k = 0; k < sizeof(buf); k++)
		buf[k] = (unsigned char)(k * 7);
	m1 = memfd_create("cryo-sealed", MFD_ALLOW_SEALING);
	m2 = memfd_create("cryo-plain", MFD_CLOEXEC);
	if (m1 < 0 || m2 < 0 || write(m1, buf, sizeof(buf)) != sizeof(buf) ||
	    write(m2, "plain", 5) != 5 || lseek(m1, 300, SEEK_SET) != 300 ||
	    fcntl(m1, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		scn_die("memfd: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
