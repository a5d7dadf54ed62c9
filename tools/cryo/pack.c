/* Self-contained images: the pages a checkpoint needs, carried inside it
 * (LX_SEC_PACKED_PAGES, layout in include/lx_ckpt.h), so that an image
 * moves between machines without its swapfile.
 *
 *  - cryo pack IMAGE -o OUT: copy IMAGE's sections and add the pages its
 *    page maps use, read from its swapfile (or from IMAGE's own packed
 *    pages), each checked against the image's page sums first: a packed
 *    image never carries a page the swapfile had already lost.
 *  - the page source: packed_swap_open() wraps the packed section as a
 *    swapfile (swap_open_source), so every reader (restore's page copy,
 *    show --verify, core) goes through swap_read() whether the pages come
 *    from a file or from the image. Slot numbers stay those of the
 *    swapfile, so no other section changes.
 *  - streams (-f -) are in stream.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cryo.h"
#include "err.h"
#include "pack.h"

#define PAGE		LX_CKPT_PAGE_SIZE
#define PACK_MAX	(IMG_MAX_MAPPED / 2)	/* what image.c maps, with room for the rest */
#define CHUNK	256		/* pages read and written at a time */

/* ------------------------------------------------------------------ */
/* reading: the packed section as a page source                         */

struct packed {
	const struct img *im;
	const struct lx_packed_run *runs;	/* in the image's memory */
	const uint8_t *sums;
	const uint8_t *data;
	uint64_t nruns, npages;
};

static uint64_t get64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return lx_le64_to_cpu(v);
}

/* Where an image maps a slot, to name a bad page as a restore would */
static void slot_owner(const struct img *im, uint64_t slot, char *buf, size_t len)
{
	struct lx_task *tasks = NULL;
	size_t nt = 0;

	snprintf(buf, len, "slot %llu, mapped by no task", (unsigned long long)slot);
	/* best effort, for a message about to be set: leave no other behind */
	if (img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 8,
			(void **)&tasks, &nt)) {
		err_clear();
		nt = 0;
	}
	for (size_t t = 0; t < nt && t < 4096; t++) {
		struct lx_page_run *r = NULL;
		size_t nr = 0;

		if (img_records(im, LX_SEC_PAGEMAP, (uint32_t)t, sizeof(*r), sizeof(*r),
				(void **)&r, &nr)) {
			err_clear();
			continue;
		}
		for (size_t i = 0; i < nr; i++) {
			uint64_t s = lx_le64_to_cpu(r[i].slot);

			if (s != LX_SLOT_ZERO && slot >= s && slot - s < lx_le32_to_cpu(r[i].npages)) {
				snprintf(buf, len, "page at %#llx of pid %u, slot %llu",
					 (unsigned long long)(lx_le64_to_cpu(r[i].vaddr) +
							      (slot - s) * PAGE),
					 lx_le32_to_cpu(tasks[t].pid), (unsigned long long)slot);
				free(r);
				free(tasks);
				return;
			}
		}
		free(r);
	}
	free(tasks);
}

static int packed_read(void *ctx, uint64_t slot, size_t n, void *buf)
{
	struct packed *p = ctx;
	uint8_t *out = buf;

	for (size_t k = 0; k < n; k++, slot++) {
		uint64_t lo = 0, hi = p->nruns, idx;
		const struct lx_packed_run *r;

		while (lo < hi) {	/* the last run starting at or before slot */
			uint64_t mid = lo + (hi - lo) / 2;

			if (lx_le64_to_cpu(p->runs[mid].slot) <= slot)
				lo = mid + 1;
			else
				hi = mid;
		}
		r = lo ? &p->runs[lo - 1] : NULL;
		if (!r || slot - lx_le64_to_cpu(r->slot) >= lx_le64_to_cpu(r->npages)) {
			char who[128];

			slot_owner(p->im, slot, who, sizeof(who));
			return err_set(-EIO, "image %s: packed pages: %s is not among the "
				       "packed pages (incomplete image)", p->im->path, who);
		}
		idx = lx_le64_to_cpu(r->index) + (slot - lx_le64_to_cpu(r->slot));
		memcpy(out + k * PAGE, p->data + idx * PAGE, PAGE);
		if (page_sum(out + k * PAGE) != get64(p->sums + idx * 8)) {
			char who[128];

			slot_owner(p->im, slot, who, sizeof(who));
			return err_set(-EIO, "image %s: packed page %llu (%s) fails its checksum "
				       "(corrupt image)", p->im->path, (unsigned long long)idx, who);
		}
	}
	return 0;
}

