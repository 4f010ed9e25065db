/*
 * internal.h - definitions shared by every file of the core: build-time
 * configuration constants, export and likely/unlikely macros, page geometry.
 *
 * Nothing here allocates or takes a lock: it is safe to include from code
 * that runs inside malloc or a signal handler.
 */
#ifndef VR_INTERNAL_H
#define VR_INTERNAL_H

#include "config.h"

/* VRANGE_EXPORT, the one export attribute, for the public API and for the
 * functions the library interposes (malloc, mmap, sigaction, ...). */
#include "vrange.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define vr_likely(x) __builtin_expect(!!(x), 1)
#define vr_unlikely(x) __builtin_expect(!!(x), 0)

/* Debug checks always compile; the optimiser drops them when false. */
#ifdef VR_DEBUG_BUILD
static const bool config_debug = true;
#else
static const bool config_debug = false;
#endif

/* Page geometry, set once by vr_init_page() before anything else runs. */
extern size_t vr_page_size;
extern unsigned vr_page_shift;

static inline uintptr_t vr_vpn(uintptr_t addr)
{
	return addr >> vr_page_shift;
}

static inline uintptr_t vr_addr(uintptr_t vpn)
{
	return vpn << vr_page_shift;
}

#endif /* VR_INTERNAL_H */
