/*
 * t_threads - the API is thread-safe.
 *
 * Disjoint: four threads work on adjacent slices of one mapping (so that
 * their ranges merge and split in the registry), each marking, reclaiming,
 * unmarking, and now and then replacing part of its slice with a new
 * mapping while volatile; every report must match the thread's own model.
 * Each thread is pinned to a CPU and faults its pages in itself, so that the
 * kernel's per-CPU LRU batches never hide a page from MADV_PAGEOUT.
 *
 * Overlapping: four threads mark and unmark random sub-ranges of the same
 * pages, and reclaim is injected on part of them. No thread touches the
 * bytes. After a final unmark, every page that some unmark reported purged
 * reads zeros, and every other page holds its pattern: a lost page is never
 * reported intact and a surviving page never loses a byte. With the cookie
 * backend, pages never reclaimed are never reported purged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>

#include "vrange.h"
#include "../model.h"

/* ---- helpers of this test ------------------------------------------------ */

#define NT 4            /* threads */
#define SLICE 32        /* pages per thread in the disjoint part */
#define SHARED 64       /* pages of the overlapping part */
#define NOPAGEOUT 40    /* overlapping pages [0, NOPAGEOUT) are never reclaimed */

static cpu_set_t all_cpus;   /* the affinity before t_start pinned us */

/* Pins the calling thread to the k-th CPU the process may use. */
static void pin_nth_cpu(int k)
{
	int n = CPU_COUNT(&all_cpus), seen = 0;
	if (n <= 0)
		return;
	k %= n;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &all_cpus))
			continue;
		if (seen++ == k) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			sched_setaffinity(0, sizeof one, &one);
			return;
		}
	}
}

struct tres {
	unsigned long iters, fails, replaced;
	char first[256];
};

__attribute__((format(printf, 2, 3)))
static void tfail(struct tres *r, const char *fmt, ...)
{
	if (r->fails++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->first, sizeof r->first, fmt, ap);
		va_end(ap);
	}
}

/* Writes the pattern for page index idx (of the model) at pg. */
static void fill_one(unsigned char *pg, size_t idx, unsigned seed)
{
	for (size_t off = 0; off < ps; off++)
		pg[off] = tu_byte(seed, idx, off);
}

/* Quiet unmark of [first, first + n) (n <= SHARED) against the model. */
static void q_unmark_vec(struct model *m, size_t first, size_t n,
                         struct tres *r)
{
	unsigned char vec[SHARED], want[SHARED];
	ssize_t rc = vrange_mark_nonvolatile_vec(m->p + first * ps, n * ps, vec);
	size_t cnt = m_unmarked(m, first, n, want);
	if (rc != (ssize_t)cnt)
		tfail(r, "iteration %lu: unmark [%zu,%zu) returned %zd (%s), "
		      "want %zu", r->iters, first, first + n, rc,
		      rc < 0 ? strerror(errno) : "-", cnt);
	else
		for (size_t i = 0; i < n; i++)
			if (vec[i] != want[i]) {
				tfail(r, "iteration %lu: unmark [%zu,%zu): page %zu "
				      "reported %s, want %s", r->iters, first,
				      first + n, first + i,
				      vec[i] ? "purged" : "intact",
				      want[i] ? "purged" : "intact");
				break;
			}
}

/* Quiet check that the non-volatile pages of [first, first + n) hold what
 * the model says. */
static void q_contents(struct model *m, size_t first, size_t n,
                       struct tres *r)
{
	size_t i;
	if (m_bad_range(m, first, n, 0, &i) == 0)
		return;
	int want = m->seed[i] ? 1 : 0;
	int got = tu_page_state(m->p, i, m->seed[i]);
	tfail(r, "iteration %lu: page %zu reads %s, want %s",
	      r->iters, i, got == 1 ? "its pattern" : got == 0 ?
	      "zeros" : "garbage", want ? "its pattern" : "zeros");
}

/* ---- disjoint slices ----------------------------------------------------- */