static void packed_free(void *ctx)
{
	free(ctx);
}

static int bad(const struct img *im, int idx, uint64_t off, const char *what)
{
	return err_set(-EINVAL, "image %s: section %d (packed_pages) at offset %llu: %s",
		       im->path, idx, (unsigned long long)off, what);
}

int packed_parse(const struct img *im, struct packed_info *pi, const struct lx_packed_run **runsp,
		 const uint8_t **sumsp, const uint8_t **datap)
{
	const struct lx_packed_hdr *h;
	const struct lx_packed_run *runs;
	const uint8_t *base;
	uint64_t len, hsz, nruns, npages, roff, soff, doff, dlen, next = 0, prev_end = 0;
	int idx = -1;

	for (uint32_t i = 0; i < im->nsec; i++)
		if (im->sec[i].type == LX_SEC_PACKED_PAGES) {
			if (idx >= 0)
				return bad(im, (int)i, im->sec[i].offset, "a second packed pages "
					   "section");
			idx = (int)i;
		}
	if (idx < 0)
		return -ENOENT;
	base = im->data + im->sec[idx].offset;
	len = im->sec[idx].length;
	h = (const void *)base;
	if (im->sec[idx].task != LX_TASK_GLOBAL)
		return bad(im, idx, im->sec[idx].offset, "belongs to a task, not global");
	if (len < sizeof(*h) || memcmp(h->magic, LX_PACKED_MAGIC, 8))
		return bad(im, idx, im->sec[idx].offset, "no packed pages header");
	if (lx_le32_to_cpu(h->version) != LX_PACKED_VERSION)
		return bad(im, idx, im->sec[idx].offset, "unsupported packed pages version");
	hsz = lx_le32_to_cpu(h->hdr_size);
	nruns = lx_le64_to_cpu(h->nruns);
	npages = lx_le64_to_cpu(h->npages);
	roff = lx_le64_to_cpu(h->runs_off);
	soff = lx_le64_to_cpu(h->sums_off);
	doff = lx_le64_to_cpu(h->data_off);
	dlen = lx_le64_to_cpu(h->data_len);
	if (hsz < sizeof(*h) || doff > len || hsz > doff || doff % 8 || roff % 8 || soff % 8)
		return bad(im, idx, im->sec[idx].offset, "bad header or directory size");
	if (nruns > len / sizeof(*runs) || npages > len / PAGE ||
	    roff < hsz || !lx_range_ok(roff, nruns * sizeof(*runs), doff) ||
	    soff < hsz || !lx_range_ok(soff, npages * 8, doff))
		return bad(im, idx, im->sec[idx].offset, "run or checksum table outside the "
			   "directory");
	if (dlen != npages * PAGE || len - doff != dlen)
		return bad(im, idx, im->sec[idx].offset, "page data length does not match "
			   "the page count");
	runs = (const void *)(base + roff);
	for (uint64_t i = 0; i < nruns; i++) {
		uint64_t s = lx_le64_to_cpu(runs[i].slot), n = lx_le64_to_cpu(runs[i].npages);
		char what[160];

		snprintf(what, sizeof(what), "run %llu (slot %llu, %llu pages): ",
			 (unsigned long long)i, (unsigned long long)s, (unsigned long long)n);
		if (!n || n > npages - next || lx_le64_to_cpu(runs[i].index) != next)
			return bad(im, idx, im->sec[idx].offset + roff + i * sizeof(*runs),
				   strcat(what, "pages out of order or beyond the count"));
		if ((i && s < prev_end) || s > lx_le64_to_cpu(h->slots_end) ||
		    n > lx_le64_to_cpu(h->slots_end) - s)
			return bad(im, idx, im->sec[idx].offset + roff + i * sizeof(*runs),
				   strcat(what, "slots overlap, descend or pass the end"));
		prev_end = s + n;
		next += n;
	}
	if (next != npages)
		return bad(im, idx, im->sec[idx].offset, "runs do not cover the page count");
	if (pi) {
		pi->section = idx;
		pi->nruns = nruns;
		pi->npages = npages;
		pi->slots_end = lx_le64_to_cpu(h->slots_end);
		pi->snapshot = lx_le64_to_cpu(h->snapshot);
		memcpy(pi->uuid, h->uuid, 16);
	}
	if (runsp)
		*runsp = runs;
	if (sumsp)
		*sumsp = base + soff;
	if (datap)
		*datap = base + doff;
	return 0;
}

