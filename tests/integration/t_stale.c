/*
 * t_stale - R8: stale state is harmless.
 *
 * A volatile range is unmapped, remapped over, moved, shrunk, grown or
 * partly unmapped while volatile. The library interposes munmap, mremap and
 * mmap, so it must follow every one of them: state moves with pages that
 * move, is forgotten (and counted in pages_dropped) with pages that go away,
 * and a new mapping placed where a stale range was is never touched: its
 * bytes never change under the library and its own mark/unmark is exact.
 * Nowhere may a lost page be reported intact, and nothing may crash.
 * A failed munmap/mremap/mmap changes nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "vrange.h"
#include "../model.h"

/* ---- helpers of this test ------------------------------------------------ */

/* Pages [first, first + n) were replaced by a new mapping (zeros) or went
 * away: the library must have forgotten them. */
static void m_forget(struct model *m, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		m->vol[i] = 0;
		m->lost[i] = 0;
		m->seed[i] = 0;
	}
}

/* Pages moved by mremap: dst[dfirst + i] takes the state of src[sfirst + i]. */
static void m_move(struct model *dst, size_t dfirst, const struct model *src,
                   size_t sfirst, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst->vol[dfirst + i] = src->vol[sfirst + i];
		dst->lost[dfirst + i] = src->lost[sfirst + i];
		dst->seed[dfirst + i] = src->seed[sfirst + i];
	}
}

/* ck_contents on pages [first, first + n) only (the rest may be unmapped). */
static int ck_contents_range(struct model *m, size_t first, size_t n,
                             const char *what)
{
	size_t bad = m_bad_range(m, first, n, 8, NULL);
	return tap_ok(bad == 0, "%s: pages [%zu,%zu) hold their pattern, or "
	              "zeros if purged or new", what, first, first + n);
}

#define DELTA(s1, s0, field) ((long long)((s1).field - (s0).field))

/* Unmarking [addr, addr + len), which is (partly) unmapped, fails ENOMEM. */
static void ck_enomem(void *addr, size_t len, const char *what)
{
	int purged = -7;
	errno = 0;
	int rc = vrange_mark_nonvolatile(addr, len, &purged);
	int e = errno;
	if (!tap_ok(rc == -1 && e == ENOMEM, "%s: unmark of an unmapped range "
	            "fails with ENOMEM", what)) {
		unsigned char *v = malloc(len / ps + 1);
		int mc = v ? mincore(addr, len, v) : -1;
		tap_diag("  got rc=%d errno=%s purged=%d; the range is %s", rc,
		         strerror(e), purged, mc == 0 ? "mapped again (by whom?)" :
		         "unmapped, as it should be");
		free(v);
	}
}

/* mmap of n anonymous pages at addr, with or without MAP_FIXED. */
static unsigned char *map_at(void *addr, size_t n, int fixed)
{
	void *q = mmap(addr, n * ps, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED : 0),
	               -1, 0);
	if (q == MAP_FAILED) {
		tap_printf("Bail out! mmap at %p: %s\n", addr, strerror(errno));
		exit(1);
	}
	return q;
}

/* ---- the cases ------------------------------------------------------------ */

/* (a) munmap, then a MAP_FIXED mapping at the same address, marked at once:
 * no stale history may leak into it. */
static void case_munmap_then_fixed(void)
{
	const char *w = "munmap+fixed";
	struct model m;
	m_init(&m, 16, 101);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 1, 2);
	m_pageout(&m, 9, 1);
	struct vrange_stats s0 = st_get();
	tap_is(munmap(m.p, 16 * ps), 0, "%s: munmap the volatile range", w);
	struct vrange_stats s1 = st_get();
	tap_is(DELTA(s1, s0, pages_dropped), 16,
	       "%s: pages_dropped grows by the 16 volatile pages", w);
	tap_is(DELTA(s0, s1, volatile_bytes), (long long)(16 * ps),
	       "%s: volatile_bytes falls by 16 pages", w);
	tap_is(DELTA(s0, s1, volatile_ranges), 1,
	       "%s: volatile_ranges falls by one", w);

	unsigned char *q = map_at(m.p, 16, 1);
	tap_ok(q == m.p, "%s: new mapping at the same address", w);
	m_forget(&m, 0, 16);
	ck_contents(&m, "munmap+fixed: the new mapping reads zeros");
	m_refill(&m, 0, 16, 102);
	/* Its own cycle, with no unmark first: a leaked "already volatile, lost"
	 * history would show here as a false purge. */
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark the new mapping", w);
	m_pageout(&m, 0, 1);
	m_pageout(&m, 5, 1);
	m_pageout(&m, 15, 1);
	ck_unmark_vec(&m, 0, 8, "munmap+fixed: new mapping");
	ck_unmark_vec(&m, 8, 8, "munmap+fixed: new mapping");
	ck_contents(&m, "munmap+fixed: new mapping after its own cycle");
	m_free(&m);
}

