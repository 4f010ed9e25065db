/*
 * t_v10 - the vrange() call, shaped like the v10 vrange system call.
 *
 * Return values (bytes processed, the length rounded up to pages), the two
 * modes and the VRANGE_NOVOLATILE spelling, the purged flag (written only
 * for NONVOLATILE, 1 iff a page of the range was lost, NULL allowed), and
 * the flow of the v10 test programs: mmap, fill, vrange(VOLATILE), reclaim,
 * vrange(NOVOLATILE, &purged).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>

#include "vrange.h"
#include "../model.h"

/* The constants are those of the v10 patch. */
static void case_constants(void)
{
	tap_ok(VRANGE_VOLATILE == 0 && VRANGE_NONVOLATILE == 1 &&
	       VRANGE_NOVOLATILE == VRANGE_NONVOLATILE,
	       "VRANGE_VOLATILE 0, VRANGE_NONVOLATILE 1, VRANGE_NOVOLATILE alias");
	const char *b = vrange_backend();
	const char *want = getenv("VRANGE_BACKEND");
	tap_ok(b != NULL && (strcmp(b, "cookie") == 0 || strcmp(b, "eager") == 0 ||
	                     strcmp(b, "native") == 0 || strcmp(b, "uffd") == 0),
	       "vrange_backend() names a backend (%s)", b ? b : "NULL");
	if (want && *want) {
		/* A forced backend that cannot run here (native on a stock
		 * kernel) is refused, and the refusal is on record. */
		struct vrange_stats st;
		char refused[64];
		snprintf(refused, sizeof refused, "%s: refused", want);
		int used = b != NULL && strcmp(b, want) == 0;
		tap_ok(used || (vrange_get_stats(&st) == 0 &&
		                strstr(st.selection, refused) == st.selection),
		       "VRANGE_BACKEND=%s is the backend in use, or was refused first (%s)",
		       want, b ? b : "NULL");
	}
}

/* The v10 test-suite flow: everything reclaimed, one call reports it. */
static void case_v10_flow(void)
{
	const size_t n = 32;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 1);
	ssize_t r = vrange(p, n * ps, VRANGE_VOLATILE, NULL);
	tap_is(r, (ssize_t)(n * ps), "flow: vrange(VOLATILE) returns the length");
	tu_pageout(p, 0, n);
	size_t res = resident_pages(p, 0, n);
	tap_is(res, 0, "flow: reclaim took every volatile page (mincore)");
	int purged = -7;
	r = vrange(p, n * ps, VRANGE_NOVOLATILE, &purged);
	tap_is(r, (ssize_t)(n * ps), "flow: vrange(NOVOLATILE) returns the length");
	tap_is(purged, 1, "flow: purged=1");
	size_t zero = 0;
	for (size_t i = 0; i < n; i++)
		zero += tu_page_state(p, i, 1) == 0;
	tap_is(zero, n, "flow: every page reads zeros");
	/* Use the memory again, as the v10 tests do after a purge. */
	fill_pages(p, 0, n, 2);
	tu_pageout(p, 0, n);
	size_t ok = 0;
	for (size_t i = 0; i < n; i++)
		ok += tu_page_state(p, i, 2) == 1;
	tap_is(ok, n, "flow: refilled pages survive reclaim");
	munmap(p, n * ps);
}

/* No reclaim: purged=0 with cookie (bytes intact), 1 with eager (zeros). */
static void case_no_reclaim(void)
{
	const size_t n = 16;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 3);
	ssize_t r = vrange(p, n * ps, VRANGE_VOLATILE, NULL);
	tap_is(r, (ssize_t)(n * ps), "no reclaim: VOLATILE returns the length");
	int purged = 42;
	r = vrange(p, n * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == (ssize_t)(n * ps) && purged == eager,
	       "no reclaim: NONVOLATILE returns the length, purged=%d", eager);
	if (r != (ssize_t)(n * ps) || purged != eager)
		tap_diag("  got r=%zd purged=%d", r, purged);
	size_t good = tu_count_expected(p, n, 3, eager, 0, 0);
	tap_is(good, n, "no reclaim: pages %s", eager ? "read zeros" : "intact");
	munmap(p, n * ps);
}

