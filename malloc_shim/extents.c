/*
 * extents.c - jemalloc extent hooks that make freed memory volatile.
 *
 * Entry points (hidden, see shim.h): vr_ext_init, vr_ext_configure,
 * vr_ext_after_alloc_slow, vr_ext_trim_begin/end, vr_ext_count_lazy,
 * vr_ext_lazy_bytes/calls;
 * vr_je_arena_config, the configuration jemalloc creates its arenas with.
 *
 * What the hooks change. jemalloc gives freed pages back in two steps: a
 * "lazy" purge (the kernel may take the pages; their contents are undefined
 * until rewritten) and a "forced" purge (the pages read as zeros). Debian's
 * jemalloc runs with muzzy_decay_ms=0, so it never purges lazily: every
 * purge is a forced one, MADV_DONTNEED, and the next use of the memory
 * faults every page in again and has the kernel clear it. Our hooks wrap
 * jemalloc's defaults and change two things:
 *  - purge_lazy issues MADV_FREE itself and counts the bytes: the pages stay
 *    mapped and keep their contents until the kernel needs memory, and
 *    rewriting them cancels the lazy free without a fault;
 *  - purge_forced refuses (returns true): a success would promise zeros,
 *    which MADV_FREE does not give. jemalloc then falls back to purge_lazy
 *    and records the extent as not zeroed (it clears it for calloc). Two
 *    exceptions: malloc_trim, and the huge arena while its requests are
 *    mostly calloc (huge_bias below), where zeroed extents spare calloc
 *    a second pass.
 * Because every forced purge falls back to a lazy one, muzzy_decay_ms does
 * not need to be raised for MADV_FREE to happen: the dirty decay alone
 * decides when freed pages become reclaimable. VRANGE_FREE_DECAY_MS sets it
 * (jemalloc's dirty_decay_ms, default 1000; 0 = at once) unless the user's
 * jemalloc configuration names dirty_decay_ms itself (MALLOC_CONF, the
 * program's malloc_conf, /etc/malloc.conf): the user's jemalloc options win.
 * For freed extents no purge cookie is needed: jemalloc never asks whether
 * their contents survived, so the hooks call madvise directly and never
 * touch the registry of volatile ranges.
 *
 * Which arenas get the hooks: every arena jemalloc creates is born with
 * them. jemalloc creates an arena (arena 0 at its initialisation, the
 * automatic ones as threads first allocate, the huge arena on the first
 * huge allocation, and those a program asks for with "arenas.create"
 * without hooks of its own) from one configuration, its
 * arena_config_default: extent hooks and whether the arena's metadata uses
 * them. jemalloc-private.sh renames jemalloc's references to it, and its
 * own definition gives way (weak) to vr_je_arena_config below: our hooks,
 * metadata on jemalloc's defaults (as for an arena whose hooks are set
 * later with "arena.<i>.extent_hooks"). jemalloc offers no callback at
 * arena creation, and setting the hooks afterwards left each new arena on
 * jemalloc's own purges until the shim noticed it. The hooks are static
 * data, valid before anything runs, and they wrap jemalloc's default hooks,
 * whose symbol jemalloc-private.sh makes visible to us. Arena 0 alone takes
 * its hooks from the metadata allocator jemalloc boots with, not from the
 * configuration: do_init hooks it, at the first allocation through the
 * shim's own paths or in the shim's constructor, whichever comes first. An
 * arena created with hooks of its own (purgeable.c's, a program's) keeps
 * them, and so does one whose hooks a program replaces.
 *
 * The rule of every hook (here and in purgeable.c). jemalloc calls an
 * extent hook with its own locks held (an ecache mutex while it merges or
 * splits a freed extent, the grow mutex while it maps more), in any thread
 * state: a thread whose first allocator call is free() runs it on a tsd
 * that jemalloc initialised only minimally. So nothing reachable from a
 * hook may allocate, take a jemalloc lock or fetch the thread's full tsd:
 * the full fetch initialises the thread cache, which allocates, which
 * takes the ecache mutex this thread already holds. jemalloc's public
 * default hooks (the extent_hooks_t table) are written for callers outside
 * jemalloc and fetch it (5.3's alloc and merge); a thread pool whose
 * workers first freed large blocks made elsewhere hung on it (xz -T2 -dc).
 * Hence the hooks call jemalloc's default operations themselves, the
 * *_impl functions (jemalloc_private.h), as jemalloc does for an arena
 * with default hooks, with the tsd pointer jemalloc passed down.
 *
 * What each hook calls, and nothing else:
 *   alloc         ehooks_default_alloc_impl (mmap; the dss path on mmap
 *                 failure takes jemalloc's own locks, exactly as with the
 *                 default hooks), vr_madvise (raw system call)
 *   dalloc        ehooks_default_dalloc_impl (munmap)
 *   destroy       ehooks_default_destroy_impl (munmap)
 *   commit        ehooks_default_commit_impl (mmap over the range)
 *   decommit      ehooks_default_decommit_impl (mmap PROT_NONE)
 *   purge_lazy    vr_madvise(MADV_FREE), else ehooks_default_purge_lazy_impl;
 *                 vr_ext_count_lazy (atomic counters)
 *   purge_forced  huge_use (atomic), vr_madvise(MADV_HUGEPAGE),
 *                 ehooks_default_purge_forced_impl (MADV_DONTNEED), an
 *                 atomic counter
 *   split         ehooks_default_split_impl (a constant)
 *   merge         ehooks_default_merge_impl (an address comparison)
 * purgeable.c's hooks: a compare-and-swap on its bump pointer (alloc), its
 * side table read with atomic loads and vr_die (purge_lazy), vr_madvise and
 * vr_ext_count_lazy; the others return constants. None of them touches
 * libvrange's registry or its lock: vrange_malloc's objects are marked and
 * unmarked by vrange_unlock/lock, outside jemalloc.
 * tests/shim/t_lifecycle runs every entry point as a thread's first call.
 *
 * Nothing here allocates, and errno is preserved: the hooks run inside
 * malloc and free.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "jemalloc_private.h"

#include "glue.h"
#include "init.h"
#include "log.h"
#include "options.h"
#include "shim.h"
#include "stats.h"

__thread size_t vr_ext_fast_limit __attribute__((tls_model("initial-exec")));
/* Requests of this size or more go to jemalloc's huge arena: SIZE_MAX until
 * the initialisation found that arena. They all take the slow path. */
