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
#include <sched.h>

#include "vrange.h"
#include "../testutil.h"

/* ---- helpers shared (by copy) among the integration tests -------------- */

static size_t ps;   /* page size */
static int eager;   /* the backend reports every volatile page purged */

/*
 * Prints the backend, and pins the test to the CPU it runs on. A page is
 * queued on per-CPU batches when it is faulted in (LRU add) and when it is
 * lazily freed; MADV_FREE and MADV_PAGEOUT drain only their own CPU's
 * batches, and a page still sitting in another CPU's batch is neither made
 * lazy-free nor discarded. Unpinned, a test that migrates between filling a
 * page, marking it and injecting reclaim sees the page survive for reasons
 * that have nothing to do with the library (measured on 6.18: most pages of
 * a small region survive when the three steps run on different CPUs).
 * Must run before the test touches any memory.
 */
__attribute__((unused))
static void t_start(const char *name)
{
	int cpu = sched_getcpu();
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set) != 0)
			tap_diag("sched_setaffinity: %s", strerror(errno));
	}
	ps = tu_pagesize();
	const char *b = vrange_backend();
	tap_diag("%s: backend %s", name, b ? b : "(null)");
	eager = b != NULL && strcmp(b, "eager") == 0;
}

/* Writes the pattern of seed into pages [first, first + n) (absolute page
 * indices, so that tu_page_state(p, i, seed) checks them). */
__attribute__((unused))
static void fill_pages(unsigned char *p, size_t first, size_t n, unsigned seed)
{
	for (size_t i = first; i < first + n; i++)
		for (size_t off = 0; off < ps; off++)
			p[i * ps + off] = tu_byte(seed, i, off);
}

/* Number of pages of [first, first + n) that mincore(2) reports resident. */
__attribute__((unused))
static size_t resident_pages(unsigned char *p, size_t first, size_t n)
{
	unsigned char v[n];
	size_t r = 0;
	if (mincore(p + first * ps, n * ps, v) != 0)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	return r;
}

/*
 * A model of one anonymous region: which pages are volatile, which were lost
 * while volatile, and what each non-volatile page holds (a pattern seed, or
 * 0 for all zeros). Every call into the library goes through it, so that the
 * expected report is computed per backend: with "cookie" a page is lost iff
 * it was reclaimed while volatile, with "eager" every page made volatile is.
 */
struct model {
	unsigned char *p;
	size_t n;
	unsigned char *vol;
	unsigned char *lost;
	unsigned *seed;
};

__attribute__((unused))
static void m_init(struct model *m, size_t n, unsigned seed)
{
	m->p = tu_map(n);
	m->n = n;
#ifdef MADV_NOHUGEPAGE
	/* Small pages only: injected reclaim of part of a transparent huge
	 * page may be skipped by the kernel when it cannot split it. */
	madvise(m->p, n * ps, MADV_NOHUGEPAGE);
#endif
	m->vol = calloc(n, 1);
	m->lost = calloc(n, 1);
	m->seed = calloc(n, sizeof *m->seed);
	if (!m->vol || !m->lost || !m->seed) {
		tap_printf("Bail out! out of memory\n");
		exit(1);
	}
	fill_pages(m->p, 0, n, seed);
	for (size_t i = 0; i < n; i++)
		m->seed[i] = seed;
}

__attribute__((unused))
static void m_free(struct model *m)
{
	munmap(m->p, m->n * ps);
	free(m->vol);
	free(m->lost);
	free(m->seed);
}

/* Marks [first, first + n) volatile; returns what the library returned. */
__attribute__((unused))
static int m_mark(struct model *m, size_t first, size_t n)
{
	int rc = vrange_mark_volatile(m->p + first * ps, n * ps, 0);
	if (rc != 0) {
		tap_diag("vrange_mark_volatile([%zu,%zu)): %d, %s", first,
		         first + n, rc, strerror(errno));
		return rc;
	}
	for (size_t i = first; i < first + n; i++) {
		m->vol[i] = 1;
		if (eager)
			m->lost[i] = 1;
	}
	return 0;
}

/* Injects reclaim on [first, first + n): every volatile page there is lost. */
__attribute__((unused))
static void m_pageout(struct model *m, size_t first, size_t n)
{
	if (tu_pageout(m->p, first, n) != 0)
		tap_diag("MADV_PAGEOUT [%zu,%zu): %s", first, first + n,
		         strerror(errno));
	for (size_t i = first; i < first + n; i++)
		if (m->vol[i])
			m->lost[i] = 1;
}

