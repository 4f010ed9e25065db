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

#include "vrange.h"
#include "../model.h"

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
