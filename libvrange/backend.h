/*
 * backend.h - the contract between the core and a backend.
 *
 * A backend decides how volatile pages are given to the kernel and how a
 * purge is detected. The core validates arguments and the mapping, holds the
 * registry lock, and calls one of these; the backend keeps the registry's
 * page state (registry.h) true. Page numbers, not addresses, throughout.
 * Every operation returns 0 (or a count) or a negative errno, and on error
 * leaves memory and registry as they were.
 */
#ifndef VR_BACKEND_H
#define VR_BACKEND_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault.h"
#include "registry.h"

typedef struct vr_backend_s {
	const char *name;
	/* Once at start-up: 0 if this backend works here, else a negative
	 * errno and a sentence in why saying what the probe found. */
	int (*probe)(char *why, size_t len);
	/* Makes [lo, hi) volatile. vma_kind is VR_VMA_OK or VR_VMA_READONLY. */
	int (*mark)(uintptr_t lo, uintptr_t hi, int vma_kind);
	/* Makes [lo, hi) non-volatile; vec (hi - lo bytes, or NULL) gets 1 per
	 * purged page. Returns the number of purged pages. */
	ssize_t (*unmark)(uintptr_t lo, uintptr_t hi, int vma_kind,
	                  unsigned char *vec);
	/* Memory of [lo, hi) is about to stop being writable (mprotect):
	 * settle every cookie now, keeping what was lost, so that later
	 * operations never write there. */
	void (*resolve)(uintptr_t lo, uintptr_t hi);

	/* Optimistic ranges (VRANGE_OPTIMISTIC), the backend's own mechanism:
	 * userfaultfd (uffd), the mprotect emulation (cookie, eager,
	 * opt_emul.h). All NULL where there is none (native: EOPNOTSUPP). */
	/* Makes [lo, hi) optimistic-volatile (registry lock held, mapping
	 * checked, optimistic pages of the range settled first). */
	int (*opt_mark)(uintptr_t lo, uintptr_t hi, int vma_kind);
	/* Makes the optimistic pages of [lo, hi) explicit volatile pages
	 * with no cookie, each loss recorded (optimistic.h). */
	void (*opt_settle)(uintptr_t lo, uintptr_t hi);
	/* The verdict on a fault the kernel raised (fault.h), in a signal
	 * handler: lock-free, takes the registry's read side itself. */
	vr_fault_verdict_t (*opt_fault)(int sig, siginfo_t *si, vr_fault_t *f);
	/* Child side of fork (one thread, the registry lock held). */
	void (*atfork_child)(void);
} vr_backend_t;

extern const vr_backend_t vr_backend_native;
extern const vr_backend_t vr_backend_uffd;
extern const vr_backend_t vr_backend_cookie;
extern const vr_backend_t vr_backend_eager;

/* The backend chosen at start-up (select.c). */
extern const vr_backend_t *vr_backend_cur;

/*
 * Selects a backend from the candidates in order: the one named by forced
 * first (refused ones are skipped with a warning), then the others. Writes
 * the story ("native: refused (...); cookie: chosen") into story.
 * Exposed for the tests.
 */
const vr_backend_t *vr_select_backend(const vr_backend_t *const *cands,
                                      unsigned ncands, const char *forced,
                                      char *story, size_t len);

/* Chooses the backend once, at start-up (vr_init): vr_select_backend over
 * every backend, forced first; sets vr_backend_cur and returns it. */
const vr_backend_t *vr_backend_choose(const char *forced, char *story, size_t len);

/* The purge cookie (backend_cookie.c): random, never zero, chosen by the
 * cookie backend's probe (which the uffd backend's runs too); the fault
 * path of the emulation compares with it. */
extern uintptr_t vr_cookie;

/*
 * Shared by the backends: volatile state without a cookie in memory
 * (eager marking; read-only memory under the cookie backend). MADV_DONTNEED
 * discards [lo, hi) now and every page is recorded lost and bare.
 */
int vr_mark_bare_locked(uintptr_t lo, uintptr_t hi);

/* Reports and forgets [lo, hi) where only registry bits tell the truth (no
 * page has a cookie): vec gets each page's lost bit. */
ssize_t vr_unmark_bare_locked(uintptr_t lo, uintptr_t hi, unsigned char *vec);

#endif /* VR_BACKEND_H */
