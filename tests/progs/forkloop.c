/* forkloop [ignore]: a root that forks short-lived children in a tight
 * loop; each child _exits at once with status n & 0x7f (n: the fork's
 * number), the root reaps it with waitpid and checks pid and status. A
 * dump catches the tree with a child just forked, running, exiting or a
 * zombie. With "ignore", SIGCHLD is SIG_IGN: the kernel reaps the children
 * itself (a child can vanish between cryo listing and freezing it) and
 * waitpid only waits for them to be gone (ECHILD).
 *
 * The root runs with SIGUSR2 and SIGPIPE blocked and SIGHUP ignored.
 * Check: no fork or wait went wrong, the loop went on since the last
 * check, no other child exists, the signal mask and SIGHUP's disposition
 * are the same. */
#include <sys/wait.h>

#include "scenario.h"

static int ignore_chld;
static unsigned long nforks, last_checked;
static char err[512];
static sigset_t want_mask;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	if (err[0])
		return;		/* the first one tells */
	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
}

static void check(void)
{
	sigset_t m;
	struct sigaction sa;
	int st;

	SCN_EXPECT(!err[0], "%s", err);
	SCN_EXPECT(nforks > last_checked, "no fork since the last check (%lu forks)", nforks);
	last_checked = nforks;
	SCN_EXPECT(sigprocmask(SIG_BLOCK, NULL, &m) == 0 && sigismember(&m, SIGUSR2) &&
		   sigismember(&m, SIGPIPE) && !sigismember(&m, SIGUSR1) &&
		   !sigismember(&m, SIGTERM) && !sigismember(&m, SIGCHLD) &&
		   !sigismember(&m, SIGINT), "signal mask changed");
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP && s != 32 && s != 33 &&
		    sigismember(&m, s) != sigismember(&want_mask, s))
			scn_fail("signal %d %s", s, sigismember(&m, s) ? "blocked" : "unblocked");
	SCN_EXPECT(sigaction(SIGHUP, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN,
		   "SIGHUP is no longer ignored");
	SCN_EXPECT(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a child is left");
}

int main(int argc, char **argv)
{
	scn_init("forkloop");
	ignore_chld = argc > 1 && !strcmp(argv[1], "ignore");
	if (ignore_chld)
		signal(SIGCHLD, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&want_mask);
	sigaddset(&want_mask, SIGUSR2);
	sigaddset(&want_mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &want_mask, NULL);
	scn_install_check();
	scn_ready();
	for (;;) {
		unsigned long n = ++nforks;
		pid_t p = fork(), r;
		int st = 0;

		if (p == 0)
			_exit((int)(n & 0x7f));
		if (p < 0) {
			note("fork %lu: %s", n, strerror(errno));
			scn_sleep_ms(10);
			continue;
		}
		do
			r = waitpid(p, &st, 0);
		while (r < 0 && errno == EINTR);
		if (ignore_chld) {
			if (r != -1 || errno != ECHILD)
				note("fork %lu: waitpid(%d) with SIGCHLD ignored gave %d (%s)", n, p,
				     r, strerror(errno));
		} else if (r != p || !WIFEXITED(st) || WEXITSTATUS(st) != (int)(n & 0x7f)) {
			note("fork %lu: waitpid(%d) gave %d status %#x, want exit %lu (%s)", n, p, r,
			     st, n & 0x7f, r < 0 ? strerror(errno) : "");
		}
		scn_poll(check);
	}
}
