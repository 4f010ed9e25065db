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

/*
 * jemalloc 5.3's default extent operations (src/ehooks.c): what its
 * default hooks do, without what they add for callers outside jemalloc,
 * a fetch of the calling thread's full tsd (extents.c says why that must
 * not happen inside a hook). jemalloc calls them the same way itself when
 * an arena has the default hooks. The tsdn of alloc is used on the dss
 * path only; merge's not at all. Their signatures were read from 5.3.0's
 * source and checked against Debian's object (jemalloc-private.sh makes
 * them linkable).
 */
#ifdef __cplusplus
extern "C" {
#endif
struct vr_je_tsd;
JEMALLOC_EXPORT void *je_ehooks_default_alloc_impl(struct vr_je_tsd *tsdn, void *new_addr,
                                                   size_t size, size_t alignment,
                                                   bool *zero, bool *commit,
                                                   unsigned arena_ind);
JEMALLOC_EXPORT bool je_ehooks_default_dalloc_impl(void *addr, size_t size);
JEMALLOC_EXPORT void je_ehooks_default_destroy_impl(void *addr, size_t size);
JEMALLOC_EXPORT bool je_ehooks_default_commit_impl(void *addr, size_t off, size_t len);
JEMALLOC_EXPORT bool je_ehooks_default_decommit_impl(void *addr, size_t off, size_t len);
JEMALLOC_EXPORT bool je_ehooks_default_purge_lazy_impl(void *addr, size_t off, size_t len);
JEMALLOC_EXPORT bool je_ehooks_default_purge_forced_impl(void *addr, size_t off, size_t len);
JEMALLOC_EXPORT bool je_ehooks_default_split_impl(void);
JEMALLOC_EXPORT bool je_ehooks_default_merge_impl(struct vr_je_tsd *tsdn, void *a, void *b);
/* The calling thread's tsd, as jemalloc keeps it (initial-exec TLS): the
 * very pointer jemalloc passed down to the hook that runs, whatever state
 * the tsd is in, and not a fetch, which would initialise it. */
extern __thread struct vr_je_tsd je_tsd_tls
	__attribute__((tls_model("initial-exec"), visibility("hidden")));
#ifdef __cplusplus
}
#endif

#endif /* VR_JEMALLOC_PRIVATE_H */
