/* SysV IPC: shared memory segments, semaphore sets and message queues.
 *
 * Which objects belong to the tree. SysV objects live in the IPC namespace,
 * not in a process, and outlive their users, so a dump takes the objects
 * the tree demonstrably uses:
 *   - a segment attached by a task of the tree, or created by one (cpid);
 *   - a semaphore set whose last operation on some semaphore (sempid, set
 *     by semop, SETVAL and SETALL) was by a task of the tree;
 *   - a message queue whose last send or receive (lspid, lrpid) was by a
 *     task of the tree.
 * An object of the tree that a process outside it also uses is a leak: a
 * segment attached outside (shm_nattch counts more attaches than the
 * tree's mappings), a set with a sempid outside, a queue with lspid/lrpid
 * outside. The dump refuses it naming the outside pid unless the user
 * passed --allow-leak=shm / ipc; the restore then makes a private copy.
 *
 * Contents go into the image (the global LX_SEC_FDDATA blob), not into
 * the page store: the page store maps a task's virtual pages, while a
 * segment is an object of its own that may be attached nowhere; segments
 * are usually small, and the trailing zero pages of one are not stored.
 *
 * Restore creates every object, with its id (through
 * /proc/sys/kernel/{shm,sem,msg}_next_id), before the first process;
 * tasks attach segments by injected shmat (mm.c, LX_VMA_SYSV_SHM); a
 * segment marked for deletion at dump is removed again once attached. A
 * failed restore removes every object it created.
 *
 * Not restored: semaphore undo values (SEM_UNDO adjustments are kernel
 * state no interface reads; when the tree has semaphore sets, a process
 * with an undo list, as kcmp(KCMP_SYSVSEM) tells, gets a warning: every
 * threaded process has one, so it cannot be a refusal), the creator
 * uid/gid (cryo creates the object; the owner is set back), pids and
 * times of last operations.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cryo.h"
#include "err.h"

#define PAGE 4096ull

/* ------------------------------------------------------------------ */
/* dump                                                                */

struct blob {
	uint8_t *p;
	size_t len, cap;
};

static int blob_put(struct blob *b, const void *data, size_t len, uint64_t *off)
{
	size_t need = b->len + ((len + 7) & ~(size_t)7);

	if (need > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		uint8_t *n;

		while (nc < need)
			nc *= 2;
		n = realloc(b->p, nc);
		if (!n)
			return -ENOMEM;
		b->p = n;
		b->cap = nc;
	}
	if (off)
		*off = b->len;
	memcpy(b->p + b->len, data, len);
	memset(b->p + b->len + len, 0, ((len + 7) & ~(size_t)7) - len);
	b->len = need;
	return 0;
}

static int in_tree(const struct dump_task *t, size_t n, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < n; i++)
		if (t[i].pid == pid && !t[i].zombie)
			return 1;
	return 0;
}

/* Mappings of segment id in the tree: "/SYSV<key>" VMAs whose inode is
 * the id (read from /proc, before dump_one has read the maps: SysV
 * refusals come before any page is copied) */
static size_t tree_attaches(const struct dump_task *t, size_t n, int id)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		char path[64], line[512];
		FILE *f;

		if (t[i].zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", t[i].pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned long long ino;

			if (strstr(line, "/SYSV") &&
			    sscanf(line, "%*s %*s %*s %*s %llu", &ino) == 1 && ino == (unsigned)id)
				c++;
		}
		fclose(f);
	}
	return c;
}

/* A process outside the tree that maps segment id: only looked for when
 * the attach count says one exists (reading every process's maps costs) */
