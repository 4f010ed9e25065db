/*
 * backend_uffd.c - the uffd backend: explicit ranges exactly as the cookie
 * backend keeps them; optimistic ranges on a userfaultfd registered in
 * MISSING mode with UFFD_FEATURE_SIGBUS, with no cookie in memory: a
 * discarded page has no page-table entry, so touching it raises SIGBUS
 * instead of mapping zeros, and the fault path refills it with UFFDIO_COPY
 * (or reports it). A range is registered while it is optimistic and
 * unregistered when it is settled (settle_run), so that memory that is no
 * longer optimistic behaves as without the library.
 *
 * Entry point: vr_backend_uffd.
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
 *    and fails with EFAULT, raising nothing, on a discarded one;
 *  - closing the last descriptor of a userfaultfd unregisters every range
 *    it had: a discarded page then reads as zeros, with no signal.
 *
 * The descriptor. Probing the backend opens a userfaultfd and closes it;
 * the one that registers ranges is opened by the first optimistic mark, at
 * a high number, close-on-exec, and checked before each use (fd.h): a
 * process that never makes memory optimistic holds none. A program that
 * closed it (a daemon closing everything above 2) gets it back at the
 * next mark or unmark, every registered run registered again, and every
 * optimistic page counted as lost (drop_optimistic says why). Between the
 * close and that call, a page the kernel discards reads as zeros without a
 * fault: the library cannot see that happen, and vrange(3) says so.
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
#include "fault.h"
#include "fd.h"
#include "glue.h"
#include "log.h"
#include "optimistic.h"
#include "refill.h"
#include "registry.h"
#include "stats.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static int uffd_flags;
static vr_fd_t ufd = VR_FD_NONE;

#ifdef HAVE_LINUX_USERFAULTFD_H

static int uffd_create(int flags, char *why, size_t len)
{
	int fd = vr_userfaultfd(flags);
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

static int uffd_open_probe(char *why, size_t len)
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
	/* Not kept: the first optimistic mark opens the one it uses. */
	vr_close(fd);
	uffd_flags = flags;
	snprintf(why, len, "userfaultfd%s with UFFD_FEATURE_SIGBUS",
	         flags & UFFD_USER_MODE_ONLY ? " (user-mode only)" : "");
	return 0;
}

static int uffd_register(int fd, uintptr_t lo, uintptr_t hi)
{
	struct uffdio_register r = {
		.range = { .start = vr_addr(lo), .len = vr_addr(hi - lo) },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	return vr_ioctl(fd, UFFDIO_REGISTER, &r);
}

static int uffd_unregister(int fd, uintptr_t lo, uintptr_t hi)
{
	struct uffdio_range r = { .start = vr_addr(lo), .len = vr_addr(hi - lo) };
	return fd < 0 ? -EBADF : vr_ioctl(fd, UFFDIO_UNREGISTER, &r);
}

/* Maps the zero page at vpn. 0, or -EEXIST if a page is there already. */
static int uffd_zeropage(int fd, uintptr_t vpn)
{
	struct uffdio_zeropage z = {
		.range = { .start = vr_addr(vpn), .len = vr_page_size },
	};
	return fd < 0 ? -EBADF : vr_ioctl(fd, UFFDIO_ZEROPAGE, &z);
}

/* Installs buf at vpn in one step. 0, or -EEXIST if a page is there. */
static int uffd_copy(int fd, uintptr_t vpn, const void *buf)
{
	struct uffdio_copy c = {
		.dst = vr_addr(vpn),
		.src = (uintptr_t)buf,
		.len = vr_page_size,
	};
	return fd < 0 ? -EBADF : vr_ioctl(fd, UFFDIO_COPY, &c);
}

#else /* !HAVE_LINUX_USERFAULTFD_H */

static int uffd_open_probe(char *why, size_t len)
{
	snprintf(why, len, "built without <linux/userfaultfd.h>");
	return -ENOSYS;
}

static int uffd_create(int flags, char *why, size_t len)
{
	return -ENOSYS;
}

static int uffd_register(int fd, uintptr_t lo, uintptr_t hi)
{
	return -ENOSYS;
}

static int uffd_unregister(int fd, uintptr_t lo, uintptr_t hi)
{
	return -ENOSYS;
}

static int uffd_zeropage(int fd, uintptr_t vpn)
{
	return -ENOSYS;
}

static int uffd_copy(int fd, uintptr_t vpn, const void *buf)
{
	return -ENOSYS;
}

#endif

static void reregister(uintptr_t lo, uintptr_t hi, void *arg)
{
	int *failed = arg;
	if (uffd_register(ufd.fd, lo, hi) != 0)
		(*failed)++;
}

/*
 * After the program closed the library's userfaultfd: every optimistic
 * page of the registered run [lo, hi) (registered again by now) counts as
 * lost and is dropped. Nothing can tell a page the kernel discarded and a
 * read then filled with zeros, unregistered, from one that survived; the
 * loss is recorded before the drop, so that an unmark never says intact,
 * and the next touch of each page faults and refills it.
 */
static int drop_seg(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t todo = vr_seg_get(seg, VR_PG_OPT) & vr_seg_get(seg, VR_PG_VOL);
	unsigned i, n;
	if (todo)
		vr_seg_change_locked(seg, VR_PG_LOST, todo, true);
	while ((n = vr_bits_take_run(&todo, &i)) != 0)
		vr_madvise(vr_addr(seg->vpn + i), vr_addr(n), MADV_DONTNEED);
	return 0;
}

static void drop_optimistic(uintptr_t lo, uintptr_t hi, void *arg)
{
	(void)arg;
	vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, drop_seg, NULL);
}

