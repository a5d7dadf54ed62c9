/* LX_SEC_OPTIONS: see options.c */
#ifndef CRYO_OPTIONS_H
#define CRYO_OPTIONS_H

#include "lx_ckpt.h"
#include "image.h"

/* Write the record (nothing when every field is zero) */
int options_write(struct img_writer *w, const struct lx_options *o);
/* Read it; all zero when the image has none */
int options_read(const struct img *im, struct lx_options *o);
/* --allow-leak=pipe,file,... -> LX_LEAK_* bits (or'ed into *kinds) */
int options_parse_leak(const char *arg, uint32_t *kinds);
/* LX_LEAK_* bits -> "pipe,shm" or "none" */
const char *options_leak_names(uint32_t kinds, char *buf, size_t len);

#endif
