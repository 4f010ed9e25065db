/*
 * bench/bench_shim.c - allocation-heavy workloads for comparing allocators
 * under LD_PRELOAD (glibc, stock jemalloc, libvrange_preload.so); driven by
 * bench/bench_shim.sh (`make bench-shim`).
 *
 * Usage: bench_shim WORKLOAD [SCALE], or bench_shim --help
 *   large    200 times malloc, memset and free of a block of 8-15 MiB, two
 *            alive at a time
 *   small    churn of 16-4096 B blocks, random sizes: 10^7 operations over
 *            a table of 2^16 slots; 1/8 of the slots are kept at the end
 *   threads  4 threads, 750000 blocks each, mostly 16-4096 B with 1/64
 *            of them 64 KiB-2 MiB, a quarter through a shared table (freed
 *            by whichever thread replaces them)
 *   realloc  10 buffers grown by realloc from 16 B to 4-64 MiB, 1 KiB at
 *            a time up to 1 MiB then by 1/8, written as they grow
 *   calloc   3000 zeroed tables of 256 KiB-16 MiB, four alive at a time,
 *            each used sparsely (one page in 16 written, as a hash table
 *            or a sparse matrix would) and one in 8 written whole
 * SCALE (default 1) multiplies the number of operations.
 *
 * The program links nothing but libc: the allocator is whatever the dynamic
 * linker binds malloc to. It prints one line,
 *   WORKLOAD wall_s=S cpu_s=S peak_rss_kb=N rss_kb=N lazyfree_kb=N
 * wall time of the workload alone (not process start-up), the CPU time it
 * took (user and system, all threads: on a shared machine the one that
 * preemption by other tenants does not inflate), peak RSS (VmHWM),
 * and Rss and LazyFree of /proc/self/smaps_rollup read at the end, after the
 * workload freed what it does not keep.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static volatile unsigned char sink;

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: deterministic, the same sequence under every allocator. */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User plus system time of the process so far, all threads. */
static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "bench_shim: malloc(%zu) failed\n", n);
		exit(2);
	}
	return p;
}

/* Touches a block the way a program would: first and last bytes, and one
 * byte per page in between for blocks of a few pages. */
static void touch(unsigned char *p, size_t n, unsigned char v)
{
	p[0] = v;
	p[n - 1] = v;
	for (size_t i = 4096; i < n && i < 65536; i += 4096)
		p[i] = v;
}

static void w_large(long scale)
{
	enum { LIVE = 2 };
	unsigned char *live[LIVE] = { 0 };
	long iters = 200 * scale;
	for (long i = 0; i < iters; i++) {
		size_t n = (size_t)(8 + i % 8) << 20;
		int k = (int)(i % LIVE);
		if (live[k]) {
			sink ^= live[k][12345];
			free(live[k]);
		}
		live[k] = xmalloc(n);
		memset(live[k], (int)(i & 0xff), n);
	}
	for (int k = 0; k < LIVE; k++)
		free(live[k]);
}

#define SLOTS (1u << 16)

static void w_small(long scale)
{
	static unsigned char *slot[SLOTS];
	uint64_t s = 0x9E3779B97F4A7C15ULL;
	long ops = 10000000L * scale;
	for (long i = 0; i < ops; i++) {
		uint64_t r = rnd(&s);
		unsigned k = (unsigned)(r % SLOTS);
		if (slot[k]) {
			sink ^= slot[k][0];
			free(slot[k]);
			slot[k] = NULL;
		} else {
			size_t n = 16 + (size_t)((r >> 32) % (4096 - 16 + 1));
			slot[k] = xmalloc(n);
			touch(slot[k], n, (unsigned char)i);
		}
	}
	/* Keep 1/8 of the slots. */
	for (unsigned k = 0; k < SLOTS; k++)
		if (k % 8 != 0) {
			free(slot[k]);
			slot[k] = NULL;
		}
}

#define SHARED (1u << 14)
static _Atomic(unsigned char *) shared[SHARED];
static long thread_ops;

static void *thread_main(void *arg)
{
	uint64_t s = 0x243F6A8885A308D3ULL * (uint64_t)((uintptr_t)arg + 1);
	enum { LOCAL = 4096 };
	unsigned char **local = calloc(LOCAL, sizeof *local);
	if (!local)
		exit(2);
	for (long i = 0; i < thread_ops; i++) {
		uint64_t r = rnd(&s);
		size_t n;
		if (r % 64 == 0)
			n = (64u << 10) + (size_t)((r >> 16) % ((2u << 20) - (64u << 10)));
		else
			n = 16 + (size_t)((r >> 16) % (4096 - 16 + 1));
		unsigned char *p = xmalloc(n);
		touch(p, n, (unsigned char)i);
		if ((r >> 8) % 4 == 0) {
			/* Into the shared table: the block it replaces was
			 * allocated by any thread. */
			unsigned char *old = atomic_exchange(&shared[(r >> 40) % SHARED], p);
			if (old) {
				sink ^= old[0];
				free(old);
			}
		} else {
			unsigned k = (unsigned)((r >> 40) % LOCAL);
			if (local[k]) {
				sink ^= local[k][0];
				free(local[k]);
			}
			local[k] = p;
		}
	}
	for (unsigned k = 0; k < LOCAL; k++)
		free(local[k]);
	free(local);
	return NULL;
}

