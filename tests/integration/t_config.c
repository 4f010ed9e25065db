/*
 * t_config - the configuration as a user meets it, through libvrange.so:
 * VRANGE_DEBUG=1 prints every option with its value and where it came
 * from; an unknown VRANGE_* variable gets a warning naming the closest
 * option; words are read in any case; and the statistics at exit, one
 * block per process starting with the program and its pid, go to
 * VRANGE_STATS_FILE ("%p" the pid) also for a program that closed stderr.
 *
 * Each case runs the test again as a child ("child" mode) with a chosen
 * environment, its stdout and stderr captured. Run once, not per backend:
 * the options do not depend on it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vrange.h"
#include "testutil.h"

static char dir[] = "/tmp/t_config.XXXXXX";


/* The child: one page marked and unmarked, so that counters move; with
 * "close", stderr closed before exit, as sort and cat do. */
static int child(int argc, char **argv)
{
	unsigned char *p = tu_map(1);
	p[0] = 1;
	int purged = 0;
	if (vrange_mark_volatile(p, tu_pagesize(), 0) != 0 ||
	    vrange_mark_nonvolatile(p, tu_pagesize(), &purged) != 0)
		return 3;
	printf("backend %s\n", vrange_backend());
	fflush(stdout);
	if (argc > 2 && strcmp(argv[2], "close") == 0)
		close(2);
	return 0;
}

struct child_args {
	const char *const *env;
	const char *mode;
};

static void exec_child(void *arg)
{
	const struct child_args *c = arg;
	unsetenv("VRANGE_BACKEND");
	unsetenv("VRANGE_DEBUG");
	unsetenv("VRANGE_STATS");
	unsetenv("VRANGE_STATS_FILE");
	for (const char *const *e = c->env; *e; e++)
		putenv((char *)*e);
	execl("/proc/self/exe", "t_config", "child", c->mode, (char *)NULL);
}

/* Runs the child with the variables of env ("NAME=value", NULL-ended) added
 * to an environment without any VRANGE_* variable. */
static void run(tu_run_t *r, const char *const *env, const char *mode)
{
	struct child_args c = { env, mode };
	tu_capture(r, exec_child, &c);
}

static int ok_exit(const tu_run_t *r)
{
	return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static size_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		buf[0] = '\0';
		return 0;
	}
	return tu_read_all(fd, buf, len);
}

static void test_debug(void)
{
	static tu_run_t r;
	const char *env[] = { "VRANGE_DEBUG=1", "VRANGE_BACKEND=Cookie", NULL };
	run(&r, env, "");
	tap_ok(ok_exit(&r) && strcmp(r.out, "backend cookie\n") == 0,
	       "VRANGE_BACKEND=Cookie: words in any case (%.*s)", (int)strcspn(r.out, "\n"), r.out);
	static const char *const lines[] = {
		"libvrange: option VRANGE_BACKEND=cookie (environment)\n",
		"libvrange: option VRANGE_DEBUG=1 (environment)\n",
		"libvrange: option VRANGE_STATS=0 (default)\n",
		"libvrange: option VRANGE_STATS_FILE= (default)\n",
		"libvrange: option VRANGE_FREE_DECAY_MS=1000 (default)\n",
		"libvrange: option VRANGE_SYSCALL_COMPAT=0 (default)\n",
	};
	int all = 1;
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		if (!strstr(r.err, lines[i])) {
			all = 0;
			tap_diag("missing: %s", lines[i]);
		}
	tap_ok(all, "VRANGE_DEBUG=1 prints every option, its value and its source");
	const char *opt = strstr(r.err, "libvrange: option ");
	const char *be = strstr(r.err, "libvrange: backend ");
	tap_ok(opt && be && opt < be, "...before the backend choice");
	if (!all)
		tap_diag("stderr: %.800s", r.err);

	const char *quiet[] = { NULL };
	run(&r, quiet, "");
	tap_ok(ok_exit(&r) && !strstr(r.err, "libvrange"),
	       "without VRANGE_DEBUG, nothing on stderr (%.80s)", r.err);
}

