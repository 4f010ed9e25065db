/*
 * t_lifecycle.c - a thread's first allocator call, through every entry
 * point of libvrange_preload.so, run under LD_PRELOAD: a matrix of entry
 * point x size class x thread state, each case in a forked child with a
 * deadline.
 *
 * Why. jemalloc gives a thread whose first call frees only a minimal tsd.
 * The shim's extent hooks called jemalloc's public default hooks, which
 * fetch a full tsd; building it builds the thread cache, which allocates
 * and takes the ecache mutex the free already holds: a thread whose first
 * act was to free 64 blocks of 1-5 MiB that main had made deadlocked. Any
 * entry point can be a thread's first call, on a block of any size class
 * made by any other thread, and the thread may exit at once (tsd teardown):
 * the matrix tries each combination.
 *
 * The matrix.
 *  - Entry points on blocks another thread made: free, realloc (smaller,
 *    larger), reallocarray, free_sized, free_aligned_sized, jemalloc's
 *    sdallocx, dallocx, rallocx (smaller, larger), xallocx, sallocx, the
 *    C++ operators delete and delete[] (sized and not), malloc_usable_size,
 *    and for purgeable objects vrange_free, vrange_lock, vrange_unlock.
 *    Entry points that need no block run after another thread made and
 *    freed the class's blocks, so that the new thread recycles extents made
 *    elsewhere: malloc, calloc, posix_memalign, aligned_alloc, memalign,
 *    valloc, pvalloc, operator new, mallocx, nallocx, malloc_trim,
 *    malloc_stats, mallinfo2, vrange_malloc.
 *  - Size classes: small (48 B), large (64 KiB; 1-5 MiB), huge (jemalloc's
 *    oversize arena, from 8 MiB), purgeable (vrange_malloc objects, only
 *    for the entry points that take them: free() of one is a documented
 *    abort, not a case).
 *  - Thread states: a joinable thread that goes on working; one that
 *    returns, or calls pthread_exit, right after its first call (on a block
 *    whose neighbours are already free, so that the one call coalesces); a
 *    detached one; a new thread in a child forked while a helper thread
 *    allocates; a thread whose blocks came from a thread that has exited.
 *
 * A case passes when its child exits 0: every result is checked (contents
 * kept across realloc, usable size >= request, vrange_lock 0 or 1, errno
 * where the shim promises it). A child still running at the deadline is
 * killed, with its process group (a fork case's grandchild is in it), and
 * the case reads "hung"; one killed by a signal reads "crashed". Children
 * run many at a time: a deadlocked one sleeps on a futex, so the hangs of
 * broken code overlap instead of adding up. The points are printed in the
 * order of the cases, whatever order the children end in. An argument
 * runs only the cases whose name contains it.
 *
 * Cases touch few pages (see sample()): on the 2-core VM this was written
 * on, a page fault costs about 100 us, and 64 moves of 1-5 MiB blocks took
 * long enough under load to pass for a hang.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "shim/shimtest.h"

/* A case's child is killed after DEADLINE_S seconds; a fork case's
 * grandchild and a detached thread get less, so that their own hang is
 * named as such. Healthy cases take well under a second (the summary line
 * names the slowest). */
#define DEADLINE_S 10
#define INNER_DEADLINE_S (DEADLINE_S - 3)
/* Children at once: NACTIVE started less than YOUNG_S seconds ago (the
 * live ones share 2 cores), NSLOT in all (older ones are most likely hung,
 * asleep on a futex, and cost nothing but a slot until their deadline). */
#define NACTIVE 24
#define YOUNG_S 2.0
#define NSLOT 64
#define MAXBLK 64

/* Entry points looked up with dlsym, as a preloaded program finds them:
 * the C23 functions glibc 2.36 lacks, jemalloc's API, the C++ operators
 * (called from C by their mangled names) and the purgeable heap. */
static struct {
	void (*free_sized)(void *, size_t);
	void (*free_aligned_sized)(void *, size_t, size_t);
	void *(*mallocx)(size_t, int);
	void *(*rallocx)(void *, size_t, int);
	size_t (*xallocx)(void *, size_t, size_t, int);
	size_t (*sallocx)(const void *, int);
	void (*dallocx)(void *, int);
	void (*sdallocx)(void *, size_t, int);
	size_t (*nallocx)(size_t, int);
	void *(*znwm)(size_t);
	void *(*znam)(size_t);
	void (*zdlpv)(void *);
	void (*zdlpvm)(void *, size_t);
	void (*zdapv)(void *);
	void (*zdapvm)(void *, size_t);
	void *(*vmalloc)(size_t);
	void (*vfree)(void *);
	int (*vlock)(void *);
	int (*vunlock)(void *);
} fn;

