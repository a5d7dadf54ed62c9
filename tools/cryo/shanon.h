/* shanon.c: shared anonymous memory mapped more than once in the tree */
#ifndef CRYO_SHANON_H
#define CRYO_SHANON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dump_task;
struct img;
struct img_writer;
struct lx_vma;
struct proc_vma;
struct restore_task;

/* dump, with the tree frozen, before any task's pages: find the objects,
 * refuse one shared with a process outside the tree (unless allowed),
 * and decide which mapping stores which page */
int shanon_dump_prepare(const struct dump_task *t, size_t n, uint32_t allow_leak);
/* lx_vma.shared_id for the mapping at start, 0: a private object */
uint32_t shanon_vma_id(pid_t pid, uint64_t start);
/* the vaddr ranges [rg[2k], rg[2k+1]) of that mapping to store */
int shanon_vma_ranges(pid_t pid, uint64_t start, const uint64_t **rg, size_t *nrg);
int shanon_dump_write(struct img_writer *w);
void shanon_dump_free(void);
/* two separate open file descriptions of one memfd in the tree: refused */
int shanon_check_memfds(const struct dump_task *t, size_t n);

/* restore: load the objects of the image (once per restore) */
int shanon_restore_begin(const struct img *im);
void shanon_restore_end(void);
/* map v[i] (LX_VMA_SHARED_ANON with a shared_id) and this task's other
 * mappings of the same object */
int shanon_map(struct restore_task *t, const struct lx_vma *v, size_t nv, size_t i,
	       const struct proc_vma *cur, size_t nc);

/* mm.c: a free range of len bytes away from the image's VMAs, the
 * current ones and [busy_start, busy_end) */
uint64_t mm_find_free(const struct lx_vma *v, size_t nv, const struct proc_vma *cur, size_t nc,
		      uint64_t busy_start, uint64_t busy_end, uint64_t len);

#endif
