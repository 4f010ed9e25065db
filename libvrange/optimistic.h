/*
 * optimistic.h - optimistic volatile ranges (VRANGE_OPTIMISTIC): the
 * application keeps touching the memory; only a page the kernel really took
 * faults, and a refill callback regenerates it.
 *
 * Mechanism (uffd backend): the range is registered with a userfaultfd in
 * MISSING mode with UFFD_FEATURE_SIGBUS and given to MADV_FREE, with no
 * cookie in memory. A discarded page has no page-table entry, so touching
 * it raises SIGBUS instead of mapping zeros: vr_fault_classify (fault.h)
 * refills it with UFFDIO_COPY, or reports it and declines. Registration is
 * kept after unmark and dropped only with the mapping, so a region is
 * registered once however often it is marked.
 */
#ifndef VR_OPTIMISTIC_H
#define VR_OPTIMISTIC_H

#include <stddef.h>
#include <stdint.h>

/* Checks that a userfaultfd (user-mode-only where the kernel has it) opens
 * with UFFD_FEATURE_SIGBUS, and closes it: the one optimistic ranges use is
 * opened by the first of them (optimistic.c). 0, or a negative errno and
 * why. */
int vr_uffd_probe(char *why, size_t len);

/* Makes [lo, hi) optimistic-volatile (registry lock held, mapping checked).
 * Explicit volatile pages in the range are settled first (their loss kept). */
int vr_opt_mark_locked(uintptr_t lo, uintptr_t hi, int vma_kind);

/*
 * Settles the optimistic pages of [lo, hi): each discarded page gets a zero
 * page and is recorded lost, each surviving page is written to (which
 * cancels the lazy free), and the pages become explicit volatile pages with
 * no cookie ("bare"), so the backend's unmark reports them from their lost
 * bits. Raises no signal: it works inside the application's SIGBUS handler.
 */
void vr_opt_settle_locked(uintptr_t lo, uintptr_t hi);

/* Child side of fork: the inherited userfaultfd still acts on the parent's
 * memory and the child's mappings lost their registration; a new one is
 * opened and every registered run registered again. */
void vr_opt_atfork_child(void);

#endif /* VR_OPTIMISTIC_H */
