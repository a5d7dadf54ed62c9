/* Batched syscall injection (see injbatch.h). One batch costs an injected
 * mmap, one PTRACE_CONT round trip and an injected munmap, instead of one
 * round trip per call. The page: the stub at offset 0, the table of calls
 * (64-byte entries: nr, six arguments, result; nr -1 ends it) from
 * TABLE_OFF, then the callers' data from DATA_OFF.
 *
 * The stub stops with int3, whose SIGTRAP the kernel forces: the batch
 * runs only in the injector's trap mode (SIGTRAP unblocked, not ignored,
 * not pending; see ptrace.h), where forcing it changes nothing in the
 * task. A SIGTRAP sent by somebody else meanwhile is put back in its queue
 * and the rest of the table runs one call at a time. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "err.h"
#include "injbatch.h"
#include "injsafe.h"

#define PAGE_LEN	BATCH_PAGE
#define TABLE_OFF	128
#define DATA_OFF	8192
#define ENTRY_LEN	64
#define MAX_CALLS	((DATA_OFF - TABLE_OFF) / ENTRY_LEN - 1)	/* room for the end mark */

struct entry {
	int64_t nr;
	uint64_t a[6];
	int64_t ret;
};
_Static_assert(sizeof(struct entry) == ENTRY_LEN, "batch entry layout");

/* The stub: rbx points at the table. Position-independent, no stack. */
extern const uint8_t batch_stub[], batch_stub_syscall[], batch_stub_int3[], batch_stub_end[];
/* The end entry (nr -1) says how the batch stops: with its a[4] 0, on
 * int3; otherwise (self-recovering injection, injsafe.c) with a tkill
 * (a[0] tid, a[1] signal) made at the "syscall; ret" at a[4] of the task's
 * own code, with rsp at a[3], the start of the way back. */
__asm__(".pushsection .rodata\n"
	".balign 16\n"
	"batch_stub:\n"
	"1:	movq (%rbx), %rax\n"
	"	cmpq $-1, %rax\n"
	"	je 2f\n"
	"	movq 8(%rbx), %rdi\n"
	"	movq 16(%rbx), %rsi\n"
	"	movq 24(%rbx), %rdx\n"
	"	movq 32(%rbx), %r10\n"
	"	movq 40(%rbx), %r8\n"
	"	movq 48(%rbx), %r9\n"
	"batch_stub_syscall:\n"
	"	syscall\n"
	"	movq %rax, 56(%rbx)\n"
	"	addq $64, %rbx\n"
	"	jmp 1b\n"
	"2:	movq 40(%rbx), %rcx\n"
	"	testq %rcx, %rcx\n"
	"	jz 3f\n"
	"	movq 8(%rbx), %rdi\n"
	"	movq 16(%rbx), %rsi\n"
	"	movq 32(%rbx), %rsp\n"
	"	movl $200, %eax\n"	/* SYS_tkill */
	"	jmp *%rcx\n"
	"batch_stub_int3:\n"
	"3:	int3\n"
	"batch_stub_end:\n"
	".popsection\n");
_Static_assert(SYS_tkill == 200, "the stub's tkill");

static struct entry *table(struct inj_batch *b)
{
	return (struct entry *)(b->buf + TABLE_OFF);
}

/* Common part of batch_begin and batch_begin_at: the local page image */
static int batch_init(struct inj_batch *b, struct injector *inj)
{
	size_t stub = (size_t)(batch_stub_end - batch_stub);
	int e;

	memset(b, 0, sizeof(*b));
	b->inj = inj;
	e = inj_prepare(inj);
	if (e)
		return e;
	if (!inj->trap && !inj->safe)
		return -EAGAIN;
	if (stub > TABLE_OFF)
		return err_set(-EINVAL, "batch stub: %zu bytes, room for %d", stub, TABLE_OFF);
	b->buf = calloc(1, PAGE_LEN);
	b->ret = calloc(MAX_CALLS, sizeof(*b->ret));
	if (!b->buf || !b->ret) {
		batch_end(b);
		return -ENOMEM;
	}
	memcpy(b->buf, batch_stub, stub);
	return 0;
}

int batch_begin(struct inj_batch *b, struct injector *inj)
{
	long addr;
	int e = batch_init(b, inj);

	if (e)
		return e;
	if (inj->safe) {
		e = injsafe_map_page(inj, PAGE_LEN, &b->page);
		if (e)
			batch_end(b);
		return e;
	}
	/* W+X is refused under MDWE (PR_SET_MDWE) or an LSM: then one by one */
	e = inj_syscall(inj, SYS_mmap, 0, PAGE_LEN, PROT_READ | PROT_WRITE | PROT_EXEC,
			MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr);
	if (e || (addr < 0 && addr > -4096)) {
		batch_end(b);
		return e ? e : -EAGAIN;
	}
	b->page = (uint64_t)addr;
	return 0;
}