static void lookup(void)
{
	static const struct {
		const char *name;
		void *slot;
	} syms[] = {
		{ "free_sized", &fn.free_sized },
		{ "free_aligned_sized", &fn.free_aligned_sized },
		{ "mallocx", &fn.mallocx },
		{ "rallocx", &fn.rallocx },
		{ "xallocx", &fn.xallocx },
		{ "sallocx", &fn.sallocx },
		{ "dallocx", &fn.dallocx },
		{ "sdallocx", &fn.sdallocx },
		{ "nallocx", &fn.nallocx },
		{ "_Znwm", &fn.znwm },
		{ "_Znam", &fn.znam },
		{ "_ZdlPv", &fn.zdlpv },
		{ "_ZdlPvm", &fn.zdlpvm },
		{ "_ZdaPv", &fn.zdapv },
		{ "_ZdaPvm", &fn.zdapvm },
		{ "vrange_malloc", &fn.vmalloc },
		{ "vrange_free", &fn.vfree },
		{ "vrange_lock", &fn.vlock },
		{ "vrange_unlock", &fn.vunlock },
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		void *f = dlsym(RTLD_DEFAULT, syms[i].name);
		if (!f) {
			tap_printf("Bail out! %s not found\n", syms[i].name);
			exit(1);
		}
		/* A data pointer into a function pointer: POSIX's dlsym rule. */
		memcpy(syms[i].slot, &f, sizeof f);
	}
}

/* --- size classes -------------------------------------------------------- */

enum { SMALL, LARGE_K, LARGE_M, HUGE, PURGE, NCLASS };
#define HEAP ((1u << SMALL) | (1u << LARGE_K) | (1u << LARGE_M) | (1u << HUGE))
#define PG (1u << PURGE)

static const struct {
	const char *name;
	int count;
} classes[NCLASS] = {
	[SMALL] = { "small-64x48B", 64 },
	[LARGE_K] = { "large-64x64KiB", 64 },
	[LARGE_M] = { "large-64x1-5MiB", 64 },
	/* jemalloc's oversize_threshold is 8 MiB: its own arena. */
	[HUGE] = { "huge-4x8-20MiB", 4 },
	[PURGE] = { "purgeable-16x1-46pages", 16 },
};

static size_t class_size(int cls, int i)
{
	switch (cls) {
	case SMALL:
		return 48;
	case LARGE_K:
		return 64u << 10;
	case LARGE_M:
		return (size_t)(1 + i % 5) << 20;
	case HUGE:
		return (size_t)(8 + 4 * i) << 20;
	default:
		return (size_t)(1 + 3 * i) * tu_pagesize();
	}
}

/* --- blocks and their contents ------------------------------------------- */

/* How a block is given back at the end of a case. */
enum kind { K_FREE, K_DELETE, K_DELETE_ARRAY, K_VRANGE };

struct blk {
	unsigned char *p;  /* NULL once released, or before an allocation */
	size_t n;          /* bytes asked for, now */
	size_t n0;         /* bytes when the pattern was written */
	size_t keep;       /* bytes whose pattern must still be there */
	size_t align;
	enum kind kind;
	bool vol;          /* a purgeable object left unlocked (volatile) */
	unsigned seed;
};

/*
 * Offsets that carry the pattern: 16 bytes at the head, 16 at the tail, two
 * inside. Few pages: every page a case touches costs (measured on this
 * 2-core VM: 256 MiB of fresh pages took 4.9 s to fault in), and each
 * touched offset of a huge block faults in 2 MiB (the shim asks for
 * transparent huge pages there).
 */
#define NSAMPLE 34
static size_t sample(size_t n, int k)
{
	if (k < 16)
		return (size_t)k % n;
	if (k < 32)
		return n - 1 - (size_t)(k - 16) % n;
	return (size_t)(k - 31) * (n / 3) % n;
}

static void pattern_write(struct blk *b)
{
	b->n0 = b->keep = b->n;
	for (int k = 0; k < NSAMPLE; k++) {
		size_t off = sample(b->n0, k);
		b->p[off] = tu_byte(b->seed, 0, off);
	}
}

static bool pattern_ok(const struct blk *b)
{
	for (int k = 0; k < NSAMPLE; k++) {
		size_t off = sample(b->n0, k);
		if (off < b->keep && b->p[off] != tu_byte(b->seed, 0, off))
			return false;
	}
	return true;
}

/* The sampled offsets read zero: where the pattern of a block of the same
 * size, freed before, was. (Not every page: here even a read fault of an
 * untouched page costs about 100 us.) */
static bool zero_ok(const unsigned char *p, size_t n)
{
	for (int k = 0; k < NSAMPLE; k++)
		if (p[sample(n, k)])
			return false;
	return true;
}

/* --- entry points ------------------------------------------------------- */

/*
 * Each makes exactly one allocator call for the block (or none: a
 * per-thread call, E_ONCE) and checks what it got without another one, so
 * that a thread that exits after it exits after one call. NULL if right,
 * else what was wrong.
 */
