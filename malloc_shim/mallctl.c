/*
 * mallctl.c - jemalloc's mallctl and mallctlbymib as the preload exports
 * them: passed through, except that arenas a program creates itself get
 * the extent hooks of extents.c like every automatic arena.
 *
 * Entry points (exported): mallctl, mallctlbymib.
 *
 * Why here: a program that creates an arena ("arenas.create") and
 * allocates from it with MALLOCX_ARENA would otherwise purge that arena
 * with jemalloc's defaults (MADV_DONTNEED), out of reach of the shim; and
 * jemalloc offers no callback when an arena is created. Exported by the
 * preload, these come first in the lookup scope, so every program's calls
 * land here and go on to the jemalloc linked into the preload.
 *
 * What is hooked: an arena created without extent hooks of the caller's
 * own (new value NULL); one created with its own hooks keeps them, as does
 * purgeable.c's. When "arena.<i>.destroy" succeeds, arena i is forgotten,
 * so that an arena created later at the same index is hooked again.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jemalloc_private.h"

#include "shim.h"

/* The standard names, as <jemalloc/jemalloc.h> declares them without
 * JEMALLOC_NO_RENAME (jemalloc_private.h includes it with). */
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                 void *newp, size_t newlen);

/* "arena.<i>.destroy": its index, else -1. */
static long destroyed_index(const char *name)
{
	unsigned i;
	int end = 0;
	if (sscanf(name, "arena.%u.destroy%n", &i, &end) == 1 && name[end] == '\0')
		return (long)i;
	return -1;
}

VR_EXPORT int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                      size_t newlen)
{
	if (name && strcmp(name, "arenas.create") == 0) {
		/* The index is needed even if the caller does not ask for it. */
		unsigned ind;
		size_t len = sizeof ind;
		int r = je_mallctl(name, oldp ? oldp : &ind, oldp ? oldlenp : &len, newp, newlen);
		if (r == 0 && !newp)
			vr_ext_arena_created(oldp ? *(unsigned *)oldp : ind);
		return r;
	}
	int r = je_mallctl(name, oldp, oldlenp, newp, newlen);
	long i;
	if (r == 0 && name && (i = destroyed_index(name)) >= 0)
		vr_ext_arena_destroyed((unsigned)i);
	return r;
}

/*
 * The mibs of "arenas.create" and "arena.0.destroy". Looked up by the
 * first caller that needs them and published once; a thread that finds
 * them not published yet looks them up for itself (no waiting, so that a
 * fork in the middle leaves nobody stuck). False if jemalloc lacks them.
 */
struct mibs {
	size_t create[2], destroy[3];
};
static struct mibs mibs_pub;
static int mibs_state; /* 0 not yet, 1 being published, 2 published */

static bool get_mibs(struct mibs *m)
{
	if (__atomic_load_n(&mibs_state, __ATOMIC_ACQUIRE) == 2) {
		*m = mibs_pub;
		return true;
	}
	size_t lc = 2, ld = 3;
	if (je_mallctlnametomib("arenas.create", m->create, &lc) != 0 || lc != 2 ||
	    je_mallctlnametomib("arena.0.destroy", m->destroy, &ld) != 0 || ld != 3)
		return false;
	int expect = 0;
	if (__atomic_compare_exchange_n(&mibs_state, &expect, 1, false, __ATOMIC_ACQ_REL,
	                                __ATOMIC_ACQUIRE)) {
		mibs_pub = *m;
		__atomic_store_n(&mibs_state, 2, __ATOMIC_RELEASE);
	}
	return true;
}

VR_EXPORT int mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen)
{
	struct mibs m;
	if (!mib || (miblen != 2 && miblen != 3) || !get_mibs(&m))
		return je_mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen);
	if (miblen == 2 && mib[0] == m.create[0] && mib[1] == m.create[1]) {
		unsigned ind;
		size_t len = sizeof ind;
		int r = je_mallctlbymib(mib, miblen, oldp ? oldp : &ind, oldp ? oldlenp : &len,
		                        newp, newlen);
		if (r == 0 && !newp)
			vr_ext_arena_created(oldp ? *(unsigned *)oldp : ind);
		return r;
	}
	int r = je_mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen);
	if (r == 0 && miblen == 3 && mib[0] == m.destroy[0] && mib[2] == m.destroy[2])
		vr_ext_arena_destroyed((unsigned)mib[1]);
	return r;
}
