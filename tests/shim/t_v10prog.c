/*
 * t_v10prog.c - programs written for the v10 kernel patch, run unmodified
 * under LD_PRELOAD=libvrange_preload.so with VRANGE_SYSCALL_COMPAT=1.
 *
 * The programs know nothing of libvrange: they call syscall(314, start,
 * len, mode, &purged) and catch SIGBUS, as the patch's own test programs
 * did. In the v10 patch volatile memory may be read, a surviving page
 * keeps its bytes and a purged one raises SIGBUS; the handler marks the
 * page non-volatile (purged = 1), regenerates it and returns, and the
 * access is retried. Three styles, each with and without reclaim (pages
 * 1, 3, 5 ... given to MADV_PAGEOUT while volatile):
 *   explicit    mark, (reclaim), unmark: purged, and what each page holds;
 *   optimistic  mark, (reclaim), read every page while volatile, unmark in
 *               the SIGBUS handler and refill (lower-case letters);
 *   threads     the same region read by two threads at once, in opposite
 *               orders, one shared handler;
 *   many        optimistic over 4480 pages, each unmarked by the handler
 *               (unmarking from a handler once hung on an RCU grace
 *               period the handler's own fault held off);
 * and "die": optimistic without a handler, which dies of SIGBUS after a
 * use-after-purge report. Page i holds 'A' + i; a program prints, for
 * each page, the first byte it read: the letter, the lower-case letter
 * after a refill, "0" for zeros, or the byte in hex (a cookie would show
 * here).
 *
 * The driver runs each program as a child with VRANGE_BACKEND set to each
 * backend that runs here and compares its output with what the v10 patch
 * would print (eager loses every page at mark: all of them fault). It also
 * checks vrange(3)'s rule for the report: none when the program's own
 * SIGBUS handler takes the fault, unless VRANGE_DEBUG=1; one when the
 * fault kills the process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "shim/shimtest.h"

/* As the v10 test programs spell them. */
#define SYS_vrange 314
#define VOLATILE 0
#define NOVOLATILE 1

#define NPAGES 8
#define NPAGES_T 16
/* Enough pages that unmarking them one by one from the handler empties
 * and retires more than a batch of the registry's leaves (64 pages each),
 * which waits for an RCU grace period. */
#define NPAGES_M (64 * 70)

/* --- the v10-style programs ---------------------------------------------- */

static size_t ps;
static char *region;
static size_t npages;
static volatile sig_atomic_t nbus, nbus_purged;
static int spin;   /* the handler's lock: two threads may fault together */

static void say(const char *s)
{
	size_t n = strlen(s);
	if (write(1, s, n) != (ssize_t)n)
		_exit(5);
}

