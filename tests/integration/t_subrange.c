/*
 * t_subrange - R2: unmarking a sub-range reports only pages inside it.
 *
 * A region is marked volatile, reclaim is injected with MADV_PAGEOUT on some
 * of its pages, and sub-ranges are unmarked one by one: each unmark must
 * report "purged" iff a page inside that sub-range was lost (with the eager
 * backend: iff a page inside it was volatile), survivors keep their bytes,
 * and lost pages read as zeros.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>

#include "vrange.h"
#include "../model.h"

#define N 20

/* Reclaim the upper half, unmark the lower half first. */
static void case_halves(void)
{
	struct model m;
	m_init(&m, N, 11);
	tap_ok(m_mark(&m, 0, N) == 0, "halves: mark [0,20)");
	m_pageout(&m, 10, 10);
	ck_unmark(&m, 0, 10, "halves");
	ck_contents(&m, "halves: after the lower half");
	ck_unmark(&m, 10, 10, "halves");
	ck_contents(&m, "halves: after the upper half");
	m_free(&m);
}

/* Reclaim the lower half, unmark the upper half first. */
static void case_halves_reverse(void)
{
	struct model m;
	m_init(&m, N, 12);
	tap_ok(m_mark(&m, 0, N) == 0, "halves-reverse: mark [0,20)");
	m_pageout(&m, 0, 10);
	ck_unmark(&m, 10, 10, "halves-reverse");
	ck_unmark(&m, 0, 10, "halves-reverse");
	ck_contents(&m, "halves-reverse");
	m_free(&m);
}

/* One page lost in the middle: only the sub-range holding it reports. */
static void case_middle_page(void)
{
	struct model m;
	m_init(&m, N, 13);
	tap_ok(m_mark(&m, 0, N) == 0, "middle: mark [0,20)");
	m_pageout(&m, 10, 1);
	ck_unmark(&m, 0, 10, "middle");
	ck_unmark(&m, 11, 9, "middle");
	ck_contents(&m, "middle: around the lost page");
	ck_unmark(&m, 10, 1, "middle");
	ck_contents(&m, "middle: all");
	m_free(&m);
}

/* The boundary pages: a page lost just outside the unmarked sub-range. */
static void case_boundaries(void)
{
	struct model m;
	m_init(&m, N, 14);
	tap_ok(m_mark(&m, 0, N) == 0, "boundaries: mark [0,20)");
	m_pageout(&m, 4, 1);
	m_pageout(&m, 15, 1);
	ck_unmark(&m, 5, 10, "boundaries");     /* [5,15): neighbours lost */
	ck_contents(&m, "boundaries: inner part");
	ck_unmark(&m, 0, 4, "boundaries");
	ck_unmark(&m, 16, 4, "boundaries");
	ck_unmark(&m, 4, 1, "boundaries");
	ck_unmark(&m, 15, 1, "boundaries");
	ck_contents(&m, "boundaries: all");
	m_free(&m);
}

/* A sub-range inside the range first, then the whole range again: pages
 * already reported and made non-volatile are not reported a second time. */
static void case_inner_then_rest(void)
{
	struct model m;
	m_init(&m, N, 15);
	tap_ok(m_mark(&m, 0, N) == 0, "inner: mark [0,20)");
	m_pageout(&m, 12, 1);
	ck_unmark(&m, 5, 10, "inner");          /* holds page 12 */
	ck_unmark(&m, 0, N, "inner");           /* the rest, and [5,15) again */
	ck_contents(&m, "inner");
	m_free(&m);

	m_init(&m, N, 16);
	tap_ok(m_mark(&m, 0, N) == 0, "inner-2: mark [0,20)");
	m_pageout(&m, 2, 1);
	m_pageout(&m, 18, 1);
	ck_unmark(&m, 5, 10, "inner-2");        /* nothing lost inside */
	ck_contents(&m, "inner-2: inner part");
	ck_unmark(&m, 0, N, "inner-2");
	ck_contents(&m, "inner-2");
	m_free(&m);
}

/* Page by page, with a scattered set of lost pages. */
static void case_single_pages(void)
{
	struct model m;
	m_init(&m, N, 17);
	tap_ok(m_mark(&m, 0, N) == 0, "single: mark [0,20)");
	static const size_t lost[] = { 0, 3, 4, 9, 13, 19 };
	for (size_t k = 0; k < sizeof lost / sizeof lost[0]; k++)
		m_pageout(&m, lost[k], 1);
	int bad = 0;
	for (size_t i = 0; i < N; i++) {
		int purged = -7;
		int rc = vrange_mark_nonvolatile(m.p + i * ps, ps, &purged);
		int want = m_unmarked(&m, i, 1, NULL) > 0;
		if (rc != 0 || purged != want) {
			tap_diag("  page %zu: rc=%d purged=%d, want purged=%d", i,
			         rc, purged, want);
			bad++;
		}
	}
	tap_ok(bad == 0, "single: each page reports exactly its own loss");
	ck_contents(&m, "single");
	m_free(&m);
}

/* A length that is not a multiple of the page size covers only the page it
 * ends in: [10*ps, 10*ps + 1) is page 10 alone. */
