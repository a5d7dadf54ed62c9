/* inot: inotify (O_NONBLOCK) watching argv[1] for IN_CREATE as wd 2 (wd 1
 * was added on argv[2] and removed, so numbers do not start at 1) and
 * argv[2] for IN_DELETE as wd 3. Check: a file created in argv[1] is
 * reported with wd 2 and its name; removing it reports nothing there;
 * creating+removing in argv[2] reports IN_DELETE with wd 3. */
#include "scenario.h"
#include <sys/inotify.h>

static int in;
static const char *d1, *d2;
static unsigned nchecks;

static int next_event(struct inotify_event *ev, size_t len, int want_wd, uint32_t mask,
		      const char *name)
{
	ssize_t n = read(in, ev, len);

	if (n < (ssize_t)sizeof(*ev)) {
		scn_fail("no inotify event (read %zd: %s)", n, n < 0 ? strerror(errno) : "");
		return 0;
	}
	SCN_EXPECT(ev->wd == want_wd && (ev->mask & mask) && !strcmp(ev->name, name),
		   "event wd %d mask %#x name %s, want wd %d mask %#x name %s", ev->wd, ev->mask,
		   ev->len ? ev->name : "", want_wd, mask, name);
	return 1;
}

static void check(void)
{
	union {
		struct inotify_event ev;
		char b[4096];
	} u;
	char p[4096], name[64];
	int fd;

	snprintf(name, sizeof(name), "f%u", nchecks++);
	snprintf(p, sizeof(p), "%s/%s", d1, name);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	unlink(p);
	next_event(&u.ev, sizeof(u), 2, IN_CREATE, name);
	snprintf(p, sizeof(p), "%s/%s", d2, name);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	unlink(p);
	next_event(&u.ev, sizeof(u), 3, IN_DELETE, name);
	SCN_EXPECT(read(in, &u, sizeof(u)) < 0 && errno == EAGAIN, "more events than expected");
}

int main(int argc, char **argv)
{
	char drain[4096];
	int w;

	scn_init("inot");
	if (argc < 3)
		scn_die("usage: inot DIR1 DIR2");
	d1 = argv[1];
	d2 = argv[2];
	in = inotify_init1(IN_NONBLOCK);
	if (in < 0)
		scn_die("inotify_init1: %s", strerror(errno));
	w = inotify_add_watch(in, d2, IN_CREATE);
	if (w != 1 || inotify_rm_watch(in, w) < 0)
		scn_die("first watch %d: %s", w, strerror(errno));
	if (inotify_add_watch(in, d1, IN_CREATE) != 2 || inotify_add_watch(in, d2, IN_DELETE) != 3)
		scn_die("watches: %s", strerror(errno));
	while (read(in, drain, sizeof(drain)) > 0)	/* IN_IGNORED of wd 1 */
		;
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
