/*
 * u_options - the option table: every variable parsed, bad values rejected
 * with the default kept, the description names every option; and the
 * reader of /proc/self/environ's format used before libc sets environ.
 */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* vr_env_from_fd over the bytes list[0..n) (NUL-separated entries). */
static const char *lookup(const char *list, size_t n, const char *name,
                          char *buf, size_t len)
{
	int fd = memfd_create("environ", 0);
	if (fd < 0 || write(fd, list, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) != 0)
		return "(memfd failed)";
	const char *v = vr_env_from_fd(fd, name, buf, len);
	close(fd);
	return v;
}

static void test_env_from_fd(void)
{
	/* A first entry longer than the reader's 512-byte chunks, so that
	 * the others straddle a chunk boundary. */
	static char list[2048];
	size_t n = 0;
	memcpy(list, "LONG=", 5);
	memset(list + 5, 'x', 700);
	n = 705;
	list[n++] = '\0';
	static const char rest[] = "VRANGE_FREE_DECAY_MSX=5\0VRANGE_FREE_DECAY_MS=0\0"
	                           "EMPTY=\0EQ=a=b\0LAST=end";
	memcpy(list + n, rest, sizeof rest - 1);
	n += sizeof rest - 1;
	char buf[64];
	const char *v = lookup(list, n, "VRANGE_FREE_DECAY_MS", buf, sizeof buf);
	tap_ok(v && strcmp(v, "0") == 0, "env list: the exact name, not a longer one (%s)",
	       v ? v : "NULL");
	tap_ok(lookup(list, n, "VRANGE_FREE_DECAY", buf, sizeof buf) == NULL,
	       "env list: a prefix of a name is not the name");
	v = lookup(list, n, "EMPTY", buf, sizeof buf);
	tap_ok(v && *v == '\0', "env list: an empty value");
	v = lookup(list, n, "EQ", buf, sizeof buf);
	tap_ok(v && strcmp(v, "a=b") == 0, "env list: a value holding '='");
	v = lookup(list, n, "LAST", buf, sizeof buf);
	tap_ok(v && strcmp(v, "end") == 0, "env list: a last entry without its NUL");
	v = lookup(list, n, "LONG", buf, sizeof buf);
	tap_ok(v && strlen(v) == sizeof buf - 1 && v[0] == 'x',
	       "env list: a value longer than the buffer is cut to fit");
	tap_ok(lookup(list, n, "x", buf, sizeof buf) == NULL &&
	       lookup(list, n, "ABSENT", buf, sizeof buf) == NULL,
	       "env list: a value's text is not a name; an absent name is NULL");
	tap_ok(vr_env_from_fd(-1, "LONG", buf, sizeof buf) == NULL,
	       "env list: a read error is NULL");
}

int main(void)
{
	test_env_from_fd();
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