/* The purged flag is exact: one lost page among many sets it; a range
 * without a lost page clears it (it is written even when it held 1). */
static void case_flag(void)
{
	const size_t n = 16;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 4);
	tap_is(vrange(p, n * ps, VRANGE_VOLATILE, NULL), (ssize_t)(n * ps),
	       "flag: VOLATILE");
	tu_pageout(p, 9, 1);
	int purged = 1;
	ssize_t r = vrange(p, 8 * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == (ssize_t)(8 * ps) && purged == eager,
	       "flag: [0,8) without the lost page: purged=%d (written over 1)",
	       eager);
	purged = 0;
	r = vrange(p + 8 * ps, 8 * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == (ssize_t)(8 * ps) && purged == 1,
	       "flag: [8,16) with lost page 9: purged=1");
	size_t good = tu_count_expected(p, n, 4, eager, 9, 10);
	tap_is(good, n, "flag: contents");
	munmap(p, n * ps);
}

/* purged is ignored with VOLATILE and may be NULL with NONVOLATILE. */
static void case_purged_arg(void)
{
	const size_t n = 4;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 5);
	int purged = 42;
	ssize_t r = vrange(p, n * ps, VRANGE_VOLATILE, &purged);
	tap_ok(r == (ssize_t)(n * ps) && purged == 42,
	       "VOLATILE with a purged pointer: returns the length, *purged "
	       "untouched");
	tu_pageout(p, 1, 1);
	r = vrange(p, n * ps, VRANGE_NONVOLATILE, NULL);
	tap_is(r, (ssize_t)(n * ps), "NONVOLATILE with purged NULL: returns the "
	       "length");
	/* The pages are non-volatile now: reclaim takes nothing more. */
	tu_pageout(p, 0, n);
	size_t good = tu_count_expected(p, n, 5, eager, 1, 2);
	tap_is(good, n, "NONVOLATILE with purged NULL: pages are non-volatile, "
	       "page 1 zeros%s", eager ? ", all zeros (eager)" : "");
	/* And the loss was consumed: nothing to report any more. */
	purged = 42;
	r = vrange(p, n * ps, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == (ssize_t)(n * ps) && purged == 0,
	       "NONVOLATILE again: purged=0 (non-volatile pages count as intact)");
	munmap(p, n * ps);
}

/* Lengths round up to whole pages, in both modes. */
static void case_lengths(void)
{
	const size_t n = 8;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 6);
	static const size_t lens[][2] = {
		{ 1, 1 }, { 2, 1 }, { 3, 2 }, { 4, 4 }, { 5, 5 },
	};
	/* lens: {length in units of ps/2, pages processed} */
	int bad = 0;
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		size_t len = lens[k][0] * (ps / 2);
		ssize_t want = (ssize_t)((len + ps - 1) / ps * ps);
		ssize_t r1 = vrange(p, len, VRANGE_VOLATILE, NULL);
		int purged = -7;
		ssize_t r2 = vrange(p, len, VRANGE_NONVOLATILE, &purged);
		if (r1 != want || r2 != want) {
			tap_diag("  len %zu: VOLATILE %zd, NONVOLATILE %zd, want %zd",
			         len, r1, r2, want);
			bad++;
		}
		if (eager)
			fill_pages(p, 0, n, 6);
	}
	tap_is(bad, 0, "lengths round up to whole pages in both modes");
	ssize_t r = vrange(p, 0, VRANGE_VOLATILE, NULL);
	int purged = -7;
	ssize_t r2 = vrange(p, 0, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == 0 && r2 == 0 && purged == 0, "zero length: 0 bytes, purged=0");
	size_t good = tu_count_expected(p, n, 6, 0, 0, 0);
	tap_is(good, n, "lengths: pages intact");
	munmap(p, n * ps);
}

