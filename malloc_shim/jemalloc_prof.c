/*
 * jemalloc_prof.c - what the private jemalloc's heap profiler needs from
 * libm and libgcc_s, without linking either.
 *
 * jemalloc calls exp, log and round (sampling intervals, and the unbiasing
 * of sampled sizes in a dump) and _Unwind_Backtrace, _Unwind_GetIP
 * (backtraces) only with profiling on (MALLOC_CONF=prof:true). Linking
 * libm and libgcc_s for that would map both into every process under the
 * preload, the RSS that linking jemalloc privately saves; so
 * jemalloc-private.sh renames the references to the functions below.
 *
 *  - exp, log, round: libm's when the process has it at start-up (weak
 *    references: every C++ program, most C ones with -lm); otherwise our
 *    own. jemalloc calls them while it initialises, which can be before
 *    any constructor of ours runs, so libm cannot be loaded in time; and
 *    for what jemalloc computes with them, an error of a few units in the
 *    last place is nothing (u_prof checks ours against libm).
 *  - the unwinder: libgcc_s's when the process has it at start-up,
 *    otherwise loaded at the first backtrace. jemalloc takes backtraces
 *    with its reentrancy guard raised (prof_backtrace), so dlopen's own
 *    allocations are served; its one other call, while it initialises
 *    (prof_unwind_init, arg NULL, to have the unwinder allocate its state
 *    early), is not a backtrace, and is skipped until libgcc_s is there.
 */
#include "internal.h"

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <unwind.h>

#include "log.h"

#pragma weak exp
#pragma weak log
#pragma weak round
#pragma weak _Unwind_Backtrace
#pragma weak _Unwind_GetIP

/* Hidden (-fvisibility=hidden), called only by the private jemalloc. */
double vr_prof_exp(double x);
double vr_prof_log(double x);
double vr_prof_round(double x);
_Unwind_Reason_Code vr_prof_unwind_backtrace(_Unwind_Trace_Fn fn, void *arg);
_Unwind_Ptr vr_prof_unwind_getip(struct _Unwind_Context *ctx);
/* Our own, also for u_prof. */
double vr_math_exp(double x);
double vr_math_log(double x);
double vr_math_round(double x);

/* --- exp, log, round ---------------------------------------------------- */

/* ln 2 split so that k * LN2_HI is exact for |k| < 2^20. */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define LOG2E 1.44269504088896338700e+00

double vr_math_exp(double x)
{
	if (x != x)
		return x;
	if (x > 709.782712893384)
		return HUGE_VAL;
	if (x < -745.1332191019412)
		return 0.0;
	/* x = k ln 2 + r, |r| <= ln 2 / 2; e^r - 1 by its Taylor series in
	 * Horner's form (r (1 + r/2 (1 + r/3 (...)))), whose terms beyond
	 * r^17/17! are below 2^-70 there, and the 1 added last. */
	double k = (double)(long)(x * LOG2E + (x < 0 ? -0.5 : 0.5));
	double r = (x - k * LN2_HI) - k * LN2_LO;
	double p = 1.0;
	for (int n = 17; n >= 2; n--)
		p = 1.0 + r * p / n;
	return ldexp(1.0 + r * p, (int)k);
}

double vr_math_log(double x)
{
	if (x != x || x < 0)
		return NAN;
	if (x == 0)
		return -HUGE_VAL;
	if (x == HUGE_VAL)
		return x;
	/* x = (1 + f) 2^e, 1 + f in [sqrt(1/2), sqrt(2)). With
	 * s = f / (2 + f), ln(1 + f) = 2 atanh(s) = 2s + s R, where
	 * R = 2 (s^2/3 + s^4/5 + ...) (|s| < 0.172: each term smaller by a
	 * factor of 0.03), and 2s = f - (f^2/2 - s f^2/2): f is exact, so
	 * the rounding errors stay in the small corrections. */
	int e;
	double m = frexp(x, &e);
	if (m < 0.70710678118654752440) {
		m *= 2;
		e--;
	}
	double f = m - 1, s = f / (2 + f), z = s * s, hfsq = 0.5 * f * f;
	double R = 0;
	for (int k = 27; k >= 3; k -= 2)
		R = z * (2.0 / k + R);
	return e * LN2_HI + (f - (hfsq - (s * (hfsq + R) + e * LN2_LO)));
}

double vr_math_round(double x)
{
	/* Beyond 2^52 every double is an integer (and NaN, inf stay). */
	if (!(__builtin_fabs(x) < 4503599627370496.0))
		return x;
	double t = (double)(long long)x; /* toward zero, exact here */
	if (x - t >= 0.5)
		t += 1;
	else if (t - x >= 0.5)
		t -= 1;
	return __builtin_copysign(t, x); /* round(-0.3) is -0.0 */
}

double vr_prof_exp(double x)
{
	return exp ? exp(x) : vr_math_exp(x);
}

double vr_prof_log(double x)
{
	return log ? log(x) : vr_math_log(x);
}

double vr_prof_round(double x)
{
	return round ? round(x) : vr_math_round(x);
}

/* --- the unwinder -------------------------------------------------------- */

typedef _Unwind_Reason_Code (*backtrace_fn)(_Unwind_Trace_Fn, void *);
typedef _Unwind_Ptr (*getip_fn)(struct _Unwind_Context *);
static backtrace_fn bt_fn;
static getip_fn ip_fn;

/* The unwinder's two functions: the process's, or libgcc_s loaded now.
 * Both or neither are set (ip_fn first: bt_fn publishes the pair). */
static bool unwinder(void)
{
	if (__atomic_load_n(&bt_fn, __ATOMIC_ACQUIRE))
		return true;
	backtrace_fn b = _Unwind_Backtrace;
	getip_fn g = _Unwind_GetIP;
	if (!b || !g) {
		void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
		b = h ? (backtrace_fn)(uintptr_t)dlsym(h, "_Unwind_Backtrace") : NULL;
		g = h ? (getip_fn)(uintptr_t)dlsym(h, "_Unwind_GetIP") : NULL;
		if (!b || !g)
			return false;
	}
	__atomic_store_n(&ip_fn, g, __ATOMIC_RELEASE);
	__atomic_store_n(&bt_fn, b, __ATOMIC_RELEASE);
	return true;
}

_Unwind_Reason_Code vr_prof_unwind_backtrace(_Unwind_Trace_Fn fn, void *arg)
{
	if (!__atomic_load_n(&bt_fn, __ATOMIC_ACQUIRE)) {
		/* jemalloc's warm-up call while it initialises: no backtrace
		 * is wanted, and dlopen must not run inside jemalloc's
		 * initialisation. */
		if (!arg && !_Unwind_Backtrace)
			return _URC_END_OF_STACK;
		if (!unwinder())
			vr_die("jemalloc's heap profiler (opt.prof) needs libgcc_s.so.1, "
			       "which cannot be loaded: %s", dlerror());
	}
	return __atomic_load_n(&bt_fn, __ATOMIC_ACQUIRE)(fn, arg);
}

_Unwind_Ptr vr_prof_unwind_getip(struct _Unwind_Context *ctx)
{
	/* Called only from inside vr_prof_unwind_backtrace's unwinder. */
	return __atomic_load_n(&ip_fn, __ATOMIC_ACQUIRE)(ctx);
}
