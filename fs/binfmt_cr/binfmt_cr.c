// SPDX-License-Identifier: GPL-2.0
/*
 * binfmt_cr - exec handler for cryo checkpoint images.
 *
 * A cryo image starts with the LX_CKPT magic (include/lx_ckpt.h). When one
 * is executed, this handler validates its header and section table with the
 * validator shared with user space, then takes one of two paths:
 *
 *  - not armed (someone ran ./image): hand the image to the user-space
 *    restorer, as binfmt_misc's 'O' flag does: the restorer (module
 *    parameter "restorer") becomes the program, the image is passed as an
 *    open fd in AT_EXECFD, and argv becomes
 *        restorer --binfmt-exec <image path as exec'd> <original argv...>
 *
 *  - armed (the restorer, while rebuilding one task, wrote "arm N" to
 *    /proc/binfmt_cr/arm and then exec'd the image): run the task's original
 *    executable instead, after checking that it is the same file that was
 *    checkpointed, with the argv recorded in the image; after the binary is
 *    loaded, put back the hidden state user space cannot set itself
 *    (PF_FORKNOEXEC; the arg/env boundaries when they fall in the new stack).
 *
 * Credentials are never raised: a setuid/setgid/file-capability binary is
 * refused unless it cannot raise anything for this caller, and the restorer
 * must carry none of those at all. See README.md next to this file.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/binfmts.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/elf.h>
#include <linux/crc32.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hash.h>
#include <linux/hashtable.h>
#include <linux/init.h>
#include <linux/kdev_t.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mount.h>
#include <linux/proc_fs.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/stat.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/xattr.h>

#include "lx_ckpt.h"

static_assert(BINPRM_BUF_SIZE >= LX_CKPT_HEADER_SIZE);

/* Upper bounds on what the kernel reads from an image. */
#define CR_TABLE_MAX	(4u << 20)	/* section table bytes */
#define CR_SECTION_MAX	(4u << 20)	/* one section read by the kernel */
#define CR_ARGV_MAX	(1u << 20)	/* LX_SEC_ARGV bytes */
#define CR_RESTORER_MAX	256		/* restorer path, with its NUL */
#define CR_BINFMT_ARG	"--binfmt-exec"

/* ---- parameters ---- */

static bool enabled = true;
module_param(enabled, bool, 0644);
MODULE_PARM_DESC(enabled, "Handle LX_CKPT images (default: 1)");

static char restorer[CR_RESTORER_MAX] = "/usr/local/bin/cryo";
static DEFINE_SPINLOCK(restorer_lock);

static int restorer_set(const char *val, const struct kernel_param *kp)
{
	size_t len = strcspn(val, "\n");

	/* an absolute path, one line, no trailing garbage after a newline */
	if (len == 0 || len >= CR_RESTORER_MAX || val[0] != '/' ||
	    (val[len] == '\n' && val[len + 1] != '\0'))
		return -EINVAL;
	spin_lock(&restorer_lock);
	memcpy(restorer, val, len);
	restorer[len] = '\0';
	spin_unlock(&restorer_lock);
	return 0;
}

static int restorer_get(char *buf, const struct kernel_param *kp)
{
	int n;

	spin_lock(&restorer_lock);
	n = scnprintf(buf, PAGE_SIZE, "%s\n", restorer);
	spin_unlock(&restorer_lock);
	return n;
}

static const struct kernel_param_ops restorer_ops = {
	.set = restorer_set,
	.get = restorer_get,
};
module_param_cb(restorer, &restorer_ops, NULL, 0644);
MODULE_PARM_DESC(restorer, "User-space restorer for unarmed execs (default: /usr/local/bin/cryo)");

/* ---- counters (/proc/binfmt_cr/status) ---- */

static struct {
	atomic_long_t handoffs;		/* unarmed: handed to the restorer */
	atomic_long_t restores;		/* armed: handed to the original exe */
	atomic_long_t completed;	/* armed execs that reached the probe */
	atomic_long_t refusals;		/* any image exec we refused */
	atomic_long_t forknoexec;	/* PF_FORKNOEXEC set again */
	atomic_long_t mm_set;		/* arg/env boundaries set */
	atomic_long_t mm_left;		/* arg/env boundaries left alone */
} cr_stat;

#define cr_count(f) atomic_long_inc(&cr_stat.f)

/*
 * ---- per-task records ----
 *
 * One record per task at most, keyed by the task_struct (whose reference we
 * hold). CR_ARMED: written by /proc/binfmt_cr/arm, consumed by the task's
 * next exec of an image. CR_PENDING: load_binary handed the exec to the
 * original executable (exe, referenced so the pointer stays unique) and
 * left the state for the sched_process_exec probe. Records go away in the
 * exec probe (any successful exec), the exit probe, a later exec that finds
 * a stale one, "disarm", or module unload.
 *
 */
enum cr_state { CR_ARMED = 1, CR_PENDING };

struct cr_task {
	struct hlist_node node;
	struct task_struct *task;
	enum cr_state state;
	u32 index;			/* task index inside the image */
	struct file *exe;		/* CR_PENDING: the binary exec'd */
	bool forknoexec;
	bool have_mm;
	unsigned long arg_start, arg_end, env_start, env_end;
};

