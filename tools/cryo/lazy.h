/* Lazy restore (cryo -r --lazy): private anonymous pages are not copied
 * before the tree runs; a page server fills them through userfaultfd on
 * fault and in the background. See lazy.c for the design. */
#ifndef CRYO_LAZY_H
#define CRYO_LAZY_H

#include <stddef.h>
#include <stdint.h>

#include "cryo.h"

/* Before any process exists: check that this kernel and cryo's privileges
 * allow lazy restore (fails cleanly otherwise), then fork the page server.
 * im and sw must stay valid (the server is a fork: it has its own copies). */
int lazy_start(const struct img *im, struct swapfile *sw);
/* Nonzero between lazy_start and lazy_finish */
int lazy_active(void);
/* In mm_restore, once every VMA exists: create the userfaultfd inside the
 * task (injected), take it over, register the VMAs whose stored pages are
 * served lazily and hand it to the server. *skip (malloc'ed, one byte per
 * VMA, 1 = lazy) tells fill_pages which VMAs to leave alone. */
int lazy_attach(struct restore_task *t, const struct lx_vma *v, size_t nv,
		const struct lx_page_run *runs, size_t nr, uint8_t **skip);
/* Once the tree is whole, before it is detached: tell the server it is
 * to run, and wait for its answer (none: it died, the tree must be
 * killed). From then on the server serves the tree whatever becomes of
 * cryo; before, cryo's death kills the traced tree. */
int lazy_go(void);
/* After lazy_go (ok) or once the tree is killed (!ok): let the server run
 * on by itself, or stop it. */
void lazy_finish(int ok);

#endif
