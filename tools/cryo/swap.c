/* The page store: A/B superblocks, then 4 KiB slots. Only committed slots
 * are ever read, so whatever a crash leaves past the committed end is
 * garbage that the next append simply overwrites.
 *
 * One writer at a time: a writer holds flock(LOCK_EX) from its first
 * append (or snapshot id) until commit, and re-reads the superblock when it
 * takes the lock, since another dump may have committed since we opened.
 * Readers (restores) take no lock: committed slots never change. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "err.h"
#include "lx_ckpt.h"
#include "swap.h"

#define SWAP_MAGIC	"CRYOSWP1"
#define SWAP_VERSION	1

struct swap_sb {
	char magic[8];
	lx_le32 version;
	lx_le32 flags;		/* none yet */
	lx_u8 uuid[16];
	lx_le64 generation;	/* the valid superblock with the higher wins */
	lx_le64 slots_end;	/* committed slots */
	lx_le64 next_snapshot;
	lx_le32 crc;		/* crc32c of the bytes before it */
	lx_le32 reserved;
};
_Static_assert(sizeof(struct swap_sb) == 64, "superblock layout");
_Static_assert(SWAP_DATA_OFFSET == 2 * SWAP_PAGE, "two superblocks");

struct swapfile {
	char *path;
	int fd;
	int rdonly;
	int locked;		/* a write transaction is open */
	int err;		/* sticky: the transaction could not start */
	int cur;		/* superblock (0 = A, 1 = B) with the committed state */
	uint8_t uuid[16];
	uint64_t generation;
	uint64_t slots_end;	/* committed */
	uint64_t pending_end;	/* committed + appended since */
	uint64_t next_snapshot;	/* pending; persisted by commit */
};

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int64_t pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return (int64_t)done;
}

uint64_t page_sum(const void *page)
{
	return XXH3_64bits(page, SWAP_PAGE);
}

static uint32_t sb_crc(const struct swap_sb *sb)
{
	return lx_crc32c(0, sb, offsetof(struct swap_sb, crc));
}

/* Whole 4 KiB blocks, so a superblock write never allocates or touches
 * the neighbouring one. */
static int write_sb(struct swapfile *sw, int which, const struct swap_sb *sb)
{
	uint8_t block[SWAP_PAGE] = { 0 };

	if (sb)
		memcpy(block, sb, sizeof(*sb));
	return pwrite_all(sw->fd, block, sizeof(block), (uint64_t)which * SWAP_PAGE);
}

static void make_sb(const struct swapfile *sw, struct swap_sb *sb, uint64_t gen)
{
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, SWAP_MAGIC, sizeof(sb->magic));
	sb->version = lx_cpu_to_le32(SWAP_VERSION);
	memcpy(sb->uuid, sw->uuid, sizeof(sb->uuid));
	sb->generation = lx_cpu_to_le64(gen);
	sb->slots_end = lx_cpu_to_le64(sw->pending_end);
	sb->next_snapshot = lx_cpu_to_le64(sw->next_snapshot);
	sb->crc = lx_cpu_to_le32(sb_crc(sb));
}

static int fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, ret = 0;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, slash - path);
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		ret = -errno;
	else if (fsync(fd) && errno != EINVAL)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/* A fresh file: superblock A at generation 1 and an explicit zero block B,
 * so that later superblock writes overwrite allocated blocks. */
static int format(struct swapfile *sw)
{
	struct swap_sb sb;
	ssize_t n;
	int ret;

	n = getrandom(sw->uuid, sizeof(sw->uuid), 0);
	if (n != (ssize_t)sizeof(sw->uuid))
		return err_sys(n < 0 ? -errno : -EIO, "swapfile %s: getrandom", sw->path);
	sw->pending_end = 0;
	sw->next_snapshot = 1;
	make_sb(sw, &sb, 1);
	ret = write_sb(sw, 0, &sb);
	if (!ret)
		ret = write_sb(sw, 1, NULL);
	if (ret)
		return err_sys(ret, "swapfile %s: writing the superblock", sw->path);
	if (fsync(sw->fd))
		return err_sys(-errno, "swapfile %s: fsync", sw->path);
	ret = fsync_dir_of(sw->path);
	if (ret)
		return err_sys(ret, "swapfile %s: syncing its directory", sw->path);
	return 0;
}

/* 0 valid, 1 not a superblock, -errno for a newer version we cannot use */
static int sb_check(const struct swapfile *sw, const struct swap_sb *sb, char which)
{
	if (memcmp(sb->magic, SWAP_MAGIC, sizeof(sb->magic)) ||
	    sb_crc(sb) != lx_le32_to_cpu(sb->crc))
		return 1;
	if (lx_le32_to_cpu(sb->version) != SWAP_VERSION)
		return err_set(-EINVAL, "swapfile %s: superblock %c: unsupported version %u",
			       sw->path, which, lx_le32_to_cpu(sb->version));
	return 0;
}

