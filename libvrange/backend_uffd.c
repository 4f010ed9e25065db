/*
 * backend_uffd.c - the uffd backend: explicit ranges exactly as the cookie
 * backend keeps them; optimistic ranges on a userfaultfd registered MISSING
 * with UFFD_FEATURE_SIGBUS (optimistic.c).
 *
 * Entry point: vr_backend_uffd.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "optimistic.h"

static int uffd_probe(char *why, size_t len)
{
	char cookie_why[160];
	int r = vr_backend_cookie.probe(cookie_why, sizeof cookie_why);
	if (r != 0) {
		snprintf(why, len, "%s", cookie_why);
		return r;
	}
	return vr_uffd_probe(why, len);
}

static int uffd_mark(uintptr_t lo, uintptr_t hi, int vma_kind)
{
	return vr_backend_cookie.mark(lo, hi, vma_kind);
}

static ssize_t uffd_unmark(uintptr_t lo, uintptr_t hi, int vma_kind,
                           unsigned char *vec)
{
	return vr_backend_cookie.unmark(lo, hi, vma_kind, vec);
}

static void uffd_resolve(uintptr_t lo, uintptr_t hi)
{
	vr_backend_cookie.resolve(lo, hi);
}

const vr_backend_t vr_backend_uffd = {
	.name = "uffd",
	.probe = uffd_probe,
	.mark = uffd_mark,
	.unmark = uffd_unmark,
	.resolve = uffd_resolve,
};