#define CR_HASH_BITS 6
static DEFINE_HASHTABLE(cr_tasks, CR_HASH_BITS);
static DEFINE_SPINLOCK(cr_lock);
static atomic_t cr_nr_tasks = ATOMIC_INIT(0);

static struct cr_task *cr_find_locked(struct task_struct *t)
{
	struct cr_task *ct;

	hash_for_each_possible(cr_tasks, ct, node, hash_ptr(t, CR_HASH_BITS))
		if (ct->task == t)
			return ct;
	return NULL;
}

static void cr_unlink_locked(struct cr_task *ct)
{
	hash_del(&ct->node);
	atomic_dec(&cr_nr_tasks);
}

/*
 * Safe in atomic context: the task reference we drop is never the last one
 * while the task runs (the probes run in the task itself), and fput()
 * defers the final release.
 */
static void cr_task_free(struct cr_task *ct)
{
	if (!ct)
		return;
	if (ct->exe)
		fput(ct->exe);
	put_task_struct(ct->task);
	kfree(ct);
}

/* Remove and return t's record, if any. */
static struct cr_task *cr_take(struct task_struct *t)
{
	struct cr_task *ct;

	if (likely(!atomic_read(&cr_nr_tasks)))
		return NULL;
	spin_lock(&cr_lock);
	ct = cr_find_locked(t);
	if (ct)
		cr_unlink_locked(ct);
	spin_unlock(&cr_lock);
	return ct;
}

/* Insert ct for its task; returns the record it replaces (to free). */
static struct cr_task *cr_insert(struct cr_task *ct)
{
	struct cr_task *old;

	spin_lock(&cr_lock);
	old = cr_find_locked(ct->task);
	if (old)
		cr_unlink_locked(old);
	hash_add(cr_tasks, &ct->node, hash_ptr(ct->task, CR_HASH_BITS));
	atomic_inc(&cr_nr_tasks);
	spin_unlock(&cr_lock);
	return old;
}

enum cr_claim { CR_NONE, CR_GOT_ARM, CR_NESTED };

/*
 * At the start of every load_binary call: sort out current's record.
 * Returns CR_GOT_ARM with *out set when an arm is consumed by this image,
 * CR_NESTED when this call is the second level of our own armed exec (the
 * original executable being probed), CR_NONE otherwise. A CR_PENDING record
 * from an exec that failed after our handoff is stale and dropped here.
 */
static enum cr_claim cr_claim(struct linux_binprm *bprm, bool is_image,
			      struct cr_task **out)
{
	struct cr_task *ct, *stale = NULL;
	enum cr_claim ret = CR_NONE;

	*out = NULL;
	if (likely(!atomic_read(&cr_nr_tasks)))
		return CR_NONE;
	spin_lock(&cr_lock);
	ct = cr_find_locked(current);
	if (!ct) {
		ret = CR_NONE;
	} else if (ct->state == CR_PENDING) {
		if (ct->exe == bprm->file) {
			ret = CR_NESTED;
		} else {
			cr_unlink_locked(ct);
			stale = ct;
		}
	} else if (is_image) {
		cr_unlink_locked(ct);
		*out = ct;
		ret = CR_GOT_ARM;
	}
	spin_unlock(&cr_lock);
	cr_task_free(stale);
	return ret;
}

/* ---- reading the image ---- */

struct cr_img {
	struct file *file;
	const char *name;		/* as exec'd, for messages */
	u64 size;
	struct lx_ckpt_header hdr;
	u8 *table;
	u32 nsec, entsz;
	u8 *chunk;			/* PAGE_SIZE bounce buffer */
};

