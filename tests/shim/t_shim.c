/*
 * t_shim.c - the malloc family of libvrange_preload.so, run under
 * LD_PRELOAD: every entry point and its errno contract, that libc's own
 * allocator is never reached (libc-internal allocations, dlopen), threads,
 * fork from a multi-threaded parent, and that freed large blocks are handed
 * to MADV_FREE (the extent hooks).
 *
 * The MADV_FREE cases need VRANGE_FREE_DECAY_MS=0, read at start-up: the
 * test re-executes itself with it ("lazy" mode) in a child.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "shim/shimtest.h"

/* C23, absent from glibc 2.36: only the shim has them, so look them up. */
static void (*free_sized)(void *p, size_t size);
static void (*free_aligned_sized)(void *p, size_t alignment, size_t size);

/* Opaque to the optimiser: gcc may delete a malloc/free pair, or fold a
 * malloc(SIZE_MAX) to NULL, without calling anything. */
static size_t opaque(size_t n)
{
	__asm__ volatile("" : "+r"(n));
	return n;
}

static void *volatile sink;

static void test_binding(void)
{
	tap_ok(strstr(st_owner((void *)(uintptr_t)dlsym(RTLD_DEFAULT, "malloc")),
	              "libvrange_preload") != NULL,
	       "malloc resolves to the preload (%s)",
	       st_owner((void *)(uintptr_t)dlsym(RTLD_DEFAULT, "malloc")));
	static const char *const names[] = {
		"free", "calloc", "realloc", "reallocarray", "memalign",
		"posix_memalign", "aligned_alloc", "valloc", "pvalloc",
		"malloc_usable_size", "free_sized", "free_aligned_sized",
		"mallinfo2", "malloc_trim", "malloc_stats", "malloc_info", "_Znwm",
		"_ZdlPv", "mallctl", "mallctlbymib", "__libc_malloc", "__libc_free",
		"__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc",
		"__libc_pvalloc", "__libc_mallinfo", "__libc_mallopt", "cfree",
	};
	int all = 1;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *o = st_owner((void *)(uintptr_t)dlsym(RTLD_DEFAULT, names[i]));
		if (!strstr(o, "libvrange_preload")) {
			tap_diag("%s comes from %s", names[i], o);
			all = 0;
		}
	}
	tap_ok(all, "the whole family resolves to the preload");
	int stack_var;
	static int static_var;
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tap_ok(!st_is_jemalloc(&stack_var) && !st_is_jemalloc(&static_var) &&
	       !st_is_jemalloc(m), "a stack, static or mmap address is not jemalloc's (negative control)");
	munmap(m, 4096);
	/* Only optimistic ranges and VRANGE_DEBUG need backtraces. */
	tap_ok(st_mapped("libunwind") == 0 && st_mapped("liblzma") == 0,
	       "neither libunwind nor liblzma is mapped by the shim");
}

static void test_malloc_free(void)
{
	errno = 0;
	void *a = malloc(opaque(0)), *b = malloc(opaque(0));
	tap_ok(a && b && a != b && errno == 0, "malloc(0) returns distinct pointers, errno kept");
	tap_ok(st_is_jemalloc(a), "malloc(0) comes from jemalloc");
	free(a);
	free(b);
	errno = 0;
	void *p = malloc(opaque(SIZE_MAX));
	tap_ok(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX) is NULL with ENOMEM");
	p = malloc(opaque(100));
	tap_ok(p && malloc_usable_size(p) >= 100, "malloc_usable_size >= request (%zu)",
	       malloc_usable_size(p));
	tap_is(malloc_usable_size(NULL), 0, "malloc_usable_size(NULL) is 0");
	errno = 1234;
	free(p);
	free(NULL);
	tap_is(errno, 1234, "free keeps errno");
	/* A 32 MiB block: its free purges at once (huge arena), making system
	 * calls inside free. */
	p = malloc(opaque(32u << 20));
	memset(p, 1, 32u << 20);
	errno = 4321;
	free(p);
	tap_is(errno, 4321, "free of a huge block keeps errno");
}

static void test_calloc(void)
{
	errno = 0;
	void *p = calloc(opaque(SIZE_MAX / 2), 3);
	tap_ok(p == NULL && errno == ENOMEM, "calloc overflow is NULL with ENOMEM");
	/* Dirty a block, free it, calloc the same size: must read zero even
	 * when jemalloc reuses the block. */
	int zero = 1;
	for (int round = 0; round < 4; round++) {
		size_t n = opaque((size_t)(64 + 4000 * round) * 1024);
		unsigned char *d = malloc(n);
		memset(d, 0xa5, n);
		free(d);
		unsigned char *c = calloc(1, n);
		for (size_t i = 0; i < n; i++)
			if (c[i]) {
				zero = 0;
				break;
			}
		free(c);
	}
	tap_ok(zero, "calloc after reuse of dirty blocks reads zero");
	p = calloc(0, 5);
	tap_ok(p != NULL, "calloc(0, n) returns a pointer");
	free(p);
}

