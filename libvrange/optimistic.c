/*
 * optimistic.c - optimistic volatile ranges on userfaultfd (see
 * optimistic.h), and vr_fault_resolve, the core's half of the SIGBUS
 * handler (sigbus/sigbus.h).
 *
 * Entry points: vr_uffd_open, vr_uffd_fd, vr_opt_mark_locked,
 * vr_opt_settle_locked, vr_opt_atfork_child, vr_fault_resolve.
 *
 * Facts this file relies on, measured on Linux 6.18:
 *  - a discarded page of a range registered MISSING with UFFD_FEATURE_SIGBUS
 *    raises SIGBUS (BUS_ADRERR) when touched from user space; from inside a
 *    system call the access fails with EFAULT and no signal;
 *  - UFFDIO_COPY / UFFDIO_ZEROPAGE from the handler, then return: the access
 *    retries and succeeds; a second install of the same page gets EEXIST;
 *  - under registration mincore is exact: a discarded page cannot become
 *    present again except through UFFDIO_COPY/ZEROPAGE (here);
 *  - MADV_POPULATE_WRITE dirties present pages (cancelling the lazy free)
 *    and fails with EFAULT, raising nothing, on a discarded one.
 */
#include "internal.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef HAVE_LINUX_USERFAULTFD_H
#include <linux/userfaultfd.h>
#endif

#include "backend.h"
#include "glue.h"
#include "init.h"
#include "log.h"
#include "optimistic.h"
#include "refill.h"
#include "registry.h"
#include "sigbus.h"
#include "stats.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static int uffd = -1;
static int uffd_flags;

int vr_uffd_fd(void)
{
	return uffd;
}

#ifdef HAVE_LINUX_USERFAULTFD_H

static int uffd_create(int flags, char *why, size_t len)
{
	int fd = (int)vr_sys6(SYS_userfaultfd, flags, 0, 0, 0, 0, 0);
	if (fd < 0) {
		snprintf(why, len, "userfaultfd: %s", strerror(-fd));
		return fd;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS };
	int r = vr_ioctl(fd, UFFDIO_API, &api);
	if (r != 0 || !(api.features & UFFD_FEATURE_SIGBUS)) {
		snprintf(why, len, "userfaultfd lacks UFFD_FEATURE_SIGBUS (Linux >= 4.14): %s",
		         r ? strerror(-r) : "feature not granted");
		vr_close(fd);
		return r ? r : -EOPNOTSUPP;
	}
	return fd;
}

int vr_uffd_open(char *why, size_t len)
{
	/* User-mode-only (5.11+) needs no privilege, and kernel-mode faults
	 * are no concern of ours: with the SIGBUS feature they fail with
	 * EFAULT either way. Older kernels reject the flag with EINVAL. */
	int flags = O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY;
	int fd = uffd_create(flags, why, len);
	if (fd == -EINVAL) {
		flags &= ~UFFD_USER_MODE_ONLY;
		fd = uffd_create(flags, why, len);
	}
	if (fd < 0)
		return fd;
	uffd = fd;
	uffd_flags = flags;
	snprintf(why, len, "userfaultfd%s with UFFD_FEATURE_SIGBUS",
	         flags & UFFD_USER_MODE_ONLY ? " (user-mode only)" : "");
	return 0;
}

