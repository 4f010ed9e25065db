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

/* Runs read_env(env) with stderr in a memfd; its text into out. */
static int read_env_err(const char *const *env, char *out, size_t len)
{
	int fd = memfd_create("stderr", 0), saved = dup(2);
	dup2(fd, 2);
	int r = read_env(env);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return r;
}

/* Words in any case; "auto" and empty are the default. */
static void test_words(void)
{
	const char *upper[] = { "VRANGE_BACKEND=EAGER", "VRANGE_DEBUG=Yes", NULL };
	tap_is(read_env(upper), 0, "VRANGE_BACKEND=EAGER and VRANGE_DEBUG=Yes parse");
	tap_ok(strcmp(opt_backend, "eager") == 0 && opt_debug,
	       "words in any case, stored as spelt in the table (%s)", opt_backend);
	const char *mixed[] = { "VRANGE_BACKEND=Auto", NULL };
	tap_is(read_env(mixed), 0, "VRANGE_BACKEND=Auto parses");
	tap_ok(opt_backend[0] == '\0', "...as automatic");
	const char *empty[] = { "VRANGE_BACKEND=", NULL };
	tap_ok(read_env(empty) == 0 && opt_backend[0] == '\0', "an empty word is automatic");
}

/* Where each value came from, and VRANGE_STATS_FILE turning stats on. */
static void test_sources(void)
{
	char buf[1024];
	const char *env[] = { "VRANGE_DEBUG=1", NULL };
	read_env(env);
	vr_options_describe(buf, sizeof buf);
	tap_ok(strstr(buf, "VRANGE_DEBUG=1 (environment)\n") &&
	       strstr(buf, "VRANGE_BACKEND=auto (default)\n") &&
	       strstr(buf, "VRANGE_FREE_DECAY_MS=1000 (default)\n") &&
	       strstr(buf, "VRANGE_STATS_FILE= (default)\n") &&
	       strstr(buf, "VRANGE_SYSCALL_COMPAT=0 (default)\n"),
	       "every option with its value and source");
	if (!strstr(buf, "VRANGE_DEBUG=1 (environment)"))
		tap_diag("%s", buf);
	size_t lines = 0;
	for (const char *p = buf; *p; p++)
		lines += *p == '\n';
	tap_is(lines, 6, "one line per option");
	char small[40];
	size_t n = vr_options_describe(small, sizeof small);
	tap_ok(n == strlen(small) && n < sizeof small, "a short buffer is cut and ended");

	const char *file[] = { "VRANGE_STATS_FILE=/tmp/s.%p", NULL };
	read_env(file);
	tap_ok(opt_stats && strcmp(opt_stats_file, "/tmp/s.%p") == 0,
	       "VRANGE_STATS_FILE alone turns the statistics on");
	const char *off[] = { "VRANGE_STATS_FILE=/tmp/s", "VRANGE_STATS=0", NULL };
	read_env(off);
	tap_ok(!opt_stats && opt_stats_file[0], "...unless VRANGE_STATS=0 is given");
	static char longpath[1100];
	memcpy(longpath, "VRANGE_STATS_FILE=", 18);
	memset(longpath + 18, 'a', 1050);
	const char *toolong[] = { longpath, NULL };
	tap_is(read_env(toolong), 1, "a path longer than the buffer is rejected");
	tap_ok(!opt_stats_file[0] && !opt_stats, "...and changes nothing");
}

/* A rejected value names every accepted value, or the range. */
static void test_warnings(void)
{
	char err[2048];
	const char *bad_word[] = { "VRANGE_BACKEND=turbo", NULL };
	read_env_err(bad_word, err, sizeof err);
	tap_ok(strstr(err, "libvrange: ignoring VRANGE_BACKEND=turbo: accepted values are "
	                   "auto (or empty), native, uffd, cookie, eager, in any case\n") != NULL,
	       "a bad word: every accepted value");
	if (!strstr(err, "accepted values are auto"))
		tap_diag("stderr: %s", err);
	const char *bad_bool[] = { "VRANGE_STATS=maybe", NULL };
	read_env_err(bad_bool, err, sizeof err);
	tap_ok(strstr(err, "ignoring VRANGE_STATS=maybe: accepted values are 1, yes, true, on, "
	                   "0, no, false and off") != NULL,
	       "a bad boolean: every accepted value");
	const char *bad_ms[] = { "VRANGE_FREE_DECAY_MS=-5", NULL };
	read_env_err(bad_ms, err, sizeof err);
	tap_ok(strstr(err, "ignoring VRANGE_FREE_DECAY_MS=-5: a whole number of milliseconds "
	                   "from 0 to 86400000") != NULL,
	       "a bad number: the valid range");
	const char *big_ms[] = { "VRANGE_FREE_DECAY_MS=86400001", NULL };
	tap_is(read_env_err(big_ms, err, sizeof err), 1, "one past the range is rejected");
	const char *max_ms[] = { "VRANGE_FREE_DECAY_MS=86400000", NULL };
	tap_ok(read_env(max_ms) == 0 && opt_free_decay_ms == 86400000L,
	       "the end of the range is accepted");
}

/* Unknown VRANGE_* names: a warning naming the closest option. */
static void test_names(void)
{
	tap_ok(strcmp(vr_options_closest("VRANGE_STAT"), "VRANGE_STATS") == 0 &&
	       strcmp(vr_options_closest("VRANGE_BAKCEND"), "VRANGE_BACKEND") == 0 &&
	       strcmp(vr_options_closest("VRANGE_STATSFILE"), "VRANGE_STATS_FILE") == 0 &&
	       strcmp(vr_options_closest("VRANGE_FREE_DECAY"), "VRANGE_FREE_DECAY_MS") == 0 &&
	       strcmp(vr_options_closest("VRANGE_DEBG"), "VRANGE_DEBUG") == 0,
	       "the closest option of typical typos");
	int fd = memfd_create("stderr", 0), saved = dup(2);
	dup2(fd, 2);
	int w = vr_options_check_name("VRANGE_STAT=1");
	int ok = !vr_options_check_name("VRANGE_STATS=1") &&
	         !vr_options_check_name("VRANGE_STATS_FILE=x") &&
	         !vr_options_check_name("VRANGE_TEST_SEED=3") &&
	         !vr_options_check_name("VRANGE_CI_CHECK_TIMEOUT=1") &&
	         !vr_options_check_name("PATH=/bin") &&
	         !vr_options_check_name("XVRANGE_STAT=1");
	int w2 = vr_options_check_name("VRANGE_STATS_=1");
	dup2(saved, 2);
	close(saved);
	char err[1024];
	ssize_t n = pread(fd, err, sizeof err - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	tap_ok(w == 1 && strstr(err, "libvrange: ignoring VRANGE_STAT: no such variable; "
	                             "did you mean VRANGE_STATS?\n") != NULL,
	       "VRANGE_STAT=1: a warning naming VRANGE_STATS");
	tap_ok(ok, "no warning for options, the test suite's names or other variables");
	tap_ok(w2 == 1 && strstr(err, "VRANGE_STATS_: no such variable"),
	       "a known name with a suffix is unknown");
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
	test_words();
	test_sources();
	test_warnings();
	test_names();
	vr_options_reset();
	tap_done();
}
