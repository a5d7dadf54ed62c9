/* Shared by the fuzz targets: make an arbitrary mutation of an image pass
 * the checksums (and the image_size check), so that the fuzzer reaches the
 * checks behind them instead of spending its time on CRC mismatches. Each
 * target runs the input as is AND fixed up. */
#ifndef FUZZ_FIXCRC_H
#define FUZZ_FIXCRC_H

#include <string.h>
#include "lx_ckpt.h"

static inline void fuzz_fix_crcs(uint8_t *buf, size_t size)
{
	struct lx_ckpt_header h;
	uint64_t toff, n, esz;

	if (size < LX_CKPT_HEADER_SIZE)
		return;
	memcpy(&h, buf, sizeof(h));
	h.image_size = size;
	toff = h.section_table_offset;
	n = h.section_count;
	esz = h.section_entry_size;
	if (esz >= sizeof(struct lx_ckpt_section) && n <= LX_CKPT_MAX_SECTIONS &&
	    toff <= size && n * esz <= size - toff) {
		for (uint64_t i = 0; i < n; i++) {
			struct lx_ckpt_section s;
			uint8_t *e = buf + toff + i * esz;

			memcpy(&s, e, sizeof(s));
			if (s.offset <= size && s.length <= size - s.offset) {
				/* packed pages: the crc covers the directory only */
				s.crc = lx_crc32c(0, buf + s.offset,
						  s.type == LX_SEC_PACKED_PAGES ?
						  lx_packed_crc_len(buf + s.offset, s.length) :
						  s.length);
				memcpy(e, &s, sizeof(s));
			}
		}
		h.table_crc = lx_crc32c(0, buf + toff, n * esz);
	}
	h.header_crc = lx_ckpt_header_crc(&h);
	memcpy(buf, &h, sizeof(h));
}

#endif