static pid_t outside_attacher(const struct dump_task *t, size_t n, int id)
{
	DIR *pd = opendir("/proc");
	struct dirent *pe;
	pid_t found = 0;

	if (!pd)
		return 0;
	while (!found && (pe = readdir(pd))) {
		pid_t pid = atoi(pe->d_name);
		char path[64], line[512];
		FILE *f;

		if (pid <= 0 || pid == getpid() || in_tree(t, n, pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f)) {
			unsigned long long ino;
			char *p = strstr(line, "/SYSV");

			if (p && sscanf(line, "%*s %*s %*s %*s %llu", &ino) == 1 && ino == (unsigned)id)
				found = pid;
		}
		fclose(f);
	}
	closedir(pd);
	return found;
}

/* One more zeroed record at the end of *recs (NULL: out of memory) */
static void *push_rec(void **recs, size_t *n, size_t size)
{
	char *r = realloc(*recs, (*n + 1) * size);

	if (!r)
		return NULL;
	*recs = r;
	memset(r + *n * size, 0, size);
	return r + (*n)++ * size;
}

static void perm_rec(struct lx_sysv_perm *r, int id, const struct ipc_perm *p, uint32_t flags)
{
	r->id = (uint32_t)id;
	r->key = (uint32_t)p->__key;
	r->uid = p->uid;
	r->gid = p->gid;
	r->cuid = p->cuid;
	r->cgid = p->cgid;
	r->mode = p->mode;
	r->flags = flags;
}

static int leak(uint32_t allow, uint32_t kind, const char *what, int id, key_t key, pid_t other,
		const char *how, uint32_t *flags)
{
	if (allow & kind) {
		warn("%s id %d (key %#x) is also %s by pid %d outside the tree: the restore gets a"
		     " private copy (--allow-leak)", what, id, (unsigned)key, how, other);
		*flags |= LX_IPC_LEAKED;
		return 0;
	}
	return err_set(-EOPNOTSUPP, "%s id %d (key %#x) is also %s by pid %d outside the tree:"
		       " a restore could not share it again; stop that process, or accept a"
		       " private copy with --allow-leak=%s", what, id, (unsigned)key, how, other,
		       kind == LX_LEAK_SHM ? "shm" : "ipc");
}

static int dump_shm(const struct dump_task *t, size_t n, uint32_t allow, struct img_writer *w,
		    struct blob *b)
{
	struct lx_sysv_shm *recs = NULL;
	struct shm_info si;
	size_t nrec = 0;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&si), e = 0;

	if (max < 0)
		return 0;	/* no SysV shm in this kernel */
	for (int idx = 0; idx <= max && !e; idx++) {
		struct shmid_ds ds;
		int id = shmctl(idx, SHM_STAT_ANY, &ds);
		size_t att;
		uint32_t flags = 0;
		struct lx_sysv_shm *r;
		void *at;
		uint64_t len;

		if (id < 0)
			continue;
		att = tree_attaches(t, n, id);
		if (!att && !in_tree(t, n, ds.shm_cpid))
			continue;
		if (ds.shm_nattch > att) {
			pid_t other = outside_attacher(t, n, id);

			if (other)
				e = leak(allow, LX_LEAK_SHM, "SysV shm segment", id,
					 ds.shm_perm.__key, other, "attached", &flags);
		}
		if (e)
			break;
		r = push_rec((void **)&recs, &nrec, sizeof(*recs));
		if (!r) {
			e = -ENOMEM;
			break;
		}
		perm_rec(&r->perm, id, &ds.shm_perm, flags);
		r->size = ds.shm_segsz;
		r->cpid = (uint32_t)ds.shm_cpid;
		r->lpid = (uint32_t)ds.shm_lpid;
		/* cryo's own read-only attach, detached at once */
		at = shmat(id, NULL, SHM_RDONLY);
		if (at == (void *)-1) {
			e = err_sys(-errno, "SysV shm segment id %d: attach to read it", id);
			break;
		}
		/* trailing zero pages are not stored (bytes past the size
		 * within the last page read as zero) */
		for (len = (ds.shm_segsz + PAGE - 1) & ~(PAGE - 1); len; len -= PAGE) {
			const uint64_t *q = (const uint64_t *)((uint8_t *)at + len - PAGE);
			int nz = 0;

			for (uint64_t k = 0; k < PAGE / 8 && !nz; k++)
				nz = q[k] != 0;
			if (nz)
				break;
		}
		if (len > ds.shm_segsz)
			len = ds.shm_segsz;
		r->data_len = len;
		e = blob_put(b, at, len, &r->data_off);
		shmdt(at);
	}
	if (!e && nrec)
		e = img_add(w, LX_SEC_SYSV_SHM, LX_TASK_GLOBAL, sizeof(*recs), recs,
			    nrec * sizeof(*recs));
	if (!e && nrec)
		info("SysV shm: %zu segment%s of the tree saved", nrec, nrec == 1 ? "" : "s");
	free(recs);
	return e;
}