int batch_begin_at(struct inj_batch *b, struct injector *inj, uint64_t addr, size_t len)
{
	int e;

	if (len < PAGE_LEN) {
		memset(b, 0, sizeof(*b));
		return -EINVAL;
	}
	e = batch_init(b, inj);
	if (!e && inj->safe)
		e = -EAGAIN;	/* only a page's owner runs in it (injsafe.c) */
	if (e) {
		batch_end(b);
		return e;
	}
	b->page = addr;
	b->borrowed = 1;
	return 0;
}

int batch_add(struct inj_batch *b, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
	      uint64_t a4, uint64_t a5, uint64_t a6)
{
	struct entry *t = table(b);

	if (b->n >= MAX_CALLS)
		return -ENOSPC;
	if (inj_touches_trap(nr, a1, a2, a3))
		return -EAGAIN;	/* the int3 at the end would undo or eat it */
	if (b->inj->safe && inj_touches_sig(nr, a1, a2, a3, b->inj->stop_sig))
		return -EAGAIN;	/* the same for the safe stub's signal */
	t[b->n] = (struct entry){ nr, { a1, a2, a3, a4, a5, a6 }, -ENOSYS };
	b->n++;
	return 0;
}

uint64_t batch_mem(struct inj_batch *b, size_t len, void **local)
{
	size_t off = DATA_OFF + ((b->data + 15) & ~(size_t)15);

	if (len > PAGE_LEN || off + len > PAGE_LEN)
		return 0;
	b->data = off + len - DATA_OFF;
	*local = b->buf + off;
	return b->page + off;
}

/* Copy the used parts of the page (stub and table, data) to or from the
 * task: a few hundred bytes, not the whole page */
static int xfer(struct inj_batch *b, int to_task)
{
	size_t tab = TABLE_OFF + (b->n + 1) * ENTRY_LEN;
	struct iovec l[2] = { { b->buf, tab }, { b->buf + DATA_OFF, b->data } };
	struct iovec r[2] = { { (void *)b->page, tab }, { (void *)(b->page + DATA_OFF), b->data } };
	unsigned long cnt = b->data ? 2 : 1;
	ssize_t n = to_task ? process_vm_writev(b->inj->tid, l, cnt, r, cnt, 0)
			    : process_vm_readv(b->inj->tid, l, cnt, r, cnt, 0);
	int e = 0;

	if (n == (ssize_t)(tab + b->data))
		return 0;
	for (unsigned long i = 0; i < cnt && !e; i++)
		e = to_task ? mem_write(b->inj->tid, (uint64_t)r[i].iov_base, l[i].iov_base, l[i].iov_len)
			    : mem_read(b->inj->tid, (uint64_t)r[i].iov_base, l[i].iov_base, l[i].iov_len);
	return e;
}

/* Run calls k.. of the table one at a time (the injector's slow mode):
 * the page holds what calls before k wrote */
static int run_slowly(struct inj_batch *b, size_t k)
{
	struct entry *t = table(b);
	int e = mem_read(b->inj->tid, b->page, b->buf, PAGE_LEN);

	for (size_t i = k; i < b->n && !e; i++) {
		long ret;

		e = inj_syscall(b->inj, t[i].nr, t[i].a[0], t[i].a[1], t[i].a[2], t[i].a[3],
				t[i].a[4], t[i].a[5], &ret);
		t[i].ret = ret;
	}
	/* the data area again: the calls just run wrote into it */
	if (!e && k < b->n)
		e = mem_read(b->inj->tid, b->page + DATA_OFF, b->buf + DATA_OFF, PAGE_LEN - DATA_OFF);
	return e;
}

/* Somebody else's SIGTRAP stopped the stub: requeue it, then run what is
 * left of the table one call at a time (slow mode from now on). */
