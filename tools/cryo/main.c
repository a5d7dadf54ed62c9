/* cryo command line: parse, call one entry point per verb, print the one
 * error message. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "timens.h"
#include "tty.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: cryo -p PID -f IMAGE [--kill|--leave-stopped] [--pre-dump[=N]] [--shell-job]\n"
"               [--allow-leak=KIND[,KIND]] [--tcp-established] [--swapfile PATH]\n"
"       cryo -r -f IMAGE [-d] [--lazy] [--pidns] [--no-timens] [--shell-job] [--leave-stopped]\n"
"               [--swapfile PATH] [--allow-changed-files] [--allow-other-user]\n"
"       cryo register | unregister\n"
"       cryo show IMAGE [--json] [--verify] [--swapfile PATH]\n"
"       cryo check [--json]\n"
"       cryo core IMAGE -o CORE [--pid PID] [--swapfile PATH]\n"
"       cryo snapshots [--delete ID] SWAPFILE\n"
"       cryo pack IMAGE -o OUT [--swapfile PATH]\n"
"       cryo run --cache [--cache-dir DIR] [--cache-point stop|stdin] -- CMD [ARGS...]\n"
"       cryo cache ls | rm KEY... | rm --all | gc [--max-age DAYS] [--max-size MIB]\n"
"       cryo --help | --version\n"
"\n"
"Checkpoint a running process to IMAGE, or restart it from IMAGE.\n"
"\n"
"  -p, --pid PID            dump the process PID (it keeps running)\n"
"      --kill               SIGKILL the dumped process after a successful dump\n"
"      --leave-stopped      leave the dumped tree stopped (SIGSTOP; a failed dump\n"
"                           leaves it running); with -r, the restored tree starts\n"
"                           stopped: SIGCONT runs it\n"
"      --pre-dump[=N]       copy memory while the tree runs, tracking writes\n"
"                           (userfaultfd write-protect), up to N rounds (default\n"
"                           4) while the written set shrinks; then freeze and\n"
"                           copy only the pages written since: a short freeze\n"
"      --allow-leak KINDS   dump even though the tree shares these kinds with a\n"
"                           process outside it (pipe, file, shm, ipc, socket); the\n"
"                           restore gets private copies (a socket: peer closed);\n"
"                           the image records the choice\n"
"      --tcp-established    dump established TCP connections (TCP repair mode,\n"
"                           needs CAP_NET_ADMIN): the restore reconnects them\n"
"                           with their queued bytes, the peer sees nothing;\n"
"                           with --kill they close silently. The peer must not\n"
"                           send until the restore\n"
"  -f, --file IMAGE         the checkpoint image; - is stdout when dumping (a\n"
"                           self-contained image, no swapfile; with --kill the\n"
"                           stream ends once the process is gone) and stdin\n"
"                           when restoring\n"
"  -s, --swapfile PATH      the page store (default: cryo-PID.swap beside IMAGE\n"
"                           when dumping; the one the image names when restoring)\n"
"  -r, --restore            restore from IMAGE; cryo becomes the parent and exits\n"
"                           with the restored process's status (128+N if killed by\n"
"                           signal N)\n"
"  -d, --detach             with -r: print the restored pid and exit 0 at once\n"
"      --shell-job          dump a job started from the user's shell: its session\n"
"                           and controlling terminal are outside the tree; the\n"
"                           restore (implied by the image) joins cryo's session\n"
"                           and terminal and takes the foreground if it had it\n"
"      --lazy               with -r: run the tree before its anonymous memory is\n"
"                           loaded; a page server (cryo-lazy) fills pages on\n"
"                           fault and in the background, then exits\n"
"      --pidns              with -r: restore in new pid and IPC namespaces, so\n"
"                           the tree gets its pids and SysV ids even when they are\n"
"                           taken here (through a user namespace when not root)\n"
"      --no-timens          with -r: the tree gets this host's CLOCK_MONOTONIC and\n"
"                           CLOCK_BOOTTIME; by default a new time namespace makes\n"
"                           them continue from their values at the dump, as if no\n"
"                           time had passed (needs root, or --pidns)\n"
"      --allow-changed-files  restore even if an open or mapped file changed size\n"
"                           or mtime since the dump\n"
"      --allow-other-user   as root: restore an image or swapfile that another user\n"
"                           owns or may write (refused by default)\n"
"  -q, --quiet              no warnings;  -v, --verbose: more detail\n"
"      --log-file PATH      also append every message, at every level, to PATH\n"
"  -h, --help               this text;    -V, --version: the version\n"
"\n"
"Restored stdio: fds 0-2 that were a terminal, pipe or socket from outside\n"
"the process are taken from cryo's own fds 0-2.\n"
"\n"
"cryo run --cache -- CMD starts CMD from a cached checkpoint of its warmed-up\n"
"state (made by its first run at the cache point: CMD raises SIGSTOP, or with\n"
"--cache-point stdin, first waits for input on fd 0); see cryo run --help.\n"
"\n"
"Exit status: 0 success; 1 dump or restore failed (one line on stderr names\n"
"the pid, the object and the reason); 2 usage error; with -r and no -d,\n"
"the restored process's exit status.\n");
}

int wait_root(pid_t pid)
{
	int st;

	for (;;) {
		/* as the tree's parent: orphans of the tree come here too */
		pid_t r = waitpid(-1, &st, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "cryo: wait for pid %d: %s\n", pid, strerror(errno));
			return EXIT_FAIL;
		}
		if (r != pid)
			continue;
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
	}
}

