/*
 * init.h - start-up: page geometry, options, backend selection (select.c),
 * fork handlers. Runs once, from the library's constructor or from the
 * first entry point called before it (another library's constructor).
 */
#ifndef VR_INIT_H
#define VR_INIT_H

#include <stdbool.h>

#include "backend.h"

/* Initialises the library if it is not yet; cheap when it is. */
void vr_init(void);

/* True once vr_init has finished (lock-free; for the interposers). */
bool vr_ready(void);

#endif /* VR_INIT_H */