static void test_realloc(void)
{
	char *p = realloc(NULL, opaque(10));
	tap_ok(p && st_is_jemalloc(p), "realloc(NULL, n) allocates");
	strcpy(p, "abcdefghi");
	p = realloc(p, opaque(1 << 20));
	tap_ok(p && strcmp(p, "abcdefghi") == 0, "realloc grows and keeps contents");
	errno = 0;
	char *q = realloc(p, opaque(SIZE_MAX - 100));
	tap_ok(q == NULL && errno == ENOMEM && strcmp(p, "abcdefghi") == 0,
	       "failed realloc: NULL, ENOMEM, old block intact");
	errno = 77;
	q = realloc(p, opaque(0));
	tap_ok(q == NULL && errno == 77, "realloc(p, 0) frees and returns NULL (glibc), errno kept");
	/* Through sink: a failed reallocarray leaves the block valid, which
	 * gcc's use-after-free warning cannot know. */
	sink = malloc(16);
	errno = 0;
	q = reallocarray(sink, opaque(SIZE_MAX / 4), 8);
	tap_ok(q == NULL && errno == ENOMEM, "reallocarray overflow: NULL, ENOMEM");
	q = reallocarray(sink, opaque(100), 10);
	tap_ok(q && malloc_usable_size(q) >= 1000, "reallocarray(p, 100, 10) gives 1000 bytes");
	free(q);
}

static int aligned(void *p, size_t a)
{
	return p && ((uintptr_t)p & (a - 1)) == 0;
}

static void test_aligned(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	void *p = memalign(opaque(64), 100);
	tap_ok(aligned(p, 64) && st_is_jemalloc(p), "memalign(64) is aligned");
	free(p);
	p = memalign(opaque(48), 100);
	tap_ok(aligned(p, 64), "memalign(48) rounds the alignment up to 64 (glibc)");
	free(p);
	errno = 0;
	p = memalign(opaque(SIZE_MAX), 1);
	tap_ok(!p && errno == EINVAL, "memalign(SIZE_MAX) is EINVAL");

	void *out = (void *)&out;
	errno = 555;
	tap_is(posix_memalign(&out, opaque(3), 8), EINVAL, "posix_memalign(3) is EINVAL");
	tap_is(posix_memalign(&out, opaque(4), 8), EINVAL,
	       "posix_memalign(4) (not a multiple of sizeof(void *)) is EINVAL");
	tap_is(posix_memalign(&out, opaque(0), 8), EINVAL, "posix_memalign(0) is EINVAL");
	tap_is(posix_memalign(&out, opaque(64), SIZE_MAX - 4096), ENOMEM,
	       "posix_memalign of SIZE_MAX - 4096 is ENOMEM");
	tap_ok(out == (void *)&out, "failed posix_memalign leaves *memptr alone");
	tap_is(posix_memalign(&out, opaque(4096), 10), 0, "posix_memalign(4096) succeeds");
	tap_ok(aligned(out, 4096), "... aligned");
	tap_is(errno, 555, "posix_memalign never touches errno");
	free(out);

	p = aligned_alloc(opaque(256), 1000);
	tap_ok(aligned(p, 256), "aligned_alloc(256) is aligned");
	free_aligned_sized(p, 256, 1000);
	errno = 0;
	p = aligned_alloc(opaque(24), 48);
	tap_ok(!p && errno == EINVAL, "aligned_alloc(24) is EINVAL");
	p = valloc(opaque(10));
	tap_ok(aligned(p, ps), "valloc is page aligned");
	free(p);
	p = pvalloc(opaque(1));
	tap_ok(aligned(p, ps) && malloc_usable_size(p) >= ps, "pvalloc(1) is a whole page");
	free(p); /* crashes under a plain jemalloc preload: glibc's pvalloc */
	p = pvalloc(opaque(0));
	tap_ok(aligned(p, ps) && malloc_usable_size(p) >= ps, "pvalloc(0) is a whole page");
	free(p);
	errno = 0;
	p = pvalloc(opaque(SIZE_MAX - 10));
	tap_ok(!p && errno == ENOMEM, "pvalloc overflow is ENOMEM");

	p = malloc(opaque(3000));
	errno = 99;
	free_sized(p, 3000);
	free_sized(NULL, 10);
	tap_is(errno, 99, "free_sized frees and keeps errno");
	p = calloc(opaque(7), 9);
	free_sized(p, 63);
	tap_ok(1, "free_sized of a calloc block");
}