/* (a) munmap, then a smaller mapping with the old address as a mere hint,
 * overlapping the stale range; unmarked first, then its own cycle. */
static void case_munmap_then_hint(void)
{
	const char *w = "munmap+hint";
	struct model m;
	m_init(&m, 16, 111);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 3, 2);
	m_pageout(&m, 12, 1);
	struct vrange_stats s0 = st_get();
	tap_is(munmap(m.p, 16 * ps), 0, "%s: munmap the volatile range", w);
	struct vrange_stats s1 = st_get();
	tap_is(DELTA(s1, s0, pages_dropped), 16,
	       "%s: pages_dropped grows by the 16 volatile pages", w);

	unsigned char *hint = m.p + 4 * ps;
	unsigned char *q = map_at(hint, 8, 0);
	m_drop(&m);
	if (q != hint) {
		tap_ok(1, "%s: # SKIP the kernel did not honour the hint", w);
		munmap(q, 8 * ps);
		return;
	}
	struct model n;
	m_adopt(&n, q, 8);
	ck_contents(&n, "munmap+hint: the new mapping reads zeros");
	m_refill(&n, 0, 8, 112);
	ck_unmark(&n, 0, 8, "munmap+hint: new mapping, never marked");
	ck_unmark_vec(&n, 0, 8, "munmap+hint: new mapping, never marked");
	ck_contents(&n, "munmap+hint: the new mapping's bytes are untouched");
	tap_ok(m_mark(&n, 0, 8) == 0, "%s: mark the new mapping", w);
	m_pageout(&n, 0, 1);
	m_pageout(&n, 7, 1);
	ck_unmark_vec(&n, 0, 8, "munmap+hint: new mapping");
	ck_contents(&n, "munmap+hint: new mapping after its own cycle");
	m_free(&n);
}

/* (b) mmap(MAP_FIXED) straight over the whole volatile range. */
static void case_fixed_over_all(void)
{
	const char *w = "fixed-over";
	struct model m;
	m_init(&m, 16, 121);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 2, 2);
	m_pageout(&m, 11, 1);
	struct vrange_stats s0 = st_get();
	unsigned char *q = map_at(m.p, 16, 1);
	struct vrange_stats s1 = st_get();
	tap_ok(q == m.p, "%s: MAP_FIXED mapping over the volatile range", w);
	tap_is(DELTA(s1, s0, pages_dropped), 16,
	       "%s: pages_dropped grows by the 16 volatile pages", w);
	tap_is(DELTA(s0, s1, volatile_bytes), (long long)(16 * ps),
	       "%s: volatile_bytes falls by 16 pages", w);
	m_forget(&m, 0, 16);
	ck_contents(&m, "fixed-over: the new mapping reads zeros");
	m_refill(&m, 0, 16, 122);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark the new mapping", w);
	m_pageout(&m, 6, 1);
	ck_unmark_vec(&m, 0, 16, "fixed-over: new mapping");
	ck_contents(&m, "fixed-over: new mapping after its own cycle");
	m_free(&m);
}

/* (b) mmap(MAP_FIXED) over the middle of a volatile range: the new middle is
 * a stranger, the two ends stay volatile and exact. */
