/* lazymem: argv[1] MiB (default 256) of anonymous memory, every 8-byte word
 * patterned by its page and position, and argv[2] threads (default 0).
 * For lazy restore: it is checked while its pages may still be loading.
 *  - SIGUSR1: every thread (main and workers, each its share of the pages
 *    at once, so faults come from several threads) verifies every word and
 *    the whole area's checksum; "PASS lazymem" or "FAIL lazymem: ...".
 *  - SIGUSR2: fork; the child prints "CHILD rss_kib=N" (its resident
 *    anonymous memory when it starts: below the area's size while pages are
 *    still outstanding), verifies everything and prints "CHILD PASS" or
 *    "CHILD FAIL ...", and exits; then "FORKED status=S".
 *  - SIGHUP: change the address space as a program may during the lazy
 *    period: mremap the second quarter elsewhere, MADV_DONTNEED 64 pages of
 *    the third quarter (they must read as zero afterwards, then are
 *    rewritten), munmap and map afresh 64 pages of the last quarter (zero,
 *    then rewritten), then mremap 64 pages of the moved quarter over 64
 *    restored pages of the last quarter (whose contents move elsewhere);
 *    prints "CHANGED" or "FAIL lazymem: ...".
 *  - SIGWINCH: sweep the pages from the last to the first (the background
 *    load starts at the first), a short pause every 4 pages (1-2 s for 128
 *    MiB), so that pages are read, each a fault, while others are still
 *    outstanding; prints "SWEEP START", then at once "SWEEP FAIL page
 *    N ..." at the first wrong page (zeros served instead of the data), or
 *    "SWEEP PASS" at the end.
 *  - SIGURG: double fork: the grandchild, reparented away from the tree
 *    (to the subreaper, or init), prints "ORPHAN pid=N ppid=M" and then
 *    sweeps as above, its lines prefixed "ORPHAN "; then "ORPHANED". */
#include "scenario.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096
#define WORDS (PG / 8)
static uint8_t **page;		/* where page p lives now */
static size_t npages;
static uint64_t sum0;		/* checksum of the whole area at fill */
static int nthreads;
static volatile sig_atomic_t fork_requested, change_requested, sweep_requested, orphan_requested;
static const char *sweep_prefix = "";

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned gen_req, gen_done_count;
static size_t bad_total, first_bad = (size_t)-1;
static uint64_t sum_total;

static uint64_t word(size_t p, size_t i)
{
	return scn_mix64(p * WORDS + i);
}

static void fill(size_t p)
{
	uint64_t *w = (uint64_t *)page[p];

	for (size_t i = 0; i < WORDS; i++)
		w[i] = word(p, i);
}

/* pages [a, b): bad pages and their checksum */
static size_t verify(size_t a, size_t b, size_t *first, uint64_t *sum)
{
	size_t bad = 0;
	uint64_t s = 0;

	for (size_t p = a; p < b; p++) {
		const uint64_t *w = (const uint64_t *)page[p];
		int ok = 1;

		for (size_t i = 0; i < WORDS; i++) {
			s += w[i] * (2 * (p * WORDS + i) + 1);
			ok &= w[i] == word(p, i);
		}
		if (!ok && !bad++)
			*first = p;
	}
	*sum = s;
	return bad;
}

static void share(int k, size_t *a, size_t *b)
{
	*a = npages * (size_t)k / (size_t)(nthreads + 1);
	*b = npages * (size_t)(k + 1) / (size_t)(nthreads + 1);
}