static void test_introspection(void)
{
	struct mallinfo2 a = mallinfo2();
	void *p = malloc(opaque(10u << 20));
	memset(p, 3, 10u << 20);
	struct mallinfo2 b = mallinfo2();
	tap_ok(b.uordblks >= a.uordblks + (10u << 20) && b.arena >= b.uordblks,
	       "mallinfo2 counts a 10 MiB block (in use %zu -> %zu, system %zu)",
	       a.uordblks, b.uordblks, b.arena);
	free(p);
	int r = malloc_trim(0);
	tap_ok(r == 0 || r == 1, "malloc_trim answers 0 or 1 (%d)", r);
	tap_is(mallopt(M_ARENA_MAX, 2), 1, "mallopt succeeds without effect");

	/* malloc_stats writes glibc's summary to stderr. */
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	dup2(fileno(tmp), 2);
	malloc_stats();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	char buf[2048];
	size_t n = fread(buf, 1, sizeof buf - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	tap_ok(strstr(buf, "in use bytes") != NULL, "malloc_stats prints glibc's summary");
}

/* The totals' <system type="current"> of malloc_info's XML (the last one:
 * each heap has its own before them); 0 if absent. */
static size_t info_system_current(const char *xml)
{
	const char *key = "<system type=\"current\" size=\"", *last = NULL;
	for (const char *q = strstr(xml, key); q; q = strstr(q + 1, key))
		last = q;
	return last ? (size_t)strtoull(last + strlen(key), NULL, 10) : 0;
}

static void test_malloc_info(void)
{
	char *xml = NULL;
	size_t len = 0;
	void *p = malloc(opaque(10u << 20));
	memset(p, 5, 10u << 20);
	FILE *ms = open_memstream(&xml, &len);
	errno = 1234;
	int r = malloc_info(0, ms);
	int e = errno;
	fclose(ms);
	free(p);
	tap_ok(r == 0 && e == 1234, "malloc_info(0) succeeds, errno untouched (%d, %d)", r, e);
	tap_ok(xml && strncmp(xml, "<malloc version=\"1\">\n", 20) == 0 &&
	       len > 10 && strcmp(xml + len - 10, "</malloc>\n") == 0,
	       "malloc_info writes glibc's <malloc version=\"1\"> document");
	tap_ok(xml && strstr(xml, "<heap nr=\"0\">") != NULL,
	       "malloc_info has a <heap> for jemalloc's arena 0");
	size_t cur = xml ? info_system_current(xml) : 0;
	tap_ok(cur >= (10u << 20),
	       "malloc_info's system size counts a live 10 MiB block (%zu)", cur);
	free(xml);

	xml = NULL;
	ms = open_memstream(&xml, &len);
	errno = 0;
	r = malloc_info(1, ms);
	e = errno;
	fclose(ms);
	tap_ok(r == -1 && e == EINVAL && len == 0,
	       "malloc_info(1) is EINVAL and writes nothing (%d, %s, %zu bytes)",
	       r, strerror(e), len);
	free(xml);
}

/* glibc's __libc_* names: declared here as a program written against
 * glibc declares them (they are public, GLIBC_2.2.5), and bound at run time
 * to the preload's, so each block is jemalloc's and crosses freely between
 * the two names. */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t nmemb, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void *__libc_valloc(size_t n);
extern void *__libc_pvalloc(size_t n);

static void test_libc_names(void)
{
	char *a = __libc_malloc(opaque(100));
	tap_ok(a && st_is_jemalloc(a), "__libc_malloc's block is jemalloc's");
	strcpy(a, "abc");
	char *b = __libc_realloc(a, opaque(5000));
	tap_ok(b && st_is_jemalloc(b) && strcmp(b, "abc") == 0,
	       "__libc_realloc moves it within jemalloc, contents kept");
	free(b);
	unsigned char *c = __libc_calloc(opaque(1000), 3);
	int zero = c != NULL;
	for (size_t i = 0; c && i < 3000; i++)
		zero &= c[i] == 0;
	tap_ok(zero && st_is_jemalloc(c), "__libc_calloc's block is jemalloc's and zero");
	__libc_free(c);
	void *d = __libc_memalign(256, opaque(10));
	void *v = __libc_valloc(opaque(10));
	void *pv = __libc_pvalloc(opaque(10));
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	tap_ok(d && (uintptr_t)d % 256 == 0 && v && (uintptr_t)v % ps == 0 && pv &&
	       (uintptr_t)pv % ps == 0 && malloc_usable_size(pv) >= ps &&
	       st_is_jemalloc(d) && st_is_jemalloc(v) && st_is_jemalloc(pv),
	       "__libc_memalign, __libc_valloc and __libc_pvalloc: aligned jemalloc blocks");
	__libc_free(d);
	__libc_free(v);
	free(pv);
	/* cfree: a compatibility symbol only (no program can link it any
	 * more), so reached as an old binary's lookup would reach it. */
	void (*cf)(void *) = (void (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "cfree");
	void *e = malloc(opaque(64));
	tap_ok(cf != NULL, "cfree is there");
	if (cf)
		cf(e);
	else
		free(e);
	tap_is(st_has_brk_heap(), 0, "glibc's malloc never ran: no [heap] mapping");
}

/* Allocations made inside libc and the dynamic linker. */
static void test_libc_internal(void)
{
	char *s = strdup("volatile ranges");
	tap_ok(st_is_jemalloc(s), "strdup's block comes from jemalloc");
	free(s);

	FILE *f = fopen("/proc/self/status", "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t got = f ? getline(&line, &cap, f) : -1;
	tap_ok(f && st_is_jemalloc(f), "fopen's FILE comes from jemalloc");
	tap_ok(got > 0 && st_is_jemalloc(line), "getline's buffer comes from jemalloc");
	tap_ok(f && f->_IO_buf_base && st_is_jemalloc(f->_IO_buf_base),
	       "the stdio buffer comes from jemalloc");
	free(line);
	if (f)
		fclose(f);

	char *a = NULL;
	int w = asprintf(&a, "%d-%s", 42, "x");
	tap_ok(w == 4 && st_is_jemalloc(a), "asprintf's string comes from jemalloc");
	free(a);

	char *mbuf = NULL;
	size_t msize = 0;
	FILE *ms = open_memstream(&mbuf, &msize);
	fprintf(ms, "%0100d", 7);
	fclose(ms);
	tap_ok(msize == 100 && st_is_jemalloc(mbuf), "open_memstream's buffer comes from jemalloc");
	free(mbuf);

	/* dlopen: the link map is calloc'ed by the dynamic linker; glibc's
	 * dlopen handle is that link map. */
	void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
	void *h2 = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
	void *hh = h2 ? h2 : h;
	tap_ok(hh && st_is_jemalloc(hh), "dlopen's link map comes from jemalloc");
	if (h2)
		dlclose(h2);
	if (h)
		dlclose(h);

	char *rp = realpath(".", NULL);
	tap_ok(rp && st_is_jemalloc(rp), "realpath's buffer comes from jemalloc");
	free(rp);

	tap_is(st_has_brk_heap(), 0, "glibc's malloc never ran: no [heap] mapping");
}

/* --- threads ------------------------------------------------------------ */

#define NTHREADS 8
#define NSLOTS 256

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned char *slot[NSLOTS] = { 0 };
	size_t len[NSLOTS] = { 0 };
	long bad = 0;
	for (int it = 0; it < 60000; it++) {
		unsigned r = rand_r(&seed);
		unsigned i = r % NSLOTS;
		if (slot[i]) {
			if (slot[i][0] != (unsigned char)i || slot[i][len[i] - 1] != (unsigned char)i)
				bad++;
			if (r & 0x100) {
				free(slot[i]);
				slot[i] = NULL;
				continue;
			}
			size_t n = 1 + (r >> 12) % ((r & 0x200) ? 300000 : 2000);
			unsigned char *q = realloc(slot[i], n);
			if (!q) {
				bad++;
				continue;
			}
			slot[i] = q;
			len[i] = n;
		} else {
			size_t n = 1 + (r >> 12) % ((r & 0x200) ? 100000 : 500);
			slot[i] = (r & 0x400) ? calloc(1, n) : malloc(n);
			if (!slot[i]) {
				bad++;
				continue;
			}
			len[i] = n;
		}
		slot[i][0] = slot[i][len[i] - 1] = (unsigned char)i;
	}
	for (unsigned i = 0; i < NSLOTS; i++)
		free(slot[i]);
	if (!st_own_arena_hooked())
		bad += 1000000;
	return (void *)bad;
}

/* malloc and free only: malloc is jemalloc's own and calls nothing of the
 * shim, yet the arena jemalloc creates for this thread must carry the
 * shim's hooks from the start (extents.c: jemalloc's arena configuration).
 * Returns 1 if it does not after the first malloc, before any free, 2 if
 * not at the end. */
static void *malloc_only(void *arg)
{
	(void)arg;
	void *p[64];
	p[0] = malloc(opaque(24));
	bool born = st_own_arena_hooked();
	free(p[0]);
	if (!born)
		return (void *)(uintptr_t)1;
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 64; i++)
			p[i] = malloc(opaque((size_t)(16 + 97 * i)));
		for (int i = 0; i < 64; i++)
			free(p[i]);
	}
	return (void *)(uintptr_t)(st_own_arena_hooked() ? 0 : 2);
}

