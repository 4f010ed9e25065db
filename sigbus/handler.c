/*
 * handler.c - the process's SIGBUS and SIGSEGV handlers, and the sigaction(2)
 * and signal(3) family that keeps them first (see sigbus.h).
 *
 * Entry points: vr_sig_install, vr_sig_app_catches, and the interposed
 * sigaction, __sigaction,
 * signal, bsd_signal, ssignal, sysv_signal and __sysv_signal.
 *
 * Once installed, the kernel's disposition of SIGBUS and SIGSEGV is always
 * the library's handler. What the application asks for is recorded instead
 * (the "application disposition"), returned by sigaction as if it were the
 * kernel's, and honoured by the handler: a fault the core declines
 * (vr_fault_classify, fault.h) reaches the application's handler with the kernel's
 * siginfo and ucontext and the signal mask the kernel would have set, or
 * gets the default action, so that the process dies of the signal it would
 * have died of without the library (R7).
 *
 * The application disposition is read by the handler without a lock: each
 * signal's record sits under a sequence counter (a seqlock). Writers (the
 * interposed functions, SA_RESETHAND in the handler, fork) serialise on a
 * spin lock taken with every signal blocked, so that no handler can
 * interrupt a writer on its own thread and spin forever.
 *
 * Not seen: dispositions changed by raw rt_sigaction system calls, or by
 * libc internally (sigset(3), sigignore(3)): those replace the library's
 * handler in the kernel, as they would replace any handler.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "glue.h"
#include "log.h"
#include "fault.h"
#include "sigbus.h"

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
#ifndef SA_EXPOSE_TAGBITS
#define SA_EXPOSE_TAGBITS 0x00000800
#endif

/*
 * The flag bits the kernel keeps (since 5.11 it clears the others, so that
 * a program can detect unsupported flags by reading its disposition back).
 */
#define KEPT_FLAGS (SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_ONSTACK | \
                    SA_RESTART | SA_NODEFER | SA_RESETHAND | SA_EXPOSE_TAGBITS | \
                    SA_RESTORER)

/* The kernel's signal mask is 64 bits: the first word of a sigset_t. */
typedef uint64_t kmask_t;

static inline kmask_t kbit(int sig)
{
	return (kmask_t)1 << (sig - 1);
}

static inline kmask_t kmask_of(const sigset_t *set)
{
	kmask_t m;
	memcpy(&m, set, sizeof m);
	return m;
}

/* rt_sigprocmask without libc: errno preserved, works in a handler. */
static inline void ksetmask(int how, const kmask_t *set, kmask_t *old)
{
	vr_sigmask_raw(how, set, old, sizeof(kmask_t));
}

/* --- libc's functions, found once ---------------------------------------- */

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef __sighandler_t (*signal_fn)(int, __sighandler_t);

/*
 * The next definitions after ours (libc's), found with dlsym(RTLD_NEXT).
 * libc's sigaction rather than the raw system call: it supplies the
 * sa_restorer trampoline the kernel needs to return from a handler, and it
 * refuses libc's internal signals. dlsym takes the loader lock and may
 * allocate, so it runs once, from a constructor or the first call, never
 * from a handler.
 */
static sigaction_fn real_sigaction;
static signal_fn real_signal, real_bsd_signal, real_ssignal, real_sysv_signal;

static void *next_sym(const char *name, bool needed)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p && needed)
		vr_die("dlsym(RTLD_NEXT, \"%s\") found nothing", name);
	return p;
}

/*
 * Idempotent: dlsym gives the same answers every time, so two threads that
 * both see nothing resolved simply both resolve, and real_sigaction is
 * published last. No pthread_once: ThreadSanitizer intercepts it, and its
 * runtime calls sigaction (this one) while it initialises, before the
 * interceptor can run.
 */
