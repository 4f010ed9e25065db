/*
 * u_registry - the registry alone: ranges split and merge, history survives
 * re-marks, state moves with mremap, a million ranges, and readers racing a
 * writer that retires and reuses leaves.
 *
 * Page numbers here are plain numbers: the registry never touches the
 * memory they name, so no mapping is needed.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "registry.h"
#include "../tap.h"

/* One segment of mark(): saved word = the page number, lost if *arg. */
static int mark_seg(const vr_seg_t *seg, void *arg)
{
	uint64_t m = vr_seg_all(seg);
	for (unsigned i = 0; i < seg->n; i++)
		vr_seg_save_locked(seg, i, seg->vpn + i);
	vr_seg_set_locked(seg, m, *(int *)arg ? m : 0, 0);
	return 0;
}

/* Marks [lo, hi), every page lost if lost. */
static void mark(uintptr_t lo, uintptr_t hi, int lost)
{
	if (vr_registry_each_seg_locked(lo, hi, VR_SEG_CREATE, mark_seg, &lost) != 0)
		abort();
}

/* Copies the one segment it is called for into arg. */
static int copy_seg(const vr_seg_t *seg, void *arg)
{
	*(vr_seg_t *)arg = *seg;
	return 0;
}

static int range_is(uintptr_t vpn, uintptr_t lo, uintptr_t hi)
{
	uintptr_t a = 0, b = 0;
	if (!vr_registry_range_at(vpn, &a, &b))
		return lo == hi;
	if (a != lo || b != hi)
		tap_diag("range at %lu: [%lu, %lu), want [%lu, %lu)", (unsigned long)vpn,
		         (unsigned long)a, (unsigned long)b, (unsigned long)lo,
		         (unsigned long)hi);
	return a == lo && b == hi;
}

static bool is_lost(uintptr_t vpn)
{
	bool lost = false;
	vr_registry_page(vpn, &lost, NULL);
	return lost;
}

static void test_split_merge(void)
{
	const uintptr_t B = 1000;  /* crosses leaf boundaries at 1024 */
	vr_registry_lock();
	mark(B, B + 20, 0);
	tap_is(vr_registry_nranges(), 1, "one range after one mark");
	tap_is(vr_registry_npages(), 20, "20 volatile pages");
	mark(B + 20, B + 40, 0);
	tap_is(vr_registry_nranges(), 1, "adjacent mark merges");
	vr_registry_unlock();
	tap_ok(range_is(B + 30, B, B + 40), "merged range spans both marks");
	vr_registry_lock();
	mark(B + 50, B + 60, 0);
	tap_is(vr_registry_nranges(), 2, "a gap keeps ranges apart");
	size_t n = vr_registry_clear_locked(B + 10, B + 15);
	tap_is(n, 5, "unmark inside clears 5 pages");
	tap_is(vr_registry_nranges(), 3, "unmark inside splits");
	vr_registry_unlock();
	tap_ok(range_is(B + 5, B, B + 10), "left part of split");
	tap_ok(range_is(B + 20, B + 15, B + 40), "right part of split (across a leaf)");
	tap_ok(range_is(B + 12, 0, 0), "hole is not volatile");
	vr_registry_lock();
	mark(B + 5, B + 55, 0);
	tap_is(vr_registry_nranges(), 1, "mark over the gaps merges all three");
	tap_is(vr_registry_npages(), 60, "60 pages");
	n = vr_registry_clear_locked(B, B + 60);
	tap_is(n, 60, "clear all");
	tap_is(vr_registry_nranges(), 0, "no range left");
	tap_is(vr_registry_npages(), 0, "no page left");
	vr_registry_unlock();
}