typedef const char *call_fn(struct blk *b);

/* A block moved or resized to n bytes at q. */
static const char *resized(struct blk *b, void *q, size_t n, const char *fn_name)
{
	if (!q)
		return fn_name;
	b->p = q;
	b->n = n;
	b->kind = K_FREE;
	if (n < b->keep)
		b->keep = n;
	return pattern_ok(b) ? NULL : "contents lost in the move";
}

static const char *e_free(struct blk *b)
{
	errno = 4321;
	free(b->p);
	b->p = NULL;
	return errno == 4321 ? NULL : "free changed errno";
}

static const char *e_realloc_smaller(struct blk *b)
{
	return resized(b, realloc(b->p, b->n / 2), b->n / 2, "realloc returned NULL");
}

static const char *e_realloc_larger(struct blk *b)
{
	size_t n = b->n + b->n / 2;
	return resized(b, realloc(b->p, n), n, "realloc returned NULL");
}

static const char *e_reallocarray(struct blk *b)
{
	return resized(b, reallocarray(b->p, 2, b->n), 2 * b->n, "reallocarray returned NULL");
}

static const char *e_free_sized(struct blk *b)
{
	errno = 4321;
	fn.free_sized(b->p, b->n);
	b->p = NULL;
	return errno == 4321 ? NULL : "free_sized changed errno";
}

static const char *e_free_aligned_sized(struct blk *b)
{
	errno = 4321;
	fn.free_aligned_sized(b->p, b->align, b->n);
	b->p = NULL;
	return errno == 4321 ? NULL : "free_aligned_sized changed errno";
}

static const char *e_sdallocx(struct blk *b)
{
	fn.sdallocx(b->p, b->n, 0);
	b->p = NULL;
	return NULL;
}

static const char *e_dallocx(struct blk *b)
{
	fn.dallocx(b->p, 0);
	b->p = NULL;
	return NULL;
}

static const char *e_rallocx_smaller(struct blk *b)
{
	return resized(b, fn.rallocx(b->p, b->n / 2, 0), b->n / 2, "rallocx returned NULL");
}

static const char *e_rallocx_larger(struct blk *b)
{
	return resized(b, fn.rallocx(b->p, 2 * b->n, 0), 2 * b->n, "rallocx returned NULL");
}

/* Grows in place or not at all: the block stays where it is either way. */
static const char *e_xallocx(struct blk *b)
{
	size_t r = fn.xallocx(b->p, b->n + b->n / 2, 0, 0);
	if (r < b->n)
		return "xallocx answered less than the block's size";
	return pattern_ok(b) ? NULL : "contents lost by xallocx";
}

static const char *e_sallocx(struct blk *b)
{
	return fn.sallocx(b->p, 0) >= b->n ? NULL : "sallocx answered less than the request";
}

static const char *e_usable(struct blk *b)
{
	return malloc_usable_size(b->p) >= b->n ? NULL :
	       "malloc_usable_size answered less than the request";
}

static const char *e_zdlpv(struct blk *b)
{
	fn.zdlpv(b->p);
	b->p = NULL;
	return NULL;
}

static const char *e_zdlpvm(struct blk *b)
{
	fn.zdlpvm(b->p, b->n);
	b->p = NULL;
	return NULL;
}

static const char *e_zdapv(struct blk *b)
{
	fn.zdapv(b->p);
	b->p = NULL;
	return NULL;
}

static const char *e_zdapvm(struct blk *b)
{
	fn.zdapvm(b->p, b->n);
	b->p = NULL;
	return NULL;
}

static const char *e_vrange_free(struct blk *b)
{
	errno = 4321;
	fn.vfree(b->p);
	b->p = NULL;
	return errno == 4321 ? NULL : "vrange_free changed errno";
}

/* On an object its maker unlocked: 0 and the contents, or 1 and zeros. */
static const char *relock(struct blk *b)
{
	int r = fn.vlock(b->p);
	b->vol = false;
	if (r == 0)
		return pattern_ok(b) ? NULL : "vrange_lock said intact, contents lost";
	if (r == 1)
		return zero_ok(b->p, b->n) ? NULL : "vrange_lock said purged, object not zero";
	return "vrange_lock returned neither 0 nor 1";
}

static const char *e_vrange_lock(struct blk *b)
{
	return relock(b);
}

static const char *e_vrange_unlock(struct blk *b)
{
	if (fn.vunlock(b->p) != 0)
		return "vrange_unlock of a locked object failed";
	b->vol = true;
	return NULL;
}

/* A new block at p of b->n bytes, to be released as kind. */
static const char *fresh(struct blk *b, void *p, size_t align, enum kind kind)
{
	if (!p)
		return "the allocation failed";
	b->p = p;
	b->kind = kind;
	if ((uintptr_t)p % align)
		return "the block is misaligned";
	pattern_write(b);
	return NULL;
}

