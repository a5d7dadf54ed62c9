/* Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, "/dev/zero (deleted)"
 * in maps) mapped by several mappings of the tree: one shmem object,
 * restored as one object again.
 *
 * Dump: objects are told apart by their shmem inode. An object mapped more
 * than once in the tree gets an id (lx_vma.shared_id, LX_SEC_SHARED_ANON);
 * which of its pages hold data is asked of the object itself
 * (SEEK_DATA/SEEK_HOLE on /proc/PID/map_files/START-END), because a page
 * written by one process is not in the page tables of another. Each data
 * page is stored once, in the PAGEMAP of the first mapping (task order,
 * then address order) that covers its offset; pages no mapping covers are
 * unreachable and not kept. An object also mapped by a process outside
 * the tree is refused, naming it, unless --allow-leak=shm.
 *
 * Restore: tasks are rebuilt one by one, parents first (restore.c), each
 * one whole before the next. The first task that maps an object creates
 * it at its full size in a free range and places each of its own mappings
 * with mremap(old_size 0), which maps the same pages again at the offset;
 * a later task opens /proc/<first task>/map_files/... (pid as cryo sees
 * it: the host's /proc, also with --pidns) and mmaps that same shmem file
 * at each of its offsets. Pages are then written through the mappings as
 * for any VMA, so they land in the one object. Shared mappings are never
 * lazy (lazy.c takes private anonymous VMAs only).
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"
#include "shanon.h"

#define PAGE 4096ull
#define MAX_OBJECT (1ull << 46)

static int is_shared_anon(const struct proc_vma *v)
{
	return v->shared && v->deleted && !strcmp(v->path, "/dev/zero");
}

/* ------------------------------------------------------------------ */
/* dump                                                                */

struct sa_obj {
	uint64_t ino;
	unsigned major, minor;
	uint64_t size;
	uint32_t id;		/* 1 + index in the section, 0: not recorded */
	uint32_t first_task, nmaps, flags;
	uint8_t *covered;	/* per page: stored by an earlier mapping */
	uint8_t *data;		/* per page: the object has it (SEEK_DATA) */
};

struct sa_map {
	pid_t pid;
	uint32_t task;
	uint64_t start, end, pgoff;
	size_t obj;
	uint64_t *rg;		/* vaddr ranges this mapping stores */
	size_t nrg;
};

static struct {
	struct sa_obj *o;
	size_t no;
	struct sa_map *m;
	size_t nm;
	uint32_t nids;
} D;

void shanon_dump_free(void)
{
	for (size_t i = 0; i < D.no; i++) {
		free(D.o[i].covered);
		free(D.o[i].data);
	}
	for (size_t i = 0; i < D.nm; i++)
		free(D.m[i].rg);
	free(D.o);
	free(D.m);
	memset(&D, 0, sizeof(D));
}

static int find_obj(const struct proc_vma *v)
{
	for (size_t i = 0; i < D.no; i++)
		if (D.o[i].ino == v->ino && D.o[i].major == v->major && D.o[i].minor == v->minor)
			return (int)i;
	return -1;
}

static int in_tree(const struct dump_task *t, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].pid == pid)
			return 1;
	return 0;
}

/* Every process outside the tree that maps one of the tree's objects */
static int check_outside(const struct dump_task *t, size_t n, uint32_t allow)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int e = 0;

	if (!d)
		return err_sys(-errno, "open /proc");
	while ((de = readdir(d)) && !e) {
		pid_t pid = (pid_t)atoi(de->d_name);
		struct proc_vma *v = NULL;
		size_t nv = 0;

		if (pid <= 0 || pid == getpid() || in_tree(t, n, pid))
			continue;
		if (proc_maps(pid, &v, &nv)) {
			err_clear();	/* gone, or a kernel thread */
			continue;
		}
		for (size_t i = 0; i < nv && !e; i++) {
			int k;

			if (!v[i].deleted || strcmp(v[i].path, "/dev/zero"))
				continue;
			k = find_obj(&v[i]);
			if (k < 0 || (D.o[k].flags & LX_SHANON_LEAKED))
				continue;
			if (allow & LX_LEAK_SHM) {
				warn("shared anonymous memory (inode %lu) of the tree is also mapped by"
				     " pid %d outside it: the restore gets a private copy"
				     " (--allow-leak)", (unsigned long)D.o[k].ino, pid);
				D.o[k].flags |= LX_SHANON_LEAKED;
				continue;
			}
			for (size_t m = 0; m < D.nm; m++)
				if (D.m[m].obj == (size_t)k) {
					e = err_set(-EOPNOTSUPP, "pid %d: mapping %#lx-%#lx: shared"
						    " anonymous memory (inode %lu) is also mapped by"
						    " pid %d outside the tree: a restore could not"
						    " share it again; stop that process, dump it too,"
						    " or accept a private copy with --allow-leak=shm",
						    D.m[m].pid, (unsigned long)D.m[m].start,
						    (unsigned long)D.m[m].end, (unsigned long)D.o[k].ino,
						    pid);
					break;
				}
		}
		proc_maps_free(v, nv);
	}
	closedir(d);
	return e;
}

