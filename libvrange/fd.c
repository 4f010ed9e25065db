/*
 * fd.c - kept descriptors: high, close-on-exec, checked before use (fd.h).
 *
 * Entry points: vr_fd_floor, vr_fd_keep, vr_fd_ours, vr_fd_get_raw,
 * vr_fd_drop, vr_fd_forget.
 */
#include "internal.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "fd.h"
#include "glue.h"

#define FLOOR_HIGH 1024

int vr_fd_floor(void)
{
	struct rlimit rl;
		if (vr_getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return FLOOR_HIGH;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= 2 * FLOOR_HIGH)
		return FLOOR_HIGH;
	/* A low limit (ulimit -n 64): half of it, and never among 0-2. */
	return rl.rlim_cur / 2 > 3 ? (int)(rl.rlim_cur / 2) : 3;
}

static bool identity(int fd, uint64_t *dev, uint64_t *ino)
{
	struct stat st;
	if (fd < 0 || vr_fstat(fd, &st) != 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

int vr_fd_keep(vr_fd_t *k, int fd)
{
	k->fd = -1;
	/* F_DUPFD_CLOEXEC gives the lowest free number at or above the
	 * floor; if every one is taken up to the limit, the original (low,
	 * but close-on-exec and checked like any other) is better than
	 * nothing. */
	int hi = vr_fcntl(fd, F_DUPFD_CLOEXEC, vr_fd_floor());
	if (hi >= 0) {
		vr_close(fd);
		fd = hi;
	} else {
		vr_fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	if (!identity(fd, &k->dev, &k->ino)) {
		vr_close(fd);
		return -EBADF;
	}
	k->fd = fd;
	return 0;
}

int vr_fd_get_raw(const vr_fd_t *k)
{
	uint64_t dev, ino;
	int fd = __atomic_load_n(&k->fd, __ATOMIC_ACQUIRE);
	return identity(fd, &dev, &ino) && dev == k->dev && ino == k->ino ? fd : -1;
}

bool vr_fd_ours(const vr_fd_t *k)
{
	return vr_fd_get_raw(k) >= 0;
}

void vr_fd_drop(vr_fd_t *k)
{
	if (vr_fd_ours(k))
		vr_close(k->fd);
	vr_fd_forget(k);
}

void vr_fd_forget(vr_fd_t *k)
{
	__atomic_store_n(&k->fd, -1, __ATOMIC_RELEASE);
}