/*
 * The userfaultfd to register with or settle through (registry lock held,
 * or the single thread of a fork child): the one kept if it is still ours,
 * else a new one, with every registered run registered on it again (the
 * kernel unregistered them when the old one was closed). A descriptor
 * number that is not ours any more is forgotten, never closed.
 */
static int uffd_get_locked(void)
{
	if (vr_fd_ours(&ufd))
		return ufd.fd;
	bool lost = ufd.fd >= 0;
	vr_fd_forget(&ufd);
	char why[128];
	int fd = uffd_create(uffd_flags, why, sizeof why);
	if (fd < 0 || vr_fd_keep(&ufd, fd) != 0) {
		vr_warn("cannot open a userfaultfd: %s", fd < 0 ? why : "no descriptor");
		return fd < 0 ? fd : -EMFILE;
	}
	if (lost) {
		/* Registered first, then dropped: a touch in between faults. */
		int failed = 0;
		vr_registry_each_reg_locked(reregister, &failed);
		vr_registry_each_reg_locked(drop_optimistic, NULL);
		vr_debug("the program closed the library's userfaultfd: a new one; "
		         "optimistic pages count as lost; %d registered runs could "
		         "not be registered again", failed);
		if (failed)
			vr_warn("%d registered runs could not be registered again", failed);
	}
	return ufd.fd;
}

/* Registers the pages of [lo, hi) that are not registered yet, in runs,
 * with ufd (uffd_get_locked just checked it). */
static int register_seg(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	uint64_t todo = ~vr_seg_get(seg, VR_PG_REG) & vr_seg_all(seg);
	unsigned i, n;
	while ((n = vr_bits_take_run(&todo, &i)) != 0) {
		uintptr_t a = seg->vpn + i;
		/* ENOMEM here is vm.max_map_count: registering part of a
		 * mapping splits it. */
		int r = uffd_register(ufd.fd, a, a + n);
		if (r != 0)
			return r;
		vr_seg_change_locked(seg, VR_PG_REG, vr_bits_run(i, n), true);
	}
	return 0;
}

static int register_range_locked(uintptr_t lo, uintptr_t hi)
{
	return vr_registry_each_seg_locked(lo, hi, VR_SEG_CREATE, register_seg, NULL);
}

