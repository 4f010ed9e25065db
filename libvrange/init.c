/*
 * init.c - start-up (see init.h).
 *
 * Entry points: vr_init, vr_ready, vr_select_backend, and the constructor
 * and destructor of the library.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "glue.h"
#include "init.h"
#include "log.h"
#include "optimistic.h"
#include "options.h"
#include "registry.h"
#include "sigbus.h"
#include "stats.h"
#include "vma.h"

size_t vr_page_size = 4096;
unsigned vr_page_shift = 12;
uintptr_t vr_cookie;
const vr_backend_t *vr_backend_cur = &vr_backend_eager;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool ready;

static const vr_backend_t *const candidates[] = {
	&vr_backend_native,
	&vr_backend_uffd,
	&vr_backend_cookie,
	&vr_backend_eager,
};

static const char *env(const char *name)
{
	/* Also right in a preinit_array function (vr_getenv). vr_options_read
	 * parses each value before it asks for the next: one buffer serves. */
	static char value[256];
	return vr_getenv(name, value, sizeof value);
}

static void make_cookie(void)
{
	uintptr_t c = 0;
	if (vr_getrandom(&c, sizeof c) != (long)sizeof c) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		c = ((uintptr_t)ts.tv_nsec << 20) ^ (uintptr_t)ts.tv_sec ^
		    (uintptr_t)&c ^ 0x9e3779b97f4a7c15ull;
	}
	/* Zero means "discarded": the cookie must never be zero. */
	vr_cookie = c | 1;
}

const vr_backend_t *vr_select_backend(const vr_backend_t *const *cands,
                                      unsigned ncands, const char *forced,
                                      char *story, size_t len)
{
	const vr_backend_t *order[8];
	unsigned n = 0;
	size_t used = 0;
	story[0] = '\0';
	for (unsigned i = 0; i < ncands && n < 8; i++)
		if (forced[0] && strcmp(cands[i]->name, forced) == 0)
			order[n++] = cands[i];
	for (unsigned i = 0; i < ncands && n < 8; i++)
		if (!forced[0] || strcmp(cands[i]->name, forced) != 0)
			order[n++] = cands[i];
	for (unsigned i = 0; i < n; i++) {
		char why[160];
		int r = order[i]->probe(why, sizeof why);
		int w = snprintf(story + used, len - used, "%s%s: %s (%s)",
		                 used ? "; " : "", order[i]->name,
		                 r == 0 ? "chosen" : "refused", why);
		if (w > 0)
			used = used + (size_t)w < len ? used + (size_t)w : len - 1;
		if (r == 0)
			return order[i];
		if (forced[0] && strcmp(order[i]->name, forced) == 0)
			vr_warn("VRANGE_BACKEND=%s refused: %s; trying the others", forced, why);
	}
	/* Eager refuses nothing: not reached unless cands lacks it. */
	return NULL;
}

static void fork_prepare(void)
{
	vr_registry_atfork_prepare();
}

static void fork_parent(void)
{
	vr_registry_atfork_parent();
}

static void fork_child(void)
{
	vr_vma_atfork_child();
	vr_registry_atfork_child();
	vr_opt_atfork_child();
}

static void init_once(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps > 0) {
		vr_page_size = (size_t)ps;
		vr_page_shift = (unsigned)__builtin_ctzl((unsigned long)ps);
	}
	vr_options_read(env);
	make_cookie();

	char story[256];
	const vr_backend_t *b = vr_select_backend(candidates,
	                                          sizeof candidates / sizeof candidates[0],
	                                          opt_backend, story, sizeof story);
	if (!b)
		vr_die("no backend works here: %s", story);
	vr_backend_cur = b;
	vr_stats_set_selection(story);
	vr_debug("backend %s; %s", b->name, story);

	if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
		vr_die("pthread_atfork failed");
	/* The handlers go in at start-up, so that the library's stays first
	 * whatever the application installs later (sigbus/handler.c keeps
	 * the application's and chains to it). */
	if (vr_sig_install() != 0)
		vr_warn("cannot install the SIGBUS/SIGSEGV handlers: optimistic ranges will not refill");
	__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
}

void vr_init(void)
{
	if (vr_likely(__atomic_load_n(&ready, __ATOMIC_ACQUIRE)))
		return;
	pthread_once(&once, init_once);
}

bool vr_ready(void)
{
	return __atomic_load_n(&ready, __ATOMIC_ACQUIRE);
}

__attribute__((constructor))
static void vr_constructor(void)
{
	vr_init();
}

__attribute__((destructor))
static void vr_destructor(void)
{
	if (vr_ready() && opt_stats)
		vr_stats_print();
}
