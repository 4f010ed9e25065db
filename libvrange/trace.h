/*
 * trace.h - where optimistic ranges were marked (VRANGE_DEBUG=1), for the
 * use-after-purge report (trace.c).
 */
#ifndef VR_TRACE_H
#define VR_TRACE_H

#include <stdint.h>

/* Records the caller's backtrace for [lo, hi) (page numbers), if
 * VRANGE_DEBUG is on. Registry lock held. */
void vr_trace_mark_locked(uintptr_t lo, uintptr_t hi);

/* The latest mark covering page vpn, copied into pcs (VR_FAULT_TRACE_DEPTH
 * entries); returns its depth or 0. Lock-free, async-signal-safe. */
int vr_trace_find(uintptr_t vpn, uintptr_t *pcs);

#endif /* VR_TRACE_H */
