/*
 * unwinder.h - the few libunwind functions the reports use, reached through a
 * table that unwinder.c fills by dlopen on first need, so that a process that
 * never needs a backtrace never maps libunwind (see unwinder.c).
 */
#ifndef VR_UNWINDER_H
#define VR_UNWINDER_H

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

/* The table if vr_backtraces_load (sigbus.h) loaded libunwind, else NULL:
 * never loads, async-signal-safe. */
const struct vr_unwind *vr_unwind(void);

#endif /* VR_UNWINDER_H */