static void case_fixed_over_middle(void)
{
	const char *w = "fixed-middle";
	struct model m;
	unsigned char *g = map_guarded(16);
	m_adopt(&m, g, 16);
	m_refill(&m, 0, 16, 131);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 1, 1);
	m_pageout(&m, 6, 2);
	m_pageout(&m, 14, 1);
	struct vrange_stats s0 = st_get();
	unsigned char *q = map_at(m.p + 4 * ps, 8, 1);
	struct vrange_stats s1 = st_get();
	tap_ok(q == m.p + 4 * ps, "%s: MAP_FIXED mapping over pages [4,12)", w);
	tap_is(DELTA(s1, s0, pages_dropped), 8,
	       "%s: pages_dropped grows by the 8 pages replaced", w);
	tap_is(DELTA(s0, s1, volatile_bytes), (long long)(8 * ps),
	       "%s: volatile_bytes falls by 8 pages", w);
	tap_is(DELTA(s1, s0, volatile_ranges), 1,
	       "%s: the volatile range is split in two", w);
	m_forget(&m, 4, 8);
	ck_contents_range(&m, 4, 8, "fixed-middle: the new middle reads zeros");
	m_refill(&m, 4, 8, 132);
	m_pageout(&m, 5, 1);    /* not volatile: must be kept */
	m_pageout(&m, 13, 1);   /* volatile: lost */
	ck_unmark_vec(&m, 0, 16, "fixed-middle");
	ck_contents(&m, "fixed-middle");
	m_drop(&m);
	unmap_guarded(g, 16);
}

/* (c) mremap moving a volatile range: the state moves with the pages. */
static void case_mremap_move(void)
{
	const char *w = "mremap-move";
	struct model m;
	m_init(&m, 16, 141);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 0, 1);
	m_pageout(&m, 5, 1);
	unsigned char *d = tu_map(16), *old = m.p;
	struct vrange_stats s0 = st_get();
	void *q = mremap(old, 16 * ps, 16 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	struct vrange_stats s1 = st_get();
	if (!tap_ok(q == d, "%s: mremap to a new address", w)) {
		tap_diag("  mremap: %s", strerror(errno));
		return;
	}
	m.p = d;
	tap_is(DELTA(s1, s0, pages_dropped), 0, "%s: nothing dropped", w);
	tap_is(DELTA(s1, s0, volatile_bytes), 0,
	       "%s: volatile_bytes unchanged", w);
	m_pageout(&m, 9, 2);    /* reclaim after the move, at the new address */
	ck_enomem(old, 16 * ps, "mremap-move: old address");
	ck_unmark_vec(&m, 0, 8, "mremap-move: new address");
	ck_unmark_vec(&m, 8, 8, "mremap-move: new address");
	ck_contents(&m, "mremap-move: new address");

	/* A new mapping where the range used to be. */
	struct model n;
	m_adopt(&n, map_at(old, 16, 1), 16);
	tap_ok(n.p == old, "%s: new mapping at the old address", w);
	ck_contents(&n, "mremap-move: the new mapping at the old address reads zeros");
	m_refill(&n, 0, 16, 142);
	ck_unmark_vec(&n, 0, 16, "mremap-move: new mapping at the old address");
	tap_ok(m_mark(&n, 0, 16) == 0, "%s: mark the new mapping", w);
	m_pageout(&n, 3, 1);
	ck_unmark_vec(&n, 0, 16, "mremap-move: new mapping at the old address");
	ck_contents(&n, "mremap-move: new mapping at the old address");
	m_free(&n);
	m_free(&m);
}

/* (c) mremap onto a destination that was itself volatile: the destination's
 * history is dropped, the source's comes along. */
