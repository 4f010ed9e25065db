/*
 * stats.h - the library's counters (struct vrange_stats in vrange.h).
 *
 * Counters are bumped with relaxed atomic adds from any thread, also from a
 * signal handler; vrange_get_stats reads them without a lock.
 */
#ifndef VR_STATS_H
#define VR_STATS_H

#include <stdint.h>

typedef enum {
	VR_STAT_MARKED,
	VR_STAT_UNMARKED,
	VR_STAT_PURGED,
	VR_STAT_REFILLED,
	VR_STAT_SIGBUS,
	VR_STAT_BUDGET,
	VR_STAT_DROPPED,
	VR_STAT_SHIM_LAZY,   /* bytes the preload's extent hooks gave to MADV_FREE */
	VR_STAT_PG_INTACT,   /* purgeable objects locked (0 -> 1) intact */
	VR_STAT_PG_PURGED,   /* purgeable objects locked (0 -> 1) purged */
	VR_STAT_COUNT
} vr_stat_t;

void vr_stat_add(vr_stat_t which, uint64_t n);
uint64_t vr_stat_get(vr_stat_t which);

/* The selection story, written once at start-up (init.c). */
void vr_stats_set_selection(const char *text);

/*
 * Lines that another part of the process adds to the statistics (the
 * preload shim's): fn writes them, each ended by a newline, into buf (len
 * bytes) and returns their length. Set once, from a constructor.
 */
typedef size_t (*vr_stats_lines_fn)(char *buf, size_t len);
void vr_stats_set_lines(vr_stats_lines_fn fn);

/*
 * Writes the statistics as one block, every line starting with
 * "libvrange: PROGRAM[PID]: ", so that the blocks of a pipeline's
 * processes can be told apart: to VRANGE_STATS_FILE if set ("%p" the pid,
 * "%%" a percent sign; appended, with one write, so that blocks of several
 * processes do not mix), else to stderr (VRANGE_STATS=1 at exit).
 */
void vr_stats_print(void);

/* The block vr_stats_print writes, into buf; returns its length. */
size_t vr_stats_format(char *buf, size_t len);

/* path with "%p" replaced by pid and "%%" by "%", into buf (cut to fit). */
void vr_stats_path(const char *path, long pid, char *buf, size_t len);

#endif /* VR_STATS_H */