static void case_unaligned_len(void)
{
	struct model m;
	m_init(&m, N, 18);
	tap_ok(m_mark(&m, 0, N) == 0, "unaligned-len: mark [0,20)");
	m_pageout(&m, 11, 1);
	int purged = -7;
	int rc = vrange_mark_nonvolatile(m.p + 10 * ps, 1, &purged);
	int want = m_unmarked(&m, 10, 1, NULL) > 0;
	tap_ok(rc == 0 && purged == want,
	       "unaligned-len: unmark (page 10, 1 byte) reports purged=%d", want);
	if (rc != 0 || purged != want)
		tap_diag("  got rc=%d purged=%d", rc, purged);
	rc = vrange_mark_nonvolatile(m.p + 11 * ps, ps - 1, &purged);
	want = m_unmarked(&m, 11, 1, NULL) > 0;
	tap_ok(rc == 0 && purged == want,
	       "unaligned-len: unmark (page 11, ps-1 bytes) reports purged=%d",
	       want);
	ck_unmark(&m, 12, 8, "unaligned-len");
	ck_unmark(&m, 0, 10, "unaligned-len");
	ck_contents(&m, "unaligned-len");
	m_free(&m);
}

/* Two ranges marked by separate calls, unmarked across their boundary. */
static void case_two_marks(void)
{
	struct model m;
	m_init(&m, N, 19);
	tap_ok(m_mark(&m, 0, 10) == 0 && m_mark(&m, 10, 10) == 0,
	       "two-marks: mark [0,10) and [10,20)");
	m_pageout(&m, 10, 10);
	ck_unmark(&m, 5, 10, "two-marks");
	ck_unmark(&m, 0, 5, "two-marks");
	ck_unmark(&m, 15, 5, "two-marks");
	ck_contents(&m, "two-marks");
	m_free(&m);
}

/* A range with a hole that was never marked: unmarking across it. */
static void case_gap(void)
{
	struct model m;
	m_init(&m, N, 20);
	tap_ok(m_mark(&m, 0, 8) == 0 && m_mark(&m, 12, 8) == 0,
	       "gap: mark [0,8) and [12,20)");
	m_pageout(&m, 0, N);            /* the hole is not volatile: kept */
	ck_unmark(&m, 6, 8, "gap");     /* [6,14) spans the hole */
	ck_contents(&m, "gap: the hole and its neighbours");
	ck_unmark(&m, 8, 4, "gap");     /* the hole alone: never volatile */
	ck_unmark(&m, 0, N, "gap");
	ck_contents(&m, "gap");
	m_free(&m);
}

/* Many chunks of a larger region, with every 37th page lost. */
static void case_chunks(void)
{
	const size_t n = 512, chunk = 16;
	struct model m;
	m_init(&m, n, 21);
	tap_ok(m_mark(&m, 0, n) == 0, "chunks: mark 512 pages");
	for (size_t i = 5; i < n; i += 37)
		m_pageout(&m, i, 1);
	int bad = 0, want_reported = 0;
	for (size_t c = 0; c < n; c += chunk) {
		int purged = -7;
		int rc = vrange_mark_nonvolatile(m.p + c * ps, chunk * ps, &purged);
		int want = m_unmarked(&m, c, chunk, NULL) > 0;
		want_reported += want;
		if (rc != 0 || purged != want) {
			if (bad < 8)
				tap_diag("  chunk [%zu,%zu): rc=%d purged=%d want %d",
				         c, c + chunk, rc, purged, want);
			bad++;
		}
	}
	tap_ok(bad == 0, "chunks: each 16-page chunk reports exactly its loss "
	       "(%d of %zu chunks purged)", want_reported, n / chunk);
	ck_contents(&m, "chunks");
	m_free(&m);
}

/* The same through vrange(): sub-ranges of one VOLATILE call. */
static void case_vrange_call(void)
{
	unsigned char *p = tu_map(N);
	fill_pages(p, 0, N, 22);
	ssize_t r = vrange(p, N * ps, VRANGE_VOLATILE, NULL);
	tap_is(r, (ssize_t)(N * ps), "vrange: VOLATILE [0,20) returns its length");
	tu_pageout(p, 15, 1);
	int purged = -7;
	r = vrange(p, 15 * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == (ssize_t)(15 * ps) && purged == eager,
	       "vrange: NONVOLATILE [0,15) returns 15 pages, purged=%d", eager);
	if (!(r == (ssize_t)(15 * ps) && purged == eager))
		tap_diag("  got r=%zd purged=%d", r, purged);
	int bad = 0;
	for (size_t i = 0; i < 15; i++)
		bad += tu_page_state(p, i, 22) != (eager ? 0 : 1);
	tap_is(bad, 0, "vrange: [0,15) %s", eager ? "zeros" : "intact");
	purged = -7;
	r = vrange(p + 15 * ps, 5 * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == (ssize_t)(5 * ps) && purged == 1,
	       "vrange: NONVOLATILE [15,20) returns 5 pages, purged=1");
	tap_is(tu_page_state(p, 15, 22), 0, "vrange: page 15 reads zeros");
	munmap(p, N * ps);
}

int main(void)
{
	t_start("t_subrange");
	tu_require_pageout();
	case_halves();
	case_halves_reverse();
	case_middle_page();
	case_boundaries();
	case_inner_then_rest();
	case_single_pages();
	case_unaligned_len();
	case_two_marks();
	case_gap();
	case_chunks();
	case_vrange_call();
	tap_done();
}
