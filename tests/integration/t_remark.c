/*
 * t_remark - R1 across re-marks: a page lost while volatile is reported lost
 * at unmark even if it was marked volatile again in between, by a call over
 * the same range, an overlapping one, or a larger one; and marking a page
 * twice does not change what survives.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>

#include "vrange.h"
#include "../model.h"

/* mark, reclaim, mark the same range again, unmark. */
static void case_same(void)
{
	struct model m;
	m_init(&m, 16, 1);
	tap_ok(m_mark(&m, 0, 16) == 0, "same: mark [0,16)");
	m_pageout(&m, 4, 4);
	tap_ok(m_mark(&m, 0, 16) == 0, "same: mark [0,16) again");
	ck_unmark_vec(&m, 0, 16, "same");
	ck_contents(&m, "same");
	m_free(&m);
}

/* mark, reclaim, re-mark an overlapping part, unmark. */
static void case_overlap(void)
{
	struct model m;
	m_init(&m, 16, 2);
	tap_ok(m_mark(&m, 0, 16) == 0, "overlap: mark [0,16)");
	m_pageout(&m, 4, 4);
	m_pageout(&m, 13, 1);
	tap_ok(m_mark(&m, 2, 10) == 0, "overlap: mark [2,12)");
	ck_unmark_vec(&m, 0, 16, "overlap");
	ck_contents(&m, "overlap");
	m_free(&m);
}

/* Lost pages re-marked by a larger call that also covers new pages; the
 * new pages are then unmarked first. */
static void case_larger(void)
{
	struct model m;
	m_init(&m, 16, 3);
	tap_ok(m_mark(&m, 0, 8) == 0, "larger: mark [0,8)");
	m_pageout(&m, 0, 8);
	tap_ok(m_mark(&m, 0, 16) == 0, "larger: mark [0,16)");
	ck_unmark(&m, 8, 8, "larger: the new pages");
	ck_unmark(&m, 0, 8, "larger: the lost pages");
	ck_contents(&m, "larger");
	m_free(&m);
}

/* A and B overlapping, both marked, reclaim across, unmark the union. */
static void case_a_b(void)
{
	struct model m;
	m_init(&m, 16, 4);
	tap_ok(m_mark(&m, 0, 10) == 0, "A+B: mark A [0,10)");
	tap_ok(m_mark(&m, 6, 10) == 0, "A+B: mark B [6,16)");
	m_pageout(&m, 8, 4);
	m_pageout(&m, 14, 1);
	ck_unmark_vec(&m, 0, 16, "A+B");
	ck_contents(&m, "A+B");
	m_free(&m);

	/* Reclaim between the two marks, unmark in pieces. */
	m_init(&m, 16, 5);
	tap_ok(m_mark(&m, 0, 10) == 0, "A, reclaim, B: mark A [0,10)");
	m_pageout(&m, 7, 2);
	tap_ok(m_mark(&m, 6, 10) == 0, "A, reclaim, B: mark B [6,16)");
	m_pageout(&m, 15, 1);
	ck_unmark(&m, 0, 3, "A, reclaim, B");
	ck_unmark(&m, 3, 5, "A, reclaim, B");     /* [3,8) holds page 7 */
	ck_unmark(&m, 8, 5, "A, reclaim, B");     /* [8,13) holds page 8 */
	ck_unmark(&m, 13, 3, "A, reclaim, B");    /* [13,16) holds page 15 */
	ck_contents(&m, "A, reclaim, B");
	m_free(&m);

	/* B inside A, everything reclaimed, unmark B then A. */
	m_init(&m, 16, 6);
	tap_ok(m_mark(&m, 0, 16) == 0 && m_mark(&m, 4, 4) == 0,
	       "B inside A: mark [0,16), [4,8)");
	m_pageout(&m, 0, 16);
	ck_unmark(&m, 4, 4, "B inside A");
	ck_unmark_vec(&m, 0, 16, "B inside A");
	ck_contents(&m, "B inside A");
	m_free(&m);
}

/* Unmark part, mark it again: the loss reported at the unmark is not
 * reported again, a new loss is. */
