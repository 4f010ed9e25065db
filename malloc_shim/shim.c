/*
 * shim.c - the malloc family of libvrange_preload.so, forwarded to the
 * jemalloc linked into it (jemalloc_private.h).
 *
 * Entry points (exported): calloc, realloc, reallocarray, memalign,
 * posix_memalign, aligned_alloc, valloc, pvalloc, malloc_usable_size,
 * free_sized, free_aligned_sized, mallinfo, mallinfo2, malloc_trim,
 * malloc_stats, malloc_info, mallopt, and glibc's __libc_* names for
 * them; malloc and free (and __libc_malloc, __libc_free, cfree) are
 * jemalloc's (below). Hidden helpers for the C++ operators (cxx.cc):
 * vr_shim_alloc; the free paths, vr_shim_free and vr_shim_free_sized, are
 * inline in shim.h.
 *
 * Why the shim defines the family instead of leaving it to jemalloc: the
 * dynamic linker resolves a symbol to the first definition in the global
 * lookup scope, which is the executable, then the LD_PRELOAD objects, then
 * the executable's dependencies breadth first (libc among them). Exported
 * by the preload itself, our malloc comes before libc's for every object,
 * libc's internal allocations included (glibc calls malloc through its PLT
 * so that it can be interposed). The same holds for the C++
 * operators (cxx.cc) and for jemalloc's own extended API under its standard
 * names (jemalloc_api.c), so that a program or plugin that calls mallocx or
 * mallctl reaches the one jemalloc instance in the process.
 *
 * jemalloc itself is linked in under private names (je_malloc, je_mallocx,
 * ...: jemalloc-private.sh), not loaded as libjemalloc.so.2: that library
 * depends on libstdc++, libm and libgcc_s, about 1.3 MB of RSS in every C
 * program. Its calls are direct calls, which no other object can interpose
 * and which never go through the dynamic linker: no recursion at start-up,
 * and jemalloc initialises itself on its first call, whoever makes it.
 *
 * malloc and free are not defined here: the preload exports jemalloc's own
 * under those names (jemalloc-private.sh), so a program's malloc and free
 * cost what they cost under a plain jemalloc preload, to the instruction.
 * A malloc wrapper that only tested one thread-local limit cost 3.4% more
 * instructions on small-allocation churn (cachegrind), and a free that
 * tested one word before jumping into jemalloc's cost 1.8%, about as much
 * in time or more. Neither is needed: jemalloc creates every arena with the
 * shim's extent hooks (extents.c), huge blocks are counted and advised as
 * they are freed, and a vrange_malloc object that reaches jemalloc's free
 * is caught as its arena purges it (purgeable.c).
 *
 * The other allocation paths end with vr_ext_after_alloc, which counts and
 * advises huge calloc'd blocks (extents.c). errno: set to ENOMEM (or
 * EINVAL) exactly where glibc sets it; free and posix_memalign never
 * change it.
 */
#include "internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jemalloc_private.h"

#include "shim.h"

/* C23; glibc 2.36 does not declare them yet. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t alignment, size_t size);

/* jemalloc leaves mallocx(0) undefined; malloc(0) must return a unique
 * pointer, so a zero request takes the smallest size class. */
static inline size_t nz(size_t n)
{
	return n ? n : 1;
}

static inline bool pow2(size_t a)
{
	return a && !(a & (a - 1));
}

static size_t page_size(void)
{
	static size_t ps;
	size_t p = __atomic_load_n(&ps, __ATOMIC_RELAXED);
	if (vr_unlikely(!p)) {
		long r = sysconf(_SC_PAGESIZE);
		p = r > 0 ? (size_t)r : 4096;
		__atomic_store_n(&ps, p, __ATOMIC_RELAXED);
	}
	return p;
}

/*
 * jemalloc's own malloc and free serve requests without flags: in jemalloc
 * 5.3 they take an inlined thread-cache fast path that mallocx and dallocx
 * do not (measured here: small-allocation churn 1.58x slower through
 * mallocx/dallocx than under a plain jemalloc preload). jemalloc is linked
 * into this library under private names (jemalloc_private.h), so they are
 * direct calls: nothing to look up at start-up, nothing to recurse into.
 *
 * What jemalloc's malloc and free do with errno is what ours promise:
 * malloc(0) is a unique pointer, failure sets ENOMEM, and success, free
 * included, leaves errno alone. The only system calls they make on their
 * way are mmap, which fails only when malloc fails, and the purges of
 * extents.c, which keep errno (raw system calls); jemalloc's own purges
 * (arenas that are not hooked) are madvise calls that do not fail on
 * memory jemalloc owns. tests/shim/t_shim.c checks it over thousands of
 * purging frees.
 */

