/*
 * t_fork - R9: a forked child keeps its volatile ranges with the same
 * semantics, and neither process disturbs the other's.
 *
 * MADV_PAGEOUT reclaims only pages mapped by one process, so reclaim is
 * injected before the fork, or on pages that only one process maps (pages
 * allocated after the fork, or pages the process has written since). Child
 * work runs in the child and reports through the exit status, a bit per
 * failed check; the child prints no test lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>

#include "vrange.h"
#include "../model.h"

/* ---- helpers of this test ------------------------------------------------ */

static cpu_set_t all_cpus;   /* the affinity before t_start pinned us */

/* Unmarks [first, first + n) of m (n <= 64) without printing a test line;
 * 0 if the count and the vector match the model, else 1. */
static int q_unmark_vec(struct model *m, size_t first, size_t n)
{
	unsigned char vec[64], want[64];
	memset(vec, 0xAA, sizeof vec);
	ssize_t rc = vrange_mark_nonvolatile_vec(m->p + first * ps, n * ps, vec);
	size_t cnt = m_unmarked(m, first, n, want);
	if (rc == (ssize_t)cnt && memcmp(vec, want, n) == 0)
		return 0;
	tap_diag("  child %d: unmark_vec [%zu,%zu) returned %zd, want %zu",
	         (int)getpid(), first, first + n, rc, cnt);
	return 1;
}

static const char *const bit_names[] = {
	"unmark of the inherited range A is not exact",
	"contents of the inherited range A",
	"contents of the parent's ordinary memory",
	"mark/unmark of a range allocated in the child is not exact",
	"contents of the range allocated in the child",
	"the grandchild failed",
	"volatile_bytes in the child differs from the parent's at fork",
	"mark/unmark of inherited ordinary memory is not exact",
};

