/*
 * init.c - start-up (see init.h).
 *
 * Entry points: vr_init, vr_ready, and the constructor and destructor of
 * the library.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

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

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool ready;

/*
 * A process with AT_SECURE (set-user-ID, set-group-ID, file capabilities)
 * may run with an environment chosen by a less privileged user: every
 * VRANGE_* variable is ignored there, as jemalloc ignores MALLOC_CONF and
 * glibc LD_PRELOAD (R12). ld.so has read the auxiliary vector before any
 * code runs, so getauxval answers also in a preinit_array function.
 */
static bool secure;

static const char *env(const char *name)
{
	/* Also right in a preinit_array function (vr_getenv). vr_options_read
	 * parses each value before it asks for the next: one buffer serves. */
	static char value[1024];
	if (secure)
		return NULL;
	return vr_getenv(name, value, sizeof value);
}

/*
 * Warns about each VRANGE_* variable that is no option (a typo such as
 * VRANGE_STAT=1), from environ or, before libc has set it, from the
 * environment the process started with.
 */
static void check_names(void)
{
	extern char **environ;
	char **e = __atomic_load_n(&environ, __ATOMIC_RELAXED);
	if (e) {
		for (; *e; e++)
			vr_options_check_name(*e);
		return;
	}
	int fd = vr_open_ro("/proc/self/environ");
	if (fd < 0)
		return;
	/* Entry by entry; only a name's first bytes matter. */
	char chunk[512], entry[64];
	size_t at = 0;
	ssize_t got;
	while ((got = vr_read(fd, chunk, sizeof chunk)) > 0 || got == -EINTR) {
		for (ssize_t i = 0; i < got; i++) {
			if (chunk[i] == '\0') {
				entry[at] = '\0';
				vr_options_check_name(entry);
				at = 0;
			} else if (at + 1 < sizeof entry) {
				entry[at++] = chunk[i];
			}
		}
	}
	if (at) {
		entry[at] = '\0';
		vr_options_check_name(entry);
	}
	vr_close(fd);
}

/* VRANGE_DEBUG=1: every option with its value and where it came from. */
static void print_options(void)
{
	char buf[2048];
	vr_options_describe(buf, sizeof buf);
	for (char *l = buf, *nl; *l; l = nl + 1) {
		nl = strchr(l, '\n');
		if (!nl)
			break;
		*nl = '\0';
		vr_debug("option %s", l);
	}
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
	secure = getauxval(AT_SECURE) != 0;
	vr_options_read(env);
	if (!secure)
		check_names();
	if (opt_debug)
		print_options();

	char story[256];
	const vr_backend_t *b = vr_backend_choose(opt_backend, story, sizeof story);
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
