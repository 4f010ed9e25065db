/*
 * t_sigchain - R7 for signals: with the library's SIGBUS/SIGSEGV handlers
 * installed, every fault that is not about a volatile page, and every
 * SIGBUS/SIGSEGV sent by kill(2) or sigqueue(3), reaches the application
 * exactly as it would without the library: its handler (SA_SIGINFO or not,
 * with the right si_addr/si_code/si_pid, the signal mask the kernel would
 * set, SA_RESETHAND, SA_NODEFER, on the alternate stack), or the default
 * action (the process dies of the signal), or nothing for SIG_IGN (but a
 * fault cannot be ignored). sigaction(2) and signal(3) report the
 * application's dispositions, not the library's, and the library's handler
 * stays in the kernel; other signals pass through untouched.
 *
 * Built twice from this file: t_sigchain against libvrange.so (whose
 * constructor installs the handlers before the program's constructors run:
 * the application's handler comes after the library's), and
 * tests/unit/u_sigchain (VR_SIGCHAIN_UNIT) against the core linked
 * statically, where a constructor of priority 101 runs before the
 * library's: the application's handler comes first.
 *
 * Each fault happens in a forked child with a timeout; the child reports
 * through its exit status and a shared page, the parent prints TAP.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "vrange.h"
#include "testutil.h"

#ifdef VR_SIGCHAIN_UNIT
#include "sigbus.h"
#endif

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/*
 * Under AddressSanitizer the faults must reach the library, not ASan's own
 * handlers (which would report and exit 1 instead of dying of the signal).
 */
const char *__asan_default_options(void);
__attribute__((visibility("default"), used))
const char *__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1:detect_leaks=0";
}

/* What the kernel holds, read with the raw system call: the library's
 * handler is invisible to sigaction(2) by design. */
struct kact {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct kact kernel_disp(int sig)
{
	struct kact k;
	memset(&k, 0, sizeof k);
	syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask);
	return k;
}

/* Results written by children (and handlers) for the parent. */
struct shared {
	volatile int sig, code, step, calls;
	volatile int blocked_self, blocked_usr1, blocked_usr2, onstack;
	volatile pid_t pid;
	volatile uid_t uid;
	volatile int value;
	void *volatile addr;
	volatile uintptr_t local;
};
static struct shared *sh;
static sigjmp_buf jb;
static size_t ps;
static int *volatile nullp;     /* opaque NULL: the compiler cannot trap it */

static void record(int sig, siginfo_t *si)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	sh->sig = sig;
	sh->calls++;
	sh->blocked_self = sigismember(&cur, sig);
	sh->blocked_usr1 = sigismember(&cur, SIGUSR1);
	sh->blocked_usr2 = sigismember(&cur, SIGUSR2);
	if (si) {
		sh->code = si->si_code;
		sh->addr = si->si_addr;
		if (si->si_code <= 0) {
			sh->pid = si->si_pid;
			sh->uid = si->si_uid;
			sh->value = si->si_value.sival_int;
		}
	}
	stack_t ss;
	if (sigaltstack(NULL, &ss) == 0)
		sh->onstack = !!(ss.ss_flags & SS_ONSTACK);
	int local = 0;
	sh->local = (uintptr_t)&local;
}

static void h_jump(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
	siglongjmp(jb, 1);
}

static void h_return(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
}

static void h_plain_jump(int sig)
{
	record(sig, NULL);
	siglongjmp(jb, 1);
}

static void h_plain_other(int sig)
{
	record(sig, NULL);
	siglongjmp(jb, 1);
}

static int install(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
	struct sigaction a;
	memset(&a, 0, sizeof a);
	a.sa_sigaction = h;
	a.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&a.sa_mask);
	sigaddset(&a.sa_mask, SIGUSR2);
	return sigaction(sig, &a, NULL);
}

static int set_disp(int sig, void (*h)(int))
{
	struct sigaction a;
	memset(&a, 0, sizeof a);
	a.sa_handler = h;
	sigemptyset(&a.sa_mask);
	return sigaction(sig, &a, NULL);
}

/* The library's handler is the kernel's: not a default, not app's. */
static int library_first(int sig, void *app)
{
	struct kact k = kernel_disp(sig);
	return k.handler != (void *)SIG_DFL && k.handler != (void *)SIG_IGN &&
	       k.handler != app && (k.flags & SA_SIGINFO) && (k.flags & SA_ONSTACK);
}

/* --- faults ------------------------------------------------------------ */

static int memfd = -1;