static void token(char *out, size_t len, unsigned char c)
{
	size_t n = strlen(out);
	if (c >= 'A' && c <= 'Z')
		snprintf(out + n, len - n, " %c", c);
	else if (c >= 'a' && c <= 'z')
		snprintf(out + n, len - n, " %c", c);
	else if (c == 0)
		snprintf(out + n, len - n, " 0");
	else
		snprintf(out + n, len - n, " <%02x>", c);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char *page = (char *)((uintptr_t)si->si_addr & ~(ps - 1));
	if (page < region || page >= region + npages * ps) {
		say("SIGBUS outside the region\n");
		_exit(4);
	}
	while (__atomic_exchange_n(&spin, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	int purged = -1;
	long r = syscall(SYS_vrange, page, ps, NOVOLATILE, &purged);
	if (r != (long)ps) {
		say("vrange(NOVOLATILE) failed in the handler\n");
		_exit(3);
	}
	nbus++;
	if (purged) {
		nbus_purged++;
		memset(page, 'a' + (int)((page - region) / ps % 26), ps);
	}
	__atomic_store_n(&spin, 0, __ATOMIC_RELEASE);
}

static void prepare(size_t n, int reclaim)
{
	ps = (size_t)sysconf(_SC_PAGESIZE);
	npages = n;
	region = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	              -1, 0);
	if (region == MAP_FAILED)
		_exit(6);
	madvise(region, n * ps, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < n; i++)
		memset(region + i * ps, 'A' + (int)(i % 26), ps);
	long r = syscall(SYS_vrange, region, n * ps, VOLATILE, NULL);
	char line[64];
	snprintf(line, sizeof line, "vrange(VOLATILE) = %ld\n", r);
	say(line);
	if (reclaim) {
		/* Pinned: MADV_PAGEOUT drains only this CPU's LRU batches. */
		tu_pin_cpu();
		for (size_t i = 1; i < n; i += 2)
			madvise(region + i * ps, ps, MADV_PAGEOUT);
	}
}

static void handle_sigbus(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static void unmark_all(void)
{
	int purged = -1;
	long r = syscall(SYS_vrange, region, npages * ps, NOVOLATILE, &purged);
	char line[80];
	snprintf(line, sizeof line, "vrange(NOVOLATILE) = %ld, purged = %d\n", r, purged);
	say(line);
}

/* Reads page i's first byte while volatile; zero means another thread's
 * handler unmarked the page and is refilling it. */
static unsigned char read_page(size_t i)
{
	unsigned char c;
	while ((c = *(volatile unsigned char *)(region + i * ps)) == 0)
		sched_yield();
	return c;
}

static int prog_explicit(int reclaim)
{
	prepare(NPAGES, reclaim);
	unmark_all();
	char line[256] = "pages:";
	for (size_t i = 0; i < NPAGES; i++)
		token(line, sizeof line, (unsigned char)region[i * ps]);
	strcat(line, "\n");
	say(line);
	return 0;
}

static int prog_optimistic(int reclaim)
{
	handle_sigbus();
	prepare(NPAGES, reclaim);
	char line[256] = "read while volatile:";
	for (size_t i = 0; i < NPAGES; i++)
		token(line, sizeof line, read_page(i));
	strcat(line, "\n");
	say(line);
	snprintf(line, sizeof line, "SIGBUS %d, purged in the handler %d\n", (int)nbus,
	         (int)nbus_purged);
	say(line);
	unmark_all();
	return 0;
}

/* The optimistic style over NPAGES_M pages: a count instead of a list. */
static int prog_many(int reclaim)
{
	handle_sigbus();
	prepare(NPAGES_M, reclaim);
	size_t good = 0;
	for (size_t i = 0; i < NPAGES_M; i++) {
		unsigned char c = read_page(i);
		good += c == 'A' + i % 26 || c == 'a' + i % 26;
	}
	char line[128];
	snprintf(line, sizeof line, "read while volatile: %zu of %d pages as written or refilled\n",
	         good, NPAGES_M);
	say(line);
	snprintf(line, sizeof line, "SIGBUS %d, purged in the handler %d\n", (int)nbus,
	         (int)nbus_purged);
	say(line);
	unmark_all();
	return 0;
}

struct reader {
	int dir;
	char line[256];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	snprintf(r->line, sizeof r->line, "thread %s:", r->dir > 0 ? "up" : "down");
	unsigned char got[NPAGES_T];
	for (size_t k = 0; k < NPAGES_T; k++) {
		size_t i = r->dir > 0 ? k : NPAGES_T - 1 - k;
		got[i] = read_page(i);
	}
	for (size_t i = 0; i < NPAGES_T; i++)
		token(r->line, sizeof r->line, got[i]);
	strcat(r->line, "\n");
	return NULL;
}

static int prog_threads(int reclaim)
{
	handle_sigbus();
	prepare(NPAGES_T, reclaim);
	struct reader a = { .dir = 1 }, b = { .dir = -1 };
	pthread_t ta, tb;
	if (pthread_create(&ta, NULL, reader_main, &a) != 0 ||
	    pthread_create(&tb, NULL, reader_main, &b) != 0)
		return 7;
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	say(a.line);
	say(b.line);
	char line[64];
	/* Two threads may fault on one page: the second handler finds it
	 * non-volatile already (purged = 0). Only the purged count is fixed. */
	snprintf(line, sizeof line, "purged in the handler %d\n", (int)nbus_purged);
	say(line);
	unmark_all();
	return 0;
}

static int prog_die(void)
{
	prepare(NPAGES, 1);
	say("reading page 1\n");
	(void)*(volatile char *)(region + ps);
	say("survived\n");
	return 0;
}

/* --- the driver ------------------------------------------------------------ */

static const char *self_path = "/proc/self/exe";

struct run {
	char out[4096];
	char err[16384];
	int status;
};

/* Runs style with VRANGE_BACKEND=backend and VRANGE_SYSCALL_COMPAT=1 (and
 * VRANGE_DEBUG=debug); stdout and stderr into r. */
static int run(struct run *r, const char *backend, const char *style, int reclaim,
               int debug)
{
	int out[2];
	FILE *err = tmpfile();
	if (pipe(out) != 0 || !err)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(out[0]);
		dup2(out[1], 1);
		dup2(fileno(err), 2);
		setenv("VRANGE_BACKEND", backend, 1);
		setenv("VRANGE_SYSCALL_COMPAT", "1", 1);
		if (debug)
			setenv("VRANGE_DEBUG", "1", 1);
		else
			unsetenv("VRANGE_DEBUG");
		execl(self_path, "t_v10prog", "prog", style, reclaim ? "reclaim" : "none",
		      (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* Killed after 30 s: a program hung in its SIGBUS handler has every
	 * signal blocked, an alarm included. Its output is read once it is
	 * gone (it writes a few lines, far less than a pipe holds). */
	int waited = 0;
	while (waitpid(pid, &r->status, WNOHANG) == 0) {
		if (++waited > 3000)
			kill(pid, SIGKILL);
		usleep(10000);
	}
	tu_read_all(out[0], r->out, sizeof r->out);
	rewind(err);
	size_t n = fread(r->err, 1, sizeof r->err - 1, err);
	r->err[n] = '\0';
	fclose(err);
	return 0;
}

/* The first line is "backend NAME"; the rest is the program's output. */
static const char *body(const struct run *r, char *backend, size_t len)
{
	const char *nl = strchr(r->out, '\n');
	if (strncmp(r->out, "backend ", 8) != 0 || !nl)
		return r->out;
	snprintf(backend, len, "%.*s", (int)(nl - r->out - 8), r->out + 8);
	return nl + 1;
}

/* What the v10 patch prints for style: page i is lost if reclaimed (odd,
 * with reclaim) or if the backend loses everything (eager). */
static void expect(char *buf, size_t len, const char *style, int reclaim, int eager)
{
	size_t n = strcmp(style, "threads") == 0 ? NPAGES_T
	         : strcmp(style, "many") == 0  ? NPAGES_M : NPAGES;
	int lost = 0;
	char pages[256] = "";
	for (size_t i = 0; i < n; i++) {
		int gone = eager || (reclaim && (i & 1));
		lost += gone;
		if (n == NPAGES_M)
			continue;
		unsigned char c = (unsigned char)('A' + i);
		if (strcmp(style, "explicit") == 0)
			token(pages, sizeof pages, gone ? 0 : c);
		else
			token(pages, sizeof pages, gone ? (unsigned char)('a' + i) : c);
	}
	int w = snprintf(buf, len, "vrange(VOLATILE) = %zu\n", n * 4096);
	if (strcmp(style, "explicit") == 0)
		snprintf(buf + w, len - (size_t)w,
		         "vrange(NOVOLATILE) = %zu, purged = %d\npages:%s\n",
		         n * 4096, lost > 0, pages);
	else if (strcmp(style, "optimistic") == 0)
		snprintf(buf + w, len - (size_t)w,
		         "read while volatile:%s\nSIGBUS %d, purged in the handler %d\n"
		         "vrange(NOVOLATILE) = %zu, purged = 0\n",
		         pages, lost, lost, n * 4096);
	else if (strcmp(style, "many") == 0)
		snprintf(buf + w, len - (size_t)w,
		         "read while volatile: %zu of %zu pages as written or refilled\n"
		         "SIGBUS %d, purged in the handler %d\n"
		         "vrange(NOVOLATILE) = %zu, purged = 0\n",
		         n, n, lost, lost, n * 4096);
	else
		snprintf(buf + w, len - (size_t)w,
		         "thread up:%s\nthread down:%s\npurged in the handler %d\n"
		         "vrange(NOVOLATILE) = %zu, purged = 0\n",
		         pages, pages, lost, n * 4096);
}

static void print_output(const char *text)
{
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", text);
	for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n"))
		tap_diag("  %s", l);
}

static void test_backend(const char *backend)
{
	static const char *const styles[] = { "explicit", "optimistic", "threads", "many" };
	static struct run r;
	char used[32] = "";
	if (run(&r, backend, "explicit", 0, 0) == 0)
		body(&r, used, sizeof used);
	if (strcmp(used, backend) != 0) {
		for (int i = 0; i < 8; i++)
			tap_printf("ok %d # SKIP backend %s does not run here (got %s)\n",
			           ++tap_n, backend, used[0] ? used : "nothing");
		return;
	}
	for (size_t s = 0; s < sizeof styles / sizeof styles[0]; s++) {
		for (int reclaim = 0; reclaim <= 1; reclaim++) {
			char want[1024];
			expect(want, sizeof want, styles[s], reclaim, strcmp(backend, "eager") == 0);
			run(&r, backend, styles[s], reclaim, 0);
			const char *got = body(&r, used, sizeof used);
			int same = strcmp(got, want) == 0;
			tap_ok(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && same &&
			       !strstr(r.err, "use after purge"),
			       "%s, %s, %s: the v10 output, no report on stderr (status %#x)",
			       backend, styles[s], reclaim ? "reclaim" : "no reclaim", r.status);
			tap_diag("%s, %s, %s:", backend, styles[s],
			         reclaim ? "reclaim" : "no reclaim");
			print_output(got);
			if (!same) {
				tap_diag("expected:");
				print_output(want);
			}
			if (r.err[0])
				tap_diag("stderr: %.300s", r.err);
		}
	}
}

/* The report is for bugs: printed for a fault that kills, or on request. */
static void test_report(void)
{
	static struct run r;
	char used[32];
	run(&r, "auto", "optimistic", 1, 1);
	body(&r, used, sizeof used);
	tap_ok(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
	       strstr(r.err, "use after purge") != NULL,
	       "VRANGE_DEBUG=1: a report for each fault the program's handler takes "
	       "(%s)", used);
	run(&r, "auto", "die", 1, 0);
	tap_ok(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGBUS,
	       "no handler: the program dies of SIGBUS (status %#x)", r.status);
	tap_ok(strstr(r.err, "libvrange: use after purge: address ") != NULL,
	       "...after a use-after-purge report, without VRANGE_DEBUG");
	if (!strstr(r.err, "use after purge"))
		tap_diag("stderr: %.300s", r.err);
}

int main(int argc, char **argv)
{
	if (argc > 3 && strcmp(argv[1], "prog") == 0) {
		const char *(*be)(void) = (const char *(*)(void))(uintptr_t)
			dlsym(RTLD_DEFAULT, "vrange_backend");
		char line[64];
		snprintf(line, sizeof line, "backend %s\n", be ? be() : "?");
		say(line);
		int reclaim = strcmp(argv[3], "reclaim") == 0;
		if (strcmp(argv[2], "explicit") == 0)
			return prog_explicit(reclaim);
		if (strcmp(argv[2], "optimistic") == 0)
			return prog_optimistic(reclaim);
		if (strcmp(argv[2], "threads") == 0)
			return prog_threads(reclaim);
		if (strcmp(argv[2], "many") == 0)
			return prog_many(reclaim);
		if (strcmp(argv[2], "die") == 0)
			return prog_die();
		return 2;
	}
#if !defined(__x86_64__)
	tap_skip_all("the v10 system call had a number on x86-64 only");
#endif
#if defined(__SANITIZE_THREAD__)
	tap_skip_all("ThreadSanitizer intercepts signals itself");
#endif
	st_require_preload();
	tu_require_pageout();
	if (tu_pagesize() != 4096)
		tap_skip_all("the expected outputs assume 4 KiB pages");
	tap_plan(3 * 8 + 3);
	const char *only = getenv("VRANGE_BACKEND");
	static const char *const backends[] = { "uffd", "cookie", "eager" };
	for (size_t b = 0; b < 3; b++) {
		if (only && *only && strcmp(only, backends[b]) != 0) {
			for (int i = 0; i < 8; i++)
				tap_printf("ok %d # SKIP VRANGE_BACKEND=%s given\n", ++tap_n, only);
			continue;
		}
		test_backend(backends[b]);
	}
	test_report();
	tap_done();
}
