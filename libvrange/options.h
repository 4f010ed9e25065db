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
/* VRANGE_STATS: print the statistics at exit (stderr, or opt_stats_file). */
extern bool opt_stats;
/* VRANGE_STATS_FILE: where the statistics go, "%p" for the pid ("" for
 * stderr). Setting it turns VRANGE_STATS on unless that is given too. */
extern char opt_stats_file[1024];
/* VRANGE_FREE_DECAY_MS: the preload shim's decay before freed memory
 * becomes reclaimable (jemalloc's dirty_decay_ms). */
extern long opt_free_decay_ms;
/* VRANGE_SYSCALL_COMPAT: the preload answers syscall(314, ...) as the v10
 * vrange system call (x86-64; off by default: 314 is sched_setattr). */
extern bool opt_syscall_compat;

/*
 * Reads every option with getenv_fn (getenv, or a test's own). A value that
 * does not parse keeps the default and is reported with vr_warn, with every
 * accepted value or the valid range. Words are matched in any case.
 * Returns the number of values rejected.
 */
int vr_options_read(const char *(*getenv_fn)(const char *name));

/*
 * Checks one environment entry ("NAME=value", or a name alone): a name
 * that starts with VRANGE_ and is no option is reported with vr_warn,
 * which names the closest option. Names under VRANGE_TEST_ and VRANGE_CI_
 * belong to the test suite and CI and are let be. Returns 1 if it warned,
 * else 0.
 */
int vr_options_check_name(const char *entry);

/* The option whose name is closest to name (edit distance). */
const char *vr_options_closest(const char *name);

/*
 * The value of name in a list of "NAME=value" entries, each ended by a NUL
 * byte (the format of /proc/<pid>/environ), read from fd to its end or to
 * the entry: copied into buf (len >= 1 bytes; a longer value is cut to
 * len - 1 bytes). NULL if the list has no such entry or reading fails.
 * Allocates nothing and calls no libc function: it serves before libc is
 * initialised.
 */
const char *vr_env_from_fd(int fd, const char *name, char *buf, size_t len);

/*
 * getenv(name), or, while libc's environ is NULL, name's value in the
 * environment the process started with (/proc/self/environ), copied into
 * buf. environ is NULL in a program's preinit_array functions, which run
 * before libc's initialiser sets it: there getenv finds nothing, and
 * options read by a first call from such a function would be lost. (It is
 * also NULL after clearenv(); only start-up reads options, and the
 * environment the process was started with is then still what its user set.)
 */
const char *vr_getenv(const char *name, char *buf, size_t len);

/* Resets every option to its default (tests). */
void vr_options_reset(void);

/*
 * Writes one "NAME=value (source)" line per option into buf, source being
 * "default" or "environment", as jemalloc's confirm_conf prints them.
 * Returns the length written (at most len - 1; buf ends with a NUL).
 */
size_t vr_options_describe(char *buf, size_t len);

#endif /* VR_OPTIONS_H */
