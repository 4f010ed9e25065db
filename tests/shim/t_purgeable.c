/*
 * t_purgeable.c - the purgeable heap of libvrange_preload.so
 * (vrange_malloc, vrange_free, vrange_lock, vrange_unlock, Darwin's
 * malloc_make_purgeable / malloc_make_nonpurgeable).
 *
 * Built twice: t_purgeable runs under LD_PRELOAD and finds the API with
 * dlsym, as a preloaded program would; t_purgeable_linked (PURGEABLE_LINKED)
 * is linked with -lvrange_preload and calls it directly.
 *
 * Nesting, as Mozilla's VolatileBuffer: the lock count starts at 1;
 * vrange_unlock decrements it and marks the object volatile at 0;
 * vrange_lock increments it and, from 0 to 1, marks it non-volatile and
 * reports a purge (1, the object then all zeros); vrange_unlock at 0 is
 * EINVAL. Purge is injected with MADV_PAGEOUT on the object's pages.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "shim/shimtest.h"

static void *(*p_malloc)(size_t);
static void (*p_free)(void *);
static int (*p_lock)(void *);
static int (*p_unlock)(void *);
static int (*p_purgeable)(void *);
static int (*p_nonpurgeable)(void *);
static int (*p_stats)(struct vrange_stats *);

__attribute__((unused))
static void *must_sym(const char *name)
{
	void *f = dlsym(RTLD_DEFAULT, name);
	if (!f) {
		tap_printf("Bail out! %s not found\n", name);
		exit(1);
	}
	return f;
}

static void bind_api(void)
{
#ifdef PURGEABLE_LINKED
	p_malloc = vrange_malloc;
	p_free = vrange_free;
	p_lock = vrange_lock;
	p_unlock = vrange_unlock;
	p_purgeable = malloc_make_purgeable;
	p_nonpurgeable = malloc_make_nonpurgeable;
	p_stats = vrange_get_stats;
	const char *lp = getenv("LD_PRELOAD");
	if (lp && strstr(lp, "libvrange_preload"))
		tap_skip_all("the linked variant must run without LD_PRELOAD");
#else
	st_require_preload();
	p_malloc = (void *(*)(size_t))(uintptr_t)must_sym("vrange_malloc");
	p_free = (void (*)(void *))(uintptr_t)must_sym("vrange_free");
	p_lock = (int (*)(void *))(uintptr_t)must_sym("vrange_lock");
	p_unlock = (int (*)(void *))(uintptr_t)must_sym("vrange_unlock");
	p_purgeable = (int (*)(void *))(uintptr_t)must_sym("malloc_make_purgeable");
	p_nonpurgeable = (int (*)(void *))(uintptr_t)must_sym("malloc_make_nonpurgeable");
	p_stats = (int (*)(struct vrange_stats *))(uintptr_t)must_sym("vrange_get_stats");
#endif
}

static struct vrange_stats stats(void)
{
	struct vrange_stats s;
	memset(&s, 0, sizeof s);
	p_stats(&s);
	return s;
}

static size_t pages_of(size_t size)
{
	size_t ps = tu_pagesize();
	return size ? (size + ps - 1) / ps : 1;
}

/* 1 if every page holds the pattern, 0 if all are zeros, -1 if mixed. */
static int state(const unsigned char *p, size_t npages, unsigned seed)
{
	int all1 = 1, all0 = 1;
	for (size_t i = 0; i < npages; i++) {
		int s = tu_page_state(p, i, seed);
		if (s != 1)
			all1 = 0;
		if (s != 0)
			all0 = 0;
	}
	return all1 ? 1 : all0 ? 0 : -1;
}

/* --- sizes: lock, unlock, purge ------------------------------------------ */

static void test_size(size_t size)
{
	size_t n = pages_of(size), ps = tu_pagesize();
	unsigned char *p = p_malloc(size);
	tap_ok(p && ((uintptr_t)p & (ps - 1)) == 0, "vrange_malloc(%zu) is page aligned", size);
	if (!p)
		return;
	tu_fill(p, n, 1);
	unsigned char *q = p_malloc(size); /* churn next to it */
	p_free(q);
	tap_is(state(p, n, 1), 1, "size %zu: starts locked, %zu pages written and kept", size, n);

	struct vrange_stats s0 = stats();
	tap_is(p_unlock(p), 0, "size %zu: unlock", size);
	struct vrange_stats s1 = stats();
	tap_is(s1.volatile_bytes - s0.volatile_bytes, n * ps,
	       "size %zu: the whole rounded object is volatile", size);
	tu_pageout(p, 0, n);
	tap_is(p_lock(p), 1, "size %zu: lock after MADV_PAGEOUT reports the purge", size);
	tap_is(state(p, n, 1), 0, "size %zu: the purged object reads as zeros", size);

	tu_fill(p, n, 2);
	tap_ok(p_unlock(p) == 0 && p_lock(p) == 0,
	       "size %zu: unlock and lock without reclaim report intact", size);
	tap_is(state(p, n, 2), 1, "size %zu: every byte kept", size);
	p_free(p);
}

