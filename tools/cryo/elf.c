/* Identity of an executable: the stat fields and the ELF build-id, so a
 * restore never runs dumped memory on top of different code. */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

static void read_build_id(int fd, struct exe_ident *id)
{
	Elf *e;
	Elf_Scn *scn = NULL;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		while (d && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((char *)d->d_buf + name_off, "GNU", 4) &&
			    nh.n_descsz <= LX_CKPT_BUILD_ID_MAX) {
				memcpy(id->build_id, (char *)d->d_buf + desc_off, nh.n_descsz);
				id->build_id_len = nh.n_descsz;
				elf_end(e);
				return;
			}
		}
	}
	elf_end(e);
}

int exe_identify(const char *path, int fd, struct exe_ident *id)
{
	struct stat st;
	int own = fd < 0;

	memset(id, 0, sizeof(*id));
	if (own)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "executable %s", path);
	if (fstat(fd, &st) < 0) {
		int e = err_sys(-errno, "executable %s: stat", path);

		if (own)
			close(fd);
		return e;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
	read_build_id(fd, id);
	if (own)
		close(fd);
	return 0;
}
