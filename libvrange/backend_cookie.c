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
 * Entry points: vr_backend_cookie, and vr_cookie, the value it writes.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "glue.h"
#include "opt_emul.h"
#include "registry.h"
#include "vma.h"

uintptr_t vr_cookie;

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

static void make_cookie(void)
{
	uintptr_t c = 0;
	if (vr_getrandom(&c, sizeof c) != (long)sizeof c) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		c = ((uintptr_t)ts.tv_nsec << 20) ^ (uintptr_t)ts.tv_sec ^
		    (uintptr_t)&c ^ 0x9e3779b97f4a7c15ull;
	}
	/* Zero means "discarded": the cookie must never be zero. */
	vr_cookie = c | 1;
}

static int cookie_probe(char *why, size_t len)
{
	if (!vr_cookie)
		make_cookie();
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

/* Puts back the word of every page whose cookie was written but not
 * committed (pend), and forgets pend. */
static int undo_seg(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t pend = vr_seg_get(seg, VR_PG_PEND);
	for (unsigned i = 0; i < seg->n; i++) {
		if (!((pend >> i) & 1))
			continue;
		uintptr_t expected = vr_cookie;
		__atomic_compare_exchange_n(page_word(seg->vpn + i), &expected,
		                            vr_seg_saved(seg, i), false,
		                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	if (pend)
		vr_seg_change_locked(seg, VR_PG_PEND, pend, false);
	return 0;
}

static void undo_pending(uintptr_t lo, uintptr_t hi)
{
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, undo_seg, NULL);
	vr_registry_trim_locked(lo, hi);
}

/*
 * Mark, pass 1, one segment: cookies. A page already volatile with a
 * cookie keeps it and its history; one whose cookie is gone was lost (or
 * written) while volatile: that is recorded, and it gets a new cookie.
 * Pages not yet volatile are pending until pass 2.
 */
static int write_cookies(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t withcookie = vr_seg_get(seg, VR_PG_VOL) & ~vr_seg_get(seg, VR_PG_BARE);
	uint64_t pend = 0, relost = 0;
	uintptr_t *saved = vr_seg_saved_words_locked(seg);
	for (unsigned i = 0; i < seg->n; i++) {
		uintptr_t *w = page_word(seg->vpn + i);
		uintptr_t cur = __atomic_load_n(w, __ATOMIC_RELAXED);
		if ((withcookie >> i) & 1) {
			if (cur == vr_cookie)
				continue;
			relost |= 1ull << i;
		} else {
			pend |= 1ull << i;
		}
		saved[i] = cur;
		__atomic_store_n(w, vr_cookie, __ATOMIC_RELAXED);
	}
	if (pend)
		vr_seg_change_locked(seg, VR_PG_PEND, pend, true);
	/* The registry records it with one atomic OR: the SIGBUS handler
	 * records losses in the same word without the lock (u_lostrace). */
	if (relost)
		vr_seg_change_locked(seg, VR_PG_LOST, relost, true);
	return 0;
}

/* Mark, pass 2, one segment: the pending pages become volatile. */
static int publish(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t pend = vr_seg_get(seg, VR_PG_PEND);
	if (pend) {
		vr_seg_change_locked(seg, VR_PG_PEND, pend, false);
		vr_seg_set_locked(seg, pend, 0, 0);
	}
	return 0;
}

static int cookie_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	if (vma_kind == VR_VMA_READONLY)
		return vr_mark_bare_locked(lo, hi);
	int r = vr_registry_each_seg_locked(lo, hi, VR_SEG_CREATE, write_cookies, NULL);
	if (r == 0)
		r = vr_madvise(vr_addr(lo), vr_addr(hi - lo), MADV_FREE);
	if (r != 0) {
		/* Out of metadata, or mlocked memory seen only now. Pages
		 * that were already volatile stay so; the others get their
		 * words back. */
		undo_pending(lo, hi);
		return r;
	}
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, publish, NULL);
	return 0;
}

typedef struct unmark_ctx_s {
	uintptr_t lo;
	int vma_kind;
	unsigned char *vec;
	ssize_t purged;
} unmark_ctx_t;

static int unmark_seg(const vr_seg_t *seg, void *arg)
{
	unmark_ctx_t *c = arg;
	uint64_t vol = vr_seg_get(seg, VR_PG_VOL);
	uint64_t lostw = vr_seg_get(seg, VR_PG_LOST), bare = vr_seg_get(seg, VR_PG_BARE);
	const uintptr_t *saved = vol ? vr_seg_saved_words_locked(seg) : NULL;
	for (unsigned i = 0; vol && i < seg->n; i++) {
		if (!((vol >> i) & 1))
			continue;
		int lost = (lostw >> i) & 1;
		if (!((bare >> i) & 1)) {
			if (c->vma_kind == VR_VMA_READONLY)
				lost = 1; /* mprotect'ed behind our back */
			else
				lost |= settle(page_word(seg->vpn + i), saved[i]);
		}
		c->purged += lost;
		if (c->vec)
			c->vec[seg->vpn + i - c->lo] = (unsigned char)lost;
	}
	return 0;
}

static ssize_t cookie_unmark(uintptr_t lo, uintptr_t hi, int vma_kind,
                             unsigned char *vec)
{
	unmark_ctx_t c = { lo, vma_kind, vec, 0 };
	if (vec)
		memset(vec, 0, hi - lo);
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, unmark_seg, &c);
	vr_registry_clear_locked(lo, hi);
	return c.purged;
}

static int resolve_seg(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t todo = vr_seg_get(seg, VR_PG_VOL) & ~vr_seg_get(seg, VR_PG_BARE);
	if (todo) {
		uint64_t lost = 0;
		for (unsigned i = 0; i < seg->n; i++)
			if ((todo >> i) & 1)
				lost |= (uint64_t)settle(page_word(seg->vpn + i),
				                         vr_seg_saved(seg, i)) << i;
		vr_seg_set_locked(seg, todo, lost, todo);
	}
	return 0;
}

static void cookie_resolve(uintptr_t lo, uintptr_t hi)
{
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, resolve_seg, NULL);
}

const vr_backend_t vr_backend_cookie = {
	.name = "cookie",
	.probe = cookie_probe,
	.mark = cookie_mark,
	.unmark = cookie_unmark,
	.resolve = cookie_resolve,
	.opt_mark = vr_emul_mark_locked,
	.opt_settle = vr_emul_settle_locked,
	.opt_fault = vr_emul_fault,
};
