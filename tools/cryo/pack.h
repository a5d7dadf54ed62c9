/* Self-contained (packed) images and image streams: see pack.c. */
#ifndef CRYO_PACK_H
#define CRYO_PACK_H

#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "swap.h"

struct dump_opts;

struct packed_info {
	int section;			/* index in the section table */
	uint64_t nruns, npages, slots_end, snapshot;
	uint8_t uuid[16];
};

/* Validate the image's LX_SEC_PACKED_PAGES section: -ENOENT (no message)
 * if there is none; on success the pointers (any may be NULL) point into
 * the image's memory. */
int packed_parse(const struct img *im, struct packed_info *pi, const struct lx_packed_run **runs,
		 const uint8_t **sums, const uint8_t **data);
/* The packed pages as a swapfile for swap_read (-ENOENT, no message, if the
 * image has none); *path (if not NULL) gets the image's path. */
int packed_swap_open(const struct img *im, struct swapfile **sw, char **path);
/* Write OUT: im's sections plus the pages its page maps use, read from sw
 * (swname names it in messages) and checked against im's page sums. */
int pack_image(const struct img *im, struct swapfile *sw, const char *swname, const char *out);

/* pack the image at path with the pages of its swapfile (swap_override, if
 * not NULL) or its own packed pages, into out */
int pack_path(const char *image, const char *swap_override, const char *out);
int cmd_pack(int argc, char **argv);
/* stream.c */
/* cryo -p PID -f -: a packed image to stdout */
int stream_dump(pid_t pid, const struct dump_opts *o);
/* cryo -r -f -: stdin into a memfd (or stdin itself if it is a file),
 * checked for truncation; returns the fd or -errno. */
int stream_spool_stdin(void);

#endif
