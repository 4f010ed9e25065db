/*
 * backend_cookie.c - the cookie backend: MADV_FREE plus a purge cookie per
 * page.
 *
 * Mark: for each page, save its first word aside and write the cookie in its
 * place, then MADV_FREE the range. The order matters: a write after
 * MADV_FREE would dirty the page again and cancel the lazy free.
 * Unmark: an atomic compare-and-swap puts the saved word back where the
 * cookie survived. The kernel discards a lazily freed page whole, and a
 * discarded page reads as zeros, so a zero word means the page was taken;
 * the swap is atomic with respect to reclaim, so a page is seen either
 * intact or entirely zero, never torn. mincore and /proc/self/pagemap
 * cannot tell this: a discarded page that was read shows as resident again.
 * Both the restoring swap and the swap on a zero word write to the page,
 * which marks it dirty: the lazy free is cancelled and the page stays
 * resident until marked again (R4).
 *
 * Entry point: vr_backend_cookie; the cookie value is vr_cookie (init.c).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "glue.h"
#include "registry.h"
#include "vma.h"

extern uintptr_t vr_cookie;

static inline uintptr_t *page_word(uintptr_t vpn)
{
	return (uintptr_t *)vr_addr(vpn);
}

/*
 * Settles the cookie of one page: returns 1 if the page was lost, 0 if its
 * word was restored. A word that is neither the cookie nor zero was
 * written while volatile (or the page was lost and written): reported
 * lost, and left as written.
 */
static inline int settle(uintptr_t *w, uintptr_t saved)
{
	uintptr_t expected = vr_cookie;
	if (__atomic_compare_exchange_n(w, &expected, saved, false,
	                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return 0;
	if (expected == 0) {
		/* The page was discarded. Writing to it (a swap of zero for
		 * zero) gives it a fresh resident page. */
		uintptr_t zero = 0;
		__atomic_compare_exchange_n(w, &zero, 0, false, __ATOMIC_SEQ_CST,
		                            __ATOMIC_SEQ_CST);
	}
	return 1;
}

static int cookie_probe(char *why, size_t len)
{
	size_t ps = vr_page_size;
	uintptr_t *p = vr_mmap_anon(ps);
	if (!p) {
		snprintf(why, len, "cannot map a probe page");
		return -ENOMEM;
	}
	p[0] = vr_cookie;
	p[ps / sizeof *p - 1] = vr_cookie;
	int r = vr_madvise((uintptr_t)p, ps, MADV_FREE);
	int ret = 0;
	if (r != 0) {
		snprintf(why, len, "madvise(MADV_FREE) fails here (%s): Linux >= 4.5 needed",
		         strerror(-r));
		ret = r;
	} else if (__atomic_load_n(&p[0], __ATOMIC_SEQ_CST) != vr_cookie) {
		/* Linux 4.5-4.11 freed lazily only with swap: without it
		 * MADV_FREE dropped the page at once, like MADV_DONTNEED. */
		snprintf(why, len, "MADV_FREE discards pages at once here (Linux 4.5-4.11 without swap)");
		ret = -EOPNOTSUPP;
	} else {
		snprintf(why, len, "MADV_FREE keeps pages lazily");
	}
	vr_munmap_raw(p, ps);
	return ret;
}

static void undo_pending(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		if (seg.leaf && seg.leaf->pend) {
			uint64_t pend = seg.leaf->pend & vr_seg_mask(&seg);
			for (unsigned i = seg.first; i < seg.first + seg.n; i++) {
				if (!((pend >> i) & 1))
					continue;
				uintptr_t expected = vr_cookie;
				__atomic_compare_exchange_n(page_word(vpn + i - seg.first),
				                            &expected, seg.leaf->saved[i], false,
				                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
			}
			seg.leaf->pend &= ~pend;
		}
		vpn += seg.n;
	}
	vr_registry_trim_locked(lo, hi);
}

static int cookie_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	if (vma_kind == VR_VMA_READONLY)
		return vr_mark_bare_locked(lo, hi);

	/* Pass 1: cookies. A page already volatile with a cookie keeps it
	 * and its history; one whose cookie is gone was lost (or written)
	 * while volatile: that is recorded, and it gets a new cookie. */
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, true, &seg);
		vr_leaf_t *leaf = seg.leaf;
		if (!leaf) {
			undo_pending(lo, vpn);
			return -ENOMEM;
		}
		uint64_t withcookie = leaf->vol & ~leaf->bare;
		uint64_t pend = 0, relost = 0;
		for (unsigned i = seg.first; i < seg.first + seg.n; i++) {
			uintptr_t *w = page_word(seg.vpn + i - seg.first);
			uintptr_t cur = __atomic_load_n(w, __ATOMIC_RELAXED);
			if ((withcookie >> i) & 1) {
				if (cur == vr_cookie)
					continue;
				relost |= 1ull << i;
			} else {
				pend |= 1ull << i;
			}
			leaf->saved[i] = cur;
			__atomic_store_n(w, vr_cookie, __ATOMIC_RELAXED);
		}
		leaf->pend = pend;
		/* One atomic operation, never a load then a store: the SIGBUS
		 * handler records losses in this word without the lock, and a
		 * bit it set in between would be erased (u_lostrace). */
		if (relost)
			__atomic_fetch_or(&leaf->lost, relost, __ATOMIC_RELAXED);
		vpn += seg.n;
	}

	int r = vr_madvise(vr_addr(lo), vr_addr(hi - lo), MADV_FREE);
	if (r != 0) {
		/* mlocked memory, seen only now. Pages that were already
		 * volatile stay so; the others get their words back. */
		undo_pending(lo, hi);
		return r;
	}

	/* Pass 2: publish. */
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		uint64_t pend = seg.leaf->pend;
		seg.leaf->pend = 0;
		if (pend)
			vr_registry_set_locked(&seg, pend, 0, 0);
		vpn += seg.n;
	}
	return 0;
}

