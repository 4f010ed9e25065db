/*
 * u_options - the option table: every variable parsed, bad values rejected
 * with the default kept, the description names every option.
 */
#include "internal.h"

#include <string.h>

#include "options.h"
#include "../tap.h"

static const char *const *envp;

static const char *fake_getenv(const char *name)
{
	size_t n = strlen(name);
	for (const char *const *e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int read_env(const char *const *env)
{
	envp = env;
	return vr_options_read(fake_getenv);
}

int main(void)
{
	const char *none[] = { NULL };
	tap_is(read_env(none), 0, "empty environment parses");
	tap_ok(opt_backend[0] == '\0' && !opt_debug && !opt_stats, "defaults");

	const char *good[] = { "VRANGE_BACKEND=eager", "VRANGE_DEBUG=1",
	                       "VRANGE_STATS=yes", NULL };
	tap_is(read_env(good), 0, "good values parse");
	tap_ok(strcmp(opt_backend, "eager") == 0, "VRANGE_BACKEND=eager");
	tap_ok(opt_debug && opt_stats, "VRANGE_DEBUG=1 and VRANGE_STATS=yes");

	const char *autob[] = { "VRANGE_BACKEND=auto", "VRANGE_DEBUG=off", NULL };
	tap_is(read_env(autob), 0, "auto and off parse");
	tap_ok(opt_backend[0] == '\0' && !opt_debug, "auto means automatic");

	const char *bad[] = { "VRANGE_BACKEND=turbo", "VRANGE_STATS=maybe",
	                      "VRANGE_DEBUG=1", NULL };
	tap_is(read_env(bad), 2, "two bad values rejected");
	tap_ok(opt_backend[0] == '\0' && !opt_stats, "rejected values keep defaults");
	tap_ok(opt_debug, "a good value beside bad ones still applies");

	char buf[1024];
	size_t n = vr_options_describe(buf, sizeof buf);
	tap_ok(n > 0 && strstr(buf, "VRANGE_BACKEND=") && strstr(buf, "VRANGE_DEBUG=1") &&
	       strstr(buf, "VRANGE_STATS="), "description lists every option and value");
	vr_options_reset();
	tap_done();
}
