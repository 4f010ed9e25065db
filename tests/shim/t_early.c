/*
 * t_early.c - how libvrange_preload.so enters a process: allocation before
 * it is initialised, and no way in after start-up. A
 * program's preinit_array functions run before any library's constructor,
 * the shim's included, and a library preloaded beside the shim may have its
 * constructor run first (early.c); all of them may allocate, start threads
 * and use the purgeable heap. jemalloc initialises itself on that first
 * call; the shim's constructor must then still hook the arenas that exist
 * and apply VRANGE_FREE_DECAY_MS to them, and nothing may recurse, deadlock
 * or fall back to glibc's allocator.
 *
 * A preinit_array function runs before libc's initialiser has set environ
 * (getenv finds nothing there): the options it triggers the reading of,
 * VRANGE_* and jemalloc's MALLOC_CONF, must still be the user's.
 *
 * Modes (the test re-executes itself): "preloaded" with early.so in
 * LD_PRELOAD after or before the shim, "decay" with VRANGE_FREE_DECAY_MS=0,
 * "conf" with MALLOC_CONF=narenas:3, "pgfree" to free() a purgeable object
 * made in the preinit function; and "dlopen", without the preload, to
 * check that a running process cannot load it.
 * A child reports failures as bits of its exit status.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/wait.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "shim/shimtest.h"
#include "shim/early.h"

/* --- before main ------------------------------------------------------- */

#define BIG_N 16
#define PG_PAGES 3

static void *pre_blocks[EARLY_N], *ctor_blocks[EARLY_N];
static int pre_ok = -1, ctor_ok = -1;
static void *pre_big[BIG_N];
/* The purgeable heap from the preinit function: vrange_malloc, unlock,
 * lock; the result of the lock (0: intact) and whether the contents are. */
static void *pre_pg;
static int pre_pg_lock = -2, pre_pg_intact;

