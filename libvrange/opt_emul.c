/*
 * opt_emul.c - optimistic ranges without userfaultfd: the emulation the
 * cookie and eager backends use, with mprotect and SIGSEGV.
 *
 * Entry points (opt_emul.h): vr_emul_mark_locked, vr_emul_settle_locked,
 * vr_emul_fault.
 *
 * The range is marked as an explicit range of the backend (cookies and
 * MADV_FREE, or MADV_DONTNEED with eager), flagged optimistic, and made
 * PROT_NONE. The first touch of each page raises SIGSEGV; the fault path
 * restores the page (its cookie survived) or refills it (it was purged)
 * and makes it accessible again, non-volatile from then on.
 */
#include "internal.h"

#include <sched.h>
#include <signal.h>
#include <string.h>

#include "backend.h"
#include "glue.h"
#include "log.h"
#include "opt_emul.h"
#include "optimistic.h"
#include "refill.h"
#include "registry.h"
#include "stats.h"
#include "vma.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static long raw_mprotect(uintptr_t lo, uintptr_t hi, int prot)
{
	/* Not the interposed mprotect: that one settles cookies. */
	long r = vr_mprotect_raw(vr_addr(lo), vr_addr(hi - lo), prot);
	vr_vma_invalidate();
	return r;
}

/*
 * The fallback without userfaultfd: the range is marked as an explicit
 * range (cookies and MADV_FREE, or MADV_DONTNEED with the eager backend),
 * flagged optimistic, then made PROT_NONE. The first touch of a page
 * faults (SIGSEGV) and emul_fault() restores or refills it.
 */
static int make_fallback_opt(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	vr_seg_change_locked(seg, VR_PG_TOUCH, vr_seg_all(seg), false);
	vr_seg_change_locked(seg, VR_PG_OPT, vr_seg_all(seg), true);
	return 0;
}

int vr_emul_mark_locked(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	int r = vr_backend_cur->mark(lo, hi, vma_kind);
	if (r != 0)
		return r;
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, make_fallback_opt, NULL);
	/* The kind is set before the protection: a fault never finds an
	 * optimistic page flagged explicit. */
	r = (int)raw_mprotect(lo, hi, PROT_NONE);
	if (r != 0)
		vr_warn("mprotect(PROT_NONE) of an optimistic range failed: %s", strerror(-r));
	return 0;
}

/* Read-write again; untouched pages still hold their cookies, touched
 * ones are bare. */
static void unprotect_run(const vr_seg_t *seg, unsigned first, unsigned n)
{
	raw_mprotect(seg->vpn + first, seg->vpn + first + n, PROT_READ | PROT_WRITE);
}

void vr_emul_settle_locked(uintptr_t lo, uintptr_t hi)
{
	vr_opt_settle_runs_locked(lo, hi, unprotect_run);
}

/* --- the fault path: signal handler context ------------------------------ */

static long raw_mremap(uintptr_t from, uintptr_t to, int flags)
{
	return vr_mremap_raw((void *)from, vr_page_size, vr_page_size,
	                     MREMAP_MAYMOVE | MREMAP_FIXED | flags, (void *)to);
}

/*
 * First touch of a page of a fallback optimistic range (SIGSEGV on
 * PROT_NONE). The page is moved aside (MREMAP_DONTUNMAP leaves an empty
 * PROT_NONE page in its place, so other threads touching it fault and wait
 * here), restored or refilled there, and moved back in one step: no thread
 * ever sees the cookie or a half-filled page. RETRY when the access can
 * retry; PURGED for a purged page nobody refilled; DECLINE if the page
 * cannot be moved.
 */
