/*
 * t_stats - the statistics change as documented.
 *
 * volatile_bytes and volatile_ranges (maximal runs of adjacent volatile
 * pages) after marks, merges, splits, unmarks and unmaps; pages_marked,
 * pages_unmarked, pages_purged and pages_dropped count what was done; failed
 * calls change nothing; counters of features this test does not use stay
 * put; the backend name equals vrange_backend(); a NULL argument fails with
 * EFAULT; the call works from a signal handler.
 *
 * Exact values assume that this test is the library's only user in the
 * process (no malloc shim preloaded).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "vrange.h"
#include "../model.h"

/* ---- helpers of this test ------------------------------------------------ */

static struct vrange_stats base;   /* at the start */

/* What the statistics must show now, relative to the start. */
static struct {
	long long vpages, ranges, marked, unmarked, purged, dropped;
} ex;

#define D(s, field) ((long long)((s).field - base.field))

/* One TAP line: every counter equals the expectation. */
static int ck_stats(const char *what)
{
	struct vrange_stats s = st_get();
	struct {
		const char *name;
		long long got, want;
	} f[] = {
		{ "volatile_bytes", D(s, volatile_bytes), ex.vpages * (long long)ps },
		{ "volatile_ranges", D(s, volatile_ranges), ex.ranges },
		{ "pages_marked", D(s, pages_marked), ex.marked },
		{ "pages_unmarked", D(s, pages_unmarked), ex.unmarked },
		{ "pages_purged", D(s, pages_purged), ex.purged },
		{ "pages_dropped", D(s, pages_dropped), ex.dropped },
		{ "pages_refilled", D(s, pages_refilled), 0 },
		{ "sigbus_taken", D(s, sigbus_taken), 0 },
		{ "budget_purges", D(s, budget_purges), 0 },
	};
	int ok = 1;
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].got != f[i].want)
			ok = 0;
	tap_ok(ok, "%s: statistics as expected", what);
	for (size_t i = 0; !ok && i < sizeof f / sizeof f[0]; i++)
		if (f[i].got != f[i].want)
			tap_diag("  %s grew by %lld, want %lld", f[i].name, f[i].got,
			         f[i].want);
	return ok;
}

static int mark(unsigned char *p, size_t first, size_t n)
{
	int rc = vrange_mark_volatile(p + first * ps, n * ps, 0);
	if (rc != 0)
		tap_diag("mark [%zu,%zu): %s", first, first + n, strerror(errno));
	return rc;
}

static int unmark(unsigned char *p, size_t first, size_t n)
{
	int rc = vrange_mark_nonvolatile(p + first * ps, n * ps, NULL);
	if (rc != 0)
		tap_diag("unmark [%zu,%zu): %s", first, first + n, strerror(errno));
	return rc;
}

/* ---- the cases ------------------------------------------------------------ */

static void case_api(void)
{
	errno = 0;
	int rc = vrange_get_stats(NULL);
	tap_ok(rc == -1 && errno == EFAULT, "vrange_get_stats(NULL) fails EFAULT");
	struct vrange_stats s;
	memset(&s, 0x5a, sizeof s);
	tap_is(vrange_get_stats(&s), 0, "vrange_get_stats succeeds");
	const char *b = vrange_backend();
	tap_ok(memchr(s.backend, 0, sizeof s.backend) != NULL &&
	       b != NULL && strcmp(s.backend, b) == 0,
	       "backend \"%.15s\" equals vrange_backend()", s.backend);
	tap_ok(memchr(s.selection, 0, sizeof s.selection) != NULL,
	       "selection is a terminated string");
	tap_diag("selection: %.255s", s.selection);
	const char *forced = getenv("VRANGE_BACKEND");
	if (forced && *forced) {
		/* Unless the forced backend cannot run here: then the story
		 * starts with its refusal and the reason. */
		char refused[64];
		snprintf(refused, sizeof refused, "%s: refused (", forced);
		tap_ok(b != NULL && (strcmp(b, forced) == 0 ||
		                     strstr(s.selection, refused) == s.selection),
		       "the backend is the one VRANGE_BACKEND forces (%s), or it was refused first",
		       forced);
	}
	tap_is(base.volatile_bytes, 0, "nothing is volatile before any mark");
	tap_is(base.volatile_ranges, 0, "no volatile range before any mark");
}

