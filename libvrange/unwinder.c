/*
 * unwinder.c - libunwind, loaded on first need (see unwinder.h).
 * (Not unwind.c: <unwind.h> is the compiler's, which jemalloc_prof.c needs.)
 *
 * Entry points: vr_backtraces_load, vr_unwind (the table),
 * vr_backtrace_capture (unwinder.h).
 *
 * Why not link it: only optimistic ranges ever produce a use-after-purge
 * report, and only VRANGE_DEBUG records where ranges were marked; a program
 * under the preload shim that merely mallocs needs neither. Linked,
 * libunwind and the liblzma it depends on cost every process about 110 KB
 * of resident code (measured with smaps under LD_PRELOAD) and their load
 * time. Loaded here, they cost only the processes that use the features.
 *
 * Why not in the handler: dlopen is not async-signal-safe. The library is
 * loaded on the paths that make a report possible (an optimistic mark, a
 * mark under VRANGE_DEBUG), in normal context and before the registry lock
 * is taken; the handler only reads the table, published with a release
 * store once complete, and prints no backtrace if it is not there.
 *
 * The names come from libunwind's own macros (unw_init_local is
 * _ULx86_64_init_local on x86-64), so the architecture's prefix is right
 * wherever the header is.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdbool.h>

#include "unwinder.h"

#define VR_STR(x) #x
#define VR_XSTR(x) VR_STR(x)

/* Debian's libunwind8 first, then the development symlink. */
static const char *const sonames[] = { "libunwind.so.8", "libunwind.so" };

enum { NONE, LOADING, READY, FAILED };
static int state;
static struct vr_unwind table; /* written once, before READY */

const struct vr_unwind *vr_unwind(void)
{
	return __atomic_load_n(&state, __ATOMIC_ACQUIRE) == READY ? &table : NULL;
}

static void *sym(void *h, const char *name, bool *ok)
{
	void *p = dlsym(h, name);
	if (!p)
		*ok = false;
	return p;
}

#define LOAD(field, name) \
	(table.field = (__typeof__(table.field))(uintptr_t)sym(h, VR_XSTR(name), &ok))

static bool load(void)
{
	void *h = NULL;
	for (size_t i = 0; !h && i < sizeof sonames / sizeof sonames[0]; i++)
		h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return false;
	bool ok = true;
	LOAD(getcontext, unw_tdep_getcontext); /* unw_getcontext is a function-like macro */
	LOAD(init_local, unw_init_local);
#if VR_UNW_HAS_INIT_LOCAL2
	LOAD(init_local2, unw_init_local2);
#endif
	LOAD(step, unw_step);
	LOAD(get_reg, unw_get_reg);
	LOAD(set_reg, unw_set_reg);
	LOAD(get_proc_name, unw_get_proc_name);
	if (!ok)	/* an incompatible libunwind: no backtraces */
		dlclose(h);
	/* Otherwise the handle stays open for the life of the process. */
	return ok;
}

/*
 * One thread loads; a thread that finds the load under way does not wait
 * for it (a fork in the middle would leave the child waiting for ever) and
 * goes on without backtraces, as it would without libunwind.
 */
bool vr_backtraces_load(void)
{
	int st = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	if (st == NONE && __atomic_compare_exchange_n(&state, &st, LOADING, false,
	                                               __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		__atomic_store_n(&state, load() ? READY : FAILED, __ATOMIC_RELEASE);
	return vr_unwind() != NULL;
}

/*
 * noinline: the first frame skipped is this function's own, which must
 * exist. The cursor walk (not unw_backtrace) makes that skip exact. It does
 * not load libunwind (its callers hold the registry lock): vr_backtraces_load
 * runs before, where a capture can follow.
 */
__attribute__((noinline))
int vr_backtrace_capture(uintptr_t *pcs, int max)
{
	const struct vr_unwind *u = vr_unwind();
	unw_context_t ctx;
	unw_cursor_t cur;
	if (!u || !pcs || max <= 0 || u->getcontext(&ctx) != 0 || u->init_local(&cur, &ctx) != 0)
		return 0;
	int n = 0;
	while (n < max && u->step(&cur) > 0) {
		unw_word_t ip = 0;
		if (u->get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		pcs[n++] = (uintptr_t)ip;
	}
	return n;
}
