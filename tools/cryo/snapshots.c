/* cryo snapshots: list the snapshots of a swapfile (one per dump into it)
 * with the size each uses and how much of it is shared with other
 * snapshots, and delete snapshots (their unshared slots are punched out of
 * the file, so its allocated size really shrinks). The snapshot table lives
 * in the swapfile (see swap.c); image paths are not recorded there, so they
 * are found by looking for images beside the swapfile that name it (same
 * uuid) and the snapshot. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "image.h"
#include "lx_ckpt.h"
#include "swap.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void snapshots_usage(FILE *f)
{
	fprintf(f,
"usage: cryo snapshots SWAPFILE\n"
"       cryo snapshots --delete ID SWAPFILE\n"
"\n"
"List the snapshots in SWAPFILE (each dump into it is one): id, creation time,\n"
"pages, size and shared size in KiB (shared: slots another snapshot uses too),\n"
"and the image beside SWAPFILE that refers to it, if any. --delete drops a\n"
"snapshot and frees the slots no other snapshot uses; images of that\n"
"snapshot can no longer be restored.\n");
}

static uint64_t allocated(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

static int is_image(const char *path)
{
	char magic[LX_CKPT_MAGIC_LEN];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	int ok;

	if (fd < 0)
		return 0;
	ok = read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
	     !memcmp(magic, LX_CKPT_MAGIC, sizeof(magic));
	close(fd);
	return ok;
}

/* the image (in the swapfile's directory) made as snapshot id; malloc'ed */
static char *find_image(const char *swap, const uint8_t *uuid, uint64_t id)
{
	char *dir = strdup(swap), *slash, *found = NULL;
	const char *d;
	struct dirent *de;
	DIR *dp;

	if (!dir)
		return NULL;
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	d = slash ? dir : ".";
	dp = opendir(d);
	while (dp && !found && (de = readdir(dp))) {
		struct lx_swap_ref *ref = NULL;
		struct stat st;
		struct img im;
		size_t n = 0;
		char *p;

		if (de->d_name[0] == '.' || asprintf(&p, "%s/%s", d, de->d_name) < 0)
			continue;
		if (!stat(p, &st) && S_ISREG(st.st_mode) && st.st_size < (64 << 20) &&
		    is_image(p) && !img_open(&im, p)) {
			if (!img_records(&im, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref),
					 sizeof(*ref), (void **)&ref, &n) && n == 1 &&
			    !memcmp(ref->uuid, uuid, 16) && ref->snapshot == id)
				found = strdup(p);
			free(ref);
			img_close(&im);
		}
		err_clear();
		free(p);
	}
	if (dp)
		closedir(dp);
	free(dir);
	return found;
}

int cmd_snapshots(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "delete", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct swap_snap_info *v = NULL;
	struct swapfile *sw = NULL;
	const char *del = NULL, *path;
	uint64_t before, id = 0;
	size_t n = 0;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'D': del = optarg; break;
		case 'h': snapshots_usage(stdout); return EXIT_OK;
		default: snapshots_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		snapshots_usage(stderr);
		return EXIT_USAGE;
	}
	path = argv[optind];
	if (del) {
		char *end;

		errno = 0;
		id = strtoull(del, &end, 10);
		if (errno || *end || !*del || !id) {
			fprintf(stderr, "cryo: snapshots: bad snapshot id '%s'\n", del);
			return EXIT_USAGE;
		}
	}
	if (swap_open(&sw, path, 0)) {
		report_error("%s", err_msg());
		return EXIT_FAIL;
	}
	if (del) {
		before = allocated(path);
		if (swap_delete_snapshot(sw, id)) {
			report_error("%s", err_msg());
			swap_close(sw);
			return EXIT_FAIL;
		}
		printf("deleted snapshot %llu from %s: allocated %llu KiB -> %llu KiB\n",
		       (unsigned long long)id, path, (unsigned long long)before / 1024,
		       (unsigned long long)allocated(path) / 1024);
		swap_close(sw);
		return EXIT_OK;
	}
	if (swap_snapshots(sw, &v, &n)) {
		report_error("%s", err_msg());
		swap_close(sw);
		return EXIT_FAIL;
	}
	printf("swapfile %s: %zu snapshots, %llu slots, %llu KiB allocated\n", path, n,
	       (unsigned long long)swap_slots_end(sw),
	       (unsigned long long)allocated(path) / 1024);
	printf("%-6s %-19s %10s %12s %12s  %s\n", "ID", "CREATED", "PAGES", "SIZE_KIB",
	       "SHARED_KIB", "IMAGE");
	for (size_t i = 0; i < n; i++) {
		char when[32] = "-", *img = find_image(path, swap_uuid(sw), v[i].id);
		time_t t = (time_t)v[i].created;
		struct tm tm;

		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-6llu %-19s %10llu %12llu %12llu  %s\n", (unsigned long long)v[i].id,
		       when, (unsigned long long)v[i].pages,
		       (unsigned long long)v[i].slots * 4, (unsigned long long)v[i].shared * 4,
		       img ? img : "-");
		free(img);
	}
	free(v);
	swap_close(sw);
	return EXIT_OK;
}
