/* timerfd: clock, time to the next expiry, interval, and expirations not
 * yet read, all from fdinfo. The timer is created before exec but armed
 * after it, as late as possible, so the time spent restoring is not taken
 * from it: a relative timer fires its remaining time after the restore
 * (like a relative sleep), an absolute one at its absolute time. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fds.h"
#include "timens.h"

#define TFD_TIMER_ABSTIME 1
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)	/* CONFIG_CHECKPOINT_RESTORE */

static int parse_pair(const char *info, const char *key, uint64_t *ns)
{
	const char *p = strstr(info, key);
	unsigned long long s, n;

	if (!p || sscanf(p + strlen(key), " (%llu, %llu)", &s, &n) != 2)
		return -ENOENT;
	*ns = s * 1000000000ull + n;
	return 0;
}

int timerfd_dump(struct fd_dump *d, struct lx_fd *r, const char *info)
{
	struct lx_timerfd tf;
	struct timespec now;
	uint64_t v;

	memset(&tf, 0, sizeof(tf));
	tf.fd = r->fd;
	if (fdinfo_u64(info, "clockid:", 10, &v))
		goto bad;
	tf.clockid = (uint32_t)v;
	if (fdinfo_u64(info, "ticks:", 10, &tf.ticks) ||
	    fdinfo_u64(info, "settime flags:", 8, &v) ||
	    parse_pair(info, "it_value:", &tf.value_ns) ||
	    parse_pair(info, "it_interval:", &tf.interval_ns))
		goto bad;
	tf.settime_flags = (uint32_t)v;
	/* as the tree sees it, for an absolute expiry on its clock */
	if (clock_gettime((clockid_t)tf.clockid, &now) == 0)
		timens_clock_of(d->pid, (clockid_t)tf.clockid, &tf.now_ns);
	r->kind = LX_FD_TIMERFD;
	return recbuf_add(&d->sec[LX_SEC_TIMERFDS], &tf, sizeof(tf));
bad:
	return err_set(-EOPNOTSUPP, "pid %d fd %u: timerfd: unexpected fdinfo", d->pid, r->fd);
}

int timerfd_open(struct fd_restore *c, size_t i)
{
	const struct lx_fd *r = &c->fds[i];
	const struct lx_timerfd *tf = fr_rec(c, LX_SEC_TIMERFDS, sizeof(*tf), r->fd);
	int fd;

	if (!tf)
		return -EINVAL;
	fd = (int)syscall(SYS_timerfd_create, (int)tf->clockid, 0);
	if (fd < 0)
		return fr_err(c, -errno, "fd %u: timerfd_create clock %u: %s", r->fd, tf->clockid,
			      strerror(errno));
	return fd;
}

/* After exec, in the restored task: arm, then put back unread ticks
 * (settime clears them). */
int timerfd_restore(struct restore_task *t, const struct lx_fd *fds, size_t n)
{
	struct lx_timerfd *tf;
	size_t nt;
	int e = img_records(t->im, LX_SEC_TIMERFDS, t->index, sizeof(*tf), sizeof(*tf),
			    (void **)&tf, &nt);

	if (e == -ENOENT)
		return 0;
	if (e)
		return err_ctx(e, "image: task %u: timerfds", t->index);
	(void)fds;
	(void)n;
	for (size_t k = 0; k < nt && !e; k++) {
		struct {
			int64_t is, ins, vs, vns;
		} its;
		uint64_t val = tf[k].value_ns, addr;
		char what[96];

		/* it_value 0 with an interval: a periodic timer that expired and
		 * was not read since (the kernel moves it on only when read); its
		 * next expiry is taken one interval from now, its unread tick is
		 * kept below. it_value 0 without interval: disarmed. */
		if (!val)
			val = tf[k].interval_ns;
		if (val && (tf[k].settime_flags & TFD_TIMER_ABSTIME))
			val += tf[k].now_ns;	/* the same absolute expiry */
		if (val) {
			its.is = (int64_t)(tf[k].interval_ns / 1000000000ull);
			its.ins = (int64_t)(tf[k].interval_ns % 1000000000ull);
			its.vs = (int64_t)(val / 1000000000ull);
			its.vns = (int64_t)(val % 1000000000ull);
			snprintf(what, sizeof(what), "fd %u: arm timerfd", tf[k].fd);
			e = restore_put(t, 0, &its, sizeof(its), &addr);
			if (!e)
				e = restore_sys(t, what, SYS_timerfd_settime, tf[k].fd,
						tf[k].settime_flags, addr, 0, 0, 0, NULL);
		}
		if (!e && tf[k].ticks) {
			snprintf(what, sizeof(what), "fd %u: set timerfd ticks", tf[k].fd);
			e = restore_put(t, 0, &tf[k].ticks, sizeof(tf[k].ticks), &addr);
			if (!e)
				e = restore_sys(t, what, SYS_ioctl, tf[k].fd, TFD_IOC_SET_TICKS, addr,
						0, 0, 0, NULL);
		}
	}
	free(tf);
	return e;
}