static void case_marks_and_unmarks(void)
{
	unsigned char *r = map_guarded(32);
	fill_pages(r, 0, 32, 51);
	ck_stats("start");

	tap_ok(mark(r, 0, 4) == 0, "mark [0,4)");
	ex.vpages += 4, ex.ranges += 1, ex.marked += 4;
	ck_stats("one range of 4 pages");

	tap_ok(mark(r, 8, 4) == 0, "mark [8,12)");
	ex.vpages += 4, ex.ranges += 1, ex.marked += 4;
	ck_stats("two separate ranges");

	tap_ok(mark(r, 4, 4) == 0, "mark [4,8), between them");
	ex.vpages += 4, ex.ranges -= 1, ex.marked += 4;
	ck_stats("the three ranges merge into one run");

	/* Marking volatile pages again: still one run of 12 pages. Whether the
	 * re-marked pages count again in pages_marked is left open here. */
	struct vrange_stats s0 = st_get();
	tap_ok(mark(r, 2, 4) == 0, "mark [2,6) again");
	struct vrange_stats s1 = st_get();
	long long dm = (long long)(s1.pages_marked - s0.pages_marked);
	tap_ok(dm == 0 || dm == 4, "re-marking 4 volatile pages adds 0 or 4 to "
	       "pages_marked (%lld)", dm);
	ex.marked += dm;
	ck_stats("re-marking changes neither bytes nor runs");

	tap_ok(unmark(r, 5, 2) == 0, "unmark [5,7), in the middle");
	ex.vpages -= 2, ex.ranges += 1, ex.unmarked += 2;
	ex.purged += eager ? 2 : 0;
	ck_stats("unmarking the middle splits the run");

	tap_ok(unmark(r, 14, 6) == 0, "unmark [14,20), never volatile");
	ck_stats("unmarking non-volatile pages counts nothing");

	tap_ok(unmark(r, 10, 6) == 0, "unmark [10,16), half volatile");
	ex.vpages -= 2, ex.unmarked += 2;
	ex.purged += eager ? 2 : 0;
	ck_stats("only the 2 volatile pages count as unmarked");

	/* Rounding: 4 pages and one byte are 5 pages. */
	tap_ok(vrange_mark_volatile(r + 20 * ps, 4 * ps + 1, 0) == 0,
	       "mark [20,24) plus one byte");
	ex.vpages += 5, ex.ranges += 1, ex.marked += 5;
	ck_stats("a length one byte past 4 pages marks 5");

	tap_ok(vrange_mark_volatile(r + 28 * ps, 0, 0) == 0, "mark a zero length");
	ck_stats("a zero length changes nothing");

	/* Another region: one more run. */
	unsigned char *t = map_guarded(8);
	fill_pages(t, 0, 8, 52);
	tap_ok(mark(t, 0, 8) == 0, "mark another region [0,8)");
	ex.vpages += 8, ex.ranges += 1, ex.marked += 8;
	ck_stats("a second region adds a run");

	/* Failed calls change nothing. */
	errno = 0;
	tap_ok(vrange_mark_volatile(r + 1, ps, 0) == -1 && errno == EINVAL,
	       "mark of an unaligned address fails EINVAL");
	errno = 0;
	tap_ok(vrange_mark_volatile(r + 28 * ps, ps, 0x80) == -1 &&
	       errno == EINVAL, "mark with unknown flags fails EINVAL");
	/* Three pages with a hole in the middle. */
	unsigned char *h = tu_map(3);
	fill_pages(h, 0, 3, 55);
	munmap(h + ps, ps);
	errno = 0;
	tap_ok(vrange_mark_volatile(h, 3 * ps, 0) == -1 && errno == ENOMEM,
	       "mark over an unmapped page fails ENOMEM");
	errno = 0;
	tap_ok(vrange_mark_nonvolatile(h, 3 * ps, NULL) == -1 && errno == ENOMEM,
	       "unmark over an unmapped page fails ENOMEM");
	ck_stats("failed calls change nothing");
	tap_ok(tu_page_state(h, 0, 55) == 1 && tu_page_state(h, 2, 55) == 1,
	       "the failed mark left the mapped pages' bytes alone");
	munmap(h, 3 * ps);
	ck_stats("unmapping pages a failed mark covered drops nothing");

	/* Purges. r: [0,5) [7,10) [20,25) volatile; t: [0,8). */
	tu_pageout(r, 1, 1);
	tu_pageout(r, 8, 1);
	tu_pageout(r, 26, 2);            /* not volatile: kept */
	unsigned char vec[32];
	ssize_t n = vrange_mark_nonvolatile_vec(r, 32 * ps, vec);
	long long want = eager ? 13 : 2;
	tap_is(n, want, "unmark r: %lld pages reported purged", want);
	ex.vpages -= 13, ex.ranges -= 3, ex.unmarked += 13, ex.purged += want;
	ck_stats("pages_purged counts the pages reported purged");

	/* A page lost, re-marked, then unmarked: purged once. */
	tu_pageout(t, 3, 1);
	tap_ok(mark(t, 0, 8) == 0, "re-mark t [0,8)");
	s1 = st_get();
	dm = (long long)(s1.pages_marked - base.pages_marked) - ex.marked;
	tap_ok(dm == 0 || dm == 8, "re-marking 8 volatile pages adds 0 or 8 to "
	       "pages_marked (%lld)", dm);
	ex.marked += dm;
	n = vrange_mark_nonvolatile_vec(t, 8 * ps, vec);
	want = eager ? 8 : 1;
	tap_is(n, want, "unmark t: %lld pages reported purged", want);
	ex.vpages -= 8, ex.ranges -= 1, ex.unmarked += 8, ex.purged += want;
	ck_stats("a page lost before a re-mark counts once");

	/* Marking again after an unmark counts again. */
	tap_ok(mark(r, 0, 4) == 0 && unmark(r, 0, 4) == 0 && mark(r, 0, 4) == 0,
	       "mark, unmark and mark [0,4) again");
	ex.vpages += 4, ex.ranges += 1, ex.marked += 8, ex.unmarked += 4;
	ex.purged += eager ? 4 : 0;
	ck_stats("pages marked again after an unmark count again");
	tap_ok(unmark(r, 0, 4) == 0, "unmark [0,4)");
	ex.vpages -= 4, ex.ranges -= 1, ex.unmarked += 4;
	ex.purged += eager ? 4 : 0;

	/* vrange() counts like the other entry points. */
	tap_is(vrange(r + 10 * ps, 6 * ps, VRANGE_VOLATILE, NULL),
	       (long long)(6 * ps), "vrange(VOLATILE) on [10,16)");
	ex.vpages += 6, ex.ranges += 1, ex.marked += 6;
	ck_stats("vrange(VOLATILE) counts as a mark");
	int purged = -7;
	tap_is(vrange(r + 10 * ps, 6 * ps, VRANGE_NONVOLATILE, &purged),
	       (long long)(6 * ps), "vrange(NONVOLATILE) on [10,16)");
	ex.vpages -= 6, ex.ranges -= 1, ex.unmarked += 6;
	ex.purged += eager ? 6 : 0;
	ck_stats("vrange(NONVOLATILE) counts as an unmark");

	munmap(t - ps, 10 * ps);
	munmap(r - ps, 34 * ps);
	ck_stats("unmapping non-volatile regions drops nothing");
}