static int sb_adopt(struct swapfile *sw, const struct swap_sb *sb, int which)
{
	uint64_t end = lx_le64_to_cpu(sb->slots_end);
	struct stat st;

	if (end > (UINT64_MAX - SWAP_DATA_OFFSET) / SWAP_PAGE)
		return err_set(-EINVAL, "swapfile %s: superblock %c: absurd end slot %llu",
			       sw->path, 'A' + which, (unsigned long long)end);
	if (fstat(sw->fd, &st))
		return err_sys(-errno, "swapfile %s: stat", sw->path);
	if ((uint64_t)st.st_size < SWAP_DATA_OFFSET + end * SWAP_PAGE)
		return err_set(-EINVAL, "swapfile %s: truncated: superblock %c says %llu "
			       "slots (%llu bytes), file has %llu bytes", sw->path,
			       'A' + which, (unsigned long long)end,
			       (unsigned long long)(SWAP_DATA_OFFSET + end * SWAP_PAGE),
			       (unsigned long long)st.st_size);
	memcpy(sw->uuid, sb->uuid, sizeof(sw->uuid));
	sw->cur = which;
	sw->generation = lx_le64_to_cpu(sb->generation);
	sw->slots_end = sw->pending_end = end;
	sw->next_snapshot = lx_le64_to_cpu(sb->next_snapshot);
	return 0;
}

static int load_sb(struct swapfile *sw)
{
	struct swap_sb sb[2];
	int ok[2], i, best = -1;
	int64_t n;

	for (i = 0; i < 2; i++) {
		memset(&sb[i], 0, sizeof(sb[i]));
		n = pread_all(sw->fd, &sb[i], sizeof(sb[i]), (uint64_t)i * SWAP_PAGE);
		if (n < 0)
			return err_sys((int)n, "swapfile %s: reading superblock %c",
				       sw->path, 'A' + i);
		ok[i] = n == (int64_t)sizeof(sb[i]) ? sb_check(sw, &sb[i], 'A' + i) : 1;
		if (ok[i] < 0)
			return ok[i];
		if (ok[i] == 0 && (best < 0 || lx_le64_to_cpu(sb[i].generation) >
					       lx_le64_to_cpu(sb[best].generation)))
			best = i;
	}
	if (best < 0)
		return err_set(-EINVAL, "swapfile %s: no valid superblock (not a cryo "
			       "swapfile, or both copies are corrupt)", sw->path);
	return sb_adopt(sw, &sb[best], best);
}

/* *fresh: the file is ours to format (created now, or left empty by a
 * crash during an earlier creation). */
