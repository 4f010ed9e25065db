/*
 * registry.c - the registry of volatile pages (see registry.h).
 *
 * Entry points: vr_registry_each_seg_locked and the vr_seg_* accessors,
 * vr_registry_clear_locked, vr_registry_move_locked (writers, under the
 * lock); vr_registry_any, vr_registry_page (lock-free readers);
 * vr_registry_range_at, counters, fork handlers.
 *
 * Layout of a page number (vpn): bits 0-5 select the page in a leaf; the
 * leaf index (vpn >> 6) selects, from the top, a slot of the static top
 * array (bits 30 and up of the leaf index) and then one of 1024 slots in
 * each of three node levels. With 4 KiB pages a vpn has at most 52 bits,
 * so the top array needs 2^16 slots (512 KiB of bss, touched only where
 * used).
 */
#include "internal.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <urcu/urcu-bp.h>

#include "glue.h"
#include "log.h"
#include "registry.h"

#define NODE_BITS 10
#define NODE_SLOTS (1u << NODE_BITS)
#define TOP_SHIFT (3 * NODE_BITS)
#define TOP_SLOTS (1u << 16)

/* A leaf: the state of 64 pages, one word per kind (registry.h), indexed by
 * vr_pg_t, and the saved words. Private to this file: every read-modify-
 * write of per-page state is here. */
typedef struct vr_leaf_s {
	uint64_t bits[VR_PG_NKINDS];
	uintptr_t saved[VR_LEAF_PAGES];
	struct vr_leaf_s *next;  /* retire and free lists */
} vr_leaf_t;

/* The segment's pages as a mask of its leaf's words. */
static inline uint64_t seg_mask(const vr_seg_t *s)
{
	return vr_seg_all(s) << s->first;
}

typedef struct vr_node_s {
	void *slot[NODE_SLOTS];
} vr_node_t;

static vr_node_t *top[TOP_SLOTS];

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counters, written under the lock and read without it. */
static size_t reg_npages;
static size_t reg_nranges;
static size_t reg_nleaves;

/* Leaves unlinked but possibly still seen by a reader, and leaves that
 * waited out a grace period and can be reused. */
static vr_leaf_t *retired;
static size_t nretired;
static vr_leaf_t *freelist;

#define RETIRE_BATCH 64

/* --- metadata memory: mmap'd chunks, bump allocated, never unmapped ----- */

static char *arena_cur;
static char *arena_end;

#define ARENA_CHUNK (1u << 20)

static void *meta_alloc(size_t size)
{
	size = (size + 63) & ~(size_t)63;
	if ((size_t)(arena_end - arena_cur) < size) {
		size_t len = size > ARENA_CHUNK ? size : ARENA_CHUNK;
		char *p = vr_mmap_anon(len);
		if (!p)
			return NULL;
		arena_cur = p;
		arena_end = p + len;
	}
	void *r = arena_cur;
	arena_cur += size;
	return r;
}

/* --- tree walk ----------------------------------------------------------- */

#define LOAD(p) rcu_dereference(p)

static vr_leaf_t *leaf_lookup(uintptr_t li)
{
	vr_node_t *n1 = LOAD(top[li >> TOP_SHIFT]);
	if (!n1)
		return NULL;
	vr_node_t *n2 = LOAD(n1->slot[(li >> (2 * NODE_BITS)) & (NODE_SLOTS - 1)]);
	if (!n2)
		return NULL;
	vr_node_t *n3 = LOAD(n2->slot[(li >> NODE_BITS) & (NODE_SLOTS - 1)]);
	if (!n3)
		return NULL;
	return LOAD(n3->slot[li & (NODE_SLOTS - 1)]);
}

/* The slot that holds leaf li, creating the nodes above it (locked). */
static void **leaf_slot_create(uintptr_t li)
{
	void **slot = (void **)&top[li >> TOP_SHIFT];
	for (int level = 2; level >= 0; level--) {
		vr_node_t *n = *slot;
		if (!n) {
			/* A fresh mapping is zero-filled: every slot starts NULL. */
			n = meta_alloc(sizeof *n);
			if (!n)
				return NULL;
			memset(n, 0, sizeof *n);
			rcu_set_pointer(slot, n);
		}
		slot = &n->slot[(li >> (level * NODE_BITS)) & (NODE_SLOTS - 1)];
	}
	return slot;
}

