/*
 * unwinder.h - backtraces: the few libunwind functions the core (where a
 * range was marked, VRANGE_DEBUG) and sigbus/'s reports use, reached
 * through a table that unwinder.c fills by dlopen on first need, so that a
 * process that never needs a backtrace never maps libunwind.
 */
#ifndef VR_UNWINDER_H
#define VR_UNWINDER_H

#include <stdbool.h>
#include <stdint.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

/* unw_init_local2 and UNW_INIT_SIGNAL_FRAME exist since libunwind 1.3. */
#if UNW_VERSION_MAJOR > 1 || (UNW_VERSION_MAJOR == 1 && UNW_VERSION_MINOR >= 3)
#define VR_UNW_HAS_INIT_LOCAL2 1
#else
#define VR_UNW_HAS_INIT_LOCAL2 0
#endif

struct vr_unwind {
	int (*getcontext)(unw_context_t *);
	int (*init_local)(unw_cursor_t *, unw_context_t *);
#if VR_UNW_HAS_INIT_LOCAL2
	int (*init_local2)(unw_cursor_t *, unw_context_t *, int);
#endif
	int (*step)(unw_cursor_t *);
	int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
	int (*set_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t);
	int (*get_proc_name)(unw_cursor_t *, char *, size_t, unw_word_t *);
};

/*
 * Loads libunwind unless done already. Returns whether it is there. Not
 * from a signal handler, nor with the registry lock held.
 */
bool vr_backtraces_load(void);

/* The table if vr_backtraces_load loaded libunwind, else NULL: never
 * loads, async-signal-safe. */
const struct vr_unwind *vr_unwind(void);

/*
 * Captures the calling thread's backtrace (return addresses, innermost
 * first, skipping this function) into pcs; returns how many were stored
 * (0 unless vr_backtraces_load loaded libunwind before). Not
 * async-signal-safe.
 */
int vr_backtrace_capture(uintptr_t *pcs, int max);

#endif /* VR_UNWINDER_H */