static int open_file(struct swapfile *sw, int create, int *fresh)
{
	int fl = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
	struct stat st;

	*fresh = 0;
	sw->fd = open(sw->path, fl);
	if (sw->fd < 0 && errno == ENOENT && create) {
		sw->fd = open(sw->path, fl | O_CREAT | O_EXCL, 0600);
		if (sw->fd >= 0 && fchmod(sw->fd, 0600))
			return err_sys(-errno, "swapfile %s: chmod", sw->path);
		if (sw->fd < 0 && errno == EEXIST)	/* lost a race: use theirs */
			sw->fd = open(sw->path, fl);
	}
	if (sw->fd < 0 && !create && (errno == EACCES || errno == EROFS)) {
		sw->fd = open(sw->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		sw->rdonly = sw->fd >= 0;
	}
	if (sw->fd < 0 && errno == ELOOP)
		return err_set(-ELOOP, "swapfile %s: is a symbolic link (refused)", sw->path);
	if (sw->fd < 0)
		return err_sys(-errno, "swapfile %s: open", sw->path);
	if (fstat(sw->fd, &st))
		return err_sys(-errno, "swapfile %s: stat", sw->path);
	if (!S_ISREG(st.st_mode))
		return err_set(-EINVAL, "swapfile %s: not a regular file", sw->path);
	*fresh = create && !sw->rdonly && st.st_size == 0;
	return 0;
}

/* Two creators may both see an empty file: the lock and the second look at
 * the size make exactly one of them format it. */
static int format_if_empty(struct swapfile *sw)
{
	struct stat st;
	int ret = 0;

	if (flock(sw->fd, LOCK_EX))
		return err_sys(-errno, "swapfile %s: lock", sw->path);
	if (fstat(sw->fd, &st))
		ret = err_sys(-errno, "swapfile %s: stat", sw->path);
	else if (st.st_size == 0)
		ret = format(sw);
	flock(sw->fd, LOCK_UN);
	return ret;
}

int swap_open(struct swapfile **swp, const char *path, int create)
{
	struct swapfile *sw;
	int ret, fresh = 0;

	*swp = NULL;
	sw = calloc(1, sizeof(*sw));
	if (!sw)
		return err_set(-ENOMEM, "swapfile %s: out of memory", path);
	sw->fd = -1;
	sw->path = strdup(path);
	if (!sw->path)
		ret = err_set(-ENOMEM, "swapfile %s: out of memory", path);
	else
		ret = open_file(sw, create, &fresh);
	if (!ret && fresh)
		ret = format_if_empty(sw);
	if (!ret)
		ret = load_sb(sw);
	if (ret) {
		swap_close(sw);
		return ret;
	}
	*swp = sw;
	return 0;
}

void swap_close(struct swapfile *sw)
{
	if (!sw)
		return;
	if (sw->fd >= 0)
		close(sw->fd);	/* drops the lock and any uncommitted appends */
	free(sw->path);
	free(sw);
}

const uint8_t *swap_uuid(const struct swapfile *sw)
{
	return sw->uuid;
}

uint64_t swap_slots_end(const struct swapfile *sw)
{
	return sw->slots_end;
}

int swap_fd(const struct swapfile *sw)
{
	return sw->fd;
}

static int sticky(const struct swapfile *sw)
{
	return err_set(sw->err, "swapfile %s: %s", sw->path,
		       sw->err == -EBUSY ? "in use by another cryo process" :
		       sw->err == -EROFS ? "opened read-only" :
		       "unusable after an earlier error");
}

static int begin(struct swapfile *sw)
{
	int ret;

	if (sw->err)
		return sticky(sw);
	if (sw->locked)
		return 0;
	if (sw->rdonly) {
		sw->err = -EROFS;
		return sticky(sw);
	}
	if (flock(sw->fd, LOCK_EX | LOCK_NB)) {
		sw->err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		return sw->err == -EBUSY ? sticky(sw) :
		       err_sys(sw->err, "swapfile %s: lock", sw->path);
	}
	sw->locked = 1;
	ret = load_sb(sw);
	if (ret) {
		flock(sw->fd, LOCK_UN);
		sw->locked = 0;
		sw->err = ret;
	}
	return ret;
}

/* 0 when the transaction could not start; the error is then recorded and
 * returned by the next append or commit (ids start at 1). */
uint64_t swap_next_snapshot(struct swapfile *sw)
{
	if (begin(sw))
		return 0;
	return sw->next_snapshot++;
}

int swap_append(struct swapfile *sw, const void *pages, size_t n, uint64_t *first_slot)
{
	uint64_t slot, max = (UINT64_MAX / 2 - SWAP_DATA_OFFSET) / SWAP_PAGE;
	int ret;

	ret = begin(sw);
	if (ret)
		return ret;
	slot = sw->pending_end;
	if (n > SIZE_MAX / SWAP_PAGE || n > max - slot)
		return err_set(-EFBIG, "swapfile %s: appending %zu pages at slot %llu: "
			       "too large", sw->path, n, (unsigned long long)slot);
	ret = pwrite_all(sw->fd, pages, n * SWAP_PAGE, SWAP_DATA_OFFSET + slot * SWAP_PAGE);
	if (ret)
		return err_set(ret, "swapfile %s: appending %zu pages at slot %llu: %s; "
			       "the last committed snapshot (%llu slots) stays valid",
			       sw->path, n, (unsigned long long)slot, strerror(-ret),
			       (unsigned long long)sw->slots_end);
	sw->pending_end = slot + n;
	*first_slot = slot;
	return 0;
}

static int commit_failed(const struct swapfile *sw, int err, const char *what)
{
	return err_set(err, "swapfile %s: commit: %s: %s; the previous superblock "
		       "(generation %llu, %llu slots) stays valid", sw->path, what,
		       strerror(-err), (unsigned long long)sw->generation,
		       (unsigned long long)sw->slots_end);
}

int swap_commit(struct swapfile *sw)
{
	struct swap_sb sb;
	int other = !sw->cur, ret;

	if (sw->err)
		return sticky(sw);
	if (!sw->locked)
		return 0;	/* nothing appended, no id taken */
	/* the pages must be durable before a superblock points at them */
	if (fdatasync(sw->fd))
		return commit_failed(sw, -errno, "syncing data");
	make_sb(sw, &sb, sw->generation + 1);
	ret = write_sb(sw, other, &sb);
	if (ret)
		return commit_failed(sw, ret, other ? "writing superblock B" :
						      "writing superblock A");
	if (fdatasync(sw->fd))
		return commit_failed(sw, -errno, "syncing the superblock");
	sw->cur = other;
	sw->generation++;
	sw->slots_end = sw->pending_end;
	flock(sw->fd, LOCK_UN);
	sw->locked = 0;
	return 0;
}

int swap_read(struct swapfile *sw, uint64_t slot, size_t n, void *buf)
{
	size_t len;
	int64_t got;

	if (slot > sw->slots_end || n > sw->slots_end - slot || n > SIZE_MAX / SWAP_PAGE)
		return err_set(-ERANGE, "swapfile %s: slot %llu (+%zu pages) is beyond "
			       "the committed end (%llu slots)", sw->path,
			       (unsigned long long)slot, n,
			       (unsigned long long)sw->slots_end);
	len = n * SWAP_PAGE;
	got = pread_all(sw->fd, buf, len, SWAP_DATA_OFFSET + slot * SWAP_PAGE);
	if (got < 0)
		return err_sys((int)got, "swapfile %s: reading slot %llu",
			       sw->path, (unsigned long long)slot);
	if ((uint64_t)got < len)
		return err_set(-EIO, "swapfile %s: slot %llu: file ends at byte %llu "
			       "(truncated?)", sw->path, (unsigned long long)slot,
			       (unsigned long long)(SWAP_DATA_OFFSET + slot * SWAP_PAGE + got));
	return 0;
}