#define cr_refuse(img, fmt, ...)					\
	do {								\
		cr_count(refusals);					\
		pr_info_ratelimited("%s[%d]: %s: " fmt "\n",		\
				    current->comm, task_pid_nr(current),\
				    (img)->name, ##__VA_ARGS__);	\
	} while (0)

/* Read exactly len bytes at pos; -EIO on a short file. */
static int cr_read_exact(struct file *file, void *buf, size_t len, loff_t pos)
{
	while (len) {
		ssize_t n = kernel_read(file, buf, len, &pos);

		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * lx_crc32c() chains like the kernel's CRC32C with inverted seed and
 * result; __crc32c_le() is the fast table-driven one (checked at init).
 */
static u32 cr_crc32c(u32 crc, const void *buf, size_t len)
{
	return ~__crc32c_le(~crc, buf, len);
}

static const struct lx_ckpt_section *cr_sec(const struct cr_img *img, u32 i)
{
	return (const struct lx_ckpt_section *)(img->table + (size_t)i * img->entsz);
}

/* First section of (type, task), or NULL; *index gets its table index. */
static const struct lx_ckpt_section *cr_find(const struct cr_img *img,
					     u32 type, u32 task, u32 *index)
{
	u32 i;

	for (i = 0; i < img->nsec; i++) {
		const struct lx_ckpt_section *s = cr_sec(img, i);

		if (lx_le32_to_cpu(s->type) == type &&
		    lx_le32_to_cpu(s->task) == task) {
			*index = i;
			return s;
		}
	}
	return NULL;
}

/*
 * Read bytes [off, off + len) of section s into out (zero-filling what lies
 * past the section's end), while checking the CRC of the whole section.
 * The table was validated, so the section lies inside the file; the file
 * may still have changed since (it is not write-denied once handed on, and
 * remote file systems do what they like), hence the CRC and the cap.
 */
static int cr_read_section(struct cr_img *img,
			   const struct lx_ckpt_section *s, u32 index,
			   u64 off, void *out, u64 len)
{
	u64 sec_off = lx_le64_to_cpu(s->offset);
	u64 sec_len = lx_le64_to_cpu(s->length);
	u32 type = lx_le32_to_cpu(s->type);
	u64 pos;
	u32 crc = 0;
	int ret;

	if (sec_len > CR_SECTION_MAX) {
		cr_refuse(img, "section %u (%s) is %llu bytes, more than the kernel reads (%u)",
			  index, lx_section_name(type), sec_len, CR_SECTION_MAX);
		return -ENOEXEC;
	}
	memset(out, 0, len);
	for (pos = 0; pos < sec_len; pos += PAGE_SIZE) {
		size_t n = min_t(u64, PAGE_SIZE, sec_len - pos);
		u64 lo, hi;

		ret = cr_read_exact(img->file, img->chunk, n, sec_off + pos);
		if (ret) {
			cr_refuse(img, "section %u (%s): read error %d",
				  index, lx_section_name(type), ret);
			return -ENOEXEC;
		}
		crc = cr_crc32c(crc, img->chunk, n);
		/* copy the overlap of [pos, pos + n) and [off, off + len) */
		lo = max(pos, off);
		hi = min(pos + n, len > U64_MAX - off ? U64_MAX : off + len);
		if (lo < hi)
			memcpy((u8 *)out + (lo - off), img->chunk + (lo - pos),
			       hi - lo);
	}
	if (crc != lx_le32_to_cpu(s->crc)) {
		cr_refuse(img, "section %u (%s) at offset %llu: checksum mismatch",
			  index, lx_section_name(type), sec_off);
		return -ENOEXEC;
	}
	return 0;
}

/*
 * Record idx of a record section, as the ABI says: min(record_size, want)
 * bytes copied, the rest of out zeroed. need: the bytes the caller uses.
 * Returns 0, -ENOENT if the section is absent, -ENOEXEC (logged) if bad.
 */
static int cr_read_record(struct cr_img *img, u32 type, u32 task, u32 idx,
			  void *out, size_t want, size_t need)
{
	const struct lx_ckpt_section *s;
	u32 index, rs;
	u64 count;

	s = cr_find(img, type, task, &index);
	if (!s)
		return -ENOENT;
	rs = lx_le32_to_cpu(s->record_size);
	if (rs < need) {
		cr_refuse(img, "section %u (%s): record size %u, need %zu",
			  index, lx_section_name(type), rs, need);
		return -ENOEXEC;
	}
	count = lx_le64_to_cpu(s->length) / rs;
	if (idx >= count) {
		cr_refuse(img, "section %u (%s): no record %u (%llu records)",
			  index, lx_section_name(type), idx, count);
		return -ENOEXEC;
	}
	memset(out, 0, want);
	return cr_read_section(img, s, index, (u64)idx * rs, out,
			       min_t(size_t, want, rs));
}

/* Validate header and table with the shared validator (logged on error). */
static int cr_img_open(struct cr_img *img, struct linux_binprm *bprm)
{
	u32 bad = 0;
	u64 table_len;
	int err;

	img->file = bprm->file;
	img->name = bprm->filename;
	img->size = i_size_read(file_inode(bprm->file));
	/* bprm->buf: the first bytes, read while the file was write-denied */
	err = lx_ckpt_validate_header(bprm->buf, BINPRM_BUF_SIZE, img->size);
	if (err) {
		cr_refuse(img, "bad header: %s", lx_ckpt_strerror(err));
		return -ENOEXEC;
	}
	memcpy(&img->hdr, bprm->buf, sizeof(img->hdr));
	img->nsec = lx_le32_to_cpu(img->hdr.section_count);
	img->entsz = lx_le32_to_cpu(img->hdr.section_entry_size);
	table_len = (u64)img->nsec * img->entsz;
	if (table_len > CR_TABLE_MAX) {
		cr_refuse(img, "section table of %llu bytes, more than the kernel reads (%u)",
			  table_len, CR_TABLE_MAX);
		return -ENOEXEC;
	}
	img->table = kvmalloc(table_len, GFP_KERNEL);
	img->chunk = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!img->table || !img->chunk)
		return -ENOMEM;
	err = cr_read_exact(img->file, img->table, table_len,
			    lx_le64_to_cpu(img->hdr.section_table_offset));
	if (err) {
		cr_refuse(img, "section table: read error %d", err);
		return -ENOEXEC;
	}
	err = lx_ckpt_validate_table(&img->hdr, img->table, table_len,
				     img->size, &bad);
	if (err) {
		if (err == -LX_E_TABLE_CRC || err == -LX_E_TABLE_BOUNDS)
			cr_refuse(img, "bad section table: %s",
				  lx_ckpt_strerror(err));
		else
			cr_refuse(img, "bad section table: section %u: %s",
				  bad, lx_ckpt_strerror(err));
		return -ENOEXEC;
	}
	return 0;
}

static void cr_img_close(struct cr_img *img)
{
	kvfree(img->table);
	kfree(img->chunk);
}

/* ---- no credential elevation ---- */

static void cr_release_exec(struct file *file)
{
	/* undo open_exec(): it denied write access */
#ifdef FMODE_FSNOTIFY_HSM
	exe_file_allow_write_access(file);
#else
	allow_write_access(file);
#endif
	fput(file);
}

/*
 * Credentials are computed from the final binary once we hand on. Refuse a
 * binary that would change them: setuid/setgid not to the caller's own
 * effective ids, or file capabilities the caller does not already hold.
 * With strict (the restorer), any such bit refuses. The kernel ignores all
 * of these under no_new_privs and on nosuid mounts, so those pass.
 */
static int cr_check_creds(struct cr_img *img, struct file *file,
			  const char *what, const char *path, bool strict)
{
	struct inode *inode = file_inode(file);
	struct user_namespace *mnt_userns = file_mnt_user_ns(file);
	const struct cred *cred = current_cred();
	umode_t mode = inode->i_mode;
	ssize_t caps;

	if (!strict && (task_no_new_privs(current) ||
			(file->f_path.mnt->mnt_flags & MNT_NOSUID)))
		return 0;
	if ((mode & S_ISUID) &&
	    (strict || !vfsuid_eq_kuid(i_uid_into_vfsuid(mnt_userns, inode),
				       cred->euid))) {
		cr_refuse(img, "refusing setuid %s %s", what, path);
		return -EPERM;
	}
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
	    (strict || !vfsgid_eq_kgid(i_gid_into_vfsgid(mnt_userns, inode),
				       cred->egid))) {
		cr_refuse(img, "refusing setgid %s %s", what, path);
		return -EPERM;
	}
	caps = __vfs_getxattr(file->f_path.dentry, inode, XATTR_NAME_CAPS,
			      NULL, 0);
	if (caps == -ENODATA || caps == -EOPNOTSUPP)
		return 0;
	if (caps < 0 || strict ||
	    !cap_issubset(CAP_FULL_SET, cred->cap_permitted)) {
		cr_refuse(img, "refusing %s %s with file capabilities (%zd)",
			  what, path, caps);
		return -EPERM;
	}
	return 0;
}

/* ---- unarmed: hand the image to the user-space restorer ---- */

static int cr_handoff(struct linux_binprm *bprm, struct cr_img *img)
{
	struct file *file;
	char *path;
	int ret;

	path = kmalloc(CR_RESTORER_MAX, GFP_KERNEL);
	if (!path)
		return -ENOMEM;
	spin_lock(&restorer_lock);
	strscpy(path, restorer, CR_RESTORER_MAX);
	spin_unlock(&restorer_lock);

	file = open_exec(path);
	if (IS_ERR(file)) {
		/*
		 * -ENOEXEC: a shell then runs the image's prelude line,
		 * which looks for cryo in $PATH
		 */
		cr_refuse(img, "cannot open restorer %s: error %ld", path,
			  PTR_ERR(file));
		ret = -ENOEXEC;
		goto out;
	}
	ret = cr_check_creds(img, file, "restorer", path, true);
	if (ret)
		goto out_file;

	/*
	 * argv = { restorer, "--binfmt-exec", image path, original argv... }
	 * Strings go below the existing ones, so push them last first.
	 */
	ret = copy_string_kernel(bprm->interp, bprm);
	if (ret < 0)
		goto out_file;
	bprm->argc++;
	ret = copy_string_kernel(CR_BINFMT_ARG, bprm);
	if (ret < 0)
		goto out_file;
	bprm->argc++;
	ret = copy_string_kernel(path, bprm);
	if (ret < 0)
		goto out_file;
	bprm->argc++;
	ret = bprm_change_interp(path, bprm);
	if (ret < 0)
		goto out_file;

	would_dump(bprm, bprm->file);
	would_dump(bprm, file);
	bprm->interpreter = file;
	bprm->have_execfd = 1;
	cr_count(handoffs);
	ret = 0;
	goto out;

out_file:
	cr_release_exec(file);
out:
	kfree(path);
	return ret;
}

/* ---- armed: run the task's original executable ---- */

struct cr_exe {
	char *path;
	u64 dev, ino, size, mtime_ns;
};

/* The root task's executable, named by the header. */
static int cr_exe_from_header(struct cr_img *img, struct cr_exe *exe)
{
	const struct lx_ckpt_header *h = &img->hdr;
	u32 len = lx_le32_to_cpu(h->exe_path_len);	/* validated: 1..4095 */
	int ret;

	exe->path = kmalloc(len + 1, GFP_KERNEL);
	if (!exe->path)
		return -ENOMEM;
	ret = cr_read_exact(img->file, exe->path, len,
			    lx_le64_to_cpu(h->exe_path_offset));
	if (ret) {
		cr_refuse(img, "executable path: read error %d", ret);
		return -ENOEXEC;
	}
	exe->path[len] = '\0';
	if (strlen(exe->path) != len) {
		cr_refuse(img, "executable path contains a NUL byte");
		return -ENOEXEC;
	}
	exe->dev = lx_le64_to_cpu(h->exe_dev);
	exe->ino = lx_le64_to_cpu(h->exe_ino);
	exe->size = lx_le64_to_cpu(h->exe_size);
	exe->mtime_ns = lx_le64_to_cpu(h->exe_mtime_ns);
	return 0;
}

/* A non-root task's executable, named by its LX_SEC_CORE record. */
static int cr_exe_from_core(struct cr_img *img, u32 task,
			    const struct lx_core *core, struct cr_exe *exe)
{
	const struct lx_ckpt_section *s;
	u32 off = lx_le32_to_cpu(core->exe_off);
	u32 index;
	u64 len;
	int ret;

	s = cr_find(img, LX_SEC_STRTAB, task, &index);
	if (!s) {
		cr_refuse(img, "task %u: no string table for its executable",
			  task);
		return -ENOEXEC;
	}
	len = lx_le64_to_cpu(s->length);
	if (off >= len) {
		cr_refuse(img, "task %u: executable name outside its string table",
			  task);
		return -ENOEXEC;
	}
	len = min_t(u64, len - off, LX_CKPT_PATH_MAX);
	exe->path = kmalloc(len, GFP_KERNEL);
	if (!exe->path)
		return -ENOMEM;
	ret = cr_read_section(img, s, index, off, exe->path, len);
	if (ret)
		return ret;
	if (strnlen(exe->path, len) == len) {
		cr_refuse(img, "task %u: executable name not terminated", task);
		return -ENOEXEC;
	}
	exe->dev = lx_le64_to_cpu(core->exe_dev);
	exe->ino = lx_le64_to_cpu(core->exe_ino);
	exe->size = lx_le64_to_cpu(core->exe_size);
	exe->mtime_ns = lx_le64_to_cpu(core->exe_mtime_ns);
	return 0;
}

/* Is the opened file the one that was checkpointed? */
static int cr_check_identity(struct cr_img *img, struct file *file,
			     const struct cr_exe *exe)
{
	struct kstat st;
	u64 mtime_ns;
	int ret;

	ret = vfs_getattr(&file->f_path, &st, STATX_BASIC_STATS,
			  AT_STATX_SYNC_AS_STAT);
	if (ret) {
		cr_refuse(img, "cannot stat %s: error %d", exe->path, ret);
		return -ENOEXEC;
	}
	mtime_ns = (u64)st.mtime.tv_sec * NSEC_PER_SEC + st.mtime.tv_nsec;
	if (new_encode_dev(st.dev) != exe->dev || st.ino != exe->ino ||
	    (u64)st.size != exe->size || mtime_ns != exe->mtime_ns) {
		cr_refuse(img, "%s changed since the checkpoint (dev %#x ino %llu size %lld mtime %llu, image says dev %#llx ino %llu size %llu mtime %llu)",
			  exe->path, new_encode_dev(st.dev), st.ino, st.size,
			  mtime_ns, exe->dev, exe->ino, exe->size,
			  exe->mtime_ns);
		return -ENOEXEC;
	}
	return 0;
}

/*
 * The original executable must be an ELF binary, loaded by binfmt_elf at
 * the next level of this exec. That is what /proc/PID/exe names anyway (a
 * script's exe is its interpreter); anything else would add levels between
 * our handoff and the load and break the pairing of load_binary with the
 * exec probe (struct cr_task.exe).
 */
static int cr_check_elf(struct cr_img *img, struct file *file,
			const char *path)
{
	u8 magic[SELFMAG];
	int ret;

	ret = cr_read_exact(file, magic, SELFMAG, 0);
	if (ret || memcmp(magic, ELFMAG, SELFMAG)) {
		cr_refuse(img, "%s is not an ELF executable", path);
		return -ENOEXEC;
	}
	return 0;
}

/*
 * Read and check LX_SEC_ARGV of task: NUL-terminated strings. *argv is
 * NULL when the section is absent or empty (the exec's argv stays).
 */
static int cr_read_argv(struct cr_img *img, u32 task, char **argv,
			size_t *len)
{
	const struct lx_ckpt_section *s;
	u32 index;
	u64 n;
	int ret;

	*argv = NULL;
	*len = 0;
	s = cr_find(img, LX_SEC_ARGV, task, &index);
	if (!s)
		return 0;
	n = lx_le64_to_cpu(s->length);
	if (!n)
		return 0;
	if (n > CR_ARGV_MAX) {
		cr_refuse(img, "task %u: argv of %llu bytes, more than %u",
			  task, n, CR_ARGV_MAX);
		return -ENOEXEC;
	}
	*argv = kvmalloc(n, GFP_KERNEL);
	if (!*argv)
		return -ENOMEM;
	ret = cr_read_section(img, s, index, 0, *argv, n);
	if (ret)
		return ret;
	if ((*argv)[n - 1] != '\0') {
		cr_refuse(img, "task %u: argv not NUL-terminated", task);
		return -ENOEXEC;
	}
	*len = n;
	return 0;
}

/* Replace the exec's argv with the NUL-separated strings in argv[0..len). */
static int cr_set_argv(struct linux_binprm *bprm, const char *argv, size_t len)
{
	size_t end = len - 1, start;
	int ret;

	while (bprm->argc) {
		ret = remove_arg_zero(bprm);
		if (ret)
			return ret;
	}
	/* push the strings last first: each goes below the previous one */
	for (;;) {
		start = end;
		while (start > 0 && argv[start - 1])
			start--;
		ret = copy_string_kernel(argv + start, bprm);
		if (ret < 0)
			return ret;
		bprm->argc++;
		if (start == 0)
			return 0;
		end = start - 1;
	}
}

static int cr_restore(struct linux_binprm *bprm, struct cr_img *img,
		      struct cr_task *ct)
{
	u32 idx = ct->index;
	struct cr_exe exe = { };
	struct lx_task task;
	struct lx_core core;
	struct lx_mm mm;
	struct file *file = NULL;
	char *argv = NULL;
	size_t argv_len = 0;
	bool root, have_core;
	int ret;

	ret = cr_read_record(img, LX_SEC_TASKS, LX_TASK_GLOBAL, idx, &task,
			     sizeof(task), offsetofend(struct lx_task, flags));
	if (ret == -ENOENT) {
		if (idx != 0) {
			cr_refuse(img, "armed for task %u, image has no task table",
				  idx);
			ret = -ENOEXEC;
			goto out;
		}
		root = true;
	} else if (ret) {
		goto out;
	} else {
		root = lx_le32_to_cpu(task.flags) & LX_TASK_ROOT;
	}

	ret = cr_read_record(img, LX_SEC_CORE, idx, 0, &core, sizeof(core),
			     offsetofend(struct lx_core, exe_mtime_ns));
	if (ret && ret != -ENOENT)
		goto out;
	have_core = !ret;

	if (root || (have_core && !lx_le32_to_cpu(core.exe_off))) {
		ret = cr_exe_from_header(img, &exe);
	} else if (have_core) {
		ret = cr_exe_from_core(img, idx, &core, &exe);
	} else {
		cr_refuse(img, "task %u: no core record naming its executable",
			  idx);
		ret = -ENOEXEC;
	}
	if (ret)
		goto out;
	if (exe.path[0] != '/') {
		cr_refuse(img, "executable path is not absolute");
		ret = -ENOEXEC;
		goto out;
	}

	ret = cr_read_record(img, LX_SEC_MM, idx, 0, &mm, sizeof(mm),
			     offsetofend(struct lx_mm, env_end));
	if (ret && ret != -ENOENT)
		goto out;
	ct->have_mm = !ret;
	if (ct->have_mm) {
		ct->arg_start = lx_le64_to_cpu(mm.arg_start);
		ct->arg_end = lx_le64_to_cpu(mm.arg_end);
		ct->env_start = lx_le64_to_cpu(mm.env_start);
		ct->env_end = lx_le64_to_cpu(mm.env_end);
	}
	ct->forknoexec = have_core &&
		(lx_le32_to_cpu(core.flags) & LX_CORE_FORKNOEXEC);

	ret = cr_read_argv(img, idx, &argv, &argv_len);
	if (ret)
		goto out;

	file = open_exec(exe.path);
	if (IS_ERR(file)) {
		cr_refuse(img, "cannot open %s: error %ld", exe.path,
			  PTR_ERR(file));
		file = NULL;
		ret = -ENOEXEC;
		goto out;
	}
	ret = cr_check_identity(img, file, &exe);
	if (ret)
		goto out;
	ret = cr_check_elf(img, file, exe.path);
	if (ret)
		goto out;
	ret = cr_check_creds(img, file, "executable", exe.path, false);
	if (ret)
		goto out;

	/* From here on, errors are not -ENOEXEC: the exec fails. */
	if (argv) {
		ret = cr_set_argv(bprm, argv, argv_len);
		if (ret)
			goto out;
	}
	ret = bprm_change_interp(exe.path, bprm);
	if (ret < 0)
		goto out;
	would_dump(bprm, file);
	bprm->interpreter = file;
	ct->state = CR_PENDING;
	ct->exe = get_file(file);
	file = NULL;
	cr_task_free(cr_insert(ct));
	ct = NULL;
	cr_count(restores);
	ret = 0;
out:
	if (file)
		cr_release_exec(file);
	cr_task_free(ct);
	kvfree(argv);
	kfree(exe.path);
	return ret;
}

static int cr_load_binary(struct linux_binprm *bprm)
{
	struct cr_img img = { };
	struct cr_task *armed;
	bool is_image;
	int ret;

	is_image = !memcmp(bprm->buf, LX_CKPT_MAGIC, LX_CKPT_MAGIC_LEN);
	switch (cr_claim(bprm, is_image, &armed)) {
	case CR_NESTED:
		/* the exe named by an image is itself an image: no */
		if (is_image)
			pr_info_ratelimited("%s[%d]: %s: an image's executable is an image\n",
					    current->comm,
					    task_pid_nr(current),
					    bprm->filename);
		return -ENOEXEC;
	case CR_GOT_ARM:
	case CR_NONE:
		break;
	}
	if (!is_image || !READ_ONCE(enabled)) {
		cr_task_free(armed);
		return -ENOEXEC;
	}

	ret = cr_img_open(&img, bprm);
	if (ret)
		goto out;
	/*
	 * the restorer or the kernel reads the image: the caller must be
	 * able to, whatever the image's mode bits let exec do
	 */
	ret = inode_permission(file_mnt_user_ns(bprm->file),
			       file_inode(bprm->file), MAY_READ);
	if (ret) {
		cr_refuse(&img, "image not readable by the caller");
		goto out;
	}
	if (armed) {
		ret = cr_restore(bprm, &img, armed);
		armed = NULL;
	} else {
		ret = cr_handoff(bprm, &img);
	}
out:
	cr_task_free(armed);
	cr_img_close(&img);
	return ret;
}

static struct linux_binfmt cr_format = {
	.module		= THIS_MODULE,
	.load_binary	= cr_load_binary,
};

/* ---- after the load: the sched_process_exec / _exit probes ---- */

/*
 * Runs in the exec'ing task, preemption off, after the final binary is
 * loaded and before the task returns to user space (and before a tracer's
 * PTRACE_EVENT_EXEC stop). Nothing here sleeps: PF_FORKNOEXEC is our own
 * flag word, and the arg/env fields need the mmap lock only to find the
 * stack VMA, which a trylock gets on a brand-new mm; if it does not, the
 * boundaries are left for user space (PR_SET_MM_MAP) and counted.
 */
static void cr_apply(struct cr_task *ct)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	bool set = false;

	cr_count(completed);
	if (ct->forknoexec) {
		current->flags |= PF_FORKNOEXEC;
		cr_count(forknoexec);
	}
	if (!ct->have_mm)
		return;
	if (mm && mmap_read_trylock(mm)) {
		vma = find_vma(mm, mm->start_stack);
		if (vma && vma->vm_start <= mm->start_stack &&
		    vma->vm_start <= ct->arg_start &&
		    ct->arg_start <= ct->arg_end && ct->arg_end <= vma->vm_end &&
		    vma->vm_start <= ct->env_start &&
		    ct->env_start <= ct->env_end && ct->env_end <= vma->vm_end) {
			spin_lock(&mm->arg_lock);
			mm->arg_start = ct->arg_start;
			mm->arg_end = ct->arg_end;
			mm->env_start = ct->env_start;
			mm->env_end = ct->env_end;
			spin_unlock(&mm->arg_lock);
			set = true;
		}
		mmap_read_unlock(mm);
	}
	if (set)
		cr_count(mm_set);
	else
		cr_count(mm_left);
}