static int dump_sem(const struct dump_task *t, size_t n, uint32_t allow, struct img_writer *w,
		    struct blob *b)
{
	struct lx_sysv_sem *recs = NULL;
	struct seminfo si;
	size_t nrec = 0;
	int max = semctl(0, 0, SEM_INFO, &si), e = 0;

	if (max < 0)
		return 0;
	for (int idx = 0; idx <= max && !e; idx++) {
		struct semid_ds ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, &ds), mine = 0;
		pid_t other = 0;
		unsigned short *vals;
		uint32_t *le, flags = 0;
		struct lx_sysv_sem *r;

		if (id < 0 || !ds.sem_nsems)
			continue;
		for (unsigned long k = 0; k < ds.sem_nsems; k++) {
			pid_t p = semctl(id, (int)k, GETPID);

			if (in_tree(t, n, p))
				mine = 1;
			else if (p > 0 && !other)
				other = p;
		}
		if (!mine)
			continue;
		if (other)
			e = leak(allow, LX_LEAK_IPC, "SysV semaphore set", id, ds.sem_perm.__key,
				 other, "used", &flags);
		if (e)
			break;
		vals = calloc(ds.sem_nsems, sizeof(*vals));
		le = calloc(ds.sem_nsems, sizeof(*le));
		r = vals && le ? push_rec((void **)&recs, &nrec, sizeof(*recs)) : NULL;
		if (!r) {
			free(vals);
			free(le);
			e = -ENOMEM;
			break;
		}
		if (semctl(id, 0, GETALL, vals) < 0)
			e = err_sys(-errno, "SysV semaphore set id %d: read its values", id);
		for (unsigned long k = 0; k < ds.sem_nsems; k++)
			le[k] = lx_cpu_to_le32(vals[k]);
		perm_rec(&r->perm, id, &ds.sem_perm, flags);
		r->nsems = (uint32_t)ds.sem_nsems;
		r->data_len = ds.sem_nsems * 4;
		if (!e)
			e = blob_put(b, le, ds.sem_nsems * 4, &r->data_off);
		free(vals);
		free(le);
	}
	/* SEM_UNDO adjustments cannot be read. kcmp compares undo lists, and
	 * cryo has none; but every threaded process has one too (CLONE_SYSVSEM
	 * allocates it), empty or not: so a warning, not a refusal */
	for (size_t i = 0; i < n && !e && nrec; i++)
		if (!t[i].zombie &&
		    syscall(SYS_kcmp, getpid(), t[i].pid, 6 /* KCMP_SYSVSEM */, 0, 0) > 0)
			warn("pid %d may hold SysV semaphore undo adjustments (SEM_UNDO): they"
			     " cannot be saved, and its exit after the restore will not undo its"
			     " semaphore operations", t[i].pid);
	if (!e && nrec)
		e = img_add(w, LX_SEC_SYSV_SEM, LX_TASK_GLOBAL, sizeof(*recs), recs,
			    nrec * sizeof(*recs));
	free(recs);
	return e;
}

