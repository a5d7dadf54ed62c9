/* The page store: A/B superblocks, then 4 KiB slots. Only committed slots
 * are ever read, so whatever a crash leaves past the committed end is
 * garbage that the next append simply overwrites.
 *
 * One writer at a time: a writer holds flock(LOCK_EX) from its first
 * append (or snapshot id) until commit, and re-reads the superblock when it
 * takes the lock, since another dump may have committed since we opened.
 * Readers (restores) take no lock: committed slots never change while a
 * snapshot that uses them exists (deleting a snapshot punches the slots
 * only it used; restoring a deleted snapshot then fails its checksums).
 *
 * ---- On-disk format, version 2 (snapshots and dedup) ----
 * Superblocks (A at 0, B at 4096, each a whole 4 KiB block):
 *   bytes  0..63  struct swap_sb, as in version 1 (crc32c over bytes 0..55),
 *                 version = 2;
 *   bytes 64..95  struct swap_sb_ext (own crc32c over its bytes 0..27):
 *                 meta_slot, meta_len, meta_sum (XXH3-64 of the meta blob),
 *                 flags. meta_len 0: no metadata.
 * Version 1 files (no ext) are read as "no snapshots, no index" and written
 * as version 2 at their next commit; a version-1 cryo refuses version 2.
 *
 * The metadata blob lives in ordinary slots [meta_slot, meta_slot +
 * ceil(meta_len / 4096)), appended past the data at commit and made durable
 * before the superblock that points at it (so it is covered by the
 * committed end and by the A/B switch). It is rewritten whole at every
 * commit that adds or deletes a snapshot (copy-on-write); the blob the
 * overwritten superblock pointed at (two generations old, referenced by
 * neither superblock any more) is then punched out. Contents, little-endian:
 *   "CRYOMETA", le32 version (1), le32 nsnaps, le64 nhashes;
 *   le64 hash[nhashes]: XXH3-64 of the page in slot i, 0 = not a dedup
 *       candidate (metadata slots, slots written by the raw swap_append,
 *       version-1 slots);
 *   nsnaps times: le64 id, le64 created (unix seconds), le64 npages (pages
 *       the snapshot maps, counting repeats), le32 nruns, le32 0, then
 *       nruns pairs (le64 first slot, le64 count), ascending, disjoint:
 *       the set of slots the snapshot uses.
 * A slot is live while some snapshot's runs contain it. Slots are never
 * reused: the slot space only grows, allocated space shrinks by
 * fallocate(PUNCH_HOLE) of slots that are not live and have a hash
 * (i.e. were written for a snapshot), which is idempotent, so a crash
 * between a delete's commit and its punching only delays the punching to
 * the next delete.
 *
 * Dedup: at a dump's first swap_store_pages (under the writer lock) the
 * hashes of live slots are loaded into an in-memory table hash -> slot
 * (rebuilt from the committed blob, so it always matches the superblock). A page whose XXH3-64 is in
 * the table is compared byte for byte with the stored slot (one pread;
 * we do NOT trust the 64-bit hash alone, XXH3 is not collision resistant
 * against chosen content), and reuses the slot only if identical. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "err.h"
#include "lx_ckpt.h"
#include "swap.h"

#define SWAP_MAGIC	"CRYOSWP1"
#define SWAP_VERSION	2	/* writes; reads 1 and 2 */
#define META_MAGIC	"CRYOMETA"
#define META_VERSION	1

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

/* version 2: right after struct swap_sb in the superblock block */
struct swap_sb_ext {
	lx_le64 meta_slot;
	lx_le64 meta_len;	/* bytes; 0 = no metadata */
	lx_le64 meta_sum;	/* XXH3-64 of the blob */
	lx_le32 flags;
	lx_le32 crc;		/* crc32c of the bytes before it */
};
_Static_assert(sizeof(struct swap_sb_ext) == 32, "superblock extension layout");

struct sb_block {
	struct swap_sb sb;
	struct swap_sb_ext ext;
};

struct snap {
	uint64_t id, created, npages;
	size_t nruns;
	uint64_t *runs;		/* pairs: first slot, count */
};

struct meta_ptr {
	uint64_t slot, len, sum;
};

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
	struct meta_ptr meta;	/* committed (current superblock) */
	struct meta_ptr other_meta;	/* the other superblock's, if valid */
	uint64_t generation_of_other;

	/* the metadata, loaded on demand (meta_gen: generation it is from) */
	int meta_loaded;
	uint64_t meta_gen;
	uint64_t *hashes;	/* dense, by slot */
	uint64_t nhashes, hashes_cap;
	struct snap *snaps;
	size_t nsnaps;
	int meta_dirty;		/* a snapshot was deleted: rewrite at commit */
	/* dedup table: open addressing, key 0 = empty */
	uint64_t *ht_key, *ht_slot;
	size_t ht_cap, ht_n;
	/* the snapshot being written by this transaction */
	uint64_t pend_id;
	uint64_t *pend_slots;
	size_t npend, pend_cap;
	uint64_t pend_pages, pend_written, pend_reused;
	int gc_pending;		/* swap_pending_reset dropped slots: punch them at commit */
	/* dedup compares against a read-only map of the slots committed when
	 * it was made: no syscall per candidate page */
	const uint8_t *cmp_map;
	uint64_t cmp_slots;
	uint64_t last_snap;	/* committed here, returned by swap_next_snapshot */
	struct swap_source src;	/* src.read != NULL: not a file (pack.c) */
};