/* Size and data pages of an object, through one of its mappings */
static int read_object(struct sa_obj *o, const struct sa_map *m)
{
	char mf[128];
	struct stat st;
	off_t at = 0;
	int fd, e = 0;

	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", m->pid, (unsigned long)m->start,
		 (unsigned long)m->end);
	fd = open(mf, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "pid %d: mapping %#lx-%#lx: shared anonymous memory mapped"
			       " %u times in the tree: open %s (needs CAP_CHECKPOINT_RESTORE)",
			       m->pid, (unsigned long)m->start, (unsigned long)m->end, o->nmaps, mf);
	if (fstat(fd, &st) < 0) {
		e = err_sys(-errno, "fstat %s", mf);
		goto out;
	}
	if (st.st_ino != o->ino || !st.st_size || st.st_size % PAGE ||
	    (uint64_t)st.st_size > MAX_OBJECT) {
		e = err_set(-EOPNOTSUPP, "pid %d: mapping %#lx-%#lx: shared anonymous memory of"
			    " %lu bytes is not supported", m->pid, (unsigned long)m->start,
			    (unsigned long)m->end, (unsigned long)st.st_size);
		goto out;
	}
	o->size = (uint64_t)st.st_size;
	o->covered = calloc(o->size / PAGE, 1);
	o->data = calloc(o->size / PAGE, 1);
	if (!o->covered || !o->data) {
		e = -ENOMEM;
		goto out;
	}
	for (;;) {
		off_t d = lseek(fd, at, SEEK_DATA), h;

		if (d < 0) {
			if (errno != ENXIO)
				e = err_sys(-errno, "%s: SEEK_DATA", mf);
			break;
		}
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0) {
			e = err_sys(-errno, "%s: SEEK_HOLE", mf);
			break;
		}
		for (uint64_t p = (uint64_t)d / PAGE; p * PAGE < (uint64_t)h && p < o->size / PAGE; p++)
			o->data[p] = 1;
		at = h;
		if ((uint64_t)at >= o->size)
			break;
	}
out:
	close(fd);
	return e;
}

