/* Injected state that recovers by itself: while cryo runs system calls
 * inside a dumped task, the task's registers always point at a short path
 * back to its own state (an rt_sigreturn frame cryo wrote below its stack
 * pointer), so a cryo killed with SIGKILL at any moment leaves the task
 * running exactly as before, its signal mask included, with no page of
 * cryo's left in it. See docs/reliability.md, "The injection window". */
#ifndef CRYO_INJSAFE_H
#define CRYO_INJSAFE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

struct injector;

/* Find what the way back needs in the task's own code, once per process
 * (v, n: its maps): a "syscall; ret" and a "mov $15,%rax; syscall" (the
 * signal trampoline of glibc, musl and Go) in its executable mappings,
 * and a free range for a batch page. Sets inj->rc. -ENOENT (no message)
 * when its code has neither: injection then works as before, without
 * recovery (a static binary without a signal trampoline). */
int inj_recovery_find(struct injector *inj, const struct proc_vma *v, size_t n);

/* Called by ptrace.c and injbatch.c only. */
int injsafe_prepare(struct injector *inj);		/* -EAGAIN: cannot, use the old way */
int injsafe_syscall(struct injector *inj, long nr, const uint64_t a[6], long *ret);
int injsafe_map_page(struct injector *inj, uint64_t len, uint64_t *page);	/* -EAGAIN */
/* The way back first runs nr(a0, a1) through the task's "syscall; ret"
 * (-EAGAIN: the session does not recover by itself; -EBUSY: a batch page
 * holds the one undo frame), or nothing more again */
int injsafe_undo(struct injector *inj, long nr, uint64_t a0, uint64_t a1);
int injsafe_undo_none(struct injector *inj);
int injsafe_unmap_page(struct injector *inj);
int injsafe_run_stub(struct injector *inj, uint64_t rip, uint64_t rbx);
int injsafe_finish(struct injector *inj);
/* Kill cryo at the Nth point where a task carries injected state, when
 * CRYO_FAULT_INJECT=N is set: how the tests reach every such point */
void inj_fault_point(void);

#endif