static void meta_free(struct swapfile *sw);

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
static int write_sb(struct swapfile *sw, int which, const struct sb_block *sb)
{
	uint8_t block[SWAP_PAGE] = { 0 };

	if (sb)
		memcpy(block, sb, sizeof(*sb));
	return pwrite_all(sw->fd, block, sizeof(block), (uint64_t)which * SWAP_PAGE);
}

static uint32_t ext_crc(const struct swap_sb_ext *x)
{
	return lx_crc32c(0, x, offsetof(struct swap_sb_ext, crc));
}

static void make_sb(const struct swapfile *sw, struct sb_block *blk, uint64_t gen,
		    const struct meta_ptr *m)
{
	struct swap_sb *sb = &blk->sb;

	memset(blk, 0, sizeof(*blk));
	blk->ext.meta_slot = lx_cpu_to_le64(m ? m->slot : 0);
	blk->ext.meta_len = lx_cpu_to_le64(m ? m->len : 0);
	blk->ext.meta_sum = lx_cpu_to_le64(m ? m->sum : 0);
	blk->ext.crc = lx_cpu_to_le32(ext_crc(&blk->ext));
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
	struct sb_block sb;
	ssize_t n;
	int ret;

	n = getrandom(sw->uuid, sizeof(sw->uuid), 0);
	if (n != (ssize_t)sizeof(sw->uuid))
		return err_sys(n < 0 ? -errno : -EIO, "swapfile %s: getrandom", sw->path);
	sw->pending_end = 0;
	sw->next_snapshot = 1;
	make_sb(sw, &sb, 1, NULL);
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
static int sb_check(const struct swapfile *sw, const struct sb_block *blk, char which)
{
	const struct swap_sb *sb = &blk->sb;
	uint32_t v;

	if (memcmp(sb->magic, SWAP_MAGIC, sizeof(sb->magic)) ||
	    sb_crc(sb) != lx_le32_to_cpu(sb->crc))
		return 1;
	v = lx_le32_to_cpu(sb->version);
	if (v == 2 && ext_crc(&blk->ext) != lx_le32_to_cpu(blk->ext.crc))
		return 1;
	if (v != 1 && v != 2)
		return err_set(-EINVAL, "swapfile %s: superblock %c: unsupported version %u",
			       sw->path, which, lx_le32_to_cpu(sb->version));
	return 0;
}

static void sb_meta(const struct sb_block *blk, struct meta_ptr *m)
{
	memset(m, 0, sizeof(*m));
	if (lx_le32_to_cpu(blk->sb.version) < 2)
		return;
	m->slot = lx_le64_to_cpu(blk->ext.meta_slot);
	m->len = lx_le64_to_cpu(blk->ext.meta_len);
	m->sum = lx_le64_to_cpu(blk->ext.meta_sum);
}

static int sb_adopt(struct swapfile *sw, const struct sb_block *blk, int which)
{
	const struct swap_sb *sb = &blk->sb;
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
	sb_meta(blk, &sw->meta);
	if (sw->meta.len && (sw->meta.slot > end ||
			     (sw->meta.len + SWAP_PAGE - 1) / SWAP_PAGE > end - sw->meta.slot))
		return err_set(-EINVAL, "swapfile %s: superblock %c: metadata at slot %llu "
			       "(%llu bytes) lies beyond the committed end", sw->path,
			       'A' + which, (unsigned long long)sw->meta.slot,
			       (unsigned long long)sw->meta.len);
	return 0;
}

static int load_sb(struct swapfile *sw)
{
	struct sb_block sb[2];
	int ok[2], i, best = -1;
	int64_t n;

	for (i = 0; i < 2; i++) {
		memset(&sb[i], 0, sizeof(sb[i]));
		n = pread_all(sw->fd, &sb[i], sizeof(sb[i]), (uint64_t)i * SWAP_PAGE);
		if (n < 0)
			return err_sys((int)n, "swapfile %s: reading superblock %c",
				       sw->path, 'A' + i);
		ok[i] = n >= (int64_t)sizeof(sb[i].sb) ? sb_check(sw, &sb[i], 'A' + i) : 1;
		if (ok[i] < 0)
			return ok[i];
		if (ok[i] == 0 && (best < 0 || lx_le64_to_cpu(sb[i].sb.generation) >
					       lx_le64_to_cpu(sb[best].sb.generation)))
			best = i;
	}
	if (best < 0)
		return err_set(-EINVAL, "swapfile %s: no valid superblock (not a cryo "
			       "swapfile, or both copies are corrupt)", sw->path);
	memset(&sw->other_meta, 0, sizeof(sw->other_meta));
	if (ok[!best] == 0)
		sb_meta(&sb[!best], &sw->other_meta);
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

int swap_open_source(struct swapfile **swp, const char *name, const struct swap_source *src)
{
	struct swapfile *sw = calloc(1, sizeof(*sw));

	*swp = NULL;
	if (!sw || !(sw->path = strdup(name))) {
		free(sw);
		if (src->free)
			src->free(src->ctx);
		return err_set(-ENOMEM, "%s: out of memory", name);
	}
	sw->fd = -1;
	sw->rdonly = 1;
	sw->src = *src;
	memcpy(sw->uuid, src->uuid, sizeof(sw->uuid));
	sw->slots_end = sw->pending_end = src->slots_end;
	*swp = sw;
	return 0;
}

int swap_is_source(const struct swapfile *sw)
{
	return sw->src.read != NULL;
}

static void drop_uncommitted(struct swapfile *sw);

void swap_close(struct swapfile *sw)
{
	if (!sw)
		return;
	if (sw->src.free)
		sw->src.free(sw->src.ctx);
	if (sw->cmp_map)
		munmap((void *)sw->cmp_map, SWAP_DATA_OFFSET + sw->cmp_slots * SWAP_PAGE);
	if (sw->locked)
		drop_uncommitted(sw);	/* a dump that failed before its commit */
	if (sw->fd >= 0)
		close(sw->fd);	/* drops the lock */
	meta_free(sw);
	free(sw->pend_slots);
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

/* Slots past the committed end belong to no snapshot: a dump that failed or
 * was killed wrote them. Give their space back (under the writer lock; a
 * reader only reads committed slots). Best effort: the space is also
 * overwritten by the next dump's appends. */
static void drop_uncommitted(struct swapfile *sw)
{
	uint64_t end = SWAP_DATA_OFFSET + sw->slots_end * SWAP_PAGE;
	struct stat st;

	if (!fstat(sw->fd, &st) && (uint64_t)st.st_size > end && ftruncate(sw->fd, (off_t)end))
		warn("swapfile %s: could not free the %llu bytes a failed dump left: %s", sw->path,
		     (unsigned long long)st.st_size - end, strerror(errno));
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
	} else {
		drop_uncommitted(sw);	/* left by a dump that was killed */
	}
	return ret;
}

/* 0 when the transaction could not start; the error is then recorded and
 * returned by the next append or commit (ids start at 1). */
uint64_t swap_next_snapshot(struct swapfile *sw)
{
	uint64_t id = sw->last_snap;

	/* the snapshot the last commit of swap_store_pages made: its id was
	 * allocated and persisted then */
	if (id && !sw->locked) {
		sw->last_snap = 0;
		return id;
	}
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

/* ---- metadata: snapshot table and hash index ---- */

static void meta_free(struct swapfile *sw)
{
	for (size_t i = 0; i < sw->nsnaps; i++)
		free(sw->snaps[i].runs);
	free(sw->snaps);
	free(sw->hashes);
	free(sw->ht_key);
	free(sw->ht_slot);
	sw->snaps = NULL;
	sw->nsnaps = 0;
	sw->hashes = NULL;
	sw->nhashes = sw->hashes_cap = 0;
	sw->ht_key = sw->ht_slot = NULL;
	sw->ht_cap = sw->ht_n = 0;
	sw->meta_loaded = 0;
}

static int set_hash(struct swapfile *sw, uint64_t slot, uint64_t h)
{
	if (slot >= sw->hashes_cap) {
		uint64_t nc = sw->hashes_cap ? sw->hashes_cap : 1024;
		uint64_t *n;

		while (nc <= slot)
			nc *= 2;
		n = realloc(sw->hashes, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + sw->hashes_cap, 0, (nc - sw->hashes_cap) * sizeof(*n));
		sw->hashes = n;
		sw->hashes_cap = nc;
	}
	sw->hashes[slot] = h;
	if (slot >= sw->nhashes)
		sw->nhashes = slot + 1;
	return 0;
}

static size_t ht_pos(const struct swapfile *sw, uint64_t h)
{
	return (size_t)((h * 0x9e3779b97f4a7c15ull) >> 17) & (sw->ht_cap - 1);
}

/* first slot recorded for hash h, or UINT64_MAX */
static uint64_t ht_find(const struct swapfile *sw, uint64_t h)
{
	if (!sw->ht_cap || !h)
		return UINT64_MAX;
	for (size_t i = ht_pos(sw, h);; i = (i + 1) & (sw->ht_cap - 1)) {
		if (!sw->ht_key[i])
			return UINT64_MAX;
		if (sw->ht_key[i] == h)
			return sw->ht_slot[i];
	}
}

static int ht_insert(struct swapfile *sw, uint64_t h, uint64_t slot)
{
	if (!h)
		return 0;
	if ((sw->ht_n + 1) * 2 > sw->ht_cap) {
		size_t oc = sw->ht_cap, nc = oc ? oc * 2 : 4096;
		uint64_t *ok = sw->ht_key, *os = sw->ht_slot;

		sw->ht_key = calloc(nc, sizeof(uint64_t));
		sw->ht_slot = calloc(nc, sizeof(uint64_t));
		if (!sw->ht_key || !sw->ht_slot) {
			free(sw->ht_key);
			free(sw->ht_slot);
			sw->ht_key = ok;
			sw->ht_slot = os;
			return -ENOMEM;
		}
		sw->ht_cap = nc;
		sw->ht_n = 0;
		for (size_t i = 0; i < oc; i++)
			if (ok[i])
				ht_insert(sw, ok[i], os[i]);
		free(ok);
		free(os);
	}
	for (size_t i = ht_pos(sw, h);; i = (i + 1) & (sw->ht_cap - 1)) {
		if (sw->ht_key[i] == h)
			return 0;	/* keep the first */
		if (!sw->ht_key[i]) {
			sw->ht_key[i] = h;
			sw->ht_slot[i] = slot;
			sw->ht_n++;
			return 0;
		}
	}
}

/* bitmap of the slots some snapshot uses, slots [0, end) */
static uint8_t *live_map(const struct swapfile *sw, uint64_t end, size_t skip)
{
	uint8_t *m = calloc(end / 8 + 1, 1);

	if (!m)
		return NULL;
	for (size_t i = 0; i < sw->nsnaps; i++) {
		if (i == skip)
			continue;
		for (size_t r = 0; r < sw->snaps[i].nruns; r++)
			for (uint64_t k = 0; k < sw->snaps[i].runs[2 * r + 1]; k++) {
				uint64_t s = sw->snaps[i].runs[2 * r] + k;

				if (s < end)
					m[s / 8] |= (uint8_t)(1u << (s % 8));
			}
	}
	return m;
}

#define LIVE(m, s) ((m)[(s) / 8] & (1u << ((s) % 8)))

static int meta_bad(const struct swapfile *sw, const char *why)
{
	return err_set(-EINVAL, "swapfile %s: metadata at slot %llu (%llu bytes, "
		       "generation %llu): %s", sw->path, (unsigned long long)sw->meta.slot,
		       (unsigned long long)sw->meta.len, (unsigned long long)sw->generation, why);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return lx_le64_to_cpu(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return lx_le32_to_cpu(v);
}

static int meta_parse(struct swapfile *sw, const uint8_t *b, uint64_t len)
{
	uint64_t nh, off;
	uint32_t ns;

	if (len < 24 || memcmp(b, META_MAGIC, 8) || get32(b + 8) != META_VERSION)
		return meta_bad(sw, "bad header");
	ns = get32(b + 12);
	nh = get64(b + 16);
	if (nh > (len - 24) / 8 || nh > sw->slots_end)
		return meta_bad(sw, "hash count out of range");
	for (uint64_t i = 0; i < nh; i++)
		if (set_hash(sw, i, get64(b + 24 + i * 8)))
			return -ENOMEM;
	sw->nhashes = nh;
	off = 24 + nh * 8;
	sw->snaps = calloc(ns ? ns : 1, sizeof(*sw->snaps));
	if (!sw->snaps)
		return -ENOMEM;
	for (uint32_t i = 0; i < ns; i++) {
		struct snap *sn = &sw->snaps[i];
		uint32_t nr;

		if (len - off < 32)
			return meta_bad(sw, "truncated snapshot record");
		sn->id = get64(b + off);
		sn->created = get64(b + off + 8);
		sn->npages = get64(b + off + 16);
		nr = get32(b + off + 24);
		off += 32;
		if ((len - off) / 16 < nr)
			return meta_bad(sw, "truncated snapshot runs");
		sn->runs = malloc((nr ? nr : 1) * 16);
		if (!sn->runs)
			return -ENOMEM;
		sw->nsnaps = i + 1;
		sn->nruns = nr;
		for (uint32_t r = 0; r < nr; r++) {
			sn->runs[2 * r] = get64(b + off);
			sn->runs[2 * r + 1] = get64(b + off + 8);
			off += 16;
			if (sn->runs[2 * r] > sw->slots_end ||
			    sn->runs[2 * r + 1] > sw->slots_end - sn->runs[2 * r])
				return meta_bad(sw, "snapshot run beyond the committed end");
		}
	}
	return 0;
}

/* Load the metadata of the committed superblock (and the dedup table of
 * live slots). Call with the lock held (or a shared lock, to list). */
static int meta_ready(struct swapfile *sw)
{
	uint8_t *b = NULL, *live = NULL;
	int64_t got;
	int ret = 0;

	if (sw->meta_loaded && sw->meta_gen == sw->generation)
		return 0;
	meta_free(sw);
	if (sw->meta.len) {
		if (sw->meta.len > (1ull << 34))
			return meta_bad(sw, "absurd length");
		b = malloc(sw->meta.len);
		if (!b)
			return -ENOMEM;
		got = pread_all(sw->fd, b, sw->meta.len, SWAP_DATA_OFFSET + sw->meta.slot * SWAP_PAGE);
		if (got < 0)
			ret = err_sys((int)got, "swapfile %s: reading metadata", sw->path);
		else if ((uint64_t)got != sw->meta.len)
			ret = meta_bad(sw, "file too short");
		else if (XXH3_64bits(b, sw->meta.len) != sw->meta.sum)
			ret = meta_bad(sw, "checksum mismatch");
		if (!ret)
			ret = meta_parse(sw, b, sw->meta.len);
		free(b);
	}
	if (!ret && sw->nhashes) {
		live = live_map(sw, sw->nhashes, SIZE_MAX);
		if (!live)
			ret = -ENOMEM;
		for (uint64_t s = 0; !ret && s < sw->nhashes; s++)
			if (sw->hashes[s] && LIVE(live, s))
				ret = ht_insert(sw, sw->hashes[s], s);
		free(live);
	}
	if (ret) {
		meta_free(sw);
		return ret;
	}
	sw->meta_loaded = 1;
	sw->meta_gen = sw->generation;
	return 0;
}

static int put(uint8_t **b, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap : 4096;
		uint8_t *x;

		while (nc < *len + n)
			nc *= 2;
		x = realloc(*b, nc);
		if (!x)
			return -ENOMEM;
		*b = x;
		*cap = nc;
	}
	memcpy(*b + *len, p, n);
	*len += n;
	return 0;
}

static int put64(uint8_t **b, size_t *len, size_t *cap, uint64_t v)
{
	v = lx_cpu_to_le64(v);
	return put(b, len, cap, &v, 8);
}

static int put32(uint8_t **b, size_t *len, size_t *cap, uint32_t v)
{
	v = lx_cpu_to_le32(v);
	return put(b, len, cap, &v, 4);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The pending snapshot's slots, sorted, as runs */
static int pending_runs(struct swapfile *sw, struct snap *sn)
{
	size_t nr = 0;
	size_t unsorted = 0;

	/* appends come in ascending order: sort only when needed */
	for (size_t i = 1; i < sw->npend && !unsorted; i++)
		unsorted = sw->pend_slots[i] < sw->pend_slots[i - 1];
	if (unsorted)
		qsort(sw->pend_slots, sw->npend, sizeof(uint64_t), cmp_u64);
	sn->runs = malloc((sw->npend ? sw->npend : 1) * 16);
	if (!sn->runs)
		return -ENOMEM;
	for (size_t i = 0; i < sw->npend; i++) {
		uint64_t s = sw->pend_slots[i];

		if (nr && sn->runs[2 * (nr - 1)] + sn->runs[2 * (nr - 1) + 1] == s)
			sn->runs[2 * (nr - 1) + 1]++;
		else if (!(nr && sn->runs[2 * (nr - 1)] + sn->runs[2 * (nr - 1) + 1] > s)) {
			sn->runs[2 * nr] = s;
			sn->runs[2 * nr + 1] = 1;
			nr++;
		}
	}
	sn->nruns = nr;
	return 0;
}

static int meta_build(struct swapfile *sw, uint8_t **out, size_t *outlen)
{
	uint8_t *b = NULL;
	size_t len = 0, cap = 0;
	int e;

	e = put(&b, &len, &cap, META_MAGIC, 8);
	if (!e)
		e = put32(&b, &len, &cap, META_VERSION);
	if (!e)
		e = put32(&b, &len, &cap, (uint32_t)sw->nsnaps);
	if (!e)
		e = put64(&b, &len, &cap, sw->nhashes);
	for (uint64_t i = 0; i < sw->nhashes && !e; i++)
		e = put64(&b, &len, &cap, sw->hashes[i]);
	for (size_t i = 0; i < sw->nsnaps && !e; i++) {
		const struct snap *sn = &sw->snaps[i];

		e = put64(&b, &len, &cap, sn->id);
		if (!e)
			e = put64(&b, &len, &cap, sn->created);
		if (!e)
			e = put64(&b, &len, &cap, sn->npages);
		if (!e)
			e = put32(&b, &len, &cap, (uint32_t)sn->nruns);
		if (!e)
			e = put32(&b, &len, &cap, 0);
		for (size_t r = 0; r < 2 * sn->nruns && !e; r++)
			e = put64(&b, &len, &cap, sn->runs[r]);
	}
	if (e) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	*outlen = len;
	return 0;
}

static void punch(struct swapfile *sw, uint64_t slot, uint64_t n)
{
	if (!n)
		return;
	/* best effort: a failure leaves space allocated, never data wrong */
	if (fallocate(sw->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(SWAP_DATA_OFFSET + slot * SWAP_PAGE), (off_t)(n * SWAP_PAGE)))
		warn("swapfile %s: punching slots %llu-%llu: %s", sw->path,
		     (unsigned long long)slot, (unsigned long long)(slot + n - 1),
		     strerror(errno));
}

/* Punch every slot written for a snapshot that no snapshot uses now.
 * Returns the number of slots punched. */
static uint64_t gc(struct swapfile *sw)
{
	uint8_t *live = live_map(sw, sw->nhashes, SIZE_MAX);
	uint64_t run = 0, start = 0, total = 0;

	if (!live)
		return 0;
	for (uint64_t s = 0; s <= sw->nhashes; s++) {
		int dead = s < sw->nhashes && sw->hashes[s] && !LIVE(live, s);

		if (dead) {
			if (!run)
				start = s;
			run++;
		} else if (run) {
			punch(sw, start, run);
			total += run;
			run = 0;
		}
	}
	free(live);
	return total;
}

static void meta_punch(struct swapfile *sw, const struct meta_ptr *m)
{
	if (m->len)
		punch(sw, m->slot, (m->len + SWAP_PAGE - 1) / SWAP_PAGE);
}

static int same_meta(const struct meta_ptr *a, const struct meta_ptr *b)
{
	return a->len == b->len && a->slot == b->slot;
}

static int commit_locked(struct swapfile *sw);

int swap_commit(struct swapfile *sw)
{
	int ret = commit_locked(sw);

	/* a failed commit may leave the in-memory snapshot table ahead of the
	 * disk: drop it, the next use reloads the committed one */
	if (ret)
		meta_free(sw);
	return ret;
}

static int commit_locked(struct swapfile *sw)
{
	struct sb_block sb;
	struct meta_ptr nm = sw->meta, old_other = sw->other_meta;
	int other = !sw->cur, ret, new_snap = 0, deleted = sw->meta_dirty;

	if (sw->err)
		return sticky(sw);
	if (!sw->locked)
		return 0;	/* nothing appended, no id taken */
	if (sw->pend_id || sw->meta_dirty) {
		uint8_t *blob = NULL;
		size_t len = 0;
		uint64_t first = 0, np;

		ret = meta_ready(sw);
		if (ret)
			return commit_failed(sw, ret, "loading metadata");
		if (sw->pend_id) {
			struct snap sn = { .id = sw->pend_id, .created = (uint64_t)time(NULL),
					   .npages = sw->pend_pages };
			struct snap *ns = realloc(sw->snaps, (sw->nsnaps + 1) * sizeof(*ns));

			if (!ns || pending_runs(sw, &sn))
				return commit_failed(sw, -ENOMEM, "building the snapshot table");
			sw->snaps = ns;
			sw->snaps[sw->nsnaps++] = sn;
			new_snap = 1;
		}
		if (meta_build(sw, &blob, &len))
			return commit_failed(sw, -ENOMEM, "building metadata");
		np = (len + SWAP_PAGE - 1) / SWAP_PAGE;
		/* pad to whole pages: append the blob as slots */
		{
			uint8_t *pad = realloc(blob, np * SWAP_PAGE);

			if (!pad) {
				free(blob);
				return commit_failed(sw, -ENOMEM, "building metadata");
			}
			blob = pad;
			memset(blob + len, 0, np * SWAP_PAGE - len);
		}
		ret = swap_append(sw, blob, np, &first);
		nm.slot = first;
		nm.len = len;
		nm.sum = XXH3_64bits(blob, len);
		free(blob);
		if (ret)
			return ret;
	}
	/* the pages must be durable before a superblock points at them */
	if (fdatasync(sw->fd))
		return commit_failed(sw, -errno, "syncing data");
	make_sb(sw, &sb, sw->generation + 1, &nm);
	ret = write_sb(sw, other, &sb);
	if (ret)
		return commit_failed(sw, ret, other ? "writing superblock B" :
						      "writing superblock A");
	if (fdatasync(sw->fd))
		return commit_failed(sw, -errno, "syncing the superblock");
	sw->cur = other;
	sw->generation++;
	sw->slots_end = sw->pending_end;
	sw->other_meta = sw->meta;
	sw->meta = nm;
	if (sw->meta_loaded)
		sw->meta_gen = sw->generation;	/* the in-memory tables are nm */
	/* the blob the overwritten superblock named is referenced no more */
	if (!same_meta(&old_other, &sw->meta) && !same_meta(&old_other, &sw->other_meta))
		meta_punch(sw, &old_other);
	if (deleted || sw->gc_pending)
		gc(sw);
	sw->gc_pending = 0;
	if (new_snap) {
		info("swapfile %s: snapshot %llu: %llu pages stored: %llu written, "
		     "%llu reused (dedup)", sw->path, (unsigned long long)sw->pend_id,
		     (unsigned long long)sw->pend_pages, (unsigned long long)sw->pend_written,
		     (unsigned long long)sw->pend_reused);
		sw->last_snap = sw->pend_id;
	}
	sw->pend_id = 0;
	sw->npend = 0;
	sw->pend_pages = sw->pend_written = sw->pend_reused = 0;
	sw->meta_dirty = 0;
	flock(sw->fd, LOCK_UN);
	sw->locked = 0;
	return 0;
}

/* ---- the snapshot-aware page writer ---- */

static int pend_add(struct swapfile *sw, uint64_t slot)
{
	if (sw->npend == sw->pend_cap) {
		size_t nc = sw->pend_cap ? sw->pend_cap * 2 : 4096;
		uint64_t *n = realloc(sw->pend_slots, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		sw->pend_slots = n;
		sw->pend_cap = nc;
	}
	sw->pend_slots[sw->npend++] = slot;
	return 0;
}

static int flush_new(struct swapfile *sw, struct iovec *iov, size_t *niov)
{
	uint64_t slot = sw->pending_end;
	size_t done = 0;

	while (done < *niov) {
		size_t n = *niov - done > 512 ? 512 : *niov - done;
		size_t want = n * SWAP_PAGE, got = 0;

		while (got < want) {
			/* iovecs are whole pages: resume at a page boundary */
			size_t skip = got / SWAP_PAGE, part = got % SWAP_PAGE;
			struct iovec tmp = iov[done + skip];
			ssize_t w;

			if (part) {
				tmp.iov_base = (uint8_t *)tmp.iov_base + part;
				tmp.iov_len -= part;
				w = pwrite(sw->fd, tmp.iov_base, tmp.iov_len,
					   (off_t)(SWAP_DATA_OFFSET + (slot + skip) * SWAP_PAGE + part));
			} else {
				w = pwritev(sw->fd, iov + done + skip, (int)(n - skip),
					    (off_t)(SWAP_DATA_OFFSET + (slot + skip) * SWAP_PAGE));
			}
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return err_set(w < 0 ? -errno : -EIO, "swapfile %s: appending "
					       "pages at slot %llu: %s; the last committed "
					       "snapshot (%llu slots) stays valid", sw->path,
					       (unsigned long long)(slot + skip),
					       strerror(w < 0 ? errno : EIO),
					       (unsigned long long)sw->slots_end);
			got += (size_t)w;
		}
		slot += n;
		done += n;
	}
	sw->pending_end = slot;
	*niov = 0;
	return 0;
}

/* Map the committed slots (once per transaction that needs slot c):
 * committed slots never change or shrink while we hold the writer lock,
 * punched ones read as zeros (no match). 0 if c is not committed. */
static int cmp_map(struct swapfile *sw, uint64_t c)
{
	void *m;

	if (c >= sw->slots_end || sw->slots_end > (SIZE_MAX - SWAP_DATA_OFFSET) / SWAP_PAGE)
		return 0;
	if (sw->cmp_map)
		munmap((void *)sw->cmp_map, SWAP_DATA_OFFSET + sw->cmp_slots * SWAP_PAGE);
	sw->cmp_map = NULL;
	sw->cmp_slots = 0;
	m = mmap(NULL, SWAP_DATA_OFFSET + sw->slots_end * SWAP_PAGE, PROT_READ, MAP_SHARED,
		 sw->fd, 0);
	if (m == MAP_FAILED)
		return 0;	/* pread then */
	madvise(m, SWAP_DATA_OFFSET + sw->slots_end * SWAP_PAGE, MADV_SEQUENTIAL);
	sw->cmp_map = m;
	sw->cmp_slots = sw->slots_end;
	return 1;
}

int swap_store_pages(struct swapfile *sw, const uint8_t *const *pages, const uint64_t *sums,
		     size_t n, uint64_t *slots)
{
	struct iovec iov[256];
	size_t niov = 0;
	uint8_t cmp[SWAP_PAGE];
	int ret;

	ret = begin(sw);
	if (!ret)
		ret = meta_ready(sw);
	if (ret)
		return ret;
	if (!sw->pend_id)
		sw->pend_id = sw->next_snapshot++;
	for (size_t i = 0; i < n; i++) {
		uint64_t c = ht_find(sw, sums[i]);
		int same = 0;

		if (c != UINT64_MAX) {
			if (c >= sw->pending_end) {	/* queued in iov, not written yet */
				same = !memcmp(iov[c - sw->pending_end].iov_base, pages[i], SWAP_PAGE);
			} else if (c < sw->cmp_slots || cmp_map(sw, c)) {
				same = !memcmp(sw->cmp_map + SWAP_DATA_OFFSET + c * SWAP_PAGE, pages[i],
					       SWAP_PAGE);
			} else {
				int64_t got = pread_all(sw->fd, cmp, SWAP_PAGE,
							SWAP_DATA_OFFSET + c * SWAP_PAGE);

				if (got < 0)
					return err_sys((int)got, "swapfile %s: reading slot %llu",
						       sw->path, (unsigned long long)c);
				same = got == SWAP_PAGE && !memcmp(cmp, pages[i], SWAP_PAGE);
			}
		}
		if (same) {
			slots[i] = c;
			sw->pend_reused++;
		} else {
			if (niov == sizeof(iov) / sizeof(iov[0])) {
				ret = flush_new(sw, iov, &niov);
				if (ret)
					return ret;
			}
			c = sw->pending_end + niov;
			iov[niov].iov_base = (void *)pages[i];
			iov[niov].iov_len = SWAP_PAGE;
			niov++;
			slots[i] = c;
			if (set_hash(sw, c, sums[i]) || ht_insert(sw, sums[i], c))
				return -ENOMEM;
			sw->pend_written++;
		}
		sw->pend_pages++;
		if (pend_add(sw, c))
			return -ENOMEM;
	}
	return niov ? flush_new(sw, iov, &niov) : 0;
}

void swap_pending_reset(struct swapfile *sw)
{
	sw->npend = 0;
	sw->pend_pages = sw->pend_written = sw->pend_reused = 0;
	sw->gc_pending = 1;
}

int swap_keep_slots(struct swapfile *sw, uint64_t slot, uint64_t n)
{
	int ret = begin(sw);

	if (ret)
		return ret;
	if (slot >= sw->pending_end || n > sw->pending_end - slot)
		return err_set(-EINVAL, "swapfile %s: slots %llu+%llu were never written", sw->path,
			       (unsigned long long)slot, (unsigned long long)n);
	if (!sw->pend_id)
		sw->pend_id = sw->next_snapshot++;
	for (uint64_t i = 0; i < n; i++) {
		ret = pend_add(sw, slot + i);
		if (ret)
			return ret;
	}
	sw->pend_pages += n;
	sw->pend_reused += n;
	return 0;
}

void swap_counters(const struct swapfile *sw, uint64_t *written, uint64_t *reused)
{
	*written = sw->pend_written;
	*reused = sw->pend_reused;
}

/* ---- listing and deleting ---- */

int swap_snapshots(struct swapfile *sw, struct swap_snap_info **out, size_t *count)
{
	struct swap_snap_info *v;
	uint16_t *refs = NULL;
	uint64_t end;
	int ret;

	*out = NULL;
	*count = 0;
	if (!sw->locked && flock(sw->fd, LOCK_SH))
		return err_sys(-errno, "swapfile %s: lock", sw->path);
	ret = load_sb(sw);
	if (!ret)
		ret = meta_ready(sw);
	if (!sw->locked)
		flock(sw->fd, LOCK_UN);
	if (ret)
		return ret;
	end = sw->slots_end;
	refs = calloc(end + 1, sizeof(*refs));
	v = calloc(sw->nsnaps + 1, sizeof(*v));
	if (!refs || !v) {
		free(refs);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sw->nsnaps; i++)
		for (size_t r = 0; r < sw->snaps[i].nruns; r++)
			for (uint64_t k = 0; k < sw->snaps[i].runs[2 * r + 1]; k++) {
				uint64_t s = sw->snaps[i].runs[2 * r] + k;

				if (s < end && refs[s] < UINT16_MAX)
					refs[s]++;
			}
	for (size_t i = 0; i < sw->nsnaps; i++) {
		const struct snap *sn = &sw->snaps[i];

		v[i].id = sn->id;
		v[i].created = sn->created;
		v[i].pages = sn->npages;
		for (size_t r = 0; r < sn->nruns; r++)
			for (uint64_t k = 0; k < sn->runs[2 * r + 1]; k++) {
				uint64_t s = sn->runs[2 * r] + k;

				v[i].slots++;
				if (s < end && refs[s] > 1)
					v[i].shared++;
			}
	}
	free(refs);
	*out = v;
	*count = sw->nsnaps;
	return 0;
}

int swap_delete_snapshot(struct swapfile *sw, uint64_t id)
{
	size_t i;
	int ret;

	ret = begin(sw);
	if (!ret)
		ret = meta_ready(sw);
	if (ret)
		return ret;
	for (i = 0; i < sw->nsnaps && sw->snaps[i].id != id; i++)
		;
	if (i == sw->nsnaps) {
		flock(sw->fd, LOCK_UN);
		sw->locked = 0;
		return err_set(-ENOENT, "swapfile %s: no snapshot %llu", sw->path,
			       (unsigned long long)id);
	}
	free(sw->snaps[i].runs);
	memmove(&sw->snaps[i], &sw->snaps[i + 1], (sw->nsnaps - i - 1) * sizeof(*sw->snaps));
	sw->nsnaps--;
	sw->meta_dirty = 1;
	ret = swap_commit(sw);
	if (ret)	/* the in-memory table no longer matches the disk */
		meta_free(sw);
	return ret;
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
	if (sw->src.read)
		return sw->src.read(sw->src.ctx, slot, n, buf);
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