static int dump_msg(const struct dump_task *t, size_t n, uint32_t allow, struct img_writer *w,
		    struct blob *b)
{
	struct lx_sysv_msg *recs = NULL;
	struct msginfo mi;
	size_t nrec = 0;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi), e = 0;

	if (max < 0)
		return 0;
	for (int idx = 0; idx <= max && !e; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds);
		uint32_t flags = 0;
		struct lx_sysv_msg *r;
		struct { long mtype; char text[]; } *m;
		size_t bufsz;

		if (id < 0)
			continue;
		if (!in_tree(t, n, ds.msg_lspid) && !in_tree(t, n, ds.msg_lrpid))
			continue;
		if (ds.msg_lspid > 0 && !in_tree(t, n, ds.msg_lspid))
			e = leak(allow, LX_LEAK_IPC, "SysV message queue", id, ds.msg_perm.__key,
				 ds.msg_lspid, "written", &flags);
		else if (ds.msg_lrpid > 0 && !in_tree(t, n, ds.msg_lrpid))
			e = leak(allow, LX_LEAK_IPC, "SysV message queue", id, ds.msg_perm.__key,
				 ds.msg_lrpid, "read", &flags);
		if (e)
			break;
		r = push_rec((void **)&recs, &nrec, sizeof(*recs));
		if (!r) {
			e = -ENOMEM;
			break;
		}
		perm_rec(&r->perm, id, &ds.msg_perm, flags);
		r->qbytes = ds.msg_qbytes;
		r->qnum = (uint32_t)ds.msg_qnum;
		r->data_off = b->len;
		/* one message is never larger than all the queued bytes */
		bufsz = ds.__msg_cbytes + 1;
		m = malloc(sizeof(long) + bufsz);
		if (!m) {
			e = -ENOMEM;
			break;
		}
		/* MSG_COPY (CONFIG_CHECKPOINT_RESTORE): read message k without
		 * taking it off the queue */
		for (unsigned long k = 0; k < ds.msg_qnum && !e; k++) {
			ssize_t got = msgrcv(id, m, bufsz, (long)k, IPC_NOWAIT | MSG_COPY);
			uint64_t hdr[2];

			if (got < 0) {
				e = err_sys(-errno, "SysV message queue id %d: copy message %lu%s", id,
					    k, errno == ENOSYS ? " (the kernel lacks MSG_COPY:"
					    " CONFIG_CHECKPOINT_RESTORE)" : "");
				break;
			}
			hdr[0] = lx_cpu_to_le64((uint64_t)m->mtype);
			hdr[1] = lx_cpu_to_le64((uint64_t)got);
			e = blob_put(b, hdr, sizeof(hdr), NULL);
			if (!e)
				e = blob_put(b, m->text, (size_t)got, NULL);
		}
		free(m);
		r->data_len = b->len - r->data_off;
	}
	if (!e && nrec)
		e = img_add(w, LX_SEC_SYSV_MSG, LX_TASK_GLOBAL, sizeof(*recs), recs,
			    nrec * sizeof(*recs));
	free(recs);
	return e;
}

static int ns_ino(pid_t pid, ino_t *ino)
{
	char path[64];
	struct stat st;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/ipc");
	if (stat(path, &st) < 0)
		return err_sys(-errno, "stat %s", path);
	*ino = st.st_ino;
	return 0;
}

/* The objects are looked up in the tree's IPC namespace: cryo joins it
 * for the time of the scan when it is not cryo's own */
