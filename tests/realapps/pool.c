/*
 * tests/realapps/pool.c - a thread pool with a work queue, of the kind
 * servers and compressors have, run by tests/realapps/run without and with
 * the preload: blocks cross threads in both directions and threads come and
 * go while it runs.
 *
 * Usage: pool [ITEMS]   (default 800)
 *
 * The main thread allocates ITEMS blocks of mixed sizes (small 8 B-32 KiB,
 * large 1-5 MiB, huge 8-16 MiB), fills each with a pattern drawn from its
 * seed and queues it to a pool of POOL worker threads. A worker checks the
 * pattern and frees the block, or for one block in four reallocs it first
 * and checks what realloc kept. So the first allocator call of a worker is
 * a free (or realloc) of a block that another thread allocated, as in
 * `xz -T2 -d`: the path of a known deadlock of the preload (the extent
 * merge hook of such a free fetched jemalloc's thread state, which
 * allocated, under the ecache lock the free held). For one block in two
 * the worker then allocates a reply block (small or large), fills it and
 * hands it back to the main thread, which checks and frees it.
 *
 * Every RETIRE_EVERY items the main thread also queues a "retire" item:
 * the worker that takes it exits and says so through the reply queue; the
 * main thread joins it and starts a fresh worker in its place. At the end
 * every worker gets a "stop" item.
 *
 * Output: one line, "pool: N items (N small, N large, N huge), N reallocs,
 * N replies, N threads, N bytes, checksum X". Every number depends on ITEMS
 * alone, not on the allocator or the scheduling: the checksum is a sum of
 * one hash per block, of its contents as the checking thread read them.
 * Exit 0; 1 at the first block whose contents differ (with a message on
 * stderr); 2 if the allocator or pthreads fail.
 *
 * It links only libc and pthreads: the allocator is whatever the dynamic
 * linker binds malloc to. Built with -fno-builtin, so that gcc keeps every
 * malloc, realloc and free it reads here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define POOL 4          /* worker threads alive at a time */
#define QCAP 8          /* blocks queued to the workers at most */
#define RCAP 16         /* replies queued to the main thread at most */
#define RETIRE_EVERY 25 /* items between two retirements */
#define MiB ((size_t)1 << 20)

enum kind { BLOCK, RETIRE, STOP };

struct item {
	enum kind kind;
	unsigned char *p;
	size_t n;
	uint64_t seed;
	int slot; /* the worker that sent a reply or retired */
};

/* One lock for both rings: the main thread waits for room in the work ring
 * and for replies on the same condition, so that it never sleeps while a
 * worker waits for it to drain the replies. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;  /* work queued */
static pthread_cond_t main_cv = PTHREAD_COND_INITIALIZER;  /* room or reply */
static pthread_cond_t reply_cv = PTHREAD_COND_INITIALIZER; /* reply room */
static struct item work[QCAP], reply[RCAP];
static size_t work_head, work_len, reply_head, reply_len;

static pthread_t workers[POOL];
static uint64_t checksum;    /* sum of the hashes of every block checked */
static size_t n_reallocs;    /* blocks a worker reallocated */
static int stopped;          /* workers that took a stop; all three under mu */

static void die(const char *what)
{
	fprintf(stderr, "pool: %s\n", what);
	exit(2);
}

static uint64_t word_at(uint64_t seed, size_t i)
{
	/* Not a constant stride: a block shifted by a word would not match. */
	uint64_t v = (seed + i) * 0x9E3779B97F4A7C15ULL;
	return v ^ (v >> 29);
}

/* Blocks come from malloc, aligned for a uint64_t, and have no declared
 * type: they may be written and read as words. (Not memcpy: -fno-builtin
 * would make each one a call.) */
static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	size_t w = n / 8;
	for (size_t i = 0; i < w; i++)
		((uint64_t *)(void *)p)[i] = word_at(seed, i);
	uint64_t last = word_at(seed, w);
	for (size_t j = 0; j < n % 8; j++)
		p[w * 8 + j] = (unsigned char)(last >> (8 * j));
}

