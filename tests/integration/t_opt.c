/*
 * t_opt - optimistic volatile ranges (VRANGE_OPTIMISTIC): surviving pages
 * read their bytes without an unmark, a purged page faults and is refilled
 * by its callback, exactly once even when two threads touch it, and may be
 * reclaimed and refilled again; with no callback the application's SIGBUS
 * handler gets the fault (or the process dies of it, after a report);
 * system calls on a purged page fail with EFAULT; unmarking from inside the
 * application's SIGBUS handler works (the v10 test programs' style); fork;
 * unmark reports every purged page, refilled ones included.
 *
 * Every case runs on every backend. With uffd a surviving page is never
 * faulted on, and a refilled page stays volatile. Without userfaultfd (the
 * cookie and eager backends) the range is PROT_NONE: the first touch of a
 * page restores it (or refills it) and makes it non-volatile, and a system
 * call on a page not yet touched fails with EFAULT even when it survived.
 * With eager every page marked is lost.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include "vrange.h"
#include "../model.h"

#define SEED 77

#if defined(__SANITIZE_ADDRESS__)
/* ASan's own SIGBUS/SIGSEGV handlers would count as the application's:
 * the deaths this test expects are the process's, not ASan's reports. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1";
}
#endif

static int uffd;   /* the backend has userfaultfd: refilled pages stay volatile */

static int refill_calls;
static int refill_delay_ms;

/* Regenerates a page of the SEED pattern: pure computation, so it is
 * async-signal-safe. arg is the region's base. */
static int refill(void *page, void *buf, size_t page_size, void *arg)
{
	size_t i = (size_t)((unsigned char *)page - (unsigned char *)arg) / page_size;
	__atomic_add_fetch(&refill_calls, 1, __ATOMIC_RELAXED);
	if (refill_delay_ms) {
		struct timespec d = { 0, refill_delay_ms * 1000000L };
		nanosleep(&d, NULL);
	}
	for (size_t off = 0; off < page_size; off++)
		((unsigned char *)buf)[off] = tu_byte(SEED, i, off);
	return 0;
}

static unsigned char *opt_region(size_t n)
{
	unsigned char *p = tu_map(n);
	fill_pages(p, 0, n, SEED);
	return p;
}

static size_t intact_pages(unsigned char *p, size_t first, size_t n)
{
	size_t k = 0;
	for (size_t i = first; i < first + n; i++)
		k += tu_page_state(p, i, SEED) == 1;
	return k;
}

static void case_refill(void)
{
	const size_t N = 16;
	unsigned char *p = opt_region(N);
	unsigned char vec[N];
	struct vrange_stats s0 = st_get();
	tap_is(vrange_set_refill(p, N * ps, refill, p), 0, "refill: set callback");
	tap_is(vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC), 0, "refill: mark optimistic");
	tu_pageout(p, 3, 1);
	tu_pageout(p, 8, 6);
	refill_calls = 0;
	tap_is(intact_pages(p, 0, N), N,
	       "refill: every page reads its bytes while volatile, purged ones refilled");
	size_t want = eager ? N : 7;
	tap_is(refill_calls, want, "refill: one callback per purged page (%zu)", want);
	/* uffd: a refilled page stays volatile, reclaimed and refilled
	 * again. Fallback: touched pages are non-volatile: nothing to take. */
	tu_pageout(p, 3, 1);
	tap_is(tu_page_state(p, 3, SEED), 1, "refill: page 3 after a second reclaim");
	tap_is(refill_calls, want + (uffd ? 1 : 0),
	       "refill: %s", uffd ? "reclaimed again, refilled again" :
	       "touched pages are non-volatile: no second refill");
	want += uffd ? 1 : 0;
	struct vrange_stats s1 = st_get();
	tap_is(s1.pages_refilled - s0.pages_refilled, want, "refill: pages_refilled counts %zu", want);
	tap_ok(s1.sigbus_taken - s0.sigbus_taken >= want, "refill: sigbus_taken counts the faults");
	ssize_t n = vrange_mark_nonvolatile_vec(p, N * ps, vec);
	size_t lost = 0, exact = 1;
	for (size_t i = 0; i < N; i++) {
		int l = eager || i == 3 || (i >= 8 && i < 14);
		lost += (size_t)l;
		exact &= vec[i] == l;
	}
	tap_ok(n == (ssize_t)lost && exact, "refill: unmark reports exactly the refilled pages (%zd)", n);
	tap_is(intact_pages(p, 0, N), N, "refill: every page holds its bytes after unmark");
	vrange_set_refill(p, N * ps, NULL, NULL);
	munmap(p, N * ps);
}