static void test_threads(void)
{
	/* First, while most automatic arenas do not exist yet: threads that
	 * only malloc and free, each bound to an arena jemalloc creates. */
	pthread_t m[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&m[i], NULL, malloc_only, NULL);
	int unborn = 0, unhooked = 0;
	for (int i = 0; i < NTHREADS; i++) {
		void *r;
		pthread_join(m[i], &r);
		unborn += (uintptr_t)r == 1;
		unhooked += (uintptr_t)r == 2;
	}
	tap_is(unborn, 0, "the arena jemalloc creates for a thread has the shim's hooks "
	       "from its first malloc, before any free");
	tap_is(unhooked, 0, "the arena of every thread that only mallocs and frees is hooked");

	pthread_t t[NTHREADS];
	for (uintptr_t i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, churn, (void *)(i + 1));
	long bad = 0;
	for (int i = 0; i < NTHREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (long)r;
	}
	tap_ok(bad < 1000000, "every thread's arena carries the shim's extent hooks");
	tap_is(bad % 1000000, 0, "%d threads of malloc/calloc/realloc/free churn keep contents",
	       NTHREADS);
}

/* --- fork from a multi-threaded parent ---------------------------------- */

static volatile int stop_bg;

static void *background(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	while (!stop_bg) {
		void *p = malloc(1 + rand_r(&seed) % 50000);
		sink = p;
		free(p);
	}
	return NULL;
}

static void *child_thread(void *arg)
{
	for (int i = 0; i < 1000; i++)
		free(malloc((size_t)i * 37 + 1));
	return arg;
}

static void test_fork(void)
{
	pthread_t bg[4];
	stop_bg = 0;
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&bg[i], NULL, background, (void *)(i + 7));
	int ok = 0;
	const int rounds = 30;
	for (int r = 0; r < rounds; r++) {
		pid_t pid = fork();
		if (pid == 0) {
			alarm(10);
			char *s = strdup("child");
			void *big = malloc(20u << 20);
			pthread_t t;
			int good = s && big && pthread_create(&t, NULL, child_thread, s) == 0;
			if (good)
				pthread_join(t, NULL);
			free(big);
			free(s);
			_exit(good ? 0 : 1);
		}
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else
			tap_diag("child %d: status 0x%x", r, st);
		free(malloc(1000 + (size_t)r));
	}
	stop_bg = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(bg[i], NULL);
	tap_is(ok, rounds, "fork with 4 allocating threads: every child allocates, "
	       "starts a thread and exits cleanly");
	void *p = malloc(12345);
	tap_ok(p && st_is_jemalloc(p), "the parent still allocates after the forks");
	free(p);
}

/* --- the modes below run in a fresh process ------------------------------ */

/*
 * Runs this program again as "self mode", with VRANGE_FREE_DECAY_MS and
 * MALLOC_CONF set to decay and conf (unset where NULL), both read at
 * start-up; returns its exit code, or -1 if it did not exit normally or
 * could not be started.
 */
static int run_mode(const char *self, const char *mode, const char *decay, const char *conf)
{
	static const char *const names[] = { "VRANGE_FREE_DECAY_MS", "MALLOC_CONF" };
	const char *const values[] = { decay, conf };
	return st_run_mode(self, mode, 2, names, values);
}

