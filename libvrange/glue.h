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

static inline long vr_getrandom(void *buf, size_t len)
{
	return vr_sys6(SYS_getrandom, (long)buf, (long)len, 0, 0, 0, 0);
}

#endif /* VR_GLUE_H */
