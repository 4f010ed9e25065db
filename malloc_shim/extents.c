/*
 * extents.c - jemalloc extent hooks that make freed memory volatile.
 *
 * Entry points (hidden, see shim.h): vr_ext_init, vr_ext_configure,
 * vr_ext_after_alloc_slow, vr_je_mmap, vr_ext_hook_pending,
 * vr_ext_trim_begin/end,
 * vr_ext_lazy_bytes/calls. Exported for tests and tools until the counter
 * is struct vrange_stats' shim_lazy_bytes.
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
 * Which arenas get the hooks. jemalloc creates its automatic arenas lazily
 * (a thread is bound to one on its first allocation) and the huge arena
 * (blocks of opt.oversize_threshold, 8 MiB, and more) on the first huge
 * allocation, and offers no callback for either. Initialising them all up
 * front would cost their metadata in every process (measured: 90-106 KiB
 * of RSS per arena, 4 x ncpus arenas; 252 KiB for the huge arena and its
 * first block's metadata), and a timer would need a thread. What jemalloc
 * does when it creates an arena is map the arena's metadata: its calls to
 * mmap come here (vr_je_mmap, renamed by jemalloc-private.sh), and each
 * sets VR_FREE_HOOK in the word every free path tests (vr_free_work,
 * shim.h) until every automatic arena and the huge arena carry our hooks.
 * The next free, from any thread, then hooks what exists
 * (vr_ext_hook_pending): jemalloc creates automatic arenas lowest index
 * first, so the search starts at the first index not hooked yet and stops
 * at the first that does not exist. Until then the new arena purges as
 * jemalloc would without us, which is correct, only not lazy; malloc,
 * jemalloc's own, tests nothing. The other allocation paths also hook the
 * thread's arena on its first allocation through them (thread_first, after
 * one thread-local compare, vr_ext_fast_limit). With percpu_arena, where a
 * thread moves between arenas, every automatic arena is hooked at start-up.
 * Arenas an application creates itself with "arenas.create" are hooked as
 * the call returns (mallctl.c), unless it gave hooks of its own. Not
 * hooked: an arena whose hooks someone else already replaced.
 *
 * Nothing here allocates, and errno is preserved: the hooks run inside
 * malloc and free.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "jemalloc_private.h"

#include "glue.h"
#include "init.h"
#include "log.h"
#include "options.h"
#include "shim.h"
#include "stats.h"

#define MAX_ARENAS 4096 /* MALLCTL_ARENAS_ALL: jemalloc's own limit */

__thread size_t vr_ext_fast_limit __attribute__((tls_model("initial-exec")));
/* Requests of this size or more go to jemalloc's huge arena: SIZE_MAX until
 * the initialisation found that arena. They all take the slow path. */
static size_t huge_min = SIZE_MAX;
static bool huge_hooked;
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

/* Set once the calling thread has allocated through the shim. */
static __thread bool thread_seen __attribute__((tls_model("initial-exec")));

/* Set by a malloc_trim in progress on this thread. */
static __thread bool trim_forced __attribute__((tls_model("initial-exec")));
/* Set while this thread runs the initialisation (recursion guard). */
static __thread bool in_init __attribute__((tls_model("initial-exec")));

enum { INIT_NONE, INIT_RUNNING, INIT_DONE, INIT_FAILED };
static int init_state;

static extent_hooks_t *dflt;       /* jemalloc's defaults, wrapped below */
static extent_hooks_t hooks;       /* ours; written once, before use */
static size_t mib_hooks[3], mib_decay[3];
static unsigned narenas_auto;
static unsigned huge_ind = UINT_MAX;
static size_t huge_threshold;
static uint64_t hooked[MAX_ARENAS / 64];
static unsigned nhooked;
/* vr_ext_hook_pending: the automatic arenas below this index are hooked;
 * all_hooked: so are all of them and the huge arena, and vr_je_mmap stops
 * asking. */
static unsigned scan_next;
static bool all_hooked;

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
	void *p = dflt->alloc(dflt, addr, size, huge && align < HUGE_ALIGN ? HUGE_ALIGN : align,
	                      zero, commit, ind);
	if (p && huge && thp_advice)
		vr_madvise((uintptr_t)p, size, MADV_HUGEPAGE); /* keeps errno */
	return p;
}

