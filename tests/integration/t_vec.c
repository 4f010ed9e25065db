/*
 * t_vec - vrange_mark_nonvolatile_vec(): one byte per page, vec[i] = 1 iff
 * page i was purged, the return value is the number of purged pages.
 *
 * Scattered single pages are reclaimed with MADV_PAGEOUT and the vector must
 * name exactly those (every volatile page with the eager backend); pages of
 * the range that were not volatile report 0; nothing is written past the
 * vector; a NULL vector fails with EFAULT and changes nothing.
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

/* 64 pages, a pseudo-random set of single pages reclaimed (about one in
 * `one_in`; 0 = none, 1 = all). */
static void case_scattered(size_t n, uint32_t s, unsigned one_in)
{
	char what[64];
	if (one_in == 0)
		snprintf(what, sizeof what, "scattered n=%zu none", n);
	else
		snprintf(what, sizeof what, "scattered n=%zu seed=%u 1/%u", n, s,
		         one_in);
	struct model m;
	m_init(&m, n, s);
	tap_ok(m_mark(&m, 0, n) == 0, "%s: mark", what);
	size_t taken = 0;
	for (size_t i = 0; i < n; i++) {
		if (one_in && rnd(&s) % one_in == 0) {
			m_pageout(&m, i, 1);
			taken++;
		}
	}
	tap_diag("%s: reclaimed %zu of %zu pages", what, taken, n);
	ck_unmark_vec(&m, 0, n, what);
	ck_contents(&m, what);
	m_free(&m);
}

/* A vector over a range of which only parts are volatile. */
static void case_partly_volatile(void)
{
	struct model m;
	m_init(&m, 64, 31);
	tap_ok(m_mark(&m, 8, 16) == 0 && m_mark(&m, 40, 16) == 0,
	       "partly: mark [8,24) and [40,56)");
	for (size_t i = 0; i < 64; i += 3)
		m_pageout(&m, i, 1);   /* volatile and non-volatile pages alike */
	ck_unmark_vec(&m, 0, 64, "partly");
	ck_contents(&m, "partly");
	m_free(&m);
}

/* A vector over a sub-range: pages outside it are neither reported nor
 * unmarked. */
static void case_subrange(void)
{
	struct model m;
	m_init(&m, 64, 32);
	tap_ok(m_mark(&m, 0, 64) == 0, "subrange: mark [0,64)");
	m_pageout(&m, 3, 1);
	m_pageout(&m, 20, 2);
	m_pageout(&m, 47, 1);
	m_pageout(&m, 63, 1);
	ck_unmark_vec(&m, 16, 32, "subrange");   /* [16,48) */
	ck_contents(&m, "subrange: [16,48)");
	m_pageout(&m, 10, 1);                     /* still volatile */
	ck_unmark_vec(&m, 0, 16, "subrange");
	ck_unmark_vec(&m, 48, 16, "subrange");
	ck_contents(&m, "subrange: all");
	m_free(&m);
}

/* Length 3 pages + 1 byte: four entries, nothing written after them. */
static void case_unaligned_len(void)
{
	unsigned char *p = tu_map(6);
	fill_pages(p, 0, 6, 33);
	int rc = vrange_mark_volatile(p, 6 * ps, 0);
	tap_is(rc, 0, "unaligned-len: mark 6 pages");
	tu_pageout(p, 1, 1);
	tu_pageout(p, 4, 1);   /* outside the unmarked length */
	unsigned char vec[16];
	memset(vec, 0xAA, sizeof vec);
	ssize_t r = vrange_mark_nonvolatile_vec(p, 3 * ps + 1, vec);
	unsigned char want[4] = { (unsigned char)eager, 1, (unsigned char)eager,
	                          (unsigned char)eager };
	int ok = r == (eager ? 4 : 1) && memcmp(vec, want, 4) == 0;
	for (size_t i = 4; i < sizeof vec; i++)
		ok = ok && vec[i] == 0xAA;
	tap_ok(ok, "unaligned-len: 4 entries (%u %u %u %u), count %d, "
	       "nothing past them", want[0], want[1], want[2], want[3],
	       eager ? 4 : 1);
	if (!ok)
		tap_diag("  got r=%zd vec=%02x %02x %02x %02x %02x", r, vec[0],
		         vec[1], vec[2], vec[3], vec[4]);
	int purged = -7;
	rc = vrange_mark_nonvolatile(p + 4 * ps, 2 * ps, &purged);
	tap_ok(rc == 0 && purged == 1,
	       "unaligned-len: page 4 was still volatile and is reported purged");
	int bad = 0;
	for (size_t i = 0; i < 6; i++) {
		int want_state = (i == 1 || i == 4 || eager) ? 0 : 1;
		bad += tu_page_state(p, i, 33) != want_state;
	}
	tap_is(bad, 0, "unaligned-len: contents");
	munmap(p, 6 * ps);
}