static void case_unmark_exact(void)
{
	const size_t N = 32;
	unsigned char *p = opt_region(N);
	unsigned char vec[N];
	tap_is(vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC), 0, "exact: mark optimistic, no callback");
	tu_pageout(p, 5, 1);
	tu_pageout(p, 17, 3);
	ssize_t n = vrange_mark_nonvolatile_vec(p, 10 * ps, vec);
	tap_ok(eager ? n == 10 : n == 1 && vec[5] == 1,
	       "exact: unmark [0,10) reports page 5 only (%zd)", n);
	n = vrange_mark_nonvolatile_vec(p + 10 * ps, 22 * ps, vec);
	tap_ok(eager ? n == 22 : n == 3 && vec[7] && vec[8] && vec[9],
	       "exact: unmark [10,32) reports 17-19 (%zd)", n);
	size_t bad = 0;
	for (size_t i = 0; i < N; i++) {
		int lost = eager || i == 5 || (i >= 17 && i < 20);
		bad += tu_page_state(p, i, SEED) != (lost ? 0 : 1);
	}
	tap_is(bad, 0, "exact: purged pages read zeros, the others their bytes");
	/* R4: no page reclaimable after unmark. */
	tu_pageout(p, 0, N);
	bad = 0;
	for (size_t i = 0; i < N; i++) {
		int lost = eager || i == 5 || (i >= 17 && i < 20);
		bad += tu_page_state(p, i, SEED) != (lost ? 0 : 1);
	}
	tap_is(bad, 0, "exact: after unmark, reclaim takes nothing");
	munmap(p, N * ps);
}

/* Two threads touch the same purged page while the callback is slow. */
static unsigned char *race_page;
static int race_ok[2];

static void *race_reader(void *arg)
{
	int *ok = arg;
	*ok = tu_page_state(race_page, 0, SEED) == 1;
	return NULL;
}

static void case_two_threads(void)
{
	const size_t N = 4;
	unsigned char *p = opt_region(N);
	vrange_set_refill(p, N * ps, refill, p);
	vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC);
	tu_pageout(p, 0, 1);
	refill_calls = 0;
	refill_delay_ms = 50;
	race_page = p;
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, race_reader, &race_ok[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	refill_delay_ms = 0;
	tap_ok(race_ok[0] && race_ok[1], "two threads: both see the whole page");
	tap_is(refill_calls, 1, "two threads: one refill for one page");
	vrange_mark_nonvolatile(p, N * ps, NULL);
	vrange_set_refill(p, N * ps, NULL, NULL);
	munmap(p, N * ps);
}

/* --- cases in a child: the application's own SIGBUS handler ------------ */

static sigjmp_buf jb;
static void *bus_addr;
static int bus_code;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_addr = si->si_addr;
	bus_code = si->si_code;
	siglongjmp(jb, 1);
}

static int child_app_handler(void *arg)
{
	(void)arg;
	const size_t N = 4;
	unsigned char *p = opt_region(N);
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO };
	sigaction(SIGBUS, &sa, NULL);
	vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC);
	tu_pageout(p, 2, 1);
	volatile unsigned char *q = p + 2 * ps + 100;
	if (sigsetjmp(jb, 1) == 0) {
		(void)*q;
		return 10;   /* no fault: the page survived? */
	}
	if ((uintptr_t)bus_addr < (uintptr_t)(p + 2 * ps) ||
	    (uintptr_t)bus_addr >= (uintptr_t)(p + 3 * ps))
		return 11;
	if (bus_code != BUS_ADRERR)
		return 12;
	return 0;
}