/* --- nesting ------------------------------------------------------------------ */

static void test_nesting(void)
{
	size_t ps = tu_pagesize();
	unsigned char *p = p_malloc(2 * ps);
	if (!p) {
		tap_ok(0, "vrange_malloc for the nesting case");
		return;
	}
	tu_fill(p, 2, 3);
	uint64_t v0 = stats().volatile_bytes;
	tap_ok(p_lock(p) == 0 && p_lock(p) == 0, "lock twice on a locked object: 0, count 3");
	tap_ok(p_unlock(p) == 0 && p_unlock(p) == 0 && stats().volatile_bytes == v0,
	       "two unlocks (count 1): still not volatile");
	tu_pageout(p, 0, 2);
	tap_is(state(p, 2, 3), 1, "a locked object survives MADV_PAGEOUT");
	tap_ok(p_unlock(p) == 0 && stats().volatile_bytes == v0 + 2 * ps,
	       "the third unlock (count 0) makes it volatile");
	errno = 0;
	tap_ok(p_unlock(p) == -1 && errno == EINVAL, "unlock at count 0 is EINVAL");
	tap_ok(stats().volatile_bytes == v0 + 2 * ps, "...and changes nothing");
	tap_is(p_lock(p), 0, "lock 0 -> 1: intact");
	tap_ok(stats().volatile_bytes == v0, "...and no longer volatile");
	tap_is(p_lock(p), 0, "lock 1 -> 2 reports 0");
	tap_ok(p_unlock(p) == 0 && stats().volatile_bytes == v0,
	       "unlock 2 -> 1: not volatile");
	tap_ok(p_unlock(p) == 0 && stats().volatile_bytes == v0 + 2 * ps,
	       "unlock 1 -> 0: volatile");
	tu_pageout(p, 0, 1); /* half of it */
	tap_is(p_lock(p), 1, "one page of two purged: lock reports 1");
	tap_is(state(p, 2, 3), 0, "...and the whole object reads as zeros");
	tap_is(p_unlock(p), 0, "an unlocked object can be freed...");
	uint64_t v1 = stats().volatile_bytes;
	p_free(p);
	tap_is(v1 - stats().volatile_bytes, 2 * ps, "...and vrange_free drops its volatile pages");
}

/* --- bad pointers ---------------------------------------------------------- */

static void test_errors(void)
{
	int stack_var;
	void *m = malloc(100);
	errno = 0;
	tap_ok(p_lock(NULL) == -1 && errno == EINVAL, "vrange_lock(NULL) is EINVAL");
	errno = 0;
	tap_ok(p_lock(m) == -1 && errno == EINVAL, "vrange_lock of a malloc'd pointer is EINVAL");
	errno = 0;
	tap_ok(p_unlock(m) == -1 && errno == EINVAL, "vrange_unlock of a malloc'd pointer is EINVAL");
	errno = 0;
	tap_ok(p_unlock(&stack_var) == -1 && errno == EINVAL, "vrange_unlock of a stack address is EINVAL");
	free(m);

	size_t ps = tu_pagesize();
	unsigned char *p = p_malloc(2 * ps);
	errno = 0;
	tap_ok(p_unlock(p + 1) == -1 && errno == EINVAL, "an unaligned interior pointer is EINVAL");
	errno = 0;
	tap_ok(p_unlock(p + ps) == -1 && errno == EINVAL, "a page-aligned interior pointer is EINVAL");
	p_free(p);
	errno = 0;
	tap_ok(p_lock(p) == -1 && errno == EINVAL, "a freed object is EINVAL");

	errno = 0;
	tap_ok(p_malloc((size_t)-1) == NULL && errno == ENOMEM, "vrange_malloc(SIZE_MAX) is NULL, ENOMEM");
	errno = 1234;
	void *z = p_malloc(0);
	tap_ok(z && ((uintptr_t)z & (ps - 1)) == 0 && errno == 1234,
	       "vrange_malloc(0) is one page, errno kept");
	p_free(z);
	errno = 1234;
	p_free(NULL);
	tap_is(errno, 1234, "vrange_free(NULL) does nothing, errno kept");
}

/* --- diagnosed misuse: the child dies ----------------------------------------- */

typedef void (*misuse_fn)(void);

