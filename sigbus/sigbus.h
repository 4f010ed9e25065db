/*
 * sigbus.h - the contract between the core and sigbus/.
 *
 * sigbus/ owns the process's SIGBUS and SIGSEGV handlers: it installs them
 * (vr_sig_install), keeps them first by interposing sigaction(2) and
 * signal(3) (the application's handlers are recorded and chained to), and
 * prints use-after-purge reports. For every fault it first asks the core,
 * vr_fault_resolve(), whether the fault is about a volatile page; only a
 * declined fault reaches the application's handler or the default action,
 * unchanged (R7).
 *
 * Everything here runs inside a signal handler: no malloc, no locks, errno
 * preserved.
 */
#ifndef VR_SIGBUS_H
#define VR_SIGBUS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Implemented by the core (libvrange/optimistic.c). Returns true if the
 * fault at si->si_addr was about a page of an optimistic volatile range and
 * has been resolved: the faulting access can be retried. Returns false to
 * decline: a fault that is not the library's, or a purged page nobody
 * refilled (the core has then printed a use-after-purge report, and the
 * signal must reach the application as if the library were not there).
 * Async-signal-safe.
 */
bool vr_fault_resolve(int sig, siginfo_t *si, void *uctx);

/*
 * Delivers sig with si to the application's disposition, from inside the
 * library's handler, as the kernel would have (handler with its mask and
 * flags, SIG_IGN, or the default action). refaults says whether retrying
 * the faulting access raises the same signal again; when it does not (the
 * core synthesised the signal: a purged page found through SIGSEGV by the
 * mprotect fallback), the default action sends the signal instead of
 * returning to the access. Async-signal-safe.
 */
void vr_sig_deliver(int sig, siginfo_t *si, void *uctx, bool refaults);

/*
 * Installs the library's SIGBUS and SIGSEGV handlers, once; later calls do
 * nothing. Whatever was installed before (the application's handler, or
 * SIG_DFL/SIG_IGN) becomes the chained disposition. Thread-safe; not
 * async-signal-safe. Returns 0, or -1 and errno from sigaction.
 */
int vr_sig_install(void);

/*
 * Loads libunwind, which the two functions below need, unless done already
 * (unwinder.c; it is not linked, so that processes that never report do not
 * map it). Returns whether it is there. Not from a signal handler, nor with
 * the registry lock held.
 */
bool vr_backtraces_load(void);

/*
 * Prints a use-after-purge report to stderr: the fault address, the range
 * [lo, hi) it falls in, and a backtrace of the faulting thread (libunwind,
 * from uctx, into a preallocated buffer; none unless vr_backtraces_load
 * loaded it before). If mark_pcs is not NULL and
 * nmark > 0, also the backtrace where the range was marked volatile.
 * Async-signal-safe.
 */
void vr_report_use_after_purge(void *addr, uintptr_t lo, uintptr_t hi, void *uctx,
                               const uintptr_t *mark_pcs, int nmark);

/*
 * Captures the calling thread's backtrace (return addresses, innermost
 * first, skipping this function) into pcs; returns how many were stored
 * (0 unless vr_backtraces_load loaded libunwind before). Used at mark time
 * with VRANGE_DEBUG=1. Not async-signal-safe.
 */
int vr_backtrace_capture(uintptr_t *pcs, int max);

#endif /* VR_SIGBUS_H */
