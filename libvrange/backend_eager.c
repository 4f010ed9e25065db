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
#include "opt_emul.h"
#include "registry.h"

static int set_bare(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t all = vr_seg_all(seg);
	vr_seg_set_locked(seg, all, all, all);
	return 0;
}

int vr_mark_bare_locked(uintptr_t lo, uintptr_t hi)
{
	/* Every leaf must exist before the data is discarded: a page dropped
	 * by MADV_DONTNEED but missing from the registry would later be
	 * reported intact. */
	int r = vr_registry_reserve_locked(lo, hi);
	if (r != 0)
		return r;
	r = vr_madvise(vr_addr(lo), vr_addr(hi - lo), MADV_DONTNEED);
	if (r != 0) {
		vr_registry_trim_locked(lo, hi);
		return r;
	}
	return vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, set_bare, NULL);
}

typedef struct bare_ctx_s {
	uintptr_t lo;
	unsigned char *vec;
	ssize_t purged;
} bare_ctx_t;

static int report_bare(const vr_seg_t *seg, void *arg)
{
	bare_ctx_t *c = arg;
	uint64_t lost = vr_seg_get(seg, VR_PG_LOST) & vr_seg_get(seg, VR_PG_VOL);
	c->purged += __builtin_popcountll(lost);
	if (c->vec)
		for (unsigned i = 0; i < seg->n; i++)
			c->vec[seg->vpn - c->lo + i] = (lost >> i) & 1;
	return 0;
}

ssize_t vr_unmark_bare_locked(uintptr_t lo, uintptr_t hi, unsigned char *vec)
{
	bare_ctx_t c = { lo, vec, 0 };
	if (vec)
		memset(vec, 0, hi - lo);
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, report_bare, &c);
	vr_registry_clear_locked(lo, hi);
	return c.purged;
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
	.opt_mark = vr_emul_mark_locked,
	.opt_settle = vr_emul_settle_locked,
	.opt_fault = vr_emul_fault,
};
