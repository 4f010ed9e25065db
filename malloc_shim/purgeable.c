/*
 * purgeable.c - the purgeable heap: page-granular objects that the
 * application locks while it uses them and unlocks (makes volatile) while
 * it can afford to lose them.
 *
 * Entry points (exported): vrange_malloc, vrange_free, vrange_lock,
 * vrange_unlock, and Darwin's malloc_make_purgeable and
 * malloc_make_nonpurgeable. Hidden (shim.h): vr_pg_base and vr_pg_len, the
 * reserved region that realloc checks with one compare, and vr_pg_die_free.
 *
 * Where the objects live. One region of address space, reserved on the
 * first vrange_malloc (64 GiB, halved until the kernel accepts it, read-
 * write, MAP_NORESERVE so that nothing is committed before it is touched),
 * feeds a dedicated jemalloc arena ("arenas.create" with our extent hooks)
 * that vrange_malloc reaches with MALLOCX_ARENA. Every purgeable object is
 * therefore inside the region, and nothing else is except the arena's own
 * metadata: realloc tells a purgeable pointer from a heap one with a single
 * unsigned compare, and a later optimistic mode can register the region once.
 *
 * How free() of a purgeable object is caught although free is jemalloc's
 * own and tests nothing (shim.c says why): the arena purges every extent
 * the moment it is freed (its decay is 0), inside the free call, through
 * the purge hooks below, and every object is larger than the thread
 * caches' largest size class (arenas.tcache_max, 32 KiB by default;
 * smaller objects get a block of that size, whose untouched tail costs
 * address space only), so no free of one lands in a thread cache where a
 * plain malloc could take it. A purge that meets a page still marked live
 * in the side table below is a free that did not come from vrange_free.
 *
 * The hooks. alloc bumps a pointer through the region, lock-free (a
 * compare-and-swap), so that no lock of ours is ever held inside jemalloc
 * and fork needs no handler for it. dalloc and destroy are absent, which
 * tells jemalloc that extents are never given back: it keeps them as its
 * own "retained" extents and reuses them, so it is jemalloc's extent cache,
 * not a free list here, that recycles the region; freed pages still leave
 * the process through the purge hooks (MADV_FREE, at once: forced purges
 * are refused, see h_purge_forced). decommit is absent too (jemalloc
 * purges instead), commit always
 * succeeds (the region is always read-write), split and merge always
 * succeed (the region is one mapping).
 *
 * Per-object state (size, lock count, a magic word) cannot live in the
 * object's pages, which become volatile: it lives in a side table with one
 * 16-byte entry per page of the region, indexed by page number, in its own
 * MAP_NORESERVE mapping (only the table pages of live objects are ever
 * touched). Entries are guarded by 64 mutexes chosen by a hash of the page
 * number; the lock of an object is held across its mark or unmark, so that
 * lock and unlock of one object from two threads stay ordered with its
 * volatile state. Lock order: stripe, then the core's registry lock; no
 * stripe is held while jemalloc runs.
 *
 * Nesting is VolatileBuffer's: an object starts with a lock count of 1;
 * vrange_unlock decrements it and marks the object volatile when it reaches
 * 0; vrange_lock increments it and, going from 0 to 1, marks it non-volatile
 * and reports whether anything was lost. A purged object is cleared whole,
 * so that the caller never sees a mix of old and zero pages.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "jemalloc_private.h"

#include "glue.h"
#include "init.h"
#include "log.h"
#include "shim.h"
#include "stats.h"
#include "vrange.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif

#define PG_RESERVE_MAX (64ull << 30)
#define PG_RESERVE_MIN (256ull << 20)
#define PG_MAGIC 0x76725067u /* "vrPg": a live object starts at this page */
#define PG_NSTRIPES 64

typedef struct vr_pg_meta_s {
	uint32_t magic;  /* PG_MAGIC while live, 0 otherwise */
	int32_t locks;   /* lock count; 0 = volatile */
	uint64_t size;   /* bytes, a multiple of the page size */
} vr_pg_meta_t;

/* The region, published for free() (shim.h); 0 and 0 until reserved. */
uintptr_t vr_pg_base;
size_t vr_pg_len;

static uintptr_t bump;          /* next unused address of the region */
static uintptr_t region_end;
static vr_pg_meta_t *meta;      /* one entry per page of the region */
static unsigned arena;
static size_t min_alloc;        /* past the thread caches' largest class */
static int init_err;            /* 0, or why the heap cannot work */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t stripes[PG_NSTRIPES];

/* --- extent hooks of the dedicated arena ------------------------------- */

