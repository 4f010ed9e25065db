/*
 * registry.h - which pages are volatile, and what the library knows of each.
 *
 * The registry maps a page number to its state through a four-level radix
 * tree (like a page table): a static top array, three levels of 1024-slot
 * nodes and leaves of 64 pages. A leaf exists only where some page is
 * volatile, so nothing is kept per page that is not volatile. Per page:
 *   vol   the page is volatile;
 *   lost  the page is known to be lost (kept across re-marks: a page lost
 *         once is reported at the next unmark even if marked again);
 *   bare  no purge cookie is in memory for this page (eager backend,
 *         read-only pages, pages resolved before an mprotect): unmarking it
 *         must not touch memory, and lost is the whole truth;
 *   opt   the page belongs to an optimistic range (marked VRANGE_OPTIMISTIC:
 *         the application may touch it; a purged page faults);
 *   reg   the page is registered with the userfaultfd of the uffd backend
 *         (while it is optimistic: settling unregisters it);
 *   saved the word the cookie displaced (valid when vol && !bare).
 * A range is a maximal run of adjacent volatile pages of one kind (explicit
 * or optimistic): marking next to a range merges, unmarking inside one
 * splits it; the count of ranges is kept
 * as pages change, and vr_registry_range_at() finds a page's range.
 *
 * Concurrency: writers hold vr_registry_lock(); readers (the interposers and,
 * later, the signal handler) call vr_registry_read_begin/end (urcu-bp read
 * side: no lock, no allocation) and load bitmaps atomically. Leaves are
 * reused only after an RCU grace period. Metadata comes from mmap, never
 * from malloc: this code runs inside the malloc shim.
 */
#ifndef VR_REGISTRY_H
#define VR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VR_LEAF_SHIFT 6
#define VR_LEAF_PAGES (1u << VR_LEAF_SHIFT)

/* The kinds of per-page state (see above); pend is the writer's own: a
 * cookie written, not yet committed (backend_cookie.c). */
typedef enum vr_pg_e {
	VR_PG_VOL,
	VR_PG_LOST,
	VR_PG_BARE,
	VR_PG_OPT,
	VR_PG_REG,
	VR_PG_TOUCH,
	VR_PG_PEND,
	VR_PG_NKINDS
} vr_pg_t;

/*
 * A segment: pages [vpn, vpn + n) of [lo, hi) that lie in one leaf, handed
 * to the callback of vr_registry_each_seg_locked. Every mask below is
 * relative to the segment: bit i is page vpn + i. leaf and first are the
 * registry's own; leaf is NULL where no page of the leaf has state.
 */
typedef struct vr_seg_s {
	uintptr_t vpn;
	unsigned n;
	struct vr_leaf_s *leaf;
	unsigned first;
} vr_seg_t;

/* The mask of n bits from bit first (n from 1 to 64 - first). */
static inline uint64_t vr_bits_run(unsigned first, unsigned n)
{
	return (n == 64 ? ~0ull : (1ull << n) - 1) << first;
}

static inline uint64_t vr_seg_all(const vr_seg_t *s)
{
	return vr_bits_run(0, s->n);
}

/*
 * Takes the lowest run of set bits out of *bits: returns its first bit in
 * *first and its length (0 when *bits is empty).
 */
static inline unsigned vr_bits_take_run(uint64_t *bits, unsigned *first)
{
	if (!*bits)
		return 0;
	unsigned i = (unsigned)__builtin_ctzll(*bits);
	uint64_t rest = ~(*bits >> i);
	unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - i;
	*bits = i + n >= 64 ? 0 : *bits & ~(((1ull << n) - 1) << i);
	*first = i;
	return n;
}


/* The writer lock. In a debug build (./configure --enable-debug) both check
 * every invariant of the registry (vr_registry_check_locked) and abort with
 * the caller's name and the invariant that broke. */
void vr_registry_lock_at(const char *where);
void vr_registry_unlock_at(const char *where);
#define vr_registry_lock() vr_registry_lock_at(__func__)
#define vr_registry_unlock() vr_registry_unlock_at(__func__)

/*
 * The invariants (lock held): bare, optimistic, lost and touched pages are
 * volatile; no page is pending outside a mark; no leaf
 * without state stays in the tree; the counts of volatile pages, ranges
 * and leaves match the bits. Aborts naming where and what; returns if all
 * hold. Called by the lock functions in debug builds; tests call it.
 */
void vr_registry_check_locked(const char *where);
/* pthread_atfork handlers: both sides of fork get a usable registry. */
void vr_registry_atfork_prepare(void);
void vr_registry_atfork_parent(void);
void vr_registry_atfork_child(void);

/* Flags of vr_registry_each_seg_locked. */
#define VR_SEG_CREATE 1u  /* create the leaves that are missing */
#define VR_SEG_STATE  2u  /* skip segments where no page has state */

/*
 * Calls fn(seg, arg) for each segment of [lo, hi), in order, and stops at
 * the first that returns non-zero, returning that. With VR_SEG_CREATE a
 * missing leaf is created first; if metadata memory runs out, -ENOMEM is
 * returned before fn sees that segment. This is the only segment loop of
 * the core: callers express what to do with one segment. Without
 * VR_SEG_CREATE it changes nothing itself, and a reader inside
 * read_begin/end may call it too (u_registry's readers do).
 */
