/* The LX_SEC_OPTIONS record: choices made at dump time that the restore
 * honours (--allow-leak kinds, --shell-job). Its reading, writing and
 * naming live here only, so that every option shares one record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cryo.h"
#include "err.h"
#include "options.h"

static const struct { uint32_t bit; const char *name; } leak_kinds[] = {
	{ LX_LEAK_PIPE, "pipe" },	{ LX_LEAK_FILE, "file" },
	{ LX_LEAK_SHM, "shm" },		{ LX_LEAK_IPC, "ipc" },
	{ LX_LEAK_SOCKET, "socket" },	{ LX_LEAK_NS, "ns" },
};
#define NKINDS (sizeof(leak_kinds) / sizeof(leak_kinds[0]))

int options_parse_leak(const char *arg, uint32_t *kinds)
{
	char buf[256], *save = NULL, *tok;

	if (strlen(arg) >= sizeof(buf))
		return err_set(-EINVAL, "--allow-leak: argument too long");
	strcpy(buf, arg);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t k;

		for (k = 0; k < NKINDS; k++)
			if (!strcmp(tok, leak_kinds[k].name))
				break;
		if (k == NKINDS)
			return err_set(-EINVAL, "--allow-leak: unknown kind '%s' (kinds: pipe, file,"
				       " shm, ipc, socket, ns)", tok);
		*kinds |= leak_kinds[k].bit;
	}
	return 0;
}

/* "pipe,shm" or "none" */
const char *options_leak_names(uint32_t kinds, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = 0;
	for (size_t k = 0; k < NKINDS; k++)
		if (kinds & leak_kinds[k].bit)
			at += (size_t)snprintf(buf + at, at < len ? len - at : 0, "%s%s",
					       at ? "," : "", leak_kinds[k].name);
	if (!at)
		snprintf(buf, len, "none");
	return buf;
}

int options_write(struct img_writer *w, const struct lx_options *o)
{
	struct lx_options rec;

	if (!o->flags && !o->allow_leak)
		return 0;	/* absent means all zero */
	memset(&rec, 0, sizeof(rec));
	rec.flags = lx_cpu_to_le32(o->flags);
	rec.allow_leak = lx_cpu_to_le32(o->allow_leak);
	rec.mono_ns = lx_cpu_to_le64(o->mono_ns);
	rec.boot_ns = lx_cpu_to_le64(o->boot_ns);
	return img_add(w, LX_SEC_OPTIONS, LX_TASK_GLOBAL, sizeof(rec), &rec, sizeof(rec));
}

int options_read(const struct img *im, struct lx_options *o)
{
	struct lx_options *rec = NULL;
	size_t n = 0;
	int e = img_records(im, LX_SEC_OPTIONS, LX_TASK_GLOBAL, sizeof(*rec), 8,
			    (void **)&rec, &n);

	memset(o, 0, sizeof(*o));
	if (e == -ENOENT)
		return 0;
	if (e)
		return err_ctx(e, "image %s: options", im->path);
	if (n != 1) {
		free(rec);
		return err_set(-EINVAL, "image %s: %zu options records (one expected)", im->path, n);
	}
	*o = *rec;
	free(rec);
	/* a choice this cryo does not know could change what the restore means */
	o->flags = lx_le32_to_cpu(o->flags);
	o->allow_leak = lx_le32_to_cpu(o->allow_leak);
	o->mono_ns = lx_le64_to_cpu(o->mono_ns);
	o->boot_ns = lx_le64_to_cpu(o->boot_ns);
	if (o->flags & ~(uint32_t)LX_OPT_KNOWN)
		return err_set(-EINVAL, "image %s: unknown options %#x (made by a newer cryo?)",
			       im->path, o->flags & ~(uint32_t)LX_OPT_KNOWN);
	/* clocks are offsets from a boot: a value past 2^62 ns (146 years)
	 * could only make the namespace offsets overflow */
	if ((o->flags & LX_OPT_CLOCKS) && (o->mono_ns >> 62 || o->boot_ns >> 62))
		return err_set(-EINVAL, "image %s: options: clock values out of range", im->path);
	if (!(o->flags & LX_OPT_CLOCKS) && (o->mono_ns || o->boot_ns))
		return err_set(-EINVAL, "image %s: options: clock values without the clocks flag",
			       im->path);
	if (o->allow_leak & ~(uint32_t)LX_LEAK_ALL)
		return err_set(-EINVAL, "image %s: unknown --allow-leak kinds %#x (made by a newer"
			       " cryo?)", im->path, o->allow_leak & ~(uint32_t)LX_LEAK_ALL);
	return 0;
}
