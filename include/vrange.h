/*
 * vrange.h - volatile ranges for stock Linux (libvrange).
 *
 * This is the only installed header of libvrange. Memory marked volatile
 * holds data the application can regenerate: under memory pressure the
 * kernel may discard its pages instead of swapping or killing the process.
 * Before using the memory again the application marks it non-volatile and
 * learns, page by page, whether anything was discarded ("purged").
 *
 * Conventions, shared by every function below:
 *  - Addresses must be page aligned; lengths are rounded up to whole pages,
 *    as madvise(2) does. A zero length succeeds and does nothing.
 *  - Failure returns -1 with errno set exactly as madvise(2) would set it
 *    (EINVAL: unaligned address, overflowing length, bad mode or flags, or a
 *    mapping MADV_FREE cannot take such as a shared or file mapping, mlocked
 *    or hugetlb memory; ENOMEM: part of the range is not mapped), and then
 *    nothing was changed.
 *  - Purge reporting is exact per page: unmarking a sub-range reports only
 *    pages inside it, and a page lost while volatile is reported lost even if
 *    it was marked volatile again before being unmarked.
 *  - A purged page reads as zeros after it is marked non-volatile; a page that
 *    survived keeps every byte. Once non-volatile, a page stays resident until
 *    it is marked volatile again.
 *  - Do not read or write a page while it is volatile: its first word holds a
 *    purge cookie. A page written while volatile is reported purged and keeps
 *    what was written.
 *
 * Two libraries provide these functions. libvrange.so (-lvrange,
 * `pkg-config --libs vrange`) has every function declared VRANGE_EXPORT.
 * libvrange_preload.so (-lvrange_preload, `pkg-config --libs vrange-preload`,
 * or LD_PRELOAD) has them too, and those declared VRANGE_PRELOAD_EXPORT:
 * the purgeable heap and Darwin's names, which need its allocator. Linking
 * it makes it the program's malloc (libvrange_preload(7)).
 *
 * See vrange(3) for the full contract, the backends and the configuration.
 */
#ifndef VRANGE_H
#define VRANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VRANGE_EXPORT __attribute__((visibility("default")))
#else
#define VRANGE_EXPORT
#endif
/* Defined only in libvrange_preload.so (pkg-config vrange-preload). */
#define VRANGE_PRELOAD_EXPORT VRANGE_EXPORT

/* Modes of vrange(), numbered as in the v10 kernel patch. */
#define VRANGE_VOLATILE     0
#define VRANGE_NONVOLATILE  1
/* Spelling used by the v10 test suite. */
#define VRANGE_NOVOLATILE   VRANGE_NONVOLATILE

/*
 * vrange - mark [start, start + len) volatile or non-volatile.
 *
 * Same shape as the v10 system call. Returns the number of bytes processed
 * (len rounded up to whole pages), or -1 and errno with nothing changed.
 * With VRANGE_NONVOLATILE and a non-NULL purged, *purged is set to 1 if any
 * page in the range was purged while volatile and to 0 otherwise (exact per
 * page, unlike v10's per-range flag); purged is ignored with VRANGE_VOLATILE.
 *
 * Thread-safe. Not async-signal-safe.
 */
VRANGE_EXPORT ssize_t vrange(void *start, size_t len, int mode, int *purged);

/* Flag of vrange_mark_volatile(): touch the range without unmarking it. */
#define VRANGE_OPTIMISTIC 0x1

/*
 * vrange_mark_volatile - let the kernel discard [addr, addr + len) under
 * memory pressure. flags is 0 or VRANGE_OPTIMISTIC. Marking a page that is
 * already volatile keeps its history (a page already lost stays reported
 * lost). Returns 0, or -1 and errno with nothing changed.
 *
 * With VRANGE_OPTIMISTIC the application may keep reading and writing the
 * range without unmarking it: surviving pages hold their bytes (no cookie
 * is ever visible), and touching a page the kernel took raises SIGBUS,
 * which the library resolves through the refill callback of the page
 * (vrange_set_refill) and retries the access; with no callback the signal
 * reaches the application's SIGBUS handler, or the default action, as if
 * the library were not there (after a use-after-purge report on stderr if
 * it is going to end the process, or with VRANGE_DEBUG=1). A page
 * the application writes is no longer discardable (the write cancels the
 * lazy free): this is the safe direction, and differs from the kernel patch,
 * where a written page stayed volatile. A system call that reads or writes
 * a purged page of an optimistic range fails with EFAULT and raises no
 * signal. Unmarking reports purged pages exactly, refilled ones included.
 * Works fully with the uffd backend (userfaultfd with UFFD_FEATURE_SIGBUS);
 * the cookie and eager backends emulate it with mprotect (vrange(3)), and
 * the native backend refuses VRANGE_OPTIMISTIC with EOPNOTSUPP.
 *
 * Thread-safe. Not async-signal-safe.
 */
