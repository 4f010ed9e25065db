/*
 * t_compat.c - VRANGE_SYSCALL_COMPAT=1: a program written for the v10
 * kernel patch, calling syscall(314, start, len, mode, &purged), runs
 * unmodified under LD_PRELOAD=libvrange_preload.so.
 *
 * The option is read at start-up, so the test re-executes itself with it
 * ("on" mode) in a child; the first run has it unset and checks that 314
 * then reaches the kernel (sched_setattr on every kernel since 3.14), with
 * arguments sched_setattr refuses harmlessly, and that every other number
 * passes through either way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "shim/shimtest.h"

/* As the v10 test programs spell it. */
#define SYS_vrange 314
#define VOLATILE 0
#define NOVOLATILE 1

static struct vrange_stats stats(void)
{
	int (*fn)(struct vrange_stats *) = (int (*)(struct vrange_stats *))(uintptr_t)
		dlsym(RTLD_DEFAULT, "vrange_get_stats");
	struct vrange_stats s;
	memset(&s, 0, sizeof s);
	if (fn)
		fn(&s);
	return s;
}

static void common(void)
{
	tap_is(syscall(SYS_getpid), getpid(), "syscall(SYS_getpid) passes through");
	errno = 0;
	tap_ok(syscall(SYS_close, -1) == -1 && errno == EBADF,
	       "a failing call passes through: -1 and errno (EBADF)");
	char buf[8] = "";
	int fds[2];
	tap_ok(pipe(fds) == 0 && syscall(SYS_write, fds[1], "abc", 3) == 3 &&
	       syscall(SYS_read, fds[0], buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0,
	       "three-argument calls pass through");
	close(fds[0]);
	close(fds[1]);
	void *m = (void *)syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tap_ok(m != MAP_FAILED && syscall(SYS_munmap, m, 4096) == 0,
	       "six-argument calls pass through (mmap)");
}

static int on_mode(void)
{
	tap_plan(10);
	size_t ps = tu_pagesize(), len = 8 * ps;
	unsigned char *p = tu_map(8);
	tu_fill(p, 8, 9);
	struct vrange_stats s0 = stats();
	int purged = -1;
	long r = syscall(SYS_vrange, p, len, VOLATILE, &purged);
	tap_is(r, (long)len, "syscall(314, VOLATILE) returns the length");
	tap_is(stats().volatile_bytes - s0.volatile_bytes, len, "the range is volatile");
	tu_pageout(p, 0, 8);
	purged = -1;
	r = syscall(SYS_vrange, p, len, NOVOLATILE, &purged);
	tap_ok(r == (long)len && purged == 1,
	       "syscall(314, NOVOLATILE) after MADV_PAGEOUT: len, purged = 1 (r %ld, purged %d)",
	       r, purged);
	int zero = 1;
	for (size_t i = 0; i < 8; i++)
		if (tu_page_state(p, i, 9) != 0)
			zero = 0;
	tap_ok(zero, "the purged pages read as zeros");
	tu_fill(p, 8, 10);
	purged = -1;
	tap_ok(syscall(SYS_vrange, p, len, VOLATILE, &purged) == (long)len &&
	       syscall(SYS_vrange, p, len, NOVOLATILE, &purged) == (long)len && purged == 0,
	       "without reclaim: purged = 0");
	errno = 0;
	tap_ok(syscall(SYS_vrange, p + 1, len, VOLATILE, &purged) == -1 && errno == EINVAL,
	       "an unaligned start: -1 and EINVAL, as the v10 call");
	common();
	return tap_failed ? 1 : 0;
}

static void test_off(void)
{
	struct vrange_stats s0 = stats();
	/* sched_setattr(pid 0, attr NULL, flags 0): EINVAL (NULL attr) or
	 * EFAULT; it can change nothing. */
	errno = 0;
	long r = syscall(SYS_vrange, 0, NULL, 0, NULL);
	tap_ok(r == -1 && (errno == EINVAL || errno == EFAULT || errno == ENOSYS),
	       "without VRANGE_SYSCALL_COMPAT, 314 reaches the kernel "
	       "(sched_setattr refuses: %s)", strerror(errno));
	struct vrange_stats s1 = stats();
	tap_ok(s1.pages_marked == s0.pages_marked && s1.pages_unmarked == s0.pages_unmarked &&
	       s1.volatile_bytes == s0.volatile_bytes, "...and the library did not answer it");
}

static void test_on(const char *self)
{
	pid_t pid = fork();
	if (pid == 0) {
		setenv("VRANGE_SYSCALL_COMPAT", "1", 1);
		/* The child's TAP would be counted: it reports by exit status,
		 * its lines going to stderr as diagnostics. */
		dup2(2, 1);
		execl(self, self, "on", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "with VRANGE_SYSCALL_COMPAT=1 a v10-style program runs unmodified "
	       "(status %#x; its TAP on stderr)", st);
}

int main(int argc, char **argv)
{
#if !defined(__x86_64__)
	tap_skip_all("the v10 system call had a number on x86-64 only");
#endif
	st_require_preload();
	tu_require_pageout();
	if (argc > 1 && strcmp(argv[1], "on") == 0)
		return on_mode();
	if (getenv("VRANGE_SYSCALL_COMPAT")) {
		/* Read at start-up: run again without it. */
		unsetenv("VRANGE_SYSCALL_COMPAT");
		execv("/proc/self/exe", argv);
		tap_printf("Bail out! re-exec: %s\n", strerror(errno));
		return 1;
	}
	const char *be = getenv("VRANGE_BACKEND");
	if (be && strcmp(be, "native") == 0)
		tap_skip_all("the native backend lets the kernel answer 314");
	test_off();
	common();
	test_on("/proc/self/exe");
	tap_done();
}