/* Zero length: returns 0 and writes nothing. */
static void case_zero_len(void)
{
	unsigned char *p = tu_map(1);
	fill_pages(p, 0, 1, 34);
	unsigned char vec[4];
	memset(vec, 0xAA, sizeof vec);
	ssize_t r = vrange_mark_nonvolatile_vec(p, 0, vec);
	tap_ok(r == 0 && vec[0] == 0xAA, "zero-len: returns 0, vector untouched");
	munmap(p, ps);
}

/* NULL vector: EFAULT, and the range stays volatile. */
static void case_null_vec(void)
{
	struct model m;
	m_init(&m, 8, 35);
	tap_ok(m_mark(&m, 0, 8) == 0, "null-vec: mark [0,8)");
	m_pageout(&m, 2, 1);
	errno = 0;
	ssize_t r = vrange_mark_nonvolatile_vec(m.p, 8 * ps, NULL);
	int e = errno;
	tap_ok(r == -1 && e == EFAULT, "null-vec: -1 with EFAULT");
	if (!(r == -1 && e == EFAULT))
		tap_diag("  got r=%zd errno=%d (%s)", r, e, strerror(e));
	m_pageout(&m, 5, 1);   /* the range must still be volatile */
	ck_unmark_vec(&m, 0, 8, "null-vec: afterwards");
	ck_contents(&m, "null-vec");
	m_free(&m);
}

/* The count also matches for a large range with runs of lost pages. */
static void case_runs(void)
{
	const size_t n = 1024;
	struct model m;
	m_init(&m, n, 36);
	tap_ok(m_mark(&m, 0, n) == 0, "runs: mark 1024 pages");
	uint32_t s = 99;
	for (size_t i = 0; i < n;) {
		size_t len = 1 + rnd(&s) % 9;
		if (i + len > n)
			len = n - i;
		if (rnd(&s) & 1)
			m_pageout(&m, i, len);
		i += len + rnd(&s) % 5;
	}
	ck_unmark_vec(&m, 0, n, "runs");
	ck_contents(&m, "runs");
	m_free(&m);
}

/* vrange_mark_nonvolatile_vec on memory that was never volatile. */
static void case_never_volatile(void)
{
	struct model m;
	m_init(&m, 16, 37);
	m_pageout(&m, 0, 16);
	ck_unmark_vec(&m, 0, 16, "never-volatile");
	ck_contents(&m, "never-volatile");
	m_free(&m);
}

int main(void)
{
	t_start("t_vec");
	tu_require_pageout();
	case_scattered(64, 0x1234u, 4);
	case_scattered(64, 0xbeefu, 7);
	case_scattered(64, 0x51u, 2);
	case_scattered(64, 0x77u, 0);
	case_scattered(64, 0x99u, 1);
	case_scattered(130, 0xc0ffeeu, 5);
	case_partly_volatile();
	case_subrange();
	case_unaligned_len();
	case_zero_len();
	case_null_vec();
	case_runs();
	case_never_volatile();
	tap_done();
}
