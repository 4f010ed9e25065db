/*
 * vma.h - is a range memory that MADV_FREE (and a purge cookie) can take?
 *
 * Before the core writes a single cookie it must know that every page of the
 * range is mapped, private and anonymous (a cookie written into a shared or
 * file mapping would change what others see), so that a call that fails
 * changes nothing. vr_vma_check_locked answers from a small cache of
 * validated mappings, tagged with a generation that the interposed mmap,
 * munmap, mremap, mprotect and mlock family bump; a miss asks the kernel
 * (PROCMAP_QUERY on /proc/self/maps, Linux >= 6.11, else by parsing the
 * file).
 */
#ifndef VR_VMA_H
#define VR_VMA_H

#include <stdbool.h>
#include <stdint.h>

/* Every page is private, anonymous and writable. */
#define VR_VMA_OK 0
/* Every page is private and anonymous, but some are not writable. */
#define VR_VMA_READONLY 1

/*
 * Checks [a, b) (addresses, page aligned, a < b). Returns VR_VMA_OK,
 * VR_VMA_READONLY, or the negative errno madvise(MADV_FREE) would give:
 * -EINVAL for a mapping it cannot take (shared, file-backed, hugetlb,
 * special, mlocked), else -ENOMEM if part of the range is not mapped.
 * Called with the registry lock held.
 */
int vr_vma_check_locked(uintptr_t a, uintptr_t b);

/* The process's mappings changed: forget every cached answer.
 * Async-signal-safe (one atomic increment). */
void vr_vma_invalidate(void);

/*
 * The process locked memory (mlock, mlock2, mlockall, MAP_LOCKED). Neither
 * PROCMAP_QUERY nor /proc/self/maps shows VM_LOCKED, so from then on cache
 * misses read /proc/self/smaps, whose VmFlags do. Async-signal-safe.
 */
void vr_vma_note_locking(void);

/* Child side of fork: the descriptor of /proc/self/maps names the parent. */
void vr_vma_atfork_child(void);

/* Tests: use the /proc/self/maps parser even where PROCMAP_QUERY works. */
void vr_vma_force_maps_file(bool on);

/* How validation is done: "procmap_query" or "maps file" (statistics). */
const char *vr_vma_method(void);

#endif /* VR_VMA_H */
