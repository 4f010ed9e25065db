/*
 * u_prof - the exp, log and round the shim gives jemalloc's heap profiler
 * when libm is not in the process (malloc_shim/jemalloc_prof.c), checked
 * against libm: within 2 units in the last place over the ranges jemalloc
 * uses and well beyond, and exact at the special values.
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../tap.h"

double vr_math_exp(double x);
double vr_math_log(double x);
double vr_math_round(double x);

/* Distance in units in the last place between two finite doubles of the
 * same sign. */
static double ulps(double a, double b)
{
	if (a == b)
		return 0;
	int64_t ia, ib;
	memcpy(&ia, &a, sizeof ia);
	memcpy(&ib, &b, sizeof ib);
	return (double)(ia > ib ? ia - ib : ib - ia);
}

static uint64_t seed = 0x9E3779B97F4A7C15ULL;

static double uniform(double lo, double hi)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	double u = (double)((seed * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
	return lo + (hi - lo) * u;
}

static bool same(double a, double b)
{
	/* Equal, including the sign of a zero, or both NaN. */
	return (a != a && b != b) || (a == b && signbit(a) == signbit(b));
}

int main(void)
{
	double worst = 0;
	for (int i = 0; i < 200000; i++) {
		double x = uniform(-700, 700);
		double u = ulps(vr_math_exp(x), exp(x));
		worst = u > worst ? u : worst;
	}
	tap_ok(worst <= 2, "exp over [-700, 700]: within %.0f ulp of libm", worst);

	worst = 0;
	for (int i = 0; i < 200000; i++) {
		double x = exp(uniform(-700, 700)); /* spread over the exponents */
		double u = ulps(vr_math_log(x), log(x));
		worst = u > worst ? u : worst;
	}
	tap_ok(worst <= 2, "log over [e^-700, e^700]: within %.0f ulp of libm", worst);

	worst = 0;
	for (int i = 0; i < 200000; i++) {
		double x = uniform(0.5, 2);
		double u = ulps(vr_math_log(x), log(x));
		worst = u > worst ? u : worst;
	}
	tap_ok(worst <= 2, "log near 1 (jemalloc's sampling: log(u), u in (0, 1]): "
	       "within %.0f ulp of libm", worst);

	int bad = 0;
	for (int i = 0; i < 200000; i++) {
		double x = uniform(-1e6, 1e6);
		if (i % 4 == 0)
			x = floor(x) + 0.5; /* the halfway cases */
		bad += !same(vr_math_round(x), round(x));
	}
	tap_is(bad, 0, "round agrees with libm on 200000 values, halfway cases included");

	static const double specials[] = {
		0.0, -0.0, 0.3, -0.3, 0.5, -0.5, 0.49999999999999994, -0.49999999999999994,
		1.5, -2.5, 4503599627370495.5, -4503599627370495.5, 4503599627370497.0,
		1e300, -1e300, INFINITY, -INFINITY, NAN,
	};
	bad = 0;
	for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
		bad += !same(vr_math_round(specials[i]), round(specials[i]));
	tap_is(bad, 0, "round: zeros, halves, 2^52, infinities and NaN as libm");

	tap_ok(vr_math_exp(0) == 1 && vr_math_exp(1000) == INFINITY &&
	       vr_math_exp(-1000) == 0 && isnan(vr_math_exp(NAN)) &&
	       vr_math_exp(INFINITY) == INFINITY && vr_math_exp(-INFINITY) == 0,
	       "exp: 0, overflow, underflow, infinities and NaN");
	tap_ok(vr_math_log(1) == 0 && vr_math_log(0) == -INFINITY &&
	       isnan(vr_math_log(-1)) && isnan(vr_math_log(NAN)) &&
	       vr_math_log(INFINITY) == INFINITY &&
	       ulps(vr_math_log(4.9406564584124654e-324), log(4.9406564584124654e-324)) <= 4,
	       "log: 1, 0, negative, NaN, infinity and the smallest subnormal");
	tap_done();
}
