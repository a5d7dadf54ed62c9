/* sigstate: signal dispositions, pending signals and the alternate stack.
 *
 * Setup: handlers with distinct flags and masks on SIGHUP, SIGINT, SIGQUIT
 * (on the alt stack), SIGUSR2 and SIGRTMIN+2; SIGURG ignored; SIGUSR2 and
 * SIGRTMIN+2 blocked. A child (exited and reaped before READY) queues
 * SIGUSR2 with value 42 and then SIGRTMIN+2 with values 1, 2, 3: they stay
 * pending, with the child's pid as si_pid. The main thread also queues
 * SIGRTMIN+4 value 99 to itself with pthread_sigqueue (its private queue).
 *
 * Check: the dispositions are as set up and SIGQUIT (raised) runs its
 * handler on the alt stack. The first check also expects the signals still
 * pending; every later check unblocks them (once) and expects SIGUSR2 with
 * si_value 42, si_code SI_QUEUE and the child's si_pid, then the three RT
 * signals in order 1, 2, 3, and the thread-directed SIGRTMIN+4 (value 99). So: check before the dump, check after. */
#include "scenario.h"
#include <pthread.h>
#include <sys/wait.h>

#define ALT_SIZE (64 * 1024)

static char *alt;
static pid_t sender;
static volatile sig_atomic_t usr2_seen, usr2_value, usr2_pid, usr2_code;
static volatile sig_atomic_t rt_vals[8], nrt, quit_on_alt, quit_seen, rt4_value, rt4_seen;
static int nchecks, delivered;

static void on_hup(int s, siginfo_t *si, void *uc) { (void)s; (void)si; (void)uc; }
static void on_int(int s) { (void)s; }

static void on_quit(int s)
{
	char here;

	(void)s;
	quit_seen = 1;
	quit_on_alt = &here >= alt && &here < alt + ALT_SIZE;
}

static void on_usr2(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	usr2_seen++;
	usr2_value = si->si_value.sival_int;
	usr2_pid = si->si_pid;
	usr2_code = si->si_code;
}

static void on_rt(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	if (s == SIGRTMIN + 4) {
		rt4_seen++;
		rt4_value = si->si_value.sival_int;
		return;
	}
	if (nrt < 8)
		rt_vals[nrt] = si->si_value.sival_int;
	nrt++;
}

struct want {
	int sig;
	void *handler;
	int flags;	/* compared under FLAGS_MASK */
	int masked;	/* a signal that must be in sa_mask, or 0 */
};

#define FLAGS_MASK (SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER | SA_RESETHAND)

static struct want wants[] = {
	{ SIGHUP, (void *)on_hup, SA_SIGINFO | SA_RESTART, SIGINT },
	{ SIGINT, (void *)on_int, SA_NODEFER, SIGTERM },
	{ SIGQUIT, (void *)on_quit, SA_ONSTACK | SA_RESTART, 0 },
	{ SIGUSR2, (void *)on_usr2, SA_SIGINFO, SIGHUP },
	{ 0, (void *)on_rt, SA_SIGINFO | SA_RESTART, 0 },	/* SIGRTMIN+2 */
	{ SIGURG, (void *)SIG_IGN, 0, 0 },
	{ 0, (void *)on_rt, SA_SIGINFO, 0 },	/* SIGRTMIN+4 */
};

static void install(const struct want *w)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (w->masked)
		sigaddset(&sa.sa_mask, w->masked);
	sa.sa_flags = w->flags;
	if (w->flags & SA_SIGINFO)
		sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))w->handler;
	else
		sa.sa_handler = (void (*)(int))w->handler;
	if (sigaction(w->sig, &sa, NULL))
		scn_die("sigaction(%d): %s", w->sig, strerror(errno));
}