/* Two pages over a one-page file: the second raises SIGBUS (BUS_ADRERR). */
static unsigned char *truncated_map(void)
{
	memfd = (int)syscall(SYS_memfd_create, "t_sigchain", 0);
	if (memfd < 0 || ftruncate(memfd, (off_t)ps) != 0)
		return NULL;
	void *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static unsigned char *bus_page;

static int touch_bus(void)
{
	return *(volatile unsigned char *)(bus_page + ps);
}

/* UBSan would stop at the NULL read before the fault it is for. */
__attribute__((no_sanitize("undefined")))
static int touch_null(void)
{
	return *(volatile int *)nullp;
}

/* In the child: no core files, a fresh record. */
static void child_setup(void)
{
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
	memset((void *)sh, 0, sizeof *sh);
	/* The memfd is shared with the parent: a case that grew it (h_fix)
	 * must not spare the next one its fault. */
	if (ftruncate(memfd, (off_t)ps) != 0)
		_exit(99);
}

/* --- child cases: 0 on success, a distinct code per failed check -------- */

static int c_bus_handler(void *arg)
{
	child_setup();
	install(SIGBUS, h_jump, 0);
	if (sigsetjmp(jb, 1) == 0) {
		touch_bus();
		return 2;
	}
	if (sh->sig != SIGBUS)
		return 3;
	if (sh->addr != bus_page + ps)
		return 4;
	if (sh->code != BUS_ADRERR)
		return 5;
	return 0;
}

static int c_bus_default(void *arg)
{
	child_setup();
	touch_bus();
	return 2;
}

static int c_segv_handler(void *arg)
{
	child_setup();
	install(SIGSEGV, h_jump, 0);
	if (sigsetjmp(jb, 1) == 0) {
		touch_null();
		return 2;
	}
	if (sh->sig != SIGSEGV)
		return 3;
	if (sh->addr != NULL)
		return 4;
	if (sh->code != SEGV_MAPERR)
		return 5;
	return 0;
}

static int c_segv_default(void *arg)
{
	child_setup();
	set_disp(SIGSEGV, SIG_DFL);
	touch_null();
	return 2;
}

static int c_ignored_fault(void *arg)
{
	int sig = (int)(intptr_t)arg;
	child_setup();
	set_disp(sig, SIG_IGN);
	if (sig == SIGBUS)
		touch_bus();
	else
		touch_null();
	return 2;
}

/* SA_RESETHAND: the first fault is the handler's, the second kills. */
static int c_resethand(void *arg)
{
	child_setup();
	install(SIGBUS, h_jump, SA_RESETHAND);
	if (sigsetjmp(jb, 1) == 0) {
		touch_bus();
		return 2;
	}
	struct sigaction old;
	sigaction(SIGBUS, NULL, &old);
	if (old.sa_handler != SIG_DFL)
		return 3;
	sh->step = 1;
	touch_bus();
	return 4;
}

/* The mask inside the handler, and after a handler that returns. */
static int c_mask(void *arg)
{
	int flags = (int)(intptr_t)arg;
	child_setup();
	sigset_t usr1, before, after;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);      /* from the interrupted context */
	sigprocmask(SIG_BLOCK, NULL, &before);
	install(SIGBUS, h_jump, flags);
	if (sigsetjmp(jb, 1) == 0) {
		touch_bus();
		return 2;
	}
	sigprocmask(SIG_BLOCK, NULL, &after);
	if (sigismember(&after, SIGBUS) || sigismember(&after, SIGUSR2) ||
	    !sigismember(&after, SIGUSR1))
		return 3;
	return 0;
}

/* A handler that fixes the cause and returns: the access is retried. */
static void h_fix(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
	if (ftruncate(memfd, (off_t)(2 * ps)) != 0)
		_exit(9);
}

static int c_return_retries(void *arg)
{
	child_setup();
	install(SIGBUS, h_fix, 0);
	sigset_t before, after;
	sigprocmask(SIG_BLOCK, NULL, &before);
	int v = touch_bus();
	sigprocmask(SIG_BLOCK, NULL, &after);
	if (sh->calls != 1 || v != 0)
		return 2;
	if (sigismember(&after, SIGBUS) || sigismember(&after, SIGUSR2))
		return 3;
	return 0;
}

