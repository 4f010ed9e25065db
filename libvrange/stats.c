/*
 * stats.c - counters and vrange_get_stats (see stats.h).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "glue.h"
#include "init.h"
#include "log.h"
#include "options.h"
#include "registry.h"
#include "stats.h"
#include "vma.h"
#include "vrange.h"

static uint64_t counters[VR_STAT_COUNT];
static char selection[256];
static vr_stats_lines_fn extra_lines;

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

VRANGE_EXPORT int vrange_get_stats(struct vrange_stats *out)
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

void vr_stats_set_lines(vr_stats_lines_fn fn)
{
	__atomic_store_n(&extra_lines, fn, __ATOMIC_RELEASE);
}

/* Appends text to buf[*n..len), each line after the prefix. */
static void put_lines(char *buf, size_t len, size_t *n, const char *prefix, const char *text)
{
	size_t plen = strlen(prefix);
	while (*text && *n + 1 < len) {
		const char *nl = strchr(text, '\n');
		size_t l = nl ? (size_t)(nl - text) + 1 : strlen(text);
		if (*n + plen + l >= len)
			break;
		memcpy(buf + *n, prefix, plen);
		memcpy(buf + *n + plen, text, l);
		*n += plen + l;
		text += l;
	}
	buf[*n] = '\0';
}

size_t vr_stats_format(char *buf, size_t len)
{
	struct vrange_stats s;
	char body[2048], prefix[64];
	vrange_get_stats(&s);
	snprintf(prefix, sizeof prefix, "libvrange: %s[%ld]: ", program_invocation_short_name,
	         (long)getpid());
	int b = snprintf(body, sizeof body,
	                 "statistics at exit\n"
	                 "backend %s (%s)\n"
	                 "volatile now: %llu bytes in %llu ranges\n"
	                 "pages marked volatile %llu, made non-volatile %llu, of them "
	                 "reported purged %llu; dropped with their mapping %llu\n"
	                 "optimistic pages: faults on purged pages %llu, refilled %llu\n"
	                 "purgeable objects locked intact %llu, purged %llu\n"
	                 "mapping checks by %s\n",
	                 s.backend, s.selection,
	                 (unsigned long long)s.volatile_bytes,
	                 (unsigned long long)s.volatile_ranges,
	                 (unsigned long long)s.pages_marked,
	                 (unsigned long long)s.pages_unmarked,
	                 (unsigned long long)s.pages_purged,
	                 (unsigned long long)s.pages_dropped,
	                 (unsigned long long)s.sigbus_taken,
	                 (unsigned long long)s.pages_refilled,
	                 (unsigned long long)s.purgeable_intact,
	                 (unsigned long long)s.purgeable_purged, vr_vma_method());
	vr_stats_lines_fn fn = __atomic_load_n(&extra_lines, __ATOMIC_ACQUIRE);
	if (b > 0 && (size_t)b < sizeof body && fn)
		fn(body + b, sizeof body - (size_t)b);
	size_t n = 0;
	if (len == 0)
		return 0;
	put_lines(buf, len, &n, prefix, body);
	return n;
}

void vr_stats_path(const char *path, long pid, char *buf, size_t len)
{
	size_t n = 0;
	for (const char *p = path; *p && n + 1 < len; p++) {
		if (p[0] == '%' && p[1] == 'p') {
			int w = snprintf(buf + n, len - n, "%ld", pid);
			n = w > 0 && (size_t)w < len - n ? n + (size_t)w : len - 1;
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			buf[n++] = '%';
			p++;
		} else {
			buf[n++] = *p;
		}
	}
	buf[n] = '\0';
}

void vr_stats_print(void)
{
	char buf[4096];
	size_t n = vr_stats_format(buf, sizeof buf);
	int fd = 2;
	if (opt_stats_file[0]) {
		char path[sizeof opt_stats_file + 32];
		vr_stats_path(opt_stats_file, (long)getpid(), path, sizeof path);
		fd = vr_open_append(path);
		if (fd < 0) {
			vr_warn("cannot open VRANGE_STATS_FILE %s: %s; statistics on stderr",
			        path, strerror(-fd));
			fd = 2;
		}
	}
	/* One write: with O_APPEND, blocks of processes sharing the file
	 * stay whole. */
	vr_write(fd, buf, n);
	if (fd != 2)
		vr_close(fd);
}
