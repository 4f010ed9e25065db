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

#include "vrange.h"
#include "../model.h"

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

/* A region under test: n pages at p, the copy taken before any mark, and
 * which pages must read zeros (every page with the eager backend). */
struct region {
	size_t n;
	unsigned char *p, *copy, *lost;
};

/* Maps n pages (small pages only if nohuge), fills them with pattern pt
 * unless !touch (then they stay untouched: zeros, not even present), and
 * copies them. */
static struct region region_new(size_t n, enum pat pt, unsigned seed, int touch,
                                int nohuge)
{
	struct region r = { n, tu_map(n), malloc(n * ps), malloc(n) };
	if (!r.copy || !r.lost) {
		tap_printf("Bail out! out of memory\n");
		exit(1);
	}
#ifdef MADV_NOHUGEPAGE
	if (nohuge)
		madvise(r.p, n * ps, MADV_NOHUGEPAGE);
#else
	(void)nohuge;
#endif
	if (touch)
		for (size_t i = 0; i < n; i++)
			fill_pat(r.p, i, pt, seed);
	memcpy(r.copy, r.p, n * ps);
	memset(r.lost, eager, n);
	return r;
}

/* Pages that differ from what r says (see diff_pages). */
static size_t region_diff(const struct region *r)
{
	return diff_pages(r->p, r->copy, r->n, r->lost);
}

static void region_free(struct region *r)
{
	free(r->copy);
	free(r->lost);
	munmap(r->p, r->n * ps);
}

/* Mark all, unmark all, no reclaim. */
static void case_cycle(size_t n, enum pat pt, int touch)
{
	struct region g = region_new(n, pt, (unsigned)(n * 31 + pt + 1), touch, 0);
	unsigned char *p = g.p;
	int rc = vrange_mark_volatile(p, n * ps, 0);
	int purged = -7;
	int rc2 = vrange_mark_nonvolatile(p, n * ps, &purged);
	tap_ok(rc == 0 && rc2 == 0 && purged == eager,
	       "%zu pages, %s: mark, unmark: purged=%d", n,
	       touch ? pat_name[pt] : "never touched", eager);
	if (!(rc == 0 && rc2 == 0 && purged == eager))
		tap_diag("  got rc=%d rc2=%d purged=%d", rc, rc2, purged);
	tap_is(region_diff(&g), 0, "%zu pages, %s: %s", n,
	       touch ? pat_name[pt] : "never touched",
	       eager ? "every page reads zeros" : "byte-identical");
	region_free(&g);
}

/* Mark all, reclaim every other page (or page 0 of a one-page region is
 * kept and nothing reclaimed), unmark with the vector call. */
static void case_partial(size_t n, enum pat pt)
{
	struct region g = region_new(n, pt, (unsigned)(n * 17 + pt + 3), 1, 1);
	unsigned char *p = g.p, *lost = g.lost;
	unsigned char *vec = malloc(n);
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
	tap_is(region_diff(&g), 0,
	       "%zu pages, %s: survivors byte-identical, lost pages zeros", n,
	       pat_name[pt]);
	free(vec);
	region_free(&g);
}

/* Mark and unmark in pieces that do not line up with each other. */
static void case_pieces(void)
{
	struct region g = region_new(64, PAT_MIXED, 77, 1, 0);
	unsigned char *p = g.p;
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
	tap_is(region_diff(&g), 0, "pieces: %s", eager ? "zeros" : "byte-identical");
	region_free(&g);
}

/* Pages marked twice before one unmark keep their bytes (the cookie is not
 * taken for the saved word). */
static void case_double_mark(void)
{
	const size_t n = 8;
	struct region g = region_new(n, PAT_MIXED, 78, 1, 0);
	unsigned char *p = g.p;
	int rc = vrange_mark_volatile(p, n * ps, 0);
	rc |= vrange_mark_volatile(p, n * ps, 0);
	rc |= vrange_mark_volatile(p + 2 * ps, 3 * ps, 0);
	int purged = -7;
	rc |= vrange_mark_nonvolatile(p, n * ps, &purged);
	tap_ok(rc == 0 && purged == eager, "double mark: purged=%d", eager);
	tap_is(region_diff(&g), 0, "double mark: %s", eager ? "zeros" : "byte-identical");
	region_free(&g);
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
