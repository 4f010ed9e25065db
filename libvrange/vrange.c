/*
 * vrange.c - the public entry points: vrange, vrange_mark_volatile,
 * vrange_mark_nonvolatile, vrange_mark_nonvolatile_vec, vrange_backend.
 *
 * Each checks its arguments as madvise(2) does, takes the registry lock,
 * checks the mapping (vma.c) and hands the range to the backend. Nothing is
 * changed on any error path: validation comes before the first write.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#include "backend.h"
#include "init.h"
#include "optimistic.h"
#include "options.h"
#include "refill.h"
#include "registry.h"
#include "unwinder.h"
#include "stats.h"
#include "vma.h"
#include "vrange.h"

/*
 * Page numbers [*lo, *hi) of [addr, addr + len), len rounded up to pages.
 * Returns 0, or -EINVAL for an unaligned address or a length that
 * overflows, in the order madvise(2) checks them.
 */
static int page_range(void *addr, size_t len, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t a = (uintptr_t)addr;
	if (a & (vr_page_size - 1))
		return -EINVAL;
	size_t rlen = (len + vr_page_size - 1) & ~(vr_page_size - 1);
	if (rlen < len || rlen > UINTPTR_MAX - a)
		return -EINVAL;
	*lo = vr_vpn(a);
	*hi = vr_vpn(a + rlen);
	return 0;
}

static int fail(int err)
{
	errno = -err;
	return -1;
}

static int mark(void *addr, size_t len, unsigned flags)
{
	uintptr_t lo, hi;
	int r = page_range(addr, len, &lo, &hi);
	if (r != 0)
		return r;
	if (lo == hi)
		return 0;
	/* A use-after-purge report (optimistic ranges) and a mark trace
	 * (VRANGE_DEBUG) need libunwind: load it now, in normal context and
	 * without our lock, not in the SIGBUS handler. */
	if ((flags & VRANGE_OPTIMISTIC) || opt_debug)
		vr_backtraces_load();
	vr_registry_lock();
	/* Optimistic pages of the range are settled first (made explicit,
	 * losses kept), so that nothing below can fault on them and the
	 * mapping check sees them read-write again (the fallback keeps them
	 * PROT_NONE). */
	vr_opt_settle_locked(lo, hi);
	r = vr_vma_check_locked(vr_addr(lo), vr_addr(hi));
	if (r >= 0 && (flags & VRANGE_OPTIMISTIC))
		r = vr_opt_mark_locked(lo, hi, r);
	else if (r >= 0)
		r = vr_backend_cur->mark(lo, hi, r);
	vr_registry_unlock();
	if (r == 0)
		vr_stat_add(VR_STAT_MARKED, hi - lo);
	return r;
}

/* Returns the number of purged pages or a negative errno. */
static ssize_t unmark(void *addr, size_t len, unsigned char *vec)
{
	uintptr_t lo, hi;
	int r = page_range(addr, len, &lo, &hi);
	if (r != 0)
		return r;
	if (lo == hi)
		return 0;
	vr_registry_lock();
	size_t before = vr_registry_npages();
	vr_opt_settle_locked(lo, hi);
	ssize_t purged = vr_vma_check_locked(vr_addr(lo), vr_addr(hi));
	if (purged >= 0)
		purged = vr_backend_cur->unmark(lo, hi, (int)purged, vec);
	size_t after = vr_registry_npages();
	vr_registry_unlock();
	if (purged >= 0) {
		vr_stat_add(VR_STAT_UNMARKED, before - after);
		vr_stat_add(VR_STAT_PURGED, (uint64_t)purged);
	}
	return purged;
}

VRANGE_EXPORT int vrange_mark_volatile(void *addr, size_t len, unsigned flags)
{
	vr_init();
	if (flags & ~(unsigned)VRANGE_OPTIMISTIC)
		return fail(-EINVAL);
	int r = mark(addr, len, flags);
	return r == 0 ? 0 : fail(r);
}

VRANGE_EXPORT int vrange_mark_nonvolatile(void *addr, size_t len, int *purged)
{
	vr_init();
	ssize_t r = unmark(addr, len, NULL);
	if (r < 0)
		return fail((int)r);
	if (purged)
		*purged = r > 0;
	return 0;
}

VRANGE_EXPORT ssize_t vrange_mark_nonvolatile_vec(void *addr, size_t len,
                                              unsigned char *vec)
{
	vr_init();
	if (!vec)
		return fail(-EFAULT);
	ssize_t r = unmark(addr, len, vec);
	return r < 0 ? fail((int)r) : r;
}

VRANGE_EXPORT ssize_t vrange(void *start, size_t len, int mode, int *purged)
{
	vr_init();
	uintptr_t lo, hi;
	if (mode != VRANGE_VOLATILE && mode != VRANGE_NONVOLATILE)
		return fail(-EINVAL);
	int r = page_range(start, len, &lo, &hi);
	if (r != 0)
		return fail(r);
	ssize_t done = (ssize_t)vr_addr(hi - lo);
	if (mode == VRANGE_VOLATILE) {
		r = mark(start, len, 0);
		return r == 0 ? done : fail(r);
	}
	ssize_t n = unmark(start, len, NULL);
	if (n < 0)
		return fail((int)n);
	if (purged)
		*purged = n > 0;
	return done;
}

VRANGE_EXPORT int vrange_set_refill(void *addr, size_t len, vrange_refill_fn fn, void *arg)
{
	vr_init();
	uintptr_t lo, hi;
	int r = page_range(addr, len, &lo, &hi);
	if (r != 0)
		return fail(r);
	if (lo == hi)
		return 0;
	vr_registry_lock();
	r = vr_refill_set_locked(lo, hi, fn, arg);
	vr_registry_unlock();
	return r == 0 ? 0 : fail(r);
}

VRANGE_EXPORT const char *vrange_backend(void)
{
	vr_init();
	return vr_backend_cur->name;
}