static void case_mremap_onto_volatile(void)
{
	const char *w = "mremap-onto";
	struct model s, d;
	m_init(&s, 8, 151);
	m_init(&d, 8, 152);
	tap_ok(m_mark(&s, 0, 8) == 0 && m_mark(&d, 0, 8) == 0,
	       "%s: mark source and destination", w);
	m_pageout(&s, 1, 1);
	m_pageout(&d, 2, 3);
	unsigned char *old = s.p;
	struct vrange_stats s0 = st_get();
	void *q = mremap(old, 8 * ps, 8 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, d.p);
	struct vrange_stats s1 = st_get();
	if (!tap_ok(q == d.p, "%s: mremap onto the volatile destination", w)) {
		tap_diag("  mremap: %s", strerror(errno));
		return;
	}
	s.p = d.p;
	m_drop(&d);
	tap_is(DELTA(s1, s0, pages_dropped), 8,
	       "%s: the destination's 8 volatile pages are dropped", w);
	tap_is(DELTA(s0, s1, volatile_bytes), (long long)(8 * ps),
	       "%s: volatile_bytes falls by 8 pages", w);
	ck_enomem(old, 8 * ps, "mremap-onto: old address");
	ck_unmark_vec(&s, 0, 8, "mremap-onto: moved range");
	ck_contents(&s, "mremap-onto: moved range");
	m_free(&s);
}

/* (c) mremap moving the middle of a volatile range away. */
static void case_mremap_move_middle(void)
{
	const char *w = "mremap-middle";
	struct model m, n;
	unsigned char *g = map_guarded(16), *dg = map_guarded(8);
	m_adopt(&m, g, 16);
	m_refill(&m, 0, 16, 161);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 2, 1);
	m_pageout(&m, 6, 1);
	m_pageout(&m, 13, 1);
	struct vrange_stats s0 = st_get();
	void *q = mremap(m.p + 4 * ps, 8 * ps, 8 * ps,
	                 MREMAP_MAYMOVE | MREMAP_FIXED, dg);
	struct vrange_stats s1 = st_get();
	if (!tap_ok(q == dg, "%s: mremap pages [4,12) elsewhere", w)) {
		tap_diag("  mremap: %s", strerror(errno));
		return;
	}
	/* The pattern of a page depends on its index from the model's base, so
	 * the moved pages keep indices [4,12) of a model based 4 pages below the
	 * destination (pages [0,4) of that model are never touched). */
	m_adopt(&n, dg - 4 * ps, 12);
	m_move(&n, 4, &m, 4, 8);
	m_forget(&m, 4, 8);
	tap_is(DELTA(s1, s0, pages_dropped), 0, "%s: nothing dropped", w);
	tap_is(DELTA(s1, s0, volatile_bytes), 0,
	       "%s: volatile_bytes unchanged", w);
	tap_is(DELTA(s1, s0, volatile_ranges), 2,
	       "%s: one run became three", w);
	m_pageout(&m, 12, 1);
	m_pageout(&n, 11, 1);
	ck_enomem(m.p, 16 * ps, "mremap-middle: the range with a hole");
	ck_enomem(m.p + 4 * ps, 8 * ps, "mremap-middle: the hole");
	ck_unmark_vec(&m, 0, 4, "mremap-middle: head");
	ck_unmark_vec(&m, 12, 4, "mremap-middle: tail");
	ck_unmark_vec(&n, 4, 8, "mremap-middle: moved middle");
	ck_contents_range(&m, 0, 4, "mremap-middle: head");
	ck_contents_range(&m, 12, 4, "mremap-middle: tail");
	ck_contents_range(&n, 4, 8, "mremap-middle: moved middle");
	m_drop(&m);
	m_drop(&n);
	unmap_guarded(g, 16);
	unmap_guarded(dg, 8);
}