VRANGE_EXPORT int vrange_mark_volatile(void *addr, size_t len, unsigned flags);

/*
 * vrange_mark_nonvolatile - make [addr, addr + len) ordinary memory again.
 * If purged is not NULL, *purged is 1 if any page of the range was purged
 * while volatile, else 0. Pages of the range that were not volatile are left
 * alone and count as intact. Returns 0, or -1 and errno with nothing changed.
 *
 * Thread-safe. Not async-signal-safe.
 */
VRANGE_EXPORT int vrange_mark_nonvolatile(void *addr, size_t len, int *purged);

/*
 * vrange_mark_nonvolatile_vec - as vrange_mark_nonvolatile(), reporting per
 * page: vec (one byte per page of the rounded length, as for mincore(2))
 * receives vec[i] = 1 if page i was purged, else 0. Returns the number of
 * purged pages, or -1 and errno (EFAULT if vec is NULL) with nothing changed.
 *
 * Thread-safe. Not async-signal-safe.
 */
VRANGE_EXPORT ssize_t vrange_mark_nonvolatile_vec(void *addr, size_t len,
                                                  unsigned char *vec);

/*
 * Refill callback of an optimistic range: called from the SIGBUS handler
 * to fill buf (page_size bytes) with the contents of the purged page at
 * page; the library then installs buf at page in one step, so that other
 * threads see the whole page or wait. Returns 0, or non-zero when it cannot
 * (the fault is then reported and delivered). Must be async-signal-safe:
 * no malloc, no locks another thread may hold.
 */
typedef int (*vrange_refill_fn)(void *page, void *buf, size_t page_size, void *arg);

/*
 * vrange_set_refill - use fn(page, buf, page_size, arg) to regenerate the
 * purged pages of [addr, addr + len) (fn NULL removes it). The callback
 * stays with the addresses, whether volatile or not, until replaced or
 * removed. Returns 0, or -1 and errno (EINVAL for an unaligned address or
 * overflowing length, ENOMEM if out of memory).
 *
 * Thread-safe. Not async-signal-safe.
 */
VRANGE_EXPORT int vrange_set_refill(void *addr, size_t len, vrange_refill_fn fn,
                                    void *arg);

/* Counters since start-up, and the state now. */
struct vrange_stats {
	uint64_t volatile_bytes;   /* bytes volatile now */
	uint64_t volatile_ranges;  /* ranges volatile now (maximal runs) */
	uint64_t pages_marked;     /* pages in successful mark calls; a page
	                              marked while already volatile counts again */
	uint64_t pages_unmarked;   /* volatile pages made non-volatile */
	uint64_t pages_purged;     /* pages reported purged at unmark */
	uint64_t pages_refilled;   /* pages refilled by a refill callback */
	uint64_t sigbus_taken;     /* faults on purged pages taken by the library */
	uint64_t budget_purges;    /* pages purged by a budget: 0 in this
	                              version, which has no purge tracker */
	uint64_t pages_dropped;    /* volatile pages forgotten by munmap, mremap
	                              or a mapping placed over them */
	uint64_t shim_lazy_bytes;  /* LD_PRELOAD shim: bytes of freed heap handed
	                              to the kernel lazily (MADV_FREE) */
	uint64_t purgeable_intact; /* purgeable objects locked (lock count 0 -> 1)
	                              with every page intact */
	uint64_t purgeable_purged; /* purgeable objects locked (0 -> 1) after a
	                              page was purged */
	char backend[16];          /* name of the backend in use */
	char selection[256];       /* why earlier backends were refused */
};

