/*
 * testutil.h - helpers shared by the tests: anonymous regions, reclaim
 * injection with MADV_PAGEOUT, page patterns, and running a case in a forked
 * child with a timeout.
 *
 * Reclaim comes only from madvise(MADV_PAGEOUT) on the range (a real kernel
 * reclaim path that discards clean lazily-freed pages, no privileges needed):
 * tests never create cgroups or squeeze the machine.
 */
#ifndef VRANGE_TESTS_TESTUTIL_H
#define VRANGE_TESTS_TESTUTIL_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static size_t tu_page;

__attribute__((unused))
static size_t tu_pagesize(void)
{
	if (!tu_page)
		tu_page = (size_t)sysconf(_SC_PAGESIZE);
	return tu_page;
}

/*
 * A private anonymous read-write region of n pages, aborting on failure.
 * Transparent huge pages are refused for it: with THP "always" a large
 * aligned region may be one huge page, which MADV_PAGEOUT of a part of it
 * skips, and tests need reclaim to happen exactly where they ask.
 */
__attribute__((unused))
static unsigned char *tu_map(size_t npages)
{
	void *p = mmap(NULL, npages * tu_pagesize(), PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		tap_printf("Bail out! mmap %zu pages: %s\n", npages, strerror(errno));
		exit(1);
	}
	madvise(p, npages * tu_pagesize(), MADV_NOHUGEPAGE);
	return p;
}

/*
 * Pins the calling thread to the CPU it runs on. Pages faulted in, freed
 * lazily and paged out wait in per-CPU LRU batches, and MADV_PAGEOUT drains
 * only its own CPU's: measured here, 160 of 160 pages were discarded with
 * all three steps on one CPU, 0 to 25 with the steps spread over two.
 * Returns 0, or -1 with errno set when sched_setaffinity failed (a failed
 * sched_getcpu leaves the thread unpinned and is not an error).
 */
__attribute__((unused))
static int tu_pin_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();
	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) != 0 ? -1 : 0;
}

/* The byte every test writes at offset off of page i of a pattern seeded s. */
__attribute__((unused))
static unsigned char tu_byte(unsigned seed, size_t i, size_t off)
{
	uint32_t x = (uint32_t)(seed * 2654435761u) ^ (uint32_t)(i * 40503u) ^
	             (uint32_t)(off * 2246822519u);
	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	return (unsigned char)(x | 1); /* never zero: a zero byte means lost */
}

__attribute__((unused))
static void tu_fill(unsigned char *p, size_t npages, unsigned seed)
{
	size_t ps = tu_pagesize();
	for (size_t i = 0; i < npages; i++)
		for (size_t off = 0; off < ps; off++)
			p[i * ps + off] = tu_byte(seed, i, off);
}

/* 1 if page i holds the whole pattern, 0 if it is all zeros, -1 otherwise. */
__attribute__((unused))
static int tu_page_state(const unsigned char *p, size_t i, unsigned seed)
{
	size_t ps = tu_pagesize();
	int intact = 1, zero = 1;
	for (size_t off = 0; off < ps; off++) {
		unsigned char b = p[i * ps + off];
		if (b != tu_byte(seed, i, off))
			intact = 0;
		if (b != 0)
			zero = 0;
	}
	return intact ? 1 : zero ? 0 : -1;
}

/*
 * How many of pages [0, n) of p are as expected after tu_fill(seed): all
 * zeros for pages [lost_lo, lost_hi) and, if all_zero (the eager backend
 * loses every page), for every page; the whole pattern for the others.
 */
__attribute__((unused))
static size_t tu_count_expected(const unsigned char *p, size_t n, unsigned seed,
                                int all_zero, size_t lost_lo, size_t lost_hi)
{
	size_t good = 0;
	for (size_t i = 0; i < n; i++)
		good += tu_page_state(p, i, seed) ==
		        ((all_zero || (i >= lost_lo && i < lost_hi)) ? 0 : 1);
	return good;
}

/* Reads fd until end of file, an error other than EINTR (EAGAIN on a
 * non-blocking pipe that is empty), or size - 1 bytes into buf, which ends
 * with a NUL; closes fd. Returns the length read. */
__attribute__((unused))
static size_t tu_read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n < size - 1) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r > 0)
			n += (size_t)r;
		else if (!(r < 0 && errno == EINTR))
			break;
	}
	buf[n] = '\0';
	close(fd);
	return n;
}