static size_t huge_min = SIZE_MAX;
/*
 * Which clearing the next user of a freed huge block most likely wants:
 * above 0, recent huge requests were mostly calloc, and the huge arena's
 * forced purges (MADV_DONTNEED) are let through, so that jemalloc knows
 * the extent is zero and calloc has nothing to clear; otherwise they are
 * refused, and a malloc'd block reuses the lazily freed pages without a
 * fault. Each huge calloc adds 2 and each huge free (the huge arena purges
 * every block as it is freed) takes 1, within +-HUGE_BIAS_MAX: over n
 * callocs and m other requests, n + m frees, it moves by n - m, and a
 * change of habit is followed within a few requests. Counted at free
 * because malloc, jemalloc's own, sees nothing. Measured with bench-shim:
 * the calloc workload (3000 zeroed tables of 256 KiB-16 MiB, sparsely
 * used) was 1.09x stock jemalloc with every huge purge lazy, where
 * MADV_FREE at free and a second purge at calloc both cost; the large
 * workload (malloc) keeps its lazy purges.
 */
#define HUGE_BIAS_MAX 8
static int huge_bias;
static uint64_t forced_bytes;

/*
 * Set by vr_ext_configure, from the shim's constructor. Until then the
 * slow path does nothing: an allocation may come from inside jemalloc's
 * own initialisation (with background_thread, its dlsym of pthread_create
 * allocates), where a mallctl finds jemalloc half built (measured: SIGFPE
 * in arena_set_extent_hooks). By the constructor, jemalloc is whole: the
 * constructors of the preload's dependencies ran first, and a mallctl made
 * there initialises it outside any allocation.
 */
static bool ext_ready;

/* Set by a malloc_trim in progress on this thread. */
static __thread bool trim_forced __attribute__((tls_model("initial-exec")));
/* Set while this thread runs the initialisation (recursion guard). */
static __thread bool in_init __attribute__((tls_model("initial-exec")));

enum { INIT_NONE, INIT_RUNNING, INIT_DONE, INIT_FAILED };
static int init_state;