static void *h_alloc(extent_hooks_t *h, void *new_addr, size_t size,
                     size_t align, bool *zero, bool *commit, unsigned ind)
{
	uintptr_t cur = __atomic_load_n(&bump, __ATOMIC_RELAXED);
	if (align < vr_page_size)
		align = vr_page_size;
	for (;;) {
		uintptr_t start;
		if (new_addr) {
			/* jemalloc asks to grow an extent in place: only the
			 * end of what is handed out can. */
			if ((uintptr_t)new_addr != cur)
				return NULL;
			start = cur;
		} else {
			start = (cur + align - 1) & ~(uintptr_t)(align - 1);
		}
		if (start < cur || start > region_end || size > region_end - start)
			return NULL;
		if (__atomic_compare_exchange_n(&bump, &cur, start + size, false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			/* Never handed out before (extents never come back):
			 * untouched pages of a fresh mapping, zero, committed. */
			*zero = true;
			*commit = true;
			return (void *)start;
		}
	}
}

static bool h_commit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                     size_t len, unsigned ind)
{
	return false;
}

/*
 * The arena purges every extent as it is freed (decay 0), inside the free
 * call, and no object is small enough for a thread cache: so an object that
 * reaches jemalloc's free without vrange_free (free, delete, sdallocx, ...:
 * the shim's free is jemalloc's own and tests nothing) is purged here, still
 * marked live in the side table, before anything can reuse its pages. No
 * live object can be in a range jemalloc purges otherwise.
 */
static void check_freed(uintptr_t a, size_t len)
{
	size_t first = (a - vr_pg_base) >> vr_page_shift;
	size_t n = len >> vr_page_shift;
	for (size_t i = 0; i < n; i++)
		if (__atomic_load_n(&meta[first + i].magic, __ATOMIC_RELAXED) == PG_MAGIC)
			vr_die("free() of a vrange_malloc object %p (or delete, "
			       "free_sized, sdallocx...: only vrange_free frees it)",
			       (void *)(a + (i << vr_page_shift)));
}

static bool h_purge_lazy(extent_hooks_t *h, void *addr, size_t size, size_t off,
                         size_t len, unsigned ind)
{
	check_freed((uintptr_t)addr + off, len);
	/* vr_madvise keeps errno: this runs inside free paths. */
	if (vr_madvise((uintptr_t)addr + off, len, MADV_FREE) != 0)
		return true;
	vr_ext_count_lazy(len);
	return false;
}

static bool h_purge_forced(extent_hooks_t *h, void *addr, size_t size, size_t off,
                           size_t len, unsigned ind)
{
	/* Refused, so that jemalloc purges lazily (h_purge_lazy): with a
	 * purge at every free, MADV_DONTNEED made every new object fault its
	 * pages in again (a churn of purgeable objects took 3.7x the time it
	 * took with bins and decayed purges; with MADV_FREE, 1.6-1.8x).
	 * No check_freed here: jemalloc purges every extent freed from use
	 * lazily first, whatever the decays (a refused forced purge falls
	 * back to the lazy one; with a muzzy decay the lazy one comes first),
	 * and h_purge_lazy checks it then. */
	return true;
}

static bool h_split(extent_hooks_t *h, void *addr, size_t size, size_t a,
                    size_t b, bool committed, unsigned ind)
{
	return false;
}

static bool h_merge(extent_hooks_t *h, void *a, size_t asize, void *b,
                    size_t bsize, bool committed, unsigned ind)
{
	return false;
}

static extent_hooks_t pg_hooks = {
	.alloc = h_alloc,
	.dalloc = NULL,       /* never given back: jemalloc retains */
	.destroy = NULL,
	.commit = h_commit,
	.decommit = NULL,     /* jemalloc purges instead */
	.purge_lazy = h_purge_lazy,
	.purge_forced = h_purge_forced,
	.split = h_split,
	.merge = h_merge,
};

/* --- set-up ------------------------------------------------------------- */

