/*
 * bench_opt - what optimistic volatile ranges cost: a refill fault (touching
 * a purged page of an optimistic range, whose callback regenerates it), and
 * marking + unmarking an optimistic range of 1, 64 and 4096 pages against
 * the same cycle on an explicit range, measured in the same run.
 *
 * Figures only: it never fails on a ratio. Usage: bench_opt [--quick]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vrange.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static size_t ps;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp);
	return v[n / 2];
}

static int refill(void *page, void *buf, size_t page_size, void *arg)
{
	(void)page;
	(void)arg;
	memset(buf, 0x5a, page_size);
	return 0;
}

/*
 * Median time of the first touch of one page marked optimistic, one page a
 * sample, cycling over npages of p. With reclaim, the page is reclaimed
 * before the touch, which then takes the refill fault (refill installed
 * for the run); without, the page survived and the touch is a plain read.
 * The page is marked again each time because without userfaultfd a touched
 * page stays non-volatile.
 */
static double bench_first_touch(unsigned char *p, size_t npages, size_t reps, bool reclaim)
{
	double *t = calloc(reps, sizeof *t);
	if (reclaim)
		vrange_set_refill(p, npages * ps, refill, NULL);
	for (size_t r = 0; r < reps; r++) {
		unsigned char *q = p + (r % npages) * ps;
		vrange_mark_volatile(q, ps, VRANGE_OPTIMISTIC);
		if (reclaim)
			madvise(q, ps, MADV_PAGEOUT);
		double t0 = now_ns();
		volatile unsigned char c = *q;
		(void)c;
		t[r] = now_ns() - t0;
		vrange_mark_nonvolatile(q, ps, NULL);
	}
	if (reclaim)
		vrange_set_refill(p, npages * ps, NULL, NULL);
	double m = median(t, reps);
	free(t);
	return m;
}

/* mark + unmark cycles, alternating optimistic and explicit. */
static void bench_cycle(unsigned char *p, size_t n, size_t reps, double *opt, double *expl)
{
	double *to = calloc(reps, sizeof *to), *te = calloc(reps, sizeof *te);
	for (size_t r = 0; r < reps; r++) {
		for (size_t i = 0; i < n; i++)
			p[i * ps] = (unsigned char)r;    /* same state for both */
		double t0 = now_ns();
		vrange_mark_volatile(p, n * ps, VRANGE_OPTIMISTIC);
		vrange_mark_nonvolatile(p, n * ps, NULL);
		to[r] = now_ns() - t0;
		for (size_t i = 0; i < n; i++)
			p[i * ps] = (unsigned char)r;
		t0 = now_ns();
		vrange_mark_volatile(p, n * ps, 0);
		vrange_mark_nonvolatile(p, n * ps, NULL);
		te[r] = now_ns() - t0;
	}
	*opt = median(to, reps);
	*expl = median(te, reps);
	free(to);
	free(te);
}

int main(int argc, char **argv)
{
	int quick = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else {
			int help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
			fprintf(help ? stdout : stderr,
			        "%susage: bench_opt [--quick] [--help]\n"
			        "  refill fault cost and optimistic mark+unmark cost against explicit\n"
			        "  (medians; --quick: fewer repetitions)\n",
			        help ? "" : "bench_opt: unknown option\n");
			return help ? 0 : 2;
		}
	}
	ps = (size_t)sysconf(_SC_PAGESIZE);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	sched_setaffinity(0, sizeof set, &set);   /* reclaim is per-CPU batched */
	const size_t N = 4096;
	unsigned char *p = mmap(NULL, N * ps, PROT_READ | PROT_WRITE,
	                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	madvise(p, N * ps, MADV_NOHUGEPAGE);
	memset(p, 1, N * ps);
	printf("libvrange bench_opt: backend %s, page %zu bytes; medians\n", vrange_backend(), ps);

	size_t reps = quick ? 2000 : 20000;
	double f = bench_first_touch(p, 256, reps, true);
	printf("\nrefill fault (reclaimed page touched, callback fills it): %.2f us per page\n", f / 1000);
	if (strcmp(vrange_backend(), "eager") == 0) {
		printf("first touch of a surviving page: none survive with eager\n");
	} else {
		double t = bench_first_touch(p, 256, reps, false);
		printf("first touch of a surviving page:                          %.2f us per page%s\n",
		       t / 1000, strcmp(vrange_backend(), "uffd") == 0 ? " (no fault)"
		       : " (PROT_NONE fault, restored)");
	}

	printf("\nmark+unmark cycle       optimistic      explicit     ratio\n");
	size_t sizes[] = { 1, 64, 4096 };
	for (size_t k = 0; k < 3; k++) {
		size_t n = sizes[k];
		size_t r = quick ? (n == 4096 ? 50 : 1000) : (n == 4096 ? 300 : 10000);
		double o, e;
		bench_cycle(p, n, r, &o, &e);
		printf("%5zu pages      %9.0f ns %6.1f ns/pg  %9.0f ns %6.1f ns/pg  %.2fx\n", n, o,
		       o / (double)n, e, e / (double)n, o / e);
	}
	struct vrange_stats st;
	vrange_get_stats(&st);
	printf("\nrefilled %llu pages, %llu faults taken\n",
	       (unsigned long long)st.pages_refilled, (unsigned long long)st.sigbus_taken);
	return 0;
}