static const char *e_malloc(struct blk *b)
{
	return fresh(b, malloc(b->n), 16, K_FREE);
}

static const char *e_calloc(struct blk *b)
{
	unsigned char *p = calloc(1, b->n);
	if (p && !zero_ok(p, b->n)) {
		b->p = p;
		return "calloc's block is not zero";
	}
	return fresh(b, p, 16, K_FREE);
}

static const char *e_posix_memalign(struct blk *b)
{
	void *p = NULL;
	int r = posix_memalign(&p, b->align, b->n);
	if (r != 0)
		return "posix_memalign failed";
	return fresh(b, p, b->align, K_FREE);
}

static const char *e_aligned_alloc(struct blk *b)
{
	return fresh(b, aligned_alloc(b->align, b->n), b->align, K_FREE);
}

static const char *e_memalign(struct blk *b)
{
	return fresh(b, memalign(b->align, b->n), b->align, K_FREE);
}

static const char *e_valloc(struct blk *b)
{
	return fresh(b, valloc(b->n), tu_pagesize(), K_FREE);
}

static const char *e_pvalloc(struct blk *b)
{
	return fresh(b, pvalloc(b->n), tu_pagesize(), K_FREE);
}

static const char *e_znwm(struct blk *b)
{
	return fresh(b, fn.znwm(b->n), 16, K_DELETE);
}

static const char *e_mallocx(struct blk *b)
{
	return fresh(b, fn.mallocx(b->n, 0), 16, K_FREE);
}

static const char *e_vrange_malloc(struct blk *b)
{
	return fresh(b, fn.vmalloc(b->n), tu_pagesize(), K_VRANGE);
}

static const char *e_nallocx(struct blk *b)
{
	return fn.nallocx(b->n, 0) >= b->n ? NULL : "nallocx answered less than the request";
}

static const char *e_malloc_trim(struct blk *b)
{
	int r = malloc_trim(0);
	return r == 0 || r == 1 ? NULL : "malloc_trim answered neither 0 nor 1";
}

/* Its output (stderr, caught in a memfd) is checked at the end of the case. */
static const char *e_malloc_stats(struct blk *b)
{
	malloc_stats();
	return NULL;
}

static const char *e_mallinfo2(struct blk *b)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.arena > 0 && mi.arena >= mi.uordblks ? NULL :
	       "mallinfo2: no system bytes, or fewer than in use";
}

/* How a case's blocks are made before the thread under test runs. */
enum make {
	MK_MALLOC,
	MK_ALIGNED,     /* aligned_alloc, for free_aligned_sized */
	MK_NEW,         /* operator new, for delete */
	MK_NEW_ARRAY,   /* operator new[], for delete[] */
	MK_PURGEABLE,   /* vrange_malloc, locked */
	MK_UNLOCKED,    /* vrange_malloc, then vrange_unlock */
	MK_FREED,       /* made and freed: the thread allocates the class's sizes */
};

#define E_ONCE 1u   /* one call per thread, not one per block */
#define E_HEAVY 2u  /* writes the whole block (a move, calloc's clearing) */
/* Bytes of blocks an E_HEAVY entry is applied to, past the first call; the
 * thread frees the others. 64 moves of 1-5 MiB blocks wrote 300 MiB and
 * took 6 s, which a loaded machine stretched past the deadline. */
#define HEAVY_BUDGET (8u << 20)