static int finish_slowly(struct inj_batch *b, const struct user_regs_struct *r)
{
	struct entry *t = table(b);
	uint64_t tab = b->page + TABLE_OFF;
	size_t k = 0;
	int e;

	if (r->rbx >= tab && r->rbx < tab + (b->n + 1) * ENTRY_LEN)
		k = (size_t)(r->rbx - tab) / ENTRY_LEN;
	/* stopped just after a call returned: its result is still in rax */
	if (r->rip == b->page + (uint64_t)(batch_stub_syscall - batch_stub) + 2 && k < b->n) {
		t[k].ret = (int64_t)r->rax;
		e = mem_write(b->inj->tid, tab + k * ENTRY_LEN, &t[k], sizeof(t[k]));
		if (e)
			return e;
		k++;
	}
	e = inj_requeue_trap(b->inj);
	return e ? e : run_slowly(b, k);
}

int batch_run(struct inj_batch *b)
{
	struct injector *inj = b->inj;
	struct user_regs_struct r;
	uint64_t int3 = b->page + (uint64_t)(batch_stub_int3 - batch_stub);
	struct entry *t = table(b);
	siginfo_t si;
	int st, e;

	if (!b->page)
		return -EINVAL;
	t[b->n] = (struct entry){ .nr = -1 };
	if (inj->safe) {
		t[b->n].a[0] = (uint64_t)inj->tid;
		t[b->n].a[1] = (uint64_t)inj->stop_sig;
		t[b->n].a[3] = inj->chain;
		t[b->n].a[4] = inj->rc.syscall_ret;
		e = xfer(b, 1);
		if (!e)
			e = injsafe_run_stub(inj, b->page, b->page + TABLE_OFF);
		if (!e)
			e = xfer(b, 0);
		if (e)
			return err_ctx(e, "tid %d: batch of %zu injected syscalls", inj->tid, b->n);
		goto done;
	}
	e = xfer(b, 1);
	if (e)
		return e;
	/* trap mode ended since batch_begin (a SIGTRAP of somebody else came
	 * during an injected call): the int3 must not run, it would reset the
	 * handler of the now blocked SIGTRAP */
	if (!inj->trap) {
		e = run_slowly(b, 0);
		if (e)
			return err_ctx(e, "tid %d: batch of %zu injected syscalls", inj->tid, b->n);
		goto done;
	}
	r = inj->saved;
	r.rip = b->page;
	r.rbx = b->page + TABLE_OFF;
	r.orig_rax = (uint64_t)-1;
	e = pt_set_regs(inj->tid, &r);
	for (;;) {
		if (e)
			return err_ctx(e, "tid %d: batch of %zu injected syscalls", inj->tid, b->n);
		if (ptrace(PTRACE_CONT, inj->tid, 0, 0) < 0)
			return err_sys(-errno, "tid %d: PTRACE_CONT", inj->tid);
		while (waitpid(inj->tid, &st, __WALL) < 0)
			if (errno != EINTR)
				return err_sys(-errno, "tid %d: wait", inj->tid);
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return err_set(-ESRCH, "pid %d: exited while cryo worked on it", inj->tid);
		if (!WIFSTOPPED(st) || (st >> 16) == PTRACE_EVENT_STOP)
			continue;	/* group-stop: keep going */
		if (WSTOPSIG(st) != SIGTRAP) {
			warn("tid %d: signal %d arrived during syscall injection", inj->tid,
			     WSTOPSIG(st));
			continue;
		}
		e = pt_get_regs(inj->tid, &r);
		if (!e && ptrace(PTRACE_GETSIGINFO, inj->tid, 0, &si) < 0)
			e = err_sys(-errno, "tid %d: PTRACE_GETSIGINFO", inj->tid);
		if (e)
			continue;
		if (si.si_code == SI_KERNEL && r.rip == int3 + 1)
			break;
		e = finish_slowly(b, &r);
		if (e)
			return err_ctx(e, "tid %d: batch of %zu injected syscalls", inj->tid, b->n);
		goto done;
	}
	e = xfer(b, 0);
	if (e)
		return e;
done:
	for (size_t i = 0; i < b->n; i++)
		b->ret[i] = (long)t[i].ret;
	return 0;
}

int batch_end(struct inj_batch *b)
{
	long ret;
	int e = 0;

	if (b->page && !b->borrowed && b->inj->safe) {
		e = injsafe_unmap_page(b->inj);
	} else if (b->page && !b->borrowed) {
		e = inj_syscall(b->inj, SYS_munmap, b->page, PAGE_LEN, 0, 0, 0, 0, &ret);
		if (!e && ret < 0)
			e = err_sys((int)ret, "tid %d: unmap the batch page", b->inj->tid);
	}
	if (!e)
		b->page = 0;
	free(b->buf);
	free(b->ret);
	b->buf = NULL;
	b->ret = NULL;
	return e;
}