struct darg {
	int id;
	struct model *m;        /* the whole region; the thread owns a slice */
	size_t first;
	double until;
	struct tres res;
};

static void *disjoint_fn(void *arg)
{
	struct darg *d = arg;
	struct model *m = d->m;
	struct tres *r = &d->res;
	const size_t lo = d->first, hi = d->first + SLICE;
	uint32_t s = 0x1234567u * (uint32_t)(d->id + 1);
	unsigned seed = 1000u * (unsigned)(d->id + 1);

	pin_nth_cpu(d->id);
	m_refill(m, lo, SLICE, ++seed);     /* fault the slice in on this CPU */
	while (tu_now() < d->until) {
		size_t a = lo + rnd(&s) % SLICE, k = 1 + rnd(&s) % (hi - a);
		m_refill(m, a, k, ++seed);
		if (k > 1 && rnd(&s) % 2) {
			size_t mid = a + 1 + rnd(&s) % (k - 1);
			if (m_mark(m, a, mid - a) != 0 ||
			    m_mark(m, mid, a + k - mid) != 0)
				tfail(r, "iteration %lu: mark failed", r->iters);
		} else if (m_mark(m, a, k) != 0) {
			tfail(r, "iteration %lu: mark failed", r->iters);
		}
		for (size_t i = a; i < a + k; i++)
			if (rnd(&s) % 3 == 0)
				m_pageout(m, i, 1);
		if (rnd(&s) % 4 == 0)
			m_pageout(m, lo, SLICE);   /* non-volatile pages stay */

		switch (rnd(&s) % 8) {
		case 0: {
			/* A new mapping over part of the range, while volatile. */
			size_t b = a + rnd(&s) % k, j = 1 + rnd(&s) % (a + k - b);
			void *q = mmap(m->p + b * ps, j * ps, PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (q != m->p + b * ps) {
				tfail(r, "iteration %lu: mmap(MAP_FIXED): %s",
				      r->iters, strerror(errno));
				return NULL;
			}
			for (size_t i = b; i < b + j; i++) {
				m->vol[i] = m->lost[i] = 0;
				m->seed[i] = 0;
			}
			r->replaced++;
			break;
		}
		case 1: {
			/* Pages moved in from elsewhere over part of the range. */
			size_t b = a + rnd(&s) % k, j = 1 + rnd(&s) % (a + k - b);
			unsigned char *src = tu_map(j);
			++seed;
			for (size_t i = 0; i < j; i++)
				fill_one(src + i * ps, b + i, seed);
			void *q = mremap(src, j * ps, j * ps,
			                 MREMAP_MAYMOVE | MREMAP_FIXED, m->p + b * ps);
			if (q != m->p + b * ps) {
				tfail(r, "iteration %lu: mremap: %s", r->iters,
				      strerror(errno));
				return NULL;
			}
			for (size_t i = b; i < b + j; i++) {
				m->vol[i] = m->lost[i] = 0;
				m->seed[i] = seed;
			}
			r->replaced++;
			break;
		}
		default:
			break;
		}

		/* Unmark in one or two pieces, sometimes the whole slice. */
		if (rnd(&s) % 4 == 0) {
			q_unmark_vec(m, lo, SLICE, r);
		} else {
			size_t mid = a + rnd(&s) % (k + 1);
			if (mid > a)
				q_unmark_vec(m, a, mid - a, r);
			if (a + k > mid)
				q_unmark_vec(m, mid, a + k - mid, r);
		}
		q_contents(m, lo, SLICE, r);
		r->iters++;
	}
	return NULL;
}

static void case_disjoint(double secs)
{
	struct model m;
	m.p = tu_map(NT * SLICE);
	m.n = NT * SLICE;
	m.vol = calloc(m.n, 1);
	m.lost = calloc(m.n, 1);
	m.seed = calloc(m.n, sizeof *m.seed);
	if (!m.vol || !m.lost || !m.seed) {
		tap_printf("Bail out! out of memory\n");
		exit(1);
	}
	struct vrange_stats s0, s1;
	memset(&s0, 0, sizeof s0);
	memset(&s1, 0, sizeof s1);
	vrange_get_stats(&s0);

	struct darg d[NT];
	pthread_t t[NT];
	double until = tu_now() + secs;
	for (int i = 0; i < NT; i++) {
		memset(&d[i], 0, sizeof d[i]);
		d[i].id = i;
		d[i].m = &m;
		d[i].first = (size_t)i * SLICE;
		d[i].until = until;
		if (pthread_create(&t[i], NULL, disjoint_fn, &d[i]) != 0) {
			tap_printf("Bail out! pthread_create failed\n");
			exit(1);
		}
	}
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NT; i++) {
		struct tres *r = &d[i].res;
		if (!tap_ok(r->fails == 0 && r->iters > 0,
		            "disjoint: thread %d: %lu rounds (%lu with part of the "
		            "range replaced while volatile), every report exact",
		            i, r->iters, r->replaced))
			tap_diag("  %lu failures, first: %s", r->fails, r->first);
	}
	vrange_get_stats(&s1);
	tap_ok(s1.volatile_bytes == s0.volatile_bytes &&
	       s1.volatile_ranges == s0.volatile_ranges,
	       "disjoint: nothing left volatile at the end (stats)");
	if (s1.volatile_bytes != s0.volatile_bytes ||
	    s1.volatile_ranges != s0.volatile_ranges)
		tap_diag("  volatile_bytes %llu -> %llu, ranges %llu -> %llu",
		         (unsigned long long)s0.volatile_bytes,
		         (unsigned long long)s1.volatile_bytes,
		         (unsigned long long)s0.volatile_ranges,
		         (unsigned long long)s1.volatile_ranges);
	ck_contents(&m, "disjoint: the whole region at the end");
	m_free(&m);
}