/* (d) mremap shrinking a volatile range: the tail is forgotten. */
static void case_mremap_shrink(void)
{
	const char *w = "mremap-shrink";
	struct model m;
	m_init(&m, 16, 171);
	tap_ok(m_mark(&m, 0, 16) == 0, "%s: mark [0,16)", w);
	m_pageout(&m, 1, 1);
	m_pageout(&m, 12, 1);
	struct vrange_stats s0 = st_get();
	void *q = mremap(m.p, 16 * ps, 8 * ps, 0);
	struct vrange_stats s1 = st_get();
	if (!tap_ok(q == m.p, "%s: mremap to 8 pages in place", w)) {
		tap_diag("  mremap: %s", strerror(errno));
		return;
	}
	m_forget(&m, 8, 8);
	tap_is(DELTA(s1, s0, pages_dropped), 8,
	       "%s: pages_dropped grows by the 8 pages cut off", w);
	tap_is(DELTA(s0, s1, volatile_bytes), (long long)(8 * ps),
	       "%s: volatile_bytes falls by 8 pages", w);
	ck_enomem(m.p + 8 * ps, 8 * ps, "mremap-shrink: the cut-off tail");
	m_pageout(&m, 6, 1);
	ck_unmark_vec(&m, 0, 8, "mremap-shrink: the remaining part");
	ck_contents_range(&m, 0, 8, "mremap-shrink: the remaining part");

	struct model n;
	m_adopt(&n, map_at(m.p + 8 * ps, 8, 1), 8);
	ck_contents(&n, "mremap-shrink: a new mapping at the tail reads zeros");
	m_refill(&n, 0, 8, 172);
	ck_unmark_vec(&n, 0, 8, "mremap-shrink: new mapping at the tail");
	tap_ok(m_mark(&n, 0, 8) == 0, "%s: mark the new mapping", w);
	m_pageout(&n, 4, 1);
	ck_unmark_vec(&n, 0, 8, "mremap-shrink: new mapping at the tail");
	ck_contents(&n, "mremap-shrink: new mapping at the tail");
	m_drop(&n);
	m_free(&m);
}

/* mremap growing a volatile range, in place and moved: the old pages keep
 * their state, the new pages are ordinary zero pages. */