/*
 * Run as "t_opt --die FILE" (re-executed with VRANGE_DEBUG=1, read at
 * start-up): touches a purged page with no callback and no handler, with
 * stderr in FILE, after writing the page's address there.
 */
__attribute__((noinline)) static int die_here(const char *file)
{
	FILE *f = freopen(file, "w", stderr);
	if (!f)
		return 21;
	setvbuf(stderr, NULL, _IONBF, 0);
	ps = tu_pagesize();
	tu_pin_cpu();
	const size_t N = 4;
	unsigned char *p = opt_region(N);
	vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC);
	tu_pageout(p, 1, 1);
	fprintf(stderr, "page %p\n", (void *)(p + ps));
	volatile unsigned char *q = p + ps;
	(void)*q;
	return 20;   /* survived: wrong */
}

static void case_death_report(void)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer defers signals to its own handler: a death by
	 * SIGBUS becomes its report and exit status 66. */
	tap_printf("ok %d # SKIP death by SIGBUS under ThreadSanitizer\n", ++tap_n);
	return;
#endif
	char file[] = "/tmp/t_opt.XXXXXX";
	int fd = mkstemp(file);
	if (fd >= 0)
		close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(20);
		setenv("VRANGE_DEBUG", "1", 1);
		execl("/proc/self/exe", "t_opt", "--die", file, (char *)NULL);
		_exit(22);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	tap_ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
	       "no callback, no handler: the process dies of SIGBUS (status 0x%x)", st);
	char text[8192] = "";
	FILE *f = fopen(file, "r");
	size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	text[n] = '\0';
	if (f)
		fclose(f);
	unlink(file);
	void *page = NULL;
	char addr[32] = "";
	if (sscanf(text, "page %p", &page) == 1)
		snprintf(addr, sizeof addr, "address %p", page);
	tap_ok(addr[0] && strstr(text, "use after purge") && strstr(text, addr),
	       "the report names the faulting address (%s)", addr);
	tap_ok(strstr(text, "#0 ") && strstr(text, "die_here"),
	       "the report has a backtrace through the faulting function");
	tap_ok(strstr(text, "marked volatile at:") && strstr(text, "vrange_mark_volatile"),
	       "with VRANGE_DEBUG=1, also where the range was marked volatile");
	if (!strstr(text, "marked volatile at:"))
		tap_diag("report: %.600s", text);
}

/* v10 style: the handler unmarks the range, refills it and returns. */
static unsigned char *v10_base;
static size_t v10_n;

static void on_bus_unmark(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	int purged = 0;
	if (vrange_mark_nonvolatile(v10_base, v10_n * ps, &purged) == 0 && purged)
		for (size_t i = 0; i < v10_n; i++)
			for (size_t off = 0; off < ps; off++)
				v10_base[i * ps + off] = tu_byte(SEED, i, off);
}

static int child_v10_style(void *arg)
{
	(void)arg;
	v10_n = 4;
	v10_base = opt_region(v10_n);
	struct sigaction sa = { .sa_sigaction = on_bus_unmark, .sa_flags = SA_SIGINFO };
	sigaction(SIGBUS, &sa, NULL);
	if (vrange_mark_volatile(v10_base, v10_n * ps, VRANGE_OPTIMISTIC) != 0)
		return 30;
	tu_pageout(v10_base, 0, v10_n);
	if (tu_page_state(v10_base, 3, SEED) != 1)
		return 31;
	struct vrange_stats s = st_get();
	return s.volatile_bytes == 0 ? 0 : 32;
}

