/*
 * u_report - the use-after-purge report (sigbus/report.c): its first line
 * exactly, a backtrace of the thread (from a signal's ucontext: the
 * faulting function is frame #0), the mark-time backtrace with names, and
 * vr_backtrace_capture skipping itself. The report goes to fd 2, which the
 * test points at a pipe.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h"
#include "sigbus.h"
#include "unwinder.h"
#include "testutil.h"

const char *__asan_default_options(void);
__attribute__((visibility("default"), used))
const char *__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1:detect_leaks=0";
}

static char out[65536];

/* Runs fn with fd 2 on a pipe; out receives what it wrote. */
static void capture(void (*fn)(void *), void *arg)
{
	int p[2];
	if (pipe(p) != 0) {
		tap_printf("Bail out! pipe: %s\n", strerror(errno));
		exit(1);
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	int saved = dup(2);
	dup2(p[1], 2);
	fn(arg);
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	tu_read_all(p[0], out, sizeof out);
}

/* Whether a mapping of the process names a file containing what. */
static bool maps_has(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	if (f)
		fclose(f);
	return found;
}

static uintptr_t pcs[32];
static int npcs;

__attribute__((noinline))
static void mark_here(void)
{
	npcs = vr_backtrace_capture(pcs, 32);
	__asm__ volatile("" ::: "memory"); /* not a tail call */
}

struct args {
	void *addr;
	uintptr_t lo, hi;
	void *uctx;
	const uintptr_t *pcs;
	int n;
};

__attribute__((noinline))
static void report_from_here(void *p)
{
	struct args *a = p;
	vr_report_use_after_purge(a->addr, a->lo, a->hi, a->uctx, a->pcs, a->n);
	__asm__ volatile("" ::: "memory");
}

/* Inside a SIGSEGV handler, the report of the fault with its ucontext. */
static sigjmp_buf jb;
static int *volatile nullp;

static void h_segv(int sig, siginfo_t *si, void *uc)
{
	struct args a = { si->si_addr, 0, vr_page_size, uc, NULL, 0 };
	report_from_here(&a);
	siglongjmp(jb, 1);
}

__attribute__((noinline, no_sanitize("undefined")))
static int crash_here(void)
{
	return *(volatile int *)nullp + 1;
}

static void fault_report(void *unused)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = h_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(jb, 1) == 0)
		crash_here();
	sigaction(SIGSEGV, &old, NULL);
}

int main(void)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer interposes sigaction itself, defers signals to its
	 * own handler and reports calls made inside handlers: the chaining
	 * and reports are tested in the default and ASan builds. */
	tap_skip_all("ThreadSanitizer intercepts signals itself");
#endif
	tap_plan(15);
	size_t ps = vr_page_size;

	/* libunwind is loaded on first need, never by the handler. */
	tap_ok(!maps_has("libunwind"), "libunwind is not mapped before it is needed");
	mark_here();
	tap_is(npcs, 0, "vr_backtrace_capture before the load: no frames");
	struct args a0 = { (void *)0x1234567, 0x1230000, 0x1230000 + ps, NULL, NULL, 0 };
	capture(report_from_here, &a0);
	tap_ok(strstr(out, "\n  (no backtrace: libunwind is not loaded)\n") != NULL,
	       "a report before the load says there is no backtrace");
	tap_ok(vr_backtraces_load() && maps_has("libunwind"),
	       "vr_backtraces_load maps libunwind");

	mark_here();
	tap_ok(npcs >= 2, "vr_backtrace_capture: %d frames", npcs);
	tap_ok(npcs >= 1 && pcs[0] > (uintptr_t)mark_here && pcs[0] < (uintptr_t)mark_here + 256,
	       "vr_backtrace_capture: the first is its caller's return address");

	struct args a = { (void *)0x1234567, 0x1230000, 0x1230000 + 8 * ps, NULL, pcs, npcs };
	capture(report_from_here, &a);
	char want[200];
	snprintf(want, sizeof want,
	         "libvrange: use after purge: address 0x1234567, range [0x1230000,0x%zx) (8 pages)\n",
	         (size_t)(0x1230000 + 8 * ps));
	tap_ok(strncmp(out, want, strlen(want)) == 0, "first line: address, range and pages");
	if (strncmp(out, want, strlen(want)) != 0)
		tap_diag("got: %.200s", out);
	tap_ok(strstr(out, "\n  #0 0x") != NULL, "a backtrace follows");
	tap_ok(strstr(out, " report_from_here+0x") != NULL, "it names the reporting function");
	char *m = strstr(out, "\n  marked volatile at:\n    #0 0x");
	tap_ok(m != NULL, "then the backtrace where the range was marked");
	tap_ok(m && strstr(m, " mark_here+0x") != NULL, "which names the marking function");

	struct args one = { (void *)0x5000, 0x5000, 0x5000 + ps, NULL, NULL, 0 };
	capture(report_from_here, &one);
	tap_ok(strstr(out, "(1 page)\n") != NULL && !strstr(out, "marked volatile"),
	       "one page; no mark backtrace without one");

	capture(fault_report, NULL);
	tap_ok(strncmp(out, "libvrange: use after purge: address 0x0, range [0x0,", 50) == 0,
	       "from a signal handler: the fault address");
	char *f0 = strstr(out, "\n  #0 0x");
	tap_ok(f0 && strncmp(strchr(f0 + 8, ' '), " crash_here", 11) == 0,
	       "frame #0 is the faulting function, from the signal's ucontext");
	tap_ok(strstr(out, " fault_report+0x") != NULL, "and the frames above it follow");
	if (!f0 || strncmp(strchr(f0 + 8, ' '), " crash_here", 11) != 0 ||
	    !strstr(out, " fault_report+0x"))
		tap_diag("report: %.1500s", out);
	tap_done();
}
