/*
 * fault.h - the core's answer about a fault: the one header of the core
 * that sigbus/ includes.
 *
 * sigbus/ owns the signal handlers. For every SIGBUS or SIGSEGV the kernel
 * raises, it asks vr_fault_classify whether the fault is about a volatile
 * page and what happened, and acts on the verdict, as libsigsegv's
 * handlers answer "handled" or "declined":
 *   VR_FAULT_DECLINE  not the library's fault: the signal reaches the
 *                     application unchanged (R7);
 *   VR_FAULT_RETRY    resolved (a page restored or refilled, or being so
 *                     by another thread): return, and the access retries;
 *   VR_FAULT_PURGED   a purged page of an optimistic range that nobody
 *                     refilled: sigbus/ reports it (a use after purge) and
 *                     delivers f->sig with f->si to the application.
 * The core decides and records; it never delivers a signal, prints a
 * report or runs application code itself, and it has left its RCU read
 * side when it answers, so that an application handler that never returns
 * (siglongjmp) cannot hold up the registry.
 *
 * Async-signal-safe: no allocation, no lock.
 */
#ifndef VR_FAULT_H
#define VR_FAULT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum vr_fault_verdict_e {
	VR_FAULT_DECLINE,
	VR_FAULT_RETRY,
	VR_FAULT_PURGED,
} vr_fault_verdict_t;

#define VR_FAULT_TRACE_DEPTH 16

/* Filled for VR_FAULT_PURGED. */
typedef struct vr_fault_s {
	int sig;            /* the signal the application gets: SIGBUS */
	siginfo_t si;       /* with the kernel's siginfo, or one made as the
	                       kernel would (BUS_ADRERR at the address) */
	bool refaults;      /* retrying the access raises it again; if not
	                       (the mprotect emulation made the SIGBUS), a
	                       default action must send it */
	uintptr_t lo, hi;   /* the optimistic range, addresses */
	int nmark;          /* where it was marked (VRANGE_DEBUG), or 0 */
	uintptr_t mark_pcs[VR_FAULT_TRACE_DEPTH];
} vr_fault_t;

/* sig is SIGBUS or SIGSEGV with si->si_code > 0 (raised by the kernel). */
vr_fault_verdict_t vr_fault_classify(int sig, siginfo_t *si, void *uctx, vr_fault_t *f);

#endif /* VR_FAULT_H */
