/* privmap: creates argv[1], 16 pages of known content, maps it MAP_PRIVATE
 * read-write (from an O_RDONLY fd, closed after mmap), rewrites all of page
 * 3 and part of page 7. Check: pages 3 and 7 hold the modifications, the
 * other bytes match the file, the file on disk is unchanged, and the mapping
 * is still one rw-p VMA of that file at offset 0. */
#include "scenario.h"
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define NPAGES 16

static size_t pg;
static unsigned char *map;
static const char *path;
static char real[PATH_MAX];

static unsigned char file_byte(size_t k)
{
	return (unsigned char)(scn_mix64(0x5eed0000u + k / 8) >> (8 * (k % 8)));
}

/* What the mapping should hold at byte k. */
static unsigned char map_byte(size_t k)
{
	size_t page = k / pg, off = k % pg;

	if (page == 3)
		return (unsigned char)~file_byte(k);
	if (page == 7 && off < 100)
		return (unsigned char)('M' + off % 13);
	if (page == 7 && off == pg - 1)
		return 0x5a;
	return file_byte(k);
}

static void check(void)
{
	size_t bad = 0, first = 0, len = 0;
	unsigned char *disk;
	struct scn_vma v;
	int r;

	for (size_t k = 0; k < NPAGES * pg; k++) {
		if (map[k] != map_byte(k)) {
			if (!bad)
				first = k;
			bad++;
		}
	}
	SCN_EXPECT(bad == 0, "mapping: %zu bytes differ, first in page %zu at +%#zx: %#x want %#x",
		   bad, first / pg, first % pg, map[first], map_byte(first));

	disk = (unsigned char *)scn_read_file(path, &len);
	if (!disk) {
		scn_fail("read %s: %s", path, strerror(errno));
	} else {
		SCN_EXPECT(len == NPAGES * pg, "file size %zu, want %zu", len, NPAGES * pg);
		bad = 0;
		for (size_t k = 0; k < len && k < NPAGES * pg; k++) {
			if (disk[k] != file_byte(k)) {
				if (!bad)
					first = k;
				bad++;
			}
		}
		SCN_EXPECT(bad == 0, "file on disk changed: %zu bytes differ, first in page %zu",
			   bad, first / pg);
		free(disk);
	}

	r = scn_find_vma((uintptr_t)map, &v);
	if (r <= 0) {
		scn_fail("no mapping at %p in /proc/self/maps", (void *)map);
		return;
	}
	SCN_EXPECT(v.start == (uintptr_t)map && v.end == (uintptr_t)map + NPAGES * pg &&
		   strcmp(v.perms, "rw-p") == 0 && v.offset == 0 && strcmp(v.path, real) == 0,
		   "mapping is [%s], want %p-%p rw-p offset 0 %s", v.line, (void *)map,
		   (void *)(map + NPAGES * pg), real);
}

int main(int argc, char **argv)
{
	unsigned char *buf;
	volatile unsigned char sink;
	int fd;

	scn_init("privmap");
	if (argc < 2)
		scn_die("usage: privmap FILE");
	path = argv[1];
	pg = (size_t)sysconf(_SC_PAGESIZE);
	buf = malloc(NPAGES * pg);
	if (!buf)
		scn_die("malloc");
	for (size_t k = 0; k < NPAGES * pg; k++)
		buf[k] = file_byte(k);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, NPAGES * pg) != (ssize_t)(NPAGES * pg) || close(fd) != 0)
		scn_die("create %s: %s", path, strerror(errno));
	free(buf);
	if (!realpath(path, real))
		scn_die("realpath %s: %s", path, strerror(errno));

	fd = open(path, O_RDONLY);
	if (fd < 0)
		scn_die("open %s: %s", path, strerror(errno));
	map = mmap(NULL, NPAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		scn_die("mmap: %s", strerror(errno));
	close(fd);

	/* some clean pages read (page cache), some never touched */
	sink = map[0] + map[pg] + map[2 * pg] + map[9 * pg];
	(void)sink;
	for (size_t off = 0; off < pg; off++)
		map[3 * pg + off] = (unsigned char)~map[3 * pg + off];
	for (size_t off = 0; off < 100; off++)
		map[7 * pg + off] = (unsigned char)('M' + off % 13);
	map[7 * pg + pg - 1] = 0x5a;

	scn_install_check();
	scn_ready();
	scn_loop(check);
}
