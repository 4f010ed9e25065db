/*
 * glue.h - the only place that knows how the core talks to the kernel.
 *
 * Every system call the core makes goes through these wrappers, which call
 * the kernel directly (syscall(2)) rather than the libc functions of the same
 * name: libvrange interposes mmap, munmap, mremap, mprotect and the mlock
 * family (interpose.c), so calling them by name from inside would recurse.
 * Each wrapper returns 0 (or a value) on success and a negative errno on
 * failure, and leaves errno untouched, so that paths reachable from malloc,
 * free or a signal handler preserve the caller's errno.
 */
#ifndef VR_GLUE_H
#define VR_GLUE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* Raw system call returning the kernel's value: >= 0 or -errno. */
static inline long vr_sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	int saved = errno;
	long r = syscall(nr, a, b, c, d, e, f);
	if (r == -1) {
		r = -errno;
		errno = saved;
	}
	return r;
}

static inline int vr_madvise(uintptr_t addr, size_t len, int advice)
{
	return (int)vr_sys6(SYS_madvise, (long)addr, (long)len, advice, 0, 0, 0);
}

static inline int vr_mincore(uintptr_t addr, size_t len, unsigned char *vec)
{
	return (int)vr_sys6(SYS_mincore, (long)addr, (long)len, (long)vec, 0, 0, 0);
}

/* mmap for the library's own metadata: anonymous, private, read-write. */
static inline void *vr_mmap_anon(size_t len)
{
	long r = vr_sys6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return r < 0 && r > -4096 ? NULL : (void *)r;
}

static inline int vr_munmap_raw(void *addr, size_t len)
{
	return (int)vr_sys6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
}

static inline ssize_t vr_write(int fd, const void *buf, size_t len)
{
	return vr_sys6(SYS_write, fd, (long)buf, (long)len, 0, 0, 0);
}

static inline ssize_t vr_read(int fd, void *buf, size_t len)
{
	return vr_sys6(SYS_read, fd, (long)buf, (long)len, 0, 0, 0);
}

static inline int vr_open_ro(const char *path)
{
	return (int)vr_sys6(SYS_openat, -100 /* AT_FDCWD */, (long)path,
	                    0 /* O_RDONLY */ | 02000000 /* O_CLOEXEC */, 0, 0, 0);
}

/* Opens path to append to, creating it (mode 0666 less the umask). */
static inline int vr_open_append(const char *path)
{
	return (int)vr_sys6(SYS_openat, -100 /* AT_FDCWD */, (long)path,
	                    01 /* O_WRONLY */ | 0100 /* O_CREAT */ | 02000 /* O_APPEND */ |
	                    02000000 /* O_CLOEXEC */, 0666, 0, 0);
}

static inline int vr_close(int fd)
{
	return (int)vr_sys6(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* struct stat is the kernel's on x86-64 and arm64 (fstat and newfstatat). */
struct stat;
static inline int vr_fstat(int fd, struct stat *st)
{
#ifdef SYS_fstat
	return (int)vr_sys6(SYS_fstat, fd, (long)st, 0, 0, 0, 0);
#else
	return (int)vr_sys6(SYS_newfstatat, fd, (long)"", (long)st, 0x1000 /* AT_EMPTY_PATH */, 0, 0);
#endif
}

static inline int vr_ioctl(int fd, unsigned long req, void *arg)
{
	return (int)vr_sys6(SYS_ioctl, fd, (long)req, (long)arg, 0, 0, 0);
}

/*
 * The mapping calls themselves, not libvrange's interposed ones
 * (interpose.c, whose own work they are): each returns the kernel's value
 * (an address, 0, or a negative errno).
 */
static inline long vr_mmap_raw(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return vr_sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
}

static inline long vr_munmap_sys(void *addr, size_t len)
{
	return vr_sys6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
}

static inline long vr_mremap_raw(void *old, size_t old_len, size_t new_len, int flags,
                                 void *new_addr)
{
	return vr_sys6(SYS_mremap, (long)old, (long)old_len, (long)new_len, flags,
	               (long)new_addr, 0);
}

static inline long vr_mprotect_raw(uintptr_t addr, size_t len, int prot)
{
	return vr_sys6(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0);
}

static inline long vr_pkey_mprotect_raw(uintptr_t addr, size_t len, int prot, int pkey)
{
#ifdef SYS_pkey_mprotect
	return vr_sys6(SYS_pkey_mprotect, (long)addr, (long)len, prot, pkey, 0, 0);
#else
	(void)addr, (void)len, (void)prot, (void)pkey;
	return -ENOSYS;
#endif
}

/* mlock (flags < 0), mlock2 (flags >= 0), munlock, mlockall, munlockall. */
static inline long vr_mlock_raw(const void *addr, size_t len, int flags)
{
	return flags < 0 ? vr_sys6(SYS_mlock, (long)addr, (long)len, 0, 0, 0, 0)
	                 : vr_sys6(SYS_mlock2, (long)addr, (long)len, flags, 0, 0, 0);
}

static inline long vr_munlock_raw(const void *addr, size_t len)
{
	return vr_sys6(SYS_munlock, (long)addr, (long)len, 0, 0, 0, 0);
}

static inline long vr_mlockall_raw(int flags)
{
	return vr_sys6(SYS_mlockall, flags, 0, 0, 0, 0, 0);
}

static inline long vr_munlockall_raw(void)
{
	return vr_sys6(SYS_munlockall, 0, 0, 0, 0, 0, 0);
}

static inline int vr_userfaultfd(int flags)
{
	return (int)vr_sys6(SYS_userfaultfd, flags, 0, 0, 0, 0, 0);
}

static inline int vr_fcntl(int fd, int cmd, long arg)
{
	return (int)vr_sys6(SYS_fcntl, fd, cmd, arg, 0, 0, 0);
}

/* getrlimit(2) by prlimit64 on this process. */
struct rlimit;
static inline int vr_getrlimit(int resource, struct rlimit *rl)
{
	return (int)vr_sys6(SYS_prlimit64, 0, resource, 0, (long)rl, 0, 0);
}

/* rt_sigprocmask with the kernel's mask size: works in a signal handler. */
static inline void vr_sigmask_raw(int how, const void *set, void *old, size_t size)
{
	vr_sys6(SYS_rt_sigprocmask, how, (long)set, (long)old, (long)size, 0, 0);
}

/* Sends sig with *si to the calling thread only (a handler re-raising). */
static inline void vr_raise_info(int sig, void *si)
{
	long pid = vr_sys6(SYS_getpid, 0, 0, 0, 0, 0, 0);
	long tid = vr_sys6(SYS_gettid, 0, 0, 0, 0, 0, 0);
	vr_sys6(SYS_rt_tgsigqueueinfo, pid, tid, sig, (long)si, 0, 0);
}

/* The v10 patch's vrange system call (x86-64 number 314 there; on a stock
 * kernel 314 is sched_setattr, which the native probe tells apart). */
#if defined(__x86_64__)
#define NR_VRANGE 314
static inline long vr_vrange_raw(uintptr_t start, size_t len, int mode, int *purged)
{
	return vr_sys6(NR_VRANGE, (long)start, (long)len, mode, (long)purged, 0, 0);
}
#endif

static inline long vr_getrandom(void *buf, size_t len)
{
	return vr_sys6(SYS_getrandom, (long)buf, (long)len, 0, 0, 0, 0);
}

#endif /* VR_GLUE_H */