static int add_range(struct sa_map *m, uint64_t va)
{
	uint64_t *n;

	if (m->nrg && m->rg[2 * m->nrg - 1] == va) {
		m->rg[2 * m->nrg - 1] = va + PAGE;
		return 0;
	}
	n = realloc(m->rg, (m->nrg + 1) * 2 * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->rg = n;
	m->rg[2 * m->nrg] = va;
	m->rg[2 * m->nrg + 1] = va + PAGE;
	m->nrg++;
	return 0;
}

int shanon_dump_prepare(const struct dump_task *t, size_t n, uint32_t allow_leak)
{
	int e = 0;

	shanon_dump_free();
	for (size_t i = 0; i < n && !e; i++) {
		struct proc_vma *v = NULL;
		size_t nv = 0;

		if (t[i].zombie)
			continue;
		e = proc_maps(t[i].pid, &v, &nv);
		for (size_t k = 0; k < nv && !e; k++) {
			int o;
			struct sa_map *nm;

			if (!is_shared_anon(&v[k]))
				continue;
			o = find_obj(&v[k]);
			if (o < 0) {
				struct sa_obj *no = realloc(D.o, (D.no + 1) * sizeof(*no));

				if (!no) {
					e = -ENOMEM;
					break;
				}
				D.o = no;
				o = (int)D.no++;
				memset(&D.o[o], 0, sizeof(D.o[o]));
				D.o[o].ino = v[k].ino;
				D.o[o].major = v[k].major;
				D.o[o].minor = v[k].minor;
				D.o[o].first_task = t[i].index;
			}
			nm = realloc(D.m, (D.nm + 1) * sizeof(*nm));
			if (!nm) {
				e = -ENOMEM;
				break;
			}
			D.m = nm;
			D.m[D.nm++] = (struct sa_map){ t[i].pid, t[i].index, v[k].start, v[k].end,
						       v[k].pgoff, (size_t)o, NULL, 0 };
			D.o[o].nmaps++;
		}
		proc_maps_free(v, nv);
	}
	if (!e && D.no)
		e = check_outside(t, n, allow_leak);
	/* an object mapped once is a private object of that mapping, as
	 * before: its pages are what the mapping's page tables hold */
	for (size_t k = 0; k < D.no && !e; k++) {
		if (D.o[k].nmaps < 2)
			continue;
		for (size_t m = 0; m < D.nm; m++)
			if (D.m[m].obj == k) {
				e = read_object(&D.o[k], &D.m[m]);
				break;
			}
		D.o[k].id = ++D.nids;
	}
	for (size_t m = 0; m < D.nm && !e; m++) {
		struct sa_map *mp = &D.m[m];
		struct sa_obj *o = &D.o[mp->obj];

		if (!o->id)
			continue;
		if (mp->pgoff >= o->size)
			continue;	/* beyond the object: SIGBUS there, nothing to store */
		for (uint64_t va = mp->start; va < mp->end && !e; va += PAGE) {
			uint64_t p = (mp->pgoff + (va - mp->start)) / PAGE;

			if (p >= o->size / PAGE)
				break;
			if (o->covered[p])
				continue;
			o->covered[p] = 1;
			if (o->data[p])
				e = add_range(mp, va);
		}
	}
	if (e)
		shanon_dump_free();
	return e;
}

static const struct sa_map *find_map(pid_t pid, uint64_t start)
{
	for (size_t m = 0; m < D.nm; m++)
		if (D.m[m].pid == pid && D.m[m].start == start)
			return &D.m[m];
	return NULL;
}

uint32_t shanon_vma_id(pid_t pid, uint64_t start)
{
	const struct sa_map *m = find_map(pid, start);

	return m ? D.o[m->obj].id : 0;
}

int shanon_vma_ranges(pid_t pid, uint64_t start, const uint64_t **rg, size_t *nrg)
{
	const struct sa_map *m = find_map(pid, start);

	if (!m || !D.o[m->obj].id)
		return err_set(-EINVAL, "pid %d: mapping %#lx: no shared anonymous object", pid,
			       (unsigned long)start);
	*rg = m->rg;
	*nrg = m->nrg;
	return 0;
}

int shanon_dump_write(struct img_writer *w)
{
	struct lx_shared_anon *r;
	size_t k = 0;
	int e;

	if (!D.nids)
		return 0;
	r = calloc(D.nids, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < D.no; i++) {
		if (!D.o[i].id)
			continue;
		r[k].size = D.o[i].size;
		r[k].ino = D.o[i].ino;
		r[k].first_task = D.o[i].first_task;
		r[k].flags = D.o[i].flags;
		r[k].nmaps = D.o[i].nmaps;
		k++;
	}
	e = img_add(w, LX_SEC_SHARED_ANON, LX_TASK_GLOBAL, sizeof(*r), r, k * sizeof(*r));
	free(r);
	return e;
}

/* Two separate opens of one memfd in two processes share its pages; the
 * restore recreates a memfd per open file description held across
 * processes, so they would drift apart. One description held by several
 * processes (fork, SCM_RIGHTS) is shared again by files.c, and separate
 * opens inside one process are reopened from the first: both are fine. */
struct memfd_ref { size_t task; int fd; dev_t dev; ino_t ino; char name[80]; };
struct memfd_scan { struct memfd_ref *r; size_t n, task; };

static int note_memfd(int fd, const char *path, const struct stat *st, void *arg)
{
	struct memfd_scan *m = arg;
	struct memfd_ref *nr;
	char link[80];
	ssize_t ln = readlink(path, link, sizeof(link) - 1);

	link[ln > 0 ? ln : 0] = 0;
	if (strncmp(link, "/memfd:", 7))
		return 0;
	nr = realloc(m->r, (m->n + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	m->r = nr;
	nr[m->n] = (struct memfd_ref){ m->task, fd, st->st_dev, st->st_ino, "" };
	snprintf(nr[m->n].name, sizeof(nr[m->n].name), "%s", link + 1);
	m->n++;
	return 0;
}

int shanon_check_memfds(const struct dump_task *t, size_t n)
{
	struct memfd_scan m = { 0 };
	struct memfd_ref *r;
	size_t nr;
	int e = 0;

	if (n < 2)
		return 0;
	for (size_t i = 0; i < n && !e; i++) {
		m.task = i;
		if (!t[i].zombie)
			e = proc_each_fd(t[i].pid, note_memfd, &m);
	}
	r = m.r;
	nr = m.n;
	for (size_t a = 0; a < nr && !e; a++)
		for (size_t b = a + 1; b < nr && !e; b++) {
			/* within one process files.c reopens the first */
			if (r[a].dev != r[b].dev || r[a].ino != r[b].ino || r[a].task == r[b].task)
				continue;
			if (syscall(SYS_kcmp, t[r[a].task].pid, t[r[b].task].pid, KCMP_FILE,
				    r[a].fd, r[b].fd) == 0)
				continue;
			e = err_set(-EOPNOTSUPP, "pid %d fd %d and pid %d fd %d: two separate opens of"
				    " one memfd (%s) share its content, but a restore would make two"
				    " memfds: not supported (share one open file description instead:"
				    " dup, fork or SCM_RIGHTS)", t[r[a].task].pid, r[a].fd,
				    t[r[b].task].pid, r[b].fd, r[a].name);
		}
	free(r);
	return e;
}

/* ------------------------------------------------------------------ */
/* restore                                                             */

static struct {
	const struct img *im;
	struct lx_shared_anon *r;
	size_t n;
	struct made {
		int made;
		uint32_t task;		/* 1 + index of the task that mapped it last */
		pid_t pid;		/* the creator, as cryo sees it */
		uint64_t ino;		/* its new inode */
	} *m;
} R;

void shanon_restore_end(void)
{
	free(R.r);
	free(R.m);
	memset(&R, 0, sizeof(R));
}

int shanon_restore_begin(const struct img *im)
{
	struct lx_task *tasks = NULL;
	size_t nt = 0;
	int e;

	shanon_restore_end();
	R.im = im;
	e = img_records(im, LX_SEC_SHARED_ANON, LX_TASK_GLOBAL, sizeof(*R.r), 32, (void **)&R.r,
			&R.n);
	if (e == -ENOENT) {	/* none in this image (or an older one) */
		e = 0;
		R.n = 0;
	}
	if (e)
		return err_ctx(e, "image: shared anonymous objects");
	for (size_t i = 0; i < R.n; i++)
		if (!R.r[i].size || R.r[i].size % PAGE || R.r[i].size > MAX_OBJECT)
			return err_set(-EINVAL, "image: shared anonymous object %zu: bad size %lu", i,
				       (unsigned long)R.r[i].size);
	R.m = calloc(R.n + 1, sizeof(*R.m));
	if (!R.m)
		return -ENOMEM;
	/* every reference, before any process exists */
	if (img_records(im, LX_SEC_TASKS, LX_TASK_GLOBAL, sizeof(struct lx_task), 8,
			(void **)&tasks, &nt)) {
		err_clear();	/* ctx_init has refused a bad one */
	} else {
		for (size_t k = 0; k < nt && !e; k++) {
			struct lx_vma *v = NULL;
			size_t nv = 0;

			if (img_records(im, LX_SEC_VMAS, (uint32_t)k, sizeof(*v), 64, (void **)&v, &nv)) {
				err_clear();	/* mm_check names what is wrong with it */
				continue;
			}
			for (size_t i = 0; i < nv && !e; i++)
				if (v[i].kind == LX_VMA_SHARED_ANON && v[i].shared_id &&
				    (v[i].shared_id > R.n || v[i].pgoff >= R.r[v[i].shared_id - 1].size))
					e = err_set(-EINVAL, "image: task %zu: mapping %#lx names shared"
						    " anonymous object %u (of %zu) at offset %#lx",
						    k, (unsigned long)v[i].start, v[i].shared_id, R.n,
						    (unsigned long)v[i].pgoff);
			free(v);
		}
	}
	free(tasks);
	return e;
}

/* Where the creator's object is mapped now: a VMA of its new inode */
static int find_source(const struct made *mk, uint64_t *start, uint64_t *end)
{
	struct proc_vma *v = NULL;
	size_t nv = 0;
	int e = proc_maps(mk->pid, &v, &nv), found = 0;

	for (size_t i = 0; i < nv && !e && !found; i++)
		if (v[i].shared && v[i].ino == mk->ino && !strcmp(v[i].path, "/dev/zero")) {
			*start = v[i].start;
			*end = v[i].end;
			found = 1;
		}
	proc_maps_free(v, nv);
	if (!e && !found)
		e = err_set(-ESRCH, "pid %d: its shared anonymous memory went away", mk->pid);
	return e;
}

static int new_ino(pid_t pid, uint64_t addr, uint64_t *ino)
{
	struct proc_vma *v = NULL;
	size_t nv = 0;
	int e = proc_maps(pid, &v, &nv), found = 0;

	for (size_t i = 0; i < nv && !e && !found; i++)
		if (v[i].start <= addr && addr < v[i].end) {
			*ino = v[i].ino;
			found = 1;
		}
	proc_maps_free(v, nv);
	if (!e && !found)
		e = err_set(-EFAULT, "pid %d: no mapping at %#lx after creating it", pid,
			    (unsigned long)addr);
	return e;
}

/* The task cannot open map_files itself (its credentials lack
 * CAP_CHECKPOINT_RESTORE: a tree that ran as another user): cryo opens
 * the object and hands the fd over SCM_RIGHTS to a datagram socket the
 * task binds to an abstract name, which needs no privilege. The fd lands
 * in the task close-on-exec, as an open would. */
static int pass_fd(struct restore_task *t, const char *mf, long *tfd)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t alen;
	long ts = -1;
	int cfd, cs = -1, e;
	uint64_t pa;

	cfd = open(mf, O_RDWR | O_CLOEXEC);
	if (cfd < 0)
		return err_sys(-errno, "open %s", mf);
	snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "cryo-shanon-%d-%d", (int)getpid(),
		 (int)t->pid);
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1));
	e = restore_sys(t, "socket", SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0, 0, &ts);
	if (!e)
		e = restore_put(t, 0, &a, alen, &pa);
	if (!e)
		e = restore_sys(t, "bind an abstract socket", SYS_bind, (uint64_t)ts, pa, alen, 0, 0,
				0, NULL);
	if (!e) {
		char byte = 0, cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &byte, 1 };
		struct msghdr mh = { .msg_name = &a, .msg_namelen = alen, .msg_iov = &iov,
				     .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &cfd, sizeof(int));
		cs = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (cs < 0 || sendmsg(cs, &mh, MSG_DONTWAIT) != 1)
			e = err_sys(-errno, "pid %d: send it the shared memory's fd", t->pid);
	}
	if (!e) {
		/* the task's msghdr, iovec, byte and control buffer in its
		 * scratch area, at the addresses they will have there */
		struct {
			struct msghdr mh;
			struct iovec iov;
			char byte;
			char pad[7];
			char cbuf[CMSG_SPACE(sizeof(int))];
		} r;
		uint64_t base = t->scratch;
		struct cmsghdr *c;
		int fd = -1;

		memset(&r, 0, sizeof(r));
		r.iov.iov_base = (void *)(uintptr_t)(base + offsetof(typeof(r), byte));
		r.iov.iov_len = 1;
		r.mh.msg_iov = (void *)(uintptr_t)(base + offsetof(typeof(r), iov));
		r.mh.msg_iovlen = 1;
		r.mh.msg_control = (void *)(uintptr_t)(base + offsetof(typeof(r), cbuf));
		r.mh.msg_controllen = sizeof(r.cbuf);
		e = restore_put(t, 0, &r, sizeof(r), &pa);
		if (!e)
			e = restore_sys(t, "recvmsg the shared memory's fd", SYS_recvmsg, (uint64_t)ts,
					pa, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, 0, 0, NULL);
		if (!e)
			e = mem_read(t->pid, pa, &r, sizeof(r));
		if (!e) {
			/* the control buffer's address inside our copy */
			r.mh.msg_control = r.cbuf;
			c = CMSG_FIRSTHDR(&r.mh);
			if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(c), sizeof(int));
			if (fd < 0)
				e = err_set(-EIO, "pid %d: no fd received", t->pid);
			*tfd = fd;
		}
	}
	if (ts >= 0) {
		int e2 = restore_sys(t, "close", SYS_close, (uint64_t)ts, 0, 0, 0, 0, 0, NULL);

		if (!e)
			e = e2;
	}
	if (cs >= 0)
		close(cs);
	close(cfd);
	return e;
}

