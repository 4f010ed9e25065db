/*
 * t_errno - R10: bad input fails with the errno madvise(2) would give, and
 * changes nothing.
 *
 * Every case checks the return value and errno, then that nothing changed:
 * memory that was not volatile still holds its bytes, is still not volatile
 * (injected reclaim takes nothing and an unmark reports nothing purged), and
 * files behind shared or private mappings are unchanged; memory that was
 * volatile before a failed unmark is still volatile (reclaim still takes it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>

#include "vrange.h"
#include "../model.h"

/* Checks that call returned -1 with errno want (one TAP line). */
#define CK_ERR(call, want, ...)                                              \
	do {                                                                 \
		errno = 0;                                                   \
		long long r_ = (long long)(call);                            \
		int e_ = errno;                                              \
		if (!tap_ok(r_ == -1 && e_ == (want), __VA_ARGS__))          \
			tap_diag("  got %lld, errno %d (%s); want -1, %s", r_, \
			         e_, strerror(e_), #want);                     \
	} while (0)

/* 1 if pages [first, first + n) of p hold the pattern of seed. */
static int intact(const unsigned char *p, size_t first, size_t n, unsigned seed)
{
	for (size_t i = first; i < first + n; i++)
		if (tu_page_state(p, i, seed) != 1)
			return 0;
	return 1;
}

/*
 * Pages [first, first + n) of p, filled with seed before the failed call,
 * must be untouched and not volatile: they hold the pattern, injected
 * reclaim takes nothing, and unmarking them reports nothing purged.
 */
static void ck_untouched(unsigned char *p, size_t first, size_t n,
                         unsigned seed, const char *what)
{
	const char *why = NULL;
	int purged = -7;
	if (!intact(p, first, n, seed))
		why = "bytes changed by the failed call";
	else if (tu_pageout(p, first, n), !intact(p, first, n, seed))
		why = "bytes lost to reclaim: pages were left volatile";
	else if (vrange_mark_nonvolatile(p + first * ps, n * ps, &purged) != 0)
		why = "unmark failed";
	else if (purged != 0)
		why = "unmark reports a purge: pages were left volatile";
	else if (!intact(p, first, n, seed))
		why = "bytes changed by the unmark";
	tap_ok(why == NULL, "%s: pages [%zu,%zu) unchanged and not volatile",
	       what, first, first + n);
	if (why) {
		tap_diag("  %s (purged=%d)", why, purged);
		for (size_t i = first; i < first + n; i++) {
			int st = tu_page_state(p, i, seed);
			if (st != 1)
				tap_diag("  page %zu now %s", i, st == 0 ?
				         "reads zeros" : "differs from its pattern");
		}
	}
}

/*
 * Pages [first, first + n) of p were volatile before a failed unmark: they
 * must still be volatile, so that injected reclaim takes them and the next
 * unmark reports every one of them purged, reading zeros.
 */
static void ck_still_volatile(unsigned char *p, size_t first, size_t n,
                              const char *what)
{
	unsigned char vec[n];
	memset(vec, 0xAA, n);
	tu_pageout(p, first, n);
	ssize_t r = vrange_mark_nonvolatile_vec(p + first * ps, n * ps, vec);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += vec[i] != 1 || tu_page_state(p, first + i, 0) != 0;
	tap_ok(r == (ssize_t)n && bad == 0,
	       "%s: pages [%zu,%zu) are still volatile", what, first, first + n);
	if (r != (ssize_t)n || bad)
		tap_diag("  unmark_vec returned %zd (want %zu), %zu pages not "
		         "reported purged or not zero", r, n, bad);
}

static unsigned char *map_filled(size_t n, unsigned seed)
{
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, seed);
	return p;
}

/* Marks [0, n) of a fresh filled region volatile, for failed-unmark cases. */
static unsigned char *map_volatile(size_t n, unsigned seed)
{
	unsigned char *p = map_filled(n, seed);
	if (vrange_mark_volatile(p, n * ps, 0) != 0) {
		tap_printf("Bail out! cannot mark %zu pages volatile: %s\n", n,
		           strerror(errno));
		exit(1);
	}
	return p;
}

