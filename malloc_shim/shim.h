/*
 * shim.h - what the files of libvrange_preload.so share: the allocation
 * helpers of shim.c that the C++ operators (cxx.cc) call, and the arena
 * bookkeeping of extents.c that every allocation path checks, and the
 * region of the purgeable heap (purgeable.c) that every free path checks.
 *
 * Everything here is hidden (the shim is compiled with -fvisibility=hidden);
 * only the malloc family and the C++ operators are exported. Nothing here
 * takes a lock on the fast path.
 */
#ifndef VR_SHIM_H
#define VR_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jemalloc_private.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Declared hidden, not only defined so: the free and malloc fast paths
 * then read vr_pg_base and the rest directly, not through the GOT. */
#pragma GCC visibility push(hidden)

/* --- shim.c: the helpers behind operator new and delete ---------------- */

/*
 * n bytes aligned to align (a power of two; 0 or 1 means the default
 * alignment), or NULL on failure (errno is then ENOMEM, as after malloc;
 * operator new reports the failure by its new-handler loop and bad_alloc).
 */
void *vr_shim_alloc(size_t n, size_t align);

/* --- extents.c: extent hooks on every arena ----------------------------- */

/*
 * Allocations of fewer bytes than this, by the calling thread, need nothing
 * from extents.c, so the paths that test it (calloc, realloc, the aligned
 * family, operator new with an alignment) hand them straight to jemalloc.
 * It is 0 until the thread's first allocation through such a path (whose
 * slow path makes sure extents.c is initialised), then the size from which
 * jemalloc uses its huge arena (SIZE_MAX when it has none): huge calloc
 * requests are counted and advised (see huge_bias in extents.c). malloc
 * itself does not test it: it is jemalloc's own malloc. Initial-exec TLS:
 * one load and one compare.
 */
extern __thread size_t vr_ext_fast_limit __attribute__((tls_model("initial-exec")));

/* After an allocation p of n >= vr_ext_fast_limit bytes (zeroed: for
 * calloc): counts and advises a huge calloc'd block, and refreshes
 * vr_ext_fast_limit. */
void vr_ext_after_alloc_slow(void *p, size_t n, bool zeroed);

/* Reads what the hooks need to know of jemalloc's configuration (the huge
 * arena, opt.retain, the user's thp option); idempotent. The hooks
 * themselves are in place from jemalloc's first arena on. */
void vr_ext_init(void);
/* Applies VRANGE_FREE_DECAY_MS (from the shim's constructor, once the
 * environment is surely readable). */
void vr_ext_configure(void);

/* Does the user set jemalloc's option opt ("dirty_decay_ms") in any of the
 * places jemalloc reads its configuration from (jemalloc_env.c)? */
bool vr_je_user_sets(const char *opt);

/*
 * malloc_trim: while the calling thread is between begin and end, forced
 * purges are not refused, so that the pages really leave the process
 * (MADV_DONTNEED) as a glibc program calling malloc_trim expects.
 */
void vr_ext_trim_begin(void);
void vr_ext_trim_end(void);

/* Bytes and calls of MADV_FREE issued by the hooks since start-up. */
/* Counts len bytes handed to MADV_FREE (here, and by the purgeable heap's
 * arena, purgeable.c). */
void vr_ext_count_lazy(size_t len);
uint64_t vr_ext_lazy_bytes(void);
uint64_t vr_ext_lazy_calls(void);

/* After every successful allocation p of n bytes. */
static inline void vr_ext_after_alloc(void *p, size_t n)
{
	if (__builtin_expect(n >= vr_ext_fast_limit, 0))
		vr_ext_after_alloc_slow(p, n, false);
}

/* The same after calloc's allocation of n bytes, before it clears them. */
static inline void vr_ext_after_calloc(void *p, size_t n)
{
	if (__builtin_expect(n >= vr_ext_fast_limit, 0))
		vr_ext_after_alloc_slow(p, n, true);
}

/* --- zero.c: calloc's clearing ------------------------------------------ */

/* calloc requests of this size or more are cleared by vr_zero_fill. */
#define VR_ZERO_MIN ((size_t)256 << 10)

/* Zeroes [p, p + n): the partial pages at its ends by memset, the whole
 * pages by MADV_DONTNEED (the kernel's zeros; a page it already reclaimed
 * is not touched). Keeps errno. */
void vr_zero_fill(void *p, size_t n);

/* --- purgeable.c: the purgeable heap's region ------------------------- */

/*
 * The address range reserved for vrange_malloc objects: [vr_pg_base,
 * vr_pg_base + vr_pg_len), both 0 until the first vrange_malloc. Written
 * once; the free paths read them with one compare.
 */
extern uintptr_t vr_pg_base;
extern size_t vr_pg_len;

/* True if p lies in the purgeable region (one subtraction and compare:
 * below the base the difference wraps to a huge value). */
static inline bool vr_pg_owns(const void *p)
{
	/* Acquire: pairs with the release store of vr_pg_len after vr_pg_base. */
	size_t len = __atomic_load_n(&vr_pg_len, __ATOMIC_ACQUIRE);
	if (__builtin_expect(len == 0, 1))
		return false;
	return (uintptr_t)p - __atomic_load_n(&vr_pg_base, __ATOMIC_RELAXED) < len;
}

/* Dies with "<fn> of a vrange_malloc object <p>": fn is "free()" etc. */
__attribute__((noreturn))
void vr_pg_die_free(const char *fn, const void *p);

/* --- the free paths of shim.c and cxx.cc -------------------------------- */

/* MALLOCX_ALIGN for a power of two, without the int truncation of ffs(). */
static inline int vr_shim_align_flag(size_t align)
{
	return align > 1 ? MALLOCX_LG_ALIGN(__builtin_ctzl(align)) : 0;
}

/*
 * Frees p (NULL is fine): jemalloc's free itself. Nothing is tested first:
 * a vrange_malloc object that reaches jemalloc's free is caught by the
 * purgeable arena as jemalloc purges it (purgeable.c). errno: POSIX.1-2024
 * (and glibc since 2.33) promise that free keeps it, and so does
 * jemalloc's free (shim.c).
 */
static inline void vr_shim_free(void *p)
{
	je_free(p);
}

/* Frees p allocated with exactly n bytes (0 as for malloc(0)) and align
 * (sized deallocation; sdallocx, like free, keeps errno). Unlike free, it
 * tests p first (vr_pg_owns: a load and a test while no purgeable heap
 * exists): jemalloc takes the size it is given on trust, and the size a
 * program would give for a vrange_malloc object names a small class, whose
 * free goes to a thread cache, not to the purgeable arena. fn names the
 * caller in the diagnostic. */
static inline void vr_shim_free_sized_fn(const char *fn, void *p, size_t n, size_t align)
{
	if (vr_unlikely(vr_pg_owns(p)))
		vr_pg_die_free(fn, p);
	if (p && align <= 1)
		/* What jemalloc's own sized operator delete calls; a size of 0
		 * (malloc(0), new of 0 bytes) names the smallest class, which is
		 * what jemalloc gave. */
		je_je_sdallocx_noflags(p, n);
	else if (p)
		je_sdallocx(p, n ? n : 1, vr_shim_align_flag(align));
}

static inline void vr_shim_free_sized(void *p, size_t n, size_t align)
{
	vr_shim_free_sized_fn("a sized free (free_sized, sized delete)", p, n, align);
}

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VR_SHIM_H */