/*
 * The kind first: a reader never sees an optimistic page as explicit. No
 * cookie ("bare"); lost too where the memory was read-only (*arg). Pages
 * already known lost (a re-mark) hold the zeros their settle put there:
 * dropped again, so that reading one faults and refills instead of
 * returning those zeros in silence.
 */
static int make_opt(const vr_seg_t *seg, void *arg)
{
	bool ro = *(const bool *)arg;
	uint64_t all = vr_seg_all(seg);
	vr_seg_change_locked(seg, VR_PG_OPT, all, true);
	vr_seg_set_locked(seg, all, ro ? all : 0, all);
	uint64_t todo = ro ? 0 : vr_seg_get(seg, VR_PG_LOST);
	unsigned i, n;
	while ((n = vr_bits_take_run(&todo, &i)) != 0)
		vr_madvise(vr_addr(seg->vpn + i), vr_addr(n), MADV_DONTNEED);
	return 0;
}

static int uffd_opt_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	/* The descriptor first, checked: if the program closed it, the
	 * kernel unregistered every run, the pages of this range that look
	 * registered included, and a new one registers them again. */
	int r = uffd_get_locked();
	if (r < 0)
		return r;
	/* Explicit volatile pages give their cookies back first (loss kept);
	 * done before registering, so that settling a discarded page takes
	 * an ordinary fault rather than our SIGBUS. */
	vr_backend_cookie.resolve(lo, hi);
	r = register_range_locked(lo, hi);
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
	return vr_registry_each_seg_locked(lo, hi, VR_SEG_STATE, make_opt, &ro);
}

/* Settles the run of n optimistic pages from page first of seg (see
 * optimistic.h). */
static void settle_run(const vr_seg_t *seg, unsigned first, unsigned n)
{
	unsigned char vec[VR_LEAF_PAGES];
	uintptr_t a = seg->vpn + first;
	int fd = uffd_get_locked();
	if (vr_mincore(vr_addr(a), vr_addr(n), vec) != 0)
		memset(vec, 0, sizeof vec);
	for (size_t i = 0; i < n; i++) {
		if (vec[i] & 1)
			continue;
		/* Gone (or never touched): zeros, and lost. EEXIST means a
		 * refill got there first, and it recorded the loss. */
		if (uffd_zeropage(fd, a + i) == 0)
			vr_seg_change_locked(seg, VR_PG_LOST, 1ull << (first + i), true);
	}
	if (vr_madvise(vr_addr(a), vr_addr(n), MADV_POPULATE_WRITE) != 0) {
		/* A page was discarded after mincore looked: page by page. */
		for (size_t i = 0; i < n; i++) {
			while (vr_madvise(vr_addr(a + i), vr_page_size,
			                  MADV_POPULATE_WRITE) == -EFAULT) {
				if (uffd_zeropage(fd, a + i) == 0)
					vr_seg_change_locked(seg, VR_PG_LOST,
					                     1ull << (first + i), true);
			}
		}
	}
	/* Every page is present and written now: the registration goes, so
	 * that memory that is no longer optimistic behaves as without the
	 * library, system calls on it included (a registered page an
	 * allocator gave back with MADV_DONTNEED would make read(2) into it
	 * fail with EFAULT), and its mapping can merge again. */
	if (uffd_unregister(fd, a, a + n) == 0)
		vr_seg_change_locked(seg, VR_PG_REG, vr_bits_run(first, n), false);
}

static void uffd_opt_settle(uintptr_t lo, uintptr_t hi)
{
	vr_opt_settle_runs_locked(lo, hi, settle_run);
}

static void uffd_atfork_child(void)
{
	if (ufd.fd < 0)
		return;    /* never opened: nothing is registered */
	/* The inherited descriptor still acts on the parent's memory: a copy
	 * through it would write into the parent. Closed only if it is still
	 * ours: the number may be the program's file now. */
	vr_fd_drop(&ufd);
	char why[128];
	int fd = uffd_create(uffd_flags, why, sizeof why);
	if (fd < 0 || vr_fd_keep(&ufd, fd) != 0) {
		vr_warn("fork: cannot open a userfaultfd in the child (%s): optimistic "
		        "ranges read zeros here instead of faulting",
		        fd < 0 ? why : "no descriptor");
		return;
	}
	int failed = 0;
	vr_registry_each_reg_locked(reregister, &failed);
	if (failed)
		vr_warn("fork: %d registered runs could not be registered again", failed);
}

