/* A parent and a forked child sharing memory, which must stay one object
 * across a dump and restore.
 *
 *   shmtree            MAP_SHARED|MAP_ANONYMOUS, 6 pages. The child then
 *                      unmaps page 2 and moves page 4 elsewhere (mremap),
 *                      so it maps the object in four pieces; it writes
 *                      page 5, which the parent never touches, and page 3,
 *                      which the parent unmaps (only the child maps it).
 *   shmtree memfd      a memfd created before the fork: both hold one open
 *                      file description of it (pread/pwrite through it)
 *   shmtree memfd-reopen  the child opens the memfd again through
 *                      /proc/self/fd (a second description of the same
 *                      memfd): cryo must refuse it by name
 *
 * Prints "child PID" before READY. Check (in the parent, SIGUSR1): the
 * parent writes a new request number; the child, polling, answers in
 * page 1 (in the object) and in page 4 through its moved mapping, after
 * checking what it wrote before the dump is still there; the parent sees
 * both answers, and its own data. So a write by either side is seen by
 * the other, after the restore as before it.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "scenario.h"

#define PG 4096
#define NPAGES 6

enum { M_ANON, M_MEMFD, M_REOPEN } mode;
static volatile char *shared;	/* M_ANON */
static int mfd = -1;		/* M_MEMFD */
static int seq;

/* request at page 0, answers at page 1 and page 4 (+8), markers at +100 */
static int get(int off)
{
	int v = 0;

	if (mode == M_ANON)
		return *(volatile int *)(shared + off);
	if (pread(mfd, &v, sizeof(v), off) != (ssize_t)sizeof(v))
		return -1;
	return v;
}

static void put(int off, int v)
{
	if (mode == M_ANON)
		*(volatile int *)(shared + off) = v;
	else if (pwrite(mfd, &v, sizeof(v), off) != (ssize_t)sizeof(v))
		scn_fail("pwrite: %s", strerror(errno));
}

static void check(void)
{
	int want = ++seq + 1000, i;

	SCN_EXPECT(get(100) == 'p', "parent marker is %d, want 'p'", get(100));
	put(0, want);
	for (i = 0; i < 600; i++) {	/* up to 3 s */
		if (get(PG) == want && get(4 * PG + 8) == 2 * want)
			break;
		scn_sleep_ms(5);
	}
	SCN_EXPECT(get(PG) == want, "child answered %d in page 1, want %d", get(PG), want);
	SCN_EXPECT(get(4 * PG + 8) == 2 * want, "child answered %d in page 4, want %d",
		   get(4 * PG + 8), 2 * want);
}

static void __attribute__((noreturn)) child(void)
{
	volatile char *p4 = shared ? shared + 4 * PG : NULL;
	int last = 0;

	if (mode == M_ANON) {
		void *to;

		put(5 * PG + 100, 'c');
		put(3 * PG + 100, 'd');
		if (munmap((void *)(shared + 2 * PG), PG))
			scn_die("munmap: %s", strerror(errno));
		/* a free page far from the rest */
		to = mmap(NULL, 3 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (to == MAP_FAILED)
			scn_die("mmap: %s", strerror(errno));
		p4 = mremap((void *)p4, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)to + PG);
		if (p4 == MAP_FAILED)
			scn_die("mremap: %s", strerror(errno));
	} else {
		put(5 * PG + 100, 'c');
		if (mode == M_REOPEN) {
			char path[64];
			int fd;

			snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
			fd = open(path, O_RDWR);
			if (fd < 0)
				scn_die("reopen memfd: %s", strerror(errno));
			close(mfd);
			mfd = fd;
		}
	}
	put(PG + 100, 'C');	/* the parent waits for it: setup done */
	for (;;) {
		int req = get(0);

		if (req != last && req > 0) {
			int ok = get(5 * PG + 100) == 'c' && (mode != M_ANON || get(3 * PG + 100) == 'd');

			last = req;
			if (mode == M_ANON)
				*(volatile int *)(p4 + 8) = ok ? 2 * req : -1;
			else
				put(4 * PG + 8, ok ? 2 * req : -1);
			put(PG, ok ? req : -1);
		}
		scn_sleep_ms(5);
	}
}

int main(int argc, char **argv)
{
	pid_t pid;

	scn_init("shmtree");
	if (argc > 1 && !strcmp(argv[1], "memfd"))
		mode = M_MEMFD;
	else if (argc > 1 && !strcmp(argv[1], "memfd-reopen"))
		mode = M_REOPEN;
	else if (argc > 1)
		scn_die("unknown mode %s", argv[1]);
	if (mode == M_ANON) {
		shared = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);
		if (shared == MAP_FAILED)
			scn_die("mmap: %s", strerror(errno));
	} else {
		mfd = memfd_create("shmtree", 0);
		if (mfd < 0 || ftruncate(mfd, NPAGES * PG) < 0)
			scn_die("memfd: %s", strerror(errno));
	}
	put(100, 'p');
	pid = fork();
	if (pid < 0)
		scn_die("fork: %s", strerror(errno));
	if (pid == 0)
		child();
	while (get(PG + 100) != 'C')
		scn_sleep_ms(5);
	if (mode == M_ANON && munmap((void *)(shared + 3 * PG), PG))
		scn_die("munmap: %s", strerror(errno));
	printf("child %d\n", (int)pid);
	fflush(stdout);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
