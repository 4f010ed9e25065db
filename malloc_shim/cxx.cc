/*
 * cxx.cc - the C++ allocation operators of libvrange_preload.so: every
 * replaceable operator new and delete (plain, array, nothrow, sized,
 * aligned, and their combinations), over the helpers of shim.c.
 *
 * Why here: libjemalloc.so.2 defines these operators too, and sits in the
 * global lookup scope before the libstdc++ of a dlopen'ed C++ plugin, so the
 * plugin's new would bind to jemalloc's own instead of the shim (see the
 * banner of shim.c for the lookup order). Defined in the preload they bind
 * here for the program and every plugin alike.
 *
 * Why C++ and not mangled names in C: operator new must run the new-handler
 * loop and throw std::bad_alloc. libjemalloc.so.2 already depends on
 * libstdc++, so linking this file with the C++ runtime adds no library to
 * the process.
 *
 * The nothrow forms return NULL where the throwing ones throw, after the
 * same new-handler loop, as the standard specifies. Sized delete forwards
 * the size to jemalloc (sdallocx) as jemalloc's own operators do: a wrong
 * size is undefined behaviour in C++ and is not checked.
 */
#include "internal.h"

#include <cstddef>
#include <new>

#include "shim.h"

namespace {

void *new_impl(std::size_t n, std::size_t align)
{
	/* malloc's fast path (shim.c), inlined into every operator new. */
	if (__builtin_expect(align <= 1 && n < vr_ext_fast_limit, 1)) {
		void *p = __atomic_load_n(&vr_je_malloc, __ATOMIC_ACQUIRE)(n);
		if (__builtin_expect(p != nullptr, 1))
			return p;
	}
	for (;;) {
		void *p = vr_shim_alloc(n, align);
		if (__builtin_expect(p != nullptr, 1))
			return p;
		std::new_handler h = std::get_new_handler();
		if (!h)
			throw std::bad_alloc();
		h();
	}
}

void *new_nothrow(std::size_t n, std::size_t align) noexcept
{
	try {
		return new_impl(n, align);
	} catch (...) {
		return nullptr;
	}
}

inline std::size_t al(std::align_val_t a)
{
	return static_cast<std::size_t>(a);
}

} // namespace

#define X VR_EXPORT

X void *operator new(std::size_t n) { return new_impl(n, 0); }
X void *operator new[](std::size_t n) { return new_impl(n, 0); }
X void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return new_nothrow(n, 0); }
X void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return new_nothrow(n, 0); }
X void *operator new(std::size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
X void *operator new[](std::size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
X void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
	return new_nothrow(n, al(a));
}
X void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
	return new_nothrow(n, al(a));
}

X void operator delete(void *p) noexcept { vr_shim_free(p); }
X void operator delete[](void *p) noexcept { vr_shim_free(p); }
X void operator delete(void *p, const std::nothrow_t &) noexcept { vr_shim_free(p); }
X void operator delete[](void *p, const std::nothrow_t &) noexcept { vr_shim_free(p); }
X void operator delete(void *p, std::size_t n) noexcept { vr_shim_free_sized(p, n, 0); }
X void operator delete[](void *p, std::size_t n) noexcept { vr_shim_free_sized(p, n, 0); }
X void operator delete(void *p, std::align_val_t) noexcept { vr_shim_free(p); }
X void operator delete[](void *p, std::align_val_t) noexcept { vr_shim_free(p); }
X void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept
{
	vr_shim_free(p);
}
X void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept
{
	vr_shim_free(p);
}
X void operator delete(void *p, std::size_t n, std::align_val_t a) noexcept
{
	vr_shim_free_sized(p, n, al(a));
}
X void operator delete[](void *p, std::size_t n, std::align_val_t a) noexcept
{
	vr_shim_free_sized(p, n, al(a));
}