static ssize_t cookie_unmark(uintptr_t lo, uintptr_t hi, int vma_kind,
                             unsigned char *vec)
{
	ssize_t purged = 0;
	if (vec)
		memset(vec, 0, hi - lo);
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		vr_leaf_t *leaf = seg.leaf;
		uint64_t vol = leaf ? leaf->vol & vr_seg_mask(&seg) : 0;
		for (unsigned i = seg.first; vol && i < seg.first + seg.n; i++) {
			if (!((vol >> i) & 1))
				continue;
			int lost = (leaf->lost >> i) & 1;
			if (!((leaf->bare >> i) & 1)) {
				uintptr_t *w = page_word(seg.vpn + i - seg.first);
				if (vma_kind == VR_VMA_READONLY)
					lost = 1; /* mprotect'ed behind our back */
				else
					lost |= settle(w, leaf->saved[i]);
			}
			purged += lost;
			if (vec)
				vec[seg.vpn + i - seg.first - lo] = (unsigned char)lost;
		}
		vpn += seg.n;
	}
	vr_registry_clear_locked(lo, hi);
	return purged;
}

static void cookie_resolve(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		vr_leaf_t *leaf = seg.leaf;
		uint64_t todo = leaf ? leaf->vol & ~leaf->bare & vr_seg_mask(&seg) : 0;
		if (todo) {
			uint64_t lost = 0;
			for (unsigned i = seg.first; i < seg.first + seg.n; i++)
				if ((todo >> i) & 1)
					lost |= (uint64_t)settle(page_word(seg.vpn + i - seg.first),
					                         leaf->saved[i]) << i;
			vr_registry_set_locked(&seg, todo, lost, todo);
		}
		vpn += seg.n;
	}
}

const vr_backend_t vr_backend_cookie = {
	.name = "cookie",
	.probe = cookie_probe,
	.mark = cookie_mark,
	.unmark = cookie_unmark,
	.resolve = cookie_resolve,
};
