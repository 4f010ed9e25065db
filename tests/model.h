/*
 * model.h - helpers shared by the integration tests (tests/integration/t_*.c):
 * starting a test (pinned to one CPU, backend printed), page patterns over
 * absolute page indices, mincore(2) residency, and a model of one anonymous
 * region through which every mark, injected reclaim and unmark goes, so that
 * the report the library must give is computed per backend. The ck_*
 * helpers print one TAP line each; m_* helpers print none.
 *
 * Include it once, from a test program, after "vrange.h" and _GNU_SOURCE.
 * Every function is static and may go unused by a given test.
 */
#ifndef VRANGE_TESTS_MODEL_H
#define VRANGE_TESTS_MODEL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vrange.h"
#include "testutil.h"

static size_t ps;   /* page size */
static int eager;   /* the backend reports every volatile page purged */

/*
 * Pins the test to the CPU it runs on (tu_pin_cpu), then prints the backend.
 * A page is queued on per-CPU batches when it is faulted in (LRU add) and
 * when it is lazily freed; MADV_FREE and MADV_PAGEOUT drain only their own
 * CPU's batches, and a page still sitting in another CPU's batch is neither
 * made lazy-free nor discarded. Unpinned, a test that migrates between
 * filling a page, marking it and injecting reclaim sees the page survive for
 * reasons that have nothing to do with the library (measured on 6.18: most
 * pages of a small region survive when the three steps run on different
 * CPUs). Must run before the test touches any memory.
 */
__attribute__((unused))
static void t_start(const char *name)
{
	if (tu_pin_cpu() != 0)
		tap_diag("sched_setaffinity: %s", strerror(errno));
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

/* A model for pages [0, n) at p that the library has never seen: a new
 * mapping, all zeros, nothing volatile. */
__attribute__((unused))
static void m_adopt(struct model *m, unsigned char *p, size_t n)
{
	m->p = p;
	m->n = n;
	m->vol = calloc(n, 1);
	m->lost = calloc(n, 1);
	m->seed = calloc(n, sizeof *m->seed);
	if (!m->vol || !m->lost || !m->seed) {
		tap_printf("Bail out! out of memory\n");
		exit(1);
	}
}

/* Frees the model's arrays without unmapping anything. */
__attribute__((unused))
static void m_drop(struct model *m)
{
	free(m->vol);
	free(m->lost);
	free(m->seed);
}

/* A model of a new region of n pages (small pages only: see tu_map), all
 * filled with the pattern of seed. */
__attribute__((unused))
static void m_init(struct model *m, size_t n, unsigned seed)
{
	m_adopt(m, tu_map(n), n);
	fill_pages(m->p, 0, n, seed);
	for (size_t i = 0; i < n; i++)
		m->seed[i] = seed;
}

/* Unmaps the region and frees the model. */
__attribute__((unused))
static void m_free(struct model *m)
{
	munmap(m->p, m->n * ps);
	m_drop(m);
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
			/* atomic: see m_refill */
			__atomic_store_n(&m->seed[i], 0u, __ATOMIC_RELAXED);
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

/* Number of non-volatile pages of [first, first + n) whose bytes are not
 * what the model says (the pattern, or zeros for a purged page). The first
 * ndiag of them are described by tap_diag (0: quiet, e.g. from a thread);
 * *first_bad (may be NULL) gets the first of them, or n + first if none. */
__attribute__((unused))
static size_t m_bad_range(struct model *m, size_t first, size_t n,
                          size_t ndiag, size_t *first_bad)
{
	size_t bad = 0;
	if (first_bad)
		*first_bad = first + n;
	for (size_t i = first; i < first + n; i++) {
		if (m->vol[i])
			continue;
		int want = m->seed[i] ? 1 : 0;
		int got = tu_page_state(m->p, i, m->seed[i]);
		if (got != want) {
			if (bad == 0 && first_bad)
				*first_bad = i;
			if (bad < ndiag)
				tap_diag("  page %zu: %s, want %s", i,
				         got == 1 ? "intact" : got == 0 ? "zeros" :
				         "neither intact nor zeros",
				         want ? "intact" : "zeros");
			bad++;
		}
	}
	return bad;
}

/* m_bad_range over the whole model, describing the first 8 bad pages. */
__attribute__((unused))
static size_t m_bad_pages(struct model *m)
{
	return m_bad_range(m, 0, m->n, 8, NULL);
}

__attribute__((unused))
static int ck_contents(struct model *m, const char *what)
{
	return tap_ok(m_bad_pages(m) == 0, "%s: every non-volatile page holds "
	              "its pattern, or zeros if purged", what);
}

/* Writes a new pattern into non-volatile pages [first, first + n). The seeds
 * are stored atomically (here and in m_unmarked): t_fork forks a child that
 * reads them while another thread of the parent updates them. */
__attribute__((unused))
static void m_refill(struct model *m, size_t first, size_t n, unsigned seed)
{
	fill_pages(m->p, first, n, seed);
	for (size_t i = first; i < first + n; i++)
		__atomic_store_n(&m->seed[i], seed, __ATOMIC_RELAXED);
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

/* The library's statistics now (zeros, and a diagnostic, if the call fails). */
__attribute__((unused))
static struct vrange_stats st_get(void)
{
	struct vrange_stats s;
	memset(&s, 0, sizeof s);
	if (vrange_get_stats(&s) != 0)
		tap_diag("vrange_get_stats: %s", strerror(errno));
	return s;
}

/* A region of n pages between two mapped, never volatile guard pages, so
 * that its volatile pages never touch another region's (volatile_ranges
 * counts maximal runs of adjacent pages). unmap_guarded unmaps all of it. */
__attribute__((unused))
static unsigned char *map_guarded(size_t n)
{
	return tu_map(n + 2) + ps;
}

__attribute__((unused))
static void unmap_guarded(unsigned char *p, size_t n)
{
	munmap(p - ps, (n + 2) * ps);
}

#endif /* VRANGE_TESTS_MODEL_H */
