/*
 * public.c - a program that calls every public function of vrange.h, built
 * by t_pkgconfig.sh with nothing but what pkg-config gives: with
 * PURGEABLE (pkg-config vrange-preload) also the functions declared
 * VRANGE_PRELOAD_EXPORT. Prints "ok" and exits 0 if every call answered
 * as documented.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vrange.h>

static int refill(void *page, void *buf, size_t page_size, void *arg)
{
	(void)page;
	(void)buf;
	(void)page_size;
	(void)arg;
	return 0;
}

int main(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
	                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char vec[1];
	int purged = -1;
	struct vrange_stats st;
	if (p == MAP_FAILED)
		return 2;
	p[0] = p[ps] = 1;
	int ok = vrange(p, ps, VRANGE_VOLATILE, NULL) == (ssize_t)ps &&
	         vrange(p, ps, VRANGE_NONVOLATILE, &purged) == (ssize_t)ps &&
	         vrange_mark_volatile(p, 2 * ps, 0) == 0 &&
	         vrange_mark_nonvolatile(p, ps, &purged) == 0 &&
	         vrange_mark_nonvolatile_vec(p + ps, ps, vec) >= 0 &&
	         vrange_set_refill(p, 2 * ps, refill, NULL) == 0 &&
	         vrange_get_stats(&st) == 0 && vrange_backend() != NULL;
#ifdef PURGEABLE
	void *o = vrange_malloc(ps);
	ok = ok && o && vrange_unlock(o) == 0 && vrange_lock(o) >= 0 &&
	     malloc_make_purgeable(o) == 0 && malloc_make_nonpurgeable(o) >= 0;
	vrange_free(o);
#endif
	printf("%s\n", ok ? "ok" : "failed");
	return !ok;
}
