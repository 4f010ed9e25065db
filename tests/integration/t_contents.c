/*
 * t_contents - R3: pages that survive keep every byte.
 *
 * Regions of 1, 2, 64 and 513 pages are filled with several patterns,
 * including pages whose first word (where the purge cookie goes) is 0, ~0,
 * the page's own address, and whole pages of 0x00 or 0xff; they are marked
 * volatile and unmarked, with and without reclaim of some pages, and every
 * surviving page must be byte-identical to a copy taken before the mark,
 * first word included (every lost page reads as zeros instead).
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

enum pat { PAT_SEED, PAT_W0_ZERO, PAT_W0_ONES, PAT_W0_ADDR, PAT_ALL_ZERO,
           PAT_ALL_ONES, PAT_ONLY_W0, PAT_MIXED, PAT_COUNT };
static const char *const pat_name[PAT_COUNT] = {
	"pattern", "first word 0", "first word ~0", "first word = own address",
	"page of 0x00", "page of 0xff", "only the first word set", "mixed",
};

/* Fills page i of p with pattern pt (PAT_MIXED: a different one per page). */
static void fill_pat(unsigned char *p, size_t i, enum pat pt, unsigned seed)
{
	unsigned char *q = p + i * ps;
	if (pt == PAT_MIXED)
		pt = (enum pat)(i % PAT_MIXED);
	switch (pt) {
	case PAT_ALL_ZERO:
		memset(q, 0, ps);
		return;
	case PAT_ALL_ONES:
		memset(q, 0xff, ps);
		return;
	case PAT_ONLY_W0:
		memset(q, 0, ps);
		for (size_t k = 0; k < sizeof(uint64_t); k++)
			q[k] = tu_byte(seed, i, k);
		return;
	default:
		break;
	}
	fill_pages(p, i, 1, seed);
	uint64_t w;
	switch (pt) {
	case PAT_W0_ZERO:
		w = 0;
		break;
	case PAT_W0_ONES:
		w = ~(uint64_t)0;
		break;
	case PAT_W0_ADDR:
		w = (uint64_t)(uintptr_t)q;
		break;
	default:
		return;
	}
	memcpy(q, &w, sizeof w);
}

/* Pages of p (n of them) that differ from the copy; lost[i] pages must be
 * all zeros instead. Prints the first few differences. */
static size_t diff_pages(const unsigned char *p, const unsigned char *copy,
                         size_t n, const unsigned char *lost)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *q = p + i * ps;
		int ok = 1;
		size_t off = 0;
		if (lost && lost[i]) {
			for (off = 0; off < ps && ok; off++)
				ok = q[off] == 0;
		} else {
			ok = memcmp(q, copy + i * ps, ps) == 0;
			if (!ok)
				while (off < ps && q[off] == copy[i * ps + off])
					off++;
		}
		if (!ok) {
			if (bad < 6) {
				uint64_t g, w = 0;
				memcpy(&g, q, sizeof g);
				if (!(lost && lost[i]))
					memcpy(&w, copy + i * ps, sizeof w);
				tap_diag("  page %zu (%s): first difference at byte "
				         "%zu; first word %#llx, want %#llx", i,
				         lost && lost[i] ? "lost" : "kept", off,
				         (unsigned long long)g, (unsigned long long)w);
			}
			bad++;
		}
	}
	return bad;
}

/* Mark all, unmark all, no reclaim. */
static void case_cycle(size_t n, enum pat pt, int touch)
{
	unsigned seed = (unsigned)(n * 31 + pt + 1);
	unsigned char *p = tu_map(n);
	unsigned char *copy = malloc(n * ps), *lost = malloc(n);
	if (touch)
		for (size_t i = 0; i < n; i++)
			fill_pat(p, i, pt, seed);
	/* Else the pages were never touched: all zeros, not even present. */
	memcpy(copy, p, n * ps);
	memset(lost, eager, n);
	int rc = vrange_mark_volatile(p, n * ps, 0);
	int purged = -7;
	int rc2 = vrange_mark_nonvolatile(p, n * ps, &purged);
	tap_ok(rc == 0 && rc2 == 0 && purged == eager,
	       "%zu pages, %s: mark, unmark: purged=%d", n,
	       touch ? pat_name[pt] : "never touched", eager);
	if (!(rc == 0 && rc2 == 0 && purged == eager))
		tap_diag("  got rc=%d rc2=%d purged=%d", rc, rc2, purged);
	tap_is(diff_pages(p, copy, n, lost), 0, "%zu pages, %s: %s", n,
	       touch ? pat_name[pt] : "never touched",
	       eager ? "every page reads zeros" : "byte-identical");
	free(copy);
	free(lost);
	munmap(p, n * ps);
}

/* Mark all, reclaim every other page (or page 0 of a one-page region is
 * kept and nothing reclaimed), unmark with the vector call. */