static const struct entry {
	const char *name;
	unsigned classes;
	enum make make;
	unsigned flags;
	call_fn *call;
} entries[] = {
	{ "free", HEAP, MK_MALLOC, 0, e_free },
	{ "realloc-smaller", HEAP, MK_MALLOC, 0, e_realloc_smaller },
	{ "realloc-larger", HEAP, MK_MALLOC, E_HEAVY, e_realloc_larger },
	{ "reallocarray", HEAP, MK_MALLOC, E_HEAVY, e_reallocarray },
	{ "free_sized", HEAP, MK_MALLOC, 0, e_free_sized },
	{ "free_aligned_sized", HEAP, MK_ALIGNED, 0, e_free_aligned_sized },
	{ "sdallocx", HEAP, MK_MALLOC, 0, e_sdallocx },
	{ "dallocx", HEAP, MK_MALLOC, 0, e_dallocx },
	{ "rallocx-smaller", HEAP, MK_MALLOC, 0, e_rallocx_smaller },
	{ "rallocx-larger", HEAP, MK_MALLOC, E_HEAVY, e_rallocx_larger },
	{ "xallocx", HEAP, MK_MALLOC, 0, e_xallocx },
	{ "sallocx", HEAP, MK_MALLOC, 0, e_sallocx },
	{ "delete(_ZdlPv)", HEAP, MK_NEW, 0, e_zdlpv },
	{ "sized-delete(_ZdlPvm)", HEAP, MK_NEW, 0, e_zdlpvm },
	{ "delete[](_ZdaPv)", HEAP, MK_NEW_ARRAY, 0, e_zdapv },
	{ "sized-delete[](_ZdaPvm)", HEAP, MK_NEW_ARRAY, 0, e_zdapvm },
	{ "malloc_usable_size", HEAP, MK_MALLOC, 0, e_usable },
	/* The shim answers it for a purgeable object too (jemalloc's size of
	 * the object's block); purgeable.c refuses only what frees one. */
	{ "malloc_usable_size", PG, MK_PURGEABLE, 0, e_usable },
	{ "vrange_free", PG, MK_PURGEABLE, 0, e_vrange_free },
	{ "vrange_lock", PG, MK_UNLOCKED, 0, e_vrange_lock },
	{ "vrange_unlock", PG, MK_PURGEABLE, 0, e_vrange_unlock },
	{ "malloc", HEAP, MK_FREED, 0, e_malloc },
	{ "calloc", HEAP, MK_FREED, E_HEAVY, e_calloc },
	{ "posix_memalign", HEAP, MK_FREED, 0, e_posix_memalign },
	{ "aligned_alloc", HEAP, MK_FREED, 0, e_aligned_alloc },
	{ "memalign", HEAP, MK_FREED, 0, e_memalign },
	{ "valloc", HEAP, MK_FREED, 0, e_valloc },
	{ "pvalloc", HEAP, MK_FREED, 0, e_pvalloc },
	{ "new(_Znwm)", HEAP, MK_FREED, 0, e_znwm },
	{ "mallocx", HEAP, MK_FREED, 0, e_mallocx },
	{ "nallocx", HEAP, MK_FREED, 0, e_nallocx },
	{ "malloc_trim", HEAP, MK_FREED, E_ONCE, e_malloc_trim },
	{ "malloc_stats", HEAP, MK_FREED, E_ONCE, e_malloc_stats },
	{ "mallinfo2", HEAP, MK_FREED, E_ONCE, e_mallinfo2 },
	{ "vrange_malloc", PG, MK_FREED, 0, e_vrange_malloc },
};
#define NENTRY (sizeof entries / sizeof entries[0])

/* --- thread states ------------------------------------------------------ */

enum state {
	ST_JOIN,      /* joinable; first call, then more work */
	ST_RETURN,    /* returns right after its first call */
	ST_PEXIT,     /* pthread_exit right after its first call */
	ST_DETACHED,  /* detached; first call, more work, exits unobserved */
	ST_FORK,      /* joinable, in a child forked from a threaded process */
	ST_EXITED,    /* joinable; the blocks' maker thread has exited */
	NSTATE
};

static const char *const state_names[NSTATE] = {
	[ST_JOIN] = "new-thread-first-call",
	[ST_RETURN] = "thread-returns-after-first-call",
	[ST_PEXIT] = "thread-pthread_exit-after-first-call",
	[ST_DETACHED] = "detached-thread-first-call",
	[ST_FORK] = "fork-child-new-thread-first-call",
	[ST_EXITED] = "blocks-of-exited-thread",
};

struct lc_case {
	const struct entry *e;
	int cls;
	enum state st;
};

/* --- a case, in its child ------------------------------------------------ */

static const struct lc_case *cur;
static struct blk blks[MAXBLK];
static int nblk;
static int report_fd = -1;
static int failures;

/* What went wrong, to the parent through the case's pipe; no allocation
 * (a thread under test may call it). */
__attribute__((format(printf, 1, 2)))
static void report(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 3)
		n = (int)sizeof buf - 3;
	buf[n++] = ';';
	buf[n++] = ' ';
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	if (write(report_fd, buf, (size_t)n) < 0)
		return;
}

static void call(struct blk *b, int i)
{
	const char *why = cur->e->call(b);
	if (why)
		report("block %d (%zu bytes): %s", i, b->n, why);
}

/* Makes the case's blocks, in the calling thread. */
static void make_blocks(void)
{
	enum make mk = cur->e->make;
	nblk = classes[cur->cls].count;
	for (int i = 0; i < nblk; i++) {
		struct blk *b = &blks[i];
		memset(b, 0, sizeof *b);
		b->n = class_size(cur->cls, i);
		b->seed = (unsigned)i + 1;
		b->align = b->n >= tu_pagesize() ? tu_pagesize() : 64;
		b->kind = K_FREE;
		void *p;
		switch (mk) {
		case MK_ALIGNED:
			p = aligned_alloc(b->align, b->n);
			break;
		case MK_NEW:
			p = fn.znwm(b->n);
			b->kind = K_DELETE;
			break;
		case MK_NEW_ARRAY:
			p = fn.znam(b->n);
			b->kind = K_DELETE_ARRAY;
			break;
		case MK_PURGEABLE:
		case MK_UNLOCKED:
			p = fn.vmalloc(b->n);
			b->kind = K_VRANGE;
			break;
		default:
			p = cur->cls == PURGE ? fn.vmalloc(b->n) : malloc(b->n);
			b->kind = cur->cls == PURGE ? K_VRANGE : K_FREE;
			break;
		}
		if (!p) {
			report("making block %d (%zu bytes) failed", i, b->n);
			exit(1);
		}
		b->p = p;
		pattern_write(b);
		if (mk == MK_UNLOCKED) {
			if (fn.vunlock(p) != 0) {
				report("unlocking object %d failed", i);
				exit(1);
			}
			b->vol = true;
		}
	}
	if (mk != MK_FREED)
		return;
	/* All made, then all freed: the thread under test recycles them. */
	for (int i = 0; i < nblk; i++) {
		if (blks[i].kind == K_VRANGE)
			fn.vfree(blks[i].p);
		else
			free(blks[i].p);
		blks[i].p = NULL;
		blks[i].keep = 0;
	}
}