/* --- MADV_FREE of freed extents (lazy mode: VRANGE_FREE_DECAY_MS=0) ------ */

/* jemalloc's flags for mallocx (jemalloc.h), without its header. */
#define ST_MALLOCX_ARENA(a) ((int)(((unsigned)(a) + 1) << 20))
#define ST_MALLOCX_TCACHE_NONE (1 << 8)

static void *(*st_mallocx)(size_t, int);
static void (*st_dallocx)(void *, int);

/* The extent hooks of arena ind, or NULL. */
static void *arena_hooks(unsigned ind)
{
	char name[64];
	void *h = NULL;
	size_t len = sizeof h;
	snprintf(name, sizeof name, "arena.%u.extent_hooks", ind);
	return st_mallctl(name, &h, &len, NULL, 0) == 0 ? h : NULL;
}

/* A 4 MiB block of arena ind, freed: does the shim MADV_FREE it (decay 0)? */
static bool arena_purges_lazily(unsigned ind)
{
	uint64_t b = st_lazy_bytes();
	unsigned char *p = st_mallocx(4u << 20, ST_MALLOCX_ARENA(ind) | ST_MALLOCX_TCACHE_NONE);
	if (!p)
		return false;
	memset(p, 7, 4u << 20);
	st_dallocx(p, ST_MALLOCX_TCACHE_NONE);
	return st_lazy_bytes() - b >= (4u << 20);
}

/*
 * Arenas the program creates: through mallctl and through mallctlbymib,
 * and again at the index of a destroyed one, each gets the shim's hooks
 * (those of arena 0) and its freed blocks are MADV_FREE'd. Bits 32 and 64.
 */
static int created_arenas(void)
{
	int fail = 0;
	st_mallocx = (void *(*)(size_t, int))(uintptr_t)dlsym(RTLD_DEFAULT, "mallocx");
	st_dallocx = (void (*)(void *, int))(uintptr_t)dlsym(RTLD_DEFAULT, "dallocx");
	int (*tomib)(const char *, size_t *, size_t *) =
		(int (*)(const char *, size_t *, size_t *))(uintptr_t)dlsym(RTLD_DEFAULT,
		                                                             "mallctlnametomib");
	int (*bymib)(const size_t *, size_t, void *, size_t *, void *, size_t) =
		(int (*)(const size_t *, size_t, void *, size_t *, void *, size_t))(uintptr_t)
		dlsym(RTLD_DEFAULT, "mallctlbymib");
	if (!st_mallocx || !st_dallocx || !tomib || !bymib)
		return 32 | 64;
	void *h0 = arena_hooks(0);
	unsigned a = 0, b = 0, c = 0;
	size_t len = sizeof a;
	if (st_mallctl("arenas.create", &a, &len, NULL, 0) != 0 || !h0 ||
	    arena_hooks(a) != h0 || !arena_purges_lazily(a))
		fail |= 32;
	size_t mib[2], miblen = 2;
	len = sizeof b;
	if (tomib("arenas.create", mib, &miblen) != 0 ||
	    bymib(mib, miblen, &b, &len, NULL, 0) != 0 || b == a ||
	    arena_hooks(b) != h0 || !arena_purges_lazily(b))
		fail |= 64;
	/* Destroyed, then created again: jemalloc reuses the index. */
	char name[64];
	snprintf(name, sizeof name, "arena.%u.destroy", b);
	len = sizeof c;
	if (st_mallctl(name, NULL, NULL, NULL, 0) != 0 ||
	    st_mallctl("arenas.create", &c, &len, NULL, 0) != 0 ||
	    arena_hooks(c) != h0 || !arena_purges_lazily(c))
		fail |= 64;
	if (fail)
		fprintf(stderr, "created arenas %u %u %u: hooks %p %p %p (arena 0: %p)\n", a, b, c,
		        arena_hooks(a), arena_hooks(b), arena_hooks(c), h0);
	return fail;
}

static int lazy_mode(void)
{
	/* Exit status bits name what failed; stdout stays TAP-free. */
	int fail = 0;
	uint64_t before = st_lazy_bytes();
	long long lf0 = st_rollup("LazyFree");
	/* Large blocks of the ordinary arenas (1 MiB) ... */
	enum { N = 48 };
	void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(opaque(1u << 20));
		memset(p[i], 0x5a, 1u << 20);
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
	uint64_t mid = st_lazy_bytes();
	if (mid - before < (uint64_t)(N / 2) << 20)
		fail |= 1;
	/* ... and of the huge arena (16 MiB), created by this first huge
	 * allocation and hooked right after it. */
	void *h = malloc(opaque(16u << 20));
	memset(h, 0x5a, 16u << 20);
	free(h);
	uint64_t after = st_lazy_bytes();
	if (after - mid < (16u << 20))
		fail |= 2;
	long long lf1 = st_rollup("LazyFree");
	if (lf0 >= 0 && lf1 >= 0 && lf1 <= lf0)
		fail |= 4;
	/* Reused lazily freed memory works and calloc still zeroes it. */
	unsigned char *c = calloc(1, 16u << 20);
	for (size_t i = 0; i < (16u << 20); i += 4096)
		if (c[i])
			fail |= 8;
	free(c);
	/* With every free purging, errno survives thousands of frees (and the
	 * successful mallocs between them) of every size class range: the
	 * shim's malloc is jemalloc's, and free jumps straight into it. */
	errno = 777;
	for (int i = 0; i < 6000 && !(fail & 16); i++) {
		size_t n = (size_t)1 << (4 + i % 21); /* 16 B .. 16 MiB */
		unsigned char *q = malloc(opaque(n + (size_t)i % 61));
		if (!q || errno != 777)
			fail |= 16;
		else {
			q[0] = q[n - 1] = 1;
			if (i % 3 == 0)
				free_sized(q, n + (size_t)i % 61);
			else
				free(q);
			if (errno != 777)
				fail |= 16;
		}
	}
	fail |= created_arenas();
	if (fail) {
		fprintf(stderr, "lazy: %llu -> %llu -> %llu bytes, LazyFree %lld -> %lld\n",
		        (unsigned long long)before, (unsigned long long)mid,
		        (unsigned long long)after, lf0, lf1);
	}
	return fail;
}

