/* Restore-side batching of injected syscalls (injbatch.c): the batch page
 * is the top of the restore scratch area, mapped executable when the task
 * allows it, so a batch costs one ptrace round trip and no mmap. */
#ifndef CRYO_RESTBATCH_H
#define CRYO_RESTBATCH_H

#include "cryo.h"
#include "injbatch.h"

/* Map t->scratch (t->scratch_len bytes, fixed, must not replace anything):
 * read-write, and executable too when the task allows W+X. */
int restore_map_scratch(struct restore_task *t);
/* Start a batch in thread inj of t, in the scratch area. -EAGAIN (no
 * message): inject one by one. */
int restore_batch_begin(struct restore_task *t, struct injector *inj, struct inj_batch *b);

/* Queue a call of the leader whose result nobody reads: it runs at the next
 * restore_flush (or when the queue is full), in order. A result other than
 * want (want < 0: any non-error) fails the restore with "pid P: what". */
int restore_defer(struct restore_task *t, const char *what, long nr, uint64_t a1, uint64_t a2,
		  uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long want);
/* Run what restore_defer queued; 0 when nothing was queued. */
int restore_flush(struct restore_task *t);

#endif
