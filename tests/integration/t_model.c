/*
 * t_model - a randomized model test of the whole explicit API.
 *
 * A 256-page region (between two guard pages that are never volatile) goes
 * through thousands of random steps: mark a sub-range (by either entry
 * point, sometimes with a length that is not a page multiple), inject
 * reclaim on a sub-range, unmark a sub-range (with the vector, the flag, or
 * vrange()), rewrite non-volatile pages with new patterns, verify every
 * non-volatile page. A model tracks which pages are volatile and which are
 * lost (reclaimed while volatile with "cookie"; marked at all with "eager"),
 * and every report, every byte read and the volatile_bytes/volatile_ranges
 * statistics must match it after every step. The test touches only pages
 * the model says are non-volatile.
 *
 * The seed is printed; VRANGE_TEST_SEED=<n> replays a run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>

#include "vrange.h"
#include "../model.h"

/* ---- the model ------------------------------------------------------------ */

#define NP 256          /* pages in the region */
#define STEPS 20000
#define BLOCK 2000      /* steps per TAP line */
#define MAX_SECS 8.0    /* stop early on a slow machine */

static unsigned char *reg;      /* the region */
static unsigned char vol[NP];   /* volatile now */
static unsigned char lost[NP];  /* lost while volatile (reported at unmark) */
static uint32_t ver[NP];        /* the pattern a non-volatile page holds;
                                   0 for all zeros */
static uint32_t next_ver = 1;
static uint32_t rs;             /* the generator's state */
static uint64_t marked_transitions, marked_pages_asked, unmarked_pages,
                purged_pages;

/* Per block: the number of mismatches and the first one. */
static unsigned long errs;
static char first_err[512];

__attribute__((format(printf, 1, 2)))
static void err(const char *fmt, ...)
{
	if (errs++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(first_err, sizeof first_err, fmt, ap);
		va_end(ap);
	}
}

/* The pattern: 64-bit words, never zero, cheap to write and compare. */
static uint64_t word(uint32_t v, size_t page, size_t w)
{
	uint64_t x = ((uint64_t)v << 32) ^ ((uint64_t)page << 16) ^ w;
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31)) | 1;
}

static void write_page(size_t i, uint32_t v)
{
	uint64_t *q = (uint64_t *)(reg + i * ps);
	for (size_t w = 0; w < ps / 8; w++)
		q[w] = word(v, i, w);
	ver[i] = v;
}

/* 1 if page i holds pattern v (v = 0: all zeros), else 0. */
static int page_is(size_t i, uint32_t v)
{
	const uint64_t *q = (const uint64_t *)(reg + i * ps);
	for (size_t w = 0; w < ps / 8; w++)
		if (q[w] != (v ? word(v, i, w) : 0))
			return 0;
	return 1;
}

/* Checks a non-volatile page against the model; on a mismatch, resyncs the
 * model by writing a new pattern. */
static void check_page(unsigned long step, const char *op, size_t i)
{
	if (page_is(i, ver[i]))
		return;
	err("step %lu (%s): page %zu reads %s, the model expects %s", step, op,
	    i, page_is(i, 0) ? "zeros" : "something else",
	    ver[i] ? "its pattern" : "zeros");
	write_page(i, next_ver++);
}

/* A random sub-range: mostly short, sometimes long. */
static void pick(size_t *first, size_t *n)
{
	size_t a = rnd(&rs) % NP, room = NP - a, k;
	uint32_t c = rnd(&rs) % 100;
	if (c < 50)
		k = 1 + rnd(&rs) % (room < 8 ? room : 8);
	else if (c < 85)
		k = 1 + rnd(&rs) % (room < 64 ? room : 64);
	else
		k = 1 + rnd(&rs) % room;
	*first = a;
	*n = k;
}

/* A length in bytes covering exactly n pages: sometimes short of the last
 * page's end (lengths round up to whole pages). */
static size_t len_of(size_t n)
{
	if (rnd(&rs) % 4 == 0)
		return n * ps - 1 - rnd(&rs) % (ps - 1);
	return n * ps;
}

static void op_mark(unsigned long step)
{
	size_t a, n;
	pick(&a, &n);
	size_t len = len_of(n);
	int rc;
	if (rnd(&rs) % 3 == 0) {
		ssize_t r = vrange(reg + a * ps, len, VRANGE_VOLATILE, NULL);
		rc = r == (ssize_t)(n * ps) ? 0 : -1;
		if (rc)
			err("step %lu: vrange(VOLATILE, [%zu,%zu), len %zu) returned "
			    "%zd (%s), want %zu", step, a, a + n, len, r,
			    r < 0 ? strerror(errno) : "-", n * ps);
	} else {
		rc = vrange_mark_volatile(reg + a * ps, len, 0);
		if (rc)
			err("step %lu: mark [%zu,%zu) failed: %s", step, a, a + n,
			    strerror(errno));
	}
	if (rc)
		return;
	marked_pages_asked += n;
	for (size_t i = a; i < a + n; i++) {
		if (!vol[i])
			marked_transitions++;
		vol[i] = 1;
		if (eager)
			lost[i] = 1;
	}
}