/* jemalloc's default hooks: only compared with, never called (see the
 * banner). */
extern const extent_hooks_t je_ehooks_default_extent_hooks;
static extent_hooks_t *const dflt = (extent_hooks_t *)&je_ehooks_default_extent_hooks;
static size_t mib_decay[3];
static unsigned narenas_auto;
static unsigned huge_ind = UINT_MAX;
static size_t huge_threshold;

static uint64_t lazy_bytes, lazy_calls;

/* --- the hooks ---------------------------------------------------------- */

/*
 * Extents of the huge arena (blocks of 8 MiB and more) are aligned to 2 MiB
 * and advised MADV_HUGEPAGE: a transparent huge page is lazily freed as one
 * unit, where 512 small pages each cost MADV_FREE its own entry, and a
 * reused block then runs on fewer TLB entries. Measured with bench-shim's
 * large-block workload: 0.75 s -> 0.32 s (stock jemalloc 1.87 s). Other
 * arenas keep small pages: with every arena on huge pages (MALLOC_CONF
 * thp:always) the threaded workload became 1.6x slower and 35% larger.
 */
#define HUGE_ALIGN ((size_t)2 << 20)

/* The huge-page advice of this file (above, and huge_advise_calloc) is
 * given unless the user chose jemalloc's thp option: then jemalloc's own
 * advice stands (thp:never must mean no huge pages). Set by do_init. */
static bool thp_advice;

static void *h_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align,
                     bool *zero, bool *commit, unsigned ind)
{
	bool huge = ind == huge_ind && !addr && size >= HUGE_ALIGN;
	if (huge && align < HUGE_ALIGN)
		align = HUGE_ALIGN;
	/* At least a page, as jemalloc's default hook rounds it. */
	align = (align + vr_page_size - 1) & ~(vr_page_size - 1);
	void *p = je_ehooks_default_alloc_impl(&je_tsd_tls, addr, size, align, zero, commit, ind);
	if (p && huge && thp_advice)
		vr_madvise((uintptr_t)p, size, MADV_HUGEPAGE); /* keeps errno */
	return p;
}

static bool h_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
                     unsigned ind)
{
	return je_ehooks_default_dalloc_impl(addr, size);
}

static void h_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
                      unsigned ind)
{
	je_ehooks_default_destroy_impl(addr, size);
}

static bool h_commit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                     size_t len, unsigned ind)
{
	return je_ehooks_default_commit_impl(addr, off, len);
}

static bool h_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                       size_t len, unsigned ind)
{
	return je_ehooks_default_decommit_impl(addr, off, len);
}

static bool h_purge_lazy(extent_hooks_t *h, void *addr, size_t size, size_t off,
                         size_t len, unsigned ind)
{
	/* vr_madvise is the raw system call and keeps errno. */
	if (vr_madvise((uintptr_t)addr + off, len, MADV_FREE) != 0) {
		/* A kernel without MADV_FREE (< 4.5): let jemalloc's own lazy
		 * purge, which probed what works, do it or refuse. */
		return je_ehooks_default_purge_lazy_impl(addr, off, len);
	}
	vr_ext_count_lazy(len);
	return false;
}

static void huge_use(bool zeroed);