static int uffd_register(uintptr_t lo, uintptr_t hi)
{
	struct uffdio_register r = {
		.range = { .start = vr_addr(lo), .len = vr_addr(hi - lo) },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	return vr_ioctl(uffd, UFFDIO_REGISTER, &r);
}

/* Maps the zero page at vpn. 0, or -EEXIST if a page is there already. */
static int uffd_zeropage(uintptr_t vpn)
{
	struct uffdio_zeropage z = {
		.range = { .start = vr_addr(vpn), .len = vr_page_size },
	};
	return vr_ioctl(uffd, UFFDIO_ZEROPAGE, &z);
}

/* Installs buf at vpn in one step. 0, or -EEXIST if a page is there. */
static int uffd_copy(uintptr_t vpn, const void *buf)
{
	struct uffdio_copy c = {
		.dst = vr_addr(vpn),
		.src = (uintptr_t)buf,
		.len = vr_page_size,
	};
	return vr_ioctl(uffd, UFFDIO_COPY, &c);
}

#else /* !HAVE_LINUX_USERFAULTFD_H */

int vr_uffd_open(char *why, size_t len)
{
	snprintf(why, len, "built without <linux/userfaultfd.h>");
	return -ENOSYS;
}

static int uffd_register(uintptr_t lo, uintptr_t hi)
{
	return -ENOSYS;
}

static int uffd_zeropage(uintptr_t vpn)
{
	return -ENOSYS;
}

static int uffd_copy(uintptr_t vpn, const void *buf)
{
	return -ENOSYS;
}

#endif

/* Registers the pages of [lo, hi) that are not registered yet, in runs. */
static int register_range_locked(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, true, &seg);
		if (!seg.leaf)
			return -ENOMEM;
		uint64_t todo = ~seg.leaf->reg & vr_seg_mask(&seg);
		while (todo) {
			unsigned i = (unsigned)__builtin_ctzll(todo);
			uint64_t rest = ~(todo >> i);
			unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - i;
			uintptr_t a = seg.vpn - seg.first + i;
			/* ENOMEM here is vm.max_map_count: registering part of
			 * a mapping splits it. */
			int r = uffd_register(a, a + n);
			if (r != 0)
				return r;
			uint64_t m = (n == 64 ? ~0ull : (1ull << n) - 1) << i;
			vr_registry_bits_locked(&seg, offsetof(vr_leaf_t, reg), m, true);
			todo &= ~m;
		}
		vpn += seg.n;
	}
	return 0;
}

int vr_opt_mark_locked(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	if (uffd < 0)
		return -EOPNOTSUPP;
	/* Explicit volatile pages give their cookies back first (loss kept);
	 * done before registering, so that settling a discarded page takes
	 * an ordinary fault rather than our SIGBUS. */
	vr_backend_cur->resolve(lo, hi);
	int r = register_range_locked(lo, hi);
	if (r != 0) {
		vr_registry_trim_locked(lo, hi);
		return r;
	}
	/* Read-only memory cannot be written to cancel a lazy free later:
	 * it is dropped now and counts as lost, as eager does. */
	bool ro = vma_kind != 0;
	r = vr_madvise(vr_addr(lo), vr_addr(hi - lo), ro ? MADV_DONTNEED : MADV_FREE);
	if (r != 0)
		return r;
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		uint64_t m = vr_seg_mask(&seg);
		/* The kind first: a reader never sees an optimistic page
		 * as explicit. */
		vr_registry_bits_locked(&seg, offsetof(vr_leaf_t, opt), m, true);
		vr_registry_set_locked(&seg, m, ro ? m : 0, m);
		vpn += seg.n;
	}
	return 0;
}

/* Settles one run [a, b) of optimistic pages (see optimistic.h). */
static void settle_run(uintptr_t a, uintptr_t b, vr_leaf_t *leaf, unsigned first)
{
	unsigned char vec[VR_LEAF_PAGES];
	size_t n = b - a;
	if (vr_mincore(vr_addr(a), vr_addr(n), vec) != 0)
		memset(vec, 0, sizeof vec);
	for (size_t i = 0; i < n; i++) {
		if (vec[i] & 1)
			continue;
		/* Gone (or never touched): zeros, and lost. EEXIST means a
		 * refill got there first, and it recorded the loss. */
		if (uffd_zeropage(a + i) == 0)
			__atomic_fetch_or(&leaf->lost, 1ull << (first + i), __ATOMIC_RELAXED);
	}
	if (vr_madvise(vr_addr(a), vr_addr(n), MADV_POPULATE_WRITE) == 0)
		return;
	/* A page was discarded after mincore looked: page by page. */
	for (size_t i = 0; i < n; i++) {
		while (vr_madvise(vr_addr(a + i), vr_page_size, MADV_POPULATE_WRITE) == -EFAULT) {
			if (uffd_zeropage(a + i) == 0)
				__atomic_fetch_or(&leaf->lost, 1ull << (first + i),
				                  __ATOMIC_RELAXED);
		}
	}
}

void vr_opt_settle_locked(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t vpn = lo; vpn < hi;) {
		vr_seg_t seg;
		vr_registry_seg_locked(vpn, hi, false, &seg);
		vr_leaf_t *leaf = seg.leaf;
		uint64_t todo = leaf ? leaf->opt & leaf->vol & vr_seg_mask(&seg) : 0;
		uint64_t done = todo;
		while (todo && uffd >= 0) {
			unsigned i = (unsigned)__builtin_ctzll(todo);
			uint64_t rest = ~(todo >> i);
			unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - i;
			uintptr_t a = seg.vpn - seg.first + i;
			settle_run(a, a + n, leaf, i);
			todo &= n + i >= 64 ? 0 : ~(((1ull << n) - 1) << i);
		}
		if (done)
			vr_registry_bits_locked(&seg, offsetof(vr_leaf_t, opt), done, false);
		vpn += seg.n;
	}
}