static void op_pageout(unsigned long step)
{
	size_t a, n;
	pick(&a, &n);
	if (tu_pageout(reg, a, n) != 0)
		err("step %lu: MADV_PAGEOUT [%zu,%zu): %s", step, a, a + n,
		    strerror(errno));
	for (size_t i = a; i < a + n; i++)
		if (vol[i])
			lost[i] = 1;
}

/* The model's side of unmarking [a, a + n): the expected vector. */
static size_t expect_unmark(size_t a, size_t n, unsigned char *want)
{
	size_t cnt = 0;
	for (size_t i = a; i < a + n; i++) {
		want[i - a] = vol[i] && lost[i];
		cnt += want[i - a];
		if (vol[i])
			unmarked_pages++;
		if (want[i - a])
			ver[i] = 0;
		vol[i] = 0;
		lost[i] = 0;
	}
	purged_pages += cnt;
	return cnt;
}

static void op_unmark_vec(unsigned long step)
{
	size_t a, n;
	pick(&a, &n);
	unsigned char vec[NP + 8], want[NP];
	memset(vec, 0xAA, sizeof vec);
	ssize_t rc = vrange_mark_nonvolatile_vec(reg + a * ps, len_of(n), vec);
	int e = errno;
	size_t cnt = expect_unmark(a, n, want);
	if (rc != (ssize_t)cnt)
		err("step %lu: unmark_vec [%zu,%zu) returned %zd (%s), the model "
		    "has %zu purged", step, a, a + n, rc, rc < 0 ? strerror(e) : "-",
		    cnt);
	else
		for (size_t i = 0; i < n; i++)
			if (vec[i] != want[i]) {
				err("step %lu: unmark_vec [%zu,%zu): page %zu reported "
				    "%s, the model says %s", step, a, a + n, a + i,
				    vec[i] ? "purged" : "intact",
				    want[i] ? "purged" : "intact");
				break;
			}
	if (vec[n] != 0xAA)
		err("step %lu: unmark_vec [%zu,%zu) wrote past the vector", step,
		    a, a + n);
	for (size_t i = a; i < a + n; i++)
		check_page(step, "unmark_vec", i);
}

static void op_unmark_flag(unsigned long step)
{
	size_t a, n;
	pick(&a, &n);
	size_t len = len_of(n);
	unsigned char want[NP];
	int purged = -7, rc;
	int via = (int)(rnd(&rs) % 2);
	if (via) {
		ssize_t r = vrange(reg + a * ps, len, VRANGE_NONVOLATILE, &purged);
		rc = r == (ssize_t)(n * ps) ? 0 : -1;
	} else {
		rc = vrange_mark_nonvolatile(reg + a * ps, len, &purged);
	}
	size_t cnt = expect_unmark(a, n, want);
	if (rc != 0 || purged != (cnt > 0))
		err("step %lu: %s [%zu,%zu) gave rc %d purged %d, the model has "
		    "%zu purged pages", step, via ? "vrange(NONVOLATILE)" :
		    "mark_nonvolatile", a, a + n, rc, purged, cnt);
	for (size_t i = a; i < a + n; i++)
		check_page(step, via ? "vrange(NONVOLATILE)" : "mark_nonvolatile", i);
}

static void op_rewrite(unsigned long step)
{
	size_t a, n;
	pick(&a, &n);
	(void)step;
	for (size_t i = a; i < a + n; i++)
		if (!vol[i])
			write_page(i, next_ver++);
}

static void op_verify(unsigned long step)
{
	for (size_t i = 0; i < NP; i++)
		if (!vol[i])
			check_page(step, "verify", i);
}

/* ---- the statistics follow the model ------------------------------------ */

static struct vrange_stats base;
static unsigned long stats_errs;
static char stats_first[256];

static void check_stats(unsigned long step)
{
	struct vrange_stats s;
	if (vrange_get_stats(&s) != 0) {
		if (stats_errs++ == 0)
			snprintf(stats_first, sizeof stats_first,
			         "step %lu: vrange_get_stats failed", step);
		return;
	}
	uint64_t nvol = 0, runs = 0;
	for (size_t i = 0; i < NP; i++) {
		nvol += vol[i];
		runs += vol[i] && (i == 0 || !vol[i - 1]);
	}
	if (s.volatile_bytes - base.volatile_bytes != nvol * ps ||
	    s.volatile_ranges - base.volatile_ranges != runs) {
		if (stats_errs++ == 0)
			snprintf(stats_first, sizeof stats_first,
			         "step %lu: volatile_bytes %llu, ranges %llu; the "
			         "model has %llu pages in %llu runs", step,
			         (unsigned long long)(s.volatile_bytes -
			                              base.volatile_bytes),
			         (unsigned long long)(s.volatile_ranges -
			                              base.volatile_ranges),
			         (unsigned long long)(nvol * ps),
			         (unsigned long long)runs);
	}
}