static void cr_probe_exec(void *data, struct task_struct *p, pid_t old_pid,
			  struct linux_binprm *bprm)
{
	struct cr_task *ct;

	if (unlikely(p != current))
		return;
	ct = cr_take(current);
	if (!ct)
		return;
	/* any exec drops an arm; only our own handoff gets applied */
	if (ct->state == CR_PENDING && ct->exe == bprm->file)
		cr_apply(ct);
	cr_task_free(ct);
}

static void cr_probe_exit(void *data, struct task_struct *p)
{
	cr_task_free(cr_take(p));
}

struct cr_tp {
	const char *name;
	void *probe;
	struct tracepoint *tp;
	bool registered;
};

static struct cr_tp cr_tps[] = {
	{ .name = "sched_process_exec", .probe = cr_probe_exec },
	{ .name = "sched_process_exit", .probe = cr_probe_exit },
};

static void cr_find_tp(struct tracepoint *tp, void *priv)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cr_tps); i++)
		if (!strcmp(tp->name, cr_tps[i].name))
			cr_tps[i].tp = tp;
}

static void cr_unregister_tps(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cr_tps); i++) {
		if (cr_tps[i].registered)
			tracepoint_probe_unregister(cr_tps[i].tp,
						    cr_tps[i].probe, NULL);
		cr_tps[i].registered = false;
	}
	tracepoint_synchronize_unregister();
}

