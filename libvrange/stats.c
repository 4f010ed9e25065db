/*
 * stats.c - counters and vrange_get_stats (see stats.h).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "glue.h"
#include "init.h"
#include "registry.h"
#include "stats.h"
#include "vma.h"
#include "vrange.h"

static uint64_t counters[VR_STAT_COUNT];
static char selection[256];

void vr_stat_add(vr_stat_t which, uint64_t n)
{
	__atomic_add_fetch(&counters[which], n, __ATOMIC_RELAXED);
}

uint64_t vr_stat_get(vr_stat_t which)
{
	return __atomic_load_n(&counters[which], __ATOMIC_RELAXED);
}

void vr_stats_set_selection(const char *text)
{
	snprintf(selection, sizeof selection, "%s", text);
}

VR_EXPORT int vrange_get_stats(struct vrange_stats *out)
{
	if (!out) {
		errno = EFAULT;
		return -1;
	}
	vr_init();
	memset(out, 0, sizeof *out);
	out->volatile_bytes = (uint64_t)vr_registry_npages() * vr_page_size;
	out->volatile_ranges = vr_registry_nranges();
	out->pages_marked = vr_stat_get(VR_STAT_MARKED);
	out->pages_unmarked = vr_stat_get(VR_STAT_UNMARKED);
	out->pages_purged = vr_stat_get(VR_STAT_PURGED);
	out->pages_refilled = vr_stat_get(VR_STAT_REFILLED);
	out->sigbus_taken = vr_stat_get(VR_STAT_SIGBUS);
	out->budget_purges = vr_stat_get(VR_STAT_BUDGET);
	out->pages_dropped = vr_stat_get(VR_STAT_DROPPED);
	out->shim_lazy_bytes = vr_stat_get(VR_STAT_SHIM_LAZY);
	out->purgeable_intact = vr_stat_get(VR_STAT_PG_INTACT);
	out->purgeable_purged = vr_stat_get(VR_STAT_PG_PURGED);
	/* Both strings are written once, before any caller can get here. */
	size_t n = strlen(vr_backend_cur->name);
	memcpy(out->backend, vr_backend_cur->name,
	       n < sizeof out->backend ? n : sizeof out->backend - 1);
	n = strlen(selection);
	memcpy(out->selection, selection,
	       n < sizeof out->selection ? n : sizeof out->selection - 1);
	return 0;
}

void vr_stats_print(void)
{
	struct vrange_stats s;
	char buf[1024];
	vrange_get_stats(&s);
	int n = snprintf(buf, sizeof buf,
	                 "libvrange: backend %s (%s)\n"
	                 "libvrange: volatile now: %llu bytes in %llu ranges\n"
	                 "libvrange: pages marked %llu, unmarked %llu, purged %llu, "
	                 "dropped %llu\n"
	                 "libvrange: mapping checks by %s\n"
	                 "libvrange: purgeable objects locked intact %llu, purged %llu\n",
	                 s.backend, s.selection,
	                 (unsigned long long)s.volatile_bytes,
	                 (unsigned long long)s.volatile_ranges,
	                 (unsigned long long)s.pages_marked,
	                 (unsigned long long)s.pages_unmarked,
	                 (unsigned long long)s.pages_purged,
	                 (unsigned long long)s.pages_dropped, vr_vma_method(),
	                 (unsigned long long)s.purgeable_intact,
	                 (unsigned long long)s.purgeable_purged);
	if (n > 0)
		vr_write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}
