/*
 * t_conf.c - jemalloc's configuration under the shim. The program's own
 * malloc_conf (exported: this test links with -rdynamic, as linking against
 * jemalloc would) reaches the shim's jemalloc, and VRANGE_FREE_DECAY_MS
 * never overrides a dirty_decay_ms the user set there or in MALLOC_CONF,
 * nor the shim's huge-page advice a thp option: the user's jemalloc options
 * win.
 *
 * Mode "decay" (the test re-executes itself with a chosen environment)
 * exits with the decay that the arenas got, or 250 if arena 0 and the
 * default for new arenas disagree; mode "thp" checks huge blocks' advice;
 * mode "prof" runs jemalloc's heap profiler.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "testutil.h"
#include "shim/shimtest.h"

/* jemalloc's documented way for a program to configure it. */
const char *malloc_conf = "dirty_decay_ms:0,narenas:2";

static ssize_t decay(const char *name)
{
	ssize_t d = -1;
	size_t len = sizeof d;
	if (st_mallctl(name, &d, &len, NULL, 0) != 0)
		return -1;
	return d;
}

static int decay_mode(void)
{
	ssize_t a0 = decay("arena.0.dirty_decay_ms");
	ssize_t dflt = decay("arenas.dirty_decay_ms");
	if (a0 != dflt || a0 < 0)
		return 250;
	return a0 > 200 ? 200 : (int)a0;
}

/* MALLOC_CONF=thp:never: huge blocks (16 MiB, the huge arena), new or
 * reused, never get the shim's MADV_HUGEPAGE (malloc'd ones would: see
 * t_shim's huge mode). Exits 0, or 1 if one did. */
static int thp_mode(void)
{
	int fail = 0;
	void *p = NULL;
	for (int i = 0; i < 6; i++) {
		free(p);
		p = malloc(16u << 20);
		if (!p || st_vmflag((char *)p + (8u << 20), "hg"))
			fail = 1;
		if (p)
			memset(p, 1, 16u << 20);
	}
	free(p);
	return fail;
}

/* MALLOC_CONF=prof:true,...: jemalloc's heap profiler in a C program that
 * links neither libm nor libgcc_s (jemalloc_prof.c). Allocates from one
 * call site and exits; jemalloc writes the final profile at exit. Bits:
 * 1 libm got mapped (the shim brings its own exp, log and round), 2
 * profiling is not on, 4 libgcc_s was not loaded for the backtraces. */
static int prof_mode(void)
{
	int fail = 0;
	bool on = false;
	size_t len = sizeof on;
	if (st_mallctl("opt.prof", &on, &len, NULL, 0) != 0 || !on)
		fail |= 2;
	static void *keep[1000];
	for (int i = 0; i < 1000; i++) {
		keep[i] = malloc((size_t)(64 + i * 16));
		memset(keep[i], 1, 64);
	}
	if (st_mapped("libm.so") != 0)
		fail |= 1;
	if (st_mapped("libgcc_s") != 1)
		fail |= 4;
	return fail;
}

/* The arenas' decay in a child with VRANGE_FREE_DECAY_MS and MALLOC_CONF
 * as given (NULL: unset). */
static int child_decay(const char *vrange_decay, const char *conf)
{
	static const char *const names[] = { "VRANGE_FREE_DECAY_MS", "MALLOC_CONF" };
	const char *const values[] = { vrange_decay, conf };
	return st_run_mode("/proc/self/exe", "decay", 2, names, values);
}

/* The heap profiler on, every allocation sampled, the final profile
 * written at exit into a directory of our own. */
static void test_prof(void)
{
	char dir[] = "/tmp/vrange-prof.XXXXXX";
	if (!mkdtemp(dir)) {
		tap_ok(false, "mkdtemp for the profile");
		return;
	}
	char conf[256];
	snprintf(conf, sizeof conf, "prof:true,lg_prof_sample:0,prof_final:true,"
	         "prof_prefix:%s/vr", dir);
	/* This program maps neither (as its child does at start-up). */
	bool neither = st_mapped("libm.so") == 0 && st_mapped("libgcc_s") == 0;
	int code = st_run_self("/proc/self/exe", "prof", "MALLOC_CONF", conf);
	tap_ok(neither && code >= 0 && !(code & 3), "MALLOC_CONF=prof:true runs in a C "
	       "program without libm or libgcc_s, and maps no libm (%d)", code);
	tap_ok(code >= 0 && !(code & 4), "its backtraces load libgcc_s when first needed");

	/* vr.<pid>.<seq>.f.heap: jemalloc's final profile. */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cat %s/vr.*.f.heap 2>/dev/null", dir);
	FILE *f = popen(cmd, "r");
	char line[512];
	bool header = false;
	int stacks = 0;
	while (f && fgets(line, sizeof line, f)) {
		header |= strncmp(line, "heap_v2/", 8) == 0;
		stacks += strncmp(line, "@ 0x", 4) == 0;
	}
	if (f)
		pclose(f);
	tap_ok(header && stacks > 0, "... and writes its heap profile at exit, with "
	       "backtraces (%d stacks)", stacks);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
}

int main(int argc, char **argv)
{
	st_require_preload();
	if (argc > 1 && strcmp(argv[1], "decay") == 0)
		return decay_mode();
	if (argc > 1 && strcmp(argv[1], "thp") == 0)
		return thp_mode();
	if (argc > 1 && strcmp(argv[1], "prof") == 0)
		return prof_mode();

	unsigned n = 0;
	size_t len = sizeof n;
	st_mallctl("opt.narenas", &n, &len, NULL, 0);
	tap_is(n, 2, "the program's malloc_conf reaches the shim's jemalloc (opt.narenas)");

	int d = child_decay(NULL, NULL);
	tap_is(d, 0, "its dirty_decay_ms:0 stands against VRANGE_FREE_DECAY_MS's default "
	       "(1000), on arena 0 and for new arenas");
	d = child_decay("5", NULL);
	tap_is(d, 0, "... and against VRANGE_FREE_DECAY_MS=5");
	d = child_decay("5", "dirty_decay_ms:7");
	tap_is(d, 7, "MALLOC_CONF's dirty_decay_ms:7 comes after it, as in jemalloc");
	d = child_decay("5", "narenas:2");
	tap_is(d, 0, "a MALLOC_CONF without dirty_decay_ms leaves the program's in place");

	d = st_run_self("/proc/self/exe", "thp", "MALLOC_CONF", "thp:never");
	tap_is(d, 0, "MALLOC_CONF=thp:never: no huge block gets the shim's MADV_HUGEPAGE");

	test_prof();

	/* The program's decay of 0 with the shim's hooks: freed 1 MiB blocks
	 * become reclaimable (MADV_FREE) at once. */
	uint64_t before = st_lazy_bytes();
	void *p[16];
	for (int i = 0; i < 16; i++) {
		p[i] = malloc(1u << 20);
		memset(p[i], 9, 1u << 20);
	}
	for (int i = 0; i < 16; i++)
		free(p[i]);
	uint64_t got = st_lazy_bytes() - before;
	tap_ok(got >= (8u << 20), "with the program's decay of 0, freed blocks are "
	       "MADV_FREE'd at once (%llu bytes)", (unsigned long long)got);
	tap_done();
}
