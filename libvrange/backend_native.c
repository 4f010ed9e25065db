/*
 * backend_native.c - the vrange system call of a kernel carrying the v10
 * patch set (never merged).
 *
 * The patch used x86-64 system call number 314. Since Linux 3.14 that number
 * is sched_setattr, so the probe never calls it on such a kernel: it refuses
 * from the kernel version alone. On an older kernel it makes a zero-length
 * VRANGE_NONVOLATILE call, which a vrange kernel answers with 0 and any
 * other with ENOSYS. The kernel reports purges per call, not per page, so a
 * purged unmark reports every page of the call that was volatile.
 *
 * Entry point: vr_backend_native.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "backend.h"
#include "glue.h"
#include "registry.h"
#include "vrange.h"


static int native_probe(char *why, size_t len)
{
#ifndef NR_VRANGE
	snprintf(why, len, "the v10 patch defined a system call number for x86-64 only");
	return -ENOSYS;
#else
	struct utsname u;
	unsigned major = 0, minor = 0;
	if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2) {
		snprintf(why, len, "cannot read the kernel version");
		return -ENOSYS;
	}
	if (major > 3 || (major == 3 && minor >= 14)) {
		snprintf(why, len,
		         "Linux %u.%u: system call %d is sched_setattr since 3.14, and no "
		         "merged kernel has vrange", major, minor, NR_VRANGE);
		return -ENOSYS;
	}
	int purged = 0;
	long r = vr_vrange_raw(0, 0, VRANGE_NONVOLATILE, &purged);
	if (r != 0) {
		snprintf(why, len, "Linux %u.%u has no vrange system call (%s)", major,
		         minor, strerror((int)-r));
		return (int)r;
	}
	snprintf(why, len, "Linux %u.%u answers the vrange system call", major, minor);
	return 0;
#endif
}

#ifdef NR_VRANGE
static int set_mirror(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	vr_seg_set_locked(seg, vr_seg_all(seg), 0, vr_seg_all(seg));
	return 0;
}

static int all_lost(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	vr_seg_change_locked(seg, VR_PG_LOST, vr_seg_get(seg, VR_PG_VOL), true);
	return 0;
}
#endif

static int native_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
#ifdef NR_VRANGE
	(void)vma_kind;
	long r = vr_registry_reserve_locked(lo, hi);
	if (r != 0)
		return (int)r;
	int purged = 0;
	r = vr_vrange_raw(vr_addr(lo), vr_addr(hi - lo), VRANGE_VOLATILE, &purged);
	if (r < 0) {
		vr_registry_trim_locked(lo, hi);
		return (int)r;
	}
	/* The kernel keeps the truth; the registry mirrors which pages are
	 * volatile (statistics, ranges), with no cookie in memory. */
	return vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, set_mirror, NULL);
#else
	return -ENOSYS;
#endif
}

static ssize_t native_unmark(uintptr_t lo, uintptr_t hi, int vma_kind,
                             unsigned char *vec)
{
#ifdef NR_VRANGE
	(void)vma_kind;
	int purged = 0;
	long r = vr_vrange_raw(vr_addr(lo), vr_addr(hi - lo), VRANGE_NONVOLATILE, &purged);
	if (r < 0)
		return r;
	if (purged) {
		/* Per call, not per page: every volatile page may be lost. */
		vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, all_lost, NULL);
	}
	return vr_unmark_bare_locked(lo, hi, vec);
#else
	return -ENOSYS;
#endif
}

static void native_resolve(uintptr_t lo, uintptr_t hi)
{
	/* The kernel keeps the pages' state; nothing is in memory. */
	(void)lo;
	(void)hi;
}

const vr_backend_t vr_backend_native = {
	.name = "native",
	.probe = native_probe,
	.mark = native_mark,
	.unmark = native_unmark,
	.resolve = native_resolve,
};
