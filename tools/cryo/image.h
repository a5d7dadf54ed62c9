/* Image I/O over the ABI in include/lx_ckpt.h: a crash-safe writer and a
 * validating reader. Memory pages are not here: they live in the swapfile. */
#ifndef CRYO_IMAGE_H
#define CRYO_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "lx_ckpt.h"

struct exe_ident {
	uint64_t dev, ino, size, mtime_ns;
	uint32_t build_id_len;
	uint8_t build_id[LX_CKPT_BUILD_ID_MAX];
};

/* ---- writer ----
 * Sections are streamed into an unnamed O_TMPFILE file in the target's
 * directory (a named 0600 O_EXCL|O_NOFOLLOW temp file where the filesystem
 * lacks O_TMPFILE), each 8-aligned; img_commit() writes the table and the
 * header, fsyncs, links the file under a temp name (linkat never follows
 * a symlink), renames it over the final path and fsyncs the directory.
 * A crash before the rename leaves any earlier image untouched and, with
 * O_TMPFILE, nothing behind. */
struct img_writer;

int img_create(struct img_writer **w, const char *path);
/* Append one section (copied out immediately). record_size 0 = blob. */
int img_add(struct img_writer *w, uint32_t type, uint32_t task,
	    uint32_t record_size, const void *data, size_t len);
/* A section too large to hold in memory (packed pages), written in pieces:
 * img_reserve places it (len bytes) and gives its file offset and index,
 * img_write_at fills it (at: offset in the section), img_set_crc sets the
 * checksum the table carries for it (img_crc of what it covers). */
int img_reserve(struct img_writer *w, uint32_t type, uint32_t task, uint64_t len,
		uint64_t *off, uint32_t *index);
int img_write_at(struct img_writer *w, uint32_t index, uint64_t at, const void *data,
		 size_t len);
void img_set_crc(struct img_writer *w, uint32_t index, uint32_t crc);
uint32_t img_crc(const void *buf, size_t len);
/* Per-writer string tables, one per task (or LX_TASK_GLOBAL): returns the
 * offset of s in that table (deduplicated), to put in *_off fields; the
 * tables are emitted as LX_SEC_STRTAB sections at commit. Offset 0 is
 * always the empty string. */
uint32_t img_str(struct img_writer *w, uint32_t task, const char *s);
/* The root task's executable, named in the header for binfmt_cr; the path
 * is also stored in the file so the header can point at it. */
int img_set_exe(struct img_writer *w, const char *path, const struct exe_ident *id);
int img_commit(struct img_writer *w);	/* frees w */
void img_abort(struct img_writer *w);	/* removes the temp file, frees w */

/* ---- reader ----
 * Reads the whole image into memory, validates header and table with the
 * shared validator and every section's CRC; errors name the section, its
 * index and file offset ("image out: section 3 (vmas) at offset 4096:
 * checksum mismatch"). */
/* Images larger than 1 GiB (packed pages) are mapped, not read; this is
 * the most any image may have */
#define IMG_MAX_MAPPED	(1ull << 40)

struct img {
	char *path;
	uint8_t *data;
	uint64_t size;
	size_t mapped;		/* data is a mapping of this length, not malloc'ed */
	const struct lx_ckpt_header *hdr;
	uint32_t nsec;
	const struct lx_ckpt_section *sec;	/* normalized copies, host order */
};

int img_open(struct img *im, const char *path);
int img_open_fd(struct img *im, int fd, const char *name);
void img_close(struct img *im);
/* Find section (type, task); returns 0 and sets data and len, or -ENOENT. */
int img_find(const struct img *im, uint32_t type, uint32_t task,
	     const void **data, uint64_t *len, uint32_t *record_size);
/* Records of (type, task) as a freshly malloc'ed array of count structs
 * of size want: each record is copied min(record_size, want) bytes and
 * zero-extended (append-only ABI). Missing section: -ENOENT. A section
 * whose record_size is 0 or smaller than min_size is an error naming it. */
int img_records(const struct img *im, uint32_t type, uint32_t task,
		size_t want, size_t min_size, void **out, size_t *count);
/* String at off in the strtab of task; NULL (with err_set) if off is out
 * of range or the string is not NUL-terminated inside the table. */
const char *img_string(const struct img *im, uint32_t task, uint32_t off);

#endif