/* Errors: -1 and errno, as madvise. */
static void case_errors(void)
{
	unsigned char *p = tu_map(2);
	fill_pages(p, 0, 2, 7);
	int purged = -7;
	errno = 0;
	ssize_t r = vrange(p + 1, ps, VRANGE_VOLATILE, &purged);
	tap_ok(r == -1 && errno == EINVAL, "unaligned start: -1, EINVAL");
	errno = 0;
	r = vrange(p, ps, 2, &purged);
	tap_ok(r == -1 && errno == EINVAL, "mode 2: -1, EINVAL");
	errno = 0;
	r = vrange(p, SIZE_MAX, VRANGE_VOLATILE, NULL);
	tap_ok(r == -1 && errno == EINVAL, "length SIZE_MAX: -1, EINVAL");
	munmap(p + ps, ps);
	errno = 0;
	r = vrange(p, 2 * ps, VRANGE_VOLATILE, NULL);
	tap_ok(r == -1 && errno == ENOMEM, "range partly unmapped: -1, ENOMEM");
	tu_pageout(p, 0, 1);
	tap_is(tu_page_state(p, 0, 7), 1, "errors: page 0 untouched");
	munmap(p, ps);
}

/* Marking twice, unmarking twice: each call returns its length, the second
 * unmark reports nothing. */
static void case_twice(void)
{
	const size_t n = 6;
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, 8);
	ssize_t r1 = vrange(p, n * ps, VRANGE_VOLATILE, NULL);
	ssize_t r2 = vrange(p, n * ps, VRANGE_VOLATILE, NULL);
	tap_ok(r1 == (ssize_t)(n * ps) && r2 == r1,
	       "twice: VOLATILE twice returns the length twice");
	tu_pageout(p, 2, 1);
	int pa = -7, pb = -7;
	r1 = vrange(p, n * ps, VRANGE_NONVOLATILE, &pa);
	r2 = vrange(p, n * ps, VRANGE_NONVOLATILE, &pb);
	tap_ok(r1 == (ssize_t)(n * ps) && r2 == r1 && pa == 1 && pb == 0,
	       "twice: NONVOLATILE twice: purged=1 then purged=0");
	if (!(pa == 1 && pb == 0))
		tap_diag("  got purged %d then %d", pa, pb);
	size_t good = tu_count_expected(p, n, 8, eager, 2, 3);
	tap_is(good, n, "twice: contents");
	munmap(p, n * ps);
}

/* The v10 tests' larger case: 1024 pages, reclaim half of them. */
static void case_big(void)
{
	const size_t n = 1024;
	unsigned char *p = tu_map(n);
#ifdef MADV_NOHUGEPAGE
	madvise(p, n * ps, MADV_NOHUGEPAGE);
#endif
	fill_pages(p, 0, n, 9);
	ssize_t r = vrange(p, n * ps, VRANGE_VOLATILE, NULL);
	tap_is(r, (ssize_t)(n * ps), "big: VOLATILE 1024 pages");
	tu_pageout(p, n / 2, n / 2);
	tap_is(resident_pages(p, n / 2, n / 2), 0,
	       "big: reclaim took the upper half (mincore)");
	int lo = -7, hi = -7;
	ssize_t r1 = vrange(p, n / 2 * ps, VRANGE_NONVOLATILE, &lo);
	ssize_t r2 = vrange(p + n / 2 * ps, n / 2 * ps, VRANGE_NONVOLATILE, &hi);
	tap_ok(r1 == (ssize_t)(n / 2 * ps) && r2 == r1 && lo == eager && hi == 1,
	       "big: lower half purged=%d, upper half purged=1", eager);
	size_t good = tu_count_expected(p, n, 9, eager, n / 2, n);
	tap_is(good, n, "big: contents");
	munmap(p, n * ps);
}

int main(void)
{
	t_start("t_v10");
	tu_require_pageout();
	case_constants();
	case_v10_flow();
	case_no_reclaim();
	case_flag();
	case_purged_arg();
	case_lengths();
	case_errors();
	case_twice();
	case_big();
	tap_done();
}
