/*
 * options.c - the table of run-time options (see options.h).
 *
 * One row per option, as mimalloc's options.c keeps them: adding an option
 * means adding a row and its opt_* variable, nothing else.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue.h"
#include "log.h"
#include "options.h"

char opt_backend[16];
bool opt_debug;
bool opt_stats;
long opt_free_decay_ms = 1000;
bool opt_syscall_compat;

typedef enum { OPT_BOOL, OPT_WORD, OPT_MSEC } vr_opt_kind_t;

typedef struct vr_option_s {
	const char *name;
	vr_opt_kind_t kind;
	void *dst;
	size_t dst_len;            /* OPT_WORD: size of the buffer */
	const char *const *words;  /* OPT_WORD: accepted values, NULL-ended */
	const char *help;
} vr_option_t;

static const char *const backend_words[] = { "", "auto", "native", "uffd",
                                             "cookie", "eager", NULL };

static const vr_option_t options[] = {
	{ "VRANGE_BACKEND", OPT_WORD, opt_backend, sizeof opt_backend,
	  backend_words,
	  "force a backend: native, uffd, cookie or eager (default: first that works)" },
	{ "VRANGE_DEBUG", OPT_BOOL, &opt_debug, 0, NULL,
	  "1: print the backend choice and why earlier backends were refused" },
	{ "VRANGE_STATS", OPT_BOOL, &opt_stats, 0, NULL,
	  "1: print statistics to stderr at exit" },
	{ "VRANGE_FREE_DECAY_MS", OPT_MSEC, &opt_free_decay_ms, 0, NULL,
	  "LD_PRELOAD shim: milliseconds before freed memory becomes reclaimable "
	  "(jemalloc dirty_decay_ms; 0 = at once; default 1000)" },
	{ "VRANGE_SYSCALL_COMPAT", OPT_BOOL, &opt_syscall_compat, 0, NULL,
	  "LD_PRELOAD shim, x86-64: 1 answers syscall(314, ...) as the v10 vrange "
	  "system call (default 0: 314 is sched_setattr)" },
};

#define NOPTIONS (sizeof options / sizeof options[0])

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off", "" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	return -1;
}

/* A non-negative count of milliseconds, at most a day. */
static int parse_msec(const char *s, long *out)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 86400000L)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v > 86400000L)
		return -1;
	*out = v;
	return 0;
}

static int parse_word(const vr_option_t *o, const char *s)
{
	for (const char *const *w = o->words; *w; w++) {
		if (strcmp(s, *w) == 0) {
			/* "auto" is the spelled-out default. */
			const char *v = strcmp(s, "auto") == 0 ? "" : s;
			snprintf(o->dst, o->dst_len, "%s", v);
			return 0;
		}
	}
	return -1;
}

void vr_options_reset(void)
{
	opt_backend[0] = '\0';
	opt_debug = false;
	opt_stats = false;
	opt_free_decay_ms = 1000;
	opt_syscall_compat = false;
}

int vr_options_read(const char *(*getenv_fn)(const char *name))
{
	int rejected = 0;
	vr_options_reset();
	for (size_t i = 0; i < NOPTIONS; i++) {
		const vr_option_t *o = &options[i];
		const char *v = getenv_fn(o->name);
		if (!v)
			continue;
		int r = o->kind == OPT_BOOL ? parse_bool(v, o->dst)
		      : o->kind == OPT_MSEC ? parse_msec(v, o->dst)
		                            : parse_word(o, v);
		if (r != 0) {
			rejected++;
			vr_warn("ignoring %s=%s: %s", o->name, v, o->help);
		}
	}
	return rejected;
}

const char *vr_env_from_fd(int fd, const char *name, char *buf, size_t len)
{
	/* One pass over the stream; at = bytes of the current entry seen,
	 * alive = they are "name=" so far (or its value). */
	size_t nlen = strlen(name), at = 0, out = 0;
	bool alive = true;
	char chunk[512];
	for (;;) {
		ssize_t got = vr_read(fd, chunk, sizeof chunk);
		if (got == -EINTR)
			continue;
		if (got <= 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			char c = chunk[i];
			if (c == '\0') {
				if (alive && at > nlen) {
					buf[out] = '\0';
					return buf;
				}
				at = 0;
				out = 0;
				alive = true;
				continue;
			}
			if (alive) {
				if (at < nlen)
					alive = c == name[at];
				else if (at == nlen)
					alive = c == '=';
				else if (out + 1 < len)
					buf[out++] = c;
			}
			at++;
		}
	}
	/* The last entry may lack its NUL. */
	if (alive && at > nlen) {
		buf[out] = '\0';
		return buf;
	}
	return NULL;
}

const char *vr_getenv(const char *name, char *buf, size_t len)
{
	extern char **environ;
	if (__atomic_load_n(&environ, __ATOMIC_RELAXED))
		return getenv(name);
	int fd = vr_open_ro("/proc/self/environ");
	if (fd < 0)
		return NULL;
	const char *v = vr_env_from_fd(fd, name, buf, len);
	vr_close(fd);
	return v;
}

size_t vr_options_describe(char *buf, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < NOPTIONS && n < len; i++) {
		const vr_option_t *o = &options[i];
		char val[32];
		if (o->kind == OPT_BOOL)
			snprintf(val, sizeof val, "%d", *(bool *)o->dst);
		else if (o->kind == OPT_MSEC)
			snprintf(val, sizeof val, "%ld", *(long *)o->dst);
		else
			snprintf(val, sizeof val, "%s", (char *)o->dst);
		int w = snprintf(buf + n, len - n, "%s=%s (%s)\n", o->name, val, o->help);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return n < len ? n : len;
}