static void **leaf_slot(uintptr_t li)
{
	vr_node_t *n1 = top[li >> TOP_SHIFT];
	if (!n1)
		return NULL;
	vr_node_t *n2 = n1->slot[(li >> (2 * NODE_BITS)) & (NODE_SLOTS - 1)];
	if (!n2)
		return NULL;
	vr_node_t *n3 = n2->slot[(li >> NODE_BITS) & (NODE_SLOTS - 1)];
	if (!n3)
		return NULL;
	return &n3->slot[li & (NODE_SLOTS - 1)];
}

/*
 * The first leaf index >= li and < limit that has a leaf, or limit. Skips
 * missing nodes whole, so that a lookup over a huge munmap costs by what
 * is registered there, not by its size.
 */
static uintptr_t next_leaf(uintptr_t li, uintptr_t limit, vr_leaf_t **out)
{
	while (li < limit) {
		vr_node_t *n1 = LOAD(top[li >> TOP_SHIFT]);
		if (!n1) {
			li = ((li >> TOP_SHIFT) + 1) << TOP_SHIFT;
			continue;
		}
		vr_node_t *n2 = LOAD(n1->slot[(li >> (2 * NODE_BITS)) & (NODE_SLOTS - 1)]);
		if (!n2) {
			li = ((li >> (2 * NODE_BITS)) + 1) << (2 * NODE_BITS);
			continue;
		}
		vr_node_t *n3 = LOAD(n2->slot[(li >> NODE_BITS) & (NODE_SLOTS - 1)]);
		if (!n3) {
			li = ((li >> NODE_BITS) + 1) << NODE_BITS;
			continue;
		}
		vr_leaf_t *leaf = LOAD(n3->slot[li & (NODE_SLOTS - 1)]);
		if (leaf) {
			*out = leaf;
			return li;
		}
		li++;
	}
	*out = NULL;
	return limit;
}

static vr_leaf_t *leaf_new(void)
{
	vr_leaf_t *leaf = freelist;
	if (leaf)
		freelist = leaf->next;
	else
		leaf = meta_alloc(sizeof *leaf);
	if (!leaf)
		return NULL;
	/* Atomic, as readers load these: a reused leaf was retired a grace
	 * period ago, which ThreadSanitizer cannot see. */
	__atomic_store_n(&leaf->bits[VR_PG_VOL], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&leaf->bits[VR_PG_LOST], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&leaf->bits[VR_PG_BARE], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&leaf->bits[VR_PG_OPT], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&leaf->bits[VR_PG_REG], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&leaf->bits[VR_PG_TOUCH], 0, __ATOMIC_RELAXED);
	leaf->bits[VR_PG_PEND] = 0;
	leaf->next = NULL;
	reg_nleaves++;
	return leaf;
}

/* Unlinks an empty leaf; it is reused after the next grace period. */
static void leaf_retire(uintptr_t li, vr_leaf_t *leaf)
{
	void **slot = leaf_slot(li);
	vr_assert(slot && *slot == leaf);
	rcu_set_pointer(slot, NULL);
	leaf->next = retired;
	retired = leaf;
	reg_nleaves--;
	if (++nretired >= RETIRE_BATCH) {
		/* Readers take no lock, so the only way to know none still
		 * holds one of these leaves is to wait for a grace period. */
		urcu_bp_synchronize_rcu();
		while (retired) {
			vr_leaf_t *l = retired;
			retired = l->next;
			l->next = freelist;
			freelist = l;
		}
		nretired = 0;
	}
}

/* The part of [lo, hi) that lies in leaf li (which must overlap it). */
static vr_seg_t leaf_seg(vr_leaf_t *leaf, uintptr_t li, uintptr_t lo, uintptr_t hi)
{
	uintptr_t base = li << VR_LEAF_SHIFT;
	uintptr_t a = base > lo ? base : lo;
	uintptr_t b = base + VR_LEAF_PAGES < hi ? base + VR_LEAF_PAGES : hi;
	return (vr_seg_t){ .vpn = a, .n = (unsigned)(b - a), .leaf = leaf,
	                   .first = (unsigned)(a - base) };
}

/* --- counting pages and ranges ------------------------------------------- */

