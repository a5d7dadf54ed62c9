/* cmdline: saves /proc/self/cmdline and /proc/self/environ at start-up.
 * Check: both are byte-for-byte unchanged, and cmdline still equals argv. */
#include "scenario.h"

static char *cmd0, *env0;
static size_t cmd0len, env0len;
static int g_argc;
static char **g_argv;

static void compare(const char *path, const char *saved, size_t savedlen)
{
	size_t len = 0, i = 0;
	char *now = scn_read_file(path, &len);

	if (!now) {
		scn_fail("read %s: %s", path, strerror(errno));
		return;
	}
	if (len != savedlen || memcmp(now, saved, len) != 0) {
		while (i < len && i < savedlen && now[i] == saved[i])
			i++;
		scn_fail("%s changed: %zu bytes (was %zu), first difference at byte %zu", path,
			 len, savedlen, i);
	}
	free(now);
}

static void check(void)
{
	size_t off = 0;

	compare("/proc/self/cmdline", cmd0, cmd0len);
	compare("/proc/self/environ", env0, env0len);
	for (int i = 0; i < g_argc; i++) {
		size_t l = strlen(g_argv[i]) + 1;

		if (off + l > cmd0len || memcmp(cmd0 + off, g_argv[i], l) != 0) {
			scn_fail("argv[%d] '%s' not in cmdline", i, g_argv[i]);
			break;
		}
		off += l;
	}
}

int main(int argc, char **argv)
{
	scn_init("cmdline");
	g_argc = argc;
	g_argv = argv;
	cmd0 = scn_read_file("/proc/self/cmdline", &cmd0len);
	env0 = scn_read_file("/proc/self/environ", &env0len);
	if (!cmd0 || !env0)
		scn_die("read /proc/self: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
