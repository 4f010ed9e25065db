/*
 * refill.h - which refill callback regenerates which pages.
 *
 * vrange_set_refill() attaches a callback to an address range, independent
 * of whether the pages are volatile now: it stays with the addresses until
 * replaced or removed (fn NULL), as vrange(3) says; munmap does not touch
 * the table. The table is a sorted array of
 * disjoint ranges published with RCU, so that the SIGBUS handler looks a
 * page up without a lock; writers hold the registry lock.
 */
#ifndef VR_REFILL_H
#define VR_REFILL_H

#include <stdbool.h>
#include <stdint.h>

#include "vrange.h"

/* Sets fn/arg for pages [lo, hi) (fn NULL: removes). 0 or -ENOMEM. */
int vr_refill_set_locked(uintptr_t lo, uintptr_t hi, vrange_refill_fn fn, void *arg);

/* Inside vr_registry_read_begin/end: the callback for page vpn, if any. */
bool vr_refill_lookup(uintptr_t vpn, vrange_refill_fn *fn, void **arg);

#endif /* VR_REFILL_H */