int ipc_dump(const struct dump_task *t, size_t n, uint32_t allow_leak, struct img_writer *w)
{
	struct blob b = { 0 };
	ino_t mine, tree = 0, ti;
	pid_t first = 0;
	int own = -1, e = ns_ino(0, &mine);

	for (size_t i = 0; i < n && !e; i++) {
		if (t[i].zombie)
			continue;
		e = ns_ino(t[i].pid, &ti);
		if (!e && !first) {
			first = t[i].pid;
			tree = ti;
		} else if (!e && ti != tree) {
			e = err_set(-EOPNOTSUPP, "pid %d and pid %d are in different IPC namespaces:"
				    " not supported", first, t[i].pid);
		}
	}
	if (!e && first && tree != mine) {
		char path[64];
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", first);
		own = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (own < 0 || fd < 0 || setns(fd, CLONE_NEWIPC) < 0)
			e = err_sys(-errno, "pid %d: join its IPC namespace to read its SysV objects",
				    first);
		if (fd >= 0)
			close(fd);
	}
	if (!e)
		e = dump_shm(t, n, allow_leak, w, &b);
	if (!e)
		e = dump_sem(t, n, allow_leak, w, &b);
	if (!e)
		e = dump_msg(t, n, allow_leak, w, &b);
	if (own >= 0) {
		if (setns(own, CLONE_NEWIPC) < 0 && !e)
			e = err_sys(-errno, "return to cryo's own IPC namespace");
		close(own);
	}
	if (!e && b.len)
		e = img_add(w, LX_SEC_FDDATA, LX_TASK_GLOBAL, 0, b.p, b.len);
	free(b.p);
	return e;
}

/* ------------------------------------------------------------------ */
/* restore                                                             */

static struct created {
	char kind;	/* 'm' shm, 's' sem, 'q' msg */
	int id;
	int rmid;	/* shm marked for deletion at dump */
} *made;
static size_t nmade;

static int set_next_id(const char *which, int id)
{
	char path[64], buf[16];
	int fd, len, e = 0;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", which);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(-errno, "open %s (needed to restore SysV ids)", path);
	len = snprintf(buf, sizeof(buf), "%d", id);
	if (write(fd, buf, (size_t)len) != len)
		e = err_sys(-errno, "write %d to %s", id, path);
	close(fd);
	return e;
}

static int remember(char kind, int id, int rmid)
{
	struct created *n = realloc(made, (nmade + 1) * sizeof(*made));

	if (!n)
		return -ENOMEM;
	made = n;
	made[nmade++] = (struct created){ kind, id, rmid };
	return 0;
}

/* Before arming *_next_id (which stays armed until the next creation in
 * the namespace, whoever makes it): the id and the key must be free. */
static int check_free(const char *what, char opt, const struct lx_sysv_perm *p, int id_exists,
		      int key_exists)
{
	if (id_exists)
		return err_set(-EEXIST, "%s id %u is already taken (the original still exists?"
			       " remove it with `ipcrm -%c %u`, or restore into fresh namespaces"
			       " with --pidns)", what, p->id, opt, p->id);
	if (key_exists)
		return err_set(-EEXIST, "%s id %u: key %#x is already used by another object (the"
			       " original still exists? `ipcrm -%c %#x`, or restore into fresh"
			       " namespaces with --pidns)", what, p->id, p->key,
			       opt == 'm' ? 'M' : opt == 's' ? 'S' : 'Q', p->key);
	return 0;
}

/* The kernel takes the next free id at or above the one asked for */
static int check_created(const char *what, const struct lx_sysv_perm *p, int id, int err)
{
	if (id < 0)
		return err_sys(-err, "%s id %u: create", what, p->id);
	if (id != (int)p->id)
		return err_set(-EEXIST, "%s id %u: the kernel gave id %d instead (another object"
			       " was created meanwhile?)", what, p->id, id);
	return 0;
}

static int check_data(const char *what, uint32_t id, uint64_t off, uint64_t len, uint64_t blen)
{
	if (off % 8 || !lx_range_ok(off, len, blen))
		return err_set(-EINVAL, "image: %s id %u: contents outside the fddata section",
			       what, id);
	return 0;
}

struct ipc_img {
	struct lx_sysv_shm *shm;
	struct lx_sysv_sem *sem;
	struct lx_sysv_msg *msg;
	size_t nshm, nsem, nmsg;
	const uint8_t *blob;
	uint64_t blen;
};

static void ipc_img_free(struct ipc_img *ii)
{
	free(ii->shm);
	free(ii->sem);
	free(ii->msg);
}

