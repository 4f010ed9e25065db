/*
 * tap.h - a minimal TAP producer for the automake parallel harness.
 *
 * Entry points: tap_plan(n), tap_ok(cond, fmt, ...), tap_is(got, want, ...),
 * tap_skip_all(reason), tap_diag(fmt, ...), tap_done(). Output is line
 * buffered through write(2) so that a test that forks or dies mid-way never
 * duplicates or loses lines. A failed check never aborts the test: every
 * check runs and the exit status counts the failures.
 */
#ifndef VRANGE_TESTS_TAP_H
#define VRANGE_TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tap_n;
static int tap_failed;
static int tap_planned = -1;

static void tap_write(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

__attribute__((format(printf, 1, 2), unused))
static void tap_printf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	tap_write(buf, (size_t)n);
}

__attribute__((unused))
static void tap_plan(int n)
{
	tap_planned = n;
	tap_printf("1..%d\n", n);
}

/* Skips the whole test. The TAP driver reads the skip from the plan; it
 * would count exit status 77 (the plain driver's skip) as an error. */
__attribute__((noreturn, unused))
static void tap_skip_all(const char *reason)
{
	tap_printf("1..0 # SKIP %s\n", reason);
	exit(0);
}

__attribute__((format(printf, 2, 3), unused))
static int tap_ok(int cond, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	tap_n++;
	if (!cond)
		tap_failed++;
	tap_printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, msg);
	return cond;
}

#define tap_is(got, want, ...) \
	tap_is_impl((long long)(got), (long long)(want), #got, __VA_ARGS__)

__attribute__((format(printf, 4, 5), unused))
static int tap_is_impl(long long got, long long want, const char *expr,
                       const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	int ok = tap_ok(got == want, "%s", msg);
	if (!ok)
		tap_printf("# %s: got %lld, want %lld\n", expr, got, want);
	return ok;
}

#define tap_diag(...) tap_printf("# " __VA_ARGS__), tap_printf("\n")

/* Ends the test: prints the plan if none was given, exits 1 on failure. */
__attribute__((noreturn, unused))
static void tap_done(void)
{
	if (tap_planned < 0)
		tap_printf("1..%d\n", tap_n);
	else if (tap_planned != tap_n)
		tap_printf("# planned %d tests, ran %d\n", tap_planned, tap_n);
	exit(tap_failed || (tap_planned >= 0 && tap_planned != tap_n) ? 1 : 0);
}

#endif /* VRANGE_TESTS_TAP_H */