static void case_mremap_grow(void)
{
	const char *w = "mremap-grow";
	/* In place: 8 pages with free space above them. */
	unsigned char *p = tu_map(24);
	munmap(p + 8 * ps, 16 * ps);
	struct model m;
	m_adopt(&m, p, 8);
	m_refill(&m, 0, 8, 181);
	tap_ok(m_mark(&m, 0, 8) == 0, "%s: mark [0,8)", w);
	m_pageout(&m, 2, 1);
	struct vrange_stats s0 = st_get();
	void *q = mremap(p, 8 * ps, 24 * ps, 0);
	struct vrange_stats s1 = st_get();
	if (q == p) {
		struct model g;
		m_adopt(&g, p, 24);
		m_move(&g, 0, &m, 0, 8);
		tap_is(DELTA(s1, s0, pages_dropped), 0,
		       "%s: in place: nothing dropped", w);
		tap_is(DELTA(s1, s0, volatile_bytes), 0,
		       "%s: in place: volatile_bytes unchanged", w);
		m_pageout(&g, 0, 24);
		ck_unmark_vec(&g, 0, 24, "mremap-grow: in place");
		ck_contents(&g, "mremap-grow: in place");
		m_free(&g);
	} else {
		tap_ok(1, "%s: # SKIP could not grow in place: %s", w,
		       strerror(errno));
		vrange_mark_nonvolatile(p, 8 * ps, NULL);
		munmap(p, 8 * ps);
	}
	m_drop(&m);

	/* Moved, to a fixed, larger destination. */
	m_init(&m, 8, 182);
	unsigned char *d = map_guarded(24), *old = m.p;
	tap_ok(m_mark(&m, 0, 8) == 0, "%s: mark [0,8)", w);
	m_pageout(&m, 5, 2);
	s0 = st_get();
	q = mremap(old, 8 * ps, 24 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	s1 = st_get();
	if (!tap_ok(q == d, "%s: mremap to a larger fixed destination", w)) {
		tap_diag("  mremap: %s", strerror(errno));
		return;
	}
	struct model g;
	m_adopt(&g, d, 24);
	m_move(&g, 0, &m, 0, 8);
	m_drop(&m);
	tap_is(DELTA(s1, s0, pages_dropped), 0, "%s: moved: nothing dropped", w);
	tap_is(DELTA(s1, s0, volatile_bytes), 0,
	       "%s: moved: volatile_bytes unchanged", w);
	ck_enomem(old, 8 * ps, "mremap-grow: old address");
	m_pageout(&g, 0, 24);
	ck_unmark_vec(&g, 0, 24, "mremap-grow: moved");
	ck_contents(&g, "mremap-grow: moved");
	m_drop(&g);
	unmap_guarded(d, 24);
}

/* (e) munmap of the middle of a volatile range: both ends stay volatile. */
static void case_munmap_middle(void)
{
	const char *w = "munmap-middle";
	struct model m;
	unsigned char *g = map_guarded(24);
	m_adopt(&m, g, 24);
	m_refill(&m, 0, 24, 191);
	tap_ok(m_mark(&m, 0, 24) == 0, "%s: mark [0,24)", w);
	m_pageout(&m, 1, 1);
	m_pageout(&m, 10, 1);
	m_pageout(&m, 20, 1);
	struct vrange_stats s0 = st_get();
	tap_is(munmap(m.p + 8 * ps, 8 * ps), 0, "%s: munmap [8,16)", w);
	struct vrange_stats s1 = st_get();
	m_forget(&m, 8, 8);
	tap_is(DELTA(s1, s0, pages_dropped), 8,
	       "%s: pages_dropped grows by 8", w);
	tap_is(DELTA(s0, s1, volatile_bytes), (long long)(8 * ps),
	       "%s: volatile_bytes falls by 8 pages", w);
	tap_is(DELTA(s1, s0, volatile_ranges), 1,
	       "%s: the volatile range is split in two", w);
	ck_enomem(m.p, 24 * ps, "munmap-middle: across the hole");
	struct vrange_stats s2 = st_get();
	tap_ok(s2.volatile_bytes == s1.volatile_bytes &&
	       s2.pages_unmarked == s1.pages_unmarked &&
	       s2.pages_purged == s1.pages_purged,
	       "%s: the failed unmark changed nothing", w);
	m_pageout(&m, 3, 1);
	m_pageout(&m, 17, 1);
	ck_unmark_vec(&m, 0, 8, "munmap-middle: head");
	ck_unmark_vec(&m, 16, 8, "munmap-middle: tail");
	ck_contents_range(&m, 0, 8, "munmap-middle: head");
	ck_contents_range(&m, 16, 8, "munmap-middle: tail");
	m_drop(&m);
	unmap_guarded(g, 24);
}

/* (e) munmap of ordinary memory next to a volatile range drops nothing; of
 * an edge of it drops exactly the pages it covers. */
static void case_munmap_edges(void)
{
	const char *w = "munmap-edges";
	struct model m;
	m_init(&m, 12, 201);
	tap_ok(m_mark(&m, 4, 4) == 0, "%s: mark [4,8)", w);
	m_pageout(&m, 7, 1);
	struct vrange_stats s0 = st_get();
	munmap(m.p, 2 * ps);
	munmap(m.p + 10 * ps, 2 * ps);
	struct vrange_stats s1 = st_get();
	tap_is(DELTA(s1, s0, pages_dropped), 0,
	       "%s: unmapping non-volatile neighbours drops nothing", w);
	tap_is(DELTA(s1, s0, volatile_bytes), 0,
	       "%s: volatile_bytes unchanged", w);
	munmap(m.p + 2 * ps, 4 * ps);      /* pages 2..5: 4 and 5 volatile */
	struct vrange_stats s2 = st_get();
	m_forget(&m, 0, 6);
	m_forget(&m, 10, 2);
	tap_is(DELTA(s2, s1, pages_dropped), 2,
	       "%s: unmapping [2,6) drops its 2 volatile pages", w);
	ck_unmark_vec(&m, 6, 4, "munmap-edges: what is left");
	ck_contents_range(&m, 6, 4, "munmap-edges: what is left");
	m_free(&m);
}

/* Failed munmap, mremap and mmap calls change nothing. */
static void case_failed_calls(void)
{
	const char *w = "failed-calls";
	struct model m;
	m_init(&m, 8, 211);
	tap_ok(m_mark(&m, 0, 8) == 0, "%s: mark [0,8)", w);
	m_pageout(&m, 2, 1);
	struct vrange_stats s0 = st_get();
	errno = 0;
	int rc = munmap(m.p + 1, ps);
	tap_ok(rc == -1 && errno == EINVAL, "%s: munmap(unaligned) fails EINVAL", w);
	errno = 0;
	void *q = mremap(m.p, 8 * ps, 4 * ps, MREMAP_FIXED, m.p + 4 * ps);
	tap_ok(q == MAP_FAILED && errno == EINVAL,
	       "%s: mremap(MREMAP_FIXED without MAYMOVE) fails EINVAL", w);
	errno = 0;
	q = mmap(m.p + 1, ps, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	tap_ok(q == MAP_FAILED && errno == EINVAL,
	       "%s: mmap(MAP_FIXED, unaligned) fails EINVAL", w);
	errno = 0;
	q = mmap(m.p, 8 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
	         -1, 0);
	tap_ok(q == MAP_FAILED && errno == EBADF,
	       "%s: mmap(MAP_FIXED, fd -1, not anonymous) fails EBADF", w);
	struct vrange_stats s1 = st_get();
	tap_ok(DELTA(s1, s0, pages_dropped) == 0 &&
	       s1.volatile_bytes == s0.volatile_bytes,
	       "%s: nothing dropped by the failed calls", w);
	if (s1.volatile_bytes != s0.volatile_bytes ||
	    s1.pages_dropped != s0.pages_dropped)
		tap_diag("  dropped %lld, volatile_bytes %llu -> %llu",
		         DELTA(s1, s0, pages_dropped),
		         (unsigned long long)s0.volatile_bytes,
		         (unsigned long long)s1.volatile_bytes);
	m_pageout(&m, 6, 1);
	ck_unmark_vec(&m, 0, 8, "failed-calls: the range is still volatile");
	ck_contents(&m, "failed-calls");
	m_free(&m);
}

/* (f) Churn: the same address range is mapped, marked, reclaimed and then
 * either unmarked or unmapped while volatile, many times; every new mapping
 * reads zeros, and every unmark matches the model of that mapping alone. */
static void case_churn(void)
{
	uint32_t r = 0x5eed1234u;
	size_t bad = 0, unmarks = 0, stale = 0;
	unsigned char *p = tu_map(8);
	for (unsigned it = 0; it < 200; it++) {
		struct model m;
		m_adopt(&m, p, 8);
		if (m_bad_pages(&m) != 0) {
			tap_diag("  round %u: the new mapping does not read zeros", it);
			bad++;
		}
		m_refill(&m, 0, 8, 1000 + it);
		size_t a = rnd(&r) % 8, n = 1 + rnd(&r) % (8 - a);
		if (m_mark(&m, a, n) != 0)
			bad++;
		for (size_t i = 0; i < 8; i++)
			if (rnd(&r) % 3 == 0)
				m_pageout(&m, i, 1);
		if (rnd(&r) % 3 == 0) {
			unsigned char vec[8], want[8];
			ssize_t rc = vrange_mark_nonvolatile_vec(p, 8 * ps, vec);
			size_t cnt = m_unmarked(&m, 0, 8, want);
			unmarks++;
			if (rc != (ssize_t)cnt || memcmp(vec, want, 8) != 0 ||
			    m_bad_pages(&m) != 0) {
				if (bad < 4)
					tap_diag("  round %u: unmark returned %zd, want %zu",
					         it, rc, cnt);
				bad++;
			}
		} else {
			stale++;
		}
		munmap(p, 8 * ps);
		m_drop(&m);
		unsigned char *q = map_at(p, 8, (int)(rnd(&r) % 2));
		if (q != p) {
			munmap(q, 8 * ps);
			map_at(p, 8, 1);
		}
	}
	tap_ok(bad == 0, "churn: 200 rounds (%zu unmarked, %zu unmapped while "
	       "volatile), every report exact", unmarks, stale);
	munmap(p, 8 * ps);
}

int main(void)
{
	t_start("t_stale");
	tu_require_pageout();
	case_munmap_then_fixed();
	case_munmap_then_hint();
	case_fixed_over_all();
	case_fixed_over_middle();
	case_mremap_move();
	case_mremap_onto_volatile();
	case_mremap_move_middle();
	case_mremap_shrink();
	case_mremap_grow();
	case_munmap_middle();
	case_munmap_edges();
	case_failed_calls();
	case_churn();
	tap_done();
}