static void case_partial(size_t n, enum pat pt)
{
	unsigned seed = (unsigned)(n * 17 + pt + 3);
	unsigned char *p = tu_map(n);
#ifdef MADV_NOHUGEPAGE
	madvise(p, n * ps, MADV_NOHUGEPAGE);
#endif
	unsigned char *copy = malloc(n * ps), *lost = malloc(n);
	unsigned char *vec = malloc(n);
	for (size_t i = 0; i < n; i++)
		fill_pat(p, i, pt, seed);
	memcpy(copy, p, n * ps);
	int rc = vrange_mark_volatile(p, n * ps, 0);
	size_t want = 0;
	for (size_t i = 0; i < n; i++) {
		lost[i] = eager || i % 2 == 1;
		if (i % 2 == 1)
			tu_pageout(p, i, 1);
		want += lost[i];
	}
	ssize_t r = vrange_mark_nonvolatile_vec(p, n * ps, vec);
	size_t vbad = 0;
	for (size_t i = 0; i < n; i++)
		vbad += vec[i] != lost[i];
	tap_ok(rc == 0 && r == (ssize_t)want && vbad == 0,
	       "%zu pages, %s, odd pages reclaimed: %zu reported exactly", n,
	       pat_name[pt], want);
	if (!(rc == 0 && r == (ssize_t)want && vbad == 0))
		tap_diag("  got rc=%d r=%zd, %zu wrong entries", rc, r, vbad);
	tap_is(diff_pages(p, copy, n, lost), 0,
	       "%zu pages, %s: survivors byte-identical, lost pages zeros", n,
	       pat_name[pt]);
	free(copy);
	free(lost);
	free(vec);
	munmap(p, n * ps);
}

/* Mark and unmark in pieces that do not line up with each other. */
static void case_pieces(void)
{
	const size_t n = 64;
	unsigned char *p = tu_map(n);
	unsigned char *copy = malloc(n * ps), *lost = malloc(n);
	for (size_t i = 0; i < n; i++)
		fill_pat(p, i, PAT_MIXED, 77);
	memcpy(copy, p, n * ps);
	memset(lost, eager, n);
	int rc = 0;
	rc |= vrange_mark_volatile(p, 10 * ps, 0);
	rc |= vrange_mark_volatile(p + 10 * ps, 30 * ps, 0);
	rc |= vrange_mark_volatile(p + 40 * ps, 24 * ps, 0);
	int purged, any = 0;
	static const size_t cuts[] = { 0, 3, 17, 18, 39, 41, 64 };
	for (size_t k = 0; k + 1 < sizeof cuts / sizeof cuts[0]; k++) {
		purged = -7;
		rc |= vrange_mark_nonvolatile(p + cuts[k] * ps,
		                              (cuts[k + 1] - cuts[k]) * ps, &purged);
		any |= purged != eager;
	}
	tap_ok(rc == 0 && !any, "pieces: marked in 3 calls, unmarked in 6 "
	       "others: each purged=%d", eager);
	tap_is(diff_pages(p, copy, n, lost), 0, "pieces: %s",
	       eager ? "zeros" : "byte-identical");
	free(copy);
	free(lost);
	munmap(p, n * ps);
}

/* Pages marked twice before one unmark keep their bytes (the cookie is not
 * taken for the saved word). */
static void case_double_mark(void)
{
	const size_t n = 8;
	unsigned char *p = tu_map(n);
	unsigned char *copy = malloc(n * ps), *lost = malloc(n);
	for (size_t i = 0; i < n; i++)
		fill_pat(p, i, PAT_MIXED, 78);
	memcpy(copy, p, n * ps);
	memset(lost, eager, n);
	int rc = vrange_mark_volatile(p, n * ps, 0);
	rc |= vrange_mark_volatile(p, n * ps, 0);
	rc |= vrange_mark_volatile(p + 2 * ps, 3 * ps, 0);
	int purged = -7;
	rc |= vrange_mark_nonvolatile(p, n * ps, &purged);
	tap_ok(rc == 0 && purged == eager, "double mark: purged=%d", eager);
	tap_is(diff_pages(p, copy, n, lost), 0, "double mark: %s",
	       eager ? "zeros" : "byte-identical");
	free(copy);
	free(lost);
	munmap(p, n * ps);
}

int main(void)
{
	t_start("t_contents");
	tu_require_pageout();
	static const size_t sizes[] = { 1, 2, 64, 513 };
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		for (int pt = 0; pt < PAT_COUNT; pt++)
			case_cycle(sizes[s], (enum pat)pt, 1);
		case_cycle(sizes[s], PAT_SEED, 0);
	}
	for (size_t s = 1; s < sizeof sizes / sizeof sizes[0]; s++) {
		case_partial(sizes[s], PAT_SEED);
		case_partial(sizes[s], PAT_MIXED);
	}
	case_partial(64, PAT_W0_ZERO);
	case_partial(64, PAT_W0_ONES);
	case_partial(64, PAT_ALL_ZERO);
	case_pieces();
	case_double_mark();
	tap_done();
}
