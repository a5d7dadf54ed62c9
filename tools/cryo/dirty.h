/* Dirty page tracking for pre-dumps (dirty.c): copy memory while the tree
 * runs, then at the freeze copy only what was written since. */
#ifndef CRYO_DIRTY_H
#define CRYO_DIRTY_H

#include <stdint.h>
#include <sys/types.h>

struct dump_task;
struct swapfile;
struct dirty_state;

/* Arm write-protect tracking (userfaultfd WP_ASYNC + PAGEMAP_SCAN) in every
 * process of the tree of root, copy their pages into sw while they run,
 * then up to max_rounds - 1 more rounds of the pages written meanwhile
 * (fewer once the delta stops shrinking). The tree keeps running,
 * tracked. On failure nothing stays armed. */
int dirty_predump(pid_t root, struct swapfile *sw, int max_rounds, struct dirty_state **ds);

/* The tree is frozen: note for each task which pre-copied pages still hold
 * what was copied (sets t->dirty). The tracking stays armed (dirty_end
 * drops it once the tree runs again). */
int dirty_freeze(struct dirty_state *ds, struct dump_task *tasks, size_t n);

/* mm.c classify: the range is registered by cryo's own uffd (a pre-dump
 * still armed while frozen), not by the task. */
int dirty_owns(const struct dump_task *t, uint64_t start, uint64_t end);

/* mm.c, final copy: how many of the (up to max) pages from vaddr on are
 * unchanged since they were copied into the slots from *slot on
 * (LX_SLOT_ZERO: zero pages); sums[] gets their page sums and the slots
 * join the snapshot. 0: copy the page at vaddr. <0: error. */
int64_t dirty_clean_run(struct dump_task *t, uint64_t vaddr, uint64_t max, uint64_t *slot,
			uint64_t *sums);

/* threads.c: a thread that arming interrupted in a sleep with a kernel
 * restart block (nanosleep, poll, futex with a timeout...) resumed it via
 * restart_syscall, which a restore cannot re-create (it would see EINTR):
 * if it is still in that restart with the same registers, record the
 * original call instead, re-run from its start by the restore as for any
 * dump. */
struct user_regs_struct;
void dirty_fix_regs(const struct dump_task *t, pid_t tid, struct user_regs_struct *r);

/* mm.c: dirty_clean_run would reuse the page at vaddr */
int dirty_is_clean(const struct dump_task *t, uint64_t vaddr);

/* mm.c, final copy: the [start, end) pairs of the pages of [start, end)
 * holding data of their own (present or swapped; with file_backed, not a
 * page still the file's), as /proc/PID/pagemap tells page by page but in
 * one PAGEMAP_SCAN; *out is malloc'ed. */
int dirty_data_ranges(struct dump_task *t, int pm_fd, uint64_t start, uint64_t end,
		      int file_backed, uint64_t **out, size_t *nout);

/* Drop the tracking if still armed, report the numbers (ok), free. */
void dirty_end(struct dirty_state *ds, int ok, double freeze_ms);

#endif