static bool h_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
                     unsigned ind)
{
	return dflt->dalloc(dflt, addr, size, committed, ind);
}

static void h_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
                      unsigned ind)
{
	dflt->destroy(dflt, addr, size, committed, ind);
}

static bool h_commit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                     size_t len, unsigned ind)
{
	return dflt->commit(dflt, addr, size, off, len, ind);
}

static bool h_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                       size_t len, unsigned ind)
{
	return dflt->decommit(dflt, addr, size, off, len, ind);
}

static bool h_purge_lazy(extent_hooks_t *h, void *addr, size_t size, size_t off,
                         size_t len, unsigned ind)
{
	/* vr_madvise is the raw system call and keeps errno. */
	if (vr_madvise((uintptr_t)addr + off, len, MADV_FREE) != 0) {
		/* A kernel without MADV_FREE (< 4.5): let jemalloc's own lazy
		 * purge, which probed what works, do it or refuse. */
		return dflt->purge_lazy ? dflt->purge_lazy(dflt, addr, size, off, len, ind)
		                        : true;
	}
	__atomic_add_fetch(&lazy_bytes, len, __ATOMIC_RELAXED);
	vr_stat_add(VR_STAT_SHIM_LAZY, len);
	__atomic_add_fetch(&lazy_calls, 1, __ATOMIC_RELAXED);
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
	if (!let || !dflt->purge_forced)
		return true;
	bool r = dflt->purge_forced(dflt, addr, size, off, len, ind);
	if (!r)
		__atomic_add_fetch(&forced_bytes, len, __ATOMIC_RELAXED);
	return r;
}

static bool h_split(extent_hooks_t *h, void *addr, size_t size, size_t a,
                    size_t b, bool committed, unsigned ind)
{
	return dflt->split(dflt, addr, size, a, b, committed, ind);
}

static bool h_merge(extent_hooks_t *h, void *a, size_t asize, void *b,
                    size_t bsize, bool committed, unsigned ind)
{
	return dflt->merge(dflt, a, asize, b, bsize, committed, ind);
}

/* --- installing them ---------------------------------------------------- */

/*
 * Does arena i exist? Asked through its decay setting, which jemalloc
 * refuses (EFAULT) for an arena that does not exist. Not through
 * "arena.<i>.initialized": that answers from the statistics snapshot of
 * the last "epoch" write, and is stale unless refreshed first (which left
 * the huge arena unhooked once).
 */
static bool arena_exists(unsigned i)
{
	size_t mib[3] = { mib_decay[0], i, mib_decay[2] };
	ssize_t v = 0;
	size_t len = sizeof v;
	return je_mallctlbymib(mib, 3, &v, &len, NULL, 0) == 0;
}

/*
 * Installs our hooks on arena i unless done already or someone else's hooks
 * are there. Returns false if arena i does not exist (reading the hooks of
 * a missing manual or huge arena fails). Reading the hooks of an automatic
 * arena that does not exist yet answers the defaults, and writing them
 * creates it: callers only pass automatic arenas that exist, except for
 * percpu_arena, where creating them is the point.
 */
static bool hook_arena(unsigned i)
{
	if (i >= MAX_ARENAS)
		return false;
	uint64_t bit = 1ull << (i & 63);
	if (__atomic_load_n(&hooked[i >> 6], __ATOMIC_ACQUIRE) & bit)
		return true;
	if (__atomic_fetch_or(&hooked[i >> 6], bit, __ATOMIC_ACQ_REL) & bit)
		return true;
	size_t mib[3] = { mib_hooks[0], i, mib_hooks[2] };
	extent_hooks_t *old = NULL, *mine = &hooks;
	size_t len = sizeof old;
	if (je_mallctlbymib(mib, 3, &old, &len, NULL, 0) != 0) {
		__atomic_fetch_and(&hooked[i >> 6], ~bit, __ATOMIC_ACQ_REL);
		return false;
	}
	if (old == dflt && je_mallctlbymib(mib, 3, NULL, NULL, &mine, sizeof mine) == 0)
		__atomic_add_fetch(&nhooked, 1, __ATOMIC_RELAXED);
	return true;
}