static void resolve_now(void)
{
	int saved = errno;
	sigaction_fn sa = (sigaction_fn)next_sym("sigaction", true);
	real_signal = (signal_fn)next_sym("signal", true);
	real_bsd_signal = (signal_fn)next_sym("bsd_signal", false);
	real_ssignal = (signal_fn)next_sym("ssignal", false);
	real_sysv_signal = (signal_fn)next_sym("sysv_signal", false);
	if (!real_bsd_signal)
		real_bsd_signal = real_signal;
	if (!real_ssignal)
		real_ssignal = real_signal;
	__atomic_store_n(&real_sigaction, sa, __ATOMIC_RELEASE);
	errno = saved;
}

static inline void resolve(void)
{
	if (vr_unlikely(!__atomic_load_n(&real_sigaction, __ATOMIC_ACQUIRE)))
		resolve_now();
}

/*
 * Early, so that a program's first sigaction (often in its own constructors)
 * does not pay for dlsym, and so that no first call happens in a handler.
 */
__attribute__((constructor(101)))
static void vr_sig_resolve_early(void)
{
	resolve();
}

/* --- the application dispositions ---------------------------------------- */

struct slot {
	unsigned seq;            /* odd while a writer changes app */
	bool installed;          /* the library's handler is in the kernel */
	int kflags;              /* flags of the library's handler in the kernel */
	struct sigaction app;    /* what the application asked for */
};

static struct slot slots[2];   /* [0] SIGBUS, [1] SIGSEGV */
static int writer;             /* spin lock of the writers */
static void *libc_restorer;    /* what libc puts in sa_restorer */

static inline struct slot *slot_of(int sig)
{
	return sig == SIGBUS ? &slots[0] : sig == SIGSEGV ? &slots[1] : NULL;
}

#define SA_WORDS (sizeof(struct sigaction) / sizeof(unsigned long))
_Static_assert(sizeof(struct sigaction) % sizeof(unsigned long) == 0,
               "struct sigaction is copied word by word");

/*
 * Word-by-word relaxed atomic copies: the seqlock tells the reader whether
 * the words it read belong together; the copies themselves must not be torn
 * or be data races.
 */
static void copy_in(struct sigaction *dst, const struct sigaction *src)
{
	unsigned long *d = (unsigned long *)dst;
	const unsigned long *s = (const unsigned long *)src;
	for (size_t i = 0; i < SA_WORDS; i++)
		__atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);
}

static void copy_out(struct sigaction *dst, const struct sigaction *src)
{
	unsigned long *d = (unsigned long *)dst;
	const unsigned long *s = (const unsigned long *)src;
	for (size_t i = 0; i < SA_WORDS; i++)
		d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

/* Reads s->app consistently; returns the sequence it was read at. */
static unsigned app_read(struct slot *s, struct sigaction *out)
{
	for (;;) {
		unsigned seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if (seq & 1) {
			/* A writer on another thread: it holds no lock we need. */
			sched_yield();
			continue;
		}
		copy_out(out, &s->app);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq)
			return seq;
	}
}

