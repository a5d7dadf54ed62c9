/* A parent (with a second thread) and a child that remember their ids.
 * Check: getpid() is still the pid the parent started with, the thread
 * still has its tid, and the child is still its child under its old pid
 * (what a restore into a new pid namespace must give). */
#include <pthread.h>
#include <sys/wait.h>

#include "scenario.h"

static pid_t self, child, thread_tid;
static volatile pid_t thread_now;

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;) {
		thread_now = (pid_t)syscall(SYS_gettid);
		scn_sleep_ms(10);
	}
	return NULL;
}

static void check(void)
{
	thread_now = 0;
	for (int i = 0; i < 100 && !thread_now; i++)
		scn_sleep_ms(10);
	SCN_EXPECT(thread_now == thread_tid, "thread's gettid() is %d, was %d", thread_now,
		   thread_tid);
	SCN_EXPECT(getpid() == self, "getpid() is %d, was %d", getpid(), self);
	SCN_EXPECT(kill(child, 0) == 0, "child %d: %s", child, strerror(errno));
	SCN_EXPECT(waitpid(child, NULL, WNOHANG) == 0, "child %d is not our running child", child);
}

static void on_term(int sig)
{
	(void)sig;
	kill(child, SIGKILL);
	_exit(0);
}

int main(void)
{
	struct sigaction sa;

	scn_init("pidns");
	self = getpid();
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	{
		pthread_t th;

		if (pthread_create(&th, NULL, thread_main, NULL))
			scn_die("pthread_create");
		while (!thread_tid)
			scn_sleep_ms(5);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	printf("PIDS %d %d\n", self, child);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