/* The volatile and optimistic bits of page vpn, as bit 0 and bit 1. */
static unsigned page_kind(uintptr_t vpn)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	unsigned i = vpn & (VR_LEAF_PAGES - 1);
	if (!leaf)
		return 0;
	return (unsigned)((__atomic_load_n(&leaf->bits[VR_PG_VOL], __ATOMIC_ACQUIRE) >> i) & 1) |
	       (unsigned)(((__atomic_load_n(&leaf->bits[VR_PG_OPT], __ATOMIC_RELAXED) >> i) & 1) << 1);
}

/*
 * Pages p in [lo, hi) that start a range: volatile, and p - 1 is not, or is
 * of the other kind (explicit and optimistic ranges never merge).
 */
static size_t count_starts(uintptr_t lo, uintptr_t hi)
{
	size_t n = 0;
	unsigned k = lo > 0 ? page_kind(lo - 1) : 0;
	uint64_t cvol = k & 1, copt = (k >> 1) & 1;
	for (uintptr_t vpn = lo; vpn < hi;) {
		unsigned first = vpn & (VR_LEAF_PAGES - 1);
		uintptr_t cnt = VR_LEAF_PAGES - first;
		if (cnt > hi - vpn)
			cnt = hi - vpn;
		vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
		uint64_t v = leaf ? __atomic_load_n(&leaf->bits[VR_PG_VOL], __ATOMIC_ACQUIRE) : 0;
		uint64_t o = leaf ? __atomic_load_n(&leaf->bits[VR_PG_OPT], __ATOMIC_RELAXED) & v : 0;
		uint64_t mask = (cnt == 64 ? ~0ull : (1ull << cnt) - 1) << first;
		uint64_t pv = (v << 1) | (cvol << first);
		uint64_t po = (o << 1) | (copt << first);
		n += (size_t)__builtin_popcountll(v & (~pv | (o ^ po)) & mask);
		cvol = (v >> (first + cnt - 1)) & 1;
		copt = (o >> (first + cnt - 1)) & 1;
		vpn += cnt;
	}
	return n;
}

/* --- public (internal) interface ----------------------------------------- */

void vr_registry_lock_at(const char *where)
{
	pthread_mutex_lock(&reg_lock);
	if (config_debug)
		vr_registry_check_locked(where);
}

void vr_registry_unlock_at(const char *where)
{
	if (config_debug)
		vr_registry_check_locked(where);
	pthread_mutex_unlock(&reg_lock);
}

/* One invariant of leaf li: the pages of bits that break it, named. */
static void check_subset(const char *where, uintptr_t li, uint64_t bits, const char *what)
{
	if (bits)
		vr_die("registry check at %s: page %#lx is %s", where,
		       (unsigned long)((li << VR_LEAF_SHIFT) + (unsigned)__builtin_ctzll(bits)),
		       what);
}

void vr_registry_check_locked(const char *where)
{
	size_t pages = 0, ranges = 0, leaves = 0;
	uintptr_t prev_li = 0;
	uint64_t prev_vol = 0, prev_opt = 0;
	uintptr_t li = 0, limit = (uintptr_t)TOP_SLOTS << TOP_SHIFT;
	for (;;) {
		vr_leaf_t *leaf;
		li = next_leaf(li, limit, &leaf);
		if (!leaf)
			break;
		const uint64_t *b = leaf->bits;
		uint64_t v = b[VR_PG_VOL], o = b[VR_PG_OPT] & v;
		check_subset(where, li, b[VR_PG_BARE] & ~v, "bare but not volatile");
		check_subset(where, li, b[VR_PG_OPT] & ~v, "optimistic but not volatile");
		check_subset(where, li, b[VR_PG_LOST] & ~v, "lost but not volatile");
		check_subset(where, li, b[VR_PG_TOUCH] & ~v, "touched but not volatile");
		check_subset(where, li, b[VR_PG_PEND], "pending outside a mark");
		if (!v && !b[VR_PG_REG])
			vr_die("registry check at %s: leaf %#lx holds no state but is in the tree",
			       where, (unsigned long)li);
		/* Ranges: a page starts one where the page before it is not
		 * volatile or is of the other kind (count_starts, without a
		 * lookup per page). */
		bool adjacent = leaves && prev_li + 1 == li;
		uint64_t cv = adjacent ? prev_vol >> 63 : 0, co = adjacent ? prev_opt >> 63 : 0;
		uint64_t pv = (v << 1) | cv, po = (o << 1) | co;
		ranges += (size_t)__builtin_popcountll(v & (~pv | (o ^ po)));
		pages += (size_t)__builtin_popcountll(v);
		prev_li = li;
		prev_vol = v;
		prev_opt = o;
		leaves++;
		li++;
	}
	if (pages != reg_npages)
		vr_die("registry check at %s: %zu volatile pages in the bits, %zu counted",
		       where, pages, reg_npages);
	if (ranges != reg_nranges)
		vr_die("registry check at %s: %zu ranges in the bits, %zu counted",
		       where, ranges, reg_nranges);
	if (leaves != reg_nleaves)
		vr_die("registry check at %s: %zu leaves in the tree, %zu counted",
		       where, leaves, reg_nleaves);
}

