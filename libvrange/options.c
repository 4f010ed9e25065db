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
char opt_stats_file[1024];
long opt_free_decay_ms = 1000;
bool opt_syscall_compat;

typedef enum { OPT_BOOL, OPT_WORD, OPT_MSEC, OPT_PATH } vr_opt_kind_t;

typedef struct vr_option_s {
	const char *name;
	vr_opt_kind_t kind;
	void *dst;
	size_t dst_len;            /* OPT_WORD, OPT_PATH: size of the buffer */
	const char *const *words;  /* OPT_WORD: accepted values, NULL-ended */
	const char *help;
} vr_option_t;

/* "auto" (or empty) is the spelled-out default: no backend forced. */
static const char *const backend_words[] = { "auto", "native", "uffd", "cookie",
                                             "eager", NULL };

static const vr_option_t options[] = {
	{ "VRANGE_BACKEND", OPT_WORD, opt_backend, sizeof opt_backend,
	  backend_words,
	  "force a backend: native, uffd, cookie or eager (default: first that works)" },
	{ "VRANGE_DEBUG", OPT_BOOL, &opt_debug, 0, NULL,
	  "1: print the options, the backend choice and why earlier backends "
	  "were refused, and every use-after-purge report" },
	{ "VRANGE_STATS", OPT_BOOL, &opt_stats, 0, NULL,
	  "1: print statistics at exit (to stderr, or VRANGE_STATS_FILE)" },
	{ "VRANGE_STATS_FILE", OPT_PATH, opt_stats_file, sizeof opt_stats_file, NULL,
	  "file the statistics are appended to at exit, %p for the pid "
	  "(turns VRANGE_STATS on unless it is given)" },
	{ "VRANGE_FREE_DECAY_MS", OPT_MSEC, &opt_free_decay_ms, 0, NULL,
	  "LD_PRELOAD shim: milliseconds before freed memory becomes reclaimable "
	  "(jemalloc dirty_decay_ms; 0 = at once; default 1000)" },
	{ "VRANGE_SYSCALL_COMPAT", OPT_BOOL, &opt_syscall_compat, 0, NULL,
	  "LD_PRELOAD shim, x86-64: 1 answers syscall(314, ...) as the v10 vrange "
	  "system call (default 0: 314 is sched_setattr)" },
};

#define NOPTIONS (sizeof options / sizeof options[0])

/* Where each option's value came from: 0 the default, 1 the environment. */
static bool from_env[NOPTIONS];

#define MSEC_MAX 86400000L

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
		if (*s < '0' || *s > '9' || v > MSEC_MAX)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v > MSEC_MAX)
		return -1;
	*out = v;
	return 0;
}

/* One of the words, in any case (VRANGE_BACKEND=EAGER), stored as the
 * table spells it; "auto" and the empty string store "". */
static int parse_word(const vr_option_t *o, const char *s)
{
	if (!*s || strcasecmp(s, "auto") == 0) {
		((char *)o->dst)[0] = '\0';
		return 0;
	}
	for (const char *const *w = o->words; *w; w++) {
		if (strcasecmp(s, *w) == 0) {
			snprintf(o->dst, o->dst_len, "%s", *w);
			return 0;
		}
	}
	return -1;
}

static int parse_path(const vr_option_t *o, const char *s)
{
	if (strlen(s) >= o->dst_len)
		return -1;
	snprintf(o->dst, o->dst_len, "%s", s);
	return 0;
}

/* What a rejected value should have been. */
static void accepted(const vr_option_t *o, char *buf, size_t len)
{
	size_t n = 0;
	int w;
	switch (o->kind) {
	case OPT_BOOL:
		snprintf(buf, len, "accepted values are 1, yes, true, on, 0, no, false "
		                   "and off, in any case (empty is 0)");
		return;
	case OPT_MSEC:
		snprintf(buf, len, "a whole number of milliseconds from 0 to %ld", MSEC_MAX);
		return;
	case OPT_PATH:
		snprintf(buf, len, "a path of at most %zu bytes", o->dst_len - 1);
		return;
	case OPT_WORD:
		w = snprintf(buf, len, "accepted values are");
		n = w > 0 ? (size_t)w : 0;
		for (const char *const *v = o->words; *v && n < len; v++) {
			w = snprintf(buf + n, len - n, "%s %s%s", v == o->words ? "" : ",",
			             *v, v == o->words ? " (or empty)" : "");
			if (w < 0)
				break;
			n += (size_t)w;
		}
		if (n < len)
			snprintf(buf + n, len - n, ", in any case");
		return;
	}
}

void vr_options_reset(void)
{
	opt_backend[0] = '\0';
	opt_debug = false;
	opt_stats = false;
	opt_stats_file[0] = '\0';
	opt_free_decay_ms = 1000;
	opt_syscall_compat = false;
	memset(from_env, 0, sizeof from_env);
}

static size_t index_of(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return i;
	vr_die("no option %s", name);
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
		      : o->kind == OPT_PATH ? parse_path(o, v)
		                            : parse_word(o, v);
		if (r != 0) {
			char why[160];
			accepted(o, why, sizeof why);
			rejected++;
			vr_warn("ignoring %s=%s: %s", o->name, v, why);
			continue;
		}
		from_env[i] = true;
	}
	/* A file to write the statistics to says that they are wanted. */
	if (opt_stats_file[0] && !from_env[index_of("VRANGE_STATS")])
		opt_stats = true;
	return rejected;
}

/* Levenshtein distance of a and b, each cut to 63 bytes. */
static unsigned distance(const char *a, const char *b)
{
	unsigned row[64];
	size_t la = strnlen(a, 63), lb = strnlen(b, 63);
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *vr_options_closest(const char *name)
{
	const char *best = options[0].name;
	unsigned d = ~0u;
	for (size_t i = 0; i < NOPTIONS; i++) {
		unsigned e = distance(name, options[i].name);
		if (e < d) {
			d = e;
			best = options[i].name;
		}
	}
	return best;
}

int vr_options_check_name(const char *entry)
{
	char name[64];
	size_t n = strcspn(entry, "=");
	if (strncmp(entry, "VRANGE_", 7) != 0 || strncmp(entry, "VRANGE_TEST_", 12) == 0 ||
	    strncmp(entry, "VRANGE_CI_", 10) == 0)
		return 0;
	snprintf(name, sizeof name, "%.*s", (int)n, entry);
	for (size_t i = 0; i < NOPTIONS; i++)
		if (n == strlen(options[i].name) && strncmp(entry, options[i].name, n) == 0)
			return 0;
	vr_warn("ignoring %s: no such variable; did you mean %s?", name,
	        vr_options_closest(name));
	return 1;
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
	if (len == 0)
		return 0;
	buf[0] = '\0';
	for (size_t i = 0; i < NOPTIONS && n + 1 < len; i++) {
		const vr_option_t *o = &options[i];
		char val[32];
		const char *v = val;
		if (o->kind == OPT_BOOL)
			snprintf(val, sizeof val, "%d", *(bool *)o->dst);
		else if (o->kind == OPT_MSEC)
			snprintf(val, sizeof val, "%ld", *(long *)o->dst);
		else if (o->kind == OPT_WORD && !((char *)o->dst)[0])
			v = "auto";
		else
			v = o->dst;
		int w = snprintf(buf + n, len - n, "%s=%s (%s)\n", o->name, v,
		                 from_env[i] ? "environment" : "default");
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return n < len ? n : len - 1;
}