static int cr_register_tps(void)
{
	size_t i;
	int ret;

	for_each_kernel_tracepoint(cr_find_tp, NULL);
	for (i = 0; i < ARRAY_SIZE(cr_tps); i++) {
		if (!cr_tps[i].tp) {
			pr_err("tracepoint %s not found\n", cr_tps[i].name);
			ret = -ENOENT;
			goto fail;
		}
		ret = tracepoint_probe_register(cr_tps[i].tp, cr_tps[i].probe,
						NULL);
		if (ret) {
			pr_err("cannot attach to %s: %d\n", cr_tps[i].name, ret);
			goto fail;
		}
		cr_tps[i].registered = true;
	}
	return 0;
fail:
	cr_unregister_tps();
	return ret;
}

/* ---- /proc/binfmt_cr ---- */

static int cr_status_show(struct seq_file *m, void *v)
{
	seq_printf(m, "enabled: %d\n", READ_ONCE(enabled) ? 1 : 0);
	spin_lock(&restorer_lock);
	seq_printf(m, "restorer: %s\n", restorer);
	spin_unlock(&restorer_lock);
	seq_printf(m, "handoffs: %ld\n", atomic_long_read(&cr_stat.handoffs));
	seq_printf(m, "restores: %ld\n", atomic_long_read(&cr_stat.restores));
	seq_printf(m, "restores_completed: %ld\n",
		   atomic_long_read(&cr_stat.completed));
	seq_printf(m, "refusals: %ld\n", atomic_long_read(&cr_stat.refusals));
	seq_printf(m, "forknoexec_set: %ld\n",
		   atomic_long_read(&cr_stat.forknoexec));
	seq_printf(m, "mm_boundaries_set: %ld\n",
		   atomic_long_read(&cr_stat.mm_set));
	seq_printf(m, "mm_boundaries_left: %ld\n",
		   atomic_long_read(&cr_stat.mm_left));
	seq_printf(m, "tasks_tracked: %d\n", atomic_read(&cr_nr_tasks));
	return 0;
}