void vr_registry_atfork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	urcu_bp_before_fork();
}

void vr_registry_atfork_parent(void)
{
	urcu_bp_after_fork_parent();
	pthread_mutex_unlock(&reg_lock);
}

void vr_registry_atfork_child(void)
{
	urcu_bp_after_fork_child();
	/* The child has one thread: the lock is made anew rather than
	 * unlocked by a thread that is not its owner. The registry itself
	 * came along in the copied address space, with no work per page. */
	pthread_mutex_init(&reg_lock, NULL);
}

void vr_registry_read_begin(void)
{
	urcu_bp_read_lock();
}

void vr_registry_read_end(void)
{
	urcu_bp_read_unlock();
}

/* The segment of [vpn, end) in vpn's leaf; with create, the leaf is made
 * if missing (seg->leaf stays NULL only if metadata memory ran out). */
static void seg_at(uintptr_t vpn, uintptr_t end, bool create, vr_seg_t *seg)
{
	uintptr_t li = vpn >> VR_LEAF_SHIFT;
	seg->vpn = vpn;
	seg->first = vpn & (VR_LEAF_PAGES - 1);
	uintptr_t room = VR_LEAF_PAGES - seg->first;
	seg->n = (unsigned)(end - vpn < room ? end - vpn : room);
	seg->leaf = leaf_lookup(li);
	if (seg->leaf || !create)
		return;
	void **slot = leaf_slot_create(li);
	if (!slot)
		return;
	vr_leaf_t *leaf = leaf_new();
	if (!leaf)
		return;
	rcu_set_pointer(slot, leaf);
	seg->leaf = leaf;
}

int vr_registry_each_seg_locked(uintptr_t lo, uintptr_t hi, unsigned flags,
                                vr_seg_fn fn, void *arg)
{
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		seg_at(vpn, hi, flags & VR_SEG_CREATE, &seg);
		vpn += seg.n;
		if (!seg.leaf && (flags & VR_SEG_CREATE))
			return -ENOMEM;
		if (!seg.leaf && (flags & VR_SEG_STATE))
			continue;
		int r = fn(&seg, arg);
		if (r != 0)
			return r;
	}
	return 0;
}

uint64_t vr_seg_get(const vr_seg_t *seg, vr_pg_t kind)
{
	if (!seg->leaf)
		return 0;
	uint64_t w = __atomic_load_n(&seg->leaf->bits[kind], __ATOMIC_ACQUIRE);
	return (w >> seg->first) & vr_seg_all(seg);
}

uintptr_t vr_seg_saved(const vr_seg_t *seg, unsigned i)
{
	return seg->leaf ? seg->leaf->saved[seg->first + i] : 0;
}

uintptr_t *vr_seg_saved_words_locked(const vr_seg_t *seg)
{
	vr_assert(seg->leaf);
	return &seg->leaf->saved[seg->first];
}

void vr_seg_save_locked(const vr_seg_t *seg, unsigned i, uintptr_t word)
{
	vr_assert(seg->leaf && i < seg->n);
	seg->leaf->saved[seg->first + i] = word;
}