static void account(size_t bad, size_t first, uint64_t s)
{
	pthread_mutex_lock(&mu);
	bad_total += bad;
	if (bad && first < first_bad)
		first_bad = first;
	sum_total += s;
	gen_done_count++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void *worker(void *arg)
{
	int k = (int)(intptr_t)arg;
	unsigned seen = 0;

	for (;;) {
		size_t a, b, bad, first = 0;
		uint64_t s;

		pthread_mutex_lock(&mu);
		while (gen_req == seen)
			pthread_cond_wait(&cv, &mu);
		seen = gen_req;
		pthread_mutex_unlock(&mu);
		share(k, &a, &b);
		bad = verify(a, b, &first, &s);
		account(bad, first, s);
	}
	return NULL;
}

static void check(void)
{
	size_t a, b, bad, first = 0;
	uint64_t s;

	pthread_mutex_lock(&mu);
	bad_total = 0;
	first_bad = (size_t)-1;
	sum_total = 0;
	gen_done_count = 0;
	gen_req++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	share(nthreads, &a, &b);
	bad = verify(a, b, &first, &s);
	account(bad, first, s);
	pthread_mutex_lock(&mu);
	while (gen_done_count < (unsigned)nthreads + 1)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	SCN_EXPECT(bad_total == 0, "%zu of %zu pages differ, first page %zu (%p)", bad_total,
		   npages, first_bad, bad_total ? (void *)page[first_bad] : NULL);
	SCN_EXPECT(sum_total == sum0, "checksum %#llx, want %#llx",
		   (unsigned long long)sum_total, (unsigned long long)sum0);
}

static long rss_anon_kib(void)
{
	size_t len;
	char *s = scn_read_file("/proc/self/status", &len), *p;
	long v = -1;

	if (s && (p = strstr(s, "RssAnon:")))
		v = strtol(p + 8, NULL, 10);
	free(s);
	return v;
}

static void do_fork(void)
{
	pid_t pid;
	int st = 0;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		size_t first = 0, bad;
		uint64_t s;

		printf("CHILD rss_kib=%ld\n", rss_anon_kib());
		bad = verify(0, npages, &first, &s);
		if (bad || s != sum0)
			printf("CHILD FAIL: %zu pages differ, first %zu; checksum %s\n", bad, first,
			       s == sum0 ? "ok" : "differs");
		else
			printf("CHILD PASS\n");
		fflush(stdout);
		_exit(bad || s != sum0);
	}
	if (pid < 0) {
		printf("FAIL lazymem: fork: %s\n", strerror(errno));
		fflush(stdout);
		return;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	printf("FORKED status=%d\n", st);
	fflush(stdout);
}

static int all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

static void do_change(void)
{
	size_t q = npages / 4, n = 64;
	uint8_t *to, *base2 = page[q], *base3 = page[2 * q], *base4 = page[3 * q];
	char why[256] = "";

	/* move the second quarter (its outstanding pages move with it) */
	to = mmap(NULL, q * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED ||
	    mremap(base2, q * PG, q * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED) {
		snprintf(why, sizeof(why), "mremap: %s", strerror(errno));
	} else {
		for (size_t p = 0; p < q; p++)
			page[q + p] = to + p * PG;
	}
	/* discarded pages read as zero, not as what the image had */
	if (!why[0] && madvise(base3, n * PG, MADV_DONTNEED))
		snprintf(why, sizeof(why), "madvise: %s", strerror(errno));
	if (!why[0] && !all_zero(base3, n * PG))
		snprintf(why, sizeof(why), "pages after MADV_DONTNEED are not zero");
	if (!why[0] && mmap(base4, n * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		snprintf(why, sizeof(why), "mmap over: %s", strerror(errno));
	if (!why[0] && !all_zero(base4, n * PG))
		snprintf(why, sizeof(why), "a fresh mapping over restored pages is not zero");
	for (size_t p = 0; p < n && !why[0]; p++) {
		fill(2 * q + p);
		fill(3 * q + p);
	}
	/* move 64 pages of the moved quarter over 64 restored pages of the last
	 * one (whose own pages are dropped: they get a fresh home) */
	if (!why[0]) {
		uint8_t *dst = base4 + n * PG, *fresh;

		if (mremap(to, n * PG, n * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED)
			snprintf(why, sizeof(why), "mremap over: %s", strerror(errno));
		fresh = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (!why[0] && fresh == MAP_FAILED)
			snprintf(why, sizeof(why), "mmap: %s", strerror(errno));
		for (size_t p = 0; p < n && !why[0]; p++) {
			page[q + p] = dst + p * PG;
			page[3 * q + n + p] = fresh + p * PG;
			fill(3 * q + n + p);
		}
	}
	if (why[0])
		printf("FAIL lazymem: %s\n", why);
	else
		printf("CHANGED\n");
	fflush(stdout);
}

static void do_sweep(void)
{
	struct timespec ts = { 0, 10000 };

	printf("%sSWEEP START\n", sweep_prefix);
	fflush(stdout);
	for (size_t p = npages; p-- > 0;) {
		const uint64_t *w = (const uint64_t *)page[p];

		if (!w) {
			printf("%sSWEEP FAIL page %zu: its pointer is zero\n", sweep_prefix, p);
			fflush(stdout);
			return;
		}
		for (size_t i = 0; i < WORDS; i++)
			if (w[i] != word(p, i)) {
				printf("%sSWEEP FAIL page %zu word %zu: %#llx, want %#llx\n", sweep_prefix, p, i,
				       (unsigned long long)w[i], (unsigned long long)word(p, i));
				fflush(stdout);
				return;
			}
		if (p % 4 == 0)
			nanosleep(&ts, NULL);
	}
	printf("%sSWEEP PASS\n", sweep_prefix);
	fflush(stdout);
}

/* Memory served as zeros shows as a crash as often as as a wrong word:
 * say so on stdout (text and rodata are file-backed, loaded eagerly) */
static void on_fault(int sig)
{
	static const char msg[] = "SWEEP FAIL: SIGSEGV or SIGBUS (memory read as zeros?)\n";

	(void)!write(1, msg, sizeof(msg) - 1);
	_exit(128 + sig);
}

static void do_orphan(void)
{
	pid_t mid, st = 0;

	fflush(stdout);
	mid = fork();
	if (mid == 0) {
		pid_t parent = getpid(), g = fork();

		if (g == 0) {
			while (getppid() == parent)
				usleep(1000);
			sweep_prefix = "ORPHAN ";
			printf("ORPHAN pid=%d ppid=%d\n", getpid(), getppid());
			do_sweep();
			_exit(0);
		}
		_exit(g < 0);
	}
	while (mid > 0 && waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	printf("ORPHANED\n");
	fflush(stdout);
}

static void on_urg(int sig)
{
	(void)sig;
	orphan_requested = 1;
}

static void on_winch(int sig)
{
	(void)sig;
	sweep_requested = 1;
}

static void on_usr2(int sig)
{
	(void)sig;
	fork_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	change_requested = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	long mib = argc > 1 ? atol(argv[1]) : 256;
	uint8_t *mem;
	size_t first;

	scn_init("lazymem");
	nthreads = argc > 2 ? atoi(argv[2]) : 0;
	if (mib <= 0 || nthreads < 0 || nthreads > 64)
		scn_die("usage: lazymem [MiB] [threads]");
	npages = (size_t)mib << 8;
	mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	page = calloc(npages, sizeof(*page));
	if (mem == MAP_FAILED || !page)
		scn_die("allocating %ld MiB failed", mib);
	for (size_t p = 0; p < npages; p++) {
		page[p] = mem + p * PG;
		fill(p);
	}
	verify(0, npages, &first, &sum0);
	for (int k = 0; k < nthreads; k++) {
		pthread_t th;

		if (pthread_create(&th, NULL, worker, (void *)(intptr_t)k))
			scn_die("pthread_create failed");
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL))
		scn_die("sigaction(SIGUSR2): %s", strerror(errno));
	sa.sa_handler = on_hup;
	if (sigaction(SIGHUP, &sa, NULL))
		scn_die("sigaction(SIGHUP): %s", strerror(errno));
	sa.sa_handler = on_fault;
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		scn_die("sigaction(SIGSEGV): %s", strerror(errno));
	sa.sa_handler = on_urg;
	if (sigaction(SIGURG, &sa, NULL))
		scn_die("sigaction(SIGURG): %s", strerror(errno));
	sa.sa_handler = on_winch;
	if (sigaction(SIGWINCH, &sa, NULL))
		scn_die("sigaction(SIGWINCH): %s", strerror(errno));
	scn_install_check();
	scn_ready();
	for (;;) {
		scn_poll(check);
		if (fork_requested) {
			fork_requested = 0;
			do_fork();
		}
		if (change_requested) {
			change_requested = 0;
			do_change();
		}
		if (orphan_requested) {
			orphan_requested = 0;
			do_orphan();
		}
		if (sweep_requested) {
			sweep_requested = 0;
			do_sweep();
		}
		scn_sleep_ms(50);
	}
}