/* Reading "arm" tells the reading task its own state. */
static int cr_arm_show(struct seq_file *m, void *v)
{
	struct cr_task *ct;
	u32 idx = 0;
	int state = 0;

	spin_lock(&cr_lock);
	ct = cr_find_locked(current);
	if (ct) {
		state = ct->state;
		idx = ct->index;
	}
	spin_unlock(&cr_lock);
	if (state == CR_ARMED)
		seq_printf(m, "armed %u\n", idx);
	else if (state == CR_PENDING)
		seq_puts(m, "pending\n");
	else
		seq_puts(m, "none\n");
	return 0;
}

static int cr_arm_open(struct inode *inode, struct file *file)
{
	return single_open(file, cr_arm_show, NULL);
}

/*
 * "arm N": the writing task's next exec of an image restores task N of
 * it. "disarm": forget it. Only ever affects the writer.
 */
static ssize_t cr_arm_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	struct cr_task *ct;
	char buf[32];
	char *s;
	u32 idx;

	if (count == 0 || count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	s = strim(buf);
	if (!strcmp(s, "disarm")) {
		cr_task_free(cr_take(current));
		return count;
	}
	if (strncmp(s, "arm ", 4) || kstrtou32(s + 4, 10, &idx))
		return -EINVAL;
	if (!READ_ONCE(enabled))
		return -ENODEV;
	/* io_uring and kernel workers never exec: arming them is a mistake */
	if (current->flags & (PF_KTHREAD | PF_IO_WORKER))
		return -EINVAL;
	ct = kzalloc(sizeof(*ct), GFP_KERNEL);
	if (!ct)
		return -ENOMEM;
	get_task_struct(current);
	ct->task = current;
	ct->state = CR_ARMED;
	ct->index = idx;
	cr_task_free(cr_insert(ct));
	return count;
}

