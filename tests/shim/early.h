/*
 * early.h - what t_early allocates before the shim's constructor has run:
 * from a preinit_array function of the program, from a constructor of the
 * program, and from a constructor of a library preloaded beside the shim
 * (early.c). The same set each time: malloc, calloc, realloc, posix_memalign,
 * strdup, and a thread that allocates and returns a block.
 */
#ifndef VRANGE_TESTS_EARLY_H
#define VRANGE_TESTS_EARLY_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EARLY_N 5

static void *early_thread(void *arg)
{
	(void)arg;
	char *scratch = malloc(200);
	if (scratch)
		memset(scratch, 1, 200);
	free(scratch);
	return strdup("early thread");
}

/* Fills blocks[0..EARLY_N-1], all live; 1 if every call succeeded and
 * every block holds what was written (or, for calloc, zeros). */
__attribute__((unused))
static int early_allocate(void **blocks)
{
	int ok = 1;
	char *a = malloc(1000);
	if (a)
		memset(a, 'a', 1000);
	unsigned char *b = calloc(100, 10);
	for (size_t i = 0; b && i < 1000; i++)
		ok &= b[i] == 0;
	char *a2 = a ? realloc(a, 100000) : NULL;
	if (a2)
		ok &= a2[0] == 'a' && a2[999] == 'a';
	else
		free(a);
	void *c = NULL;
	ok &= posix_memalign(&c, 4096, 5000) == 0 && ((uintptr_t)c & 4095) == 0;
	pthread_t t;
	void *r = NULL;
	ok &= pthread_create(&t, NULL, early_thread, NULL) == 0 &&
	      pthread_join(t, &r) == 0 && r && strcmp(r, "early thread") == 0;
	blocks[0] = a2;
	blocks[1] = b;
	blocks[2] = c;
	blocks[3] = r;
	blocks[4] = strdup("early");
	for (int i = 0; i < EARLY_N; i++)
		ok &= blocks[i] != NULL;
	return ok;
}

#endif /* VRANGE_TESTS_EARLY_H */