void vr_seg_set_locked(const vr_seg_t *seg, uint64_t rmask,
                       uint64_t rlost, uint64_t rbare)
{
	vr_leaf_t *leaf = seg->leaf;
	uint64_t mask = (rmask & vr_seg_all(seg)) << seg->first;
	uint64_t lost_bits = rlost << seg->first, bare_bits = rbare << seg->first;
	vr_assert(leaf);
	uintptr_t lo = seg->vpn, hi = seg->vpn + seg->n;
	size_t s0 = count_starts(lo, hi + 1);
	uint64_t old = leaf->bits[VR_PG_VOL];
	/* Read-modify-writes are atomic: the signal handler sets lost bits
	 * without the lock. */
	__atomic_fetch_or(&leaf->bits[VR_PG_LOST], lost_bits & mask, __ATOMIC_RELAXED);
	__atomic_fetch_and(&leaf->bits[VR_PG_BARE], ~(mask & ~bare_bits), __ATOMIC_RELAXED);
	__atomic_fetch_or(&leaf->bits[VR_PG_BARE], bare_bits & mask, __ATOMIC_RELAXED);
	__atomic_fetch_or(&leaf->bits[VR_PG_VOL], mask, __ATOMIC_RELEASE);
	reg_npages += (size_t)__builtin_popcountll(mask & ~old);
	reg_nranges += count_starts(lo, hi + 1) - s0;
}

static size_t clear(uintptr_t lo, uintptr_t hi, bool forget_reg)
{
	size_t cleared = 0;
	if (hi <= lo)
		return 0;
	uintptr_t li = lo >> VR_LEAF_SHIFT, limit = ((hi - 1) >> VR_LEAF_SHIFT) + 1;
	for (;;) {
		vr_leaf_t *leaf;
		li = next_leaf(li, limit, &leaf);
		if (!leaf)
			break;
		vr_seg_t seg = leaf_seg(leaf, li, lo, hi);
		uint64_t mask = seg_mask(&seg);
		if (leaf->bits[VR_PG_VOL] & mask) {
			uintptr_t end = seg.vpn + seg.n;
			size_t s0 = count_starts(seg.vpn, end + 1);
			cleared += (size_t)__builtin_popcountll(leaf->bits[VR_PG_VOL] & mask);
			__atomic_fetch_and(&leaf->bits[VR_PG_VOL], ~mask, __ATOMIC_RELEASE);
			__atomic_fetch_and(&leaf->bits[VR_PG_LOST], ~mask, __ATOMIC_RELAXED);
			__atomic_fetch_and(&leaf->bits[VR_PG_BARE], ~mask, __ATOMIC_RELAXED);
			__atomic_fetch_and(&leaf->bits[VR_PG_OPT], ~mask, __ATOMIC_RELAXED);
			__atomic_fetch_and(&leaf->bits[VR_PG_TOUCH], ~mask, __ATOMIC_RELAXED);
			reg_nranges -= s0 - count_starts(seg.vpn, end + 1);
		}
		if (forget_reg)
			__atomic_fetch_and(&leaf->bits[VR_PG_REG], ~mask, __ATOMIC_RELAXED);
		if (!leaf->bits[VR_PG_VOL] && !leaf->bits[VR_PG_REG])
			leaf_retire(li, leaf);
		li++;
	}
	reg_npages -= cleared;
	return cleared;
}

size_t vr_registry_clear_locked(uintptr_t lo, uintptr_t hi)
{
	return clear(lo, hi, false);
}

size_t vr_registry_forget_locked(uintptr_t lo, uintptr_t hi)
{
	return clear(lo, hi, true);
}