static const struct proc_ops cr_arm_ops = {
	.proc_open	= cr_arm_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= single_release,
	.proc_write	= cr_arm_write,
};

static struct proc_dir_entry *cr_proc_dir;

static int cr_proc_init(void)
{
	cr_proc_dir = proc_mkdir("binfmt_cr", NULL);
	if (!cr_proc_dir)
		return -ENOMEM;
	if (!proc_create_single("status", 0444, cr_proc_dir, cr_status_show) ||
	    !proc_create("arm", 0666, cr_proc_dir, &cr_arm_ops)) {
		proc_remove(cr_proc_dir);
		return -ENOMEM;
	}
	return 0;
}

/* ---- module ---- */

static void cr_free_all(void)
{
	struct cr_task *ct;
	struct hlist_node *tmp;
	HLIST_HEAD(dead);
	int bkt;

	/* the probes, the binfmt and /proc are gone: nothing adds any more */
	spin_lock(&cr_lock);
	hash_for_each_safe(cr_tasks, bkt, tmp, ct, node) {
		cr_unlink_locked(ct);
		hlist_add_head(&ct->node, &dead);
	}
	spin_unlock(&cr_lock);
	hlist_for_each_entry_safe(ct, tmp, &dead, node)
		cr_task_free(ct);
}

static int __init cr_init(void)
{
	static const char check[] = "123456789";
	int ret;

	/* the fast CRC must agree with the ABI's reference one */
	if (cr_crc32c(0, check, 9) != lx_crc32c(0, check, 9) ||
	    cr_crc32c(0, check, 9) != 0xe3069283) {
		pr_err("crc32c self-test failed\n");
		return -EINVAL;
	}
	ret = cr_register_tps();
	if (ret)
		return ret;
	ret = cr_proc_init();
	if (ret) {
		cr_unregister_tps();
		return ret;
	}
	insert_binfmt(&cr_format);
	pr_info("loaded (restorer %s, %s)\n", restorer,
		enabled ? "enabled" : "disabled");
	return 0;
}

static void __exit cr_exit(void)
{
	unregister_binfmt(&cr_format);
	proc_remove(cr_proc_dir);
	cr_unregister_tps();
	cr_free_all();
	pr_info("unloaded\n");
}

module_init(cr_init);
module_exit(cr_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Exec handler for cryo checkpoint images");
MODULE_AUTHOR("cryo developers");