/*
 * The one allocation path. Without flags, jemalloc's malloc (errno: see
 * above); with flags, mallocx, and errno is left alone on failure too
 * (callers set it; posix_memalign must not), since jemalloc's failed mmap
 * may have changed it.
 */
static inline void *alloc(size_t n, int flags)
{
	void *p;
	if (flags == 0) {
		p = je_malloc(n);
	} else {
		int saved = errno;
		p = je_mallocx(nz(n), flags);
		if (vr_unlikely(!p))
			errno = saved;
	}
	if (vr_likely(p != NULL))
		vr_ext_after_alloc(p, n);
	return p;
}

static inline void *alloc_or_enomem(size_t n, int flags)
{
	void *p = alloc(n, flags);
	if (vr_unlikely(!p))
		errno = ENOMEM;
	return p;
}

/* --- helpers for cxx.cc ---------------------------------------------- */

void *vr_shim_alloc(size_t n, size_t align)
{
	return alloc(n, vr_shim_align_flag(align));
}

/* --- the C family ----------------------------------------------------- */

/* malloc: jemalloc's own (see the top of this file). */

/* free: jemalloc's own (jemalloc-private.sh), like malloc. */


VRANGE_EXPORT void *calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	/* MALLOCX_ZERO lets jemalloc skip the clearing of pages it knows are
	 * zero (fresh mappings). From VR_ZERO_MIN on, zero.c has the kernel
	 * clear the block instead of jemalloc's memset (see there). */
	if (n < VR_ZERO_MIN)
		return alloc_or_enomem(n, MALLOCX_ZERO);
	void *p = je_malloc(n);
	if (vr_unlikely(!p))
		return NULL; /* errno is ENOMEM (see je_malloc above) */
	vr_ext_after_calloc(p, n);
	vr_zero_fill(p, n);
	return p;
}

VRANGE_EXPORT void *realloc(void *p, size_t n)
{
	if (!p)
		return alloc_or_enomem(n, 0);
	if (n == 0) {
		/* glibc frees and returns NULL, errno untouched (C23 leaves this
		 * undefined; programs written for glibc rely on it). */
		vr_shim_free(p);
		return NULL;
	}
	if (vr_unlikely(vr_pg_owns(p)))
		vr_pg_die_free("realloc()", p);
	int saved = errno;
	void *q = je_rallocx(p, n, 0);
	if (vr_unlikely(!q)) {
		/* The old block is left as it was, as the standard requires. */
		errno = ENOMEM;
		return NULL;
	}
	errno = saved;
	vr_ext_after_alloc(q, n);
	return q;
}

VRANGE_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

VRANGE_EXPORT void *memalign(size_t align, size_t n)
{
	/* glibc's rules: an alignment beyond half the address space is
	 * EINVAL; any other is rounded up to a power of two. */
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!pow2(align))
		align = align < 2 ? 1 : (size_t)1 << (64 - __builtin_clzl(align));
	return alloc_or_enomem(n, vr_shim_align_flag(align));
}

VRANGE_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	/* The result is the error number: errno stays as it was, whatever
	 * happens (POSIX), so alloc's own save and restore is all we need. */
	if (!pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	void *p = alloc(n, vr_shim_align_flag(align));
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

VRANGE_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	/* A non-power-of-two alignment is refused (C17 DR 460, glibc >= 2.38,
	 * jemalloc) rather than rounded up as glibc 2.36 does: rounding would
	 * break free_aligned_sized, which repeats the caller's alignment. */
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_or_enomem(n, vr_shim_align_flag(align));
}

VRANGE_EXPORT void *valloc(size_t n)
{
	return alloc_or_enomem(n, vr_shim_align_flag(page_size()));
}

VRANGE_EXPORT void *pvalloc(size_t n)
{
	/* jemalloc 5.3.0 has no pvalloc: with a plain jemalloc preload,
	 * glibc's pvalloc answers and free() of its result crashes. Whole
	 * pages, at least one. */
	size_t ps = page_size(), r;
	if (__builtin_add_overflow(n, ps - 1, &r)) {
		errno = ENOMEM;
		return NULL;
	}
	r &= ~(ps - 1);
	return alloc_or_enomem(r ? r : ps, vr_shim_align_flag(ps));
}

