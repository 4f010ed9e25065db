/*
 * optimistic.c - what the optimistic ranges of every backend share (see
 * optimistic.h): the entry points the core calls, which hand the work to
 * the backend's operations (backend.h), the table of pages being filled,
 * the verdict on a purged page; and vr_fault_classify (fault.h).
 *
 * Entry points: vr_opt_mark_locked, vr_opt_settle_locked,
 * vr_opt_atfork_child, vr_fault_classify; for the backends,
 * vr_opt_settle_runs_locked, vr_opt_claim, vr_opt_unclaim, vr_opt_inflight,
 * vr_opt_purged.
 *
 * The mechanisms live with their backends: userfaultfd in backend_uffd.c,
 * the mprotect emulation of the cookie and eager backends in opt_emul.c.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#include "backend.h"
#include "fault.h"
#include "init.h"
#include "optimistic.h"
#include "registry.h"
#include "trace.h"

int vr_opt_mark_locked(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	if (!vr_backend_cur->opt_mark)
		return -EOPNOTSUPP;
	vr_trace_mark_locked(lo, hi);
	return vr_backend_cur->opt_mark(lo, hi, vma_kind);
}

void vr_opt_settle_locked(uintptr_t lo, uintptr_t hi)
{
	if (vr_backend_cur->opt_settle)
		vr_backend_cur->opt_settle(lo, hi);
}

void vr_opt_atfork_child(void)
{
	if (vr_backend_cur->atfork_child)
		vr_backend_cur->atfork_child();
}

typedef struct each_run_s {
	void (*run)(const vr_seg_t *seg, unsigned first, unsigned n);
} each_run_t;

static int settle_seg(const vr_seg_t *seg, void *arg)
{
	const each_run_t *c = arg;
	uint64_t todo = vr_seg_get(seg, VR_PG_OPT) & vr_seg_get(seg, VR_PG_VOL);
	uint64_t done = todo;
	unsigned i, n;
	while ((n = vr_bits_take_run(&todo, &i)) != 0)
		c->run(seg, i, n);
	if (done)
		vr_seg_change_locked(seg, VR_PG_OPT, done, false);
	return 0;
}

void vr_opt_settle_runs_locked(uintptr_t lo, uintptr_t hi,
                               void (*run)(const vr_seg_t *seg, unsigned first, unsigned n))
{
	each_run_t c = { run };
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, settle_seg, &c);
}

/* --- the fault path: signal handler context ------------------------------ */

/* A page being refilled by some thread: others wait for it rather than
 * run the callback again. A collision of two pages in one slot only costs
 * a second refill (the loser's copy gets EEXIST). Slots hold vpn + 1:
 * zero is free, and page 0 (a NULL access) is a page like any other. */
static uintptr_t inflight[64];

bool vr_opt_inflight(uintptr_t vpn)
{
	return __atomic_load_n(&inflight[vpn % 64], __ATOMIC_ACQUIRE) == vpn + 1;
}

bool vr_opt_claim(uintptr_t vpn, bool *claimed)
{
	uintptr_t *slot = &inflight[vpn % 64];
	uintptr_t none = 0;
	*claimed = false;
	if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) == vpn + 1)
		return false;
	*claimed = __atomic_compare_exchange_n(slot, &none, vpn + 1, false,
	                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	return true;
}

void vr_opt_unclaim(uintptr_t vpn, bool claimed)
{
	if (claimed)
		__atomic_store_n(&inflight[vpn % 64], 0, __ATOMIC_RELEASE);
}

/* The optimistic range around vpn, by a lock-free scan (for the report). */
static void range_bounds(uintptr_t vpn, uintptr_t *lo, uintptr_t *hi)
{
	vr_page_bits_t b;
	uintptr_t a = vpn, z = vpn + 1;
	while (a > 0 && vr_registry_bits(a - 1, &b) && b.vol && b.opt)
		a--;
	while (vr_registry_bits(z, &b) && b.vol && b.opt)
		z++;
	*lo = a;
	*hi = z;
}

vr_fault_verdict_t vr_opt_purged(uintptr_t vpn, int sig, const siginfo_t *si,
                                 bool refaults, vr_fault_t *f)
{
	uintptr_t lo, hi;
	range_bounds(vpn, &lo, &hi);
	f->sig = sig;
	f->si = *si;
	f->refaults = refaults;
	f->lo = vr_addr(lo);
	f->hi = vr_addr(hi);
	f->nmark = vr_trace_find(vpn, f->mark_pcs);
	return VR_FAULT_PURGED;
}

vr_fault_verdict_t vr_fault_classify(int sig, siginfo_t *si, void *uctx, vr_fault_t *f)
{
	(void)uctx;
	if (si->si_code <= 0 || !vr_ready() || !vr_backend_cur->opt_fault)
		return VR_FAULT_DECLINE;
	return vr_backend_cur->opt_fault(sig, si, f);
}