/* ---- overlapping ranges -------------------------------------------------- */

static unsigned char reported[SHARED];  /* some unmark reported the page */
static unsigned char early_bad[SHARED]; /* cookie: reported, never reclaimed */

struct oarg {
	int id;
	unsigned char *p;
	double until;
	unsigned long marks, unmarks, pageouts, errors;
};

static void *overlap_fn(void *arg)
{
	struct oarg *o = arg;
	uint32_t s = 0xabcdefu * (uint32_t)(o->id + 1);
	unsigned char vec[SHARED];
	pin_nth_cpu(o->id);
	while (tu_now() < o->until) {
		size_t a = rnd(&s) % SHARED, k = 1 + rnd(&s) % (SHARED - a);
		switch (rnd(&s) % 5) {
		case 0:
		case 1:
			if (vrange_mark_volatile(o->p + a * ps, k * ps, 0) != 0)
				o->errors++;
			o->marks++;
			break;
		case 2:
		case 3: {
			ssize_t rc = vrange_mark_nonvolatile_vec(o->p + a * ps,
			                                         k * ps, vec);
			if (rc < 0) {
				o->errors++;
				break;
			}
			for (size_t i = 0; i < k; i++)
				if (vec[i]) {
					__atomic_store_n(&reported[a + i], 1,
					                 __ATOMIC_RELAXED);
					if (!eager && a + i < NOPAGEOUT)
						__atomic_store_n(&early_bad[a + i], 1,
						                 __ATOMIC_RELAXED);
				}
			o->unmarks++;
			break;
		}
		default: {
			size_t b = NOPAGEOUT + rnd(&s) % (SHARED - NOPAGEOUT);
			size_t j = 1 + rnd(&s) % (SHARED - b);
			tu_pageout(o->p, b, j);
			o->pageouts++;
			break;
		}
		}
	}
	return NULL;
}

