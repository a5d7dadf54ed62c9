/* A progress line for long operations (dump, restore), on stderr only.
 *
 * Shown only when stderr is a terminal, logging is not --quiet, and the
 * operation has run longer than about a second, so quick runs and scripts
 * (pipes, log files, --json consumers reading stdout) never see it. It is
 * redrawn in place at most ten times a second and erased by progress_end(),
 * so the final output is the same as without it.
 *
 * One operation at a time; calls without progress_start() are no-ops, so
 * copy loops can call progress_add() unconditionally. */
#ifndef CRYO_PROGRESS_H
#define CRYO_PROGRESS_H

#include <stdint.h>

/* total_bytes 0: unknown (no percentage or ETA). what: "dump", "restore". */
void progress_start(uint64_t total_bytes, const char *what);
void progress_add(uint64_t bytes);
/* Erase the line if one was drawn; safe to call when nothing was started. */
void progress_end(void);
/* Erase the line without ending the operation, before printing anything
 * else on stderr (a warning); the next progress_add() redraws it. */
void progress_erase(void);
/* Suppress progress for the rest of the run (e.g. machine-readable output). */
void progress_disable(void);

#endif
