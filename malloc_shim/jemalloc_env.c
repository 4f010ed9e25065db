/*
 * jemalloc_env.c - the environment and configuration as the private
 * jemalloc reads them.
 *
 * jemalloc reads MALLOC_CONF with secure_getenv when it initialises, on the
 * first allocation of the process. That may come from a preinit_array
 * function of the program, which runs before libc's initialiser has set
 * environ: secure_getenv then finds nothing and the user's MALLOC_CONF is
 * silently ignored (stock jemalloc preloaded does the same).
 * jemalloc-private.sh renames jemalloc's call to the function below, which
 * falls back to the environment the process started with (vr_getenv).
 */
#include "internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "options.h"
#include "shim.h"

/* jemalloc's configuration string of the program, if it defines one (and
 * exports it: linked against jemalloc, or with -rdynamic); else jemalloc's
 * own empty default. Read, as jemalloc reads it, through the GOT. */
extern const char *malloc_conf __attribute__((visibility("default")));

/* Hidden (-fvisibility=hidden), called only by the private jemalloc. */
char *vr_je_secure_getenv(const char *name);

char *vr_je_secure_getenv(const char *name)
{
	/* secure_getenv's rule: nothing for a set-user-ID or set-group-ID
	 * program (the kernel's AT_SECURE, which ld.so has read already);
	 * otherwise getenv, which vr_getenv is while environ is set. The
	 * buffer is kept: jemalloc holds on to the string while it parses
	 * it, and it reads only MALLOC_CONF, once. */
	if (getauxval(AT_SECURE))
		return NULL;
	static char value[4096];
	return (char *)vr_getenv(name, value, sizeof value);
}

/* Does conf, jemalloc's "key:value,key:value" syntax, have the key opt? */
static bool conf_has(const char *conf, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *k = conf; k && *k; k = strchr(k, ',') ? strchr(k, ',') + 1 : NULL)
		if (strncmp(k, opt, n) == 0 && k[n] == ':')
			return true;
	return false;
}

bool vr_je_user_sets(const char *opt)
{
	/* jemalloc's sources, in its order: the program's malloc_conf, the
	 * name /etc/malloc.conf links to, MALLOC_CONF. (Its fourth,
	 * malloc_conf_2_conf_harder, is renamed with the rest of jemalloc's
	 * globals: no program can set it here.) */
	if (conf_has(malloc_conf, opt))
		return true;
	char link[256];
	ssize_t n = readlink("/etc/malloc.conf", link, sizeof link - 1);
	if (n > 0) {
		link[n] = '\0';
		if (conf_has(link, opt))
			return true;
	}
	return conf_has(vr_je_secure_getenv("MALLOC_CONF"), opt);
}
