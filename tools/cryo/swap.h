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

/* Checksum of one page (XXH3-64). */
uint64_t page_sum(const void *page);

#endif
