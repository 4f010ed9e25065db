/*
 * fd.h - the descriptors the library keeps open across calls (the
 * userfaultfd, /proc/self/maps), and the rules they live by.
 *
 * Descriptor numbers belong to the program. A kept descriptor is opened
 * only when first needed, moved to a high number (F_DUPFD_CLOEXEC from a
 * floor well above what programs use, see vr_fd_floor), close-on-exec, and
 * its identity (device and inode, which the kernel gives each userfaultfd
 * and each open /proc file its own of) is kept beside the number. Before
 * every use that reaches the kernel (an ioctl, a close, a read), the number
 * is checked to still name that file: daemons close every descriptor above
 * 2 (close_range, closefrom), and a program that then opens a file may get
 * our old number. A descriptor that is not ours any more is forgotten,
 * never closed, and the caller opens a new one.
 *
 * Thread- and async-signal-safe: vr_fd_ours and vr_fd_get_raw make raw
 * system calls only. vr_fd_keep and vr_fd_drop change the record: the
 * caller serialises them (the registry lock, or the single thread of a
 * fork child).
 */
#ifndef VR_FD_H
#define VR_FD_H

#include <stdbool.h>
#include <stdint.h>

typedef struct vr_fd_s {
	int fd;            /* -1: none */
	uint64_t dev, ino; /* identity at the time it was kept */
} vr_fd_t;

#define VR_FD_NONE { -1, 0, 0 }

/* The lowest number a kept descriptor takes: 1024 where the soft limit of
 * descriptors allows twice that (out of reach of select(2)'s FD_SETSIZE,
 * above what shells and test harnesses use: bash takes 255 and down),
 * else half the limit. */
int vr_fd_floor(void);

/* Takes fd (just opened by the caller) into k: moves it to vr_fd_floor()
 * or above, close-on-exec, and records its identity. The original number
 * is closed in every case. 0, or a negative errno with k left empty. */
int vr_fd_keep(vr_fd_t *k, int fd);

/* Is k's number still the file it was kept for? */
bool vr_fd_ours(const vr_fd_t *k);

/* k's number if it is still ours, else -1. A record whose number was taken
 * over is left as it is: the caller decides (vr_fd_forget, then reopen). */
int vr_fd_get_raw(const vr_fd_t *k);

/* Closes k's descriptor if it is still ours, and empties k. */
void vr_fd_drop(vr_fd_t *k);

/* Empties k without closing anything (the number is the program's now). */
void vr_fd_forget(vr_fd_t *k);

#endif /* VR_FD_H */