/* kill(2) and sigqueue(3): delivered as sent. */
static int c_sent(void *arg)
{
	child_setup();
	install(SIGBUS, h_return, 0);
	errno = 4242;
	if (kill(getpid(), SIGBUS) != 0)
		return 2;
	if (errno != 4242)
		return 3;
	if (sh->calls != 1 || sh->code != SI_USER || sh->pid != getpid() || sh->uid != getuid())
		return 4;
	union sigval v = { .sival_int = 42 };
	if (sigqueue(getpid(), SIGBUS, v) != 0)
		return 5;
	if (sh->calls != 2 || sh->code != SI_QUEUE || sh->value != 42)
		return 6;
	return 0;
}

static int c_sent_ignored(void *arg)
{
	child_setup();
	set_disp(SIGBUS, SIG_IGN);
	set_disp(SIGSEGV, SIG_IGN);
	errno = 4242;
	if (kill(getpid(), SIGBUS) != 0 || raise(SIGSEGV) != 0)
		return 2;
	return errno == 4242 ? 0 : 3;
}

static int c_sent_default(void *arg)
{
	child_setup();
	set_disp(SIGBUS, SIG_DFL);
	kill(getpid(), SIGBUS);
	return 2;
}

/*
 * SA_RESTART: a system call interrupted by a sent SIGBUS restarts or fails
 * with EINTR as the application's flags say (the kernel decides from the
 * library's handler, which must follow them). The handler writes the byte
 * the blocked read waits for; a timer sends the signal.
 */
static int rpipe[2];

static void h_feed(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
	if (write(rpipe[1], "x", 1) != 1)
		_exit(9);
}

static int c_restart(void *arg)
{
	int flags = (int)(intptr_t)arg;
	child_setup();
	if (pipe(rpipe) != 0)
		return 2;
	install(SIGBUS, h_feed, flags);
	timer_t t;
	struct sigevent ev;
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGBUS;
	if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0)
		return 3;
	struct itimerspec its = { .it_value = { 0, 50 * 1000 * 1000 } };
	timer_settime(t, 0, &its, NULL);
	char c;
	ssize_t r = read(rpipe[0], &c, 1);
	if (sh->calls != 1 || sh->code != SI_TIMER)
		return 4;
	if (flags & SA_RESTART)
		return r == 1 ? 0 : 5;
	return r == -1 && errno == EINTR ? 0 : 6;
}

/* A fault handled on the alternate stack. */
static unsigned char *alt;
static size_t altsize = 1 << 16;