static void do_free(void)
{
	void *p = p_malloc(10);
	free(p);
}

/* The other ways into jemalloc's free, looked up as a program would (the
 * linked variant has them from the same library). */
static void do_free_volatile(void)
{
	void *p = p_malloc(3 * 4096);
	p_unlock(p);
	free(p);
}

static void do_free_large(void)
{
	void *p = p_malloc(5u << 20);
	free(p);
}

static void do_free_sized(void)
{
	void (*fs)(void *, size_t) = (void (*)(void *, size_t))(uintptr_t)
		dlsym(RTLD_DEFAULT, "free_sized");
	void *p = p_malloc(10);
	if (fs)
		fs(p, 10);
}

static void do_sdallocx(void)
{
	void (*sd)(void *, size_t, int) = (void (*)(void *, size_t, int))(uintptr_t)
		dlsym(RTLD_DEFAULT, "sdallocx");
	void *p = p_malloc(4096);
	if (sd)
		sd(p, 4096, 0);
}

static void do_dallocx(void)
{
	void (*d)(void *, int) = (void (*)(void *, int))(uintptr_t)
		dlsym(RTLD_DEFAULT, "dallocx");
	void *p = p_malloc(4096);
	if (d)
		d(p, 0);
}

static void do_realloc(void)
{
	void *p = p_malloc(10);
	void *volatile q = realloc(p, 100);
	(void)q;
}

static void do_vfree_malloc(void)
{
	void *p = malloc(10);
	p_free(p);
}

static void do_double_vfree(void)
{
	void *p = p_malloc(10);
	p_free(p);
	p_free(p);
}

/* Runs fn in a child with stderr in a pipe: 1 if it died of SIGABRT
 * printing want. */
static int dies_with(misuse_fn fn, const char *want)
{
	int pfd[2];
	if (pipe(pfd) != 0)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl); /* no core file from the abort */
		close(pfd[0]);
		dup2(pfd[1], 2);
		alarm(20);
		fn();
		_exit(0);
	}
	close(pfd[1]);
	char buf[1024];
	tu_read_all(pfd[0], buf, sizeof buf);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, want);
	if (!ok)
		tap_diag("status %#x, stderr: %s", st, buf);
	return ok;
}

static void test_misuse(void)
{
	tap_ok(dies_with(do_free, "libvrange: ") &&
	       dies_with(do_free, "free() of a vrange_malloc object 0x"),
	       "free() of a vrange_malloc object aborts with a message");
	tap_ok(dies_with(do_free_volatile, "free() of a vrange_malloc object 0x") &&
	       dies_with(do_free_large, "free() of a vrange_malloc object 0x"),
	       "so does free() of a volatile one, and of a 5 MiB one");
	tap_ok(dies_with(do_free_sized, "free_sized() of a vrange_malloc object 0x") &&
	       dies_with(do_sdallocx, "sdallocx() of a vrange_malloc object 0x") &&
	       dies_with(do_dallocx, "free() of a vrange_malloc object 0x"),
	       "and free_sized(), sdallocx() and dallocx() of one");
	tap_ok(dies_with(do_realloc, "realloc() of a vrange_malloc object"),
	       "realloc() of a vrange_malloc object aborts with a message");
	tap_ok(dies_with(do_vfree_malloc, "which is not a live vrange_malloc object"),
	       "vrange_free() of a malloc'd pointer aborts with a message");
	tap_ok(dies_with(do_double_vfree, "which is not a live vrange_malloc object"),
	       "a double vrange_free() aborts with a message");
}

/* --- Darwin's names ---------------------------------------------------------- */

static void test_darwin(void)
{
	size_t ps = tu_pagesize();
	unsigned char *p = p_malloc(3 * ps);
	tu_fill(p, 3, 4);
	uint64_t v0 = stats().volatile_bytes;
	tap_ok(p_purgeable(p) == 0 && p_purgeable(p) == 0 &&
	       stats().volatile_bytes == v0 + 3 * ps,
	       "malloc_make_purgeable: 0, idempotent, the object is volatile");
	tu_pageout(p, 0, 3);
	tap_is(p_nonpurgeable(p), EFAULT, "malloc_make_nonpurgeable after a purge is EFAULT");
	tap_is(state(p, 3, 4), 0, "...and the object reads as zeros");
	tap_ok(p_nonpurgeable(p) == 0 && p_purgeable(p) == 0 &&
	       stats().volatile_bytes == v0 + 3 * ps,
	       "nonpurgeable on a locked object does not nest");
	tap_is(p_nonpurgeable(p), 0, "malloc_make_nonpurgeable, intact: 0");
	tu_fill(p, 3, 5);
	tap_ok(p_purgeable(p) == 0 && p_nonpurgeable(p) == 0 && state(p, 3, 5) == 1,
	       "purgeable then nonpurgeable without reclaim: 0, bytes kept");
	void *m = malloc(10);
	errno = 0;
	tap_ok(p_purgeable(m) == EINVAL && p_nonpurgeable(m) == EINVAL && errno == 0,
	       "a malloc'd pointer: EINVAL returned, errno kept");
	free(m);
	p_free(p);
}