static vr_fault_verdict_t page_fault(uintptr_t vpn, const vr_page_bits_t *b,
                                     siginfo_t *si, vr_fault_t *f)
{
	bool claimed;
	if (!vr_opt_claim(vpn, &claimed)) {
		sched_yield();
		return VR_FAULT_RETRY;  /* another thread is on it: retry and wait */
	}
	/* The bits were read before the claim: a thread that finished this
	 * page in between marked it touched before letting go. */
	vr_page_bits_t now;
	if (!vr_registry_bits(vpn, &now) || now.touch || !(now.vol && now.opt)) {
		vr_opt_unclaim(vpn, claimed);
		/* Done: retry; else not ours any more. */
		return now.touch ? VR_FAULT_RETRY : VR_FAULT_DECLINE;
	}
	b = &now;
	uintptr_t page = vr_addr(vpn);
	unsigned char *tmp = NULL;
	long r = vr_mmap_raw(NULL, vr_page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r < 0 && r > -4096)
		goto fail;
	tmp = (unsigned char *)r;
	if (raw_mremap(page, (uintptr_t)tmp, MREMAP_DONTUNMAP) < 0 &&
	    raw_mremap(page, (uintptr_t)tmp, MREMAP_DONTUNMAP) < 0)
		goto fail;
	vr_mprotect_raw((uintptr_t)tmp, vr_page_size, PROT_READ | PROT_WRITE);
	/* Eager dropped it at mark; a page known lost (a re-mark) holds
	 * zeros under its new cookie: both are refilled, never shown. */
	bool purged = b->bare || b->lost;
	if (!purged) {
		uintptr_t expected = vr_cookie, saved;
		purged = !vr_registry_saved(vpn, &saved) || !__atomic_compare_exchange_n(
			(uintptr_t *)tmp, &expected, saved, false,
			__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	bool ok = !purged;
	if (purged) {
		vr_stat_add(VR_STAT_SIGBUS, 1);
		vrange_refill_fn fn;
		void *arg;
		memset(tmp, 0, vr_page_size);
		if (vr_refill_lookup(vpn, &fn, &arg) && fn &&
		    fn((void *)page, tmp, vr_page_size, arg) == 0) {
			ok = true;
			vr_stat_add(VR_STAT_REFILLED, 1);
		}
		vr_registry_note_lost(vpn);
	}
	/* No cookie in memory from now on, whatever happens next. */
	vr_registry_note_bare(vpn);
	if (ok)
		vr_registry_note_touched(vpn);
	if (!ok)
		vr_mprotect_raw((uintptr_t)tmp, vr_page_size, PROT_NONE);
	if (raw_mremap((uintptr_t)tmp, page, 0) < 0)
		goto fail;
	vr_vma_invalidate();
	vr_opt_unclaim(vpn, claimed);
	if (ok)
		return VR_FAULT_RETRY;
	/* The application sees what the kernel-backed mechanism gives: a
	 * SIGBUS at the address. Retrying would fault with SIGSEGV, so the
	 * access does not raise it again (refaults false). */
	siginfo_t bus;
	memset(&bus, 0, sizeof bus);
	bus.si_signo = SIGBUS;
	bus.si_code = BUS_ADRERR;
	bus.si_addr = si->si_addr;
	return vr_opt_purged(vpn, SIGBUS, &bus, false, f);
fail:
	vr_opt_unclaim(vpn, claimed);
	vr_warn("optimistic fallback: cannot move page %p aside", (void *)page);
	return VR_FAULT_DECLINE;
}

vr_fault_verdict_t vr_emul_fault(int sig, siginfo_t *si, vr_fault_t *f)
{
	if (sig != SIGSEGV)
		return VR_FAULT_DECLINE;
	uintptr_t vpn = vr_vpn((uintptr_t)si->si_addr);
	vr_fault_verdict_t v = VR_FAULT_DECLINE;
	vr_page_bits_t b;
	vr_registry_read_begin();
	if (vr_opt_inflight(vpn)) {
		sched_yield();
		v = VR_FAULT_RETRY;    /* being moved by another thread */
	} else if (vr_registry_bits(vpn, &b) && b.vol && b.opt) {
		v = page_fault(vpn, &b, si, f);
	}
	vr_registry_read_end();
	return v;
}
