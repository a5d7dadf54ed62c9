/* sigfd: SIGUSR2 and SIGRTMIN+2 blocked and read through a signalfd
 * (O_NONBLOCK). Check: the mask is kept, and a SIGUSR2 sent to itself is
 * read from the signalfd with its number. */
#include "scenario.h"
#include <sys/signalfd.h>

static int sfd;

static void check(void)
{
	struct signalfd_siginfo si;
	char p[64], *s, *k;
	size_t len;
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", sfd);
	s = scn_read_file(p, &len);
	k = s ? strstr(s, "sigmask:") : NULL;
	SCN_EXPECT(k && strtoull(k + 8, NULL, 16) ==
		   ((1ull << (SIGUSR2 - 1)) | (1ull << (SIGRTMIN + 2 - 1))),
		   "signalfd sigmask: %s", k ? k : "none");
	free(s);
	n = read(sfd, &si, sizeof(si));
	SCN_EXPECT(n < 0 && errno == EAGAIN, "signalfd had something before the signal: %zd", n);
	kill(getpid(), SIGUSR2);
	n = read(sfd, &si, sizeof(si));
	SCN_EXPECT(n == sizeof(si) && si.ssi_signo == SIGUSR2, "signalfd read %zd, signo %u", n,
		   n > 0 ? si.ssi_signo : 0);
}

int main(void)
{
	sigset_t set;

	scn_init("sigfd");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		scn_die("sigprocmask: %s", strerror(errno));
	sfd = signalfd(-1, &set, SFD_NONBLOCK);
	if (sfd < 0)
		scn_die("signalfd: %s", strerror(errno));
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
