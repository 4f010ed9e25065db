/*
 * t_resident - R4: after unmark a page stays resident until marked again.
 *
 * Lazy-free must be cancelled for every unmarked page, the ones reported
 * intact and the ones reported purged: injected reclaim after the unmark
 * takes nothing, so the bytes are still there (and a later mark/unmark cycle
 * without reclaim reports intact with the cookie backend).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>

#include "vrange.h"
#include "../model.h"

/* Reclaim injected on the whole region; every non-volatile page must keep
 * what the model says. */
static void ck_reclaim_takes_nothing(struct model *m, const char *what)
{
	m_pageout(m, 0, m->n);
	char w[96];
	snprintf(w, sizeof w, "%s, after reclaim", what);
	ck_contents(m, w);
}

/* mark, unmark, reclaim: nothing lost. */
static void case_plain(void)
{
	struct model m;
	m_init(&m, 32, 1);
	tap_ok(m_mark(&m, 0, 32) == 0, "plain: mark");
	ck_unmark(&m, 0, 32, "plain");
	ck_contents(&m, "plain");
	ck_reclaim_takes_nothing(&m, "plain");
	ck_reclaim_takes_nothing(&m, "plain, twice");
	m_free(&m);
}

/* mark, reclaim part, unmark, reclaim all: the survivors stay, the purged
 * pages stay zeros, and once written they keep what was written. */
static void case_after_purge(void)
{
	struct model m;
	m_init(&m, 32, 2);
	tap_ok(m_mark(&m, 0, 32) == 0, "after-purge: mark");
	m_pageout(&m, 0, 16);
	ck_unmark_vec(&m, 0, 32, "after-purge");
	ck_contents(&m, "after-purge");
	ck_reclaim_takes_nothing(&m, "after-purge");
	m_refill(&m, 0, 32, 3);
	ck_reclaim_takes_nothing(&m, "after-purge, refilled");
	m_free(&m);
}

/* A second cycle without reclaim: intact with the cookie backend; and a
 * third one after reclaim of non-volatile memory. */
static void case_cycles(void)
{
	struct model m;
	m_init(&m, 16, 4);
	tap_ok(m_mark(&m, 0, 16) == 0, "cycles: mark 1");
	m_pageout(&m, 4, 4);
	ck_unmark(&m, 0, 16, "cycles: unmark 1");
	m_refill(&m, 0, 16, 5);
	tap_ok(m_mark(&m, 0, 16) == 0, "cycles: mark 2");
	ck_unmark(&m, 0, 16, "cycles: unmark 2 (no reclaim)");
	ck_contents(&m, "cycles: 2");
	ck_reclaim_takes_nothing(&m, "cycles: 2");
	m_refill(&m, 0, 16, 6);
	tap_ok(m_mark(&m, 0, 16) == 0, "cycles: mark 3");
	ck_unmark(&m, 0, 16, "cycles: unmark 3 (no reclaim)");
	ck_contents(&m, "cycles: 3");
	m_free(&m);
}

/* Many short cycles, then reclaim. */
static void case_many_cycles(void)
{
	struct model m;
	m_init(&m, 32, 7);
	int bad = 0;
	for (int c = 0; c < 20; c++) {
		int purged = -7;
		if (m_mark(&m, 0, 32) != 0)
			bad++;
		int rc = vrange_mark_nonvolatile(m.p, 32 * ps, &purged);
		int want = m_unmarked(&m, 0, 32, NULL) > 0;
		if (rc != 0 || purged != want) {
			tap_diag("  cycle %d: rc=%d purged=%d want %d", c, rc,
			         purged, want);
			bad++;
		}
		if (eager)
			m_refill(&m, 0, 32, 7);
	}
	tap_is(bad, 0, "many cycles: 20 mark/unmark cycles report purged=%d",
	       eager);
	ck_contents(&m, "many cycles");
	ck_reclaim_takes_nothing(&m, "many cycles");
	m_free(&m);
}

/* Unmarking half: the unmarked half is resident, the other half is still
 * volatile and reclaim takes it. */
static void case_half(void)
{
	struct model m;
	m_init(&m, 16, 8);
	tap_ok(m_mark(&m, 0, 16) == 0, "half: mark [0,16)");
	ck_unmark(&m, 0, 8, "half");
	m_pageout(&m, 0, 16);
	ck_contents(&m, "half: [0,8) after reclaim");
	ck_unmark(&m, 8, 8, "half: the still volatile half");
	ck_contents(&m, "half");
	m_free(&m);
}

/* Pages reported purged and only read afterwards (never written) stay zero
 * and are not volatile: a later mark/unmark of them is exact. */
static void case_read_only_after(void)
{
	struct model m;
	m_init(&m, 8, 9);
	tap_ok(m_mark(&m, 0, 8) == 0, "read-after: mark");
	m_pageout(&m, 0, 8);
	ck_unmark(&m, 0, 8, "read-after");
	ck_contents(&m, "read-after: zeros");       /* reads only */
	ck_reclaim_takes_nothing(&m, "read-after");
	tap_ok(m_mark(&m, 0, 8) == 0, "read-after: mark again");
	ck_unmark(&m, 0, 8, "read-after: again, no reclaim");
	ck_contents(&m, "read-after: again");
	m_free(&m);
}

/* The same through vrange(). */
static void case_vrange(void)
{
	unsigned char *p = tu_map(8);
	fill_pages(p, 0, 8, 10);
	ssize_t r1 = vrange(p, 8 * ps, VRANGE_VOLATILE, NULL);
	int purged = -7;
	ssize_t r2 = vrange(p, 8 * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r1 == (ssize_t)(8 * ps) && r2 == r1 && purged == eager,
	       "vrange: VOLATILE, NONVOLATILE: purged=%d", eager);
	tu_pageout(p, 0, 8);
	size_t good = tu_count_expected(p, 8, 10, eager, 0, 0);
	tap_is(good, 8, "vrange: pages %s after reclaim", eager ? "zeros" :
	       "intact");
	munmap(p, 8 * ps);
}

int main(void)
{
	t_start("t_resident");
	tu_require_pageout();
	case_plain();
	case_after_purge();
	case_cycles();
	case_many_cycles();
	case_half();
	case_read_only_after();
	case_vrange();
	tap_done();
}
