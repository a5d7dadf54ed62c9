/* File locks held by the process: flock(2), POSIX record locks and OFD
 * locks, as /proc/PID/fdinfo lists them for the open file they were taken
 * through. They are taken again after exec, by injection into the
 * restored task, once mm_restore has finished: POSIX locks belong to the
 * process and any close() of the file drops them, including the injected
 * open/close with which file mappings are rebuilt. A lock someone else
 * took meanwhile is an error, never a silently unlocked file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"

int locks_dump(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	const char *p = info;
	int e = 0;

	while (!e && (p = strstr(p, "lock:"))) {
		char kind[16], mode[16], type[16], end[32];
		unsigned long long start;
		struct lx_lock lk;

		if (sscanf(p, "lock: %*d: %15s %15s %15s %*d %*x:%*x:%*u %llu %31s", kind, mode,
			   type, &start, end) != 5)
			return err_set(-EOPNOTSUPP, "pid %d fd %u: unexpected lock line in fdinfo",
				       d->pid, r->fd);
		p += 5;
		memset(&lk, 0, sizeof(lk));
		lk.fd = r->fd;
		if (!strcmp(kind, "FLOCK"))
			lk.kind = LX_LOCK_FLOCK;
		else if (!strcmp(kind, "POSIX"))
			lk.kind = LX_LOCK_POSIX;
		else if (!strcmp(kind, "OFDLCK"))
			lk.kind = LX_LOCK_OFD;
		else
			return err_set(-EOPNOTSUPP, "pid %d fd %u: a %s lock (lease or delegation)"
				       " is not supported", d->pid, r->fd, kind);
		if (strcmp(mode, "ADVISORY"))
			return err_set(-EOPNOTSUPP, "pid %d fd %u: a %s lock is not supported",
				       d->pid, r->fd, mode);
		if (!strcmp(type, "READ"))
			lk.type = LX_LOCK_READ;
		else if (!strcmp(type, "WRITE"))
			lk.type = LX_LOCK_WRITE;
		else
			return err_set(-EOPNOTSUPP, "pid %d fd %u: a %s %s lock is not supported",
				       d->pid, r->fd, kind, type);
		lk.start = start;
		if (strcmp(end, "EOF")) {
			unsigned long long last = strtoull(end, NULL, 10);

			if (last < start)
				return err_set(-EOPNOTSUPP, "pid %d fd %u: bad lock range", d->pid,
					       r->fd);
			lk.len = last - start + 1;
		}
		e = recbuf_add(&d->sec[LX_SEC_LOCKS], &lk, sizeof(lk));
	}
	return e;
}

int locks_restore(struct restore_task *t)
{
	struct lx_lock *lk;
	size_t n;
	int e = img_records(t->im, LX_SEC_LOCKS, t->index, sizeof(*lk), sizeof(*lk),
			    (void **)&lk, &n);

	if (e == -ENOENT)
		return 0;
	if (e)
		return err_ctx(e, "image: task %u: locks", t->index);
	for (size_t k = 0; k < n && !e; k++) {
		static const char *const kinds[] = { "?", "flock", "POSIX", "OFD" };
		const char *kn = lk[k].kind <= LX_LOCK_OFD ? kinds[lk[k].kind] : "?";
		int wr = lk[k].type == LX_LOCK_WRITE;
		long ret;

		if (lk[k].kind == LX_LOCK_FLOCK) {
			e = inj_syscall(&t->inj, SYS_flock, lk[k].fd, (wr ? LOCK_EX : LOCK_SH) | LOCK_NB,
					0, 0, 0, 0, &ret);
		} else if (lk[k].kind == LX_LOCK_POSIX || lk[k].kind == LX_LOCK_OFD) {
			struct flock fl;
			uint64_t addr;

			memset(&fl, 0, sizeof(fl));
			fl.l_type = wr ? F_WRLCK : F_RDLCK;
			fl.l_whence = SEEK_SET;
			fl.l_start = (off_t)lk[k].start;
			fl.l_len = (off_t)lk[k].len;
			e = restore_put(t, 0, &fl, sizeof(fl), &addr);
			if (!e)
				e = inj_syscall(&t->inj, SYS_fcntl, lk[k].fd,
						lk[k].kind == LX_LOCK_POSIX ? F_SETLK : F_OFD_SETLK,
						addr, 0, 0, 0, &ret);
		} else {
			e = err_set(-EINVAL, "image: task %u: bad lock record", t->index);
			break;
		}
		if (e)
			break;
		if (ret == -EAGAIN || ret == -EACCES || ret == -EWOULDBLOCK)
			e = err_set(-EBUSY, "pid %d fd %u: its %s %s lock on bytes %llu+%llu is held"
				    " by another process now", t->pid, lk[k].fd, kn,
				    wr ? "write" : "read", (unsigned long long)lk[k].start,
				    (unsigned long long)lk[k].len);
		else if (ret < 0 && ret > -4096)
			e = err_sys((int)ret, "pid %d fd %u: take its %s lock again", t->pid,
				    lk[k].fd, kn);
	}
	free(lk);
	return e;
}
