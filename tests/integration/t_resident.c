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
	size_t good = 0;
	for (size_t i = 0; i < 8; i++)
		good += tu_page_state(p, i, 10) == (eager ? 0 : 1);
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
