/*
 * trace.c - with VRANGE_DEBUG=1, where each optimistic range was marked:
 * the use-after-purge report prints it (see trace.h).
 *
 * Entry points: vr_trace_mark_locked, vr_trace_find.
 *
 * A ring of the latest marks in mmap'd memory; the writer (registry lock
 * held) empties a slot, fills it and publishes its bounds last; the fault
 * path copies a slot and checks that its sequence did not move meanwhile.
 */
#include "internal.h"

#include <string.h>

#include "fault.h"
#include "glue.h"
#include "options.h"
#include "trace.h"
#include "unwinder.h"

#define TRACE_SLOTS 128
#define TRACE_DEPTH VR_FAULT_TRACE_DEPTH

typedef struct mark_trace_s {
	unsigned seq;              /* odd while being written */
	uintptr_t lo, hi;          /* page numbers */
	int n;
	uintptr_t pcs[TRACE_DEPTH];
} mark_trace_t;

static mark_trace_t *traces;
static unsigned trace_next;

void vr_trace_mark_locked(uintptr_t lo, uintptr_t hi)
{
	if (!opt_debug)
		return;
	if (!traces && !(traces = vr_mmap_anon(TRACE_SLOTS * sizeof *traces)))
		return;
	uintptr_t pcs[TRACE_DEPTH];
	int n = vr_backtrace_capture(pcs, TRACE_DEPTH);
	mark_trace_t *t = &traces[trace_next++ % TRACE_SLOTS];
	__atomic_add_fetch(&t->seq, 1, __ATOMIC_ACQ_REL);
	t->lo = lo;
	t->hi = hi;
	t->n = n;
	memcpy(t->pcs, pcs, sizeof pcs);
	__atomic_add_fetch(&t->seq, 1, __ATOMIC_RELEASE);
}

int vr_trace_find(uintptr_t vpn, uintptr_t *pcs)
{
	mark_trace_t *ts = __atomic_load_n(&traces, __ATOMIC_ACQUIRE);
	if (!ts)
		return 0;
	unsigned last = __atomic_load_n(&trace_next, __ATOMIC_RELAXED);
	for (unsigned k = 0; k < TRACE_SLOTS; k++) {
		mark_trace_t *t = &ts[(last - 1 - k) % TRACE_SLOTS];
		unsigned s = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
		if (s & 1)
			continue;
		uintptr_t lo = t->lo, hi = t->hi;
		int n = t->n;
		if (vpn < lo || vpn >= hi || n <= 0 || n > TRACE_DEPTH)
			continue;
		memcpy(pcs, t->pcs, (size_t)n * sizeof *pcs);
		if (__atomic_load_n(&t->seq, __ATOMIC_ACQUIRE) == s)
			return n;
	}
	return 0;
}