/* Reclaim pages [first, first + n) of p: lazily freed pages are discarded. */
__attribute__((unused))
static int tu_pageout(unsigned char *p, size_t first, size_t n)
{
	size_t ps = tu_pagesize();
	return madvise(p + first * ps, n * ps, MADV_PAGEOUT);
}

/* Skips the whole test, with the reason, when MADV_PAGEOUT is missing;
 * pins the test to one CPU so that reclaim is deterministic. */
__attribute__((unused))
static void tu_require_pageout(void)
{
	tu_pin_cpu();
	unsigned char *p = tu_map(1);
	p[0] = 1;
	if (madvise(p, tu_pagesize(), MADV_PAGEOUT) != 0) {
		char why[128];
		snprintf(why, sizeof why, "kernel lacks MADV_PAGEOUT (Linux >= 5.4): %s",
		         strerror(errno));
		tap_skip_all(why);
	}
	munmap(p, tu_pagesize());
}

/*
 * Waits for child pid; after timeout_s seconds kills it with SIGKILL, from
 * the parent: a child hung with every signal blocked ignores its own alarm.
 * Returns the wait status.
 */
__attribute__((unused))
static int tu_wait_deadline(pid_t pid, unsigned timeout_s)
{
	int status = 0;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (unsigned long waited = 0;; waited++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return status;
		if (waited == (unsigned long)timeout_s * 100 + 200)
			kill(pid, SIGKILL);
		nanosleep(&tick, NULL);
	}
}

/*
 * Runs fn(arg) in a forked child killed after timeout_s seconds (SIGALRM,
 * then SIGKILL from the parent two seconds later). Returns the wait status.
 * The child's TAP lines must not be counted: fn reports through its exit
 * status instead.
 */
__attribute__((unused))
static int tu_run_child(int (*fn)(void *), void *arg, unsigned timeout_s)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		alarm(timeout_s);
		_exit(fn(arg));
	}
	return tu_wait_deadline(pid, timeout_s);
}

/*
 * Runs the TAP case fn in a forked child killed after timeout_s seconds:
 * the child prints its points, numbered on from the parent's, and hands
 * back how many it printed and how many failed; a child that dies or hangs
 * adds one failed point naming the case. For cases that take signals, so
 * that a broken handler costs one case, not the whole test.
 */
__attribute__((unused))
static void tu_run_case(const char *name, void (*fn)(void), unsigned timeout_s)
{
	int fds[2];
	if (pipe(fds) != 0) {
		fn();
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		alarm(timeout_s);
		int before = tap_n, failed_before = tap_failed;
		fn();
		int counts[2] = { tap_n - before, tap_failed - failed_before };
		if (write(fds[1], counts, sizeof counts) != (ssize_t)sizeof counts)
			_exit(3);
		_exit(0);
	}
	close(fds[1]);
	int counts[2] = { 0, 0 };
	/* The status first (a hung child is killed), then what it wrote:
	 * the pipe holds it. */
	int status = pid > 0 ? tu_wait_deadline(pid, timeout_s) : 0;
	ssize_t got = pid > 0 ? read(fds[0], counts, sizeof counts) : -1;
	close(fds[0]);
	if (got == (ssize_t)sizeof counts && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		tap_n += counts[0];
		tap_failed += counts[1];
		return;
	}
	tap_n += got == (ssize_t)sizeof counts ? counts[0] : 0;
	tap_ok(0, "case %s: the child died or hung (status 0x%x)", name, status);
}

/* What a program run by tu_capture printed, and how it ended. */
typedef struct tu_run_s {
	char out[1024];
	char err[8192];
	int status;
	pid_t pid;
} tu_run_t;

/*
 * Forks; the child, with its stdout and stderr on pipes and a 20-second
 * alarm, calls exec(arg) (which execs, or returns and the child exits 127);
 * the parent reads both outputs into r and waits for the child.
 */
__attribute__((unused))
static void tu_capture(tu_run_t *r, void (*exec)(void *arg), void *arg)
{
	int out[2], err[2];
	memset(r, 0, sizeof *r);
	if (pipe(out) != 0 || pipe(err) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		close(out[1]);
		close(err[1]);
		alarm(20);
		exec(arg);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	r->pid = pid;
	tu_read_all(out[0], r->out, sizeof r->out);
	tu_read_all(err[0], r->err, sizeof r->err);
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
}

__attribute__((unused))
static double tu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif /* VRANGE_TESTS_TESTUTIL_H */