/* Writer lock held. */
static void app_write_locked(struct slot *s, const struct sigaction *act)
{
	unsigned seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	copy_in(&s->app, act);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/*
 * Every signal is blocked while the lock is held: a handler that ran on the
 * holder's thread and wanted the lock (an application handler calling
 * sigaction, SA_RESETHAND in ours) would spin forever.
 */
static void writer_lock(sigset_t *saved)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, saved);
	while (__atomic_exchange_n(&writer, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void writer_unlock(const sigset_t *saved)
{
	__atomic_store_n(&writer, 0, __ATOMIC_RELEASE);
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/*
 * fork copies the lock as it is: a child forked while another thread held
 * it would never get it. Holding it across fork keeps the records whole.
 */
static sigset_t fork_saved;

static void fork_prepare(void)
{
	sigset_t saved;
	writer_lock(&saved);
	fork_saved = saved;
}

static void fork_release(void)
{
	sigset_t saved = fork_saved;
	writer_unlock(&saved);
}

/* --- the handler ------------------------------------------------------- */

static void vr_sig_handler(int sig, siginfo_t *si, void *uc);

/*
 * SA_ONSTACK: a fault from a stack overflow can only be handled on the
 * alternate stack, and an application handler that asked for it must run
 * there. SA_NODEFER: a fault inside the handler (a refill callback touching
 * another optimistic page, under the mprotect fallback that is SIGSEGV
 * inside SIGSEGV) is handled again instead of killing the process, as a
 * synchronous fault with its signal blocked would; the mask the
 * application's handler runs with is computed exactly in deliver(), so our
 * own mask does not leak into it. SA_RESTART follows the application's
 * disposition, since the kernel decides from the handler it calls whether
 * a system call interrupted by an asynchronous SIGBUS restarts.
 */
static void ours(struct sigaction *sa, int restart)
{
	memset(sa, 0, sizeof *sa);
	sa->sa_sigaction = vr_sig_handler;
	sa->sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | restart;
	sigemptyset(&sa->sa_mask);
}

/* Re-registers our handler when the application's SA_RESTART changes. */
static void follow_restart_locked(int sig, struct slot *s)
{
	int restart = s->app.sa_flags & SA_RESTART;
	if ((s->kflags & SA_RESTART) == restart)
		return;
	struct sigaction sa;
	ours(&sa, restart);
	if (real_sigaction(sig, &sa, NULL) == 0)
		s->kflags = sa.sa_flags;
}

/*
 * A fault is synchronous when the kernel raised it for the instruction that
 * runs: retrying that instruction raises it again. BUS_MCEERR_AO is the
 * kernel's asynchronous report of a memory error elsewhere; kill(2),
 * sigqueue(3) and tgkill(2) give si_code <= 0.
 */
static bool is_sync(int sig, const siginfo_t *si)
{
#ifdef BUS_MCEERR_AO
	if (sig == SIGBUS && si->si_code == BUS_MCEERR_AO)
		return false;
#endif
	return si->si_code > 0;
}

/*
 * The default action. For a synchronous fault, set SIG_DFL in the kernel
 * and return: the instruction faults again and the kernel kills the
 * process, with the faulting instruction's registers in the core dump and
 * the kernel's own siginfo. For a signal that was sent, send it again, same
 * siginfo, to this thread (the kernel lets a process send itself any
 * si_code), and let it in.
 */
static void default_action(int sig, siginfo_t *si, bool sync)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	real_sigaction(sig, &dfl, NULL);
	if (sync)
		return;
	vr_raise_info(sig, si);
	kmask_t m = kbit(sig);
	ksetmask(SIG_UNBLOCK, &m, NULL);
	/*
	 * Not reached: SIGBUS and SIGSEGV end the process by default. Should
	 * the signal not have arrived, put the library's handler back rather
	 * than leave the process without it.
	 */
	struct slot *s = slot_of(sig);
	struct sigaction sa;
	ours(&sa, s->kflags & SA_RESTART);
	real_sigaction(sig, &sa, NULL);
}

/* SA_RESETHAND: back to SIG_DFL, unless the disposition changed since. */
static void reset_hand(struct slot *s, unsigned seq)
{
	sigset_t saved;
	writer_lock(&saved);
	if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq) {
		/* As the kernel does: only the handler changes, flags stay. */
		struct sigaction a = s->app;
		a.sa_handler = SIG_DFL;
		app_write_locked(s, &a);
	}
	writer_unlock(&saved);
}

/*
 * Delivers a declined signal as the kernel would have without us. Whether
 * it may be ignored depends on what raised it (si_code); refaults says
 * whether retrying the access raises it again, which decides how the
 * default action is reached.
 */
static void deliver(int sig, siginfo_t *si, ucontext_t *uc, bool refaults)
{
	struct slot *s = slot_of(sig);
	struct sigaction app = { .sa_flags = 0 };
	unsigned seq = app_read(s, &app);
	bool sync = is_sync(sig, si);

	if (app.sa_handler == SIG_IGN) {
		/* The kernel does not let a process ignore its own faults: it
		 * resets an ignored synchronous fault to the default. */
		if (!sync)
			return;
		default_action(sig, si, refaults);
		return;
	}
	if (app.sa_handler == SIG_DFL) {
		default_action(sig, si, refaults);
		return;
	}
	if (app.sa_flags & SA_RESETHAND)
		reset_hand(s, seq);

	/*
	 * The mask the kernel would have set: the interrupted context's, plus
	 * sa_mask, plus the signal unless SA_NODEFER. The interrupted mask is
	 * uc_sigmask, not ours: our own handler runs with SA_NODEFER.
	 */
	kmask_t during = kmask_of(&uc->uc_sigmask) | kmask_of(&app.sa_mask);
	if (!(app.sa_flags & SA_NODEFER))
		during |= kbit(sig);
	kmask_t entry;
	ksetmask(SIG_SETMASK, &during, &entry);
	if (app.sa_flags & SA_SIGINFO)
		app.sa_sigaction(sig, si, uc);
	else
		app.sa_handler(sig);
	/*
	 * Back to our handler's mask; sigreturn then restores uc_sigmask, with
	 * any change the application's handler made to it. errno is left as
	 * the application's handler left it, as the kernel would.
	 */
	ksetmask(SIG_SETMASK, &entry, NULL);
}

static void vr_sig_handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	/*
	 * Only a fault the kernel raised is about memory: for a signal sent by
	 * kill(2) or sigqueue(3), si_addr overlaps the sender's pid and uid.
	 */
	vr_fault_t f;
	vr_fault_verdict_t v = si->si_code > 0 ? vr_fault_classify(sig, si, uc, &f)
	                                       : VR_FAULT_DECLINE;
	/* After a delivery, errno is as the application's handler left it,
	 * as without the library. */
	switch (v) {
	case VR_FAULT_RETRY:
		errno = saved;
		break;
	case VR_FAULT_PURGED:
		/* Outside the core's read side: the application's handler
		 * may never return (siglongjmp). */
		vr_report_use_after_purge(si->si_addr, f.lo, f.hi, uc, f.mark_pcs, f.nmark);
		errno = saved;
		deliver(f.sig, &f.si, uc, f.refaults);
		break;
	case VR_FAULT_DECLINE:
		errno = saved;
		deliver(sig, si, uc, is_sync(sig, si));
		break;
	}
}