static void *map_noreserve(size_t len)
{
	long r = vr_mmap_raw(NULL, len, PROT_READ | PROT_WRITE,
	                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return r < 0 && r > -4096 ? NULL : (void *)r;
}

/* The stripe locks are leaves below the API calls only; taking them all
 * before fork (after the application's prepare handlers, before the
 * core's registry lock: registration order) keeps the child's table
 * consistent. The child re-initialises them: its only thread owns them. */
static void pg_prepare(void)
{
	for (unsigned i = 0; i < PG_NSTRIPES; i++)
		pthread_mutex_lock(&stripes[i]);
}

static void pg_parent(void)
{
	for (unsigned i = PG_NSTRIPES; i-- > 0;)
		pthread_mutex_unlock(&stripes[i]);
}

static void pg_child(void)
{
	for (unsigned i = 0; i < PG_NSTRIPES; i++)
		pthread_mutex_init(&stripes[i], NULL);
}

static void pg_init_once(void)
{
	vr_init();
	for (unsigned i = 0; i < PG_NSTRIPES; i++)
		pthread_mutex_init(&stripes[i], NULL);

	/* A strict overcommit policy (vm.overcommit_memory=2) or an
	 * RLIMIT_AS refuses a large reservation even with MAP_NORESERVE:
	 * halve until it fits. */
	size_t len;
	void *r = NULL;
	for (len = PG_RESERVE_MAX; len >= PG_RESERVE_MIN; len /= 2)
		if ((r = map_noreserve(len)) != NULL)
			break;
	if (!r) {
		init_err = ENOMEM;
		return;
	}
	/* Objects are page-granular and purged page by page; a huge page
	 * would be split by the first MADV_FREE of a part of it and skipped
	 * by reclaim of a part. */
	vr_madvise((uintptr_t)r, len, MADV_NOHUGEPAGE);
	size_t mlen = (len >> vr_page_shift) * sizeof(vr_pg_meta_t);
	mlen = (mlen + vr_page_size - 1) & ~(vr_page_size - 1);
	meta = map_noreserve(mlen);
	if (!meta) {
		vr_munmap_raw(r, len);
		init_err = ENOMEM;
		return;
	}
	bump = (uintptr_t)r;
	region_end = (uintptr_t)r + len;
	__atomic_store_n(&vr_pg_base, (uintptr_t)r, __ATOMIC_RELEASE);
	__atomic_store_n(&vr_pg_len, len, __ATOMIC_RELEASE);

	/* jemalloc takes the arena's own metadata from the hooks too. */
	extent_hooks_t *hp = &pg_hooks;
	unsigned ind = 0;
	size_t sz = sizeof ind;
	int saved = errno;
	if (je_mallctl("arenas.create", &ind, &sz, &hp, sizeof hp) != 0) {
		errno = saved;
		vr_warn("purgeable heap: jemalloc refused to create its arena");
		init_err = ENOMEM;
		return;
	}
	/* Every freed extent purged at once (check_freed), and every object
	 * beyond the thread caches' largest size class: jemalloc's free puts
	 * nothing of this arena in a thread cache, where a plain malloc of
	 * the same size could take it. */
	ssize_t zero = 0;
	char name[64];
	size_t tmax = 0, tlen = sizeof tmax;
	snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", ind);
	bool ok = je_mallctl(name, NULL, NULL, &zero, sizeof zero) == 0;
	snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", ind);
	ok = ok && je_mallctl(name, NULL, NULL, &zero, sizeof zero) == 0;
	ok = ok && je_mallctl("arenas.tcache_max", &tmax, &tlen, NULL, 0) == 0;
	errno = saved;
	if (!ok) {
		vr_warn("purgeable heap: jemalloc refused its arena's settings");
		init_err = ENOMEM;
		return;
	}
	min_alloc = (tmax + vr_page_size) & ~(vr_page_size - 1);
	arena = ind;
	if (pthread_atfork(pg_prepare, pg_parent, pg_child) != 0)
		vr_die("pthread_atfork failed");
	vr_debug("purgeable heap: %zu MiB reserved at %p, arena %u", len >> 20, r, ind);
}

/* 0 once the heap works, else an errno value. */
static int pg_ready(void)
{
	pthread_once(&once, pg_init_once);
	return init_err;
}

/* --- the side table -------------------------------------------------------- */

/* The entry of the object that starts at p, or NULL if p cannot start one
 * (outside the region, unaligned). */
static vr_pg_meta_t *entry(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (!vr_pg_owns(p) || (a & (vr_page_size - 1)) != 0 || !meta)
		return NULL;
	return &meta[(a - vr_pg_base) >> vr_page_shift];
}

static pthread_mutex_t *stripe_of(const vr_pg_meta_t *e)
{
	uint64_t i = (uint64_t)(e - meta);
	return &stripes[(i * 0x9e3779b97f4a7c15ull) >> 58];
}

/* Locks the stripe of p's entry and returns the entry if p is a live
 * object; NULL (nothing locked) otherwise. */
static vr_pg_meta_t *get_live(const void *p)
{
	vr_pg_meta_t *e = entry(p);
	if (!e)
		return NULL;
	pthread_mutex_lock(stripe_of(e));
	if (e->magic == PG_MAGIC)
		return e;
	pthread_mutex_unlock(stripe_of(e));
	return NULL;
}

static void put(vr_pg_meta_t *e)
{
	pthread_mutex_unlock(stripe_of(e));
}

/* --- the API --------------------------------------------------------------- */

void vr_pg_die_free(const char *fn, const void *p)
{
	vr_die("%s of a vrange_malloc object %p (use vrange_free)", fn, p);
}

VRANGE_EXPORT void *vrange_malloc(size_t size)
{
	int saved = errno;
	if (pg_ready() != 0) {
		errno = ENOMEM;
		return NULL;
	}
	size_t n;
	if (__builtin_add_overflow(size ? size : 1, vr_page_size - 1, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	n &= ~(vr_page_size - 1);
	/* The object is n bytes; jemalloc's block may be larger (see
	 * pg_init_once), and its tail, never touched, costs only addresses. */
	void *p = je_mallocx(n < min_alloc ? min_alloc : n,
	                     MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE |
	                     MALLOCX_LG_ALIGN(vr_page_shift));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	vr_pg_meta_t *e = entry(p);
	if (!e)
		vr_die("purgeable arena returned %p, outside its region", p);
	pthread_mutex_lock(stripe_of(e));
	if (e->magic == PG_MAGIC)
		vr_die("purgeable heap: %p handed out twice", p);
	e->size = n;
	e->locks = 1;
	e->magic = PG_MAGIC;
	put(e);
	errno = saved;
	return p;
}

VRANGE_EXPORT void vrange_free(void *ptr)
{
	if (!ptr)
		return;
	int saved = errno;
	vr_pg_meta_t *e = get_live(ptr);
	if (!e)
		vr_die("vrange_free() of %p, which is not a live vrange_malloc object",
		       ptr);
	/* A volatile object is unmarked first: the registry must not keep
	 * pages (and, with the cookie backend, cookies in their first words)
	 * that jemalloc will hand to another object. */
	if (e->locks == 0 && vrange_mark_nonvolatile(ptr, e->size, NULL) != 0)
		vr_die("vrange_free(%p): cannot make it non-volatile (errno %d)",
		       ptr, errno);
	e->magic = 0;
	e->locks = 0;
	e->size = 0;
	put(e);
	/* Without the thread cache: a cached page would come back from a
	 * plain malloc of the same size class, outside this arena. */
	je_dallocx(ptr, MALLOCX_TCACHE_NONE);
	errno = saved;
}

static int bad(int err)
{
	errno = err;
	return -1;
}

/* Decrements the lock count; at 0 the object becomes volatile. With
 * idempotent (Darwin), an object already volatile is left so. */
static int pg_unlock(void *ptr, bool idempotent)
{
	vr_pg_meta_t *e = get_live(ptr);
	if (!e)
		return bad(EINVAL);
	if (e->locks <= 0) {
		put(e);
		return idempotent ? 0 : bad(EINVAL);
	}
	if (e->locks == 1 && vrange_mark_volatile(ptr, e->size, 0) != 0) {
		int err = errno;
		put(e);
		return bad(err);
	}
	e->locks--;
	put(e);
	return 0;
}

/* Increments the lock count; going from 0 to 1 the object becomes
 * non-volatile and the result tells whether it was purged (then it is all
 * zeros). With idempotent (Darwin), a locked object stays at its count. */
static int pg_lock(void *ptr, bool idempotent)
{
	vr_pg_meta_t *e = get_live(ptr);
	if (!e)
		return bad(EINVAL);
	if (e->locks > 0) {
		if (!idempotent) {
			if (e->locks == INT32_MAX) {
				put(e);
				return bad(EOVERFLOW);
			}
			e->locks++;
		}
		put(e);
		return 0;
	}
	int purged = 0;
	if (vrange_mark_nonvolatile(ptr, e->size, &purged) != 0) {
		int err = errno;
		put(e);
		return bad(err);
	}
	/* Only the lost pages read zero; clearing the rest too gives the
	 * caller one state to handle (it regenerates the whole object). */
	if (purged)
		memset(ptr, 0, e->size);
	vr_stat_add(purged ? VR_STAT_PG_PURGED : VR_STAT_PG_INTACT, 1);
	e->locks = 1;
	put(e);
	return purged;
}

VRANGE_EXPORT int vrange_unlock(void *ptr)
{
	return pg_unlock(ptr, false);
}

VRANGE_EXPORT int vrange_lock(void *ptr)
{
	return pg_lock(ptr, false);
}

VRANGE_EXPORT int malloc_make_purgeable(void *ptr)
{
	int saved = errno;
	int r = pg_unlock(ptr, true) == 0 ? 0 : errno;
	errno = saved;
	return r;
}

VRANGE_EXPORT int malloc_make_nonpurgeable(void *ptr)
{
	int saved = errno;
	int r = pg_lock(ptr, true);
	r = r == 0 ? 0 : r == 1 ? EFAULT : errno;
	errno = saved;
	return r;
}