/* Verbs other than dump/restore: "cryo VERB ARGS...". Each lives in its
 * own file and returns an exit status. */
static const struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} verbs[] = {
	{ "register", cmd_register, "install the binfmt_misc entry so ./IMAGE runs" },
	{ "unregister", cmd_unregister, "remove the binfmt_misc entry" },
	{ "show", cmd_show, "summarize an image (--json for scripts)" },
	{ "check", cmd_check, "probe this kernel for what cryo can do here" },
	{ "core", cmd_core, "write an ELF core file of an image for gdb" },
	{ "snapshots", cmd_snapshots, "list or delete the snapshots in a swapfile" },
	{ "pack", cmd_pack, "write a self-contained image: its pages inside it" },
	{ "run", cmd_run, "run a command from its cached warmed-up state" },
	{ "cache", cmd_cache, "list, remove or prune the run cache" },
};

static int dump_or_restore(int argc, char **argv);

int main(int argc, char **argv)
{
	if ((argc > 1 && !strcmp(argv[1], "--binfmt-exec")) || binfmt_exec_fd() >= 0)
		return cmd_binfmt_exec(argc, argv);
	for (size_t i = 0; argc > 1 && i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name)) {
			char name[32];

			/* getopt names argv[0]: "cryo: show: unrecognized option" */
			snprintf(name, sizeof(name), "cryo: %s", verbs[i].name);
			argv[1] = name;
			return verbs[i].fn(argc - 1, argv + 1);
		}
	return dump_or_restore(argc, argv);
}