static int child_fork_refill(void *arg)
{
	unsigned char *p = arg;
	/* Purged before the fork; refilled here by the child's own fault. */
	if (tu_page_state(p, 1, SEED) != 1)
		return 40;
	unsigned char vec[4];
	ssize_t n = vrange_mark_nonvolatile_vec(p, 4 * ps, vec);
	if ((eager ? n != 4 : n != 1) || !vec[1])
		return 41;
	return 0;
}

static void run_child(int (*fn)(void *), void *arg, int want_sig, const char *what)
{
	int st = tu_run_child(fn, arg, 20);
	if (want_sig)
		tap_ok(WIFSIGNALED(st) && WTERMSIG(st) == want_sig,
		       "%s (status 0x%x)", what, st);
	else
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (status 0x%x)", what, st);
}

static void case_fork(void)
{
	const size_t N = 4;
	unsigned char *p = opt_region(N);
	vrange_set_refill(p, N * ps, refill, p);
	vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC);
	tu_pageout(p, 1, 1);
	run_child(child_fork_refill, p, 0, "fork: the child refills a page purged before fork and unmarks exactly");
	/* The parent was not touched by the child's refill. */
	unsigned char vec[N];
	vrange_set_refill(p, N * ps, NULL, NULL);
	ssize_t n = vrange_mark_nonvolatile_vec(p, N * ps, vec);
	tap_ok((eager ? n == (ssize_t)N : n == 1) && vec[1] && tu_page_state(p, 1, SEED) == 0,
	       "fork: the parent's page stays purged (reported, zeros): %zd", n);
	munmap(p, N * ps);
}

static void case_syscalls(void)
{
	const size_t N = 4;
	unsigned char *p = opt_region(N);
	int fds[2];
	if (pipe(fds) != 0) {
		tap_ok(0, "syscalls: pipe");
		return;
	}
	vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC);
	tu_pageout(p, 2, 1);
	errno = 0;
	ssize_t w = write(fds[1], p + 2 * ps, 16);
	tap_ok(w == -1 && errno == EFAULT, "syscalls: write(2) from a purged page fails with EFAULT");
	if (write(fds[1], "0123456789abcdef", 16) != 16)
		tap_diag("pipe write failed");
	errno = 0;
	ssize_t r = read(fds[0], p + 2 * ps, 16);
	tap_ok(r == -1 && errno == EFAULT, "syscalls: read(2) into a purged page fails with EFAULT");
	errno = 0;
	w = write(fds[1], p, 16);
	if (uffd)
		tap_ok(w == 16, "syscalls: write(2) from a surviving page works");
	else
		tap_ok(w == -1 && errno == EFAULT,
		       "syscalls: fallback: write(2) from a page not yet touched fails with EFAULT");
	unsigned char vec[N];
	ssize_t n = vrange_mark_nonvolatile_vec(p, N * ps, vec);
	tap_ok(eager ? n == (ssize_t)N : n == 1 && vec[2],
	       "syscalls: the page stays purged and is reported (%zd)", n);
	close(fds[0]);
	close(fds[1]);
	munmap(p, N * ps);
}

static void case_registered_untouched(void)
{
	const size_t N = 8;
	unsigned char *p = tu_map(N);
	fill_pages(p, 0, 4, SEED);      /* pages 4-7 never touched */
	tap_is(vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC), 0, "untouched: mark optimistic");
	vrange_mark_nonvolatile(p, N * ps, NULL);
	size_t z = 0;
	for (size_t i = 4; i < N; i++)
		z += tu_page_state(p, i, SEED) == 0;
	tap_is(z, 4, "untouched: never-touched pages read zeros after unmark");
	/* Still registered: dropped by the application, then touched. */
	madvise(p, N * ps, MADV_DONTNEED);
	p[5 * ps] = 1;
	tap_ok(p[5 * ps] == 1 && p[0] == 0, "untouched: a registered page dropped with MADV_DONTNEED faults in as zeros");
	munmap(p, N * ps);
}

