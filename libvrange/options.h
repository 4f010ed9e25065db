/*
 * options.h - run-time options, read once from the environment.
 *
 * Every option lives in the one table of options.c: its variable, its type,
 * its default and its help text. vr_options_read() fills the opt_* globals;
 * nothing else reads the environment.
 */
#ifndef VR_OPTIONS_H
#define VR_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

/* VRANGE_BACKEND: "" (automatic), "native", "uffd", "cookie" or "eager". */
extern char opt_backend[16];
/* VRANGE_DEBUG: print the backend choice and other diagnostics. */
extern bool opt_debug;
/* VRANGE_STATS: print the statistics to stderr at exit. */
extern bool opt_stats;
/* VRANGE_FREE_DECAY_MS: the preload shim's decay before freed memory
 * becomes reclaimable (jemalloc's dirty_decay_ms). */
extern long opt_free_decay_ms;
/* VRANGE_SYSCALL_COMPAT: the preload answers syscall(314, ...) as the v10
 * vrange system call (x86-64; off by default: 314 is sched_setattr). */
extern bool opt_syscall_compat;

/*
 * Reads every option with getenv_fn (getenv, or a test's own). A value that
 * does not parse keeps the default and is reported with vr_warn.
 * Returns the number of values rejected.
 */
int vr_options_read(const char *(*getenv_fn)(const char *name));

/* Resets every option to its default (tests). */
void vr_options_reset(void);

/* Writes "NAME=value (help)" lines for every option into buf. */
size_t vr_options_describe(char *buf, size_t len);

#endif /* VR_OPTIONS_H */
