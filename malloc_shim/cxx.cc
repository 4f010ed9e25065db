/*
 * cxx.cc - the C++ allocation operators of libvrange_preload.so: every
 * replaceable operator new and delete (plain, array, nothrow, sized,
 * aligned, and their combinations), over jemalloc's malloc and the helpers
 * of shim.c.
 *
 * Why here: a program's operator new must reach the same allocator as its
 * malloc, and a dlopen'ed plugin's too. Without these definitions libstdc++'s
 * own operators would serve, calling malloc and free: correct, but an extra
 * call on every new and no sized delete (sdallocx spares jemalloc a size
 * lookup). Defined in the preload, they bind here for the program and every
 * plugin alike (see the banner of shim.c for the lookup order). Measured on
 * 20 million new/delete pairs (8-519-byte arrays; 32-256-byte objects,
 * sized delete), instructions per pair (cachegrind, whole process): a plain
 * jemalloc preload 90.6 and 79.4, these 98.6 and 86.4 (+8.8% both). The
 * difference: operator new calls jemalloc's malloc and tests the result,
 * where jemalloc's own operators inline its fast path (they need the C++
 * runtime, see below); delete tests vr_free_work (shim.h) before it jumps
 * into jemalloc's free or its sized free without flags (the one jemalloc's
 * operators call; through sdallocx(p, n, 0) objects cost 92.4, +16%).
 *
 * Why the file does not link with libstdc++: the preload must not bring
 * libstdc++, libm and libgcc_s into a C program (about 1.3 MB of RSS). The
 * operators' fast path needs nothing from the C++ runtime; only a failed
 * allocation does (the new-handler, std::bad_alloc), and by then the process
 * has a C++ runtime, since C++ code called us: possibly only in a plugin
 * dlopen'ed with RTLD_LOCAL, out of reach of ordinary symbol binding. So the
 * file is compiled with -fno-exceptions and links nothing: on failure,
 * rt_sym() finds the runtime the caller uses and the operators call its
 * std::get_new_handler and std::__throw_bad_alloc; the exception unwinds
 * through our frames by their .eh_frame, which -fno-exceptions keeps. The
 * nothrow forms, which must turn a throwing new-handler into NULL and cannot
 * catch here, hand a failed request to the runtime's own nothrow operator,
 * which calls our throwing one inside its try block (libstdc++ >= 9, and
 * libc++, implement them so).
 *
 * Sized delete forwards the size to jemalloc (sdallocx) as jemalloc's own
 * operators do: a wrong size is undefined behaviour in C++ and is not
 * checked.
 */
#include "internal.h"

#include <cstddef>
#include <dlfcn.h>
#include <new>

#include "jemalloc_private.h"
extern "C" {
#include "log.h"
}
#include "shim.h"

namespace {

/*
 * The C++ runtime's definition of name (a mangled name), or NULL if no
 * known runtime is loaded. dlsym on the runtime's own handle searches that
 * object first: its definitions, never ours, which sit before it in the
 * global scope (RTLD_DEFAULT would find our operators and recurse). NOLOAD:
 * only a runtime the process already has, wherever it was loaded.
 */
void *rt_sym(const char *name)
{
	static const char *const runtimes[] = {"libstdc++.so.6", "libc++.so.1"};
	for (const char *rt : runtimes) {
		void *h = dlopen(rt, RTLD_LAZY | RTLD_NOLOAD);
		if (!h)
			continue;
		void *s = dlsym(h, name);
		/* The runtime stays loaded while C++ code runs: the handle
		 * only counted a reference. */
		dlclose(h);
		if (s)
			return s;
	}
	return nullptr;
}

[[noreturn]] void throw_bad_alloc()
{
	/* std::__throw_bad_alloc(): exported by libstdc++ and libc++. */
	auto thr = reinterpret_cast<void (*)()>(rt_sym("_ZSt17__throw_bad_allocv"));
	if (!thr)
		vr_die("operator new: out of memory, and no C++ runtime loaded to "
		       "throw std::bad_alloc");
	thr();
	__builtin_unreachable();
}

/* The throwing forms' slow path: the standard's new-handler loop. */
__attribute__((noinline)) void *new_slow(std::size_t n, std::size_t align)
{
	for (;;) {
		void *p = vr_shim_alloc(n, align);
		if (__builtin_expect(p != nullptr, 1))
			return p;
		/* std::get_new_handler(): the handler set through the runtime
		 * the program uses. */
		auto get = reinterpret_cast<std::new_handler (*)()>(
			rt_sym("_ZSt15get_new_handlerv"));
		std::new_handler h = get ? get() : nullptr;
		if (!h)
			throw_bad_alloc();
		h();
	}
}

inline void *new_impl(std::size_t n, std::size_t align)
{
	/* Without an alignment, jemalloc's malloc, as malloc itself is
	 * (shim.c); only a failure takes the handler loop. */
	if (align <= 1) {
		void *p = je_malloc(n);
		if (__builtin_expect(p != nullptr, 1))
			return p;
	}
	return new_slow(n, align);
}

/*
 * The nothrow forms: our own attempt first (no handler yet), then the
 * runtime's nothrow operator named rt_name, which runs the handler loop
 * through our throwing operator and catches. Without a runtime (C code
 * calling the mangled name), no handler can be set either: NULL. nt is
 * the caller's tag, passed on: std::nothrow itself lives in libstdc++.
 */
inline void *new_nothrow(std::size_t n, std::size_t align, const char *rt_name,
                         bool aligned, const std::nothrow_t &nt) noexcept
{
	if (align <= 1) {
		void *p = je_malloc(n);
		if (__builtin_expect(p != nullptr, 1))
			return p;
	}
	void *p = vr_shim_alloc(n, align);
	if (__builtin_expect(p != nullptr, 1))
		return p;
	void *f = rt_sym(rt_name);
	if (!f)
		return nullptr;
	if (aligned)
		return reinterpret_cast<void *(*)(std::size_t, std::align_val_t,
		                                  const std::nothrow_t &) noexcept>(f)(
			n, std::align_val_t(align), nt);
	return reinterpret_cast<void *(*)(std::size_t, const std::nothrow_t &) noexcept>(f)(
		n, nt);
}

inline std::size_t al(std::align_val_t a)
{
	return static_cast<std::size_t>(a);
}

} // namespace

#define X VR_EXPORT

X void *operator new(std::size_t n) { return new_impl(n, 0); }
X void *operator new[](std::size_t n) { return new_impl(n, 0); }
X void *operator new(std::size_t n, const std::nothrow_t &nt) noexcept
{
	return new_nothrow(n, 0, "_ZnwmRKSt9nothrow_t", false, nt);
}
X void *operator new[](std::size_t n, const std::nothrow_t &nt) noexcept
{
	return new_nothrow(n, 0, "_ZnamRKSt9nothrow_t", false, nt);
}
X void *operator new(std::size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
X void *operator new[](std::size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
X void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &nt) noexcept
{
	return new_nothrow(n, al(a), "_ZnwmSt11align_val_tRKSt9nothrow_t", true, nt);
}
X void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &nt) noexcept
{
	return new_nothrow(n, al(a), "_ZnamSt11align_val_tRKSt9nothrow_t", true, nt);
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