static __thread void *scratch __attribute__((tls_model("initial-exec")));

static void *scratch_page(void)
{
	if (!scratch)
		scratch = vr_mmap_anon(vr_page_size);
	return scratch;
}

/* The fault path (signal handler context): a SIGBUS on a registered page. */
static vr_fault_verdict_t uffd_fault(int sig, siginfo_t *si, vr_fault_t *f)
{
	if (sig != SIGBUS)
		return VR_FAULT_DECLINE;
	/* Checked, not trusted: never an ioctl on a file of the program's. */
	int fd = vr_fd_get_raw(&ufd);
	uintptr_t vpn = vr_vpn((uintptr_t)si->si_addr);
	bool handled = false;
	vr_fault_verdict_t v = VR_FAULT_DECLINE;
	vr_page_bits_t b;
	vr_registry_read_begin();
	if (!vr_registry_bits(vpn, &b) || !b.reg)
		goto out;          /* not a page of ours: a real SIGBUS */
	if (!(b.vol && b.opt)) {
		/* Registered but not optimistic now: a page never touched,
		 * or dropped by the application. Zeros, as without us. */
		int r = uffd_zeropage(fd, vpn);
		handled = r == 0 || r == -EEXIST;
		goto out;
	}
	vr_stat_add(VR_STAT_SIGBUS, 1);
	vrange_refill_fn fn;
	void *arg;
	if (vr_refill_lookup(vpn, &fn, &arg) && fn) {
		bool claimed;
		if (!vr_opt_claim(vpn, &claimed)) {
			/* Another thread is filling this page: retry the
			 * access, which waits until the page is there. */
			sched_yield();
			handled = true;
			goto out;
		}
		/* This fault may have been raised before another thread
		 * installed the page and let go of it: under registration a
		 * present page was put there by us, so just retry. */
		unsigned char here = 0;
		if (vr_mincore(vr_addr(vpn), vr_page_size, &here) == 0 && (here & 1)) {
			vr_opt_unclaim(vpn, claimed);
			handled = true;
			goto out;
		}
		void *buf = scratch_page();
		if (buf && fn((void *)vr_addr(vpn), buf, vr_page_size, arg) == 0) {
			int r = uffd_copy(fd, vpn, buf);
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
		vr_opt_unclaim(vpn, claimed);
		if (handled)
			goto out;
	}
	/* The kernel's own SIGBUS, which the access raises again. */
	v = vr_opt_purged(vpn, sig, si, true, f);
out:
	vr_registry_read_end();
	return handled ? VR_FAULT_RETRY : v;
}

static int uffd_probe(char *why, size_t len)
{
	char cookie_why[160];
	int r = vr_backend_cookie.probe(cookie_why, sizeof cookie_why);
	if (r != 0) {
		snprintf(why, len, "%s", cookie_why);
		return r;
	}
	return uffd_open_probe(why, len);
}

static int uffd_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	return vr_backend_cookie.mark(lo, hi, vma_kind);
}

static ssize_t uffd_unmark(uintptr_t lo, uintptr_t hi, int vma_kind,
                           unsigned char *vec)
{
	return vr_backend_cookie.unmark(lo, hi, vma_kind, vec);
}

static void uffd_resolve(uintptr_t lo, uintptr_t hi)
{
	vr_backend_cookie.resolve(lo, hi);
}

const vr_backend_t vr_backend_uffd = {
	.name = "uffd",
	.probe = uffd_probe,
	.mark = uffd_mark,
	.unmark = uffd_unmark,
	.resolve = uffd_resolve,
	.opt_mark = uffd_opt_mark,
	.opt_settle = uffd_opt_settle,
	.opt_fault = uffd_fault,
	.atfork_child = uffd_atfork_child,
};