/* Checks what is left of block i and gives it back. */
static void finish_block(int i)
{
	struct blk *b = &blks[i];
	if (!b->p)
		return;
	const char *why = b->vol ? relock(b) : NULL;
	if (!why && malloc_usable_size(b->p) < b->n)
		why = "usable size below the request";
	if (!why && !pattern_ok(b))
		why = "contents lost";
	if (why)
		report("on release, block %d (%zu bytes): %s", i, b->n, why);
	switch (b->kind) {
	case K_FREE:
		free(b->p);
		break;
	case K_DELETE:
		fn.zdlpv(b->p);
		break;
	case K_DELETE_ARRAY:
		fn.zdapv(b->p);
		break;
	case K_VRANGE:
		fn.vfree(b->p);
		break;
	}
	b->p = NULL;
}

static void finish_blocks(void)
{
	for (int i = 0; i < nblk; i++)
		finish_block(i);
}

/*
 * The one block of the states that exit after one call: one in the middle,
 * whose neighbours the maker has given back. A single free among live
 * neighbours merges nothing and calls few hooks; this one coalesces with
 * free extents on both sides, as the last free of the 64 does.
 */
static bool one_call(void)
{
	return cur->st == ST_RETURN || cur->st == ST_PEXIT;
}

static int lone_block(void)
{
	return nblk / 2;
}

/* More work for a thread (or process) that is past its first call: the
 * thread cache now exists and is used, every class is allocated. Few pages
 * are touched (none of the huge block: 2 MiB pages). */
static void churn(const char *who)
{
	static const size_t sizes[] = {
		24, 48, 700, 5000, 40000, 65536, 300000, 2u << 20, 9u << 20,
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		unsigned char *p = malloc(n);
		if (!p) {
			report("%s: malloc(%zu) failed", who, n);
			continue;
		}
		if (n >= (8u << 20)) {
			free(p);
			continue;
		}
		p[0] = p[n - 1] = 0x5a;
		if (n < 8192) {
			unsigned char *q = realloc(p, n + n / 3);
			if (!q) {
				report("%s: realloc(%zu) failed", who, n + n / 3);
				free(p);
				continue;
			}
			p = q;
			if (p[0] != 0x5a || p[n - 1] != 0x5a)
				report("%s: realloc lost contents", who);
		}
		free(p);
	}
	unsigned char *c = calloc(64, 1024);
	if (!c || !zero_ok(c, 64 * 1024))
		report("%s: calloc gave no zeroed block", who);
	free(c);
}

static sem_t posted;
static pid_t worker_tid;

/* The thread under test. Its first allocator call is the entry point's. */
static void *worker(void *arg)
{
	__atomic_store_n(&worker_tid, gettid(), __ATOMIC_RELEASE);
	if (one_call()) {
		call(&blks[lone_block()], lone_block());
	} else {
		int n = cur->e->flags & E_ONCE ? 1 : nblk;
		size_t bytes = 0;
		for (int i = 0; i < n; i++) {
			if (i > 0 && (cur->e->flags & E_HEAVY) &&
			    (bytes += blks[i].n) > HEAVY_BUDGET)
				break;
			call(&blks[i], i);
		}
	}
	if (cur->st == ST_RETURN)
		return NULL;
	if (cur->st == ST_PEXIT)
		pthread_exit(NULL);
	finish_blocks();
	churn("the thread, after its first call");
	if (cur->st == ST_DETACHED)
		sem_post(&posted);
	return NULL;
}

static void *maker(void *arg)
{
	make_blocks();
	return NULL;
}

/* Waits until the thread tid is gone (its tsd torn down); false after
 * INNER_DEADLINE_S seconds. */
static bool wait_gone(pid_t tid)
{
	double end = tu_now() + INNER_DEADLINE_S;
	while (tgkill(getpid(), tid, 0) == 0) {
		if (tu_now() > end)
			return false;
		usleep(1000);
	}
	return true;
}