/* Checks the first n bytes of a block filled with fill(p, _, seed) and
 * returns their hash (FNV-1a over words); exits at the first difference. */
static uint64_t check(const unsigned char *p, size_t n, uint64_t seed, const char *who)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t w = n / 8;
	for (size_t i = 0; i < w; i++) {
		uint64_t v = ((const uint64_t *)(const void *)p)[i];
		if (v != word_at(seed, i)) {
			fprintf(stderr, "pool: %s: block %p of %zu bytes (seed %llu) differs at byte %zu: "
			        "%016llx, not %016llx\n", who, (const void *)p, n,
			        (unsigned long long)seed, i * 8, (unsigned long long)v,
			        (unsigned long long)word_at(seed, i));
			exit(1);
		}
		h = (h ^ v) * 0x100000001B3ULL;
	}
	uint64_t last = word_at(seed, w);
	for (size_t j = 0; j < n % 8; j++) {
		if (p[w * 8 + j] != (unsigned char)(last >> (8 * j))) {
			fprintf(stderr, "pool: %s: block %p of %zu bytes (seed %llu) differs at byte %zu\n",
			        who, (const void *)p, n, (unsigned long long)seed, w * 8 + j);
			exit(1);
		}
		h = (h ^ p[w * 8 + j]) * 0x100000001B3ULL;
	}
	return h + n;
}

static uint64_t mix(uint64_t x)
{
	/* splitmix64's finaliser: sizes and decisions from an item's seed. */
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static void *worker(void *arg)
{
	int slot = (int)(intptr_t)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (work_len == 0)
			pthread_cond_wait(&work_cv, &mu);
		struct item it = work[work_head];
		work_head = (work_head + 1) % QCAP;
		work_len--;
		pthread_cond_signal(&main_cv);
		pthread_mutex_unlock(&mu);

		if (it.kind == STOP) {
			pthread_mutex_lock(&mu);
			stopped++;
			pthread_cond_signal(&main_cv);
			pthread_mutex_unlock(&mu);
			return NULL;
		}
		if (it.kind == RETIRE) {
			/* Say so, then exit; the main thread joins us. */
			pthread_mutex_lock(&mu);
			while (reply_len == RCAP)
				pthread_cond_wait(&reply_cv, &mu);
			reply[(reply_head + reply_len++) % RCAP] =
				(struct item){ .kind = RETIRE, .slot = slot };
			pthread_cond_signal(&main_cv);
			pthread_mutex_unlock(&mu);
			return NULL;
		}

		uint64_t r = mix(it.seed);
		uint64_t h = check(it.p, it.n, it.seed, "worker");
		int reallocd = (r & 3) == 0;
		if (reallocd) {
			/* Grow or shrink a block this thread did not allocate. */
			size_t m = (r >> 8) & 1 ? it.n + it.n / 2 + 1 : it.n / 3 + 1;
			unsigned char *q = realloc(it.p, m);
			if (!q)
				die("realloc failed");
			check(q, m < it.n ? m : it.n, it.seed, "worker after realloc");
			it.p = q;
		}
		free(it.p);

		int replies = (r >> 2) & 1;
		struct item back = { .kind = BLOCK, .slot = slot };
		if (replies) {
			back.seed = ~it.seed;
			back.n = (r >> 16) & 1 ? MiB + (size_t)((r >> 20) % (4 * MiB))
			                       : 1 + (size_t)((r >> 20) % 16384);
			back.p = malloc(back.n);
			if (!back.p)
				die("malloc failed in a worker");
			fill(back.p, back.n, back.seed);
		}

		pthread_mutex_lock(&mu);
		checksum += h;
		n_reallocs += (size_t)reallocd;
		if (replies) {
			while (reply_len == RCAP)
				pthread_cond_wait(&reply_cv, &mu);
			reply[(reply_head + reply_len++) % RCAP] = back;
			pthread_cond_signal(&main_cv);
		}
		pthread_mutex_unlock(&mu);
	}
}

static void start(int slot)
{
	int e = pthread_create(&workers[slot], NULL, worker, (void *)(intptr_t)slot);
	if (e) {
		errno = e;
		perror("pool: pthread_create");
		exit(2);
	}
}

