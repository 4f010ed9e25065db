/*
 * t_reopt - R5 across re-marks: a page known lost never reads as zeros in
 * silence when its range is marked optimistic again. An optimistic reader
 * never unmarks before reading: for it, a page of zeros with no fault and
 * no refill is silent corruption (issue 17, item 4).
 *
 * Cases, on every backend: optimistic, page 0 reclaimed, optimistic again
 * over it; explicit, page 0 reclaimed, optimistic over it. Each time,
 * reading the range must give the pattern everywhere (page 0 through its
 * refill callback), and the unmark must report the loss.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vrange.h"
#include "../model.h"

#define SEED 23
#define NPAGES 4

static int refills;

static int refill(void *page, void *buf, size_t page_size, void *arg)
{
	size_t i = (size_t)((unsigned char *)page - (unsigned char *)arg) / page_size;
	__atomic_add_fetch(&refills, 1, __ATOMIC_RELAXED);
	for (size_t off = 0; off < page_size; off++)
		((unsigned char *)buf)[off] = tu_byte(SEED, i, off);
	return 0;
}

static void one(const char *name, unsigned first_flags)
{
	size_t len = NPAGES * tu_pagesize();
	unsigned char *p = tu_map(NPAGES);
	tu_fill(p, NPAGES, SEED);
	vrange_set_refill(p, len, refill, p);
	int r1 = vrange_mark_volatile(p, len, first_flags);
	tu_pageout(p, 0, 1);
	int r2 = vrange_mark_volatile(p, len, VRANGE_OPTIMISTIC);
	int before = refills;
	size_t good = 0;
	for (size_t i = 0; i < NPAGES; i++)
		good += tu_page_state(p, i, SEED) == 1;
	int purged = -1;
	int r3 = vrange_mark_nonvolatile(p, len, &purged);
	tap_ok(r1 == 0 && r2 == 0 && r3 == 0 && good == NPAGES && refills > before &&
	       purged == 1,
	       "%s, page 0 reclaimed, optimistic again: %zu of %d pages read their "
	       "pattern, %d refills, unmark purged %d", name, good, NPAGES,
	       refills - before, purged);
	munmap(p, len);
}

int main(void)
{
	tu_require_pageout();
	tap_plan(2);
	one("optimistic", VRANGE_OPTIMISTIC);
	one("explicit", 0);
	tap_done();
	return 0;
}
