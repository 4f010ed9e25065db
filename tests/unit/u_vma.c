/*
 * u_vma - mapping validation, by PROCMAP_QUERY and by the maps-file parser:
 * both must give madvise(MADV_FREE)'s answer for every kind of mapping, and
 * no answer may outlive a change to the mappings.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "init.h"
#include "registry.h"
#include "vma.h"
#include "../testutil.h"

/* Kilobytes of locked memory (VmLck of /proc/self/status). */
static long locked_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmLck: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void changed(void)
{
	vr_vma_invalidate();
}

static int check(void *p, size_t len)
{
	vr_registry_lock();
	int r = vr_vma_check_locked((uintptr_t)p, (uintptr_t)p + len);
	vr_registry_unlock();
	return r;
}

static void run(const char *method)
{
	size_t ps = tu_pagesize();
	unsigned char *rw = tu_map(4);
	tap_is(check(rw, 4 * ps), VR_VMA_OK, "%s: private anonymous rw", method);

	unsigned char *ro = tu_map(2);
	mprotect(ro + ps, ps, PROT_READ);
	changed();
	tap_is(check(ro, 2 * ps), VR_VMA_READONLY, "%s: rw + read-only pages", method);
	tap_is(check(ro, ps), VR_VMA_OK, "%s: the rw page alone (cache split)", method);

	void *sh = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	tap_is(check(sh, ps), -EINVAL, "%s: shared anonymous", method);

	char path[] = "/tmp/u_vma.XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	if (ftruncate(fd, (off_t)ps) != 0)
		tap_diag("ftruncate failed");
	void *fp = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	tap_is(check(fp, ps), -EINVAL, "%s: private file mapping", method);

	unsigned char *h = tu_map(3);
	munmap(h + ps, ps);
	changed();
	tap_is(check(h, 3 * ps), -ENOMEM, "%s: hole in the middle", method);
	tap_is(check(h + ps, ps), -ENOMEM, "%s: wholly unmapped", method);

	/* A hole before a mapping madvise refuses: EINVAL wins. */
	unsigned char *m = tu_map(3);
	munmap(m + ps, ps);
	mmap(m + 2 * ps, ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	changed();
	tap_is(check(m, 3 * ps), -EINVAL, "%s: hole then a file mapping", method);

	void *vdso = (void *)getauxval(AT_SYSINFO_EHDR);
	if (vdso)
		tap_is(check(vdso, ps), -EINVAL, "%s: the vdso", method);
	else
		tap_ok(1, "%s: no vdso here", method);

	/* The cache must not outlive munmap or mmap over the range. */
	unsigned char *c = tu_map(2);
	tap_is(check(c, 2 * ps), VR_VMA_OK, "%s: cached", method);
	munmap(c, 2 * ps);
	changed();
	tap_is(check(c, 2 * ps), -ENOMEM, "%s: after munmap", method);
	mmap(c, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	changed();
	tap_is(check(c, 2 * ps), -EINVAL, "%s: after a file mapping replaced it", method);
	mmap(c, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	changed();
	tap_is(check(c, 2 * ps), VR_VMA_OK, "%s: anonymous again", method);

	munmap(rw, 4 * ps);
	munmap(ro, 2 * ps);
	munmap(sh, ps);
	munmap(fp, ps);
	munmap(h, 3 * ps);
	munmap(m, 3 * ps);
	munmap(c, 2 * ps);
	close(fd);
}

int main(void)
{
	vr_init();
	run("procmap_query");
	tap_diag("first method in use: %s", vr_vma_method());
	vr_vma_force_maps_file(true);
	run("maps file");
	vr_vma_force_maps_file(false);

	/* Last: once the process locks memory, validation reads smaps. */
	size_t ps = tu_pagesize();
	/* An mlocked page: seen only through smaps, once locking is noted. */
	unsigned char *lk = tu_map(2);
	if (mlock(lk + ps, ps) == 0 && locked_kb() == 0) {
		/* Sanitizer runtimes turn mlock into a no-op. */
		tap_printf("ok %d # SKIP mlock did not lock (sanitizer runtime)\n", ++tap_n);
	} else if (locked_kb() > 0) {
		vr_vma_note_locking();
		changed();
		tap_is(check(lk, 2 * ps), -EINVAL, "smaps: rw page then mlocked page");
		tap_is(check(lk, ps), VR_VMA_OK, "smaps: the unlocked page alone");
		munlock(lk + ps, ps);
		changed();
		tap_is(check(lk, 2 * ps), VR_VMA_OK, "smaps: after munlock");
		tap_ok(strstr(vr_vma_method(), "smaps") != NULL, "method now: %s",
		       vr_vma_method());
	} else {
		tap_ok(0, "mlock of one page failed: %s", strerror(errno));
	}
	munmap(lk, 2 * ps);
	tap_done();
}