static void test_history(void)
{
	const uintptr_t B = 5000;
	vr_registry_lock();
	mark(B, B + 10, 0);
	mark(B + 3, B + 4, 1);        /* page B+3 found lost */
	mark(B, B + 10, 0);           /* re-mark without loss */
	vr_registry_unlock();
	tap_ok(is_lost(B + 3), "re-mark keeps a page's loss");
	tap_ok(!is_lost(B + 2) && !is_lost(B + 4), "neighbours not lost");
	vr_registry_lock();
	vr_registry_clear_locked(B + 3, B + 4);
	mark(B + 3, B + 4, 0);
	vr_registry_unlock();
	tap_ok(!is_lost(B + 3), "unmark ends the history");
	vr_registry_lock();
	vr_registry_clear_locked(B, B + 10);
	vr_registry_unlock();
}

static void test_move(void)
{
	const uintptr_t A = 70000, D = 900001;  /* different leaf alignment */
	vr_registry_lock();
	mark(A, A + 100, 0);
	mark(A + 7, A + 8, 1);
	mark(D + 50, D + 60, 0);      /* stale state at the destination */
	vr_registry_clear_locked(A + 40, A + 45);
	size_t moved = vr_registry_move_locked(A, D, 100);
	tap_is(moved, 95, "95 volatile pages move");
	tap_is(vr_registry_nranges(), 2, "split range moved as two ranges");
	vr_registry_unlock();
	tap_ok(range_is(D + 20, D, D + 40) && range_is(D + 50, D + 45, D + 100),
	       "moved ranges keep their shape (stale destination state replaced)");
	tap_ok(is_lost(D + 7) && !is_lost(D + 8), "loss moves with the page");
	tap_ok(!vr_registry_page(A + 1, NULL, NULL), "source forgotten");
	vr_seg_t seg = { 0 };
	vr_registry_lock();
	vr_registry_each_seg_locked(D + 9, D + 10, 0, copy_seg, &seg);
	tap_is(vr_seg_saved(&seg, 0), A + 9, "saved word moves with the page");
	vr_registry_clear_locked(D, D + 100);
	vr_registry_unlock();
	tap_is(vr_registry_npages(), 0, "all clear after move test");
}

static void test_million(void)
{
	const size_t N = 1000000;
	const uintptr_t B = (uintptr_t)1 << 30;   /* a high, sparse area */
	double t0 = (double)clock() / CLOCKS_PER_SEC;
	vr_registry_lock();
	for (size_t i = 0; i < N; i++)
		mark(B + 2 * i, B + 2 * i + 1, 0);
	vr_registry_unlock();
	double t1 = (double)clock() / CLOCKS_PER_SEC;
	tap_is(vr_registry_nranges(), N, "a million ranges");
	unsigned seed = 12345;
	size_t wrong = 0;
	const size_t L = 2000000;
	for (size_t k = 0; k < L; k++) {
		seed = seed * 1103515245u + 12345u;
		uintptr_t off = (seed >> 3) % (2 * N);
		if (vr_registry_page(B + off, NULL, NULL) != ((off & 1) == 0))
			wrong++;
	}
	double t2 = (double)clock() / CLOCKS_PER_SEC;
	tap_is(wrong, 0, "2e6 random lookups among 1e6 ranges all right");
	tap_ok(range_is(B + 2 * 777777, B + 2 * 777777, B + 2 * 777777 + 1),
	       "range lookup in the middle of a million");
	tap_diag("1e6 single-page marks: %.0f ns each; lookups: %.0f ns each",
	         (t1 - t0) * 1e9 / (double)N, (t2 - t1) * 1e9 / (double)L);
	vr_registry_lock();
	size_t cleared = vr_registry_clear_locked(B, B + 2 * N);
	vr_registry_unlock();
	tap_is(cleared, N, "one clear forgets them all");
	tap_is(vr_registry_nranges(), 0, "no ranges left");
	tap_is(vr_registry_nleaves(), 0, "every leaf retired");
}

/* Readers race a writer that empties leaves, retires them, and reuses
 * them for other page numbers with another bit pattern. */
static int stop;
static const uintptr_t RX = 3u << 20, RY = 7u << 20;