VRANGE_EXPORT size_t malloc_usable_size(void *p)
{
	return p ? je_sallocx(p, 0) : 0;
}

VRANGE_EXPORT void free_sized(void *p, size_t size)
{
	/* sdallocx spares jemalloc the lookup of the size class; like
	 * jemalloc's own sized operator delete, a wrong size is undefined. */
	vr_shim_free_sized_fn("free_sized()", p, size, 0);
}

VRANGE_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	vr_shim_free_sized_fn("free_aligned_sized()", p, size, pow2(align) ? align : 0);
}

/* --- glibc's introspection, answered from jemalloc's statistics -------- */

/* Refreshes jemalloc's statistics (they are cached per "epoch"). */
static void stats_refresh(void)
{
	uint64_t epoch = 1;
	size_t len = sizeof epoch;
	je_mallctl("epoch", &epoch, &len, &epoch, len);
}

static size_t stat_size(const char *name)
{
	size_t v = 0, len = sizeof v;
	if (je_mallctl(name, &v, &len, NULL, 0) != 0)
		return 0;
	return v;
}

VRANGE_EXPORT struct mallinfo2 mallinfo2(void)
{
	int saved = errno;
	struct mallinfo2 mi;
	memset(&mi, 0, sizeof mi);
	stats_refresh();
	size_t mapped = stat_size("stats.mapped");
	size_t allocated = stat_size("stats.allocated");
	/* glibc's meaning, in jemalloc's terms: arena = memory obtained from
	 * the system, uordblks = in use by the program, fordblks = obtained
	 * but not in use; jemalloc has no separate mmapped-chunk class and no
	 * top chunk (keepcost), and glibc itself leaves usmblks at zero. */
	mi.arena = mapped;
	mi.uordblks = allocated;
	mi.fordblks = mapped > allocated ? mapped - allocated : 0;
	errno = saved;
	return mi;
}

static int clamp_int(size_t v)
{
	return v > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)v;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
VRANGE_EXPORT struct mallinfo mallinfo(void)
{
	/* The old int-sized interface, saturated rather than wrapped. */
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi;
	memset(&mi, 0, sizeof mi);
	mi.arena = clamp_int(m2.arena);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.fordblks = clamp_int(m2.fordblks);
	return mi;
}
#pragma GCC diagnostic pop

