/*
 * log.c - vr_die, vr_warn and vr_debug (see log.h).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "glue.h"
#include "log.h"
#include "options.h"

static void emit(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "%s", prefix);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof buf - 2)
		len = sizeof buf - 2;
	buf[len++] = '\n';
	vr_write(2, buf, len);
}

void vr_die_at(const char *file, int line, const char *fmt, ...)
{
	char prefix[160];
	snprintf(prefix, sizeof prefix, "libvrange: fatal at %s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	emit(prefix, fmt, ap);
	va_end(ap);
	abort();
}

void vr_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("libvrange: ", fmt, ap);
	va_end(ap);
}

void vr_debug(const char *fmt, ...)
{
	if (!opt_debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit("libvrange: ", fmt, ap);
	va_end(ap);
}
