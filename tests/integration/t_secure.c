/*
 * t_secure - R12: in a process with AT_SECURE every VRANGE_* variable is
 * ignored, VRANGE_STATS_FILE included, as jemalloc ignores MALLOC_CONF.
 *
 * The test makes a set-user-ID copy of t_secure_prog (linked with
 * -lvrange) and of t_secure_prog_preload (linked with -lvrange_preload),
 * owned by nobody, and runs it as root: the effective user differs from the
 * real one, so the kernel gives it AT_SECURE, as it would to a setuid
 * program run by an unprivileged user. An ordinary copy run with the same
 * environment shows what the variables would have done: a forced backend,
 * VRANGE_DEBUG's output, a warning for a misspelt variable, a statistics
 * file, and syscall(314) answered by the v10 compatibility mode.
 *
 * The programs are linked -no-install: they find the uninstalled libraries
 * through their run path, which ld.so honours under AT_SECURE, where it
 * ignores LD_LIBRARY_PATH (and a libtool wrapper script would not be
 * set-user-ID at all). Skipped, with the reason, when not run as root (only
 * root can give a file to another user) or where the build tree's file
 * system is mounted nosuid.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char here[PATH_MAX];    /* the directory of the test programs */
static char tmp[PATH_MAX + 32];


static int copy(const char *from, const char *to, uid_t uid, gid_t gid, mode_t mode)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	if (in < 0 || out < 0)
		return -1;
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			return -1;
	close(in);
	/* chown clears the set-user-ID bit: mode after owner. */
	int r = fchown(out, uid, gid) == 0 && fchmod(out, mode) == 0 ? 0 : -1;
	close(out);
	return n < 0 ? -1 : r;
}

struct prog_args {
	const char *prog;
	const char *const *env;
};

static void exec_prog(void *arg)
{
	const struct prog_args *c = arg;
	execle(c->prog, c->prog, (char *)NULL, c->env);
}

static void run(tu_run_t *r, const char *prog, const char *const *env)
{
	struct prog_args c = { prog, env };
	tu_capture(r, exec_prog, &c);
}

static int stats_file(pid_t pid)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/stats.%d", tmp, (int)pid);
	int ok = access(path, F_OK) == 0;
	unlink(path);
	return ok;
}

static void test_program(const char *name, int preload, uid_t uid, gid_t gid)
{
	char src[PATH_MAX + 64], plain[PATH_MAX + 96], suid[PATH_MAX + 96];
	snprintf(src, sizeof src, "%s/%s", here, name);
	snprintf(plain, sizeof plain, "%s/%s.plain", tmp, name);
	snprintf(suid, sizeof suid, "%s/%s.suid", tmp, name);
	if (copy(src, plain, 0, 0, 0755) != 0 || copy(src, suid, uid, gid, 04755) != 0) {
		tap_ok(0, "%s: copies made (%s)", name, strerror(errno));
		return;
	}
	static tu_run_t r0, rc, rs;
	const char *none[] = { NULL };
	run(&r0, plain, none);
	char auto_be[32] = "";
	sscanf(r0.out, "secure %*u backend %31s", auto_be);
	/* A backend the automatic choice would not make. */
	const char *forced = strcmp(auto_be, "eager") == 0 ? "cookie" : "eager";
	char be[64], file[PATH_MAX + 96];
	snprintf(be, sizeof be, "VRANGE_BACKEND=%s", forced);
	snprintf(file, sizeof file, "VRANGE_STATS_FILE=%s/stats.%%p", tmp);
	const char *env[] = { be, "VRANGE_DEBUG=1", "VRANGE_STATS=1", file, "VRANGE_STAT=1",
	                      "VRANGE_SYSCALL_COMPAT=1", NULL };

	/* Without AT_SECURE the variables apply. */
	run(&rc, plain, env);
	char want[128];
	snprintf(want, sizeof want, "secure 0 backend %s compat %d\n", forced,
	         preload ? 0 : -2);
	tap_ok(WIFEXITED(rc.status) && WEXITSTATUS(rc.status) == 0 &&
	       strcmp(rc.out, want) == 0,
	       "%s, ordinary: VRANGE_BACKEND=%s applies%s (%.*s)", name, forced,
	       preload ? ", syscall(314) is answered" : "", (int)strcspn(rc.out, "\n"), rc.out);
	tap_ok(strstr(rc.err, "libvrange: option VRANGE_DEBUG=1 (environment)") &&
	       strstr(rc.err, "did you mean VRANGE_STATS?") && stats_file(rc.pid),
	       "%s, ordinary: VRANGE_DEBUG's output, the typo's warning, the statistics file",
	       name);

	run(&rs, suid, env);
	if (WIFEXITED(rs.status) && WEXITSTATUS(rs.status) == 127) {
		tap_printf("ok %d # SKIP %s: the set-user-ID copy does not run as nobody "
		           "(%.100s)\n", ++tap_n, name, rs.err);
		return;
	}
	if (strncmp(rs.out, "secure 0", 8) == 0) {
		tap_printf("ok %d # SKIP %s: no AT_SECURE for a set-user-ID program here "
		           "(no_new_privs?)\n", ++tap_n, name);
		return;
	}
	snprintf(want, sizeof want, "secure 1 backend %s compat %d\n", auto_be,
	         preload ? -1 : -2);
	tap_ok(WIFEXITED(rs.status) && WEXITSTATUS(rs.status) == 0 &&
	       strcmp(rs.out, want) == 0,
	       "%s, set-user-ID: VRANGE_BACKEND ignored (%s chosen)%s (%.*s)", name, auto_be,
	       preload ? ", syscall(314) reaches the kernel" : "",
	       (int)strcspn(rs.out, "\n"), rs.out);
	tap_ok(!strstr(rs.err, "libvrange"),
	       "%s, set-user-ID: no debug output, no warning, no statistics on stderr", name);
	if (strstr(rs.err, "libvrange"))
		tap_diag("stderr: %.400s", rs.err);
	tap_ok(!stats_file(rs.pid), "%s, set-user-ID: VRANGE_STATS_FILE ignored", name);
	unlink(plain);
	unlink(suid);
}

int main(void)
{
	if (geteuid() != 0)
		tap_skip_all("needs root: only root can make a file set-user-ID for another user");
	ssize_t n = readlink("/proc/self/exe", here, sizeof here - 1);
	if (n <= 0)
		tap_skip_all("cannot read /proc/self/exe");
	here[n] = '\0';
	dirname(here);
	snprintf(tmp, sizeof tmp, "%s/secure.XXXXXX", here);
	if (!mkdtemp(tmp)) {
		tap_printf("Bail out! mkdtemp %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	/* Writable by nobody: a statistics file it made would show. */
	chmod(tmp, 01777);
	struct statvfs vfs;
	if (statvfs(tmp, &vfs) == 0 && (vfs.f_flag & ST_NOSUID)) {
		rmdir(tmp);
		tap_skip_all("the build tree's file system is mounted nosuid");
	}
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;
	test_program("t_secure_prog", 0, uid, gid);
#ifdef SECURE_NO_PRELOAD
	tap_printf("ok %d # SKIP sanitizer build: no preload-linked program\n", ++tap_n);
#else
	test_program("t_secure_prog_preload", 1, uid, gid);
#endif
	rmdir(tmp);
	tap_done();
}
