/* exitsoon MIB MS: MIB MiB of written memory and four threads; MS
 * milliseconds after a SIGUSR2 every thread that is not stopped ends the
 * process, so that it ends on its own at a moment a dump may be running:
 * before cryo freezes it, while it freezes its threads (a thread not
 * frozen yet takes the others with it), or after cryo lets it go. It
 * exits 0 if its memory holds its pattern, 3 if not (so a restore of it
 * shows that in cryo's exit status). Check (until then): the memory. */
#include <pthread.h>

#include "scenario.h"

#define NT 4

static uint64_t *mem;
static size_t nwords;
static volatile uint64_t deadline_ns;	/* 0: no SIGUSR2 yet */
static uint64_t delay_ns;

static void on_usr2(int sig)
{
	(void)sig;
	deadline_ns = scn_now_ns() + delay_ns;
}

static int due(void)
{
	return deadline_ns && scn_now_ns() >= deadline_ns;
}

static int mem_ok(void)
{
	for (size_t i = 0; i < nwords; i += 512)
		if (mem[i] != scn_mix64(i))
			return 0;
	return 1;
}

static void check(void)
{
	SCN_EXPECT(mem_ok(), "memory changed");
}

static void __attribute__((noreturn)) finish(void)
{
	_exit(mem_ok() ? 0 : 3);
}

static void *waiter(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t d = deadline_ns, now = scn_now_ns();

		if (d && now >= d)
			finish();
		if (!d || d - now > 1000000)
			scn_sleep_ms(1);
		else {
			struct timespec ts = { 0, (long)(d - now) };

			nanosleep(&ts, NULL);
		}
	}
}

int main(int argc, char **argv)
{
	pthread_t th;
	sigset_t m;

	scn_init("exitsoon");
	if (argc < 3)
		scn_die("usage: exitsoon MIB MS");
	nwords = (size_t)atol(argv[1]) << 17;
	mem = malloc(nwords * sizeof(*mem) + 1);
	if (!mem)
		scn_die("malloc: %s", strerror(errno));
	for (size_t i = 0; i < nwords; i++)
		mem[i] = scn_mix64(i);
	delay_ns = (uint64_t)atol(argv[2]) * 1000000ull;
	signal(SIGUSR2, on_usr2);
	scn_install_check();
	/* the check runs in the main thread */
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	for (int i = 1; i < NT; i++)
		if (pthread_create(&th, NULL, waiter, NULL))
			scn_die("pthread_create failed");
	pthread_sigmask(SIG_UNBLOCK, &m, NULL);
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (due())
			finish();
		scn_sleep_ms(1);
	}
}
