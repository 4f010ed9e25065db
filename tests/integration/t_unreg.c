/*
 * t_unreg - memory that was once optimistic and is not any more behaves as
 * without the library (R4, R7; issue 17 items 7 and 8): after an unmark,
 * an allocator may give the pages back with MADV_DONTNEED and read(2) into
 * them must succeed, and the whole mapping, part of which was optimistic,
 * must move with mremap. With the uffd backend the pages were registered
 * with a userfaultfd; the registration must be gone by then.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vrange.h"
#include "../model.h"

#define NPAGES 8

int main(void)
{
	tap_plan(3);
	size_t pg = tu_pagesize(), len = NPAGES * pg;
	unsigned char *p = tu_map(NPAGES);
	memset(p, 7, len);
	int r1 = vrange_mark_volatile(p + 2 * pg, 4 * pg, VRANGE_OPTIMISTIC);
	int r2 = vrange_mark_nonvolatile(p + 2 * pg, 4 * pg, NULL);
	tap_ok(r1 == 0 && r2 == 0, "pages 2-5 marked optimistic and unmarked");

	/* Given back as an allocator would, then filled by a system call. */
	madvise(p, len, MADV_DONTNEED);
	int fds[2];
	char msg[100];
	memset(msg, 'x', sizeof msg);
	ssize_t got = -1;
	int err = 0;
	if (pipe(fds) == 0 && write(fds[1], msg, sizeof msg) == (ssize_t)sizeof msg) {
		got = read(fds[0], p + 3 * pg, sizeof msg);
		err = got < 0 ? errno : 0;
	}
	tap_ok(got == (ssize_t)sizeof msg && memcmp(p + 3 * pg, msg, sizeof msg) == 0,
	       "read(2) into a page that was optimistic, given back with "
	       "MADV_DONTNEED: %zd bytes (%s)", got, err ? strerror(err) : "no error");

	/* The whole mapping moves and grows. */
	void *q = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
	err = q == MAP_FAILED ? errno : 0;
	tap_ok(q != MAP_FAILED && ((unsigned char *)q)[3 * pg] == 'x',
	       "mremap of the whole mapping: %s", err ? strerror(err) : "moved");
	if (q != MAP_FAILED)
		munmap(q, 2 * len);
	tap_done();
	return 0;
}