bool vr_sig_app_catches(int sig)
{
	struct slot *s = slot_of(sig);
	if (!s || !__atomic_load_n(&s->installed, __ATOMIC_ACQUIRE))
		return false;
	struct sigaction app;
	app_read(s, &app);
	return app.sa_handler != SIG_DFL && app.sa_handler != SIG_IGN;
}

/* --- installation ------------------------------------------------------ */

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_errno;

static int install_one(int sig)
{
	struct slot *s = slot_of(sig);
	struct sigaction prev, sa, back;
	sigset_t saved;
	int err = 0;

	writer_lock(&saved);
	if (real_sigaction(sig, NULL, &prev) != 0) {
		err = errno;
		goto out;
	}
	/*
	 * Recorded before our handler goes in: a fault in another thread in
	 * between must find the application's disposition, not an empty one.
	 */
	app_write_locked(s, &prev);
	ours(&sa, prev.sa_flags & SA_RESTART);
	if (real_sigaction(sig, &sa, &back) != 0) {
		err = errno;
		goto out;
	}
	/* What libc's sigaction reports in sa_restorer, for the records. */
	if (real_sigaction(sig, NULL, &back) == 0 && (back.sa_flags & SA_RESTORER))
		libc_restorer = (void *)back.sa_restorer;
	s->kflags = sa.sa_flags;
	__atomic_store_n(&s->installed, true, __ATOMIC_RELEASE);
out:
	writer_unlock(&saved);
	return err;
}

static void install_now(void)
{
	resolve();
	int err = install_one(SIGBUS);
	if (!err)
		err = install_one(SIGSEGV);
	if (!err && pthread_atfork(fork_prepare, fork_release, fork_release) != 0)
		err = ENOMEM;
	install_errno = err;
}