static void case_dropped(void)
{
	unsigned char *d = map_guarded(8);
	fill_pages(d, 0, 8, 53);
	tap_ok(mark(d, 1, 6) == 0, "mark d [1,7)");
	ex.vpages += 6, ex.ranges += 1, ex.marked += 6;
	tap_is(munmap(d + 3 * ps, 2 * ps), 0, "munmap d [3,5)");
	ex.vpages -= 2, ex.ranges += 1, ex.dropped += 2;
	ck_stats("munmap of the middle drops 2 pages and splits the run");
	void *q = mmap(d + 2 * ps, ps, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	tap_ok(q == d + 2 * ps, "mmap(MAP_FIXED) over d page 2");
	ex.vpages -= 1, ex.dropped += 1;
	ck_stats("a mapping placed over a volatile page drops it");
	void *m = mremap(d + 5 * ps, 2 * ps, ps, 0);
	tap_ok(m == d + 5 * ps, "mremap d [5,7) down to one page");
	ex.vpages -= 1, ex.dropped += 1;
	ck_stats("mremap shrinking a volatile range drops the cut-off page");
	munmap(d - ps, 10 * ps);
	ex.vpages -= 2, ex.ranges -= 2, ex.dropped += 2;
	ck_stats("munmap of the rest drops the last 2 pages");
}

static volatile sig_atomic_t in_handler_rc = -7;
static struct vrange_stats in_handler;

static void on_usr1(int sig)
{
	(void)sig;
	in_handler_rc = vrange_get_stats(&in_handler);
}

static void case_signal_handler(void)
{
	unsigned char *r = map_guarded(4);
	fill_pages(r, 0, 4, 54);
	tap_ok(mark(r, 0, 3) == 0, "mark [0,3)");
	ex.vpages += 3, ex.ranges += 1, ex.marked += 3;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	tap_ok(in_handler_rc == 0 &&
	       (long long)(in_handler.volatile_bytes - base.volatile_bytes) ==
	       ex.vpages * (long long)ps,
	       "vrange_get_stats works in a signal handler");
	signal(SIGUSR1, SIG_DFL);
	tap_ok(unmark(r, 0, 4) == 0, "unmark [0,4)");
	ex.vpages -= 3, ex.ranges -= 1, ex.unmarked += 3;
	ex.purged += eager ? 3 : 0;
	munmap(r - ps, 6 * ps);
	ck_stats("the end: nothing volatile");
}

int main(void)
{
	t_start("t_stats");
	tu_require_pageout();
	memset(&base, 0, sizeof base);
	vrange_get_stats(&base);
	case_api();
	case_marks_and_unmarks();
	case_dropped();
	case_signal_handler();
	tap_done();
}