/* The case, in the process that owns it: exit status 0 (passed), 1 (a
 * wrong result), 3 (a thread hung in a way this process can see). */
static int case_body(void)
{
	/* malloc_stats prints to stderr: caught, to be checked. */
	int stats_fd = -1, saved_err = -1;
	if (cur->e->call == e_malloc_stats) {
		stats_fd = memfd_create("malloc_stats", 0);
		saved_err = dup(2);
		dup2(stats_fd, 2);
	}
	if (cur->st == ST_EXITED) {
		pthread_t m;
		if (pthread_create(&m, NULL, maker, NULL) != 0 || pthread_join(m, NULL) != 0) {
			report("the maker thread did not run");
			return 1;
		}
	} else {
		make_blocks();
	}
	if (one_call())
		for (int i = 0; i < nblk; i++)
			if (i != lone_block())
				finish_block(i);

	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (cur->st == ST_DETACHED) {
		sem_init(&posted, 0, 0);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	}
	if (pthread_create(&t, &attr, worker, NULL) != 0) {
		report("pthread_create failed");
		return 1;
	}
	pthread_attr_destroy(&attr);
	if (cur->st == ST_DETACHED) {
		while (sem_wait(&posted) != 0 && errno == EINTR)
			;
		if (!wait_gone(__atomic_load_n(&worker_tid, __ATOMIC_ACQUIRE))) {
			report("the detached thread did not exit after its work (hung in its teardown)");
			return 3;
		}
	} else {
		pthread_join(t, NULL);
	}
	/* The blocks the thread left (states that exit after one call). */
	finish_blocks();
	churn("the process, after the thread");

	if (stats_fd >= 0) {
		static char out[16384];
		dup2(saved_err, 2);
		close(saved_err);
		ssize_t n = pread(stats_fd, out, sizeof out - 1, 0);
		out[n > 0 ? n : 0] = '\0';
		close(stats_fd);
		if (!strstr(out, "in use bytes"))
			report("malloc_stats printed no summary");
	}
	return failures ? 1 : 0;
}

/* --- the fork state ------------------------------------------------------ */

static int bg_stop;
static unsigned long bg_rounds;

/* Allocates while the fork happens: jemalloc's locks are taken and given
 * back around it. */
