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

#include "vrange.h"
#include "../model.h"

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