static int set_altstack(void)
{
	alt = mmap(NULL, altsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (alt == MAP_FAILED)
		return -1;
	stack_t ss = { .ss_sp = alt, .ss_size = altsize, .ss_flags = 0 };
	return sigaltstack(&ss, NULL);
}

static int on_alt(void)
{
	return sh->onstack && sh->local >= (uintptr_t)alt && sh->local < (uintptr_t)alt + altsize;
}

static int c_altstack(void *arg)
{
	child_setup();
	if (set_altstack() != 0)
		return 2;
	install(SIGBUS, h_jump, SA_ONSTACK);
	if (sigsetjmp(jb, 1) == 0) {
		touch_bus();
		return 3;
	}
	return on_alt() ? 0 : 4;
}

/* Stack overflow in a thread with a small stack: only the alternate stack
 * can run a handler. */
static sigjmp_buf tjb;

static void h_overflow(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
	siglongjmp(tjb, 1);
}

static volatile int depth_limit = 1 << 30;

__attribute__((noinline))
static int recurse(int n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	pad[511] = (char)n;
	if (n >= depth_limit)
		return 0;
	return recurse(n + 1) + pad[0] + pad[511];
}

static void *overflow_thread(void *arg)
{
	if (set_altstack() != 0)
		return (void *)2;
	if (sigsetjmp(tjb, 1) == 0) {
		recurse(0);
		return (void *)3;
	}
	return on_alt() && sh->sig == SIGSEGV ? NULL : (void *)4;
}

static int c_overflow(void *arg)
{
	child_setup();
	install(SIGSEGV, h_overflow, SA_ONSTACK);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	pthread_t t;
	void *r = (void *)1;
	if (pthread_create(&t, &at, overflow_thread, NULL) != 0)
		return 5;
	pthread_join(t, &r);
	return (int)(intptr_t)r;
}

/* signal(3) and friends for the fault signals. */
static int c_signal(void *arg)
{
	child_setup();
	if (signal(SIGSEGV, h_plain_jump) != SIG_DFL)
		return 2;
	if (sigsetjmp(jb, 1) == 0) {
		touch_null();
		return 3;
	}
	if (sh->sig != SIGSEGV || !sh->blocked_self)
		return 4;
	if (signal(SIGSEGV, h_plain_other) != h_plain_jump)
		return 5;
	struct sigaction old;
	sigaction(SIGSEGV, NULL, &old);
	if (old.sa_handler != h_plain_other || !(old.sa_flags & SA_RESTART) ||
	    (old.sa_flags & SA_SIGINFO) || !sigismember(&old.sa_mask, SIGSEGV))
		return 6;
	if (sysv_signal(SIGSEGV, h_plain_jump) != h_plain_other)
		return 7;
	sigaction(SIGSEGV, NULL, &old);
	if (!(old.sa_flags & SA_RESETHAND) || !(old.sa_flags & SA_NODEFER))
		return 8;
	sh->calls = 0;
	if (sigsetjmp(jb, 1) == 0) {
		touch_null();
		return 9;
	}
	/* One shot, and not blocked while it ran. */
	if (sh->calls != 1 || sh->blocked_self)
		return 10;
	sigaction(SIGSEGV, NULL, &old);
	if (old.sa_handler != SIG_DFL)
		return 11;
	if (!library_first(SIGSEGV, (void *)h_plain_jump))
		return 12;
	return 0;
}

/* A fault in a thread reaches the application's handler too. */
static void *fault_thread(void *arg)
{
	sigjmp_buf *j = arg;
	if (sigsetjmp(*j, 1) == 0) {
		touch_bus();
		return (void *)2;
	}
	return NULL;
}

static sigjmp_buf thjb;

static void h_thread(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
	siglongjmp(thjb, 1);
}

static int c_thread(void *arg)
{
	child_setup();
	install(SIGBUS, h_thread, 0);
	pthread_t t;
	void *r = (void *)1;
	if (pthread_create(&t, NULL, fault_thread, &thjb) != 0)
		return 3;
	pthread_join(t, &r);
	if (r != NULL)
		return (int)(intptr_t)r;
	return sh->addr == bus_page + ps ? 0 : 4;
}

/*
 * The seqlock: one thread faults in a loop while another keeps replacing
 * the disposition (two handlers, different masks and flags); every fault
 * must reach one of them whole, and nothing may deadlock.
 */
static __thread sigjmp_buf *loop_jb;
static volatile int flipping;

static void h_loop_a(int sig, siginfo_t *si, void *uc)
{
	__atomic_add_fetch(&sh->calls, 1, __ATOMIC_RELAXED);
	siglongjmp(*loop_jb, 1);
}

static void h_loop_b(int sig, siginfo_t *si, void *uc)
{
	__atomic_add_fetch(&sh->step, 1, __ATOMIC_RELAXED);
	siglongjmp(*loop_jb, 1);
}

static void *flipper(void *arg)
{
	for (unsigned i = 0; flipping; i++)
		install(SIGBUS, i & 1 ? h_loop_a : h_loop_b, i & 2 ? SA_NODEFER : 0);
	return NULL;
}

static int c_flip(void *arg)
{
	child_setup();
	install(SIGBUS, h_loop_a, 0);
	flipping = 1;
	pthread_t t;
	if (pthread_create(&t, NULL, flipper, NULL) != 0)
		return 2;
	sigjmp_buf j;
	loop_jb = &j;
	int faults = 20000;
	for (int i = 0; i < faults; i++)
		if (sigsetjmp(j, 1) == 0)
			touch_bus();
	flipping = 0;
	pthread_join(t, NULL);
	return sh->calls + sh->step == faults && sh->calls > 0 && sh->step > 0 ? 0 : 3;
}

/* --- the parent -------------------------------------------------------- */

static int exited0(int st)
{
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("child: %s %d", WIFEXITED(st) ? "exit" : "signal",
		         WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int died_of(int st, int sig)
{
	if (!WIFSIGNALED(st) || WTERMSIG(st) != sig)
		tap_diag("child: %s %d, wanted death by signal %d",
		         WIFEXITED(st) ? "exit" : "signal",
		         WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? WTERMSIG(st) : -1, sig);
	return WIFSIGNALED(st) && WTERMSIG(st) == sig;
}

/* The application's first handler, installed by a constructor: before the
 * library's in u_sigchain, after it in t_sigchain. */
static int early_saw_library;
static void h_early(int sig, siginfo_t *si, void *uc)
{
	record(sig, si);
	siglongjmp(jb, 1);
}

__attribute__((constructor(101)))
static void early(void)
{
	struct kact k = kernel_disp(SIGBUS);
	early_saw_library = k.handler != (void *)SIG_DFL;
	install(SIGBUS, h_early, SA_RESTART);
}

static int c_early(void *arg)
{
	child_setup();
	if (sigsetjmp(jb, 1) == 0) {
		touch_bus();
		return 2;
	}
	return sh->sig == SIGBUS && sh->addr == bus_page + ps ? 0 : 3;
}

static void h_usr1(int sig)
{
	sh->calls++;
}

int main(void)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer interposes sigaction itself, defers signals to its
	 * own handler and reports calls made inside handlers: the chaining
	 * and reports are tested in the default and ASan builds. */
	tap_skip_all("ThreadSanitizer intercepts signals itself");
#endif
	ps = tu_pagesize();
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	bus_page = truncated_map();
	if (sh == MAP_FAILED || !bus_page)
		tap_skip_all("cannot map a truncated memfd");
	tap_diag("t_sigchain: backend %s; the application's first handler came %s the library's",
	         vrange_backend(), early_saw_library ? "after" : "before");
#ifdef VR_SIGCHAIN_UNIT
	tap_ok(!early_saw_library, "u_sigchain: the test's constructor ran before the library's");
	tap_is(vr_sig_install(), 0, "vr_sig_install() again does nothing and succeeds");
#endif

	/* Installed first, and the application's handler kept. */
	tap_ok(library_first(SIGBUS, (void *)h_early), "SIGBUS: the library's handler is the kernel's");
	tap_ok(library_first(SIGSEGV, NULL), "SIGSEGV: the library's handler is the kernel's");
	struct sigaction old;
	sigaction(SIGSEGV, NULL, &old);
	tap_ok(old.sa_handler == SIG_DFL, "sigaction(SIGSEGV, NULL, &old) reports SIG_DFL at start");
	sigaction(SIGBUS, NULL, &old);
	tap_ok(old.sa_sigaction == h_early &&
	       (old.sa_flags & ~SA_RESTORER) == (SA_SIGINFO | SA_RESTART) &&
	       sigismember(&old.sa_mask, SIGUSR2) && !sigismember(&old.sa_mask, SIGUSR1),
	       "sigaction(SIGBUS, NULL, &old) reports the application's handler, flags and mask");
	tap_ok(exited0(tu_run_child(c_early, NULL, 10)),
	       "a foreign SIGBUS reaches the handler the application installed %s the library",
	       early_saw_library ? "after" : "before");
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &dfl, &old);
	tap_ok(old.sa_sigaction == h_early, "replacing it returns it as oldact");
	sigaction(SIGBUS, NULL, &old);
	tap_ok(old.sa_handler == SIG_DFL && library_first(SIGBUS, NULL),
	       "after sigaction(SIGBUS, SIG_DFL) the library's handler stays in the kernel");

	/* Same object as act and oldact. */
	struct sigaction both;
	memset(&both, 0, sizeof both);
	both.sa_sigaction = h_jump;
	both.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&both.sa_mask);
	struct sigaction *volatile bp = &both; /* restrict in the prototype */
	sigaction(SIGBUS, bp, bp);
	tap_ok(both.sa_handler == SIG_DFL, "act == oldact: the old disposition comes back");
	sigaction(SIGBUS, &dfl, &old);
	tap_ok(old.sa_sigaction == h_jump && (old.sa_flags & ~SA_RESTORER) == (SA_SIGINFO | SA_NODEFER),
	       "act == oldact: the new disposition was recorded");
	memset(&both, 0, sizeof both);
	both.sa_handler = SIG_DFL;
	both.sa_flags = 0x400; /* SA_UNSUPPORTED: the kernel drops unknown flags */
	sigaction(SIGBUS, &both, NULL);
	sigaction(SIGBUS, &dfl, &old);
	tap_ok(!(old.sa_flags & 0x400), "unknown flags are dropped, as the kernel does");

	/* Foreign faults. */
	tap_ok(exited0(tu_run_child(c_bus_handler, NULL, 10)),
	       "SIGBUS of a truncated file mapping: SA_SIGINFO handler, si_addr and BUS_ADRERR");
	tap_ok(died_of(tu_run_child(c_bus_default, NULL, 10), SIGBUS),
	       "SIGBUS of a truncated file mapping, no handler: dies of SIGBUS");
	tap_ok(exited0(tu_run_child(c_segv_handler, NULL, 10)),
	       "SIGSEGV of a NULL read: SA_SIGINFO handler, si_addr NULL and SEGV_MAPERR");
	tap_ok(died_of(tu_run_child(c_segv_default, NULL, 10), SIGSEGV),
	       "SIGSEGV of a NULL read, no handler: dies of SIGSEGV");
	tap_ok(died_of(tu_run_child(c_ignored_fault, (void *)(intptr_t)SIGBUS, 10), SIGBUS),
	       "SIG_IGN does not ignore a SIGBUS fault: dies of SIGBUS");
	tap_ok(died_of(tu_run_child(c_ignored_fault, (void *)(intptr_t)SIGSEGV, 10), SIGSEGV),
	       "SIG_IGN does not ignore a SIGSEGV fault: dies of SIGSEGV");
	tap_ok(exited0(tu_run_child(c_thread, NULL, 10)),
	       "a fault in another thread reaches the handler, si_addr right");

	tap_ok(exited0(tu_run_child(c_flip, NULL, 60)),
	       "20000 faults while another thread keeps replacing the handler: each reaches one");

	/* Flags. */
	int st = tu_run_child(c_resethand, NULL, 10);
	tap_ok(died_of(st, SIGBUS) && sh->step == 1 && sh->calls == 1,
	       "SA_RESETHAND: the first fault is handled, sigaction reports SIG_DFL, the second kills");
	st = tu_run_child(c_mask, (void *)0, 10);
	tap_ok(exited0(st) && sh->blocked_self == 1 && sh->blocked_usr2 == 1 && sh->blocked_usr1 == 1,
	       "in the handler: the signal, sa_mask and the interrupted mask are blocked");
	st = tu_run_child(c_mask, (void *)(intptr_t)SA_NODEFER, 10);
	tap_ok(exited0(st) && sh->blocked_self == 0 && sh->blocked_usr2 == 1 && sh->blocked_usr1 == 1,
	       "SA_NODEFER: the signal is not blocked in the handler, sa_mask is");
	tap_ok(exited0(tu_run_child(c_return_retries, NULL, 10)),
	       "a handler that fixes the cause and returns: the access retries, the mask is restored");

	/* Sent signals. */
	tap_ok(exited0(tu_run_child(c_sent, NULL, 10)),
	       "kill and sigqueue: SI_USER with the sender's pid and uid, SI_QUEUE with the value; errno kept");
	tap_ok(exited0(tu_run_child(c_sent_ignored, NULL, 10)),
	       "kill(SIGBUS), raise(SIGSEGV) with SIG_IGN: ignored, the process goes on, errno kept");
	tap_ok(died_of(tu_run_child(c_sent_default, NULL, 10), SIGBUS),
	       "kill(SIGBUS) with SIG_DFL: dies of SIGBUS");

	tap_ok(exited0(tu_run_child(c_restart, (void *)(intptr_t)SA_RESTART, 10)),
	       "SA_RESTART: a read interrupted by a sent SIGBUS restarts");
	tap_ok(exited0(tu_run_child(c_restart, (void *)0, 10)),
	       "without SA_RESTART: it fails with EINTR");

	/* Alternate stack. */
	tap_ok(exited0(tu_run_child(c_altstack, NULL, 10)),
	       "SA_ONSTACK: the handler runs on the alternate stack");
	tap_ok(exited0(tu_run_child(c_overflow, NULL, 20)),
	       "stack overflow in a thread: SIGSEGV handled on its alternate stack");

	/* signal(3). */
	tap_ok(exited0(tu_run_child(c_signal, NULL, 10)),
	       "signal/sysv_signal: previous handler returned, BSD and System V semantics");

	/* Other signals pass through. */
	sh->calls = 0;
	struct sigaction u;
	memset(&u, 0, sizeof u);
	u.sa_handler = h_usr1;
	sigemptyset(&u.sa_mask);
	sigaction(SIGUSR1, &u, NULL);
	struct kact k = kernel_disp(SIGUSR1);
	tap_ok(k.handler == (void *)h_usr1, "SIGUSR1: the application's handler is the kernel's");
	raise(SIGUSR1);
	tap_is(sh->calls, 1, "SIGUSR1: delivered to it directly");
	tap_ok(signal(SIGUSR1, SIG_DFL) == h_usr1 && kernel_disp(SIGUSR1).handler == (void *)SIG_DFL,
	       "signal(SIGUSR1, SIG_DFL) returns it and reaches the kernel");
	errno = 0;
	tap_ok(sigaction(SIGKILL, &u, NULL) == -1 && errno == EINVAL,
	       "sigaction(SIGKILL) fails with EINVAL as libc's does");
	tap_done();
}