/* The model's side of an unmark: fills want[] (may be NULL), returns the
 * number of pages that must be reported purged, and updates the state. */
__attribute__((unused))
static size_t m_unmarked(struct model *m, size_t first, size_t n,
                         unsigned char *want)
{
	size_t cnt = 0;
	for (size_t i = first; i < first + n; i++) {
		int l = m->vol[i] && m->lost[i];
		if (want)
			want[i - first] = (unsigned char)l;
		if (l) {
			m->seed[i] = 0;
			cnt++;
		}
		m->vol[i] = 0;
		m->lost[i] = 0;
	}
	return cnt;
}

/* Unmarks [first, first + n) with vrange_mark_nonvolatile and checks the
 * return value and the purged flag against the model (one TAP line). */
__attribute__((unused))
static int ck_unmark(struct model *m, size_t first, size_t n, const char *what)
{
	int purged = -7;
	int rc = vrange_mark_nonvolatile(m->p + first * ps, n * ps, &purged);
	int e = errno;
	int want = m_unmarked(m, first, n, NULL) > 0;
	int ok = tap_ok(rc == 0 && purged == want,
	                "%s: unmark [%zu,%zu) reports purged=%d", what, first,
	                first + n, want);
	if (!ok)
		tap_diag("  got rc=%d (%s) purged=%d", rc, rc ? strerror(e) : "-",
		         purged);
	return ok;
}

/* Unmarks [first, first + n) with the vector call and checks the count and
 * every entry of the vector (one TAP line). */
__attribute__((unused))
static int ck_unmark_vec(struct model *m, size_t first, size_t n,
                         const char *what)
{
	unsigned char *vec = malloc(n + 8), *want = malloc(n);
	if (!vec || !want) {
		tap_printf("Bail out! out of memory\n");
		exit(1);
	}
	memset(vec, 0xAA, n + 8);
	ssize_t rc = vrange_mark_nonvolatile_vec(m->p + first * ps, n * ps, vec);
	int e = errno;
	size_t cnt = m_unmarked(m, first, n, want);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (vec[i] != want[i]) {
			if (bad < 8)
				tap_diag("  vec[%zu] (page %zu) = %u, want %u", i,
				         first + i, vec[i], want[i]);
			bad++;
		}
	}
	for (size_t i = n; i < n + 8; i++)
		if (vec[i] != 0xAA) {
			if (bad < 8)
				tap_diag("  vec[%zu] written past the end", i);
			bad++;
		}
	int ok = tap_ok(rc == (ssize_t)cnt && bad == 0,
	                "%s: unmark_vec [%zu,%zu) reports %zu purged pages exactly",
	                what, first, first + n, cnt);
	if (!ok)
		tap_diag("  got rc=%zd (%s), %zu wrong entries", rc,
		         rc < 0 ? strerror(e) : "-", bad);
	free(vec);
	free(want);
	return ok;
}

/* Number of non-volatile pages of the model whose bytes are not what the
 * model says (the pattern, or zeros for a purged page). */
__attribute__((unused))
static size_t m_bad_pages(struct model *m)
{
	size_t bad = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->vol[i])
			continue;
		int want = m->seed[i] ? 1 : 0;
		int got = tu_page_state(m->p, i, m->seed[i]);
		if (got != want) {
			if (bad < 8)
				tap_diag("  page %zu: %s, want %s", i,
				         got == 1 ? "intact" : got == 0 ? "zeros" :
				         "neither intact nor zeros",
				         want ? "intact" : "zeros");
			bad++;
		}
	}
	return bad;
}

__attribute__((unused))
static int ck_contents(struct model *m, const char *what)
{
	return tap_ok(m_bad_pages(m) == 0, "%s: every non-volatile page holds "
	              "its pattern, or zeros if purged", what);
}

/* Writes a new pattern into non-volatile pages [first, first + n). */
__attribute__((unused))
static void m_refill(struct model *m, size_t first, size_t n, unsigned seed)
{
	fill_pages(m->p, first, n, seed);
	for (size_t i = first; i < first + n; i++)
		m->seed[i] = seed;
}

/* A small deterministic generator (xorshift32), for scattered page sets. */
__attribute__((unused))
static uint32_t rnd(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* ---- end of shared helpers ---------------------------------------------- */

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
