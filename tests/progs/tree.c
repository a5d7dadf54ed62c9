/* A small process tree: a session leader with three children.
 *  A: in the leader's group, forked and never exec'd;
 *  B: leads its own process group;
 *  Z: exited with status 7 and is not reaped (a zombie).
 * All of them share one open file description (fd 3, argv[1]), so its
 * offset is one. Check (SIGUSR1 to the leader): ids, the zombie's status
 * (without reaping it), and the shared offset after A and B each append 5
 * bytes through it. With argv[2] == "setpgid", also that the leader can
 * still setpgid() A (the kernel allows it only for a child that never
 * exec'd: needs binfmt_cr after a restore). */
#include <sys/prctl.h>
#include <sys/wait.h>

#include "scenario.h"

static pid_t a, b, z;
static int fd = 3, want_setpgid;

static void on_usr2(int sig)
{
	(void)sig;
	if (write(fd, "abcde", 5) != 5)
		_exit(3);
}

static pid_t child(int own_group)
{
	pid_t p = fork();

	if (p < 0)
		scn_die("fork: %s", strerror(errno));
	if (p)
		return p;
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, on_usr2);
	/* gone with the leader (also checks the restore of the setting) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (own_group && setpgid(0, 0) < 0)
		_exit(2);
	for (;;)
		pause();
}

static off_t offset(void)
{
	return lseek(fd, 0, SEEK_CUR);
}

static void check(void)
{
	siginfo_t si;
	off_t before = offset();

	SCN_EXPECT(getsid(0) == getpid(), "leader sid %d, want %d", getsid(0), getpid());
	SCN_EXPECT(getpgid(0) == getpid(), "leader pgid %d", getpgid(0));
	SCN_EXPECT(getsid(a) == getpid() && getsid(b) == getpid(), "children sids %d %d",
		   getsid(a), getsid(b));
	SCN_EXPECT(getpgid(a) == getpid(), "A pgid %d, want %d", getpgid(a), getpid());
	SCN_EXPECT(getpgid(b) == b, "B pgid %d, want %d", getpgid(b), b);
	memset(&si, 0, sizeof(si));
	SCN_EXPECT(waitid(P_PID, z, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == z &&
		   si.si_code == CLD_EXITED && si.si_status == 7,
		   "zombie %d: waitid pid %d code %d status %d (%s)", z, si.si_pid, si.si_code,
		   si.si_status, strerror(errno));
	kill(a, SIGUSR2);
	kill(b, SIGUSR2);
	for (int i = 0; i < 100 && offset() < before + 10; i++)
		scn_sleep_ms(10);
	SCN_EXPECT(offset() == before + 10, "shared offset %ld after two 5-byte writes from"
		   " the children, want %ld", (long)offset(), (long)before + 10);
	SCN_EXPECT(kill(a, 0) == 0 && kill(b, 0) == 0, "children gone");
	if (want_setpgid) {
		SCN_EXPECT(setpgid(a, a) == 0, "setpgid(A, A): %s", strerror(errno));
		SCN_EXPECT(setpgid(a, getpid()) == 0, "setpgid(A, leader): %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	int f;

	scn_init("tree");
	if (argc < 2)
		scn_die("usage: tree FILE [setpgid]");
	want_setpgid = argc > 2 && !strcmp(argv[2], "setpgid");
	if (setsid() < 0)
		scn_die("setsid: %s", strerror(errno));
	f = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (f < 0 || dup2(f, fd) < 0)
		scn_die("open %s: %s", argv[1], strerror(errno));
	if (f != fd)
		close(f);
	if (write(fd, "0123456789", 10) != 10)
		scn_die("write");
	a = child(0);
	b = child(1);
	z = fork();
	if (z == 0)
		_exit(7);
	for (int i = 0; i < 100 && getpgid(b) != b; i++)
		scn_sleep_ms(10);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
