/* SysV IPC of a process tree: a parent and a child attached to one shm
 * segment, a semaphore set and a message queue, all private (IPC_PRIVATE)
 * so that only their ids name them. Prints "IDS shm sem msg" before READY.
 * Check (parent): the ids still name the objects, the segment holds what
 * was written before the dump, the semaphores their values, the queue its
 * messages in order (read with MSG_COPY, not consumed); and parent and
 * child see each other's writes: the parent writes a nonce, the child
 * (on SIGUSR2) copies it back. SIGTERM: kill the child, remove the
 * objects, exit 0.
 * "sysvipc attach SHMID": an outside process attached to the segment;
 * "sysvipc recv MSQID": an outside process that took the first message;
 * "sysvipc undo SEMID": a process that did a semop with SEM_UNDO. */
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "scenario.h"

#define SEGSZ (3 * 4096 + 100)

static int shmid, semid, msqid, gone_id;
static volatile char *seg, *gone;
static pid_t child;
static const unsigned short vals[3] = { 1, 5, 7 };
static const char *const texts[3] = { "first", "second message", "third" };

static void on_usr2(int sig)
{
	(void)sig;
	memcpy((char *)seg + 300, (char *)seg + 200, 16);
}

static void on_term(int sig)
{
	(void)sig;
	kill(child, SIGKILL);
	shmctl(shmid, IPC_RMID, NULL);
	semctl(semid, 0, IPC_RMID);
	msgctl(msqid, IPC_RMID, NULL);
	_exit(0);
}

static void check(void)
{
	struct shmid_ds ds;
	unsigned short got[3] = { 0 };
	struct { long mtype; char text[64]; } m;
	char nonce[16];
	static unsigned round;

	SCN_EXPECT(shmctl(shmid, IPC_STAT, &ds) == 0, "shm id %d: %s", shmid, strerror(errno));
	SCN_EXPECT(ds.shm_segsz == SEGSZ, "shm size %zu", (size_t)ds.shm_segsz);
	SCN_EXPECT(!memcmp((char *)seg, "parent wrote this", 18), "shm start: '%.18s'", (char *)seg);
	SCN_EXPECT(!memcmp((char *)seg + 4096 + 7, "page two", 9), "shm page 2: '%.9s'",
		   (char *)seg + 4096 + 7);
	SCN_EXPECT(!memcmp((char *)seg + 100, "child wrote this", 17), "shm child's: '%.17s'",
		   (char *)seg + 100);
	SCN_EXPECT(seg[2 * 4096 + 5] == 0 && seg[SEGSZ - 1] == 0, "shm tail not zero");
	/* removed while attached: still readable, still marked */
	SCN_EXPECT(shmctl(gone_id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST),
		   "removed segment %d: %s, mode %#o", gone_id, strerror(errno),
		   (unsigned)ds.shm_perm.mode);
	SCN_EXPECT(!strcmp((char *)gone, "removed but attached"), "removed segment holds '%.20s'",
		   (char *)gone);
	SCN_EXPECT(semctl(semid, 0, GETALL, got) == 0, "sem id %d: %s", semid, strerror(errno));
	SCN_EXPECT(!memcmp(got, vals, sizeof(vals)), "sem values %u %u %u", got[0], got[1], got[2]);
	for (int k = 0; k < 3; k++) {
		ssize_t n = msgrcv(msqid, &m, sizeof(m.text), k, IPC_NOWAIT | MSG_COPY);

		SCN_EXPECT(n == (ssize_t)strlen(texts[k]) && m.mtype == 10 + k &&
			   !memcmp(m.text, texts[k], (size_t)n), "message %d: n=%zd type %ld", k, n,
			   m.mtype);
	}
	SCN_EXPECT(msgrcv(msqid, &m, sizeof(m.text), 3, IPC_NOWAIT | MSG_COPY) < 0,
		   "a fourth message");
	/* both ways through the segment */
	snprintf(nonce, sizeof(nonce), "nonce%u-%d", ++round, getpid());
	memcpy((char *)seg + 200, nonce, sizeof(nonce));
	kill(child, SIGUSR2);
	for (int i = 0; i < 200 && memcmp((char *)seg + 300, nonce, sizeof(nonce)); i++)
		scn_sleep_ms(10);
	SCN_EXPECT(!memcmp((char *)seg + 300, nonce, sizeof(nonce)),
		   "child did not echo '%s' (got '%.16s')", nonce, (char *)seg + 300);
}

static void __attribute__((noreturn)) outsider(const char *how, int id)
{
	if (!strcmp(how, "attach") && shmat(id, NULL, SHM_RDONLY) == (void *)-1)
		scn_die("shmat %d: %s", id, strerror(errno));
	if (!strcmp(how, "undo")) {
		struct sembuf op = { 0, 1, SEM_UNDO };

		if (semop(id, &op, 1) < 0)
			scn_die("semop %d: %s", id, strerror(errno));
	}
	if (!strcmp(how, "recv")) {
		struct { long mtype; char text[64]; } m;

		if (msgrcv(id, &m, sizeof(m.text), 0, IPC_NOWAIT) < 0)
			scn_die("msgrcv %d: %s", id, strerror(errno));
	}
	scn_ready();
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	scn_init("sysvipc");
	if (argc == 3)
		outsider(argv[1], atoi(argv[2]));
	shmid = shmget(IPC_PRIVATE, SEGSZ, IPC_CREAT | 0600);
	semid = semget(IPC_PRIVATE, 3, IPC_CREAT | 0640);
	msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0620);
	if (shmid < 0 || semid < 0 || msqid < 0)
		scn_die("create: %s", strerror(errno));
	seg = shmat(shmid, NULL, 0);
	if (seg == (void *)-1)
		scn_die("shmat: %s", strerror(errno));
	strcpy((char *)seg, "parent wrote this");
	gone_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	gone = gone_id < 0 ? (void *)-1 : shmat(gone_id, NULL, 0);
	if (gone == (void *)-1)
		scn_die("second segment: %s", strerror(errno));
	strcpy((char *)gone, "removed but attached");
	shmctl(gone_id, IPC_RMID, NULL);
	strcpy((char *)seg + 4096 + 7, "page two");
	if (semctl(semid, 0, SETALL, vals) < 0)
		scn_die("SETALL: %s", strerror(errno));
	for (int k = 0; k < 3; k++) {
		struct { long mtype; char text[64]; } m = { 10 + k, "" };

		memcpy(m.text, texts[k], strlen(texts[k]));
		if (msgsnd(msqid, &m, strlen(texts[k]), 0) < 0)
			scn_die("msgsnd: %s", strerror(errno));
	}
	child = fork();
	if (child == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr2;
		sigaction(SIGUSR2, &sa, NULL);
		strcpy((char *)seg + 100, "child wrote this");
		for (;;)
			pause();
	}
	while (memcmp((char *)seg + 100, "child", 5))
		scn_sleep_ms(5);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	printf("IDS %d %d %d\n", shmid, semid, msqid);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