static int read_ctl(const char *name, void *out, size_t len)
{
	size_t l = len;
	return je_mallctl(name, out, &l, NULL, 0);
}

static bool do_init(void)
{
	size_t len = 3;
	if (je_mallctlnametomib("arena.0.extent_hooks", mib_hooks, &len) != 0 || len != 3)
		return false;
	len = 3;
	if (je_mallctlnametomib("arena.0.dirty_decay_ms", mib_decay, &len) != 0 || len != 3)
		return false;
	if (read_ctl("arena.0.extent_hooks", &dflt, sizeof dflt) != 0 || !dflt)
		return false;

	bool retain = false;
	read_ctl("opt.retain", &retain, sizeof retain);
	thp_advice = !vr_je_user_sets("thp");
	/* A NULL member tells jemalloc the operation always opts out, which
	 * spares it the attempt; keep the default's NULLs, and with
	 * opt.retain (jemalloc's default on 64-bit Linux) dalloc always opts
	 * out, so say so instead of letting jemalloc deregister, try and
	 * re-register every extent it gives back. */
	hooks.alloc = h_alloc;
	hooks.dalloc = dflt->dalloc && !retain ? h_dalloc : NULL;
	hooks.destroy = dflt->destroy ? h_destroy : NULL;
	hooks.commit = dflt->commit ? h_commit : NULL;
	hooks.decommit = dflt->decommit ? h_decommit : NULL;
	hooks.purge_lazy = h_purge_lazy;
	hooks.purge_forced = h_purge_forced;
	hooks.split = dflt->split ? h_split : NULL;
	hooks.merge = dflt->merge ? h_merge : NULL;

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
	}

	for (unsigned i = 0; i < ntotal && i < MAX_ARENAS; i++)
		if (arena_exists(i))
			hook_arena(i);

	const char *percpu = "disabled";
	read_ctl("opt.percpu_arena", &percpu, sizeof percpu);
	if (percpu && strcmp(percpu, "disabled") != 0)
		for (unsigned i = 0; i < narenas_auto && i < MAX_ARENAS; i++)
			hook_arena(i);

	/* Huge requests take the slow path whether or not their arena is
	 * hooked yet: each is counted (huge_bias) and advised. */
	if (huge_ind != UINT_MAX) {
		if (__atomic_load_n(&hooked[huge_ind >> 6], __ATOMIC_ACQUIRE) &
		    (1ull << (huge_ind & 63)))
			__atomic_store_n(&huge_hooked, true, __ATOMIC_RELEASE);
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

static void thread_first(void)
{
	vr_ext_init();
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE)
		return;
	unsigned a;
	if (read_ctl("thread.arena", &a, sizeof a) == 0)
		hook_arena(a);
}

static void huge_first(void)
{
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE ||
	    huge_ind == UINT_MAX)
		return;
	if (hook_arena(huge_ind))
		__atomic_store_n(&huge_hooked, true, __ATOMIC_RELEASE);
}

void *vr_je_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	/* The exported mmap (libvrange/interpose.c), as jemalloc called it. */
	void *p = mmap(addr, len, prot, flags, fd, (off_t)off);
	if (p != MAP_FAILED && !__atomic_load_n(&all_hooked, __ATOMIC_RELAXED))
		__atomic_fetch_or(&vr_free_work, VR_FREE_HOOK, __ATOMIC_RELEASE);
	return p;
}