static int load_one(const struct img *im, uint32_t type, size_t want, void **out, size_t *n)
{
	int e = img_records(im, type, LX_TASK_GLOBAL, want, want, out, n);

	if (e == -ENOENT) {
		*out = NULL;
		*n = 0;
		return 0;
	}
	if (e)
		return err_ctx(e, "image %s: %s", im->path, lx_section_name(type));
	return 0;
}

/* Every record checked before anything is created */
static int ipc_load(const struct img *im, struct ipc_img *ii)
{
	const void *blob = NULL;
	uint32_t rs;
	int e;

	memset(ii, 0, sizeof(*ii));
	if (img_find(im, LX_SEC_FDDATA, LX_TASK_GLOBAL, &blob, &ii->blen, &rs))
		ii->blen = 0;
	ii->blob = blob;
	e = load_one(im, LX_SEC_SYSV_SHM, sizeof(*ii->shm), (void **)&ii->shm, &ii->nshm);
	if (!e)
		e = load_one(im, LX_SEC_SYSV_SEM, sizeof(*ii->sem), (void **)&ii->sem, &ii->nsem);
	if (!e)
		e = load_one(im, LX_SEC_SYSV_MSG, sizeof(*ii->msg), (void **)&ii->msg, &ii->nmsg);
	for (size_t i = 0; i < ii->nshm && !e; i++) {
		const struct lx_sysv_shm *s = &ii->shm[i];

		e = check_data("SysV shm segment", s->perm.id, s->data_off, s->data_len, ii->blen);
		if (!e && (s->data_len > s->size || !s->size || s->size > (1ull << 40)))
			e = err_set(-EINVAL, "image: SysV shm segment id %u: bad size", s->perm.id);
	}
	for (size_t i = 0; i < ii->nsem && !e; i++) {
		const struct lx_sysv_sem *s = &ii->sem[i];

		e = check_data("SysV semaphore set", s->perm.id, s->data_off, s->data_len, ii->blen);
		if (!e && (!s->nsems || s->nsems > 65536 || s->data_len != (uint64_t)s->nsems * 4))
			e = err_set(-EINVAL, "image: SysV semaphore set id %u: bad size",
				    s->perm.id);
	}
	for (size_t i = 0; i < ii->nmsg && !e; i++) {
		const struct lx_sysv_msg *q = &ii->msg[i];
		uint64_t at = 0;

		e = check_data("SysV message queue", q->perm.id, q->data_off, q->data_len,
			       ii->blen);
		for (uint32_t k = 0; k < q->qnum && !e; k++) {
			uint64_t hdr[2];

			if (!lx_range_ok(at, 16, q->data_len)) {
				e = -EINVAL;
				break;
			}
			memcpy(hdr, ii->blob + q->data_off + at, 16);
			if ((int64_t)hdr[0] <= 0 || !lx_range_ok(at + 16, (hdr[1] + 7) & ~7ull,
								 q->data_len))
				e = -EINVAL;
			at += 16 + ((hdr[1] + 7) & ~7ull);
		}
		if (e || at != q->data_len)
			e = err_set(-EINVAL, "image: SysV message queue id %u: malformed messages",
				    q->perm.id);
	}
	if (e)
		ipc_img_free(ii);
	return e;
}

int ipc_present(const struct img *im)
{
	const void *d;
	uint64_t len;
	uint32_t rs;

	return !img_find(im, LX_SEC_SYSV_SHM, LX_TASK_GLOBAL, &d, &len, &rs) ||
	       !img_find(im, LX_SEC_SYSV_SEM, LX_TASK_GLOBAL, &d, &len, &rs) ||
	       !img_find(im, LX_SEC_SYSV_MSG, LX_TASK_GLOBAL, &d, &len, &rs);
}

