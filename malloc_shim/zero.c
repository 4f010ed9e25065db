/*
 * zero.c - calloc's clearing, minus the pages the kernel already cleared.
 *
 * Entry point (hidden, see shim.h): vr_zero_fill.
 *
 * Why: the shim gives freed memory back with MADV_FREE (extents.c), after
 * which jemalloc no longer knows the pages are zero and, its hooks being
 * ours, clears a reused block for calloc with memset: every page, those
 * the kernel has already taken included, is faulted back in and kept
 * resident, used or not. A page of a private anonymous mapping (all
 * jemalloc memory is) that is neither present nor swapped out reads as
 * zeros on its next access, whatever it held before: never touched,
 * lazily freed and reclaimed, or discarded. /proc/self/pagemap tells
 * exactly that (bits 63 present, 62 swapped; no privilege needed for
 * them), 8 bytes per page, so such pages are left alone. mincore would not
 * do: it reports a swapped-out page, which holds old data, as not
 * resident.
 *
 * How: the partial pages at the ends are cleared by memset (they may hold
 * a neighbour's data); whole pages present or swapped out are dropped
 * (MADV_DONTNEED), as stock jemalloc clears the large blocks it recycles:
 * a zeroed table is often used sparsely, and a dropped page costs a fault
 * only if it is touched again, where a memset keeps every page resident.
 * A block written whole right after calloc pays those faults, as under
 * stock jemalloc.
 *
 * Races: the block is the caller's alone, nobody else writes it. A page
 * present at the reading may be reclaimed before it is dropped, which
 * changes nothing. A page absent at the reading cannot come back with old
 * contents.
 *
 * When it pays: one pread covers 512 pages, a few microseconds, so it is
 * used from VR_ZERO_MIN bytes on; below, and whenever pagemap cannot be
 * read (no /proc), jemalloc clears. Measured with bench-shim's calloc
 * workload (zeroed tables of 256 KiB-16 MiB, one page in 16 used; medians
 * of 9; RSS-LazyFree at the end): memset 2.03 s and 28.9 MiB, this 2.01 s
 * and 4.9 MiB, stock jemalloc 1.98 s and 7.0 MiB. With a calloc+use loop
 * (us per call, memset vs this, best of 5): one page in 16 used 732 vs
 * 37, reclaimed before reuse 2007 vs 211.
 *
 * fork: the descriptor names the process that opened it, so it is
 * dropped by the pthread_atfork child handler and, for children made
 * without fork(3), whenever getpid() differs from the opener's.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "glue.h"
#include "shim.h"

#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define BATCH 512 /* entries per pread: 4 KiB of stack, 2 MiB of memory */

static int pm_fd = -1;
static pid_t pm_pid;
static int pm_state; /* 0 not opened yet, 1 open, -1 unavailable */
static pthread_mutex_t pm_lock = PTHREAD_MUTEX_INITIALIZER;

static bool atfork_ok;

static void pm_child(void);

/* Registered at load, not from inside calloc (pthread_atfork may allocate). */
__attribute__((constructor))
static void zero_init(void)
{
	atfork_ok = pthread_atfork(NULL, NULL, pm_child) == 0;
}

static void pm_child(void)
{
	/* The inherited descriptor reads the parent's pages. */
	if (pm_fd >= 0)
		close(pm_fd);
	pm_fd = -1;
	pm_state = 0;
	pthread_mutex_init(&pm_lock, NULL);
}

/* The descriptor for this process, or -1. */
static int pm_get(void)
{
	int saved = errno;
	pid_t me = getpid();
	pthread_mutex_lock(&pm_lock);
	if (pm_state == 1 && pm_pid != me) {
		close(pm_fd);
		pm_fd = -1;
		pm_state = 0;
	}
	if (pm_state == 0) {
		pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		pm_pid = me;
		pm_state = pm_fd >= 0 && atfork_ok ? 1 : -1;
	}
	int fd = pm_state == 1 ? pm_fd : -1;
	pthread_mutex_unlock(&pm_lock);
	errno = saved;
	return fd;
}

/* Reads the entries of pages [vpn, vpn + n) into pm; false on error. */
static bool pm_read(int fd, uintptr_t vpn, size_t n, uint64_t *pm)
{
	size_t want = n * sizeof *pm, got = 0;
	while (got < want) {
		ssize_t r = pread(fd, (char *)pm + got, want - got,
		                  (off_t)(vpn * sizeof *pm + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* Clears whole pages: the kernel drops them, or, should it refuse (a
 * locked page), memset. */
static void clear(void *p, size_t len)
{
	if (vr_madvise((uintptr_t)p, len, MADV_DONTNEED) != 0)
		memset(p, 0, len);
}

void vr_zero_fill(void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, end = a + n;
	uintptr_t first = (a + vr_page_size - 1) & ~(vr_page_size - 1);
	uintptr_t last = end & ~(vr_page_size - 1);
	int fd;
	if (n < VR_ZERO_MIN || first >= last || (fd = pm_get()) < 0) {
		memset(p, 0, n);
		return;
	}
	int saved = errno;
	/* The partial pages at both ends hold other data (or jemalloc's
	 * cache-oblivious offset): always cleared. */
	memset(p, 0, first - a);
	memset((void *)last, 0, end - last);
	uint64_t pm[BATCH];
	for (uintptr_t pg = first; pg < last;) {
		size_t k = (last - pg) / vr_page_size;
		if (k > BATCH)
			k = BATCH;
		if (!pm_read(fd, pg / vr_page_size, k, pm)) {
			clear((void *)pg, last - pg);
			break;
		}
		/* Runs of pages to clear become one memset each. */
		size_t i = 0;
		while (i < k) {
			if (!(pm[i] & (PM_PRESENT | PM_SWAP))) {
				i++;
				continue;
			}
			size_t j = i + 1;
			while (j < k && (pm[j] & (PM_PRESENT | PM_SWAP)))
				j++;
			clear((void *)(pg + i * vr_page_size), (j - i) * vr_page_size);
			i = j;
		}
		pg += k * vr_page_size;
	}
	errno = saved;
}
