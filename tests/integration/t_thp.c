/*
 * t_thp - volatile ranges over transparent huge pages (THP "always" or
 * "madvise" with MADV_HUGEPAGE). MADV_FREE on part of a huge page splits
 * it; reclaim may take a huge page whole or skip part of one, so the test
 * checks what must hold whatever the kernel chose: no page reported intact
 * lacks a byte (R1, R3), every page reported purged reads zeros (R6), pages
 * never reclaimed survive (cookie), and a fully reclaimed range is reported
 * fully purged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vrange.h"
#include "../model.h"

#define HPAGES 512   /* 2 MiB of 4 KiB pages */

/* A 2 MiB-aligned region asking for huge pages, filled with seed's pattern. */
static unsigned char *map_huge(unsigned seed, unsigned char **base)
{
	size_t hs = HPAGES * ps;
	unsigned char *raw = mmap(NULL, 2 * hs, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		tap_printf("Bail out! mmap: %s\n", strerror(errno));
		exit(1);
	}
	unsigned char *p = (unsigned char *)(((uintptr_t)raw + hs - 1) & ~(uintptr_t)(hs - 1));
#ifdef MADV_HUGEPAGE
	madvise(p, hs, MADV_HUGEPAGE);
#endif
	fill_pages(p, 0, HPAGES, seed);
	*base = raw;
	return p;
}

/* kB of anonymous huge pages in [p, p + 2 MiB) (smaps), for the diagnostics. */
static long huge_kb(void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	long kb = -1;
	int in = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
			in = a <= (uintptr_t)p && (uintptr_t)p < b;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld", &kb) == 1)
			break;
	}
	if (f)
		fclose(f);
	return kb;
}

/* Checks a report against the memory; returns pages reported purged. */
/* [mlo, mhi) was marked volatile and [lo, hi) reclaimed. */
static size_t consistent(unsigned char *p, const unsigned char *vec, unsigned seed,
                         size_t mlo, size_t mhi, size_t lo, size_t hi,
                         const char *what)
{
	size_t purged = 0, bad = 0, lost_outside = 0;
	for (size_t i = 0; i < HPAGES; i++) {
		int s = tu_page_state(p, i, seed);
		if (vec[i]) {
			purged++;
			bad += s != 0;
			lost_outside += eager ? (i < mlo || i >= mhi) : (i < lo || i >= hi);
		} else {
			bad += s != 1;
		}
	}
	tap_ok(bad == 0, "%s: intact pages hold every byte, purged pages read zeros "
	       "(%zu bad)", what, bad);
	if (eager)
		tap_ok(purged == mhi - mlo && lost_outside == 0,
		       "%s: eager reports exactly the %zu marked pages purged (%zu)",
		       what, mhi - mlo, purged);
	else
		tap_ok(lost_outside == 0, "%s: no page outside the reclaimed pages "
		       "[%zu,%zu) reported purged (%zu)", what, lo, hi, lost_outside);
	return purged;
}

int main(void)
{
	unsigned char vec[HPAGES], *raw;
	tu_require_pageout();
	t_start("t_thp");

	/* Whole huge page marked and reclaimed: all of it is reported lost. */
	unsigned char *p = map_huge(31, &raw);
	tap_diag("huge page backing before marking: %ld kB", huge_kb(p));
	tap_is(vrange_mark_volatile(p, HPAGES * ps, 0), 0, "whole: mark 2 MiB");
	madvise(p, HPAGES * ps, MADV_PAGEOUT);
	tap_is(vrange_mark_nonvolatile_vec(p, HPAGES * ps, vec), HPAGES,
	       "whole: every page reclaimed is reported purged");
	consistent(p, vec, 31, 0, HPAGES, 0, HPAGES, "whole");
	munmap(raw, 2 * HPAGES * ps);

	/* Whole huge page marked, part reclaimed. */
	p = map_huge(32, &raw);
	tap_is(vrange_mark_volatile(p, HPAGES * ps, 0), 0, "part: mark 2 MiB");
	madvise(p + 100 * ps, 100 * ps, MADV_PAGEOUT);
	ssize_t n = vrange_mark_nonvolatile_vec(p, HPAGES * ps, vec);
	tap_ok(n >= 0, "part: unmark succeeds (%zd purged)", n);
	consistent(p, vec, 32, 0, HPAGES, 100, 200, "part");
	munmap(raw, 2 * HPAGES * ps);

	/* Part of a huge page marked (MADV_FREE splits it), that part reclaimed. */
	p = map_huge(33, &raw);
	tap_diag("huge page backing before a partial mark: %ld kB", huge_kb(p));
	tap_is(vrange_mark_volatile(p + 10 * ps, 20 * ps, 0), 0, "inner: mark [10,30)");
	madvise(p + 10 * ps, 20 * ps, MADV_PAGEOUT);
	n = vrange_mark_nonvolatile_vec(p, HPAGES * ps, vec);
	tap_ok(n >= 0, "inner: unmark of the whole huge page succeeds (%zd purged)", n);
	consistent(p, vec, 33, 10, 30, 10, 30, "inner");
	munmap(raw, 2 * HPAGES * ps);
	tap_done();
}
