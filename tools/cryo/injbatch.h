/* Running many independent system calls inside a stopped task for the
 * price of a few ptrace round trips: a small page mapped in the task holds
 * a position-independent stub and a table of calls; the stub runs them in
 * order, writes each result back into the table and stops on int3. */
#ifndef CRYO_INJBATCH_H
#define CRYO_INJBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ptrace.h"

#define BATCH_PAGE 16384	/* bytes of the task's memory a batch uses */

struct inj_batch {
	struct injector *inj;
	uint64_t page;		/* address in the task; 0 while not mapped */
	uint8_t *buf;		/* local copy of the page */
	size_t n;		/* calls in the table */
	size_t data;		/* bytes used in the data area */
	long *ret;		/* results after batch_run */
	int borrowed;		/* the page is the caller's (batch_begin_at) */
};

/* Map the page in the task. -EAGAIN (no message) when batching cannot be
 * used there (signals would be touched, or the mapping was refused): run
 * the calls one by one instead. Any other error is a ptrace failure. */
int batch_begin(struct inj_batch *b, struct injector *inj);
/* The same in len (>= BATCH_PAGE) bytes of the task's memory at addr, which
 * must be mapped readable, writable and executable; not unmapped at the end */
int batch_begin_at(struct inj_batch *b, struct injector *inj, uint64_t addr, size_t len);
/* Queue a call; -ENOSPC when the table is full, -EAGAIN for a call that
 * could make SIGTRAP ignored or pending (run that one alone). */
int batch_add(struct inj_batch *b, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
	      uint64_t a4, uint64_t a5, uint64_t a6);
/* len bytes of the page for a call's input or output: *local is our copy
 * (filled before batch_run, read after), the return value the task's
 * address; 0 when the page is full. */
uint64_t batch_mem(struct inj_batch *b, size_t len, void **local);
/* Run every queued call; b->ret[i] is the raw return of call i. */
int batch_run(struct inj_batch *b);
/* Unmap the page (always, after a successful batch_begin). */
int batch_end(struct inj_batch *b);

#endif
