/*
 * jemalloc_prof.c - what the private jemalloc's heap profiler needs from
 * libm and libgcc_s, taken from them only if the process has loaded them.
 *
 * jemalloc calls exp, log and round (sampling: prof.c, prof_data.c) and
 * _Unwind_Backtrace, _Unwind_GetIP (backtraces: prof_sys.c) only with
 * profiling on (MALLOC_CONF=prof:true). Linking libm and libgcc_s for that
 * would map both into every process under the preload, the RSS that linking
 * jemalloc privately saves; so jemalloc-private.sh renames the references
 * to the functions below, which reach the real ones through weak
 * references: bound when the program has the libraries at start-up (every
 * C++ program, most C ones with -lm), NULL otherwise, and then we die with
 * the remedy instead of jumping to address 0.
 */
#include "internal.h"

#include <math.h>
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

__attribute__((noreturn, cold)) static void missing(const char *lib)
{
	vr_die("jemalloc's heap profiler (opt.prof) needs %s loaded at start-up: "
	       "add it to LD_PRELOAD after libvrange_preload.so", lib);
}

double vr_prof_exp(double x)
{
	if (!exp)
		missing("libm.so.6");
	return exp(x);
}

double vr_prof_log(double x)
{
	if (!log)
		missing("libm.so.6");
	return log(x);
}

double vr_prof_round(double x)
{
	if (!round)
		missing("libm.so.6");
	return round(x);
}

_Unwind_Reason_Code vr_prof_unwind_backtrace(_Unwind_Trace_Fn fn, void *arg)
{
	if (!_Unwind_Backtrace)
		missing("libgcc_s.so.1");
	return _Unwind_Backtrace(fn, arg);
}

_Unwind_Ptr vr_prof_unwind_getip(struct _Unwind_Context *ctx)
{
	if (!_Unwind_GetIP)
		missing("libgcc_s.so.1");
	return _Unwind_GetIP(ctx);
}