/* Prints what a child's wait status means; returns 1 if it succeeded. */
static int child_ok(int status, const char *what)
{
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	if (status == -1)
		tap_diag("  %s: fork failed: %s", what, strerror(errno));
	else if (WIFSIGNALED(status))
		tap_diag("  %s: child killed by signal %d%s", what,
		         WTERMSIG(status),
		         WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
	else if (WIFEXITED(status))
		for (unsigned b = 0; b < sizeof bit_names / sizeof bit_names[0]; b++)
			if (WEXITSTATUS(status) & (1u << b))
				tap_diag("  %s: child failed: %s", what, bit_names[b]);
	return 0;
}

static uint64_t volatile_bytes_now(void)
{
	struct vrange_stats s;
	memset(&s, 0, sizeof s);
	if (vrange_get_stats(&s) != 0)
		return (uint64_t)-1;
	return s.volatile_bytes;
}

/* ---- one process forks, the child works on the inherited range ---------- */

struct basic {
	struct model a;       /* volatile, partly reclaimed before the fork */
	struct model p;       /* ordinary memory, never volatile in the parent */
	uint64_t vbytes;      /* volatile_bytes at the fork */
	int grandchild;       /* the child forks a grandchild first */
};

/* The grandchild unmarks A too: a second generation keeps the state. */
static int grandchild_fn(void *arg)
{
	struct basic *b = arg;
	int bits = 0;
	if (q_unmark_vec(&b->a, 0, b->a.n))
		bits |= 1;
	if (m_bad_pages(&b->a))
		bits |= 2;
	return bits;
}

static int child_fn(void *arg)
{
	struct basic *b = arg;
	int bits = 0;
	if (volatile_bytes_now() != b->vbytes)
		bits |= 64;
	if (b->grandchild) {
		int st = tu_run_child(grandchild_fn, b, 20);
		if (!(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0))
			bits |= 32;
	}
	/* A in two halves: exact per sub-range, in the child. */
	size_t h = b->a.n / 2;
	if (q_unmark_vec(&b->a, 0, h) | q_unmark_vec(&b->a, h, b->a.n - h))
		bits |= 1;
	if (m_bad_pages(&b->a))
		bits |= 2;
	if (m_bad_pages(&b->p))
		bits |= 4;

	/* A range of the child's own. */
	struct model c;
	m_init(&c, 8, 411);
	if (m_mark(&c, 0, 8) != 0)
		bits |= 8;
	m_pageout(&c, 2, 1);
	m_pageout(&c, 5, 2);
	if (q_unmark_vec(&c, 0, 8))
		bits |= 8;
	if (m_bad_pages(&c))
		bits |= 16;
	m_free(&c);

	/* The parent's ordinary memory, made volatile in the child: the mark
	 * writes the cookies, so the pages become the child's own copies and
	 * can be reclaimed here. */
	if (m_mark(&b->p, 0, b->p.n) != 0)
		bits |= 128;
	m_pageout(&b->p, 1, 1);
	m_pageout(&b->p, 6, 1);
	if (q_unmark_vec(&b->p, 0, b->p.n))
		bits |= 128;
	if (m_bad_pages(&b->p))
		bits |= 4;
	return bits;
}

static void case_basic(int grandchild)
{
	const char *w = grandchild ? "fork+grandchild" : "fork";
	struct basic b;
	m_init(&b.a, 16, grandchild ? 402 : 401);
	m_init(&b.p, 8, grandchild ? 404 : 403);
	b.grandchild = grandchild;
	tap_ok(m_mark(&b.a, 0, 16) == 0, "%s: parent marks A [0,16)", w);
	m_pageout(&b.a, 1, 1);
	m_pageout(&b.a, 6, 2);
	m_pageout(&b.a, 12, 1);
	b.vbytes = volatile_bytes_now();

	int st = tu_run_child(child_fn, &b, 30);
	tap_ok(child_ok(st, w), "%s: the child unmarks A exactly, keeps the "
	       "parent's bytes, and marks/unmarks its own ranges exactly", w);

	/* The child is gone: the parent's state is its own again. The pages
	 * are no longer shared, so reclaim works on them once more. */
	tap_is(volatile_bytes_now(), b.vbytes,
	       "%s: parent's volatile_bytes unchanged by the child", w);
	m_pageout(&b.a, 3, 1);
	ck_unmark_vec(&b.a, 0, 16, grandchild ? "fork+grandchild: parent, A" :
	              "fork: parent, A");
	ck_contents(&b.a, grandchild ? "fork+grandchild: parent, A" :
	            "fork: parent, A");
	ck_unmark(&b.p, 0, 8, grandchild ? "fork+grandchild: parent, ordinary "
	          "memory (never volatile here)" : "fork: parent, ordinary "
	          "memory (never volatile here)");
	ck_contents(&b.p, grandchild ? "fork+grandchild: parent, ordinary memory"
	            : "fork: parent, ordinary memory");
	m_free(&b.a);
	m_free(&b.p);
}

/* ---- the parent unmarks first, the child after it ------------------------ */

static int gated_child_fn(void *arg)
{
	struct model *a = arg;
	int bits = 0;
	if (q_unmark_vec(a, 0, a->n))
		bits |= 1;
	if (m_bad_pages(a))
		bits |= 2;
	return bits;
}

static void case_parent_first(void)
{
	const char *w = "parent-first";
	struct model a;
	m_init(&a, 12, 421);
	tap_ok(m_mark(&a, 0, 12) == 0, "%s: mark A [0,12)", w);
	m_pageout(&a, 2, 1);
	m_pageout(&a, 9, 1);
	int fds[2];
	if (pipe(fds) != 0) {
		tap_printf("Bail out! pipe: %s\n", strerror(errno));
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(fds[1]);
		alarm(30);
		/* Waits until the parent has unmarked its copy. */
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(gated_child_fn(&a));
	}
	close(fds[0]);
	if (pid < 0) {
		tap_printf("Bail out! fork: %s\n", strerror(errno));
		exit(1);
	}
	struct model mine = a;  /* the parent's model; the child has a copy */
	unsigned char vol[12], lost[12];
	unsigned seed[12];
	memcpy(vol, a.vol, 12);
	memcpy(lost, a.lost, 12);
	memcpy(seed, a.seed, sizeof seed);
	ck_unmark_vec(&mine, 0, 12, "parent-first: parent, A");
	ck_contents(&mine, "parent-first: parent, A");
	if (write(fds[1], "x", 1) != 1)
		tap_diag("write to the child: %s", strerror(errno));
	close(fds[1]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* The child checked against the model as it was at the fork. */
	memcpy(a.vol, vol, 12);
	memcpy(a.lost, lost, 12);
	memcpy(a.seed, seed, sizeof seed);
	tap_ok(child_ok(st, w), "%s: the child, unmarking after the parent, "
	       "gets the same exact report", w);
	m_free(&a);
}

/* ---- a multi-threaded parent forks while a thread works ------------------ */

struct worker {
	struct model r;       /* the thread's range */
	int stop;
	unsigned long iters;
	unsigned long fails;      /* read by the main thread after the join */
	char first[200];      /* the first failure */
};

static void worker_fail(struct worker *wk, const char *fmt, unsigned long it,
                        size_t a, size_t b)
{
	if (wk->fails++ == 0)
		snprintf(wk->first, sizeof wk->first, fmt, it, a, b);
}

/* Marks and unmarks random sub-ranges of its range forever, with no
 * reclaim: with "cookie" nothing may be reported purged, with "eager" every
 * page that was volatile is, and reads zeros (and is written again). */
static void *worker_fn(void *arg)
{
	struct worker *wk = arg;
	struct model *m = &wk->r;
	uint32_t r = 0xf00du;
	unsigned char vec[64];
	/* No reclaim here, so the worker may run on any CPU: it then really
	 * runs while the main thread forks. */
	sched_setaffinity(0, sizeof all_cpus, &all_cpus);
	while (!__atomic_load_n(&wk->stop, __ATOMIC_RELAXED)) {
		unsigned long it = __atomic_load_n(&wk->iters, __ATOMIC_RELAXED);
		size_t a = rnd(&r) % m->n, n = 1 + rnd(&r) % (m->n - a);
		if (m_mark(m, a, n) != 0)
			worker_fail(wk, "iteration %lu: mark [%zu,+%zu) failed",
			            it, a, n);
		size_t b = rnd(&r) % m->n, k = 1 + rnd(&r) % (m->n - b);
		unsigned char want[64];
		ssize_t rc = vrange_mark_nonvolatile_vec(m->p + b * ps, k * ps, vec);
		size_t cnt = m_unmarked(m, b, k, want);
		if (rc != (ssize_t)cnt || memcmp(vec, want, k) != 0)
			worker_fail(wk, "iteration %lu: unmark [%zu,+%zu) report "
			            "differs from the model", it, b, k);
		for (size_t i = b; i < b + k; i++) {
			unsigned seed = __atomic_load_n(&m->seed[i], __ATOMIC_RELAXED);
			int s = tu_page_state(m->p, i, seed);
			if (s != (seed ? 1 : 0))
				worker_fail(wk, "iteration %lu: page %zu (unmarked "
				            "with [%zu,...)) has wrong bytes", it, i,
				            b);
			if (!seed)
				m_refill(m, i, 1, 500 + (unsigned)(it % 1000));
		}
		__atomic_store_n(&wk->iters, it + 1, __ATOMIC_RELAXED);
	}
	/* Leave everything non-volatile. */
	m_unmarked(m, 0, m->n, NULL);
	vrange_mark_nonvolatile(m->p, m->n * ps, NULL);
	return NULL;
}

/* In the child: the worker's range as it was at the fork, and a range of
 * the child's own. The worker's model may have been half-updated at the
 * fork, so only what holds at every instant is checked: with "cookie" no
 * page is purged and every page holds the seed it had (the worker rewrites
 * only purged pages); with "eager" purged pages read zeros. */
static int threaded_child_fn(void *arg)
{
	struct worker *wk = arg;
	struct model *m = &wk->r;
	int bits = 0;
	unsigned char vec[64];
	ssize_t rc = vrange_mark_nonvolatile_vec(m->p, m->n * ps, vec);
	if (rc < 0)
		bits |= 1;
	for (size_t i = 0; rc >= 0 && i < m->n; i++) {
		int s = tu_page_state(m->p, i,
		                      __atomic_load_n(&m->seed[i], __ATOMIC_RELAXED));
		if (eager ? (vec[i] && s != 0) : (vec[i] || s != 1)) {
			tap_diag("  child %d: worker page %zu: reported %s, reads %s",
			         (int)getpid(), i, vec[i] ? "purged" : "intact",
			         s == 1 ? "intact" : s == 0 ? "zeros" : "garbage");
			bits |= vec[i] ? 1 : 2;
		}
	}
	struct model c;
	m_init(&c, 8, 431);
	if (m_mark(&c, 0, 8) != 0)
		bits |= 8;
	m_pageout(&c, 0, 1);
	m_pageout(&c, 4, 1);
	if (q_unmark_vec(&c, 0, 8))
		bits |= 8;
	if (m_bad_pages(&c))
		bits |= 16;
	m_free(&c);
	return bits;
}

static void case_threaded(void)
{
	const char *w = "threaded-fork";
	struct worker wk;
	memset(&wk, 0, sizeof wk);
	m_init(&wk.r, 16, 441);
	pthread_t t;
	double t0 = tu_now();
	if (pthread_create(&t, NULL, worker_fn, &wk) != 0) {
		tap_printf("Bail out! pthread_create failed\n");
		exit(1);
	}
	const int forks = 40;
	int bad = 0;
	while (__atomic_load_n(&wk.iters, __ATOMIC_RELAXED) == 0 &&
	       tu_now() < t0 + 5)
		sched_yield();      /* the worker is running */
	int k;
	for (k = 0; k < forks && bad < 3; k++) {
		struct timespec d = { 0, 5 * 1000 * 1000 };
		nanosleep(&d, NULL);
		int st = tu_run_child(threaded_child_fn, &wk, 10);
		char what[64];
		snprintf(what, sizeof what, "%s: fork %d", w, k);
		if (!child_ok(st, what))
			bad++;      /* three failures are enough: stop early */
	}
	unsigned long during = __atomic_load_n(&wk.iters, __ATOMIC_RELAXED);
	__atomic_store_n(&wk.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	tap_ok(bad == 0, "%s: %d children forked while a thread marks and "
	       "unmarks: each sees a consistent state and can use the library",
	       w, k);
	tap_ok(during > 0, "%s: the thread made progress (%lu iterations)",
	       w, during);
	if (!tap_ok(wk.fails == 0, "%s: the thread's own reports stayed exact "
	            "across the forks", w))
		tap_diag("  %lu failures, first: %s", wk.fails, wk.first);
	ck_contents(&wk.r, "threaded-fork: the thread's range at the end");
	m_free(&wk.r);
}

int main(void)
{
	if (sched_getaffinity(0, sizeof all_cpus, &all_cpus) != 0) {
		CPU_ZERO(&all_cpus);
		CPU_SET(0, &all_cpus);
	}
	t_start("t_fork");
	tu_require_pageout();
	case_basic(0);
	case_basic(1);
	case_parent_first();
	case_threaded();
	tap_done();
}