/* --- calloc over pages the kernel took back (zero.c) -------------------- */

/* Pages of [p, p + n) resident now (mincore), whole pages only. */
static size_t resident_pages(const unsigned char *p, size_t n)
{
	size_t ps = tu_pagesize();
	uintptr_t a = ((uintptr_t)p + ps - 1) & ~(ps - 1), e = ((uintptr_t)p + n) & ~(ps - 1);
	unsigned char vec[4096];
	size_t k = (e - a) / ps, r = 0;
	if (a >= e || k > sizeof vec || mincore((void *)a, e - a, vec) != 0)
		return (size_t)-1;
	for (size_t i = 0; i < k; i++)
		r += vec[i] & 1;
	return r;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Run with VRANGE_FREE_DECAY_MS=0 (every free is MADV_FREE'd at once).
 * Bits: 1 reused block not zero, 2 reclaimed pages faulted in by calloc,
 * 4 half-reclaimed block not zero, 8 fork child's calloc not zero,
 * 16 reclaim did not happen, 32 calloc did not reuse the reclaimed block
 * (for 16 and 32, bit 2 cannot be judged), 64 the pages of a reused block
 * were written over instead of dropped.
 */
static int zero_mode(void)
{
	enum { N = 4u << 20 };
	size_t ps = tu_pagesize();
	int fail = 0;
	tu_pin_cpu();
	/* A reused block whose pages are still there: cleared. */
	unsigned char *p = malloc(opaque(N));
	memset(p, 0x5a, N);
	free(p);
	unsigned char *q = calloc(1, opaque(N));
	/* Dropped, not overwritten: only the two partial end pages stay
	 * (counted before the reads below map the zero page). */
	size_t kept = q ? resident_pages(q, N) : 0;
	if (kept > 2)
		fail |= 64;
	if (!q || !all_zero(q, N))
		fail |= 1;
	/* The same block, freed and reclaimed: zero, and calloc leaves the
	 * reclaimed pages alone (they stay out of memory). */
	memset(q, 0x5a, N);
	free(q);
	uintptr_t a = ((uintptr_t)q + ps - 1) & ~(ps - 1);
	size_t pages = (N - (a - (uintptr_t)q)) / ps;
	madvise((void *)a, pages * ps, MADV_PAGEOUT);
	size_t before = resident_pages(q, N);
	if (before > pages / 8)
		fail |= 16;
	unsigned char *r = calloc(1, opaque(N));
	/* The same extent, at another cache-line offset (jemalloc's
	 * cache-oblivious placement): count the pages calloc faulted in. */
	if (((uintptr_t)r & ~(ps - 1)) == ((uintptr_t)q & ~(ps - 1))) {
		size_t after = resident_pages(r, N);
		if (after > before + 2)
			fail |= 2;
	} else {
		fail |= 32;
	}
	if (!r || !all_zero(r, N))
		fail |= 1;
	/* Half reclaimed, half still holding 0x5a: all zero. */
	memset(r, 0x5a, N);
	free(r);
	madvise((void *)a, pages / 2 * ps, MADV_PAGEOUT);
	unsigned char *h = calloc(1, opaque(N));
	if (!h || !all_zero(h, N))
		fail |= 4;
	free(h);
	/* fork: a 32 MiB block the parent never touches is written by the
	 * child, freed and asked back with calloc there (a per-process view
	 * of the pages, taken in the parent, would call them absent). */
	free(calloc(1, opaque(N)));
	unsigned char *big = malloc(opaque(32u << 20));
	pid_t pid = fork();
	if (pid == 0) {
		memset(big, 0x5a, 32u << 20);
		free(big);
		unsigned char *z = calloc(1, opaque(32u << 20));
		_exit(z && all_zero(z, 32u << 20) ? 0 : 1);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	free(big);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail |= 8;
	if (fail)
		fprintf(stderr, "zero: resident %zu of %zu pages before calloc\n", before, pages);
	return fail;
}

static void test_zero(const char *self)
{
	int code = run_mode(self, "zero", "0", NULL);
	bool ran = code >= 0;
	tap_ok(ran && !(code & 1), "calloc over a reused block (pages kept, then reclaimed) reads zero");
	tap_ok(ran && !(code & 64), "its pages are dropped, not written over (nothing kept resident)");
	tap_ok(ran && !(code & 16), "MADV_PAGEOUT reclaimed the freed block");
	tap_ok(ran && !(code & 32), "calloc reused the reclaimed block");
	tap_ok(ran && !(code & 2), "calloc leaves the reclaimed pages out of memory");
	tap_ok(ran && !(code & 4), "calloc over a half-reclaimed block reads zero");
	tap_ok(ran && !(code & 8), "a forked child's calloc over a block it wrote reads zero");
}

/* --- huge blocks: calloc's or malloc's habits (extents.c) --------------- */

enum { HUGE_N = 16u << 20 };

/*
 * n huge blocks from calloc (zeroed) or malloc, each written whole and
 * freed but the last, which is returned written; *advised tells whether
 * the VmFlags of its mapping held flag right after the allocation.
 */
static unsigned char *huge_rounds(bool zeroed, int n, const char *flag, bool *advised)
{
	unsigned char *p = NULL;
	for (int i = 0; i < n; i++) {
		free(p);
		p = zeroed ? calloc(1, opaque(HUGE_N)) : malloc(opaque(HUGE_N));
		*advised = p && st_vmflag(p + HUGE_N / 2, flag);
		if (p)
			memset(p, 1, HUGE_N);
	}
	return p;
}

/*
 * Bits: 1 freed calloc'd huge blocks were not given back zeroed
 * (MADV_DONTNEED) once calloc dominates, 2 freed malloc'd ones were not
 * lazily freed once malloc dominates again, 4 a calloc'd huge block is on
 * huge pages, 8 a malloc'd one is not.
 */
static int huge_mode(void)
{
	int fail = 0;
	bool advised;
	unsigned char *p = huge_rounds(true, 10, "nh", &advised);
	if (!advised)
		fail |= 4;
	long long r0 = st_rollup("Rss"), l0 = st_rollup("LazyFree");
	free(p);
	long long r1 = st_rollup("Rss"), l1 = st_rollup("LazyFree");
	if (!p || r0 - r1 < 12 * 1024 || l1 - l0 > 4 * 1024)
		fail |= 1;
	p = huge_rounds(false, 20, "hg", &advised);
	if (!advised)
		fail |= 8;
	l0 = st_rollup("LazyFree");
	free(p);
	if (!p || st_rollup("LazyFree") - l0 < 12 * 1024)
		fail |= 2;
	return fail;
}

static void test_huge(const char *self)
{
	int code = run_mode(self, "huge", NULL, NULL);
	bool ran = code >= 0;
	tap_ok(ran && !(code & 1), "calloc-dominated huge blocks are given back zeroed (MADV_DONTNEED)");
	tap_ok(ran && !(code & 2), "malloc-dominated ones are lazily freed again (MADV_FREE)");
	tap_ok(ran && !(code & 4), "a calloc'd huge block is on small pages (VmFlags nh)");
	tap_ok(ran && !(code & 8), "a malloc'd huge block is on transparent huge pages (VmFlags hg)");
}

/* --- jemalloc's background thread (MALLOC_CONF=background_thread:true) -- */

/* Frees 64 MiB and idles: does the background thread make it LazyFree? */
static int idle_mode(void)
{
	void *p[64];
	for (int i = 0; i < 64; i++) {
		p[i] = malloc(opaque(1u << 20));
		memset(p[i], 1, 1u << 20);
	}
	long long l0 = st_rollup("LazyFree");
	for (int i = 0; i < 64; i++)
		free(p[i]);
	for (int t = 0; t < 40; t++) {
		usleep(100 * 1000);
		if (st_rollup("LazyFree") - l0 >= 32 * 1024)
			return 0;
	}
	return 1;
}

static void test_background_thread(const char *self)
{
	int code = run_mode(self, "idle", NULL, "background_thread:true");
	tap_ok(code >= 0, "MALLOC_CONF=background_thread:true starts and exits");
	tap_ok(code == 0, "its background thread makes memory freed before an idle spell reclaimable");
}

/* --- VRANGE_STATS=1: the report at exit --------------------------------- */

/* A huge block freed (lazily, at once) and a purgeable object locked
 * intact, then exit: the report says so. */
static int stats_mode(void)
{
	void *(*pm)(size_t) = (void *(*)(size_t))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_malloc");
	void (*pf)(void *) = (void (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_free");
	int (*unlock)(void *) = (int (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_unlock");
	int (*lock)(void *) = (int (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_lock");
	if (!pm || !pf || !unlock || !lock)
		return 1;
	unsigned char *h = malloc(opaque(16u << 20));
	memset(h, 1, 16u << 20);
	free(h);
	void *o = pm(3 * 4096);
	if (!o || unlock(o) != 0 || lock(o) != 0)
		return 1;
	pf(o);
	return 0;
}

static void test_stats(const char *self)
{
	int fd[2];
	if (pipe(fd) != 0) {
		tap_ok(0, "pipe for the VRANGE_STATS child");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		setenv("VRANGE_STATS", "1", 1);
		unsetenv("MALLOC_CONF");
		execl(self, "t_shim", "stats", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	static char out[8192];
	tu_read_all(fd[0], out, sizeof out);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "VRANGE_STATS=1 child ran");
	char prefix[64];
	snprintf(prefix, sizeof prefix, "libvrange: t_shim[%d]: ", (int)pid);
	tap_ok(strstr(out, prefix) == out, "the report starts with the program and its pid");
	tap_ok(strstr(out, "]: backend ") != NULL, "the report names the backend");
	tap_ok(strstr(out, "purgeable objects locked intact 1, purged 0") != NULL,
	       "it counts the purgeable object locked intact");
	const char *m = strstr(out, "]: shim: freed memory made reclaimable (MADV_FREE): ");
	unsigned long long bytes = 0;
	if (m)
		sscanf(m, "]: shim: freed memory made reclaimable (MADV_FREE): %llu bytes", &bytes);
	tap_ok(bytes >= (16u << 20), "the bytes the shim made reclaimable (%llu)", bytes);
	const char *l = strstr(out, "]: process: LazyFree now ");
	long long kib = -1;
	if (l)
		sscanf(l, "]: process: LazyFree now %lld KiB", &kib);
	tap_ok(kib >= 0 && !strstr(out, "not taken by the kernel"),
	       "LazyFree is a figure of the process now (%lld KiB), not of what the "
	       "kernel took", kib);
	if (!m || !l)
		tap_diag("report: %.900s", out);
}

static void test_lazy(const char *self)
{
	int code = run_mode(self, "lazy", "0", NULL);
	bool ran = code >= 0;
	tap_ok(ran && !(code & 1),
	       "VRANGE_FREE_DECAY_MS=0: freed 1 MiB blocks are MADV_FREE'd at once");
	tap_ok(ran && !(code & 2), "the huge arena (16 MiB block) is hooked and MADV_FREE'd");
	tap_ok(ran && !(code & 4), "the kernel counts them as LazyFree");
	tap_ok(ran && !(code & 8), "calloc over reused lazily freed pages reads zero");
	tap_ok(ran && !(code & 16),
	       "6000 malloc and purging free/free_sized of 16 B-16 MiB keep errno");
	tap_ok(ran && !(code & 32),
	       "an arena the program creates (mallctl arenas.create) is hooked");
	tap_ok(ran && !(code & 64),
	       "so is one created by mallctlbymib, and one at a destroyed arena's index");

	/* Default decay (1000 ms): after a free of 16 MiB in the huge arena
	 * the counter moves at once; ordinary arenas follow within the decay
	 * time, driven by later allocator activity. */
	uint64_t b = st_lazy_bytes();
	void *p[16];
	for (int i = 0; i < 16; i++) {
		p[i] = malloc(opaque(1u << 20));
		memset(p[i], 1, 1u << 20);
	}
	for (int i = 0; i < 16; i++)
		free(p[i]);
	usleep(1300 * 1000);
	for (int i = 0; i < 20000; i++)
		free(malloc(opaque((size_t)(i % 64) * 16 + 8)));
	tap_ok(st_lazy_bytes() - b >= (4u << 20),
	       "default decay: freed 16 MiB of 1 MiB blocks become reclaimable "
	       "within 1.3 s (%llu bytes)", (unsigned long long)(st_lazy_bytes() - b));
}

/*
 * A C program maps no C++ runtime because of the preload (jemalloc is
 * linked into it), yet a C++ plugin it dlopens, with RTLD_LOCAL, gets the
 * whole operator new contract from the preload's operators: the
 * new-handler, std::bad_alloc, the nothrow forms (cxx.cc finds the
 * plugin's libstdc++ at run time).
 */
static void test_cxx_plugin(void)
{
	static const char *const libs[] = {
		"libstdc++", "libm.so", "libgcc_s", "libjemalloc",
	};
	int none = 1;
	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
		if (st_mapped(libs[i]) == 1) {
			tap_diag("%s is mapped", libs[i]);
			none = 0;
		}
	}
	tap_ok(none, "a C program under the preload maps no libstdc++, libm, "
	       "libgcc_s or libjemalloc");
	const char *path = getenv("VRANGE_TEST_PLUGIN");
	void *h = path && *path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
	if (!h) {
		tap_ok(false, "dlopen the C++ plugin (%s): %s",
		       path ? path : "VRANGE_TEST_PLUGIN unset", dlerror());
		return;
	}
	int (*throws)(void) = (int (*)(void))(uintptr_t)dlsym(h, "plugin_throws_bad_alloc");
	int (*nothrow)(void) = (int (*)(void))(uintptr_t)dlsym(h, "plugin_nothrow_null");
	tap_ok(throws && throws() == 1,
	       "in a C++ plugin of a C program: new-handler, then std::bad_alloc");
	tap_ok(nothrow && nothrow() == 1,
	       "in a C++ plugin of a C program: nothrow new whose handler throws is NULL");
	int (*other)(void) = (int (*)(void))(uintptr_t)dlsym(h, "plugin_handler_exception");
	tap_ok(other && other() == 1, "in a C++ plugin of a C program: a handler's exception "
	       "of another type goes through operator new unchanged");
	dlclose(h);
}

int main(int argc, char **argv)
{
	st_require_preload();
	free_sized = (void (*)(void *, size_t))(uintptr_t)dlsym(RTLD_DEFAULT, "free_sized");
	free_aligned_sized = (void (*)(void *, size_t, size_t))(uintptr_t)
		dlsym(RTLD_DEFAULT, "free_aligned_sized");
	if (!free_sized || !free_aligned_sized) {
		tap_printf("Bail out! free_sized/free_aligned_sized missing\n");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "lazy") == 0)
		return lazy_mode();
	if (argc > 1 && strcmp(argv[1], "zero") == 0)
		return zero_mode();
	if (argc > 1 && strcmp(argv[1], "huge") == 0)
		return huge_mode();
	if (argc > 1 && strcmp(argv[1], "idle") == 0)
		return idle_mode();
	if (argc > 1 && strcmp(argv[1], "stats") == 0)
		return stats_mode();
	test_binding();
	test_cxx_plugin();
	test_malloc_free();
	test_calloc();
	test_realloc();
	test_aligned();
	test_introspection();
	test_malloc_info();
	test_libc_names();
	test_libc_internal();
	test_threads();
	test_fork();
	test_lazy("/proc/self/exe");
	test_zero("/proc/self/exe");
	test_huge("/proc/self/exe");
	test_background_thread("/proc/self/exe");
	test_stats("/proc/self/exe");
	tap_done();
}
