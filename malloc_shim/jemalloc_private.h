/*
 * jemalloc_private.h - the entry points of the jemalloc that is linked into
 * libvrange_preload.so (jemalloc-private.sh, malloc_shim/local.mk):
 * je_malloc, je_free, je_mallocx, je_mallctl and the rest, plus jemalloc's
 * MALLOCX_* flags and extent_hooks_t.
 *
 * jemalloc-private.sh renames jemalloc's public functions to exactly the
 * names that its own header declares under JEMALLOC_NO_RENAME, so the
 * header serves unchanged. JEMALLOC_EXPORT hidden: the compiler calls them
 * directly (no PLT, nobody can interpose them), and the linker keeps them
 * out of the preload's dynamic symbol table whatever the definitions say.
 */
#ifndef VR_JEMALLOC_PRIVATE_H
#define VR_JEMALLOC_PRIVATE_H

#define JEMALLOC_NO_RENAME
#define JEMALLOC_EXPORT __attribute__((visibility("hidden")))
#include <jemalloc/jemalloc.h>

/* jemalloc's internal sdallocx(ptr, size, 0), with the fast path its own
 * sized operator delete uses (jemalloc-private.sh keeps it linkable). */
#ifdef __cplusplus
extern "C"
#endif
JEMALLOC_EXPORT void je_je_sdallocx_noflags(void *ptr, size_t size);

#endif /* VR_JEMALLOC_PRIVATE_H */