static void preinit(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	pre_ok = early_allocate(pre_blocks);
	for (int i = 0; i < BIG_N; i++) {
		pre_big[i] = malloc(1u << 20);
		if (pre_big[i])
			memset(pre_big[i], 0x6b, 1u << 20);
	}
	void *(*vmalloc)(size_t) = (void *(*)(size_t))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_malloc");
	int (*vlock)(void *) = (int (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_lock");
	int (*vunlock)(void *) = (int (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_unlock");
	size_t n = PG_PAGES * (size_t)sysconf(_SC_PAGESIZE);
	pre_pg = vmalloc ? vmalloc(n) : NULL;
	if (pre_pg && vlock && vunlock) {
		memset(pre_pg, 0x3c, n);
		if (vunlock(pre_pg) == 0)
			pre_pg_lock = vlock(pre_pg);
		pre_pg_intact = 1;
		for (size_t i = 0; i < n; i++)
			pre_pg_intact &= ((unsigned char *)pre_pg)[i] == 0x3c;
	}
}

__attribute__((section(".preinit_array"), used))
static void (*const preinit_entry)(int, char **, char **) = preinit;

/* The earliest a program's own constructor runs: still before or after the
 * shim's, depending on the order ld.so picks; either must work. */
__attribute__((constructor(101)))
static void early_constructor(void)
{
	ctor_ok = early_allocate(ctor_blocks);
}

/* --- checks ------------------------------------------------------------ */

static int all_jemalloc(void *const *blocks)
{
	int ok = 1;
	for (int i = 0; i < EARLY_N; i++)
		ok &= st_is_jemalloc(blocks[i]);
	return ok;
}

static void free_all(void **blocks)
{
	for (int i = 0; i < EARLY_N; i++)
		free(blocks[i]);
}

/* With early.so preloaded: its constructor allocated, through the shim. */
static int preloaded_mode(void)
{
	int fail = 0;
	int *ok = dlsym(RTLD_DEFAULT, "early_so_ok");
	void **blocks = dlsym(RTLD_DEFAULT, "early_so_blocks");
	if (!ok || !blocks)
		return 1;
	if (*ok != 1)
		fail |= 2;
	if (!all_jemalloc(blocks))
		fail |= 4;
	if (pre_ok != 1 || ctor_ok != 1 || !all_jemalloc(pre_blocks))
		fail |= 8;
	if (st_has_brk_heap() != 0)
		fail |= 16;
	if (!st_own_arena_hooked())
		fail |= 32;
	free_all(blocks);
	return fail;
}

/* VRANGE_FREE_DECAY_MS=0 holds for the arena jemalloc created before the
 * shim's constructor read it: the blocks the preinit function allocated are
 * handed to MADV_FREE as they are freed. */
static int decay_mode(void)
{
	uint64_t before = st_lazy_bytes();
	for (int i = 0; i < BIG_N; i++)
		free(pre_big[i]);
	return st_lazy_bytes() - before >= (uint64_t)(BIG_N / 2) << 20 ? 0 : 1;
}

/* MALLOC_CONF=narenas:3 holds although jemalloc read it from the preinit
 * function, before libc had set environ (jemalloc_env.c). */
static int conf_mode(void)
{
	unsigned n = 0;
	size_t len = sizeof n;
	if (st_mallctl("opt.narenas", &n, &len, NULL, 0) != 0)
		return 1;
	return n == 3 ? 0 : 2;
}

/* Without the preload: dlopen of libvrange_preload.so (VRANGE_TEST_SHIM)
 * is refused with ld.so's message, and the process goes on with its own
 * allocator. Bits: 1 it loaded, 2 another error, 4 malloc broke. */
static int dlopen_mode(void)
{
	const char *so = getenv("VRANGE_TEST_SHIM");
	if (!so)
		return 8;
	int fail = 0;
	void *h = dlopen(so, RTLD_NOW | RTLD_GLOBAL);
	const char *err = h ? "" : dlerror();
	if (h)
		fail |= 1;
	else if (!err || !strstr(err, "cannot be dlopen()ed"))
		fail |= 2;
	char *s = strdup("after the refused dlopen");
	if (!s || strcmp(s, "after the refused dlopen") != 0)
		fail |= 4;
	free(s);
	return fail;
}

static void test_dlopen(const char *self)
{
	/* The preload is the first word of LD_PRELOAD (the wrapper's). */
	char *lp = strdup(getenv("LD_PRELOAD")), *sp = strchr(lp, ' ');
	if (sp)
		*sp = '\0';
	static const char *const names[] = { "LD_PRELOAD", "VRANGE_TEST_SHIM" };
	const char *const values[] = { NULL, lp };
	int code = st_run_mode(self, "dlopen", 2, names, values);
	tap_ok(code >= 0 && !(code & 11), "dlopen of the preload into a running process "
	       "is refused: \"cannot be dlopen()ed\" (%d)", code);
	tap_ok(code >= 0 && !(code & 4), "... and the process goes on with its allocator");
	free(lp);
}

/* free() of the purgeable object the preinit function made, before the
 * shim's constructor configured the arenas: must still die (the
 * purgeable arena's decay of 0 survives that configuration). Exits 0 if
 * it did not. */
static int pgfree_mode(void)
{
	int devnull = open("/dev/null", O_WRONLY);
	if (devnull >= 0)
		dup2(devnull, 2);
	free(pre_pg);
	return 0;
}

/* early.so: beside t_early's C++ plugin (the wrapper names the plugin). */
static char *early_so_path(void)
{
	const char *plugin = getenv("VRANGE_TEST_PLUGIN");
	if (!plugin || !*plugin)
		return NULL;
	char *dir = strdup(plugin), *path = NULL;
	if (asprintf(&path, "%s/early.so", dirname(dir)) < 0)
		path = NULL;
	free(dir);
	return path;
}

static void test_preloaded(const char *self, const char *early, bool after)
{
	const char *shim = getenv("LD_PRELOAD");
	char *lp = NULL;
	if (asprintf(&lp, "%s %s", after ? shim : early, after ? early : shim) < 0) {
		tap_ok(0, "LD_PRELOAD for early.so");
		return;
	}
	int code = st_run_self(self, "preloaded", "LD_PRELOAD", lp);
	bool ran = code >= 0;
	const char *where = after ? "after" : "before";
	tap_ok(ran && !(code & 3), "early.so %s the shim in LD_PRELOAD: its constructor "
	       "allocates, reallocates and runs a thread", where);
	tap_ok(ran && !(code & 4), "early.so %s the shim: its blocks are jemalloc's", where);
	tap_ok(ran && !(code & 8), "early.so %s the shim: the program's own early "
	       "allocations still work", where);
	tap_ok(ran && !(code & 16), "early.so %s the shim: glibc's malloc never ran", where);
	tap_ok(ran && !(code & 32), "early.so %s the shim: the main thread's arena is hooked", where);
	free(lp);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "dlopen") == 0)
		return dlopen_mode();
	st_require_preload();
	if (argc > 1 && strcmp(argv[1], "preloaded") == 0)
		return preloaded_mode();
	if (argc > 1 && strcmp(argv[1], "decay") == 0)
		return decay_mode();
	if (argc > 1 && strcmp(argv[1], "conf") == 0)
		return conf_mode();
	if (argc > 1 && strcmp(argv[1], "pgfree") == 0)
		return pgfree_mode();

	tap_ok(pre_ok == 1, "a preinit_array function (before every constructor) can "
	       "malloc, calloc, realloc, posix_memalign, strdup and run a thread");
	tap_ok(all_jemalloc(pre_blocks), "... and its blocks are jemalloc's");
	tap_ok(ctor_ok == 1 && all_jemalloc(ctor_blocks),
	       "so can a constructor of priority 101, from jemalloc");
	tap_ok(pre_pg != NULL && pre_pg_lock == 0 && pre_pg_intact,
	       "vrange_malloc, vrange_unlock and vrange_lock work before every constructor "
	       "(lock %d)", pre_pg_lock);
	tap_is(st_has_brk_heap(), 0, "glibc's malloc never ran: no [heap] mapping");
	tap_ok(st_own_arena_hooked(), "the arena the preinit function used is hooked");
	free_all(pre_blocks);
	free_all(ctor_blocks);
	for (int i = 0; i < BIG_N; i++)
		free(pre_big[i]);
	int (*vfree)(void *) = (int (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "vrange_free");
	if (vfree && pre_pg)
		vfree(pre_pg);

	int code = st_run_self("/proc/self/exe", "decay", "VRANGE_FREE_DECAY_MS", "0");
	tap_ok(code == 0, "VRANGE_FREE_DECAY_MS=0 holds for the arena created before the "
	       "shim's constructor: freed blocks are MADV_FREE'd at once (%d)", code);

	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "t_early", "pgfree", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	tap_ok(pid > 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
	       "free() of a purgeable object made before the shim's constructor "
	       "still aborts (status %#x)", st);

	code = st_run_self("/proc/self/exe", "conf", "MALLOC_CONF", "narenas:3");
	tap_ok(code == 0, "MALLOC_CONF holds when jemalloc starts in a preinit_array "
	       "function, before libc has set environ (%d)", code);

	char *early = early_so_path();
	if (!early || access(early, R_OK) != 0) {
		tap_printf("Bail out! early.so not found (%s)\n", early ? early : "no plugin path");
		return 1;
	}
	test_preloaded("/proc/self/exe", early, true);
	test_preloaded("/proc/self/exe", early, false);
	test_dlopen("/proc/self/exe");
	free(early);
	tap_done();
}