typedef int (*vr_seg_fn)(const vr_seg_t *seg, void *arg);
int vr_registry_each_seg_locked(uintptr_t lo, uintptr_t hi, unsigned flags,
                                vr_seg_fn fn, void *arg);

/* The bits of one kind for the segment's pages (0 where no leaf). */
uint64_t vr_seg_get(const vr_seg_t *seg, vr_pg_t kind);

/* Sets (on) or clears bits of one kind (not VR_PG_VOL: vr_seg_set_locked
 * and the clear functions keep the page and range counts) for the pages
 * in mask. One atomic read-modify-write: the signal handler sets lost,
 * bare and touch bits without the lock. */
void vr_seg_change_locked(const vr_seg_t *seg, vr_pg_t kind, uint64_t mask, bool on);

/*
 * Marks the pages in mask volatile (release order: saved words written
 * before are visible to a reader that sees the bit), adding lost_bits and
 * bare_bits; clears bare for the others in mask.
 */
void vr_seg_set_locked(const vr_seg_t *seg, uint64_t mask, uint64_t lost_bits,
                       uint64_t bare_bits);

/* The word a cookie displaced from page seg->vpn + i, and its setter. */
uintptr_t vr_seg_saved(const vr_seg_t *seg, unsigned i);
void vr_seg_save_locked(const vr_seg_t *seg, unsigned i, uintptr_t word);

/* The same words as an array (element i for page seg->vpn + i), for the
 * loops over every page of a segment (lock held, seg->leaf not NULL). */
uintptr_t *vr_seg_saved_words_locked(const vr_seg_t *seg);

/* Makes every page of [lo, hi) non-volatile, forgetting its state but its
 * userfaultfd registration, and frees leaves left empty. Returns the number
 * of pages that were volatile. */
size_t vr_registry_clear_locked(uintptr_t lo, uintptr_t hi);

/* As vr_registry_clear_locked, forgetting the registration too: the
 * mapping went away (munmap, or a mapping placed over it). */
size_t vr_registry_forget_locked(uintptr_t lo, uintptr_t hi);

/* Calls fn(lo, hi, arg) for each maximal run of registered pages, in
 * order (the child of fork registers them again). */
void vr_registry_each_reg_locked(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                                 void *arg);

/* Creates the leaves of [lo, hi), so that nothing can fail for lack of
 * metadata once the caller starts changing memory. 0, or -ENOMEM with
 * nothing left behind. */
int vr_registry_reserve_locked(uintptr_t lo, uintptr_t hi);

/* Frees the leaves of [lo, hi) that hold no volatile page (after a failed
 * mark created some). Changes no page's state. */
void vr_registry_trim_locked(uintptr_t lo, uintptr_t hi);

/* Moves the state of [from, from + n) to [to, to + n) (mremap), forgetting
 * whatever the destination held. Returns pages moved. */
size_t vr_registry_move_locked(uintptr_t from, uintptr_t to, size_t n);

/* Lock-free and RCU-free (it runs inside urcu-bp's own mmap calls): does any
 * page of [lo, hi) have state (volatile, or registered with userfaultfd)?
 * Exact unless a writer changes the range at the same moment. */
bool vr_registry_any(uintptr_t lo, uintptr_t hi);

/* Lock-free: is page vpn volatile? lost and bare, if not NULL, get its bits. */
bool vr_registry_page(uintptr_t vpn, bool *lost, bool *bare);

/* A page's bits as one word each, for a reader inside read_begin/end
 * (the signal handler). Returns false if no leaf covers vpn. */
typedef struct vr_page_bits_s {
	bool vol, lost, bare, opt, reg, touch;
} vr_page_bits_t;
bool vr_registry_bits(uintptr_t vpn, vr_page_bits_t *out);

/* Signal handler: records that page vpn was lost (refilled or zero-filled).
 * Lock-free, inside read_begin/end. */
void vr_registry_note_lost(uintptr_t vpn);

/* For tests (u_lostrace): the word that holds page vpn's lost bit, bit
 * vpn % VR_LEAF_PAGES, or NULL where no leaf is. */
uint64_t *vr_registry_lost_word(uintptr_t vpn);

/* Signal handler (read side): the word the cookie displaced from page vpn,
 * if the page is volatile with a cookie. */
bool vr_registry_saved(uintptr_t vpn, uintptr_t *word);

/* Signal handler: page vpn no longer holds a cookie (restored on first
 * touch). Lock-free, inside read_begin/end. */
void vr_registry_note_bare(uintptr_t vpn);

/* Signal handler: the first touch of page vpn of a fallback optimistic
 * range has been handled; a thread that faulted on it meanwhile retries.
 * Cleared whenever the page is marked or unmarked. */
void vr_registry_note_touched(uintptr_t vpn);

/* The range containing page vpn: [*lo, *hi) in page numbers; false if vpn is
 * not volatile. Takes the writer lock. */
bool vr_registry_range_at(uintptr_t vpn, uintptr_t *lo, uintptr_t *hi);

/* Volatile pages and ranges now. */
size_t vr_registry_npages(void);
size_t vr_registry_nranges(void);

/* Leaves in use and on the free list (tests). */
size_t vr_registry_nleaves(void);

void vr_registry_read_begin(void);
void vr_registry_read_end(void);

#endif /* VR_REGISTRY_H */
