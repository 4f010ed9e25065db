/*
 * backend_eager.c - the eager backend: MADV_DONTNEED at mark.
 *
 * Works on any kernel and any private anonymous memory, and is what the
 * cookie backend uses for read-only memory it cannot put a cookie in. The
 * pages are discarded at once, so every page that was volatile is reported
 * purged and reads as zeros after unmark; nothing is ever falsely intact.
 *
 * Entry points: vr_backend_eager, vr_mark_bare_locked,
 * vr_unmark_bare_locked.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "glue.h"
#include "registry.h"

int vr_mark_bare_locked(uintptr_t lo, uintptr_t hi)
{
	/* Every leaf must exist before the data is discarded: a page dropped
	 * by MADV_DONTNEED but missing from the registry would later be
	 * reported intact. */
	int r = vr_registry_reserve_locked(lo, hi);
	if (r != 0)
		return r;
	r = vr_madvise(vr_addr(lo), vr_addr(hi - lo), MADV_DONTNEED);
	if (r != 0)
		return r;
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		uint64_t mask = vr_seg_mask(&seg);
		vr_registry_set_locked(&seg, mask, mask, mask);
		vpn += seg.n;
	}
	return 0;
}

ssize_t vr_unmark_bare_locked(uintptr_t lo, uintptr_t hi, unsigned char *vec)
{
	ssize_t purged = 0;
	if (vec)
		memset(vec, 0, hi - lo);
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		if (seg.leaf) {
			uint64_t lost = seg.leaf->lost & seg.leaf->vol & vr_seg_mask(&seg);
			purged += __builtin_popcountll(lost);
			if (vec)
				for (unsigned i = 0; i < seg.n; i++)
					vec[vpn - lo + i] = (lost >> (seg.first + i)) & 1;
		}
		vpn += seg.n;
	}
	vr_registry_clear_locked(lo, hi);
	return purged;
}

static int eager_probe(char *why, size_t len)
{
	snprintf(why, len, "MADV_DONTNEED works on every kernel");
	return 0;
}

static int eager_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	(void)vma_kind;
	return vr_mark_bare_locked(lo, hi);
}

static ssize_t eager_unmark(uintptr_t lo, uintptr_t hi, int vma_kind,
                            unsigned char *vec)
{
	(void)vma_kind;
	return vr_unmark_bare_locked(lo, hi, vec);
}

static void eager_resolve(uintptr_t lo, uintptr_t hi)
{
	/* No cookie is ever in memory. */
	(void)lo;
	(void)hi;
}

const vr_backend_t vr_backend_eager = {
	.name = "eager",
	.probe = eager_probe,
	.mark = eager_mark,
	.unmark = eager_unmark,
	.resolve = eager_resolve,
};