static void check(void)
{
	sigset_t pend, unblock;
	stack_t ss;

	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
		struct sigaction sa;
		void *h;

		sigaction(wants[i].sig, NULL, &sa);
		h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
		SCN_EXPECT(h == wants[i].handler, "signal %d: handler %p, want %p", wants[i].sig,
			   h, wants[i].handler);
		SCN_EXPECT((int)(sa.sa_flags & FLAGS_MASK) == wants[i].flags,
			   "signal %d: flags %#x, want %#x", wants[i].sig,
			   (int)(sa.sa_flags & FLAGS_MASK), wants[i].flags);
		SCN_EXPECT(!wants[i].masked || sigismember(&sa.sa_mask, wants[i].masked),
			   "signal %d: mask lost signal %d", wants[i].sig, wants[i].masked);
	}
	SCN_EXPECT(sigaltstack(NULL, &ss) == 0 && ss.ss_sp == alt && ss.ss_size == (size_t)ALT_SIZE,
		   "sigaltstack %p+%zu, want %p+%d", ss.ss_sp, ss.ss_size, (void *)alt, ALT_SIZE);
	quit_seen = quit_on_alt = 0;
	raise(SIGQUIT);
	SCN_EXPECT(quit_seen && quit_on_alt, "SIGQUIT handler seen=%d on alt stack=%d",
		   (int)quit_seen, (int)quit_on_alt);

	nchecks++;
	if (nchecks == 1 || delivered) {
		if (!delivered) {
			sigpending(&pend);
			SCN_EXPECT(sigismember(&pend, SIGUSR2), "SIGUSR2 not pending");
			SCN_EXPECT(sigismember(&pend, SIGRTMIN + 2), "SIGRTMIN+2 not pending");
			SCN_EXPECT(sigismember(&pend, SIGRTMIN + 4), "SIGRTMIN+4 not pending");
			SCN_EXPECT(!usr2_seen && !nrt, "signals delivered while blocked");
		}
		return;
	}
	/* unblock: SIGUSR2 (lower number) comes first, then the RT queue */
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGUSR2);
	sigaddset(&unblock, SIGRTMIN + 2);
	sigaddset(&unblock, SIGRTMIN + 4);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	delivered = 1;
	SCN_EXPECT(usr2_seen == 1, "SIGUSR2 delivered %d times", (int)usr2_seen);
	SCN_EXPECT(usr2_value == 42, "SIGUSR2 si_value %d, want 42", (int)usr2_value);
	SCN_EXPECT(usr2_pid == sender, "SIGUSR2 si_pid %d, want %d", (int)usr2_pid, sender);
	SCN_EXPECT(usr2_code == SI_QUEUE, "SIGUSR2 si_code %d, want SI_QUEUE", (int)usr2_code);
	SCN_EXPECT(nrt == 3, "%d RT signals delivered, want 3", (int)nrt);
	SCN_EXPECT(rt_vals[0] == 1 && rt_vals[1] == 2 && rt_vals[2] == 3,
		   "RT values in order %d %d %d, want 1 2 3", (int)rt_vals[0], (int)rt_vals[1],
		   (int)rt_vals[2]);
	SCN_EXPECT(rt4_seen == 1 && rt4_value == 99, "SIGRTMIN+4 seen %d value %d, want 1, 99",
		   (int)rt4_seen, (int)rt4_value);
}

int main(void)
{
	sigset_t block;
	stack_t ss;
	int st;

	scn_init("sigstate");
	scn_install_check();
	wants[4].sig = SIGRTMIN + 2;
	wants[6].sig = SIGRTMIN + 4;
	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
		install(&wants[i]);
	alt = malloc(ALT_SIZE);
	ss.ss_sp = alt;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	if (!alt || sigaltstack(&ss, NULL))
		scn_die("sigaltstack: %s", strerror(errno));
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN + 2);
	sigaddset(&block, SIGRTMIN + 4);
	sigprocmask(SIG_BLOCK, &block, NULL);
	if (pthread_sigqueue(pthread_self(), SIGRTMIN + 4, (union sigval){ .sival_int = 99 }))
		scn_die("pthread_sigqueue failed");

	sender = fork();
	if (sender < 0)
		scn_die("fork: %s", strerror(errno));
	if (sender == 0) {
		pid_t pp = getppid();

		if (sigqueue(pp, SIGUSR2, (union sigval){ .sival_int = 42 }))
			_exit(1);
		for (int v = 1; v <= 3; v++)
			if (sigqueue(pp, SIGRTMIN + 2, (union sigval){ .sival_int = v }))
				_exit(1);
		_exit(0);
	}
	if (waitpid(sender, &st, 0) != sender || !WIFEXITED(st) || WEXITSTATUS(st))
		scn_die("sender child failed");
	scn_ready();
	scn_loop(check);
}