static int dump_or_restore(int argc, char **argv)
{
	enum { OPT_KILL = 256, OPT_ALLOW_CHANGED, OPT_LOG_FILE, OPT_ALLOW_OTHER_USER,
	       OPT_SHELL_JOB, OPT_LAZY, OPT_ALLOW_LEAK, OPT_PIDNS, OPT_PRE_DUMP,
	       OPT_NO_TIMENS, OPT_LEAVE_STOPPED, OPT_TCP_ESTABLISHED };
	static const struct option lo[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "swapfile", required_argument, NULL, 's' },
		{ "restore", no_argument, NULL, 'r' },
		{ "detach", no_argument, NULL, 'd' },
		{ "kill", no_argument, NULL, OPT_KILL },
		{ "leave-stopped", no_argument, NULL, OPT_LEAVE_STOPPED },
		{ "lazy", no_argument, NULL, OPT_LAZY },
		{ "allow-leak", required_argument, NULL, OPT_ALLOW_LEAK },
		{ "pidns", no_argument, NULL, OPT_PIDNS },
		{ "no-timens", no_argument, NULL, OPT_NO_TIMENS },
		{ "pre-dump", optional_argument, NULL, OPT_PRE_DUMP },
		{ "tcp-established", no_argument, NULL, OPT_TCP_ESTABLISHED },
		{ "allow-changed-files", no_argument, NULL, OPT_ALLOW_CHANGED },
		{ "allow-other-user", no_argument, NULL, OPT_ALLOW_OTHER_USER },
		{ "shell-job", no_argument, NULL, OPT_SHELL_JOB },
		{ "quiet", no_argument, NULL, 'q' },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct dump_opts d = { 0 };
	struct restore_opts r = { .exec_fd = -1 };
	const char *image = NULL, *swapfile = NULL;
	pid_t pid = 0;
	int restore = 0, c, e;

	opterr = 0;	/* our own line below, starting "cryo: " like every error */
	while ((c = getopt_long(argc, argv, "p:f:s:rdqvhV", lo, NULL)) != -1) {
		switch (c) {
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v <= 0 || v > (1 << 22)) {
				fprintf(stderr, "cryo: -p PID: '%s' is not a pid\n", optarg);
				return EXIT_USAGE;
			}
			pid = (pid_t)v;
			break;
		}
		case 'f': image = optarg; break;
		case 's': swapfile = optarg; break;
		case 'r': restore = 1; break;
		case 'd': r.detach = 1; break;
		case OPT_KILL: d.kill_after = 1; break;
		case OPT_LEAVE_STOPPED: d.leave_stopped = r.leave_stopped = 1; break;
		case OPT_LAZY: r.lazy = 1; break;
		case OPT_ALLOW_LEAK:
			if (options_parse_leak(optarg, &d.allow_leak)) {
				report_error("%s", err_msg());
				return EXIT_USAGE;
			}
			break;
		case OPT_TCP_ESTABLISHED: d.tcp_established = 1; break;
		case OPT_PIDNS: r.pidns = 1; break;
		case OPT_NO_TIMENS: r.timens = TIMENS_OFF; break;
		case OPT_PRE_DUMP: {
			char *end = NULL;
			long v = optarg ? strtol(optarg, &end, 10) : 4;

			if ((optarg && *end) || v < 1 || v > 64) {
				fprintf(stderr, "cryo: --pre-dump=N: N is 1 to 64 rounds, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			d.pre_dump = (int)v;
			break;
		}
		case OPT_ALLOW_CHANGED: r.allow_changed_files = 1; break;
		case OPT_ALLOW_OTHER_USER: r.allow_other_user = 1; break;
		/* restore: implied by the image, accepted for symmetry */
		case OPT_SHELL_JOB: d.shell_job = 1; break;
		case 'q': log_level = 0; break;
		case OPT_LOG_FILE:
			if (log_open(optarg)) {
				report_error("%s", err_msg());
				return EXIT_USAGE;
			}
			break;
		case 'v': log_level = 2; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("cryo %s (image ABI %u.%u)\n", CRYO_VERSION,
				 LX_CKPT_VERSION_MAJOR, LX_CKPT_VERSION_MINOR);
			  return EXIT_OK;
		default:
			fprintf(stderr, "cryo: %s: unknown option, or its argument is missing\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !image || restore == !!pid || (r.lazy && !restore) ||
	    (restore && d.allow_leak) || (!restore && (r.pidns || r.timens)) ||
	    (d.kill_after && d.leave_stopped)) {
		fprintf(stderr, "cryo: %s\n",
			optind != argc ? "unexpected argument (see the usage below)" :
			!image ? "-f IMAGE is required" :
			restore == !!pid ? "give either -p PID (dump) or -r (restore)" :
			r.lazy ? "--lazy is for -r (restore)" :
			d.kill_after && d.leave_stopped ? "--kill and --leave-stopped exclude each other" :
			d.allow_leak ? "--allow-leak is for dumps (-p PID)" :
			r.pidns ? "--pidns is for -r (restore)" : "--no-timens is for -r (restore)");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!restore) {
		d.image = image;
		d.swapfile = swapfile;
		e = strcmp(image, "-") ? cryo_dump(pid, &d) : stream_dump(pid, &d);
		if (e) {
			report_error("%s", err_msg());
			return EXIT_FAIL;
		}
		return EXIT_OK;
	}
	r.image = image;
	r.swapfile = swapfile;
	if (!strcmp(image, "-")) {	/* a stream on stdin (stream.c) */
		r.image = "(stdin)";
		r.exec_fd = stream_spool_stdin();
		if (r.exec_fd < 0) {
			report_error("%s", err_msg());
			return EXIT_FAIL;
		}
	}
	if (!r.detach)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	e = cryo_restore(&r, &pid);
	if (e) {
		report_error("%s", err_msg());
		return EXIT_FAIL;
	}
	if (r.detach) {
		printf("%d\n", pid);
		return EXIT_OK;
	}
	e = wait_root(restore_waited_child(pid));
	tty_restore_giveback();
	return e;
}