int packed_swap_open(const struct img *im, struct swapfile **sw, char **pathp)
{
	struct packed_info pi;
	struct swap_source src = { .read = packed_read, .free = packed_free };
	struct lx_swap_ref *ref = NULL;
	struct packed *p;
	size_t n = 0;
	int e;

	*sw = NULL;
	e = packed_parse(im, &pi, NULL, NULL, NULL);
	if (e)
		return e;
	/* the pages must be the ones the image's page maps were made for */
	e = img_records(im, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref), sizeof(*ref),
			(void **)&ref, &n);
	if (e == -ENOENT)
		e = err_set(-EINVAL, "image %s: packed pages but no swap section to match "
			    "them with", im->path);
	else if (!e && n != 1)
		e = err_set(-EINVAL, "image %s: %zu swapfile references, want 1", im->path, n);
	else if (!e && (memcmp(ref->uuid, pi.uuid, 16) || ref->snapshot != pi.snapshot ||
			ref->slots_end != pi.slots_end))
		e = err_set(-ESTALE, "image %s: the packed pages come from another swapfile "
			    "or snapshot than the image's page maps", im->path);
	free(ref);
	if (e)
		return e;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(-ENOMEM, "image %s: out of memory", im->path);
	p->im = im;
	p->nruns = pi.nruns;
	p->npages = pi.npages;
	packed_parse(im, NULL, &p->runs, &p->sums, &p->data);
	src.ctx = p;
	memcpy(src.uuid, pi.uuid, 16);
	src.slots_end = pi.slots_end;
	if (pathp) {
		*pathp = strdup(im->path);
		if (!*pathp) {
			free(p);
			return err_set(-ENOMEM, "image %s: out of memory", im->path);
		}
	}
	return swap_open_source(sw, im->path, &src);
}

/* ------------------------------------------------------------------ */
/* writing: cryo pack                                                   */

struct range {
	uint64_t slot, n;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* The slots every task's page map uses, as merged ascending ranges */
static int used_ranges(const struct img *im, size_t ntasks, struct range **out, size_t *nout)
{
	struct range *v = NULL;
	size_t n = 0, cap = 0, m = 0;

	for (size_t t = 0; t < ntasks; t++) {
		struct lx_page_run *r = NULL;
		size_t nr = 0;
		int e = img_records(im, LX_SEC_PAGEMAP, (uint32_t)t, sizeof(*r), sizeof(*r),
				    (void **)&r, &nr);

		if (e == -ENOENT)
			continue;
		if (e) {
			free(v);
			return e;
		}
		for (size_t i = 0; i < nr; i++) {
			if (r[i].slot == LX_SLOT_ZERO || !r[i].npages)
				continue;
			if (n == cap) {
				struct range *nv;

				cap = cap ? cap * 2 : 256;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(r);
					free(v);
					return err_set(-ENOMEM, "pack: out of memory");
				}
				v = nv;
			}
			v[n].slot = r[i].slot;
			v[n].n = r[i].npages;
			if (v[n].slot > UINT64_MAX / 2) {
				free(r);
				free(v);
				return err_set(-EINVAL, "image %s: task %zu: page run at %#llx names "
					       "slot %llu", im->path, t,
					       (unsigned long long)r[i].vaddr,
					       (unsigned long long)r[i].slot);
			}
			n++;
		}
		free(r);
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_range);
	for (size_t i = 0; i < n; i++) {
		if (m && v[i].slot <= v[m - 1].slot + v[m - 1].n) {
			uint64_t end = v[i].slot + v[i].n;

			if (end > v[m - 1].slot + v[m - 1].n)
				v[m - 1].n = end - v[m - 1].slot;
		} else {
			v[m++] = v[i];
		}
	}
	*out = v;
	*nout = m;
	return 0;
}