VRANGE_EXPORT int malloc_trim(size_t pad)
{
	/* Purges every arena now; forced purges are let through for this
	 * thread so that the memory really goes back (glibc's promise), not
	 * merely becomes reclaimable. Returns 1 if resident memory shrank. */
	int saved = errno;
	char name[64];
	stats_refresh();
	size_t before = stat_size("stats.resident");
	snprintf(name, sizeof name, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
	vr_ext_trim_begin();
	je_mallctl(name, NULL, NULL, NULL, 0);
	vr_ext_trim_end();
	stats_refresh();
	size_t after = stat_size("stats.resident");
	errno = saved;
	return after < before;
}

VRANGE_EXPORT void malloc_stats(void)
{
	/* glibc's summary lines, so that scripts reading them still parse. */
	int saved = errno;
	stats_refresh();
	size_t mapped = stat_size("stats.mapped");
	size_t allocated = stat_size("stats.allocated");
	fprintf(stderr,
	        "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
	        "Total (incl. mmap):\nsystem bytes     = %10zu\n"
	        "in use bytes     = %10zu\nmax mmap regions = %10u\n"
	        "max mmap bytes   = %10lu\n",
	        mapped, allocated, mapped, allocated, 0u, 0ul);
	fprintf(stderr, "libvrange: %llu bytes made lazily reclaimable (MADV_FREE) "
	        "in %llu calls\n", (unsigned long long)vr_ext_lazy_bytes(),
	        (unsigned long long)vr_ext_lazy_calls());
	errno = saved;
}

VRANGE_EXPORT int mallopt(int param, int value)
{
	/* glibc's tunables mean nothing to jemalloc (MALLOC_CONF configures
	 * it). Succeed, as glibc does for the parameters it knows, without
	 * waking glibc's allocator. */
	return 1;
}

/* Arena i's figure NAME ("mapped", "pdirty", ...), from a refreshed epoch;
 * 0 if jemalloc does not know it. */
static size_t arena_stat(unsigned i, const char *name)
{
	char full[96];
	snprintf(full, sizeof full, "stats.arenas.%u.%s", i, name);
	return stat_size(full);
}

VRANGE_EXPORT int malloc_info(int options, FILE *fp)
{
	/* glibc's XML, so that tools that parse it still find their numbers,
	 * with one <heap> per jemalloc arena. glibc's terms in jemalloc's:
	 * "rest" (free chunks) = dirty and muzzy pages, freed by the program
	 * and not yet purged; system and aspace = what the arena mapped.
	 * jemalloc has no fastbins and no mmapped-chunk class: those totals
	 * are zero, as are the per-size free lists (<sizes>). */
	if (options != 0) {
		/* The manual's contract: -1 and errno. glibc 2.36 itself
		 * returns EINVAL and leaves errno alone; a caller that tests
		 * for non-zero sees the failure either way. */
		errno = EINVAL;
		return -1;
	}
	int saved = errno;
	stats_refresh();
	size_t ps = page_size(), free_total = 0;
	unsigned narenas = 0;
	size_t len = sizeof narenas;
	je_mallctl("arenas.narenas", &narenas, &len, NULL, 0);
	fputs("<malloc version=\"1\">\n", fp);
	for (unsigned i = 0; i < narenas; i++) {
		char name[64];
		bool init = false;
		len = sizeof init;
		snprintf(name, sizeof name, "arena.%u.initialized", i);
		if (je_mallctl(name, &init, &len, NULL, 0) != 0 || !init)
			continue;
		size_t mapped = arena_stat(i, "mapped");
		size_t rest = (arena_stat(i, "pdirty") + arena_stat(i, "pmuzzy")) * ps;
		free_total += rest;
		fprintf(fp, "<heap nr=\"%u\">\n<sizes>\n</sizes>\n"
		        "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		        "<total type=\"rest\" count=\"%d\" size=\"%zu\"/>\n"
		        "<system type=\"current\" size=\"%zu\"/>\n"
		        "<system type=\"max\" size=\"%zu\"/>\n"
		        "<aspace type=\"total\" size=\"%zu\"/>\n"
		        "<aspace type=\"mprotect\" size=\"%zu\"/>\n</heap>\n",
		        i, rest ? 1 : 0, rest, mapped, mapped, mapped, mapped);
	}
	size_t mapped = stat_size("stats.mapped");
	fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
	        "<total type=\"rest\" count=\"%d\" size=\"%zu\"/>\n"
	        "<total type=\"mmap\" count=\"0\" size=\"0\"/>\n"
	        "<system type=\"current\" size=\"%zu\"/>\n"
	        "<system type=\"max\" size=\"%zu\"/>\n"
	        "<aspace type=\"total\" size=\"%zu\"/>\n"
	        "<aspace type=\"mprotect\" size=\"%zu\"/>\n</malloc>\n",
	        free_total ? 1 : 0, free_total, mapped, mapped, mapped, mapped);
	errno = saved;
	return 0;
}

/*
 * glibc's other names for its allocator, public since GLIBC_2.2.5: a
 * program (or a malloc-debugging library) that calls __libc_malloc or
 * __libc_free directly would otherwise reach glibc's heap and hand its
 * blocks to jemalloc, or the reverse. glibc never calls them through its
 * PLT, so interposing them changes only such callers. __libc_malloc and
 * __libc_free are jemalloc's malloc and free themselves
 * (jemalloc-private.sh), and so is cfree, the old name of free that
 * binaries built against glibc before 2.26 may still call.
 */
VRANGE_EXPORT void *__libc_calloc(size_t nmemb, size_t size) __attribute__((alias("calloc"), copy(calloc)));
VRANGE_EXPORT void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc"), copy(realloc)));
VRANGE_EXPORT void *__libc_memalign(size_t align, size_t n) __attribute__((alias("memalign"), copy(memalign)));
VRANGE_EXPORT void *__libc_valloc(size_t n) __attribute__((alias("valloc"), copy(valloc)));
VRANGE_EXPORT void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc"), copy(pvalloc)));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
VRANGE_EXPORT struct mallinfo __libc_mallinfo(void) __attribute__((alias("mallinfo"), copy(mallinfo)));
#pragma GCC diagnostic pop
VRANGE_EXPORT int __libc_mallopt(int param, int value) __attribute__((alias("mallopt"), copy(mallopt)));

__attribute__((constructor))
static void shim_constructor(void)
{
	vr_ext_init();
	vr_ext_configure();
}