static bool h_purge_forced(extent_hooks_t *h, void *addr, size_t size, size_t off,
                           size_t len, unsigned ind)
{
	/* Refused, so that jemalloc purges lazily instead (see the banner);
	 * except inside malloc_trim, whose caller wants the memory gone, and
	 * in the huge arena while calloc dominates (huge_bias). jemalloc tries
	 * this purge first for every extent it gives back, so here is where a
	 * huge free is counted, and where, unless calloc dominates (its next
	 * user most likely advises small pages again), the block's 2 MiB pages
	 * are advised MADV_HUGEPAGE for its next user (huge_advise_calloc). */
	bool let = trim_forced;
	if (ind == huge_ind) {
		bool zeroing = __atomic_load_n(&huge_bias, __ATOMIC_RELAXED) > 0;
		let = let || zeroing;
		huge_use(false);
		uintptr_t a = ((uintptr_t)addr + off + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
		uintptr_t e = ((uintptr_t)addr + off + len) & ~(HUGE_ALIGN - 1);
		if (!zeroing && a < e && thp_advice)
			vr_madvise(a, e - a, MADV_HUGEPAGE); /* keeps errno */
	}
	if (!let)
		return true;
	bool r = je_ehooks_default_purge_forced_impl(addr, off, len);
	if (!r)
		__atomic_add_fetch(&forced_bytes, len, __ATOMIC_RELAXED);
	return r;
}

static bool h_split(extent_hooks_t *h, void *addr, size_t size, size_t a,
                    size_t b, bool committed, unsigned ind)
{
	return je_ehooks_default_split_impl();
}

static bool h_merge(extent_hooks_t *h, void *a, size_t asize, void *b,
                    size_t bsize, bool committed, unsigned ind)
{
	return je_ehooks_default_merge_impl(&je_tsd_tls, a, b);
}

/* Every member set: jemalloc's default hooks have them all on Linux (a
 * NULL member would tell jemalloc that the operation always opts out).
 * dalloc alone starts NULL: with opt.retain, jemalloc's default on 64-bit
 * Linux, it always opts out, and saying so spares jemalloc deregistering,
 * trying and re-registering every extent it gives back; do_init sets it
 * when retain is off. */
static extent_hooks_t hooks = {
	.alloc = h_alloc,
	.dalloc = NULL,
	.destroy = h_destroy,
	.commit = h_commit,
	.decommit = h_decommit,
	.purge_lazy = h_purge_lazy,
	.purge_forced = h_purge_forced,
	.split = h_split,
	.merge = h_merge,
};

/* --- the configuration of every arena jemalloc creates ------------------ */

/* jemalloc 5.3's arena_config_t (arena_structs.h); jemalloc-private.sh
 * checks that jemalloc's object has the same size. */
struct vr_arena_config {
	extent_hooks_t *extent_hooks;
	bool metadata_use_hooks;
};
const struct vr_arena_config vr_je_arena_config = { &hooks, false };

/*
 * Does arena i exist? Asked through its decay setting, which jemalloc
 * refuses (EFAULT) for an arena that does not exist. Not through
 * "arena.<i>.initialized": that answers from the statistics snapshot of
 * the last "epoch" write, and is stale unless refreshed first.
 */
static bool arena_exists(unsigned i)
{
	size_t mib[3] = { mib_decay[0], i, mib_decay[2] };
	ssize_t v = 0;
	size_t len = sizeof v;
	return je_mallctlbymib(mib, 3, &v, &len, NULL, 0) == 0;
}

static int read_ctl(const char *name, void *out, size_t len)
{
	size_t l = len;
	return je_mallctl(name, out, &l, NULL, 0);
}

/* Does arena i exist with our hooks? */
static bool arena_ours(unsigned i)
{
	char name[64];
	extent_hooks_t *h = NULL;
	snprintf(name, sizeof name, "arena.%u.extent_hooks", i);
	return arena_exists(i) && read_ctl(name, &h, sizeof h) == 0 && h == &hooks;
}

static bool do_init(void)
{
	size_t len = 3;
	if (je_mallctlnametomib("arena.0.dirty_decay_ms", mib_decay, &len) != 0 || len != 3)
		return false;
	bool retain = false;
	read_ctl("opt.retain", &retain, sizeof retain);
	if (!retain)
		__atomic_store_n(&hooks.dalloc, h_dalloc, __ATOMIC_RELEASE);
	thp_advice = !vr_je_user_sets("thp");

	/* Arena 0 is the exception: jemalloc builds it at its initialisation
	 * on the metadata allocator it booted with, whose hooks are the
	 * defaults whatever the configuration says; so it gets ours here,
	 * unless someone replaced them already. */
	size_t mib[3];
	len = 3;
	extent_hooks_t *old = NULL, *mine = &hooks;
	size_t olen = sizeof old;
	if (je_mallctlnametomib("arena.0.extent_hooks", mib, &len) == 0 && len == 3 &&
	    je_mallctlbymib(mib, 3, &old, &olen, NULL, 0) == 0 && old == dflt)
		je_mallctlbymib(mib, 3, NULL, NULL, &mine, sizeof mine);

	unsigned ntotal = 0;
	read_ctl("opt.narenas", &narenas_auto, sizeof narenas_auto);
	read_ctl("arenas.narenas", &ntotal, sizeof ntotal);
	size_t threshold = 0;
	read_ctl("opt.oversize_threshold", &threshold, sizeof threshold);
	/* jemalloc reserves the index after the automatic arenas for the
	 * huge arena when oversize_threshold is in use. */
	if (threshold != 0 && ntotal > narenas_auto) {
		huge_ind = narenas_auto;
		huge_threshold = threshold;
		/* Huge requests take the slow path: each calloc is counted
		 * (huge_bias) and advised. */
		__atomic_store_n(&huge_min, huge_threshold, __ATOMIC_RELEASE);
	}
	return true;
}

void vr_ext_init(void)
{
	int st = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);
	if (vr_likely(st >= INIT_DONE) || in_init)
		return;
	int expect = INIT_NONE;
	if (__atomic_compare_exchange_n(&init_state, &expect, INIT_RUNNING, false,
	                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		in_init = true;
		int saved = errno;
		bool ok = do_init();
		errno = saved;
		in_init = false;
		__atomic_store_n(&init_state, ok ? INIT_DONE : INIT_FAILED, __ATOMIC_RELEASE);
		return;
	}
	/* Another thread is initialising: a few mallctl calls, microseconds.
	 * No lock, so that fork in the middle cannot leave one held. */
	while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_RUNNING)
		sched_yield();
}