int vr_sig_install(void)
{
	int saved = errno;
	pthread_once(&install_once, install_now);
	if (install_errno) {
		errno = install_errno;
		return -1;
	}
	errno = saved;
	return 0;
}

/* --- the interposed functions ------------------------------------------ */

/*
 * What sigaction(2) would have stored and will report: the kernel keeps
 * only the flags it knows and never masks SIGKILL or SIGSTOP; libc adds
 * its restorer.
 */
static void normalise(struct sigaction *a)
{
	a->sa_flags = (a->sa_flags & KEPT_FLAGS) | SA_RESTORER;
	a->sa_restorer = (void (*)(void))libc_restorer;
	sigdelset(&a->sa_mask, SIGKILL);
	sigdelset(&a->sa_mask, SIGSTOP);
	/* The kernel keeps 64 signals; libc reports only those. */
	kmask_t m = kmask_of(&a->sa_mask);
	memset(&a->sa_mask, 0, sizeof a->sa_mask);
	memcpy(&a->sa_mask, &m, sizeof m);
}

VRANGE_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
	resolve();
	struct slot *s = slot_of(sig);
	if (!s)
		return real_sigaction(sig, act, oldact);

	/* Copied first: act and oldact may be the same object. */
	struct sigaction want;
	if (act)
		want = *act;
	sigset_t saved;
	int r = 0;
	writer_lock(&saved);
	if (!__atomic_load_n(&s->installed, __ATOMIC_ACQUIRE)) {
		/* Not installed yet: the kernel holds the application's. */
		r = real_sigaction(sig, act ? &want : NULL, oldact);
	} else {
		struct sigaction cur = s->app;
		if (act) {
			normalise(&want);
			app_write_locked(s, &want);
			follow_restart_locked(sig, s);
		}
		if (oldact)
			*oldact = cur;
	}
	int e = errno;
	writer_unlock(&saved);
	errno = e;
	return r;
}

int __sigaction(int sig, const struct sigaction *act, struct sigaction *oldact);

VRANGE_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
	return sigaction(sig, act, oldact);
}

/* signal(3) for SIGBUS and SIGSEGV, through the interposed sigaction. */
static __sighandler_t signal_via(int sig, __sighandler_t h, int flags, bool self)
{
	if (h == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	struct sigaction act, old;
	memset(&act, 0, sizeof act);
	act.sa_handler = h;
	sigemptyset(&act.sa_mask);
	if (self)
		sigaddset(&act.sa_mask, sig);
	act.sa_flags = flags;
	if (sigaction(sig, &act, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* BSD semantics, as glibc's signal: restart, block the signal in the
 * handler. (siginterrupt(3) state is not followed for SIGBUS/SIGSEGV.) */
VRANGE_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	resolve();
	if (!slot_of(sig))
		return real_signal(sig, h);
	return signal_via(sig, h, SA_RESTART, true);
}

__sighandler_t bsd_signal(int sig, __sighandler_t h); /* not declared under _GNU_SOURCE */

VRANGE_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	resolve();
	if (!slot_of(sig))
		return real_bsd_signal(sig, h);
	return signal_via(sig, h, SA_RESTART, true);
}

VRANGE_EXPORT __sighandler_t ssignal(int sig, __sighandler_t h)
{
	resolve();
	if (!slot_of(sig))
		return real_ssignal(sig, h);
	return signal_via(sig, h, SA_RESTART, true);
}

/* System V semantics: one shot, not blocked, not restarted. */
static __sighandler_t sysv(int sig, __sighandler_t h)
{
	resolve();
	if (!slot_of(sig)) {
		if (real_sysv_signal)
			return real_sysv_signal(sig, h);
		errno = ENOSYS;
		return SIG_ERR;
	}
	return signal_via(sig, h, SA_RESETHAND | SA_NODEFER, false);
}

VRANGE_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	return sysv(sig, h);
}

VRANGE_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	return sysv(sig, h);
}
