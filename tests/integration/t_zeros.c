/*
 * t_zeros - R6: a purged page reads as zeros after unmark, and is ordinary
 * memory again: writable at every offset, and what is written stays (also
 * through injected reclaim).
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

/* Every byte of page i of p is zero. */
static int page_zero(const unsigned char *p, size_t i)
{
	for (size_t off = 0; off < ps; off++)
		if (p[i * ps + off])
			return 0;
	return 1;
}

/* Everything reclaimed: every page zeros, then writable and kept. */
static void case_all(size_t n)
{
	struct model m;
	char w[64];
	snprintf(w, sizeof w, "all %zu", n);
	m_init(&m, n, 1);
	tap_ok(m_mark(&m, 0, n) == 0, "%s: mark", w);
	m_pageout(&m, 0, n);
	ck_unmark(&m, 0, n, w);
	size_t z = 0;
	for (size_t i = 0; i < n; i++)
		z += page_zero(m.p, i);
	tap_is(z, n, "%s: every page reads zeros", w);
	m_refill(&m, 0, n, 2);
	ck_contents(&m, "refilled");
	m_pageout(&m, 0, n);
	ck_contents(&m, "refilled, after reclaim");
	m_free(&m);
}

/* Odd pages reclaimed: they read zeros, the others do not. */
static void case_odd(void)
{
	const size_t n = 32;
	struct model m;
	m_init(&m, n, 3);
	tap_ok(m_mark(&m, 0, n) == 0, "odd: mark");
	for (size_t i = 1; i < n; i += 2)
		m_pageout(&m, i, 1);
	ck_unmark_vec(&m, 0, n, "odd");
	size_t z = 0;
	for (size_t i = 1; i < n; i += 2)
		z += page_zero(m.p, i);
	tap_is(z, n / 2, "odd: every reclaimed page reads zeros");
	ck_contents(&m, "odd");
	m_free(&m);
}

/* A lost page whose first word was 0 to begin with is still reported lost
 * and reads zeros; one that was kept is reported intact. */
static void case_first_word_zero(void)
{
	const size_t n = 4;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 4);
	for (size_t i = 0; i < n; i++)
		memset(p + i * ps, 0, sizeof(uint64_t));
	int rc = vrange_mark_volatile(p, n * ps, 0);
	tu_pageout(p, 1, 2);
	unsigned char vec[4];
	ssize_t r = vrange_mark_nonvolatile_vec(p, n * ps, vec);
	int e = eager;
	tap_ok(rc == 0 && r == (e ? 4 : 2) && vec[0] == e && vec[1] == 1 &&
	       vec[2] == 1 && vec[3] == e,
	       "first word 0: pages 1 and 2 reported lost%s",
	       e ? ", and 0 and 3 (eager)" : " and only them");
	if (!(r == (e ? 4 : 2) && vec[0] == e && vec[1] == 1 && vec[2] == 1 &&
	      vec[3] == e))
		tap_diag("  got r=%zd vec=%u %u %u %u", r, vec[0], vec[1], vec[2],
		         vec[3]);
	tap_ok(page_zero(p, 1) && page_zero(p, 2), "first word 0: lost pages "
	       "read zeros");
	int kept = 1;
	for (size_t i = 0; i < n; i += 3) {
		if (e) {
			kept = kept && page_zero(p, i);
			continue;
		}
		for (size_t off = sizeof(uint64_t); off < ps; off++)
			kept = kept && p[i * ps + off] == tu_byte(4, i, off);
		uint64_t w;
		memcpy(&w, p + i * ps, sizeof w);
		kept = kept && w == 0;
	}
	tap_ok(kept, "first word 0: pages 0 and 3 %s", e ? "read zeros" :
	       "intact, first word still 0");
	munmap(p, n * ps);
}

/* The page is writable at its first and last byte and every word; reading
 * it first (zero page) and writing after works too. */
static void case_write_paths(void)
{
	const size_t n = 3;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 5);
	int rc = vrange_mark_volatile(p, n * ps, 0);
	tu_pageout(p, 0, n);
	int purged = -7;
	int rc2 = vrange_mark_nonvolatile(p, n * ps, &purged);
	tap_ok(rc == 0 && rc2 == 0 && purged == 1, "write paths: purged=1");
	/* page 0: written without reading; page 1: read, then written;
	 * page 2: last byte only. */
	p[0] = 0x11;
	p[ps - 1] = 0x22;
	volatile unsigned char sink = p[ps + 100];
	(void)sink;
	memset(p + ps, 0x33, ps);
	p[3 * ps - 1] = 0x44;
	tu_pageout(p, 0, n);
	int ok = p[0] == 0x11 && p[ps - 1] == 0x22 && p[3 * ps - 1] == 0x44;
	for (size_t off = 1; off + 1 < ps; off++)
		ok = ok && p[off] == 0;
	for (size_t off = 0; off < ps; off++)
		ok = ok && p[ps + off] == 0x33;
	for (size_t off = 0; off + 1 < ps; off++)
		ok = ok && p[2 * ps + off] == 0;
	tap_ok(ok, "write paths: written bytes kept through reclaim, others "
	       "zeros");
	munmap(p, n * ps);
}

/* A purged page marked again, not reclaimed, unmarked: its zeros (or what
 * was written into it) are intact with the cookie backend. */
static void case_zero_then_remark(void)
{
	struct model m;
	m_init(&m, 8, 6);
	tap_ok(m_mark(&m, 0, 8) == 0, "zero-remark: mark");
	m_pageout(&m, 0, 4);
	ck_unmark(&m, 0, 8, "zero-remark");
	ck_contents(&m, "zero-remark: [0,4) zeros");
	tap_ok(m_mark(&m, 0, 8) == 0, "zero-remark: mark zero pages again");
	ck_unmark_vec(&m, 0, 8, "zero-remark: no reclaim");
	ck_contents(&m, "zero-remark: again");
	m_refill(&m, 0, 2, 7);
	tap_ok(m_mark(&m, 0, 8) == 0, "zero-remark: mark, half refilled");
	m_pageout(&m, 1, 1);
	ck_unmark_vec(&m, 0, 8, "zero-remark: reclaim page 1");
	ck_contents(&m, "zero-remark: last");
	m_free(&m);
}

/* The same through vrange(). */
static void case_vrange(void)
{
	unsigned char *p = tu_map(4);
	fill_pages(p, 0, 4, 8);
	ssize_t r1 = vrange(p, 4 * ps, VRANGE_VOLATILE, NULL);
	tu_pageout(p, 0, 4);
	int purged = -7;
	ssize_t r2 = vrange(p, 4 * ps, VRANGE_NOVOLATILE, &purged);
	tap_ok(r1 == (ssize_t)(4 * ps) && r2 == r1 && purged == 1,
	       "vrange: purged=1");
	int z = 1;
	for (size_t i = 0; i < 4; i++)
		z = z && page_zero(p, i);
	tap_ok(z, "vrange: every page reads zeros");
	munmap(p, 4 * ps);
}

int main(void)
{
	t_start("t_zeros");
	tu_require_pageout();
	case_all(1);
	case_all(64);
	case_odd();
	case_first_word_zero();
	case_write_paths();
	case_zero_then_remark();
	case_vrange();
	tap_done();
}
