/*
 * early.c - early.so, a library t_early preloads beside libvrange_preload.so.
 * Its constructor allocates (early.h); in one order of LD_PRELOAD it runs
 * before the shim's constructor, in the other after it. The blocks and the
 * verdict are exported for the test to check.
 */
#include "early.h"

__attribute__((visibility("default"))) void *early_so_blocks[EARLY_N];
__attribute__((visibility("default"))) int early_so_ok = -1;

__attribute__((constructor))
static void early_so_constructor(void)
{
	early_so_ok = early_allocate(early_so_blocks);
}
