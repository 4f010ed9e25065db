/*
 * t_pkey - R3, R10 through pkey_mprotect (issue 17, item 9): glibc's
 * pkey_mprotect makes its system call itself, past the library's mprotect.
 * An explicit volatile range made read-only with it, then unmarked, must
 * not crash the library (which would write a cookie's saved word back into
 * a read-only page), and every byte must be as the program left it.
 * pkey -1 is the default key: it needs no protection-key hardware.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/mman.h>

#include "vrange.h"
#include "../model.h"

#define SEED 31
#define NPAGES 4

static int unmark_read_only(void *arg)
{
	int prot = *(int *)arg;
	size_t len = NPAGES * tu_pagesize();
	unsigned char *p = tu_map(NPAGES);
	tu_fill(p, NPAGES, SEED);
	if (vrange_mark_volatile(p, len, 0) != 0)
		return 10;
	if (pkey_mprotect(p, len, prot, -1) != 0)
		return 11;
	int purged = -1;
	if (vrange_mark_nonvolatile(p, len, &purged) != 0)
		return 12;
	if (prot == PROT_NONE && mprotect(p, len, PROT_READ) != 0)
		return 13;
	/* Nothing reclaimed the range: a page that reads its pattern is
	 * intact; one the library had to give up is reported purged. */
	for (size_t i = 0; i < NPAGES; i++) {
		int st = tu_page_state(p, i, SEED);
		if (st == -1 || (st == 0 && purged != 1))
			return 14;
	}
	return 0;
}

int main(void)
{
	tap_plan(2);
	static const int prots[] = { PROT_READ, PROT_NONE };
	static const char *const names[] = { "PROT_READ", "PROT_NONE" };
	for (int k = 0; k < 2; k++) {
		int prot = prots[k];
		int st = tu_run_child(unmark_read_only, &prot, 20);
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		       "explicit range, pkey_mprotect(%s), unmark: no crash, no byte "
		       "changed unless reported (status 0x%x)", names[k], st);
	}
	tap_done();
	return 0;
}