int main(void)
{
	t_start("t_model");
	tu_require_pageout();

	uint32_t seed;
	const char *env = getenv("VRANGE_TEST_SEED");
	if (env && *env)
		seed = (uint32_t)strtoul(env, NULL, 0);
	else
		seed = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	if (seed == 0)
		seed = 1;
	rs = seed;
	tap_diag("seed %u (replay with VRANGE_TEST_SEED=%u)", seed, seed);

	/* Guard pages on both sides, never volatile: runs end at the region. */
	reg = map_guarded(NP);
	for (size_t i = 0; i < NP; i++)
		write_page(i, next_ver++);
	memset(&base, 0, sizeof base);
	vrange_get_stats(&base);

	double t0 = tu_now();
	unsigned long step = 0;
	int stopped_early = 0;
	while (step < STEPS && !stopped_early) {
		errs = 0;
		first_err[0] = 0;
		unsigned long b0 = step;
		for (; step < b0 + BLOCK; step++) {
			uint32_t c = rnd(&rs) % 100;
			if (c < 25)
				op_mark(step);
			else if (c < 43)
				op_pageout(step);
			else if (c < 68)
				op_unmark_vec(step);
			else if (c < 78)
				op_unmark_flag(step);
			else if (c < 96)
				op_rewrite(step);
			else
				op_verify(step);
			check_stats(step);
		}
		if (!tap_ok(errs == 0, "steps %lu-%lu: every report and every byte "
		            "matches the model", b0, step - 1))
			tap_diag("  %lu mismatches, first: %s (seed %u)", errs,
			         first_err, seed);
		if (tu_now() - t0 > MAX_SECS) {
			tap_diag("stopping after %lu steps (%.1f s)", step,
			         tu_now() - t0);
			stopped_early = 1;
		}
	}

	/* The end: unmark everything, check every page. */
	errs = 0;
	first_err[0] = 0;
	{
		unsigned char vec[NP], want[NP];
		ssize_t rc = vrange_mark_nonvolatile_vec(reg, NP * ps, vec);
		size_t cnt = expect_unmark(0, NP, want);
		if (rc != (ssize_t)cnt)
			err("final unmark returned %zd, the model has %zu purged",
			    rc, cnt);
		else
			for (size_t i = 0; i < NP; i++)
				if (vec[i] != want[i]) {
					err("final unmark: page %zu reported %s, the model "
					    "says %s", i, vec[i] ? "purged" : "intact",
					    want[i] ? "purged" : "intact");
					break;
				}
		if (!tap_ok(errs == 0, "final unmark of all %d pages matches the "
		            "model (%zu purged)", NP, cnt))
			tap_diag("  %s (seed %u)", first_err, seed);
	}
	errs = 0;
	first_err[0] = 0;
	op_verify(step);
	if (!tap_ok(errs == 0, "after the final unmark every page holds what "
	            "the model says"))
		tap_diag("  %lu pages differ, first: %s (seed %u)", errs, first_err,
		         seed);

	check_stats(step);
	if (!tap_ok(stats_errs == 0, "volatile_bytes and volatile_ranges "
	            "followed the model after every step"))
		tap_diag("  %lu mismatches, first: %s (seed %u)", stats_errs,
		         stats_first, seed);

	struct vrange_stats s;
	memset(&s, 0, sizeof s);
	vrange_get_stats(&s);
	tap_is(s.pages_unmarked - base.pages_unmarked, unmarked_pages,
	       "pages_unmarked grew by the %llu volatile pages made non-volatile",
	       (unsigned long long)unmarked_pages);
	tap_is(s.pages_purged - base.pages_purged, purged_pages,
	       "pages_purged grew by the %llu pages reported purged",
	       (unsigned long long)purged_pages);
	uint64_t dm = s.pages_marked - base.pages_marked;
	if (!tap_ok(dm >= marked_transitions && dm <= marked_pages_asked,
	            "pages_marked grew by between the %llu pages made volatile "
	            "and the %llu pages passed to mark",
	            (unsigned long long)marked_transitions,
	            (unsigned long long)marked_pages_asked))
		tap_diag("  pages_marked grew by %llu", (unsigned long long)dm);
	tap_diag("%lu steps in %.2f s, seed %u", step, tu_now() - t0, seed);
	munmap(reg - ps, (NP + 2) * ps);
	tap_done();
}
