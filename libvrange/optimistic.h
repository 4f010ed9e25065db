/*
 * optimistic.h - optimistic volatile ranges (VRANGE_OPTIMISTIC): the
 * application keeps touching the memory; only a page the kernel really took
 * faults, and a refill callback regenerates it.
 *
 * The mechanism is the backend's (backend.h): userfaultfd in
 * backend_uffd.c, the mprotect emulation in opt_emul.c. The functions
 * below are what the core calls (they hand the work to the backend), and
 * what the backends share on the fault path (optimistic.c).
 */
#ifndef VR_OPTIMISTIC_H
#define VR_OPTIMISTIC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "registry.h"

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

/* Child side of fork: the backend's (the uffd backend opens a userfaultfd
 * of the child's and registers every registered run on it again). */
void vr_opt_atfork_child(void);

/* For a backend's opt_settle (lock held): run(seg, first, n) for each run of
 * optimistic volatile pages of [lo, hi), after which they are explicit
 * (their optimistic bit cleared, segment by segment). */
void vr_opt_settle_runs_locked(uintptr_t lo, uintptr_t hi,
                               void (*run)(const vr_seg_t *seg, unsigned first, unsigned n));

/* The fault path (signal handler context, lock-free). A page being filled
 * by one thread: vr_opt_claim takes vpn for the caller (false if another
 * thread has it; *claimed false on a slot collision, which only costs a
 * second fill), vr_opt_unclaim lets go, vr_opt_inflight asks. */
bool vr_opt_claim(uintptr_t vpn, bool *claimed);
void vr_opt_unclaim(uintptr_t vpn, bool claimed);
bool vr_opt_inflight(uintptr_t vpn);

/* The verdict on a purged page vpn nobody refilled (read side held): what
 * sigbus/ needs to report it, the range and where it was marked, and to
 * deliver sig with si (fault.h). */
vr_fault_verdict_t vr_opt_purged(uintptr_t vpn, int sig, const siginfo_t *si,
                                 bool refaults, vr_fault_t *f);

#endif /* VR_OPTIMISTIC_H */
