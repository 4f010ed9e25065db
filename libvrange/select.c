/*
 * select.c - which backend runs (see backend.h): the candidates in the
 * order of DESIGN.md, each one's probe, and the one chosen.
 *
 * Entry points: vr_backend_cur, vr_select_backend, vr_backend_choose.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "log.h"

/* Eager until the choice: it needs nothing, and nothing runs before. */
const vr_backend_t *vr_backend_cur = &vr_backend_eager;

static const vr_backend_t *const candidates[] = {
	&vr_backend_native,
	&vr_backend_uffd,
	&vr_backend_cookie,
	&vr_backend_eager,
};

const vr_backend_t *vr_select_backend(const vr_backend_t *const *cands,
                                      unsigned ncands, const char *forced,
                                      char *story, size_t len)
{
	const vr_backend_t *order[8];
	unsigned n = 0;
	size_t used = 0;
	story[0] = '\0';
	for (unsigned i = 0; i < ncands && n < 8; i++)
		if (forced[0] && strcmp(cands[i]->name, forced) == 0)
			order[n++] = cands[i];
	for (unsigned i = 0; i < ncands && n < 8; i++)
		if (!forced[0] || strcmp(cands[i]->name, forced) != 0)
			order[n++] = cands[i];
	for (unsigned i = 0; i < n; i++) {
		char why[160];
		int r = order[i]->probe(why, sizeof why);
		int w = snprintf(story + used, len - used, "%s%s: %s (%s)",
		                 used ? "; " : "", order[i]->name,
		                 r == 0 ? "chosen" : "refused", why);
		if (w > 0)
			used = used + (size_t)w < len ? used + (size_t)w : len - 1;
		if (r == 0)
			return order[i];
		if (forced[0] && strcmp(order[i]->name, forced) == 0)
			vr_warn("VRANGE_BACKEND=%s refused: %s; trying the others", forced, why);
	}
	/* Eager refuses nothing: not reached unless cands lacks it. */
	return NULL;
}

const vr_backend_t *vr_backend_choose(const char *forced, char *story, size_t len)
{
	const vr_backend_t *b = vr_select_backend(candidates,
	                                          sizeof candidates / sizeof candidates[0],
	                                          forced, story, len);
	if (!b)
		vr_die("no backend works here: %s", story);
	vr_backend_cur = b;
	return b;
}
