/*
 * u_select - backend selection: order, forcing, refusals recorded with
 * their reasons, and the real probes' verdicts on this kernel.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "backend.h"
#include "init.h"
#include "vrange.h"
#include "../tap.h"

static int probe_no(char *why, size_t len)
{
	snprintf(why, len, "fake refusal");
	return -ENOSYS;
}

static int probe_yes(char *why, size_t len)
{
	snprintf(why, len, "fake ok");
	return 0;
}

static const vr_backend_t fa = { .name = "a", .probe = probe_no };
static const vr_backend_t fb = { .name = "b", .probe = probe_yes };
static const vr_backend_t fc = { .name = "c", .probe = probe_yes };

static int kernel_at_least(unsigned maj, unsigned min)
{
	struct utsname u;
	unsigned a = 0, b = 0;
	if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &a, &b) != 2)
		return 0;
	return a > maj || (a == maj && b >= min);
}

int main(void)
{
	vr_init();
	const vr_backend_t *c3[] = { &fa, &fb, &fc };
	char story[256];

	const vr_backend_t *got = vr_select_backend(c3, 3, "", story, sizeof story);
	tap_ok(got == &fb, "automatic: first that works");
	tap_ok(strcmp(story, "a: refused (fake refusal); b: chosen (fake ok)") == 0,
	       "story names the refusal and its reason: %s", story);

	got = vr_select_backend(c3, 3, "c", story, sizeof story);
	tap_ok(got == &fc, "forced backend tried first");
	tap_ok(strncmp(story, "c: chosen", 9) == 0, "story starts with the forced one");

	got = vr_select_backend(c3, 3, "a", story, sizeof story);
	tap_ok(got == &fb, "forced backend refused: the next in order is used");
	tap_ok(strstr(story, "a: refused (fake refusal); b: chosen") != NULL,
	       "story says why the forced one was refused");

	/* The real probes. */
	char why[160];
	int r = vr_backend_native.probe(why, sizeof why);
	if (kernel_at_least(3, 14))
		tap_ok(r != 0 && strstr(why, "sched_setattr"),
		       "native refused on a stock kernel: %s", why);
	else
		tap_ok(1, "native probe on an old kernel: %s", why);
	r = vr_backend_cookie.probe(why, sizeof why);
	if (kernel_at_least(4, 12))
		tap_ok(r == 0, "cookie probe accepts MADV_FREE here: %s", why);
	else
		tap_ok(1, "cookie probe on an old kernel: %s", why);
	tap_is(vr_backend_eager.probe(why, sizeof why), 0, "eager always works");

	const vr_backend_t *real[] = { &vr_backend_native, &vr_backend_cookie,
	                               &vr_backend_eager };
	got = vr_select_backend(real, 3, "native", story, sizeof story);
	tap_ok(got != &vr_backend_native || !kernel_at_least(3, 14),
	       "forcing native on a stock kernel falls back: %s", got->name);
	tap_ok(strcmp(vr_backend_cur->name, vrange_backend()) == 0,
	       "vrange_backend names the backend in use (%s)", vrange_backend());
	tap_done();
}