static void case_overlap(double secs)
{
	const unsigned seed = 777;
	unsigned char *p = tu_map(SHARED);
	fill_pages(p, 0, SHARED, seed);
	struct vrange_stats s0, s1;
	memset(&s0, 0, sizeof s0);
	memset(&s1, 0, sizeof s1);
	vrange_get_stats(&s0);

	struct oarg o[NT];
	pthread_t t[NT];
	double until = tu_now() + secs;
	for (int i = 0; i < NT; i++) {
		memset(&o[i], 0, sizeof o[i]);
		o[i].id = i;
		o[i].p = p;
		o[i].until = until;
		if (pthread_create(&t[i], NULL, overlap_fn, &o[i]) != 0) {
			tap_printf("Bail out! pthread_create failed\n");
			exit(1);
		}
	}
	unsigned long marks = 0, unmarks = 0, pageouts = 0, errors = 0;
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		marks += o[i].marks;
		unmarks += o[i].unmarks;
		pageouts += o[i].pageouts;
		errors += o[i].errors;
	}
	tap_ok(errors == 0 && marks > 0 && unmarks > 0,
	       "overlap: %lu marks, %lu unmarks, %lu reclaims by %d threads, "
	       "no call failed", marks, unmarks, pageouts, NT);
	if (errors)
		tap_diag("  %lu calls failed", errors);

	/* The pages still volatile now: the region is the only volatile memory
	 * (the disjoint case checked it left nothing volatile). */
	struct vrange_stats sv;
	memset(&sv, 0, sizeof sv);
	vrange_get_stats(&sv);
	long long vol_now = (long long)(sv.volatile_bytes - s0.volatile_bytes) /
	                    (long long)ps;
	unsigned char vec[SHARED];
	ssize_t rc = vrange_mark_nonvolatile_vec(p, SHARED * ps, vec);
	tap_ok(rc >= 0, "overlap: final unmark succeeds");
	size_t nrep = 0, bad = 0, cookie_bad = 0, final_rep = 0;
	for (size_t i = 0; i < SHARED; i++) {
		if (rc >= 0 && vec[i]) {
			final_rep++;
			reported[i] = 1;
			if (!eager && i < NOPAGEOUT)
				early_bad[i] = 1;
		}
		nrep += reported[i];
		cookie_bad += early_bad[i];
		int st = tu_page_state(p, i, seed);
		if (st != (reported[i] ? 0 : 1)) {
			if (bad < 8)
				tap_diag("  page %zu: %s, reads %s", i,
				         reported[i] ? "reported purged" :
				         "never reported purged", st == 1 ?
				         "its pattern" : st == 0 ? "zeros" : "garbage");
			bad++;
		}
	}
	tap_ok(bad == 0, "overlap: every page reads zeros if some unmark "
	       "reported it purged (%zu pages), else its pattern", nrep);
	if (eager) {
		/* Every page volatile at the final unmark is reported purged by
		 * it, and no other: the count, the vector and the statistics
		 * agree (the pages then read zeros: checked just above). */
		if (!tap_ok(rc == vol_now && (long long)final_rep == vol_now,
		            "overlap: eager: the final unmark reports purged exactly "
		            "the %lld pages the statistics counted volatile", vol_now))
			tap_diag("  returned %zd, %zu entries set", rc, final_rep);
	} else
		tap_ok(cookie_bad == 0, "overlap: pages never reclaimed are never "
		       "reported purged (%zu were)", cookie_bad);
	vrange_get_stats(&s1);
	tap_ok(s1.volatile_bytes == s0.volatile_bytes &&
	       s1.volatile_ranges == s0.volatile_ranges,
	       "overlap: nothing left volatile at the end (stats)");
	munmap(p, SHARED * ps);
}

int main(void)
{
	if (sched_getaffinity(0, sizeof all_cpus, &all_cpus) != 0) {
		CPU_ZERO(&all_cpus);
		CPU_SET(0, &all_cpus);
	}
	t_start("t_threads");
	tu_require_pageout();
	case_disjoint(1.5);
	case_overlap(1.5);
	tap_done();
}
