/* evfd: holds an eventfd with counter 7 (restored since issue #6; see also
 * eventfds.c).
 * Check: reading the eventfd returns 7 (then 7 is written back). */
#include "scenario.h"
#include <sys/eventfd.h>

static int efd;

static void check(void)
{
	uint64_t v = 0, seven = 7;
	ssize_t n = read(efd, &v, sizeof(v));

	SCN_EXPECT(n == 8 && v == 7, "eventfd %d read returned %zd, value %llu, want 7", efd, n,
		   (unsigned long long)v);
	if (n == 8 && write(efd, &seven, sizeof(seven)) != 8)
		scn_fail("eventfd write: %s", strerror(errno));
}

int main(void)
{
	uint64_t seven = 7;

	scn_init("evfd");
	efd = eventfd(0, EFD_NONBLOCK);
	if (efd < 0)
		scn_die("eventfd: %s", strerror(errno));
	if (write(efd, &seven, sizeof(seven)) != 8)
		scn_die("eventfd write: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