static void case_unaligned_addr(void)
{
	unsigned char *p = map_filled(2, 1);
	int purged;
	unsigned char vec[4];
	static const size_t offs[] = { 1, 8, 2048 };
	for (size_t k = 0; k < 3; k++) {
		size_t o = offs[k] % ps;
		CK_ERR(vrange_mark_volatile(p + o, ps, 0), EINVAL,
		       "unaligned +%zu: vrange_mark_volatile EINVAL", o);
		CK_ERR(vrange(p + o, ps, VRANGE_VOLATILE, NULL), EINVAL,
		       "unaligned +%zu: vrange(VOLATILE) EINVAL", o);
	}
	CK_ERR(vrange_mark_volatile(p + 1, 0, 0), EINVAL,
	       "unaligned, zero length: EINVAL, as madvise");
	ck_untouched(p, 0, 2, 1, "unaligned mark");
	munmap(p, 2 * ps);

	p = map_volatile(2, 2);
	CK_ERR(vrange_mark_nonvolatile(p + 1, ps, &purged), EINVAL,
	       "unaligned: vrange_mark_nonvolatile EINVAL");
	CK_ERR(vrange(p + 8, ps, VRANGE_NONVOLATILE, &purged), EINVAL,
	       "unaligned: vrange(NONVOLATILE) EINVAL");
	CK_ERR(vrange_mark_nonvolatile_vec(p + ps / 2, ps, vec), EINVAL,
	       "unaligned: vrange_mark_nonvolatile_vec EINVAL");
	ck_still_volatile(p, 0, 2, "unaligned unmark");
	munmap(p, 2 * ps);
}

static void case_overflow(void)
{
	unsigned char *p = map_filled(2, 3);
	uintptr_t a = (uintptr_t)p;
	const size_t lens[] = { SIZE_MAX, SIZE_MAX - ps + 1, (size_t)0 - a,
	                        (size_t)0 - a + ps, (size_t)0 - a + 2 * ps - 1 };
	const char *names[] = { "SIZE_MAX", "SIZE_MAX-ps+1", "end wraps to 0",
	                        "end wraps to ps", "end wraps to 2ps-1" };
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		CK_ERR(vrange_mark_volatile(p, lens[k], 0), EINVAL,
		       "len %s: vrange_mark_volatile EINVAL", names[k]);
		CK_ERR(vrange(p, lens[k], VRANGE_VOLATILE, NULL), EINVAL,
		       "len %s: vrange(VOLATILE) EINVAL", names[k]);
	}
	ck_untouched(p, 0, 2, 3, "overflowing length, mark");
	munmap(p, 2 * ps);

	p = map_volatile(2, 4);
	int purged;
	unsigned char vec[4];
	CK_ERR(vrange_mark_nonvolatile(p, SIZE_MAX, &purged), EINVAL,
	       "len SIZE_MAX: vrange_mark_nonvolatile EINVAL");
	CK_ERR(vrange(p, SIZE_MAX - ps + 1, VRANGE_NONVOLATILE, &purged), EINVAL,
	       "len SIZE_MAX-ps+1: vrange(NONVOLATILE) EINVAL");
	CK_ERR(vrange_mark_nonvolatile_vec(p, (size_t)0 - (uintptr_t)p, vec),
	       EINVAL, "len wrapping to 0: vrange_mark_nonvolatile_vec EINVAL");
	ck_still_volatile(p, 0, 2, "overflowing length, unmark");
	munmap(p, 2 * ps);
}

/* 3 pages with page `hole` unmapped. */
static void case_hole(size_t hole, const char *what)
{
	char w[80];
	unsigned char *p = map_filled(3, 5);
	munmap(p + hole * ps, ps);
	snprintf(w, sizeof w, "%s, mark", what);
	CK_ERR(vrange_mark_volatile(p, 3 * ps, 0), ENOMEM,
	       "%s: vrange_mark_volatile ENOMEM", w);
	CK_ERR(vrange(p, 3 * ps, VRANGE_VOLATILE, NULL), ENOMEM,
	       "%s: vrange(VOLATILE) ENOMEM", w);
	for (size_t i = 0; i < 3; i++)
		if (i != hole)
			ck_untouched(p, i, 1, 5, w);

	/* Now the mapped pages are volatile and the unmark fails. */
	snprintf(w, sizeof w, "%s, unmark", what);
	for (size_t i = 0; i < 3; i++)
		if (i != hole && vrange_mark_volatile(p + i * ps, ps, 0) != 0)
			tap_diag("mark page %zu: %s", i, strerror(errno));
	int purged;
	unsigned char vec[4];
	CK_ERR(vrange_mark_nonvolatile(p, 3 * ps, &purged), ENOMEM,
	       "%s: vrange_mark_nonvolatile ENOMEM", w);
	CK_ERR(vrange(p, 3 * ps, VRANGE_NONVOLATILE, &purged), ENOMEM,
	       "%s: vrange(NONVOLATILE) ENOMEM", w);
	CK_ERR(vrange_mark_nonvolatile_vec(p, 3 * ps, vec), ENOMEM,
	       "%s: vrange_mark_nonvolatile_vec ENOMEM", w);
	for (size_t i = 0; i < 3; i++)
		if (i != hole)
			ck_still_volatile(p, i, 1, w);
	for (size_t i = 0; i < 3; i++)
		if (i != hole)
			munmap(p + i * ps, ps);
}

