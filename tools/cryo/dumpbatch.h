/* The read-only syscalls a dump injects into each process (signal
 * dispositions, itimers, prctl state, brk, the leader's clear-tid address
 * and alternate stack) run together in one injected batch (injbatch.c);
 * the places that ask for them get the results from here. */
#ifndef CRYO_DUMPBATCH_H
#define CRYO_DUMPBATCH_H

#include "cryo.h"

/* Run the batch for t (nothing cached when batching cannot be used there:
 * the calls then run one by one as they are asked for). */
int dump_prefetch(struct dump_task *t);
/* The cached result of this call in t: 1 (with *ret, and out_len bytes of
 * output when *ret is not an error), 0 if not cached. out_arg 0: no output. */
int dump_cached(struct dump_task *t, long nr, const uint64_t a[4], int out_arg, void *out,
		size_t out_len, long *ret);
/* inj_syscall into the leader, from the cache when it is there */
int dump_inject(struct dump_task *t, long nr, uint64_t a1, long *ret);
/* Forget t's results (its registers are put back: no more injections) */
void dump_cache_drop(struct dump_task *t);

#endif
