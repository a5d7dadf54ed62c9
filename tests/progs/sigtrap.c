/* sigtrap: SIGTRAP state that cryo's injection must not disturb. cryo
 * stops injected syscalls with a SIGTRAP it forces on the task (single
 * step, int3), and the kernel resets the handler of a forced signal that
 * is blocked or ignored: cryo must work around it in every mode.
 *
 *   sigtrap handler   SIGTRAP caught (SA_SIGINFO|SA_RESTART, SIGHUP in its
 *                     mask) and blocked, in the main thread and in a second
 *                     thread; nothing pending
 *   sigtrap ignored   SIGTRAP ignored (SIG_IGN)
 *   sigtrap pending   caught and blocked as in "handler", with one SIGTRAP
 *                     queued (sigqueue value 7) and pending
 *   sigtrap sent      caught and not blocked, while the test sends it
 *                     SIGTRAPs with kill during dumps: cryo must requeue
 *                     them and never let one of its own through
 *
 * Check: handler, flags and mask of SIGTRAP as set up; SIGTRAP still
 * blocked in both threads (handler, pending); no SIGTRAP delivered; in
 * "pending" mode, SIGTRAP still pending; in "sent" mode, every SIGTRAP
 * delivered came from kill (si_code SI_USER), none from cryo's traps. */
#include "scenario.h"
#include <pthread.h>

static volatile sig_atomic_t traps, trap_value, foreign_code, foreign_seen;
static const char *mode;
static pthread_t worker;
static volatile int worker_blocked = -1;

static void on_trap(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	traps++;
	trap_value = si->si_value.sival_int;
	if (si->si_code != SI_USER && si->si_code != SI_QUEUE) {
		foreign_seen++;
		foreign_code = si->si_code;
	}
}

static void *work(void *arg)
{
	sigset_t cur;

	(void)arg;
	for (;;) {
		pthread_sigmask(SIG_SETMASK, NULL, &cur);
		worker_blocked = sigismember(&cur, SIGTRAP);
		scn_sleep_ms(20);
	}
	return NULL;
}

static void check(void)
{
	struct sigaction sa;
	sigset_t cur, pend;
	int ign = !strcmp(mode, "ignored");

	if (!strcmp(mode, "sent")) {
		sigaction(SIGTRAP, NULL, &sa);
		SCN_EXPECT(sa.sa_sigaction == on_trap, "SIGTRAP handler %p, want %p",
			   (void *)sa.sa_sigaction, (void *)on_trap);
		SCN_EXPECT(!foreign_seen, "%d SIGTRAPs with si_code %d (not from kill) delivered",
			   (int)foreign_seen, (int)foreign_code);
		return;
	}
	sigaction(SIGTRAP, NULL, &sa);
	if (ign) {
		SCN_EXPECT(sa.sa_handler == SIG_IGN, "SIGTRAP handler %p, want SIG_IGN",
			   (void *)sa.sa_handler);
	} else {
		SCN_EXPECT(sa.sa_sigaction == on_trap, "SIGTRAP handler %p, want %p",
			   (void *)sa.sa_sigaction, (void *)on_trap);
		SCN_EXPECT((sa.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART),
			   "SIGTRAP flags %#x", (unsigned)sa.sa_flags);
		SCN_EXPECT(sigismember(&sa.sa_mask, SIGHUP), "SIGTRAP mask lost SIGHUP");
		sigprocmask(SIG_SETMASK, NULL, &cur);
		SCN_EXPECT(sigismember(&cur, SIGTRAP), "SIGTRAP unblocked in the main thread");
		scn_sleep_ms(60);
		SCN_EXPECT(worker_blocked == 1, "SIGTRAP unblocked in the worker thread (%d)",
			   (int)worker_blocked);
	}
	SCN_EXPECT(traps == 0, "SIGTRAP delivered %d times", (int)traps);
	sigpending(&pend);
	if (!strcmp(mode, "pending"))
		SCN_EXPECT(sigismember(&pend, SIGTRAP), "the queued SIGTRAP is no longer pending");
	else
		SCN_EXPECT(!sigismember(&pend, SIGTRAP), "a SIGTRAP is pending");
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block;

	scn_init("sigtrap");
	mode = argc > 1 ? argv[1] : "handler";
	if (strcmp(mode, "handler") && strcmp(mode, "ignored") && strcmp(mode, "pending") &&
	    strcmp(mode, "sent"))
		scn_die("usage: sigtrap handler|ignored|pending|sent");
	scn_install_check();
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (!strcmp(mode, "ignored")) {
		sa.sa_handler = SIG_IGN;
	} else if (!strcmp(mode, "sent")) {
		sa.sa_sigaction = on_trap;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		sigaddset(&sa.sa_mask, SIGHUP);
		sa.sa_sigaction = on_trap;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&block);
		sigaddset(&block, SIGTRAP);
		sigprocmask(SIG_BLOCK, &block, NULL);	/* the worker inherits it */
	}
	if (sigaction(SIGTRAP, &sa, NULL))
		scn_die("sigaction: %s", strerror(errno));
	if (pthread_create(&worker, NULL, work, NULL))
		scn_die("pthread_create failed");
	if (!strcmp(mode, "pending") &&
	    sigqueue(getpid(), SIGTRAP, (union sigval){ .sival_int = 7 }))
		scn_die("sigqueue: %s", strerror(errno));
	scn_ready();
	scn_loop(check);
}