static void test_unknown(void)
{
	static tu_run_t r;
	const char *env[] = { "VRANGE_STAT=1", "VRANGE_BACKEDN=eager", NULL };
	run(&r, env, "");
	tap_ok(ok_exit(&r) &&
	       strstr(r.err, "libvrange: ignoring VRANGE_STAT: no such variable; "
	                     "did you mean VRANGE_STATS?\n") &&
	       strstr(r.err, "libvrange: ignoring VRANGE_BACKEDN: no such variable; "
	                     "did you mean VRANGE_BACKEND?\n"),
	       "unknown VRANGE_* variables: a warning naming the closest option");
	tap_ok(!strstr(r.err, "statistics at exit"), "...and the typo has no effect");
	const char *bad[] = { "VRANGE_BACKEND=turbo", NULL };
	run(&r, bad, "");
	tap_ok(ok_exit(&r) && strstr(r.err, "libvrange: ignoring VRANGE_BACKEND=turbo: "
	                                    "accepted values are auto (or empty), native, "
	                                    "uffd, cookie, eager, in any case\n"),
	       "a bad value: every accepted value");
	if (!strstr(r.err, "accepted values"))
		tap_diag("stderr: %.400s", r.err);
}

static void test_stats_file(void)
{
	static tu_run_t r;
	char var[128], path[128], want[128];
	static char text[8192];

	/* A program that closes stderr before exit: stderr loses the block,
	 * the file keeps it. */
	const char *plain[] = { "VRANGE_STATS=1", NULL };
	run(&r, plain, "close");
	tap_ok(ok_exit(&r) && !strstr(r.err, "statistics"),
	       "VRANGE_STATS=1, stderr closed by the program: the block is lost");

	snprintf(var, sizeof var, "VRANGE_STATS_FILE=%s/stats.%%p.txt", dir);
	const char *file[] = { var, NULL };
	run(&r, file, "close");
	snprintf(path, sizeof path, "%s/stats.%d.txt", dir, (int)r.pid);
	slurp(path, text, sizeof text);
	snprintf(want, sizeof want, "libvrange: t_config[%d]: statistics at exit\n", (int)r.pid);
	tap_ok(ok_exit(&r) && strncmp(text, want, strlen(want)) == 0,
	       "VRANGE_STATS_FILE=.../stats.%%p.txt alone: the block in the pid's file, "
	       "starting with the program and its pid");
	int every = 1;
	snprintf(want, sizeof want, "libvrange: t_config[%d]: ", (int)r.pid);
	for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
		if (strncmp(l, want, strlen(want)) != 0)
			every = 0;
		if (!strchr(l, '\n'))
			break;
	}
	tap_ok(every && strstr(text, "]: backend ") &&
	       strstr(text, "]: pages marked volatile 1, made non-volatile 1, of them "
	                    "reported purged "),
	       "every line has the prefix; the counters are there");
	if (!every)
		tap_diag("file: %.600s", text);
	unlink(path);

	/* Two processes, one file: two whole blocks, told apart by pid. */
	snprintf(var, sizeof var, "VRANGE_STATS_FILE=%s/shared.txt", dir);
	static tu_run_t r2;
	run(&r, file, "");
	run(&r2, file, "");
	snprintf(path, sizeof path, "%s/shared.txt", dir);
	slurp(path, text, sizeof text);
	char a[64], b[64];
	snprintf(a, sizeof a, "libvrange: t_config[%d]: statistics at exit\n", (int)r.pid);
	snprintf(b, sizeof b, "libvrange: t_config[%d]: statistics at exit\n", (int)r2.pid);
	tap_ok(strstr(text, a) == text && strstr(text, b) > text,
	       "a shared file: the blocks of both processes, one after the other");
	tap_ok(!strstr(r.err, "statistics") && !strstr(r2.err, "statistics"),
	       "...and nothing on their stderr");
	unlink(path);

	/* A file that cannot be opened: a warning, and the block on stderr. */
	const char *nodir[] = { "VRANGE_STATS_FILE=/nonexistent/dir/stats", NULL };
	run(&r, nodir, "");
	tap_ok(strstr(r.err, "libvrange: cannot open VRANGE_STATS_FILE /nonexistent/dir/stats: ") &&
	       strstr(r.err, "]: statistics at exit\n"),
	       "an unopenable file: a warning, and the statistics on stderr");

	/* %% is a percent sign. */
	snprintf(var, sizeof var, "VRANGE_STATS_FILE=%s/pct%%%%.txt", dir);
	run(&r, file, "");
	snprintf(path, sizeof path, "%s/pct%%.txt", dir);
	tap_ok(slurp(path, text, sizeof text) > 0, "%%%% in the name is a percent sign");
	unlink(path);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return child(argc, argv);
	if (!mkdtemp(dir)) {
		tap_printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_debug();
	test_unknown();
	test_stats_file();
	rmdir(dir);
	tap_done();
}