/* A huge calloc (zeroed) or a huge free: see huge_bias. */
static void huge_use(bool zeroed)
{
	int b = __atomic_load_n(&huge_bias, __ATOMIC_RELAXED), nb;
	do {
		nb = zeroed ? (b + 2 < HUGE_BIAS_MAX ? b + 2 : HUGE_BIAS_MAX)
		            : (b > -HUGE_BIAS_MAX ? b - 1 : b);
	} while (nb != b && !__atomic_compare_exchange_n(&huge_bias, &b, nb, true,
	                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/*
 * Transparent huge pages for a huge block that will be written whole
 * (malloc, realloc), small pages for a calloc'd one: a calloc'd table is
 * often used sparsely, and on a huge page every first touch of 2 MiB
 * clears all of it. Measured with bench-shim's calloc workload (one page
 * in 16 touched): 2.70 s with huge pages, 2.14 s without, stock jemalloc
 * 2.14 s; the large workload needs them (see HUGE_ALIGN). A calloc'd
 * block advises MADV_NOHUGEPAGE over every 2 MiB page it touches (its ends
 * included: a huge page faulted in at either end would fill 2 MiB for one
 * byte); as a huge block is freed while calloc does not dominate,
 * h_purge_forced advises the 2 MiB pages wholly inside it MADV_HUGEPAGE
 * again, so that whatever malloc'd block reuses them has them (advice
 * equal to the mapping's own changes nothing, no split: a system call per
 * huge free). While calloc dominates, the advice is left alone: flipping
 * it at every free and calloc would split and merge the mapping twice per
 * block.
 */
static void huge_advise_calloc(void *p, size_t n)
{
	if (!thp_advice)
		return;
	uintptr_t a = (uintptr_t)p & ~(HUGE_ALIGN - 1);
	uintptr_t e = ((uintptr_t)p + n + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
	vr_madvise(a, e - a, MADV_NOHUGEPAGE);
}

void vr_ext_after_alloc_slow(void *p, size_t n, bool zeroed)
{
	if (!__atomic_load_n(&ext_ready, __ATOMIC_ACQUIRE))
		return; /* the fast path stays shut: we come back */
	int saved = errno;
	vr_ext_init();
	if (zeroed && n >= __atomic_load_n(&huge_min, __ATOMIC_ACQUIRE)) {
		huge_use(true);
		huge_advise_calloc(p, n);
	}
	/* The fast path opens only once the initialisation is over: while it
	 * runs (on this thread, recursively) the huge arena is not known. */
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) >= INIT_DONE)
		vr_ext_fast_limit = __atomic_load_n(&huge_min, __ATOMIC_ACQUIRE);
	errno = saved;
}

void vr_ext_configure(void)
{
	int saved = errno;
	/* VRANGE_FREE_DECAY_MS, read with every other option (options.c). */
	vr_init();
	long ms = opt_free_decay_ms;
	if (!vr_je_user_sets("dirty_decay_ms")) {
		ssize_t d = (ssize_t)ms;
		/* The default for arenas created from now on... */
		je_mallctl("arenas.dirty_decay_ms", NULL, NULL, &d, sizeof d);
		/* ...and the ones that exist with our hooks, except the huge
		 * arena, which jemalloc purges at every free on purpose (and
		 * not the purgeable heap's arena, whose decay of 0 is its
		 * check against free(): purgeable.c). */
		unsigned ntotal = 0;
		read_ctl("arenas.narenas", &ntotal, sizeof ntotal);
		for (unsigned i = 0; i < ntotal; i++) {
			if (i == huge_ind || !arena_ours(i))
				continue;
			char name[64];
			snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", i);
			je_mallctl(name, NULL, NULL, &d, sizeof d);
		}
	}
	__atomic_store_n(&ext_ready, true, __ATOMIC_RELEASE);
	errno = saved;
}

void vr_ext_trim_begin(void)
{
	trim_forced = true;
}

void vr_ext_trim_end(void)
{
	trim_forced = false;
}

void vr_ext_count_lazy(size_t len)
{
	__atomic_add_fetch(&lazy_bytes, len, __ATOMIC_RELAXED);
	vr_stat_add(VR_STAT_SHIM_LAZY, len);
	__atomic_add_fetch(&lazy_calls, 1, __ATOMIC_RELAXED);
}

uint64_t vr_ext_lazy_bytes(void)
{
	return __atomic_load_n(&lazy_bytes, __ATOMIC_RELAXED);
}

uint64_t vr_ext_lazy_calls(void)
{
	return __atomic_load_n(&lazy_calls, __ATOMIC_RELAXED);
}

/*
 * LazyFree of /proc/self/smaps_rollup in KiB, or -1: the pages of the
 * whole process given to MADV_FREE (by the shim, and as volatile ranges)
 * that are neither rewritten nor reclaimed now. A snapshot, not a history:
 * a page the program reused left it without the kernel taking anything,
 * and the kernel keeps no per-process count of the pages it took. Read
 * with raw system calls: no stdio at exit.
 */
static long long lazyfree_kb(void)
{
	char buf[2048];
	int fd = vr_open_ro("/proc/self/smaps_rollup");
	if (fd < 0)
		return -1;
	ssize_t n = vr_read(fd, buf, sizeof buf - 1);
	vr_close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *l = strstr(buf, "\nLazyFree:");
	return l ? strtoll(l + 10, NULL, 10) : -1;
}

/* How many arenas exist with our hooks. */
static unsigned arenas_hooked(void)
{
	unsigned ntotal = 0, n = 0;
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE)
		return 0;
	read_ctl("arenas.narenas", &ntotal, sizeof ntotal);
	for (unsigned i = 0; i < ntotal; i++)
		n += arena_ours(i);
	return n;
}

/*
 * The shim's lines of the statistics at exit (VRANGE_STATS, stats.c), each
 * figure named for what it counts. The shim knows what it gave the kernel,
 * not what the kernel took: MADV_FREE'd bytes are summed at each call (a
 * block freed, reused and freed again counts twice), and LazyFree is what
 * the whole process has lazily freed at this moment.
 */
static size_t ext_stats_lines(char *buf, size_t len)
{
	long long lf = lazyfree_kb();
	char now[64] = "not readable";
	if (lf >= 0)
		snprintf(now, sizeof now, "%lld KiB", lf);
	int n = snprintf(buf, len,
	                 "shim: freed memory made reclaimable (MADV_FREE): %llu bytes "
	                 "in %llu calls, summed over the run\n"
	                 "shim: freed memory returned at once (MADV_DONTNEED, for "
	                 "calloc and malloc_trim): %llu bytes\n"
	                 "shim: arenas with the shim's hooks: %u\n"
	                 "process: LazyFree now %s (lazily freed pages not yet "
	                 "reused or reclaimed, volatile ranges included; the kernel "
	                 "does not count per process the pages it took)\n",
	                 (unsigned long long)vr_ext_lazy_bytes(),
	                 (unsigned long long)vr_ext_lazy_calls(),
	                 (unsigned long long)__atomic_load_n(&forced_bytes, __ATOMIC_RELAXED),
	                 arenas_hooked(), now);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

__attribute__((constructor))
static void ext_stats_register(void)
{
	vr_stats_set_lines(ext_stats_lines);
}
