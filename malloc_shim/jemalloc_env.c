/*
 * jemalloc_env.c - the environment as the private jemalloc reads it.
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

#include <stdlib.h>
#include <sys/auxv.h>

#include "options.h"

/* Hidden (-fvisibility=hidden), called only by the private jemalloc. */
char *vr_je_secure_getenv(const char *name);

char *vr_je_secure_getenv(const char *name)
{
	extern char **environ;
	if (__atomic_load_n(&environ, __ATOMIC_RELAXED))
		return secure_getenv(name);
	/* secure_getenv's rule: nothing for a set-user-ID or set-group-ID
	 * program (the kernel's AT_SECURE, which ld.so has read already). */
	if (getauxval(AT_SECURE))
		return NULL;
	/* Kept: jemalloc holds on to the string while it parses it, and it
	 * reads only MALLOC_CONF, once. */
	static char value[4096];
	return (char *)vr_getenv(name, value, sizeof value);
}
