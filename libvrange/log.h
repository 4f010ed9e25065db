/*
 * log.h - diagnostics: vr_die for impossible states, vr_debug for
 * VRANGE_DEBUG, vr_warn for warnings. All format into a stack buffer and write(2) to stderr: no
 * malloc, no stdio lock, so they work inside malloc and signal handlers
 * (their formatting uses vsnprintf, which glibc implements without
 * allocation for the conversions used here: %s %d %u %zu %lx %p).
 */
#ifndef VR_LOG_H
#define VR_LOG_H

__attribute__((noreturn, format(printf, 3, 4)))
void vr_die_at(const char *file, int line, const char *fmt, ...);

/* Always printed: "libvrange: <message>\n". */
__attribute__((format(printf, 1, 2)))
void vr_warn(const char *fmt, ...);

/* Printed only with VRANGE_DEBUG=1. */
__attribute__((format(printf, 1, 2)))
void vr_debug(const char *fmt, ...);

#define vr_die(...) vr_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define vr_assert(cond) \
	do { \
		if (__builtin_expect(!(cond), 0)) \
			vr_die("assertion failed: %s", #cond); \
	} while (0)

#endif /* VR_LOG_H */
