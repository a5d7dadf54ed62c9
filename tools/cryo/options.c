/* The options record (LX_SEC_OPTIONS): choices the user made at dump time
 * that the restore must honour. One small reader and writer, so that every
 * option (--shell-job, --allow-leak, ...) goes through the same place. */
#include <stdlib.h>
#include <string.h>

#include "cryo.h"
#include "err.h"
#include "options.h"

int options_write(struct img_writer *w, const struct lx_options *o)
{
	static const struct lx_options zero;

	if (!memcmp(o, &zero, sizeof(zero)))
		return 0;	/* absent means all zero */
	return img_add(w, LX_SEC_OPTIONS, LX_TASK_GLOBAL, sizeof(*o), o, sizeof(*o));
}

int options_read(const struct img *im, struct lx_options *o)
{
	struct lx_options *recs;
	size_t n;
	int e;

	memset(o, 0, sizeof(*o));
	e = img_records(im, LX_SEC_OPTIONS, LX_TASK_GLOBAL, sizeof(*o), 8, (void **)&recs, &n);
	if (e == -ENOENT)
		return 0;
	if (e)
		return e;
	if (n != 1) {
		free(recs);
		return err_set(-EINVAL, "image %s: %zu options records, want 1", im->path, n);
	}
	*o = recs[0];
	free(recs);
	if (o->flags & ~(uint32_t)LX_OPT_SHELL_JOB)
		return err_set(-EINVAL, "image %s: unknown options %#x (made by a newer cryo?)",
			       im->path, o->flags & ~(uint32_t)LX_OPT_SHELL_JOB);
	return 0;
}
