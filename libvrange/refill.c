/*
 * refill.c - the table of refill callbacks (see refill.h).
 *
 * Entry points: vr_refill_set_locked, vr_refill_lookup. Tables come from
 * mmap; an old table is unmapped after a grace period, since the signal
 * handler may be reading it.
 */
#include "internal.h"

#include <string.h>
#include <urcu/urcu-bp.h>

#include "glue.h"
#include "refill.h"

typedef struct vr_refill_ent_s {
	uintptr_t lo, hi;    /* page numbers */
	vrange_refill_fn fn;
	void *arg;
} vr_refill_ent_t;

typedef struct vr_refill_tab_s {
	size_t n;
	size_t bytes;        /* of the mapping holding this table */
	vr_refill_ent_t e[];
} vr_refill_tab_t;

static vr_refill_tab_t *table;

static vr_refill_tab_t *tab_new(size_t n)
{
	size_t bytes = sizeof(vr_refill_tab_t) + n * sizeof(vr_refill_ent_t);
	bytes = (bytes + vr_page_size - 1) & ~(vr_page_size - 1);
	vr_refill_tab_t *t = vr_mmap_anon(bytes);
	if (t) {
		t->n = 0;
		t->bytes = bytes;
	}
	return t;
}

int vr_refill_set_locked(uintptr_t lo, uintptr_t hi, vrange_refill_fn fn, void *arg)
{
	vr_refill_tab_t *old = table;
	size_t oldn = old ? old->n : 0;
	/* Each old entry gives at most two pieces; one more for the new. */
	vr_refill_tab_t *t = tab_new(2 * oldn + 1);
	if (!t)
		return -ENOMEM;
	bool placed = fn == NULL;
	for (size_t i = 0; i < oldn; i++) {
		vr_refill_ent_t e = old->e[i];
		if (!placed && e.lo >= lo) {
			t->e[t->n++] = (vr_refill_ent_t){ lo, hi, fn, arg };
			placed = true;
		}
		if (e.hi <= lo || e.lo >= hi) {
			t->e[t->n++] = e;
			continue;
		}
		/* The new range cuts this one: keep what lies outside. */
		if (e.lo < lo)
			t->e[t->n++] = (vr_refill_ent_t){ e.lo, lo, e.fn, e.arg };
		if (!placed) {
			t->e[t->n++] = (vr_refill_ent_t){ lo, hi, fn, arg };
			placed = true;
		}
		if (e.hi > hi)
			t->e[t->n++] = (vr_refill_ent_t){ hi, e.hi, e.fn, e.arg };
	}
	if (!placed)
		t->e[t->n++] = (vr_refill_ent_t){ lo, hi, fn, arg };
	rcu_set_pointer(&table, t);
	if (old) {
		urcu_bp_synchronize_rcu();
		vr_munmap_raw(old, old->bytes);
	}
	return 0;
}

bool vr_refill_lookup(uintptr_t vpn, vrange_refill_fn *fn, void **arg)
{
	vr_refill_tab_t *t = rcu_dereference(table);
	if (!t)
		return false;
	size_t a = 0, b = t->n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (t->e[m].hi <= vpn)
			a = m + 1;
		else if (t->e[m].lo > vpn)
			b = m;
		else {
			*fn = t->e[m].fn;
			*arg = t->e[m].arg;
			return true;
		}
	}
	return false;
}