static int restore_shm(const struct ipc_img *ii, const struct lx_sysv_shm *s)
{
	const char *what = "SysV shm segment";
	struct shmid_ds ds;
	int e, id;
	void *at;

	e = check_free(what, 'm', &s->perm, shmctl((int)s->perm.id, IPC_STAT, &ds) == 0 ||
		       errno == EACCES, s->perm.key && shmget((key_t)s->perm.key, 0, 0) >= 0);
	if (!e)
		e = set_next_id("shm", (int)s->perm.id);
	if (e)
		return e;
	id = shmget((key_t)s->perm.key, s->size, IPC_CREAT | IPC_EXCL | 0600);
	if (id >= 0 && remember('m', id, id == (int)s->perm.id && (s->perm.mode & SHM_DEST)))
		return -ENOMEM;
	e = check_created(what, &s->perm, id, errno);
	if (e)
		return e;
	at = shmat(id, NULL, 0);
	if (at == (void *)-1)
		return err_sys(-errno, "%s id %d: attach to fill it", what, id);
	memcpy(at, ii->blob + s->data_off, s->data_len);
	shmdt(at);
	memset(&ds, 0, sizeof(ds));
	ds.shm_perm.uid = s->perm.uid;
	ds.shm_perm.gid = s->perm.gid;
	ds.shm_perm.mode = s->perm.mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0)
		return err_sys(-errno, "%s id %d: set owner and mode", what, id);
	if ((s->perm.mode & SHM_LOCKED) && shmctl(id, SHM_LOCK, NULL) < 0)
		warn("%s id %d: was locked in memory (SHM_LOCK), now is not: %s", what, id,
		     strerror(errno));
	return 0;
}

static int restore_sem(const struct ipc_img *ii, const struct lx_sysv_sem *s)
{
	const char *what = "SysV semaphore set";
	unsigned short *vals;
	struct semid_ds ds;
	int e, id;

	e = check_free(what, 's', &s->perm, semctl((int)s->perm.id, 0, IPC_STAT, &ds) == 0 ||
		       errno == EACCES, s->perm.key && semget((key_t)s->perm.key, 0, 0) >= 0);
	if (!e)
		e = set_next_id("sem", (int)s->perm.id);
	if (e)
		return e;
	id = semget((key_t)s->perm.key, (int)s->nsems, IPC_CREAT | IPC_EXCL | 0600);
	if (id >= 0 && remember('s', id, 0))
		return -ENOMEM;
	e = check_created(what, &s->perm, id, errno);
	if (e)
		return e;
	vals = calloc(s->nsems, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t k = 0; k < s->nsems; k++) {
		uint32_t v;

		memcpy(&v, ii->blob + s->data_off + 4 * k, 4);
		vals[k] = (unsigned short)lx_le32_to_cpu(v);
	}
	if (semctl(id, 0, SETALL, vals) < 0)
		e = err_sys(-errno, "%s id %d: set its values", what, id);
	free(vals);
	if (e)
		return e;
	memset(&ds, 0, sizeof(ds));
	ds.sem_perm.uid = s->perm.uid;
	ds.sem_perm.gid = s->perm.gid;
	ds.sem_perm.mode = s->perm.mode & 0777;
	if (semctl(id, 0, IPC_SET, &ds) < 0)
		return err_sys(-errno, "%s id %d: set owner and mode", what, id);
	return 0;
}