int shanon_map(struct restore_task *t, const struct lx_vma *v, size_t nv, size_t i,
	       const struct proc_vma *cur, size_t nc)
{
	uint32_t id = v[i].shared_id;
	struct made *mk;
	const struct lx_shared_anon *o;
	long ret;
	int e = 0;

	if (R.im != t->im || id > R.n)
		return err_set(-EINVAL, "image: pid %d: mapping %#lx names shared anonymous object"
			       " %u of %zu", t->pid, (unsigned long)v[i].start, id, R.n);
	mk = &R.m[id - 1];
	o = &R.r[id - 1];
	if (mk->task == t->index + 1)
		return 0;	/* placed with this task's first mapping of it */
	mk->task = t->index + 1;
	if (!mk->made) {
		uint64_t tmp = mm_find_free(v, nv, cur, nc, t->scratch, t->scratch + t->scratch_len,
					    o->size);

		if (!tmp)
			return err_set(-ENOMEM, "pid %d: no free range of %lu bytes for shared"
				       " anonymous memory", t->pid, (unsigned long)o->size);
		e = restore_sys(t, "mmap shared anonymous memory", SYS_mmap, tmp, o->size,
				PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS |
				MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &ret);
		for (size_t j = i; j < nv && !e; j++) {
			if (v[j].kind != LX_VMA_SHARED_ANON || v[j].shared_id != id)
				continue;
			if (v[j].pgoff >= o->size) {
				e = err_set(-EINVAL, "image: pid %d: mapping %#lx at offset %lu of a"
					    " %lu-byte object", t->pid, (unsigned long)v[j].start,
					    (unsigned long)v[j].pgoff, (unsigned long)o->size);
				break;
			}
			/* old size 0: the same pages again, at the same offset */
			e = restore_sys(t, "place shared anonymous memory", SYS_mremap,
					tmp + v[j].pgoff, 0, v[j].end - v[j].start,
					MREMAP_MAYMOVE | MREMAP_FIXED, v[j].start, 0, &ret);
			if (!e && (uint64_t)ret != v[j].start)
				e = err_set(-EFAULT, "pid %d: shared mapping %#lx landed at %#lx",
					    t->pid, (unsigned long)v[j].start, (unsigned long)ret);
		}
		if (!e)
			e = new_ino(t->pid, v[i].start, &mk->ino);
		if (!e)
			e = restore_sys(t, "unmap the shared anonymous object's first mapping",
					SYS_munmap, tmp, o->size, 0, 0, 0, 0, NULL);
		if (!e) {
			mk->made = 1;
			mk->pid = t->pid;
		}
	} else {
		uint64_t s = 0, en = 0, pa = 0;
		char path[96];
		long fd = -1;

		e = find_source(mk, &s, &en);
		snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", mk->pid, (unsigned long)s,
			 (unsigned long)en);
		if (!e)
			e = restore_put(t, 0, path, strlen(path) + 1, &pa);
		if (!e)
			e = restore_sys(t, "open the shared anonymous memory", SYS_open, pa,
					O_RDWR | O_CLOEXEC, 0, 0, 0, 0, &fd);
		if (e == -EPERM || e == -EACCES) {
			err_clear();
			e = pass_fd(t, path, &fd);
		}
		if (e)
			return err_ctx(e, "pid %d: map the shared anonymous memory of pid %d (%s)",
				       t->pid, mk->pid, path);
		for (size_t j = i; j < nv && !e; j++) {
			if (v[j].kind != LX_VMA_SHARED_ANON || v[j].shared_id != id)
				continue;
			e = restore_sys(t, "mmap shared anonymous memory", SYS_mmap, v[j].start,
					v[j].end - v[j].start, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_FIXED, (uint64_t)fd, v[j].pgoff, &ret);
			if (!e && (uint64_t)ret != v[j].start)
				e = err_set(-EFAULT, "pid %d: shared mapping %#lx landed at %#lx",
					    t->pid, (unsigned long)v[j].start, (unsigned long)ret);
		}
		{
			int e2 = restore_sys(t, "close", SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, NULL);

			if (!e)
				e = e2;
		}
	}
	if (e)
		e = err_ctx(e, "pid %d: shared anonymous memory %#lx-%#lx (object %u)", t->pid,
			    (unsigned long)v[i].start, (unsigned long)v[i].end, id);
	return e;
}
