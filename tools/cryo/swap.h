/* The page store ("swapfile"): one file per container holding memory pages
 * in slots. The image keeps the page map (virtual page -> slot) and a
 * checksum per page; the swapfile keeps only pages, so images are small.
 *
 * Layout: two 4 KiB superblocks (A at 0, B at 4096; the valid one with the
 * higher generation wins), then page slots: slot N lives at
 * SWAP_DATA_OFFSET + N * 4096. Appends go past the committed end; a commit
 * fdatasyncs the data, then writes the other superblock with the new end
 * and generation and fsyncs. A crash leaves the previous superblock, so
 * every earlier snapshot stays readable. */
#ifndef CRYO_SWAP_H
#define CRYO_SWAP_H

#include <stddef.h>
#include <stdint.h>

#define SWAP_PAGE 4096u
#define SWAP_DATA_OFFSET 8192u

struct swapfile;

/* create != 0: create (mode 0600, O_NOFOLLOW) if missing. */
int swap_open(struct swapfile **sw, const char *path, int create);
void swap_close(struct swapfile *sw);
const uint8_t *swap_uuid(const struct swapfile *sw);	/* 16 bytes */
uint64_t swap_slots_end(const struct swapfile *sw);	/* committed */
uint64_t swap_next_snapshot(struct swapfile *sw);	/* allocates an id */

/* Append n pages; returns the first slot. Not durable until commit. */
int swap_append(struct swapfile *sw, const void *pages, size_t n, uint64_t *first_slot);
int swap_commit(struct swapfile *sw);
/* Read n pages starting at slot; slots beyond the committed end fail. */
int swap_read(struct swapfile *sw, uint64_t slot, size_t n, void *buf);
int swap_fd(const struct swapfile *sw);

/* Snapshot-aware writer (content-addressed dedup, see swap.c): store n
 * non-zero pages with their page_sum()s; slots[i] gets the slot of page i,
 * either an existing slot with identical bytes or a fresh one. The pages
 * form the snapshot that the next swap_commit records; swap_next_snapshot
 * after that commit returns its id. */
int swap_store_pages(struct swapfile *sw, const uint8_t *const *pages, const uint64_t *sums,
		     size_t n, uint64_t *slots);

/* Pre-dump (dirty.c): forget the slots stored so far as members of the
 * pending snapshot, keeping them written; swap_keep_slots puts back n
 * from slot on that the final page map still uses (counted as reused).
 * Slots left out are punched by the commit. */
void swap_pending_reset(struct swapfile *sw);
int swap_keep_slots(struct swapfile *sw, uint64_t slot, uint64_t n);

/* Pages written / reused by swap_store_pages since the last commit. */
void swap_counters(const struct swapfile *sw, uint64_t *written, uint64_t *reused);

struct swap_snap_info {
	uint64_t id, created;	/* created: unix seconds */
	uint64_t pages;		/* pages mapped, counting repeats */
	uint64_t slots;		/* distinct slots used */
	uint64_t shared;	/* of those, used by another snapshot too */
};
/* The committed snapshot table (malloc'ed array). */
int swap_snapshots(struct swapfile *sw, struct swap_snap_info **out, size_t *count);
/* Drop a snapshot and punch out the slots no other snapshot uses. */
int swap_delete_snapshot(struct swapfile *sw, uint64_t id);

/* A page source other than a swapfile file (the pages packed inside an
 * image, see pack.c): swap_read of a swapfile opened with swap_open_source
 * calls read() for slots below slots_end; the writers fail on it. The
 * source's read() checks its own per-page sums and names what it read. */
struct swap_source {
	int (*read)(void *ctx, uint64_t slot, size_t n, void *buf);
	void (*free)(void *ctx);
	void *ctx;
	uint8_t uuid[16];
	uint64_t slots_end;
};
/* Takes ownership of src->ctx (freed by swap_close, or here on failure). */
int swap_open_source(struct swapfile **sw, const char *name, const struct swap_source *src);
/* 1 if sw reads from a swap_source, not a swapfile */
int swap_is_source(const struct swapfile *sw);

/* Checksum of one page (XXH3-64). */
uint64_t page_sum(const void *page);

#endif
