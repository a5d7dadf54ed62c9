/* libFuzzer target: the header + section-table validator shared with the
 * kernel module (include/lx_ckpt.h), on arbitrary bytes taken as a whole
 * image file. Mirrors how both callers use it: the header against the file
 * size, then the table read from section_table_offset. ASan catches any
 * read outside the buffer (the kernel would read outside its copy). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lx_ckpt.h"
#include "fixcrc.h"

static void one(const uint8_t *data, size_t size, int fix)
{
	const struct lx_ckpt_header *h;
	lx_le64 toff, tlen;
	lx_le32 bad = 0;
	uint8_t *buf, *hdr;
	int ret;

	/* an exact-size copy, so that ASan sees any overread */
	buf = malloc(size ? size : 1);
	if (!buf)
		return;
	memcpy(buf, data, size);
	if (fix)
		fuzz_fix_crcs(buf, size);
	/* also: a header buffer shorter than the file (the kernel's 256-byte
	 * BINPRM buffer), and a file size that differs from the buffer */
	ret = lx_ckpt_validate_header(buf, size, size);
	(void)lx_ckpt_strerror(ret);
	if (size >= LX_CKPT_HEADER_SIZE) {
		hdr = malloc(LX_CKPT_HEADER_SIZE);
		memcpy(hdr, buf, LX_CKPT_HEADER_SIZE);
		(void)lx_ckpt_validate_header(hdr, LX_CKPT_HEADER_SIZE, size);
		free(hdr);
	}
	if (ret == 0) {
		h = (const struct lx_ckpt_header *)buf;
		toff = lx_le64_to_cpu(h->section_table_offset);
		tlen = (lx_le64)lx_le32_to_cpu(h->section_count) *
		       lx_le32_to_cpu(h->section_entry_size);
		/* the validator promised the table is inside the file */
		if (toff > size || tlen > size - toff)
			__builtin_trap();
		ret = lx_ckpt_validate_table(buf, buf + toff, tlen, size, &bad);
		(void)lx_ckpt_strerror(ret);
		if (ret == 0) {
			lx_le32 n = lx_le32_to_cpu(h->section_count);
			lx_le32 esz = lx_le32_to_cpu(h->section_entry_size);

			/* promised: every section inside the file, aligned,
			 * a whole number of records */
			for (lx_le32 i = 0; i < n; i++) {
				struct lx_ckpt_section s;

				memcpy(&s, buf + toff + (uint64_t)i * esz, sizeof(s));
				if (s.offset > size || s.length > size - s.offset ||
				    s.offset % 8 || (s.record_size && s.length % s.record_size))
					__builtin_trap();
				(void)lx_section_name(s.type);
			}
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, 0);
	one(data, size, 1);
	return 0;
}