static void case_unmapped(void)
{
	unsigned char *p = tu_map(2);
	munmap(p, 2 * ps);
	int purged;
	unsigned char vec[4];
	CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), ENOMEM,
	       "unmapped: vrange_mark_volatile ENOMEM");
	CK_ERR(vrange(p, ps, VRANGE_VOLATILE, NULL), ENOMEM,
	       "unmapped: vrange(VOLATILE) ENOMEM");
	CK_ERR(vrange_mark_nonvolatile(p, 2 * ps, &purged), ENOMEM,
	       "unmapped: vrange_mark_nonvolatile ENOMEM");
	CK_ERR(vrange_mark_nonvolatile_vec(p, 2 * ps, vec), ENOMEM,
	       "unmapped: vrange_mark_nonvolatile_vec ENOMEM");
	tap_is(vrange_mark_volatile(p, 0, 0), 0,
	       "unmapped, zero length: succeeds, as madvise");
}

/* A temporary file of n pages holding the pattern of seed, unlinked. */
static int make_file(size_t n, unsigned seed)
{
	char name[] = "/tmp/t_errno.XXXXXX";
	int fd = mkstemp(name);
	if (fd < 0) {
		tap_printf("Bail out! mkstemp: %s\n", strerror(errno));
		exit(1);
	}
	unlink(name);
	unsigned char *buf = malloc(n * ps);
	fill_pages(buf, 0, n, seed);
	if (pwrite(fd, buf, n * ps, 0) != (ssize_t)(n * ps)) {
		tap_printf("Bail out! pwrite: %s\n", strerror(errno));
		exit(1);
	}
	free(buf);
	return fd;
}

static int file_intact(int fd, size_t n, unsigned seed)
{
	unsigned char *buf = malloc(n * ps);
	int ok = pread(fd, buf, n * ps, 0) == (ssize_t)(n * ps) &&
	         intact(buf, 0, n, seed);
	free(buf);
	return ok;
}

static void case_file(int shared)
{
	const char *what = shared ? "shared file" : "private file";
	int fd = make_file(2, 6);
	unsigned char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
	                        shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		tap_printf("Bail out! mmap file: %s\n", strerror(errno));
		exit(1);
	}
	CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), EINVAL,
	       "%s: vrange_mark_volatile EINVAL", what);
	CK_ERR(vrange(p, ps, VRANGE_VOLATILE, NULL), EINVAL,
	       "%s: vrange(VOLATILE) EINVAL", what);
	tap_ok(intact(p, 0, 2, 6), "%s: mapping bytes unchanged", what);
	tu_pageout(p, 0, 2);
	tap_ok(intact(p, 0, 2, 6), "%s: mapping bytes unchanged after reclaim",
	       what);
	tap_ok(file_intact(fd, 2, 6), "%s: file contents unchanged (pread)", what);
	munmap(p, 2 * ps);

	/* Anonymous pages followed by a page of the file: the whole call fails
	 * and the anonymous pages are not made volatile either. */
	p = map_filled(3, 7);
	if (mmap(p + 2 * ps, ps, PROT_READ | PROT_WRITE,
	         MAP_FIXED | (shared ? MAP_SHARED : MAP_PRIVATE), fd, 0) ==
	    MAP_FAILED) {
		tap_printf("Bail out! mmap MAP_FIXED file: %s\n", strerror(errno));
		exit(1);
	}
	CK_ERR(vrange_mark_volatile(p, 3 * ps, 0), EINVAL,
	       "anonymous then %s: vrange_mark_volatile EINVAL", what);
	ck_untouched(p, 0, 2, 7, shared ? "anonymous then shared file" :
	             "anonymous then private file");
	tap_ok(intact(p + 2 * ps, 0, 1, 6) && file_intact(fd, 2, 6),
	       "anonymous then %s: file page and file unchanged", what);
	munmap(p, 3 * ps);
	close(fd);
}

