/*
 * jemalloc_api.c - jemalloc's non-standard API under its standard names,
 * exported by libvrange_preload.so and served by the jemalloc linked into
 * it: mallocx, rallocx, xallocx, sallocx, dallocx, sdallocx, nallocx,
 * mallctlnametomib, malloc_stats_print (mallctl and mallctlbymib are
 * jemalloc's own, exported by jemalloc-private.sh).
 *
 * Why: a program (or a library such as redis's) that calls them directly
 * must reach the allocator that owns its malloc'ed blocks: dallocx of a
 * block from malloc, mallctl("arenas.lookup") on it. The preload comes
 * first in the global lookup scope, so these bind here even in a program
 * linked with -ljemalloc (its libjemalloc.so.2 then serves nobody).
 *
 * They follow the rules of the shim's own entry points (shim.c): a new
 * block from an automatic arena ends with vr_ext_after_alloc (huge calloc'd
 * blocks are counted and advised), and the reallocations refuse a
 * vrange_malloc object (a free of one is caught by purgeable.c).
 * jemalloc's contract is otherwise untouched: mallocx(0) stays undefined,
 * errno is whatever jemalloc leaves.
 */
#include "internal.h"

#include "jemalloc_private.h"

#include "shim.h"

/* The standard names, as <jemalloc/jemalloc.h> declares them without
 * JEMALLOC_NO_RENAME (jemalloc_private.h includes it with). */
void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);
int mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
void malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                        const char *opts);

/* MALLOCX_ARENA(a) sets bits 20 and up. A block of an arena the caller
 * names is the caller's business: no huge-block advice on memory that its
 * own hooks may have provided. */
#define VR_MALLOCX_ARENA_BITS (~0u << 20)

static inline void after(void *p, size_t size, int flags)
{
	if (vr_likely(p != NULL) && !((unsigned)flags & VR_MALLOCX_ARENA_BITS))
		vr_ext_after_alloc(p, size);
}

VRANGE_EXPORT void *mallocx(size_t size, int flags)
{
	void *p = je_mallocx(size, flags);
	after(p, size, flags);
	return p;
}

VRANGE_EXPORT void *rallocx(void *ptr, size_t size, int flags)
{
	if (vr_unlikely(vr_pg_owns(ptr)))
		vr_pg_die_free("rallocx()", ptr);
	void *p = je_rallocx(ptr, size, flags);
	after(p, size, flags);
	return p;
}

VRANGE_EXPORT size_t xallocx(void *ptr, size_t size, size_t extra, int flags)
{
	/* In place or not at all: no new arena to hook. A vrange_malloc
	 * object would grow past what its lock count covers. */
	if (vr_unlikely(vr_pg_owns(ptr)))
		vr_pg_die_free("xallocx()", ptr);
	return je_xallocx(ptr, size, extra, flags);
}

VRANGE_EXPORT size_t sallocx(const void *ptr, int flags)
{
	return je_sallocx(ptr, flags);
}

VRANGE_EXPORT void dallocx(void *ptr, int flags)
{
	je_dallocx(ptr, flags);
}

VRANGE_EXPORT void sdallocx(void *ptr, size_t size, int flags)
{
	/* Sized: tested first, as the shim's sized frees are (shim.h). */
	if (vr_unlikely(vr_pg_owns(ptr)))
		vr_pg_die_free("sdallocx()", ptr);
	je_sdallocx(ptr, size, flags);
}

VRANGE_EXPORT size_t nallocx(size_t size, int flags)
{
	return je_nallocx(size, flags);
}

VRANGE_EXPORT int mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp)
{
	return je_mallctlnametomib(name, mibp, miblenp);
}

VRANGE_EXPORT void malloc_stats_print(void (*write_cb)(void *, const char *),
                                  void *cbopaque, const char *opts)
{
	je_malloc_stats_print(write_cb, cbopaque, opts);
}