static void *reader(void *arg)
{
	size_t *bad = arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		/* Within one read-side section a leaf found for X is X's:
		 * all 64 pages volatile or none. A leaf reused for Y before
		 * a grace period would show Y's pattern (pages 32-63). The
		 * reader holds every X leaf a while, as a slow reader would. */
		vr_seg_t held[128];
		vr_registry_read_begin();
		for (uintptr_t l = 0; l < 128; l++) {
			held[l].leaf = NULL;
			vr_registry_each_seg_locked(RX + l * 64, RX + l * 64 + 64, 0,
			                            copy_seg, &held[l]);
		}
		for (volatile int spin = 0; spin < 20000; spin++)
			;
		for (uintptr_t l = 0; l < 128; l++) {
			if (!held[l].leaf)
				continue;
			uint64_t v = vr_seg_get(&held[l], VR_PG_VOL);
			if (v != 0 && v != ~0ull)
				(*bad)++;
		}
		vr_registry_read_end();
	}
	return NULL;
}

static void test_rcu_reuse(void)
{
	pthread_t th[2];
	size_t bad[2] = { 0, 0 };
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader, &bad[i]);
	for (int round = 0; round < 60; round++) {
		vr_registry_lock();
		for (uintptr_t l = 0; l < 128; l++)
			mark(RX + l * 64, RX + l * 64 + 64, 0);
		vr_registry_clear_locked(RX, RX + 128 * 64);
		for (uintptr_t l = 0; l < 128; l++)
			mark(RY + l * 64 + 32, RY + l * 64 + 64, 0);
		vr_registry_clear_locked(RY, RY + 128 * 64);
		vr_registry_unlock();
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	tap_is(bad[0] + bad[1], 0, "readers never see a leaf reused for other pages");
	tap_is(vr_registry_npages(), 0, "writer left nothing behind");
}

/* Breaks one invariant in a child (fn, lock held), runs the check there,
 * and returns what the child printed (empty if it did not abort). */
static void broken(const char *name, int (*fn)(const vr_seg_t *, void *), const char *want)
{
	int p[2];
	if (pipe(p) != 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		vr_registry_lock();
		mark(5000, 5010, 0);
		vr_registry_each_seg_locked(5000, 5012, 0, fn, NULL);
		vr_registry_check_locked("u_registry");
		_exit(0);
	}
	close(p[1]);
	char buf[512];
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	tap_ok(WIFSIGNALED(st) && strstr(buf, want) && strstr(buf, "u_registry"),
	       "the check names a broken invariant (%s): %s", name, buf);
}

static int break_opt_outside(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	/* Pages of the segment beyond the 10 marked are not volatile: an
	 * optimistic bit there breaks "optimistic pages are volatile". */
	vr_seg_change_locked(seg, VR_PG_OPT, 1ull << (seg->n - 1), true);
	return 0;
}

static int break_lost_outside(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	vr_seg_change_locked(seg, VR_PG_LOST, 1ull << (seg->n - 1), true);
	return 0;
}

static int break_pend(const vr_seg_t *seg, void *arg)
{
	(void)arg;
	vr_seg_change_locked(seg, VR_PG_PEND, 1, true);
	return 0;
}

static void test_check(void)
{
	vr_registry_lock();
	mark(5000, 5010, 1);
	vr_registry_check_locked("u_registry");
	vr_registry_clear_locked(5000, 5010);
	vr_registry_check_locked("u_registry");
	vr_registry_unlock();
	tap_ok(1, "the check passes on a consistent registry");
	/* The child marks pages 5000-5009 and hands fn 5000-5011: the
	 * segment's last page is not volatile. */
	broken("optimistic", break_opt_outside, "optimistic but not volatile");
	broken("lost", break_lost_outside, "lost but not volatile");
	broken("pending", break_pend, "pending outside a mark");
}

int main(void)
{
	vr_init();
	test_check();
	test_split_merge();
	test_history();
	test_move();
	test_million();
	test_rcu_reuse();
	tap_done();
}