/*
 * The purgeable heap (libvrange_preload.so, preloaded or linked with
 * -lvrange_preload, pkg-config vrange-preload; libvrange.so alone does not
 * have it: -lvrange gives "undefined reference" for these names).
 *
 * Objects of any size, rounded up to whole pages and page aligned, from a
 * region of address space the library reserves for them (a dedicated
 * jemalloc arena). An object has a lock count, as Mozilla's VolatileBuffer:
 * it starts at 1 (locked: ordinary memory); vrange_unlock decrements it and
 * at 0 the object becomes volatile (the kernel may discard it under memory
 * pressure, and it must not be read or written); vrange_lock increments it
 * and, going from 0 to 1, makes it non-volatile again and reports whether
 * anything was lost. The metadata (size, count) lives outside the object.
 *
 * Pointers of the two heaps do not mix: free(), realloc() or operator
 * delete of a vrange_malloc object, and vrange_free() of anything that is
 * not a live vrange_malloc object (a malloc'd pointer, an interior pointer,
 * a double free), print "libvrange: ... of a vrange_malloc object <ptr>"
 * (or "vrange_free() of <ptr>, which is not a live vrange_malloc object")
 * and abort. vrange_lock and vrange_unlock of such a pointer fail with
 * EINVAL instead.
 *
 * All of them are thread-safe (different objects in parallel; calls on one
 * object are serialised) and not async-signal-safe. After fork the child
 * keeps every object with its count and volatile state.
 */

/*
 * vrange_malloc - a new object of size bytes (rounded up to whole pages;
 * 0 gives one page), page aligned, locked (count 1). Its contents are
 * unspecified, as malloc's. Returns NULL and ENOMEM when out of memory or
 * when the region cannot be reserved; errno is kept on success.
 */
VRANGE_PRELOAD_EXPORT void *vrange_malloc(size_t size);

/*
 * vrange_free - free an object, locked or not (a volatile one is unmarked
 * first). NULL does nothing. Anything else that vrange_malloc did not
 * return, or already freed, aborts with a message. Keeps errno.
 */
VRANGE_PRELOAD_EXPORT void vrange_free(void *ptr);

/*
 * vrange_unlock - decrement the lock count; when it reaches 0 the object is
 * marked volatile. Returns 0, or -1 and errno: EINVAL if ptr is not a live
 * vrange_malloc object or its count is already 0 (nothing changed), or the
 * errno of vrange_mark_volatile (the count is then unchanged).
 */
VRANGE_PRELOAD_EXPORT int vrange_unlock(void *ptr);

/*
 * vrange_lock - increment the lock count. Going from 0 to 1 the object is
 * marked non-volatile: returns 0 if every page survived (every byte kept)
 * and 1 if any page was purged; the whole object then reads as zeros. An
 * object that was already locked returns 0 (it could not be purged).
 * Returns -1 and errno: EINVAL if ptr is not a live vrange_malloc object,
 * EOVERFLOW if the count would pass INT32_MAX, or the errno of
 * vrange_mark_nonvolatile; the count is then unchanged.
 */
VRANGE_PRELOAD_EXPORT int vrange_lock(void *ptr);

/*
 * Darwin's names, on vrange_malloc objects, without nesting (Darwin's
 * objects have no count): malloc_make_purgeable unlocks a locked object
 * and leaves a volatile one volatile; malloc_make_nonpurgeable locks a
 * volatile object and leaves a locked one at its count. They return an
 * error number instead of setting errno, as Darwin does:
 * malloc_make_purgeable 0 (or EINVAL for a pointer that is not a live
 * vrange_malloc object; Darwin declares it void and ignores such calls),
 * malloc_make_nonpurgeable 0 if intact, EFAULT if purged (the object then
 * reads as zeros), EINVAL for a bad pointer. Thread-safe, not
 * async-signal-safe; errno is kept.
 */
VRANGE_PRELOAD_EXPORT int malloc_make_purgeable(void *ptr);
VRANGE_PRELOAD_EXPORT int malloc_make_nonpurgeable(void *ptr);

/*
 * vrange_get_stats - copy the statistics into *out. Returns 0, or -1 and
 * EFAULT if out is NULL. Counters are read one by one without a lock, so a
 * snapshot taken while other threads work may mix instants.
 *
 * Thread-safe. Async-signal-safe.
 */
VRANGE_EXPORT int vrange_get_stats(struct vrange_stats *out);

/*
 * vrange_backend - name of the backend chosen at start-up: "native",
 * "uffd", "cookie" or "eager". The string is static.
 *
 * Thread-safe. Async-signal-safe once the library is initialised (any call
 * into it, or its constructor, initialises it).
 */
VRANGE_EXPORT const char *vrange_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* VRANGE_H */