static void case_shared_anon(void)
{
	unsigned char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
	                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		tap_printf("Bail out! mmap shared anonymous: %s\n", strerror(errno));
		exit(1);
	}
	fill_pages(p, 0, 2, 8);
	CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), EINVAL,
	       "shared anonymous: vrange_mark_volatile EINVAL");
	CK_ERR(vrange(p, 2 * ps, VRANGE_VOLATILE, NULL), EINVAL,
	       "shared anonymous: vrange(VOLATILE) EINVAL");
	tap_ok(intact(p, 0, 2, 8), "shared anonymous: bytes unchanged");
	tu_pageout(p, 0, 2);
	tap_ok(intact(p, 0, 2, 8), "shared anonymous: bytes unchanged after "
	       "reclaim");
	munmap(p, 2 * ps);
}

/* VmLck of the process, in kB (-1 if unknown). */
static long vm_locked_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmLck: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Locks page i of p with mlock (how = 0) or mlock2(MLOCK_ONFAULT) (how = 1)
 * and checks with VmLck that the lock is real: sanitizer runtimes replace
 * mlock with a no-op. Returns 0, or prints a SKIP line and returns -1.
 */
static int lock_page(unsigned char *p, size_t i, int how, const char *what)
{
	long before = vm_locked_kb();
	int r;
#ifdef MLOCK_ONFAULT
	if (how == 1)
		r = mlock2(p + i * ps, ps, MLOCK_ONFAULT);
	else
#endif
		r = how == 0 ? mlock(p + i * ps, ps) : (errno = ENOSYS, -1);
	if (r != 0) {
		tap_ok(1, "%s # SKIP cannot lock: %s", what, strerror(errno));
		return -1;
	}
	if (before >= 0 && vm_locked_kb() <= before) {
		tap_ok(1, "%s # SKIP locking is a no-op here (sanitizer runtime?)",
		       what);
		return -1;
	}
	return 0;
}

/*
 * Locked memory: MADV_FREE refuses it, so the whole call fails with EINVAL
 * and changes nothing, whether the locked page comes first or last. The
 * locked pages are only read afterwards (munlock is a no-op under
 * sanitizers too); the unlocked ones get the full check.
 */
static void case_mlock(void)
{
	unsigned char *p = map_filled(2, 9);
	if (lock_page(p, 0, 0, "mlocked") == 0) {
		CK_ERR(vrange_mark_volatile(p, ps, 0), EINVAL,
		       "mlocked: vrange_mark_volatile EINVAL");
		CK_ERR(vrange(p, ps, VRANGE_VOLATILE, NULL), EINVAL,
		       "mlocked: vrange(VOLATILE) EINVAL");
		CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), EINVAL,
		       "mlocked page then unlocked page: vrange_mark_volatile "
		       "EINVAL");
		tap_ok(intact(p, 0, 1, 9), "mlocked: locked page unchanged");
		ck_untouched(p, 1, 1, 9, "mlocked page then unlocked page");
	}
	munmap(p, 2 * ps);

	p = map_filled(2, 10);
	if (lock_page(p, 1, 0, "unlocked then mlocked") == 0) {
		CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), EINVAL,
		       "unlocked page then mlocked page: vrange_mark_volatile "
		       "EINVAL");
		tap_ok(intact(p, 1, 1, 10), "unlocked then mlocked: locked page "
		       "unchanged");
		ck_untouched(p, 0, 1, 10, "unlocked then mlocked");
	}
	munmap(p, 2 * ps);

	/* A read-only page (no room for a cookie) before the locked one. */
	p = map_filled(2, 19);
	if (mprotect(p, ps, PROT_READ) != 0) {
		tap_ok(1, "read-only then mlocked # SKIP mprotect: %s",
		       strerror(errno));
	} else if (lock_page(p, 1, 0, "read-only then mlocked") == 0) {
		CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), EINVAL,
		       "read-only page then mlocked page: vrange_mark_volatile "
		       "EINVAL");
		tap_ok(intact(p, 1, 1, 19), "read-only then mlocked: locked page "
		       "unchanged");
		ck_untouched(p, 0, 1, 19, "read-only then mlocked");
	}
	munmap(p, 2 * ps);

	/* mmap(MAP_LOCKED) over the second page. */
	p = map_filled(2, 20);
	if (mmap(p + ps, ps, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_LOCKED, -1, 0) ==
	    MAP_FAILED) {
		tap_ok(1, "MAP_LOCKED # SKIP mmap: %s", strerror(errno));
	} else {
		fill_pages(p, 1, 1, 20);
		CK_ERR(vrange_mark_volatile(p, 2 * ps, 0), EINVAL,
		       "page then MAP_LOCKED page: vrange_mark_volatile EINVAL");
		tap_ok(intact(p, 1, 1, 20), "page then MAP_LOCKED page: locked "
		       "page unchanged");
		ck_untouched(p, 0, 1, 20, "page then MAP_LOCKED page");
	}
	munmap(p, 2 * ps);

