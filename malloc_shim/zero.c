/*
 * zero.c - calloc's clearing of large blocks: by the kernel, not by memset.
 *
 * Entry point (hidden, see shim.h): vr_zero_fill.
 *
 * Why: the shim gives freed memory back with MADV_FREE (extents.c), after
 * which jemalloc no longer knows a reused block is zero and, its extent
 * hooks being ours and not its defaults, clears it for calloc with memset:
 * every page is faulted back in and stays resident, used or not, those the
 * kernel had already taken included. Stock jemalloc has the kernel drop a
 * recycled block's pages instead (MADV_DONTNEED), and so does this: the
 * whole pages of the block are dropped in one call, and only the partial
 * pages at its ends, which may hold a neighbour's data, are cleared by
 * memset. A page the kernel had reclaimed is not touched at all (dropping
 * an absent page does nothing); a page still present is freed and reads
 * as zeros, at the cost of a fault if the program touches it again.
 *
 * Measured with bench-shim's calloc workload (zeroed tables of 256 KiB to
 * 16 MiB, one page in 16 used). Medians of 9, RSS-LazyFree at the end:
 * jemalloc's memset 2.03 s and 28.9 MiB, stock jemalloc 1.98 s and 7.0
 * MiB, dropping only the present pages found in /proc/self/pagemap (one
 * madvise per run of them) 2.01 s and 4.9 MiB. With sparse use that is a
 * call per page, 4% slower than stock (task-clock, perf stat -r 3) for
 * nothing, since dropping an absent page is free; one call for the whole
 * block, as here: 1.75 s against stock's 1.83 s (medians of 11, pinned,
 * interleaved), 5.9 MiB against 7.0 in `make bench-shim`.
 *
 * Below VR_ZERO_MIN jemalloc clears (MALLOCX_ZERO): small blocks are
 * mostly used whole, where a memset costs less than the faults.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "glue.h"
#include "shim.h"

void vr_zero_fill(void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, end = a + n;
	uintptr_t first = (a + vr_page_size - 1) & ~(vr_page_size - 1);
	uintptr_t last = end & ~(vr_page_size - 1);
	if (first >= last) {
		memset(p, 0, n);
		return;
	}
	memset(p, 0, first - a);
	memset((void *)last, 0, end - last);
	/* vr_madvise keeps errno. It fails on locked pages (mlockall):
	 * those are cleared by hand. */
	if (vr_madvise(first, last - first, MADV_DONTNEED) != 0)
		memset((void *)first, 0, last - first);
}
