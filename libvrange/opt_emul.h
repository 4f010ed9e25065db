/*
 * opt_emul.h - the mprotect emulation of optimistic ranges, for the
 * backends without userfaultfd (opt_emul.c). The operations of
 * vr_backend_t of the same names (backend.h).
 */
#ifndef VR_OPT_EMUL_H
#define VR_OPT_EMUL_H

#include <signal.h>
#include <stdint.h>

#include "fault.h"

int vr_emul_mark_locked(uintptr_t lo, uintptr_t hi, int vma_kind);
void vr_emul_settle_locked(uintptr_t lo, uintptr_t hi);
vr_fault_verdict_t vr_emul_fault(int sig, siginfo_t *si, vr_fault_t *f);

#endif /* VR_OPT_EMUL_H */
