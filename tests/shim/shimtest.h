/*
 * shimtest.h - helpers for the tests that run under
 * LD_PRELOAD=libvrange_preload.so (tests/shim/preload-stub.sh writes the
 * wrapper that sets it): is the preload really there, does a pointer belong
 * to jemalloc, jemalloc's statistics, the kernel's LazyFree count.
 *
 * The tests link neither jemalloc nor libvrange: they reach jemalloc's
 * mallctl and the shim's counter with dlsym, as any program would.
 */
#ifndef VRANGE_TESTS_SHIMTEST_H
#define VRANGE_TESTS_SHIMTEST_H

#include <dlfcn.h>

#include "vrange.h"
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

typedef int (*st_mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static st_mallctl_fn st_mallctl;

/* Skips the test unless the shim is preloaded. */
__attribute__((unused))
static void st_require_preload(void)
{
	const char *lp = getenv("LD_PRELOAD");
	if (!lp || !strstr(lp, "libvrange_preload"))
		tap_skip_all("not run under LD_PRELOAD=libvrange_preload.so "
		             "(use the -preload wrapper)");
	st_mallctl = (st_mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mallctl");
	if (!st_mallctl) {
		tap_printf("Bail out! jemalloc's mallctl not found\n");
		exit(1);
	}
}

/* The file that defines the function at fn ("" if unknown). */
__attribute__((unused))
static const char *st_owner(const void *fn)
{
	Dl_info info;
	if (!fn || !dladdr(fn, &info) || !info.dli_fname)
		return "";
	return info.dli_fname;
}

/*
 * 1 if p is the start of a live jemalloc allocation. jemalloc's
 * "arenas.lookup" finds the arena of any address it manages, but for an
 * address it never managed it may read a missing node of its radix tree and
 * crash (measured: a stack address does). So the lookup runs in a forked
 * child, where a crash just means "not jemalloc's".
 */
__attribute__((unused))
static int st_is_jemalloc(const void *p)
{
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		unsigned arena = 0;
		size_t len = sizeof arena;
		const void *q = p;
		_exit(st_mallctl("arenas.lookup", &arena, &len, (void *)&q, sizeof q) == 0 ? 0 : 1);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

__attribute__((unused))
static size_t st_stat(const char *name)
{
	uint64_t epoch = 1;
	size_t len = sizeof epoch, v = 0;
	st_mallctl("epoch", &epoch, &len, &epoch, len);
	len = sizeof v;
	if (st_mallctl(name, &v, &len, NULL, 0) != 0)
		return 0;
	return v;
}

/* Bytes the shim's hooks handed to MADV_FREE: the statistics of the
 * preloaded library (0 if it is not there). */
__attribute__((unused))
static uint64_t st_lazy_bytes(void)
{
	int (*fn)(struct vrange_stats *) = (int (*)(struct vrange_stats *))(uintptr_t)
		dlsym(RTLD_DEFAULT, "vrange_get_stats");
	struct vrange_stats s;
	return fn && fn(&s) == 0 ? s.shim_lazy_bytes : 0;
}

/* A "Name: N kB" field of /proc/self/smaps_rollup, in bytes (-1 if none). */
__attribute__((unused))
static long long st_rollup(const char *field)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = atoll(line + n + 1) * 1024;
			break;
		}
	fclose(f);
	return v;
}

/* 1 if a line of /proc/self/maps contains name (a file's name, "[heap]"),
 * 0 if none does, -1 if the file cannot be read. */
__attribute__((unused))
static int st_mapped(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, name))
			found = 1;
	fclose(f);
	return found;
}

/* 1 if /proc/self/maps has a [heap] line: glibc's malloc uses the program
 * break for its main arena, so a [heap] means it ran. */
__attribute__((unused))
static int st_has_brk_heap(void)
{
	return st_mapped("[heap]");
}

/*
 * Runs the test program self again with the argument mode, in a child,
 * after setting each of the n environment variables names[i] to values[i]
 * (or unsetting it: NULL). Returns the child's exit status, or -1 if it died
 * or could not be executed (said with tap_diag).
 */
__attribute__((unused))
static int st_run_mode(const char *self, const char *mode, int n,
                       const char *const *names, const char *const *values)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++) {
			if (values[i])
				setenv(names[i], values[i], 1);
			else
				unsetenv(names[i]);
		}
		execl(self, self, mode, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) == 127) {
		tap_diag("%s mode: wait status %#x", mode, st);
		return -1;
	}
	return WEXITSTATUS(st);
}

/* The same with one variable set. */
__attribute__((unused))
static int st_run_self(const char *self, const char *mode, const char *name,
                       const char *value)
{
	return st_run_mode(self, mode, 1, &name, &value);
}

/* Does the calling thread's arena carry the shim's hooks (the same hooks as
 * arena 0, which start-up hooked)? */
__attribute__((unused))
static int st_own_arena_hooked(void)
{
	unsigned ar = 0;
	size_t l = sizeof ar;
	st_mallctl("thread.arena", &ar, &l, NULL, 0);
	char name[64];
	void *mine = NULL, *a0 = NULL;
	snprintf(name, sizeof name, "arena.%u.extent_hooks", ar);
	l = sizeof mine;
	st_mallctl(name, &mine, &l, NULL, 0);
	l = sizeof a0;
	st_mallctl("arena.0.extent_hooks", &a0, &l, NULL, 0);
	return mine && mine == a0;
}

/* Does the VmFlags line of the mapping that holds p contain flag ("hg":
 * MADV_HUGEPAGE, "nh": MADV_NOHUGEPAGE)? */
__attribute__((unused))
static int st_vmflag(const void *p, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		/* A mapping's header line; field lines ("AnonHugePages:")
		 * never parse as two numbers joined by '-'. */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			char pat[8];
			snprintf(pat, sizeof pat, " %s", flag);
			found = strstr(line, pat) != NULL;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

#endif /* VRANGE_TESTS_SHIMTEST_H */