static void case_written(void)
{
	const size_t N = 4;
	unsigned char *p = opt_region(N);
	vrange_set_refill(p, N * ps, refill, p);   /* eager: every page is lost */
	vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC);
	p[2 * ps + 9] = tu_byte(SEED, 2, 9);   /* same byte: a write all the same */
	tu_pageout(p, 0, N);
	tap_is(tu_page_state(p, 2, SEED), 1, "written: a page written while optimistic is not discarded");
	unsigned char vec[N];
	vrange_set_refill(p, N * ps, NULL, NULL);
	ssize_t n = vrange_mark_nonvolatile_vec(p, N * ps, vec);
	tap_ok(eager ? n == (ssize_t)N : n == 3 && !vec[2],
	       "written: the others were purged and reported (%zd)", n);
	munmap(p, N * ps);
}

static void case_kinds(void)
{
	const size_t N = 8;
	unsigned char *p = opt_region(N);
	unsigned char vec[N];
	vrange_set_refill(p, N * ps, refill, p);   /* eager: every page is lost */
	struct vrange_stats s0 = st_get();
	vrange_mark_volatile(p, 4 * ps, 0);
	vrange_mark_volatile(p + 4 * ps, 4 * ps, VRANGE_OPTIMISTIC);
	struct vrange_stats s1 = st_get();
	tap_is(s1.volatile_ranges - s0.volatile_ranges, 2, "kinds: explicit and optimistic ranges do not merge");
	tu_pageout(p, 1, 1);
	/* Explicit page 1, lost, becomes optimistic: the loss is kept. */
	tap_is(vrange_mark_volatile(p, N * ps, VRANGE_OPTIMISTIC), 0, "kinds: re-mark all optimistic");
	struct vrange_stats s2 = st_get();
	tap_is(s2.volatile_ranges - s0.volatile_ranges, 1, "kinds: one optimistic range now");
	tap_is(tu_page_state(p, 0, SEED), 1, "kinds: a formerly explicit page reads its bytes (cookie gone)");
	tu_pageout(p, 6, 1);
	tap_is(vrange_mark_volatile(p, N * ps, 0), 0, "kinds: re-mark all explicit");
	vrange_set_refill(p, N * ps, NULL, NULL);
	ssize_t n = vrange_mark_nonvolatile_vec(p, N * ps, vec);
	tap_ok(eager ? n == (ssize_t)N : n == 2 && vec[1] && vec[6],
	       "kinds: both losses reported after two changes of kind (%zd)", n);
	munmap(p, N * ps);
}

static void case_flags(void)
{
	unsigned char *p = opt_region(1);
	errno = 0;
	tap_ok(vrange_mark_volatile(p, ps, 0x2) == -1 && errno == EINVAL,
	       "unknown flag: EINVAL");
	tap_is(intact_pages(p, 0, 1), 1, "unknown flag: nothing changed");
	munmap(p, ps);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--die") == 0)
		return die_here(argv[2]);
	tu_require_pageout();
	t_start("t_opt");
	uffd = strcmp(vrange_backend(), "uffd") == 0;
	/* Every case that takes signals runs in its own child. */
	case_flags();
	tu_run_case("refill", case_refill, 60);
	tu_run_case("unmark exact", case_unmark_exact, 60);
	tu_run_case("two threads", case_two_threads, 60);
	tu_run_case("syscalls", case_syscalls, 60);
	tu_run_case("registered untouched", case_registered_untouched, 60);
	tu_run_case("written", case_written, 60);
	tu_run_case("kinds", case_kinds, 60);
	tu_run_case("fork", case_fork, 60);
	run_child(child_app_handler, NULL, 0,
	          "no callback: the application's handler gets si_addr in the page, BUS_ADRERR");
	case_death_report();
	run_child(child_v10_style, NULL, 0,
	          "v10 style: the handler unmarks and refills, the access retries");
	tap_done();
}