static void *bg_alloc(void *arg)
{
	unsigned seed = 12345;
	while (!__atomic_load_n(&bg_stop, __ATOMIC_ACQUIRE)) {
		unsigned r = (unsigned)rand_r(&seed);
		size_t n = r & 1 ? 16 + r % 3000 : (64u << 10) + r % (2u << 20);
		unsigned char *p = malloc(n);
		if (p)
			p[0] = p[n - 1] = 1;
		free(p);
		__atomic_add_fetch(&bg_rounds, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int case_fork(void)
{
	pthread_t bg;
	if (pthread_create(&bg, NULL, bg_alloc, NULL) != 0) {
		report("the helper thread did not start");
		return 1;
	}
	while (__atomic_load_n(&bg_rounds, __ATOMIC_ACQUIRE) < 100)
		usleep(100);
	pid_t pid = fork();
	if (pid == 0) {
		/* Dies before the parent's deadline, so that its hang is
		 * told apart from one in the forking process. */
		alarm(INNER_DEADLINE_S);
		exit(case_body());
	}
	__atomic_store_n(&bg_stop, 1, __ATOMIC_RELEASE);
	pthread_join(bg, NULL);
	if (pid < 0) {
		report("fork failed");
		return 1;
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WTERMSIG(st) == SIGALRM) {
		report("the forked child hung (its %d s alarm fired)", INNER_DEADLINE_S);
		return 3;
	}
	report("the forked child died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	return 4;
}

/* --- the parent: children, deadlines, points ---------------------------- */

#define MAXCASE 1024
static struct lc_case cases[MAXCASE];
static int ncase;

static struct outcome {
	bool done;
	bool killed;     /* still running at the deadline */
	int status;
	double secs;
	char why[400];
} outs[MAXCASE];

struct slot {
	pid_t pid;
	int fd;
	int idx;
	double start;
};

/* Every case, or those whose name contains filter (a developer's run:
 * t_lifecycle-preload free/large). */
static void build_cases(const char *filter)
{
	for (size_t e = 0; e < NENTRY; e++)
		for (int c = 0; c < NCLASS; c++) {
			if (!(entries[e].classes & (1u << c)))
				continue;
			for (int s = 0; s < NSTATE; s++) {
				char name[160];
				snprintf(name, sizeof name, "%s/%s/%s", entries[e].name,
				         classes[c].name, state_names[s]);
				if (filter && !strstr(name, filter))
					continue;
				if (ncase == MAXCASE) {
					tap_printf("Bail out! more than %d cases\n", MAXCASE);
					exit(1);
				}
				cases[ncase++] = (struct lc_case){ &entries[e], c, (enum state)s };
			}
		}
}

static bool launch(struct slot *s, int idx)
{
	int fds[2];
	if (pipe(fds) != 0)
		return false;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		/* Its own process group, so that one kill reaches a fork
		 * case's grandchild; and an alarm after the deadline, so that
		 * nothing outlives a parent that died. */
		setpgid(0, 0);
		alarm(DEADLINE_S + 5);
		close(fds[0]);
		report_fd = fds[1];
		cur = &cases[idx];
		exit(cur->st == ST_FORK ? case_fork() : case_body());
	}
	setpgid(pid, pid); /* the child may not have run yet */
	close(fds[1]);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	*s = (struct slot){ pid, fds[0], idx, tu_now() };
	return true;
}

static void collect(struct slot *s, int status, bool killed)
{
	struct outcome *o = &outs[s->idx];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof o->why - 1 &&
	       (r = read(s->fd, o->why + n, sizeof o->why - 1 - n)) > 0)
		n += (size_t)r;
	/* The last report's separator. */
	if (n >= 2 && o->why[n - 2] == ';' && o->why[n - 1] == ' ')
		n -= 2;
	o->why[n] = '\0';
	close(s->fd);
	o->status = status;
	o->killed = killed;
	o->secs = tu_now() - s->start;
	o->done = true;
	s->pid = 0;
}

static int n_hung, n_crashed, n_wrong;
/* The slowest case that passed: how far below the deadline a healthy case
 * stays (with up to NACTIVE others running beside it). */
static double slowest;
static int slowest_idx = -1;

static void print_point(int idx)
{
	const struct lc_case *c = &cases[idx];
	const struct outcome *o = &outs[idx];
	int st = o->status;
	char what[160];
	bool ok = false;
	if (o->killed) {
		snprintf(what, sizeof what, "hung (killed after %d s)", DEADLINE_S);
		n_hung++;
	} else if (WIFSIGNALED(st)) {
		snprintf(what, sizeof what, "crashed (signal %d, %s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
		n_crashed++;
	} else if (WEXITSTATUS(st) == 3) {
		snprintf(what, sizeof what, "hung");
		n_hung++;
	} else if (WEXITSTATUS(st) == 4) {
		snprintf(what, sizeof what, "crashed");
		n_crashed++;
	} else if (WEXITSTATUS(st) != 0) {
		snprintf(what, sizeof what, "wrong result (exit %d)", WEXITSTATUS(st));
		n_wrong++;
	} else {
		ok = true;
	}
	tap_ok(ok, "%s/%s/%s%s%s", c->e->name, classes[c->cls].name, state_names[c->st],
	       ok ? "" : ": ", ok ? "" : what);
	if (o->why[0])
		tap_diag("  %s", o->why);
	if (ok && o->secs > slowest) {
		slowest = o->secs;
		slowest_idx = idx;
	}
}

static void run_all(void)
{
	struct slot slots[NSLOT] = { { 0 } };
	int next = 0, printed = 0;
	while (printed < ncase) {
		bool moved = false;
		int young = 0;
		for (int i = 0; i < NSLOT; i++)
			young += slots[i].pid && tu_now() - slots[i].start < YOUNG_S;
		for (int i = 0; i < NSLOT; i++) {
			struct slot *s = &slots[i];
			if (!s->pid && next < ncase && young < NACTIVE) {
				if (!launch(s, next)) {
					tap_printf("Bail out! cannot start a case: %s\n", strerror(errno));
					exit(1);
				}
				next++;
				young++;
				moved = true;
			}
			if (!s->pid)
				continue;
			int st = 0;
			pid_t r = waitpid(s->pid, &st, WNOHANG);
			if (r == s->pid) {
				collect(s, st, false);
				moved = true;
			} else if (tu_now() - s->start > DEADLINE_S) {
				/* The whole group: the fork cases' grandchildren. */
				kill(-s->pid, SIGKILL);
				kill(s->pid, SIGKILL);
				while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
					;
				collect(s, st, true);
				moved = true;
			}
		}
		while (printed < ncase && outs[printed].done)
			print_point(printed++);
		if (!moved)
			usleep(2000);
	}
}

int main(int argc, char **argv)
{
	double t0 = tu_now();
	st_require_preload();
	lookup();
	build_cases(argc > 1 ? argv[1] : NULL);
	tap_plan(ncase);
	run_all();
	tap_diag("%d cases in %.1f s: %d hung, %d crashed, %d wrong results", ncase,
	         tu_now() - t0, n_hung, n_crashed, n_wrong);
	if (slowest_idx >= 0)
		tap_diag("slowest passing case: %s/%s/%s, %.2f s",
		         cases[slowest_idx].e->name, classes[cases[slowest_idx].cls].name,
		         state_names[cases[slowest_idx].st], slowest);
	tap_done();
}