void vr_seg_change_locked(const vr_seg_t *seg, vr_pg_t which, uint64_t rmask, bool on)
{
	vr_assert(seg->leaf && which != VR_PG_VOL);
	uint64_t *w = &seg->leaf->bits[which];
	uint64_t mask = (rmask & vr_seg_all(seg)) << seg->first;
	uintptr_t lo = seg->vpn, hi = seg->vpn + seg->n;
	bool kind = which == VR_PG_OPT;
	size_t s0 = kind ? count_starts(lo, hi + 1) : 0;
	if (on)
		__atomic_fetch_or(w, mask, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(w, ~mask, __ATOMIC_RELEASE);
	if (kind)
		reg_nranges += count_starts(lo, hi + 1) - s0;
}

void vr_registry_each_reg_locked(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                                 void *arg)
{
	uintptr_t run_lo = 0, run_hi = 0;
	uintptr_t li = 0, limit = (uintptr_t)TOP_SLOTS << TOP_SHIFT;
	for (;;) {
		vr_leaf_t *leaf;
		li = next_leaf(li, limit, &leaf);
		if (!leaf)
			break;
		uint64_t r = leaf->bits[VR_PG_REG];
		uintptr_t base = li << VR_LEAF_SHIFT;
		unsigned i, len;
		while ((len = vr_bits_take_run(&r, &i)) != 0) {
			if (run_hi == base + i) {
				run_hi += len;
			} else {
				if (run_hi > run_lo)
					fn(run_lo, run_hi, arg);
				run_lo = base + i;
				run_hi = run_lo + len;
			}
		}
		li++;
	}
	if (run_hi > run_lo)
		fn(run_lo, run_hi, arg);
}

static int seg_nothing(const vr_seg_t *seg, void *arg)
{
	(void)seg;
	(void)arg;
	return 0;
}

int vr_registry_reserve_locked(uintptr_t lo, uintptr_t hi)
{
	int r = vr_registry_each_seg_locked(lo, hi, VR_SEG_CREATE, seg_nothing, NULL);
	if (r != 0)
		vr_registry_trim_locked(lo, hi);
	return r;
}

void vr_registry_trim_locked(uintptr_t lo, uintptr_t hi)
{
	if (hi <= lo)
		return;
	uintptr_t li = lo >> VR_LEAF_SHIFT, limit = ((hi - 1) >> VR_LEAF_SHIFT) + 1;
	for (;;) {
		vr_leaf_t *leaf;
		li = next_leaf(li, limit, &leaf);
		if (!leaf)
			break;
		if (!leaf->bits[VR_PG_VOL] && !leaf->bits[VR_PG_REG])
			leaf_retire(li, leaf);
		li++;
	}
}

size_t vr_registry_move_locked(uintptr_t from, uintptr_t to, size_t n)
{
	size_t moved = 0;
	if (from == to || n == 0)
		return 0;
	vr_registry_forget_locked(to, to + n);
	uintptr_t li = from >> VR_LEAF_SHIFT;
	uintptr_t limit = ((from + n - 1) >> VR_LEAF_SHIFT) + 1;
	for (;;) {
		vr_leaf_t *leaf;
		li = next_leaf(li, limit, &leaf);
		if (!leaf)
			break;
		uintptr_t base = li << VR_LEAF_SHIFT;
		for (unsigned i = 0; i < VR_LEAF_PAGES; i++) {
			uintptr_t vpn = base + i;
			uint64_t bit = 1ull << i;
			if (vpn < from || vpn >= from + n || !((leaf->bits[VR_PG_VOL] | leaf->bits[VR_PG_REG]) & bit))
				continue;
			uintptr_t dst = to + (vpn - from);
			vr_seg_t seg;
			seg_at(dst, dst + 1, true, &seg);
			if (!seg.leaf)
				continue; /* out of metadata: the page is forgotten */
			uint64_t d = 1;
			/* The registration moves with the mapping (mremap keeps
			 * a VMA's userfaultfd context); the kind goes first so
			 * that a reader never sees an optimistic page as
			 * explicit. */
			if (leaf->bits[VR_PG_REG] & bit)
				vr_seg_change_locked(&seg, VR_PG_REG, d, true);
			if (leaf->bits[VR_PG_OPT] & bit)
				vr_seg_change_locked(&seg, VR_PG_OPT, d, true);
			if (!(leaf->bits[VR_PG_VOL] & bit))
				continue;
			vr_seg_save_locked(&seg, 0, leaf->saved[i]);
			vr_seg_set_locked(&seg, d, (leaf->bits[VR_PG_LOST] & bit) ? d : 0,
			                       (leaf->bits[VR_PG_BARE] & bit) ? d : 0);
			moved++;
		}
		li++;
	}
	vr_registry_forget_locked(from, from + n);
	return moved;
}

bool vr_registry_any(uintptr_t lo, uintptr_t hi)
{
	bool any = false;
	if (hi <= lo)
		return false;
	uintptr_t li = lo >> VR_LEAF_SHIFT, limit = ((hi - 1) >> VR_LEAF_SHIFT) + 1;
	/* No RCU read side here: urcu-bp registers a thread on its first read
	 * lock by calling mmap, which is interposed and comes back here.
	 * Metadata is never unmapped, so a leaf reused under us is still
	 * readable memory; its bits answer for a moment when the range was
	 * already empty, which is a true answer for a racing caller. */
	for (;;) {
		vr_leaf_t *leaf;
		li = next_leaf(li, limit, &leaf);
		if (!leaf)
			break;
		vr_seg_t seg = leaf_seg(leaf, li, lo, hi);
		uint64_t state = __atomic_load_n(&leaf->bits[VR_PG_VOL], __ATOMIC_ACQUIRE) |
		                 __atomic_load_n(&leaf->bits[VR_PG_REG], __ATOMIC_RELAXED);
		if (state & seg_mask(&seg)) {
			any = true;
			break;
		}
		li++;
	}
	return any;
}

bool vr_registry_page(uintptr_t vpn, bool *lost, bool *bare)
{
	vr_page_bits_t b = { 0 };
	vr_registry_read_begin();
	bool vol = vr_registry_bits(vpn, &b) && b.vol;
	vr_registry_read_end();
	if (lost)
		*lost = vol && b.lost;
	if (bare)
		*bare = vol && b.bare;
	return vol;
}

bool vr_registry_bits(uintptr_t vpn, vr_page_bits_t *out)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	unsigned i = vpn & (VR_LEAF_PAGES - 1);
	if (!leaf)
		return false;
	uint64_t vol = __atomic_load_n(&leaf->bits[VR_PG_VOL], __ATOMIC_ACQUIRE);
	out->vol = (vol >> i) & 1;
	out->lost = (__atomic_load_n(&leaf->bits[VR_PG_LOST], __ATOMIC_RELAXED) >> i) & 1;
	out->bare = (__atomic_load_n(&leaf->bits[VR_PG_BARE], __ATOMIC_RELAXED) >> i) & 1;
	out->opt = (__atomic_load_n(&leaf->bits[VR_PG_OPT], __ATOMIC_RELAXED) >> i) & 1;
	out->reg = (__atomic_load_n(&leaf->bits[VR_PG_REG], __ATOMIC_RELAXED) >> i) & 1;
	out->touch = (__atomic_load_n(&leaf->bits[VR_PG_TOUCH], __ATOMIC_ACQUIRE) >> i) & 1;
	return true;
}