/* The packed index of slot (which used_ranges produced), from the runs */
static uint64_t index_of(const struct range *v, const uint64_t *first, size_t n, uint64_t slot)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].slot <= slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return first[lo - 1] + (slot - v[lo - 1].slot);
}

/* Every stored page of every task against the image's own page sums, by
 * the packed sums already computed (no second hash of the pages). */
static int check_sums(const struct img *im, const struct lx_task *tasks, size_t ntasks,
		      const struct range *v, const uint64_t *first, size_t nv,
		      const uint8_t *psums, const char *swname)
{
	for (size_t t = 0; t < ntasks; t++) {
		struct lx_page_run *r = NULL;
		const uint8_t *sums = NULL;
		uint64_t slen = 0, si = 0;
		uint32_t rs;
		size_t nr = 0;

		int e = img_records(im, LX_SEC_PAGEMAP, (uint32_t)t, sizeof(*r), sizeof(*r),
				    (void **)&r, &nr);

		if (e == -ENOENT)
			continue;
		if (e)
			return e;
		if (img_find(im, LX_SEC_PAGESUMS, (uint32_t)t, (const void **)&sums, &slen, &rs))
			slen = 0;
		for (size_t i = 0; i < nr; i++) {
			if (r[i].slot == LX_SLOT_ZERO)
				continue;
			for (uint64_t k = 0; k < r[i].npages; k++, si++) {
				uint64_t idx = index_of(v, first, nv, r[i].slot + k);

				if (si >= slen / 8) {
					free(r);
					return err_set(-EINVAL, "image %s: task %zu: fewer page sums "
						       "than stored pages", im->path, t);
				}
				if (get64(sums + si * 8) != get64(psums + idx * 8)) {
					e = err_set(-EIO, "%s: page at %#llx (slot %llu) of pid "
							"%u fails its checksum (corrupt or deleted "
							"snapshot); nothing was packed", swname,
							(unsigned long long)(r[i].vaddr + k * PAGE),
							(unsigned long long)(r[i].slot + k),
							tasks[t].pid);

					free(r);
					return e;
				}
			}
		}
		free(r);
	}
	return 0;
}

/* Copy the strings of a string table by re-interning them in order: the
 * writer's tables are built the same way, so offsets come out the same;
 * anything else (a hand-made table) is refused rather than renumbered. */
static int copy_strtab(struct img_writer *w, const struct img *im, uint32_t task,
		       const char *tab, uint64_t len)
{
	img_str(w, task, "");	/* the table exists even if empty */
	for (uint64_t off = 1; off < len;) {
		const char *s = tab + off;
		size_t n = strnlen(s, len - off);
		uint32_t got;

		if (n == len - off || !n || off > UINT32_MAX)
			return err_set(-EINVAL, "image %s: string table of task %d: not as cryo "
				       "writes it at offset %llu (cannot pack it)", im->path,
				       (int)task, (unsigned long long)off);
		got = img_str(w, task, s);
		if (got != off)
			return err_set(-EINVAL, "image %s: string table of task %d: string at "
				       "offset %llu repeats (cannot pack it)", im->path, (int)task,
				       (unsigned long long)off);
		off += n + 1;
	}
	return 0;
}