#ifdef MLOCK_ONFAULT
	p = map_filled(2, 21);
	if (lock_page(p, 1, 1, "mlock2") == 0) {
		CK_ERR(vrange(p, 2 * ps, VRANGE_VOLATILE, NULL), EINVAL,
		       "page then mlock2(MLOCK_ONFAULT) page: vrange(VOLATILE) "
		       "EINVAL");
		tap_ok(intact(p, 1, 1, 21), "page then mlock2 page: locked page "
		       "unchanged");
		ck_untouched(p, 0, 1, 21, "page then mlock2 page");
	}
	munmap(p, 2 * ps);
#endif
}

static void case_hugetlb(void)
{
#ifdef MAP_HUGETLB
	size_t hs = 2u << 20;
	unsigned char *p = mmap(NULL, hs, PROT_READ | PROT_WRITE,
	                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p != MAP_FAILED) {
		memset(p, 0x5a, hs);
		CK_ERR(vrange_mark_volatile(p, hs, 0), EINVAL,
		       "hugetlb: vrange_mark_volatile EINVAL");
		int ok = 1;
		for (size_t i = 0; i < hs; i++)
			ok = ok && p[i] == 0x5a;
		tap_ok(ok, "hugetlb: bytes unchanged");
		munmap(p, hs);
		return;
	}
	/* No huge pages reserved (vm.nr_hugepages is 0 here): the mapping
	 * can still exist without a reservation. Any access to it would
	 * raise SIGBUS, so a library that wrote a cookie before refusing it
	 * would crash the test. */
	p = mmap(NULL, hs, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0);
	if (!tap_ok(p != MAP_FAILED, "hugetlb: MAP_NORESERVE mapping: %s",
	            p == MAP_FAILED ? strerror(errno) : "mapped"))
		return;
	CK_ERR(vrange_mark_volatile(p, hs, 0), EINVAL,
	       "hugetlb (unreserved): vrange_mark_volatile EINVAL");
	CK_ERR(vrange_mark_volatile(p, tu_pagesize(), 0), EINVAL,
	       "hugetlb (unreserved): one small page of it, EINVAL");
	/* mincore gives one byte per base page, also for hugetlb. */
	static unsigned char vec[(2u << 20) / 4096];
	size_t touched = 0;
	int mc = mincore(p, hs, vec);
	for (size_t i = 0; i < hs / tu_pagesize() && i < sizeof vec; i++)
		touched += vec[i] & 1;
	tap_ok(mc == 0 && touched == 0,
	       "hugetlb (unreserved): still not touched (mincore)");
	munmap(p, hs);
#else
	tap_ok(1, "hugetlb # SKIP no MAP_HUGETLB in this libc");
#endif
}

static void case_bad_mode(void)
{
	static const int modes[] = { 2, -1, 3, 0x100, INT_MIN, INT_MAX };
	unsigned char *p = map_filled(2, 11);
	for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
		int purged = -7;
		CK_ERR(vrange(p, 2 * ps, modes[k], &purged), EINVAL,
		       "bad mode %d: EINVAL", modes[k]);
	}
	ck_untouched(p, 0, 2, 11, "bad mode, on non-volatile pages");
	munmap(p, 2 * ps);

	p = map_volatile(2, 12);
	for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
		int purged = -7;
		CK_ERR(vrange(p, 2 * ps, modes[k], &purged), EINVAL,
		       "bad mode %d on volatile pages: EINVAL", modes[k]);
	}
	ck_still_volatile(p, 0, 2, "bad mode, on volatile pages");
	munmap(p, 2 * ps);
}