void vr_ext_hook_pending(void)
{
	/* Before the constructor, jemalloc may be initialising (see
	 * ext_ready): leave the flag for a later free; do_init will find
	 * what exists anyway. */
	if (!__atomic_load_n(&ext_ready, __ATOMIC_ACQUIRE))
		return;
	__atomic_fetch_and(&vr_free_work, ~VR_FREE_HOOK, __ATOMIC_ACQ_REL);
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE)
		return;
	int saved = errno;
	unsigned i = __atomic_load_n(&scan_next, __ATOMIC_RELAXED);
	while (i < narenas_auto && i < MAX_ARENAS && arena_exists(i)) {
		hook_arena(i);
		i++;
	}
	__atomic_store_n(&scan_next, i, __ATOMIC_RELAXED);
	if (huge_ind != UINT_MAX && !__atomic_load_n(&huge_hooked, __ATOMIC_ACQUIRE) &&
	    arena_exists(huge_ind))
		huge_first();
	if (i >= narenas_auto &&
	    (huge_ind == UINT_MAX || __atomic_load_n(&huge_hooked, __ATOMIC_ACQUIRE)))
		__atomic_store_n(&all_hooked, true, __ATOMIC_RELAXED);
	errno = saved;
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
	if (!thread_seen) {
		thread_seen = true;
		thread_first();
	}
	if (n >= __atomic_load_n(&huge_min, __ATOMIC_ACQUIRE)) {
		if (!__atomic_load_n(&huge_hooked, __ATOMIC_ACQUIRE))
			huge_first();
		if (zeroed) {
			huge_use(true);
			huge_advise_calloc(p, n);
		}
	}
	/* The fast path opens only once the initialisation is over: while it
	 * runs (on this thread, recursively) the huge arena is not known. */
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) >= INIT_DONE)
		vr_ext_fast_limit = __atomic_load_n(&huge_min, __ATOMIC_ACQUIRE);
	errno = saved;
}

void vr_ext_arena_created(unsigned ind)
{
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE)
		return;
	int saved = errno;
	hook_arena(ind);
	errno = saved;
}

void vr_ext_arena_destroyed(unsigned ind)
{
	if (ind < MAX_ARENAS)
		__atomic_fetch_and(&hooked[ind >> 6], ~(1ull << (ind & 63)), __ATOMIC_ACQ_REL);
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
		/* ...and the ones that exist, except the huge arena, which
		 * jemalloc purges at every free on purpose. */
		unsigned ntotal = 0;
		read_ctl("arenas.narenas", &ntotal, sizeof ntotal);
		for (unsigned i = 0; i < ntotal; i++) {
			if (i == huge_ind || !arena_exists(i))
				continue;
			char name[64];
			snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", i);
			je_mallctl(name, NULL, NULL, &d, sizeof d);
		}
	}
	__atomic_store_n(&ext_ready, true, __ATOMIC_RELEASE);
	/* The main thread's arena (malloc, jemalloc's own, hooks nothing),
	 * and whatever was created before now. */
	thread_seen = true;
	thread_first();
	vr_ext_hook_pending();
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

uint64_t vr_ext_lazy_bytes(void)
{
	return __atomic_load_n(&lazy_bytes, __ATOMIC_RELAXED);
}

uint64_t vr_ext_lazy_calls(void)
{
	return __atomic_load_n(&lazy_calls, __ATOMIC_RELAXED);
}

/*
 * LazyFree of /proc/self/smaps_rollup in KiB: what of the memory given back
 * with MADV_FREE the kernel has not taken (yet), or -1. The kernel keeps no
 * count, per process, of the lazily freed pages it took; this is the part
 * it did not. Read with raw system calls: no stdio at exit.
 */
static long long lazyfree_kb(void)
{
	char buf[2048];
	int fd = (int)vr_sys6(SYS_openat, AT_FDCWD, (long)"/proc/self/smaps_rollup",
	                      O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return -1;
	long n = vr_sys6(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0, 0);
	vr_sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *l = strstr(buf, "\nLazyFree:");
	return l ? strtoll(l + 10, NULL, 10) : -1;
}

__attribute__((destructor))
static void ext_destructor(void)
{
	if (!vr_ready() || !opt_stats)
		return;
	char buf[256];
	int n = snprintf(buf, sizeof buf,
	                 "libvrange: shim: %llu bytes made reclaimable (MADV_FREE) "
	                 "in %llu calls, %lld KiB of them not taken by the kernel at "
	                 "exit; %llu returned (MADV_DONTNEED) for calloc; "
	                 "%u arenas hooked\n",
	                 (unsigned long long)vr_ext_lazy_bytes(),
	                 (unsigned long long)vr_ext_lazy_calls(), lazyfree_kb(),
	                 (unsigned long long)__atomic_load_n(&forced_bytes, __ATOMIC_RELAXED),
	                 __atomic_load_n(&nhooked, __ATOMIC_RELAXED));
	if (n > 0)
		vr_write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}