static void w_threads(long scale)
{
	enum { NT = 4 };
	pthread_t t[NT];
	thread_ops = 750000L * scale;
	for (long i = 0; i < NT; i++)
		if (pthread_create(&t[i], NULL, thread_main, (void *)i) != 0) {
			fprintf(stderr, "bench_shim: pthread_create failed\n");
			exit(2);
		}
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	/* Keep 1/8 of the shared table. */
	for (unsigned k = 0; k < SHARED; k++)
		if (k % 8 != 0)
			free(atomic_exchange(&shared[k], NULL));
}

static void w_realloc(long scale)
{
	uint64_t s = 0x13198A2E03707344ULL;
	long rounds = 10 * scale;
	for (long i = 0; i < rounds; i++) {
		size_t target = (size_t)(4 + rnd(&s) % 61) << 20;
		size_t n = 16;
		unsigned char *p = xmalloc(n);
		memset(p, 1, n);
		while (n < target) {
			size_t m = n < (1u << 20) ? n + 1024 : n + n / 8;
			unsigned char *q = realloc(p, m);
			if (!q) {
				fprintf(stderr, "bench_shim: realloc(%zu) failed\n", m);
				exit(2);
			}
			memset(q + n, (int)(m & 0xff), m - n);
			p = q;
			n = m;
		}
		sink ^= p[n / 2];
		free(p);
	}
}

static void w_calloc(long scale)
{
	enum { LIVE = 4 };
	unsigned char *live[LIVE] = { 0 };
	uint64_t s = 0x452821E638D01377ULL;
	long iters = 3000 * scale;
	for (long i = 0; i < iters; i++) {
		uint64_t r = rnd(&s);
		size_t n = ((size_t)256 << 10) << (r % 7); /* 256 KiB .. 16 MiB */
		int k = (int)(i % LIVE);
		if (live[k]) {
			sink ^= live[k][0];
			free(live[k]);
		}
		unsigned char *p = calloc(1, n);
		if (!p) {
			fprintf(stderr, "bench_shim: calloc(%zu) failed\n", n);
			exit(2);
		}
		if ((r >> 8) % 8 == 0) {
			memset(p, (int)(i & 0xff) | 1, n);
		} else {
			for (size_t j = 0; j < n; j += 16 * 4096) {
				if (p[j] != 0) {
					fprintf(stderr, "bench_shim: calloc block not zero\n");
					exit(2);
				}
				p[j] = 1;
			}
		}
		live[k] = p;
	}
	for (int k = 0; k < LIVE; k++)
		free(live[k]);
}

/* "Key:   123 kB" from a /proc file, 0 if missing. */
static long proc_kb(const char *file, const char *key)
{
	FILE *f = fopen(file, "r");
	char line[256];
	long v = 0;
	size_t kl = strlen(key);
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(long);
	} w[] = {
		{ "large", w_large },
		{ "small", w_small },
		{ "threads", w_threads },
		{ "realloc", w_realloc },
		{ "calloc", w_calloc },
	};
	static const char usage[] =
		"usage: bench_shim large|small|threads|realloc|calloc [SCALE]\n"
		"       bench_shim --help\n"
		"\n"
		"Runs one allocation workload on whatever allocator malloc binds to\n"
		"(glibc, or LD_PRELOAD of jemalloc or libvrange_preload.so) and prints\n"
		"one line: WORKLOAD wall_s=S cpu_s=S peak_rss_kb=N rss_kb=N lazyfree_kb=N.\n"
		"SCALE (default 1) multiplies the number of operations.\n"
		"bench/bench_shim.sh (make bench-shim) compares the allocators.\n"
		"  large    200 times malloc, memset and free of 8-15 MiB, two alive\n"
		"  small    10^7 mallocs and frees of 16-4096 B over 2^16 slots\n"
		"  threads  4 threads of 750000 blocks, 1/64 of them 64 KiB-2 MiB,\n"
		"           a quarter freed by another thread\n"
		"  realloc  10 buffers grown by realloc from 16 B to 4-64 MiB\n"
		"  calloc   3000 zeroed tables of 256 KiB-16 MiB, used sparsely\n";
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	long scale = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
	if (argc < 2 || scale < 1) {
		fputs(usage, stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		if (strcmp(argv[1], w[i].name) != 0)
			continue;
		double t0 = now(), c0 = cpu_now();
		w[i].fn(scale);
		double t = now() - t0, c = cpu_now() - c0;
		/* Read before printing: stdio's buffer is an allocation too. */
		long hwm = proc_kb("/proc/self/status", "VmHWM");
		long rss = proc_kb("/proc/self/smaps_rollup", "Rss");
		long lazy = proc_kb("/proc/self/smaps_rollup", "LazyFree");
		printf("%s wall_s=%.4f cpu_s=%.4f peak_rss_kb=%ld rss_kb=%ld lazyfree_kb=%ld\n",
		       w[i].name, t, c, hwm, rss, lazy);
		return 0;
	}
	fprintf(stderr, "bench_shim: unknown workload %s\n%s", argv[1], usage);
	return 2;
}
