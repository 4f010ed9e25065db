/*
 * interpose.c - libvrange's own mmap, munmap, mremap, mprotect,
 * pkey_mprotect and mlock family, so that the library learns of every change to the mappings that
 * hold volatile ranges (R8).
 *
 * libvrange.so defines these symbols; a program linked with -lvrange (or
 * with the library preloaded) resolves them here before libc. Each calls the
 * kernel directly, then:
 *  - munmap forgets the volatile pages it removed;
 *  - mmap forgets any state at the addresses it returns: a new mapping is
 *    never touched by the library, even where a stale range was (one that
 *    went away by a path we did not see);
 *  - mremap moves the volatile state with the pages (their cookies moved
 *    with them) and forgets what was cut off;
 *  - mprotect and pkey_mprotect settle the cookies of volatile pages that
 *    are about to stop being read-write, so that no later operation writes
 *    there;
 *  - every one of them invalidates the mapping cache of vma.c.
 * Calls made by raw system calls, or by glibc internally (its malloc unmaps
 * freed chunks by an internal call), are not seen; see vrange(3).
 *
 * The registry lock is taken only where volatile state exists in the range,
 * found by a lock-free lookup, so that ordinary mapping traffic does not
 * contend. errno is set as libc's functions set it.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "backend.h"
#include "glue.h"
#include "init.h"
#include "registry.h"
#include "stats.h"
#include "vma.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static uintptr_t pages_up(size_t len)
{
	return (len + vr_page_size - 1) >> vr_page_shift;
}

/* Forgets the volatile state of [addr, addr + len). */
static void forget(uintptr_t addr, size_t len)
{
	if (!vr_ready() || len == 0)
		return;
	uintptr_t lo = vr_vpn(addr), hi = lo + pages_up(len);
	if (!vr_registry_any(lo, hi))
		return;
	vr_registry_lock();
	size_t n = vr_registry_forget_locked(lo, hi);
	vr_registry_unlock();
	vr_stat_add(VR_STAT_DROPPED, n);
}

static long result(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

VRANGE_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = vr_mmap_raw(addr, len, prot, flags, fd, (long)off);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	vr_vma_invalidate();
	if (flags & MAP_LOCKED)
		vr_vma_note_locking();
	forget((uintptr_t)r, len);
	return (void *)r;
}

VRANGE_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

VRANGE_EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	bool ours = vr_ready() && len && !(a & (vr_page_size - 1)) &&
	            vr_registry_any(vr_vpn(a), vr_vpn(a) + pages_up(len));
	if (!ours) {
		long r = vr_munmap_sys(addr, len);
		vr_vma_invalidate();
		return (int)result(r);
	}
	/* Unmap and forget under the lock: a thread that maps the same
	 * addresses next cannot mark them before the old state is gone. */
	vr_registry_lock();
	long r = vr_munmap_sys(addr, len);
	size_t n = 0;
	if (r == 0)
		n = vr_registry_forget_locked(vr_vpn(a), vr_vpn(a) + pages_up(len));
	vr_registry_unlock();
	vr_vma_invalidate();
	vr_stat_add(VR_STAT_DROPPED, n);
	return (int)result(r);
}

VRANGE_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *want = NULL;
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
		va_list ap;
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	uintptr_t o = (uintptr_t)old;
	bool ours = vr_ready() && old_len && !(o & (vr_page_size - 1)) &&
	            vr_registry_any(vr_vpn(o), vr_vpn(o) + pages_up(old_len));
	if (ours)
		vr_registry_lock();
	long r = vr_mremap_raw(old, old_len, new_len, flags, want);
	vr_vma_invalidate();
	if (r < 0 && r > -4096) {
		if (ours)
			vr_registry_unlock();
		errno = (int)-r;
		return MAP_FAILED;
	}
	uintptr_t n = (uintptr_t)r;
	if (!ours) {
		/* Nothing volatile moved: only stale state at the result. */
		forget(n, new_len);
		return (void *)r;
	}
	uintptr_t olo = vr_vpn(o), ohi = olo + pages_up(old_len);
	uintptr_t nlo = vr_vpn(n), nhi = nlo + pages_up(new_len);
	uintptr_t keep = ohi - olo < nhi - nlo ? ohi - olo : nhi - nlo;
	size_t dropped = 0;
	if (nlo != olo) {
		/* Whatever was volatile where the pages land is replaced. */
		dropped += vr_registry_forget_locked(nlo, nlo + keep);
		vr_registry_move_locked(olo, nlo, keep);
	}
	/* What was cut off the old mapping, and what is new in the result. */
	dropped += vr_registry_forget_locked(olo + keep, ohi);
	dropped += vr_registry_forget_locked(nlo + keep, nhi);
	vr_registry_unlock();
	vr_stat_add(VR_STAT_DROPPED, dropped);
	return (void *)r;
}

/* mprotect and pkey_mprotect (pkey -1: mprotect itself). */
static int protect(void *addr, size_t len, int prot, int pkey)
{
	uintptr_t a = (uintptr_t)addr;
	bool rw = (prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE);
	bool ours = !rw && vr_ready() && len && !(a & (vr_page_size - 1)) &&
	            vr_registry_any(vr_vpn(a), vr_vpn(a) + pages_up(len));
	if (ours) {
		/* Settle the cookies while the pages are still writable. */
		vr_registry_lock();
		vr_backend_cur->resolve(vr_vpn(a), vr_vpn(a) + pages_up(len));
	}
	long r = pkey == -1 ? vr_mprotect_raw((uintptr_t)addr, len, prot)
	                    : vr_pkey_mprotect_raw((uintptr_t)addr, len, prot, pkey);
	if (ours)
		vr_registry_unlock();
	vr_vma_invalidate();
	return (int)result(r);
}

VRANGE_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	return protect(addr, len, prot, -1);
}

/* glibc's pkey_mprotect makes the system call itself, past our mprotect:
 * a volatile range made read-only through it kept its cookies, and the
 * next unmark wrote them back into a read-only page (issue 17, item 9). */
VRANGE_EXPORT int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	return protect(addr, len, prot, pkey);
}

/* Locking changes what MADV_FREE accepts: only the cache is affected. */
VRANGE_EXPORT int mlock(const void *addr, size_t len)
{
	long r = vr_mlock_raw(addr, len, -1);
	vr_vma_invalidate();
	vr_vma_note_locking();
	return (int)result(r);
}

VRANGE_EXPORT int mlock2(const void *addr, size_t len, unsigned int flags)
{
	long r = vr_mlock_raw(addr, len, (int)flags);
	vr_vma_invalidate();
	vr_vma_note_locking();
	return (int)result(r);
}

VRANGE_EXPORT int munlock(const void *addr, size_t len)
{
	long r = vr_munlock_raw(addr, len);
	vr_vma_invalidate();
	return (int)result(r);
}

VRANGE_EXPORT int mlockall(int flags)
{
	long r = vr_mlockall_raw(flags);
	vr_vma_invalidate();
	vr_vma_note_locking();
	return (int)result(r);
}

VRANGE_EXPORT int munlockall(void)
{
	long r = vr_munlockall_raw();
	vr_vma_invalidate();
	return (int)result(r);
}