static void case_after_partial_unmark(void)
{
	struct model m;
	m_init(&m, 16, 7);
	tap_ok(m_mark(&m, 0, 16) == 0, "partial: mark [0,16)");
	m_pageout(&m, 2, 1);
	ck_unmark(&m, 0, 8, "partial: unmark [0,8) with page 2 lost");
	ck_contents(&m, "partial: [0,8)");
	tap_ok(m_mark(&m, 0, 8) == 0, "partial: mark [0,8) again");
	m_pageout(&m, 12, 1);
	ck_unmark_vec(&m, 0, 16, "partial");
	ck_contents(&m, "partial");
	m_free(&m);
}

/* Many re-marks of a lost page; then a clean cycle. */
static void case_many(void)
{
	struct model m;
	m_init(&m, 8, 8);
	tap_ok(m_mark(&m, 0, 8) == 0, "many: mark");
	m_pageout(&m, 3, 1);
	int rc = 0;
	for (int k = 0; k < 5; k++)
		rc |= m_mark(&m, (size_t)k % 4, 4);
	tap_ok(rc == 0, "many: five overlapping re-marks");
	ck_unmark_vec(&m, 0, 8, "many");
	ck_contents(&m, "many");
	tap_ok(m_mark(&m, 0, 8) == 0 && m_mark(&m, 0, 8) == 0,
	       "many: mark twice again");
	ck_unmark_vec(&m, 0, 8, "many: clean cycle");
	ck_contents(&m, "many: clean cycle");
	m_free(&m);
}

/* Re-marking without any loss: bytes byte-identical (the saved first word is
 * not replaced by the cookie of the first mark). */
static void case_no_loss(void)
{
	struct model m;
	m_init(&m, 12, 9);
	tap_ok(m_mark(&m, 0, 12) == 0 && m_mark(&m, 0, 12) == 0 &&
	       m_mark(&m, 3, 6) == 0 && m_mark(&m, 8, 4) == 0,
	       "no loss: four overlapping marks");
	ck_unmark(&m, 0, 12, "no loss");
	ck_contents(&m, "no loss");
	m_free(&m);
}

/* Reclaim after a re-mark only, of pages marked twice and once. */
static void case_loss_after_remark(void)
{
	struct model m;
	m_init(&m, 16, 10);
	tap_ok(m_mark(&m, 0, 8) == 0 && m_mark(&m, 4, 8) == 0,
	       "loss after re-mark: mark [0,8), [4,12)");
	m_pageout(&m, 5, 1);    /* marked twice */
	m_pageout(&m, 10, 1);   /* marked once */
	m_pageout(&m, 14, 1);   /* never marked */
	ck_unmark_vec(&m, 0, 16, "loss after re-mark");
	ck_contents(&m, "loss after re-mark");
	m_free(&m);
}

/* The same through vrange(). */
static void case_vrange(void)
{
	unsigned char *p = tu_map(8);
	fill_pages(p, 0, 8, 11);
	ssize_t r1 = vrange(p, 8 * ps, VRANGE_VOLATILE, NULL);
	tu_pageout(p, 6, 1);
	ssize_t r2 = vrange(p, 8 * ps, VRANGE_VOLATILE, NULL);
	int lo = -7, hi = -7;
	ssize_t r3 = vrange(p, 4 * ps, VRANGE_NONVOLATILE, &lo);
	ssize_t r4 = vrange(p + 4 * ps, 4 * ps, VRANGE_NONVOLATILE, &hi);
	tap_ok(r1 == (ssize_t)(8 * ps) && r2 == r1 &&
	       r3 == (ssize_t)(4 * ps) && r4 == r3 && lo == eager && hi == 1,
	       "vrange: re-marked, [0,4) purged=%d, [4,8) purged=1", eager);
	if (!(lo == eager && hi == 1))
		tap_diag("  got purged %d and %d", lo, hi);
	munmap(p, 8 * ps);
}

int main(void)
{
	t_start("t_remark");
	tu_require_pageout();
	case_same();
	case_overlap();
	case_larger();
	case_a_b();
	case_after_partial_unmark();
	case_many();
	case_no_loss();
	case_loss_after_remark();
	case_vrange();
	tap_done();
}
