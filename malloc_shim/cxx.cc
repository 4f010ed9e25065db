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
 * plugin alike (see the banner of shim.c for the lookup order).
 *
 * The plain throwing operator new and new[] are jemalloc's own
 * (jemalloc_cpp.pic.o, linked privately by jemalloc-private.sh), which
 * inline jemalloc's fast path; a wrapper that called jemalloc's malloc and
 * tested the result cost 2% more instructions on a std::map/std::string
 * churn program (cachegrind, whole process: 1.028G against 1.008G under a
 * plain jemalloc preload; now 1.0003 of it). Their runtime needs, renamed
 * to vr_cxx_*, are below. Every other form is defined here. Delete is
 * jemalloc's free or its sized free without flags (the one jemalloc's
 * operators call), with nothing tested before (shim.h).
 *
 * Why the file does not link with libstdc++: the preload must not bring
 * libstdc++, libm and libgcc_s into a C program (about 1.3 MB of RSS). The
 * operators' fast path needs nothing from the C++ runtime; only a failed
 * allocation does (the new-handler, std::bad_alloc), and by then the process
 * has a C++ runtime, since C++ code called us: possibly only in a plugin
 * dlopen'ed with RTLD_LOCAL, out of reach of ordinary symbol binding. So the
 * file is compiled with -fno-exceptions and links nothing: on failure,
 * rt_sym() finds the runtime the caller uses, for our operators and for
 * jemalloc's; the exception unwinds through our frames by their .eh_frame,
 * which -fno-exceptions keeps. The nothrow forms, which must turn a
 * throwing new-handler into NULL and cannot catch here, hand a failed
 * request to the runtime's own nothrow operator, which calls the throwing
 * one inside its try block (libstdc++ >= 9, and libc++, implement them so).
 *
 * Sized delete forwards the size to jemalloc (sdallocx) as jemalloc's own
 * operators do: a wrong size is undefined behaviour in C++ and is not
 * checked.
 */
#include "internal.h"

#include <cstddef>
#include <dlfcn.h>
#include <new>
#include <unwind.h>

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
	/* Aligned forms only: the plain ones are jemalloc's. */
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

/* --- the C++ runtime of jemalloc's own operator new and new[] ---------
 *
 * jemalloc-private.sh renames their references to the runtime to these.
 * They run only when an allocation failed, and then in a process with a C++
 * runtime (C++ code called operator new), found by rt_sym. jemalloc's
 * new-handler loop reads the handler with std::set_new_handler (twice),
 * calls it inside try { } catch (const std::bad_alloc &), and throws
 * std::bad_alloc in the end; so besides the two functions it needs the
 * runtime's exception handling: the personality routine of its frames,
 * __cxa_begin_catch/__cxa_end_catch, _Unwind_Resume, and a type_info to
 * match std::bad_alloc against.
 */
template <typename F> F rt_fn(const char *name)
{
	void *f = rt_sym(name);
	if (!f)
		vr_die("operator new: %s needed, and no C++ runtime is loaded", name);
	return reinterpret_cast<F>(f);
}

} // namespace

extern "C" {

/* The type_info the catch clause names: std::bad_alloc's (mangled name
 * "St9bad_alloc"), as a __cxxabiv1::__class_type_info whose virtual table
 * pointer is the runtime's, set before the handler runs (set_new_handler
 * below). libstdc++ matches catch clauses by the type's name, so this one
 * catches the runtime's std::bad_alloc and whatever derives from it; a
 * runtime that compares type_info addresses (libc++) lets the handler's
 * bad_alloc go through operator new as it is, which the standard allows
 * too. */
struct vr_cxx_type_info {
	const void *vptr;
	const char *name;
};
vr_cxx_type_info vr_cxx_bad_alloc_typeinfo = {nullptr, "St9bad_alloc"};

std::new_handler vr_cxx_set_new_handler(std::new_handler h) noexcept
{
	if (!__atomic_load_n(&vr_cxx_bad_alloc_typeinfo.vptr, __ATOMIC_ACQUIRE)) {
		/* The class's virtual table; its address point is past the
		 * offset-to-top and type_info words. */
		auto *vt = static_cast<const char *>(rt_sym("_ZTVN10__cxxabiv117__class_type_infoE"));
		if (vt)
			__atomic_store_n(&vr_cxx_bad_alloc_typeinfo.vptr,
			                 static_cast<const void *>(vt + 2 * sizeof(void *)),
			                 __ATOMIC_RELEASE);
	}
	auto *set = reinterpret_cast<std::new_handler (*)(std::new_handler)>(
		rt_sym("_ZSt15set_new_handlerPFvvE"));
	return set ? set(h) : nullptr;
}

[[noreturn]] void vr_cxx_throw_bad_alloc()
{
	throw_bad_alloc();
}

[[noreturn]] void vr_cxx_throw_system_error(int e)
{
	rt_fn<void (*)(int)>("_ZSt20__throw_system_errori")(e);
	__builtin_unreachable();
}

void *vr_cxx_begin_catch(void *exc) noexcept
{
	return rt_fn<void *(*)(void *)>("__cxa_begin_catch")(exc);
}

void vr_cxx_end_catch()
{
	rt_fn<void (*)()>("__cxa_end_catch")();
}

_Unwind_Reason_Code vr_cxx_personality(int version, _Unwind_Action actions,
                                       _Unwind_Exception_Class cls,
                                       struct _Unwind_Exception *exc,
                                       struct _Unwind_Context *ctx)
{
	using personality = _Unwind_Reason_Code (*)(int, _Unwind_Action, _Unwind_Exception_Class,
	                                            struct _Unwind_Exception *,
	                                            struct _Unwind_Context *);
	return rt_fn<personality>("__gxx_personality_v0")(version, actions, cls, exc, ctx);
}

/* _Unwind_Resume(exc) resumes unwinding from the frame that called it, so
 * the forwarder must leave no frame of its own: vr_cxx_unwind_resume (the
 * assembly below) keeps exc, asks for the target and jumps to it with the
 * stack as it found it. */
void *vr_cxx_resume_target(void)
{
	return reinterpret_cast<void *>(rt_fn<void (*)(void *)>("_Unwind_Resume"));
}

} // extern "C"

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl vr_cxx_unwind_resume\n"
        ".hidden vr_cxx_unwind_resume\n"
        ".type vr_cxx_unwind_resume, @function\n"
        "vr_cxx_unwind_resume:\n"
        "\t.cfi_startproc\n"
        "\tpushq %rdi\n"
        "\t.cfi_adjust_cfa_offset 8\n"
        "\tcall vr_cxx_resume_target\n"
        "\tpopq %rdi\n"
        "\t.cfi_adjust_cfa_offset -8\n"
        "\tjmp *%rax\n"
        "\t.cfi_endproc\n"
        ".size vr_cxx_unwind_resume, .-vr_cxx_unwind_resume\n");
#else
#error "vr_cxx_unwind_resume: write the frameless forwarder for this architecture"
#endif

#define X VRANGE_EXPORT

/* operator new(std::size_t) and operator new[](std::size_t): jemalloc's
 * own (jemalloc-private.sh; the runtime they need is above). */
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
