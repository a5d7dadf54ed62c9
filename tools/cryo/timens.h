/* Time namespaces: the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME continue
 * across a restore. See timens.c. */
#ifndef CRYO_TIMENS_H
#define CRYO_TIMENS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "image.h"
#include "lx_ckpt.h"

struct dump_task;

/* restore_opts.timens */
enum timens_mode {
	TIMENS_AUTO = 0,	/* cryo -r, ./IMAGE: clocks continue from the dump */
	TIMENS_OFF,		/* --no-timens: this host's clocks */
	TIMENS_IF_BACKWARD,	/* cryo run --cache: this host's clocks, unless they
				 * are behind the image's (another boot or host) */
};

/* Dump, the tree frozen: every task must share one time namespace; its
 * clocks as the tree sees them go in opt (LX_OPT_CLOCKS). */
int timens_dump(const struct dump_task *t, size_t n, struct lx_options *opt);
/* clock clk (CLOCK_MONOTONIC, CLOCK_BOOTTIME, others) as pid sees it */
int timens_clock_of(pid_t pid, clockid_t clk, uint64_t *ns);
/* Restore, before cryo creates any process: a new time namespace for the
 * children cryo creates (and for cryo itself after an exec), with offsets
 * that make the image's clocks continue, per mode. Without privilege or
 * kernel support: a warning when the clocks would only jump forward, an
 * error when they would go back. */
int timens_restore(const struct img *im, enum timens_mode mode);

#endif
