/* Restore floor (baseline b): a fresh process that gets the same amount of
 * memory back from a file and runs.
 *
 *   baserestore [--no-populate] FILE
 *
 * mmap anonymous memory of FILE's size, populate it (MADV_POPULATE_WRITE,
 * the cheapest way to fault 4 KiB pages in here), read() FILE into it in
 * 8 MiB calls, then serve the harness like a workload: answer 'P' with
 * "P\n" (the first answer is the "it runs" signal) and 'V' with "V ok -"
 * (no check: the data came from a file) until EOF on fd 0. --no-populate leaves the faults to
 * read()'s copy, as a naive restorer would. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int main(int argc, char **argv)
{
	int populate = 1, fd;
	const char *path;
	struct stat st;
	char *mem;
	size_t len, off = 0;

	if (argc == 3 && !strcmp(argv[1], "--no-populate"))
		populate = 0;
	else if (argc != 2) {
		fprintf(stderr, "usage: baserestore [--no-populate] FILE\n");
		return 2;
	}
	path = argv[argc - 1];
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "baserestore: %s: %s\n", path, strerror(errno));
		return 1;
	}
	len = st.st_size ? (size_t)st.st_size : 4096;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("baserestore: mmap");
		return 1;
	}
	if (populate && madvise(mem, len, MADV_POPULATE_WRITE))
		perror("baserestore: MADV_POPULATE_WRITE");
	while (off < (size_t)st.st_size) {
		size_t n = st.st_size - off > (8u << 20) ? (8u << 20) : st.st_size - off;
		ssize_t r = read(fd, mem + off, n);

		if (r <= 0) {
			fprintf(stderr, "baserestore: read %s: %s\n", path,
				r ? strerror(errno) : "short file");
			return 1;
		}
		off += r;
	}
	close(fd);
	/* the harness's ping is waiting on fd 0: answering it is the signal */
	for (;;) {
		char c;

		if (read(0, &c, 1) != 1)
			return 0;
		if (c == 'P' && write(1, "P\n", 2) != 2)
			return 1;
		if (c == 'V' && write(1, "V ok -\n", 7) != 7)
			return 1;
	}
}