static int restore_msg(const struct ipc_img *ii, const struct lx_sysv_msg *q)
{
	const char *what = "SysV message queue";
	struct msqid_ds ds;
	struct { long mtype; char text[]; } *m = NULL;
	uint64_t at = 0;
	int e, id;

	e = check_free(what, 'q', &q->perm, msgctl((int)q->perm.id, IPC_STAT, &ds) == 0 ||
		       errno == EACCES, q->perm.key && msgget((key_t)q->perm.key, 0) >= 0);
	if (!e)
		e = set_next_id("msg", (int)q->perm.id);
	if (e)
		return e;
	id = msgget((key_t)q->perm.key, IPC_CREAT | IPC_EXCL | 0600);
	if (id >= 0 && remember('q', id, 0))
		return -ENOMEM;
	e = check_created(what, &q->perm, id, errno);
	if (e)
		return e;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return err_sys(-errno, "%s id %d: stat", what, id);
	ds.msg_perm.uid = q->perm.uid;
	ds.msg_perm.gid = q->perm.gid;
	ds.msg_perm.mode = q->perm.mode & 0777;
	if (q->qbytes) {
		msglen_t want = (msglen_t)q->qbytes;

		ds.msg_qbytes = want;
		if (msgctl(id, IPC_SET, &ds) < 0 && errno == EPERM) {
			/* above msgmnb needs CAP_SYS_RESOURCE: keep the
			 * default, the messages may still fit */
			if (msgctl(id, IPC_STAT, &ds) == 0)
				warn("%s id %d: capacity %lu bytes kept (%lu needs"
				     " CAP_SYS_RESOURCE)", what, id, (unsigned long)ds.msg_qbytes,
				     (unsigned long)want);
			ds.msg_perm.uid = q->perm.uid;
			ds.msg_perm.gid = q->perm.gid;
			ds.msg_perm.mode = q->perm.mode & 0777;
		}
	}
	for (uint32_t k = 0; k < q->qnum && !e; k++) {
		uint64_t hdr[2];
		void *nm;

		memcpy(hdr, ii->blob + q->data_off + at, 16);
		nm = realloc(m, sizeof(long) + hdr[1] + 1);
		if (!nm) {
			e = -ENOMEM;
			break;
		}
		m = nm;
		m->mtype = (long)hdr[0];
		memcpy(m->text, ii->blob + q->data_off + at + 16, hdr[1]);
		if (msgsnd(id, m, hdr[1], IPC_NOWAIT) < 0)
			e = err_sys(-errno, "%s id %d: queue message %u of %u (%lu bytes)", what, id,
				    k + 1, q->qnum, (unsigned long)hdr[1]);
		at += 16 + ((hdr[1] + 7) & ~7ull);
	}
	free(m);
	/* the owner last: the messages went in as cryo */
	if (!e && msgctl(id, IPC_SET, &ds) < 0)
		e = err_sys(-errno, "%s id %d: set owner and mode", what, id);
	return e;
}

int ipc_restore(const struct img *im)
{
	struct ipc_img ii;
	int e = ipc_load(im, &ii);

	if (e)
		return e;
	for (size_t i = 0; i < ii.nshm && !e; i++)
		e = restore_shm(&ii, &ii.shm[i]);
	for (size_t i = 0; i < ii.nsem && !e; i++)
		e = restore_sem(&ii, &ii.sem[i]);
	for (size_t i = 0; i < ii.nmsg && !e; i++)
		e = restore_msg(&ii, &ii.msg[i]);
	ipc_img_free(&ii);
	if (e)
		ipc_restore_abort();
	return e;
}

/* Every task attached its segments: the ones removed before the dump go
 * away again once the last task detaches */
int ipc_restore_finish(void)
{
	int e = 0;

	for (size_t i = 0; i < nmade && !e; i++)
		if (made[i].kind == 'm' && made[i].rmid && shmctl(made[i].id, IPC_RMID, NULL) < 0)
			e = err_sys(-errno, "SysV shm segment id %d: mark for removal", made[i].id);
	free(made);
	made = NULL;
	nmade = 0;
	return e;
}

void ipc_restore_abort(void)
{
	for (size_t i = 0; i < nmade; i++) {
		if (made[i].kind == 'm')
			shmctl(made[i].id, IPC_RMID, NULL);
		else if (made[i].kind == 's')
			semctl(made[i].id, 0, IPC_RMID);
		else
			msgctl(made[i].id, IPC_RMID, NULL);
	}
	free(made);
	made = NULL;
	nmade = 0;
}
