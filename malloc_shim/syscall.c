/*
 * syscall.c - the v10 system-call compatibility mode of the preload:
 * libc's syscall(2), interposed, answers number 314 as the vrange system
 * call of the v10 kernel patch when VRANGE_SYSCALL_COMPAT=1, so that
 * programs written for the patched kernel (its tests, its patched jemalloc)
 * run unmodified on a stock one.
 *
 * Entry point (exported, x86-64 only): syscall.
 *
 * syscall(314, start, len, mode, purged) becomes vrange(start, len, mode,
 * purged), with syscall()'s return convention, which is vrange's own: the
 * byte count, or -1 and errno; VRANGE_VOLATILE makes an optimistic range
 * (v10_vrange says why). 314 is answered only when the option is on,
 * the library is initialised (the preload's constructor does it; a call
 * from an earlier constructor passes through) and the backend is not
 * "native": a kernel that really has the call answers it itself, and the
 * native backend's own calls of 314 must reach the kernel. Off by default
 * because on every stock kernel since 3.14, 314 is sched_setattr.
 *
 * Every other number goes to the kernel by the syscall instruction itself
 * rather than to libc's syscall found with dlsym(RTLD_NEXT): this function
 * runs inside malloc and free (the core's system-call wrappers in glue.h
 * call syscall(), and in this library they bind here), from signal handlers
 * and before any constructor, where dlsym may allocate or take the loader's
 * lock, and libc's syscall() is itself nothing more than the instruction
 * (it is not a cancellation point and does no translation). Like libc's,
 * the function takes six arguments whatever the number needs: the unused
 * ones are whatever the registers hold.
 */
#include "internal.h"

#if defined(__x86_64__)

#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "backend.h"
#include "init.h"
#include "options.h"
#include "vrange.h"

/* The x86-64 number of the v10 patch's vrange call. */
#define NR_V10_VRANGE 314

static inline long raw_syscall6(long nr, long a, long b, long c, long d, long e,
                                long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	/* The instruction clobbers rcx (return address) and r11 (flags). */
	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return ret;
}

static bool compat_answers(void)
{
	return vr_ready() && opt_syscall_compat && vr_backend_cur != &vr_backend_native;
}

/*
 * The v10 call. Its volatile memory may be read: a surviving page keeps
 * its bytes and a purged one raises SIGBUS, whose handler may unmark it
 * (the patch's "optimistic method"). That is an optimistic range here, not
 * an explicit one, whose pages hold a purge cookie while volatile and read
 * as zeros, without a fault, once purged. Unmarking is vrange's own.
 */
static long v10_vrange(void *start, size_t len, int mode, int *purged)
{
	if (mode != VRANGE_VOLATILE)
		return (long)vrange(start, len, mode, purged);
	if (vrange_mark_volatile(start, len, VRANGE_OPTIMISTIC) != 0)
		return -1;
	/* The bytes processed: len rounded up to pages (vrange_mark_volatile
	 * refused a length that overflows when rounded). */
	size_t ps = vr_page_size;
	return (long)((len + ps - 1) & ~(ps - 1));
}

VRANGE_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
	long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
	va_end(ap);
	if (__builtin_expect(nr == NR_V10_VRANGE, 0) && compat_answers())
		return v10_vrange((void *)a, (size_t)b, (int)c, (int *)d);
	long r = raw_syscall6(nr, a, b, c, d, e, f);
	if ((unsigned long)r > -4096UL) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

#endif /* __x86_64__ */