static void case_bad_flags(void)
{
	static const unsigned flags[] = {
#ifndef VRANGE_OPTIMISTIC
		1,
#endif
		2, 4, 0x100, 0x80000000u, ~0u
	};
	unsigned char *p = map_filled(2, 13);
	for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
		CK_ERR(vrange_mark_volatile(p, 2 * ps, flags[k]), EINVAL,
		       "flags %#x: EINVAL", flags[k]);
	ck_untouched(p, 0, 2, 13, "bad flags");
	munmap(p, 2 * ps);
}

static void case_zero_len(void)
{
	unsigned char *p = map_filled(2, 14);
	int purged = -7;
	unsigned char vec[2] = { 0xAA, 0xAA };
	tap_is(vrange_mark_volatile(p, 0, 0), 0, "zero length: mark succeeds");
	tap_is(vrange(p, 0, VRANGE_VOLATILE, NULL), 0,
	       "zero length: vrange(VOLATILE) returns 0 bytes");
	ck_untouched(p, 0, 2, 14, "zero-length mark");

	/* On volatile pages, a zero-length unmark changes nothing either. */
	if (vrange_mark_volatile(p, 2 * ps, 0) != 0)
		tap_diag("mark: %s", strerror(errno));
	int rc = vrange_mark_nonvolatile(p, 0, &purged);
	tap_ok(rc == 0 && purged == 0, "zero length: unmark succeeds, purged=0");
	purged = -7;
	ssize_t r = vrange(p, 0, VRANGE_NONVOLATILE, &purged);
	tap_ok(r == 0 && purged == 0,
	       "zero length: vrange(NONVOLATILE) returns 0 bytes, purged=0");
	r = vrange_mark_nonvolatile_vec(p, 0, vec);
	tap_ok(r == 0 && vec[0] == 0xAA, "zero length: unmark_vec returns 0, "
	       "writes nothing");
	ck_still_volatile(p, 0, 2, "zero-length unmark");
	munmap(p, 2 * ps);
}

static void case_round_up(void)
{
	unsigned char *p = map_filled(3, 15);
	tap_is(vrange_mark_volatile(p, 1, 0), 0, "length 1: mark succeeds");
	/* Page 0 is volatile, pages 1 and 2 are not. */
	tu_pageout(p, 0, 3);
	unsigned char vec[3];
	ssize_t r = vrange_mark_nonvolatile_vec(p, 3 * ps, vec);
	tap_ok(r == 1 && vec[0] == 1 && vec[1] == 0 && vec[2] == 0,
	       "length 1: covers page 0 and only page 0");
	if (!(r == 1 && vec[0] == 1 && vec[1] == 0 && vec[2] == 0))
		tap_diag("  got r=%zd vec=%u %u %u", r, vec[0], vec[1], vec[2]);
	tap_ok(tu_page_state(p, 0, 15) == 0 && intact(p, 1, 2, 15),
	       "length 1: page 0 zeros, pages 1-2 intact");

	fill_pages(p, 0, 3, 16);
	tap_is(vrange(p, 1, VRANGE_VOLATILE, NULL), (ssize_t)ps,
	       "vrange(VOLATILE, len 1) returns one page");
	tap_is(vrange(p + ps, ps + 1, VRANGE_VOLATILE, NULL), (ssize_t)(2 * ps),
	       "vrange(VOLATILE, len ps+1) returns two pages");
	int purged = -7;
	tap_is(vrange(p, 2 * ps + 1, VRANGE_NONVOLATILE, &purged),
	       (ssize_t)(3 * ps), "vrange(NONVOLATILE, len 2ps+1) returns three "
	       "pages");
	tap_is(purged, eager, "no reclaim: purged=%d", eager);
	/* All three pages are non-volatile again: reclaim takes nothing. */
	if (eager)
		fill_pages(p, 0, 3, 16);
	ck_untouched(p, 0, 3, 16, "len ps+1");
	munmap(p, 3 * ps);
}

int main(void)
{
	t_start("t_errno");
	tu_require_pageout();
	case_unaligned_addr();
	case_overflow();
	case_hole(1, "hole in the middle");
	case_hole(2, "hole at the end");
	case_hole(0, "hole at the start");
	case_unmapped();
	case_file(1);
	case_file(0);
	case_shared_anon();
	case_mlock();
	case_hugetlb();
	case_bad_mode();
	case_bad_flags();
	case_zero_len();
	case_round_up();
	tap_done();
}
