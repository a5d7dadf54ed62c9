/* soakload OUTFILE: the soak workload (tests/soak/soak.sh). A child process
 * writes a numbered stream (fixed 11-byte records "%010u\n", so every write
 * is atomic) into a pipe, one record a millisecond; in the parent, a reader
 * thread takes the records off that pipe, checks that each is the next
 * number, and hands it on through a second, internal pipe to a writer
 * thread, which appends it to OUTFILE. So a dump catches records in two
 * pipes, in flight in two threads and two processes, and half-done sleeps,
 * reads and writes; OUTFILE must always hold 0, 1, 2, ... without a gap or
 * a repeat.
 * Check (SIGUSR1): no out-of-order record was seen in either thread, the
 * child is alive, and the process has its 3 threads (main, reader, writer).
 * SIGTERM: the parent kills the child and exits 0. */
#include "scenario.h"
#include <pthread.h>
#include <sys/wait.h>

#define REC 11

static int out_fd, in_rd, mid_rd, mid_wr;
static pid_t child;
static volatile unsigned bad_reader, bad_writer, last_reader, last_writer;
static char bad_what[128];

static int read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t r = write(fd, buf, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static unsigned parse_rec(const char *rec, int *ok)
{
	unsigned v = 0;

	*ok = rec[REC - 1] == '\n';
	for (int i = 0; i < REC - 1; i++) {
		if (rec[i] < '0' || rec[i] > '9')
			*ok = 0;
		v = v * 10 + (unsigned)(rec[i] - '0');
	}
	return v;
}

static void *reader(void *arg)
{
	char rec[REC];
	unsigned want = 0;

	(void)arg;
	for (;;) {
		int ok;
		unsigned v;

		if (read_full(in_rd, rec, REC) < 0) {
			snprintf(bad_what, sizeof(bad_what), "reader: read: %s", strerror(errno));
			bad_reader++;
			return NULL;
		}
		v = parse_rec(rec, &ok);
		if (!ok || v != want) {
			if (!bad_reader)
				snprintf(bad_what, sizeof(bad_what), "reader: got %.*s want %u",
					 REC - 1, rec, want);
			bad_reader++;
		}
		want = v + 1;
		last_reader = v;
		if (write_full(mid_wr, rec, REC) < 0) {
			bad_reader++;
			return NULL;
		}
	}
}

static void *writer(void *arg)
{
	char rec[REC];
	unsigned want = 0;

	(void)arg;
	for (;;) {
		int ok;
		unsigned v;

		if (read_full(mid_rd, rec, REC) < 0) {
			bad_writer++;
			return NULL;
		}
		v = parse_rec(rec, &ok);
		if (!ok || v != want) {
			if (!bad_writer)
				snprintf(bad_what, sizeof(bad_what), "writer: got %.*s want %u",
					 REC - 1, rec, want);
			bad_writer++;
		}
		want = v + 1;
		last_writer = v;
		if (write_full(out_fd, rec, REC) < 0) {
			snprintf(bad_what, sizeof(bad_what), "writer: write: %s", strerror(errno));
			bad_writer++;
			return NULL;
		}
	}
}

static void run_child(int wr)
{
	char rec[REC + 1];

	for (unsigned n = 0;; n++) {
		snprintf(rec, sizeof(rec), "%010u\n", n);
		if (write_full(wr, rec, REC) < 0)
			_exit(3);
		scn_sleep_ms(1);
	}
}

static void check(void)
{
	size_t len;
	char *st = scn_read_file("/proc/self/status", &len);
	char *t = st ? strstr(st, "\nThreads:") : NULL;
	int status;

	SCN_EXPECT(!bad_reader && !bad_writer, "%u+%u bad records: %s", bad_reader, bad_writer,
		   bad_what);
	SCN_EXPECT(waitpid(child, &status, WNOHANG) == 0, "the child %d is gone", (int)child);
	if (!t)
		scn_fail("no Threads: in /proc/self/status");
	else
		SCN_EXPECT(atoi(t + 9) == 3, "Threads: %d, want 3", atoi(t + 9));
	SCN_EXPECT(last_writer <= last_reader, "writer at %u ahead of reader at %u",
		   last_writer, last_reader);
	free(st);
}

static void on_term(int sig)
{
	(void)sig;
	kill(child, SIGKILL);
	_exit(0);
}

int main(int argc, char **argv)
{
	int in[2], mid[2];
	pthread_t th;
	sigset_t all, old;
	int err;

	scn_init("soakload");
	if (argc != 2)
		scn_die("usage: soakload OUTFILE");
	out_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out_fd < 0)
		scn_die("open %s: %s", argv[1], strerror(errno));
	if (pipe2(in, O_CLOEXEC) || pipe2(mid, O_CLOEXEC))
		scn_die("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		scn_die("fork: %s", strerror(errno));
	if (child == 0) {
		close(in[0]);
		close(mid[0]);
		close(mid[1]);
		close(out_fd);
		run_child(in[1]);
	}
	close(in[1]);
	in_rd = in[0];
	mid_rd = mid[0];
	mid_wr = mid[1];
	signal(SIGTERM, on_term);
	scn_install_check();
	/* SIGUSR1 and SIGTERM go to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&th, NULL, reader, NULL);
	if (!err)
		err = pthread_create(&th, NULL, writer, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		scn_die("pthread_create: %s", strerror(err));
	scn_ready();
	scn_loop(check);
}