/* --- statistics ---------------------------------------------------------------- */

static void test_stats(void)
{
	struct vrange_stats a = stats();
	unsigned char *p = p_malloc(1);
	p[0] = 1;
	p_unlock(p);
	p_lock(p);          /* intact */
	p_lock(p);          /* nested: not counted */
	p_unlock(p);
	p_unlock(p);
	tu_pageout(p, 0, 1);
	p_lock(p);          /* purged */
	p_free(p);
	struct vrange_stats b = stats();
	tap_ok(b.purgeable_intact - a.purgeable_intact == 1 &&
	       b.purgeable_purged - a.purgeable_purged == 1,
	       "stats: one object locked intact, one purged (nested locks not counted; "
	       "%llu, %llu)",
	       (unsigned long long)(b.purgeable_intact - a.purgeable_intact),
	       (unsigned long long)(b.purgeable_purged - a.purgeable_purged));
}

/* --- threads ------------------------------------------------------------------- */

#define NTHREADS 4
#define NITER 300

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	size_t bad = 0;
	unsigned char *objs[8] = { 0 };
	size_t np[8] = { 0 };
	for (unsigned it = 0; it < NITER; it++) {
		unsigned k = it % 8;
		unsigned seed = id * 100000 + it;
		if (objs[k]) {
			int r = p_lock(objs[k]);
			int s = state(objs[k], np[k], seed - 8);
			if (!(r == 0 && s == 1) && !(r == 1 && s == 0))
				bad++;
			p_free(objs[k]);
		}
		np[k] = 1 + (it * 7 + id) % 5;
		objs[k] = p_malloc(np[k] * tu_pagesize() - (it % 3));
		if (!objs[k]) {
			bad++;
			continue;
		}
		tu_fill(objs[k], np[k], seed);
		if (p_unlock(objs[k]) != 0)
			bad++;
	}
	for (unsigned k = 0; k < 8; k++)
		if (objs[k]) {
			if (p_lock(objs[k]) < 0)
				bad++;
			p_free(objs[k]);
		}
	return (void *)bad;
}

static void test_threads(void)
{
	pthread_t t[NTHREADS];
	size_t bad = 0;
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < NTHREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (size_t)r;
	}
	tap_is(bad, 0, "%d threads allocate, unlock, lock and free their own objects", NTHREADS);
}

/* --- fork -------------------------------------------------------------------- */

static unsigned char *fa, *fb;

static int child(void *arg)
{
	if (p_lock(fa) != 0 || state(fa, 2, 6) != 1)
		return 1;
	if (p_unlock(fb) != 0)
		return 2;
	tu_pageout(fb, 0, 1);
	if (p_lock(fb) != 1 || state(fb, 1, 7) != 0)
		return 3;
	unsigned char *c = p_malloc(5000);
	if (!c)
		return 4;
	tu_fill(c, 2, 8);
	if (p_unlock(c) != 0 || p_lock(c) != 0 || state(c, 2, 8) != 1)
		return 5;
	p_free(c);
	p_free(fa);
	p_free(fb);
	return 0;
}

static void test_fork(void)
{
	fa = p_malloc(2 * tu_pagesize());
	fb = p_malloc(1);
	tu_fill(fa, 2, 6);
	tu_fill(fb, 1, 7);
	p_unlock(fa);
	int st = tu_run_child(child, NULL, 20);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "fork: the child locks, unlocks, purges and frees inherited objects "
	       "(status %#x)", st);
	tap_ok(p_lock(fa) == 0 && state(fa, 2, 6) == 1 && state(fb, 1, 7) == 1,
	       "fork: the parent's objects are untouched by the child");
	p_free(fa);
	p_free(fb);
}

int main(void)
{
	bind_api();
	tu_require_pageout();
	if (strcmp(stats().backend, "eager") == 0)
		tap_skip_all("the eager backend drops every volatile page at once: "
		             "no object can be locked intact");
	static const size_t sizes[] = { 1, 4096, 4097, 1u << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		test_size(sizes[i]);
	test_nesting();
	test_errors();
	test_misuse();
	test_darwin();
	test_stats();
	test_threads();
	test_fork();
	tap_done();
}
