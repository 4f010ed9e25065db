/*
 * init.h - start-up: page geometry, options, cookie, backend selection,
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

/*
 * Selects a backend from the candidates in order: the one named by forced
 * first (refused ones are skipped with a warning), then the others. Writes
 * the story ("native: refused (...); cookie: chosen") into story.
 * Exposed for the tests; vr_init calls it once.
 */
const vr_backend_t *vr_select_backend(const vr_backend_t *const *cands,
                                      unsigned ncands, const char *forced,
                                      char *story, size_t len);

#endif /* VR_INIT_H */