static int copy_sections(struct img_writer *w, const struct img *im)
{
	const struct lx_ckpt_header *h = im->hdr;
	struct exe_ident id;
	char *exe;
	int e = 0;

	for (uint32_t i = 0; i < im->nsec && !e; i++) {
		const struct lx_ckpt_section *s = &im->sec[i];
		const uint8_t *d = im->data + s->offset;

		if (s->type == LX_SEC_PACKED_PAGES)
			continue;	/* replaced */
		if (s->type == LX_SEC_STRTAB)
			e = copy_strtab(w, im, s->task, (const char *)d, s->length);
		else
			e = img_add(w, s->type, s->task, s->record_size, d, s->length);
	}
	if (e)
		return e;
	memset(&id, 0, sizeof(id));
	id.dev = lx_le64_to_cpu(h->exe_dev);
	id.ino = lx_le64_to_cpu(h->exe_ino);
	id.size = lx_le64_to_cpu(h->exe_size);
	id.mtime_ns = lx_le64_to_cpu(h->exe_mtime_ns);
	id.build_id_len = lx_le32_to_cpu(h->exe_build_id_len);
	memcpy(id.build_id, h->exe_build_id, sizeof(id.build_id));
	exe = strndup((const char *)im->data + lx_le64_to_cpu(h->exe_path_offset),
		      lx_le32_to_cpu(h->exe_path_len));
	if (!exe)
		return err_set(-ENOMEM, "pack: out of memory");
	e = img_set_exe(w, exe, &id);
	free(exe);
	return e;
}

int pack_image(const struct img *im, struct swapfile *sw, const char *swname, const char *out)
{
	struct lx_task *tasks = NULL;
	struct lx_swap_ref *ref = NULL;
	struct range *v = NULL;
	uint64_t *first = NULL, npages = 0, roff, soff, doff, total, sec_off;
	size_t ntasks = 0, nv = 0, nref = 0;
	struct img_writer *w = NULL;
	struct lx_packed_hdr *h;
	uint8_t *dir = NULL, *chunk = NULL;
	uint32_t idx = 0;
	int e;

	e = img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(*tasks), 32,
			(void **)&tasks, &ntasks);
	if (e)
		return e == -ENOENT ? err_set(-EINVAL, "image %s: no tasks", im->path) : e;
	e = img_records(im, LX_SEC_SWAP, LX_TASK_GLOBAL, sizeof(*ref), sizeof(*ref),
			(void **)&ref, &nref);
	if (!e && nref != 1)
		e = err_set(-EINVAL, "image %s: %zu swapfile references, want 1", im->path, nref);
	if (!e)
		e = used_ranges(im, ntasks, &v, &nv);
	if (e)
		goto out;
	first = calloc(nv ? nv : 1, sizeof(*first));
	if (!first) {
		e = err_set(-ENOMEM, "pack: out of memory");
		goto out;
	}
	for (size_t i = 0; i < nv; i++) {
		first[i] = npages;
		npages += v[i].n;
	}
	roff = sizeof(*h);
	soff = roff + nv * sizeof(struct lx_packed_run);
	doff = soff + npages * 8;
	if (npages > PACK_MAX / PAGE) {
		e = err_set(-EFBIG, "image %s: %llu pages to pack: more than an image may hold "
			    "(512 GiB)", im->path, (unsigned long long)npages);
		goto out;
	}
	total = doff + npages * PAGE;
	/* the directory (header, runs, sums) in memory; the pages go straight
	 * to the file, a chunk at a time, so any size packs in little memory */
	dir = calloc(1, doff);
	chunk = malloc(CHUNK * PAGE);
	if (!dir || !chunk) {
		e = err_set(-ENOMEM, "pack: out of memory for a %llu-byte page directory",
			    (unsigned long long)doff);
		goto out;
	}
	h = (void *)dir;
	memcpy(h->magic, LX_PACKED_MAGIC, 8);
	h->version = lx_cpu_to_le32(LX_PACKED_VERSION);
	h->hdr_size = lx_cpu_to_le32(sizeof(*h));
	h->nruns = lx_cpu_to_le64(nv);
	h->npages = lx_cpu_to_le64(npages);
	h->runs_off = lx_cpu_to_le64(roff);
	h->sums_off = lx_cpu_to_le64(soff);
	h->data_off = lx_cpu_to_le64(doff);
	h->data_len = lx_cpu_to_le64(npages * PAGE);
	memcpy(h->uuid, ref->uuid, 16);
	h->snapshot = lx_cpu_to_le64(ref->snapshot);
	h->slots_end = lx_cpu_to_le64(ref->slots_end);
	e = img_create(&w, out);
	if (!e)
		e = copy_sections(w, im);
	if (!e)
		e = img_reserve(w, LX_SEC_PACKED_PAGES, LX_TASK_GLOBAL, total, &sec_off, &idx);
	for (size_t i = 0; i < nv && !e; i++) {
		struct lx_packed_run r = {
			.slot = lx_cpu_to_le64(v[i].slot),
			.npages = lx_cpu_to_le64(v[i].n),
			.index = lx_cpu_to_le64(first[i]),
		};

		memcpy(dir + roff + i * sizeof(r), &r, sizeof(r));
		if (v[i].slot > ref->slots_end || v[i].n > ref->slots_end - v[i].slot)
			e = err_set(-EINVAL, "image %s: page maps use slots up to %llu, beyond "
				    "the %llu the image committed", im->path,
				    (unsigned long long)(v[i].slot + v[i].n),
				    (unsigned long long)ref->slots_end);
		/* swap_read in chunks: a packed source checks its sums too */
		for (uint64_t d = 0; d < v[i].n && !e; d += CHUNK) {
			uint64_t n = v[i].n - d < CHUNK ? v[i].n - d : CHUNK;
			uint64_t k0 = first[i] + d;

			e = swap_read(sw, v[i].slot + d, n, chunk);
			for (uint64_t k = 0; k < n && !e; k++) {
				uint64_t sum = lx_cpu_to_le64(page_sum(chunk + k * PAGE));

				memcpy(dir + soff + (k0 + k) * 8, &sum, 8);
			}
			if (!e)
				e = img_write_at(w, idx, doff + k0 * PAGE, chunk, n * PAGE);
		}
	}
	if (!e)
		e = check_sums(im, tasks, ntasks, v, first, nv, dir + soff, swname);
	if (!e)
		e = img_write_at(w, idx, 0, dir, doff);
	if (!e) {
		/* the crc covers the directory; pages have their own sums */
		img_set_crc(w, idx, img_crc(dir, doff));
		e = img_commit(w);
		w = NULL;
	}
	if (!e)
		info("packed %s: %llu pages in %zu runs", out, (unsigned long long)npages, nv);
