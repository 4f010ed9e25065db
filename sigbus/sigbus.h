/*
 * sigbus.h - the contract between the core and sigbus/.
 *
 * sigbus/ owns the process's SIGBUS and SIGSEGV handlers: it installs them
 * (vr_sig_install), keeps them first by interposing sigaction(2) and
 * signal(3) (the application's handlers are recorded and chained to), and
 * prints use-after-purge reports. For every fault it first asks the core,
 * vr_fault_classify() (fault.h, the one header of the core it depends on),
 * whether the fault is about a volatile page, and acts on the verdict: a
 * declined fault reaches the application's handler or the default action
 * unchanged (R7), a resolved one retries, and a purged page nobody refilled
 * is reported and delivered.
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
 * Whether the application's own handler takes sig (not SIG_DFL or SIG_IGN,
 * which end the process on a fault). False before the library's handlers
 * are installed. Async-signal-safe.
 */
bool vr_sig_app_catches(int sig);

/*
 * Installs the library's SIGBUS and SIGSEGV handlers, once; later calls do
 * nothing. Whatever was installed before (the application's handler, or
 * SIG_DFL/SIG_IGN) becomes the chained disposition. Thread-safe; not
 * async-signal-safe. Returns 0, or -1 and errno from sigaction.
 */
int vr_sig_install(void);

/*
 * Prints a use-after-purge report to stderr, when it is for a bug: the
 * SIGBUS is going to end the process (no handler of the application's
 * takes it), or VRANGE_DEBUG=1 asks for every report. A program that
 * catches SIGBUS on purpose (the v10 "optimistic method") gets none. The
 * report: the fault address, the range
 * [lo, hi) it falls in, and a backtrace of the faulting thread (libunwind,
 * from uctx, into a preallocated buffer; none unless vr_backtraces_load
 * loaded it before, unwinder.h). If mark_pcs is not NULL and
 * nmark > 0, also the backtrace where the range was marked volatile.
 * Async-signal-safe.
 */
void vr_report_use_after_purge(void *addr, uintptr_t lo, uintptr_t hi, void *uctx,
                               const uintptr_t *mark_pcs, int nmark);

#endif /* VR_SIGBUS_H */