static void reregister(uintptr_t lo, uintptr_t hi, void *arg)
{
	int *failed = arg;
	if (uffd_register(lo, hi) != 0)
		(*failed)++;
}

void vr_opt_atfork_child(void)
{
	if (uffd < 0)
		return;
	/* The inherited descriptor still acts on the parent's memory: a copy
	 * through it would write into the parent. */
	vr_close(uffd);
	uffd = -1;
	char why[128];
	int fd = (int)vr_sys6(SYS_userfaultfd, uffd_flags, 0, 0, 0, 0, 0);
	if (fd >= 0) {
#ifdef HAVE_LINUX_USERFAULTFD_H
		struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS };
		if (vr_ioctl(fd, UFFDIO_API, &api) != 0) {
			vr_close(fd);
			fd = -1;
		}
#endif
	}
	if (fd < 0) {
		snprintf(why, sizeof why, "cannot open a userfaultfd in the child");
		vr_warn("fork: %s: optimistic ranges read zeros here instead of faulting", why);
		return;
	}
	uffd = fd;
	int failed = 0;
	vr_registry_each_reg_locked(reregister, &failed);
	if (failed)
		vr_warn("fork: %d registered runs could not be registered again", failed);
}

/* --- the fault path: signal handler context ------------------------------ */

/* A page being refilled by some thread: others wait for it rather than
 * run the callback again. A collision of two pages in one slot only costs
 * a second refill (the loser's copy gets EEXIST). */
static uintptr_t inflight[64];

static __thread void *scratch __attribute__((tls_model("initial-exec")));

static void *scratch_page(void)
{
	if (!scratch)
		scratch = vr_mmap_anon(vr_page_size);
	return scratch;
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

bool vr_fault_resolve(int sig, siginfo_t *si, void *uctx)
{
	if (sig != SIGBUS || si->si_code <= 0 || uffd < 0 || !vr_ready())
		return false;
	uintptr_t vpn = vr_vpn((uintptr_t)si->si_addr);
	bool handled = false;
	vr_page_bits_t b;
	vr_registry_read_begin();
	if (!vr_registry_bits(vpn, &b) || !b.reg)
		goto out;          /* not a page of ours: a real SIGBUS */
	if (!(b.vol && b.opt)) {
		/* Registered but not optimistic now: a page never touched,
		 * or dropped by the application. Zeros, as without us. */
		int r = uffd_zeropage(vpn);
		handled = r == 0 || r == -EEXIST;
		goto out;
	}
	vr_stat_add(VR_STAT_SIGBUS, 1);
	vrange_refill_fn fn;
	void *arg;
	if (vr_refill_lookup(vpn, &fn, &arg) && fn) {
		uintptr_t *slot = &inflight[vpn % 64];
		uintptr_t none = 0;
		if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) == vpn) {
			/* Another thread is filling this page: retry the
			 * access, which waits until the page is there. */
			sched_yield();
			handled = true;
			goto out;
		}
		bool claimed = __atomic_compare_exchange_n(slot, &none, vpn, false,
		                                           __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		void *buf = scratch_page();
		if (buf && fn((void *)vr_addr(vpn), buf, vr_page_size, arg) == 0) {
			int r = uffd_copy(vpn, buf);
			if (r == 0) {
				vr_registry_note_lost(vpn);
				vr_stat_add(VR_STAT_REFILLED, 1);
				/* Still volatile: the kernel may take it
				 * again (a write by the application cancels
				 * that, which is the safe direction). */
				vr_madvise(vr_addr(vpn), vr_page_size, MADV_FREE);
			}
			handled = r == 0 || r == -EEXIST;
		}
		if (claimed)
			__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
		if (handled)
			goto out;
	}
	uintptr_t lo, hi;
	range_bounds(vpn, &lo, &hi);
	vr_report_use_after_purge(si->si_addr, vr_addr(lo), vr_addr(hi), uctx, NULL, 0);
out:
	vr_registry_read_end();
	return handled;
}