/* Takes every reply queued: checks and frees blocks, joins and replaces
 * retired workers. Called and returns with mu held; drops it meanwhile. */
static void drain_locked(size_t *n_replies, size_t *n_threads, int *retired, int restart)
{
	while (reply_len > 0) {
		struct item it = reply[reply_head];
		reply_head = (reply_head + 1) % RCAP;
		reply_len--;
		pthread_cond_signal(&reply_cv);
		pthread_mutex_unlock(&mu);
		uint64_t h = 0;
		if (it.kind == RETIRE) {
			pthread_join(workers[it.slot], NULL);
			(*retired)++;
			if (restart) {
				start(it.slot);
				(*n_threads)++;
			}
		} else {
			h = check(it.p, it.n, it.seed, "main thread");
			free(it.p);
			(*n_replies)++;
		}
		pthread_mutex_lock(&mu);
		checksum += h;
	}
}

static void queue_locked(struct item it, size_t *n_replies, size_t *n_threads, int *retired)
{
	for (;;) {
		drain_locked(n_replies, n_threads, retired, 1);
		if (work_len < QCAP)
			break;
		pthread_cond_wait(&main_cv, &mu);
	}
	work[(work_head + work_len++) % QCAP] = it;
	pthread_cond_signal(&work_cv);
}

int main(int argc, char **argv)
{
	size_t items = argc > 1 ? strtoul(argv[1], NULL, 10) : 800;
	size_t n_small = 0, n_large = 0, n_huge = 0, n_replies = 0, n_threads = 0;
	unsigned long long bytes = 0;
	int retired = 0, retires = 0;

	for (int i = 0; i < POOL; i++)
		start(i);
	n_threads = POOL;

	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < items; i++) {
		if (i % RETIRE_EVERY == RETIRE_EVERY - 1) {
			queue_locked((struct item){ .kind = RETIRE }, &n_replies, &n_threads, &retired);
			retires++;
		}
		uint64_t seed = mix(i + 1);
		unsigned pick = (unsigned)(seed % 20);
		size_t n;
		if (pick < 10) { /* half small */
			n = 8 + (size_t)((seed >> 8) % (32768 - 8));
			n_small++;
		} else if (pick < 17) {
			n = MiB + (size_t)((seed >> 8) % (4 * MiB));
			n_large++;
		} else {
			n = 8 * MiB + (size_t)((seed >> 8) % (8 * MiB));
			n_huge++;
		}
		/* Allocated and filled without the lock: workers run meanwhile. */
		pthread_mutex_unlock(&mu);
		unsigned char *p = malloc(n);
		if (!p)
			die("malloc failed in the main thread");
		fill(p, n, seed);
		bytes += n;
		pthread_mutex_lock(&mu);
		queue_locked((struct item){ .kind = BLOCK, .p = p, .n = n, .seed = seed },
		             &n_replies, &n_threads, &retired);
	}
	/* Every retirement replaced before the stops go out, so that each of
	 * the POOL workers then alive takes exactly one stop. */
	for (;;) {
		drain_locked(&n_replies, &n_threads, &retired, 1);
		if (retired == retires)
			break;
		pthread_cond_wait(&main_cv, &mu);
	}
	for (int i = 0; i < POOL; i++)
		queue_locked((struct item){ .kind = STOP }, &n_replies, &n_threads, &retired);
	/* A worker may still wait for room for its reply: drain until all
	 * have stopped. */
	for (;;) {
		drain_locked(&n_replies, &n_threads, &retired, 0);
		if (stopped == POOL && reply_len == 0)
			break;
		pthread_cond_wait(&main_cv, &mu);
	}
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < POOL; i++)
		pthread_join(workers[i], NULL);

	printf("pool: %zu items (%zu small, %zu large, %zu huge), %zu reallocs, %zu replies, "
	       "%zu threads, %llu bytes, checksum %016llx\n", items, n_small, n_large, n_huge,
	       n_reallocs, n_replies, n_threads, bytes, (unsigned long long)checksum);
	return fflush(stdout) == 0 ? 0 : 2;
}