out:
	if (w)
		img_abort(w);
	free(dir);
	free(chunk);
	free(first);
	free(v);
	free(ref);
	free(tasks);
	return e;
}

/* pack IMAGE with the pages of its swapfile (or its own) */
int pack_path(const char *image, const char *swap_override, const char *out)
{
	struct img im;
	struct swapfile *sw = NULL;
	char *swpath = NULL, *name = NULL;
	int e;

	e = img_open(&im, image);
	if (e)
		return e;
	e = image_swap_open(&im, swap_override, &sw, &swpath);
	if (!e && asprintf(&name, "%s %s", swap_is_source(sw) ? "image" : "swapfile",
			   swpath ? swpath : "?") < 0)
		name = NULL;
	if (!e)
		e = pack_image(&im, sw, name ? name : "swapfile", out);
	swap_close(sw);
	free(swpath);
	free(name);
	img_close(&im);
	return e;
}

int cmd_pack(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "swapfile", required_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *out = NULL, *swap = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "o:s:qvh", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 's': swap = optarg; break;
		case 'q': log_level = 0; break;
		case 'v': log_level = 2; break;
		case 'h':
			printf("usage: cryo pack IMAGE -o OUT [--swapfile PATH]\n");
			return 0;
		default:
			fprintf(stderr, "usage: cryo pack IMAGE -o OUT [--swapfile PATH]\n");
			return 2;
		}
	}
	if (optind != argc - 1 || !out) {
		fprintf(stderr, "usage: cryo pack IMAGE -o OUT [--swapfile PATH]\n");
		return 2;
	}
	if (pack_path(argv[optind], swap, out)) {
		report_error("%s", err_msg());
		return 1;
	}
	return 0;
}