void vr_registry_note_lost(uintptr_t vpn)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	if (leaf)
		__atomic_fetch_or(&leaf->bits[VR_PG_LOST], 1ull << (vpn & (VR_LEAF_PAGES - 1)),
		                  __ATOMIC_RELAXED);
}

bool vr_registry_saved(uintptr_t vpn, uintptr_t *word)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	unsigned i = vpn & (VR_LEAF_PAGES - 1);
	if (!leaf)
		return false;
	uint64_t vol = __atomic_load_n(&leaf->bits[VR_PG_VOL], __ATOMIC_ACQUIRE);
	uint64_t bare = __atomic_load_n(&leaf->bits[VR_PG_BARE], __ATOMIC_RELAXED);
	if (!((vol & ~bare) >> i & 1))
		return false;
	*word = leaf->saved[i];
	return true;
}

uint64_t *vr_registry_lost_word(uintptr_t vpn)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	return leaf ? &leaf->bits[VR_PG_LOST] : NULL;
}

void vr_registry_note_touched(uintptr_t vpn)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	if (leaf)
		__atomic_fetch_or(&leaf->bits[VR_PG_TOUCH], 1ull << (vpn & (VR_LEAF_PAGES - 1)),
		                  __ATOMIC_RELEASE);
}

void vr_registry_note_bare(uintptr_t vpn)
{
	vr_leaf_t *leaf = leaf_lookup(vpn >> VR_LEAF_SHIFT);
	if (leaf)
		__atomic_fetch_or(&leaf->bits[VR_PG_BARE], 1ull << (vpn & (VR_LEAF_PAGES - 1)),
		                  __ATOMIC_RELAXED);
}

bool vr_registry_range_at(uintptr_t vpn, uintptr_t *lo, uintptr_t *hi)
{
	vr_registry_lock();
	unsigned k = page_kind(vpn);
	bool vol = k & 1;
	if (vol) {
		uintptr_t a = vpn, b = vpn + 1;
		while (a > 0 && page_kind(a - 1) == k)
			a--;
		while (page_kind(b) == k)
			b++;
		*lo = a;
		*hi = b;
	}
	vr_registry_unlock();
	return vol;
}

size_t vr_registry_npages(void)
{
	return __atomic_load_n(&reg_npages, __ATOMIC_RELAXED);
}

size_t vr_registry_nranges(void)
{
	return __atomic_load_n(&reg_nranges, __ATOMIC_RELAXED);
}

size_t vr_registry_nleaves(void)
{
	return __atomic_load_n(&reg_nleaves, __ATOMIC_RELAXED);
}
