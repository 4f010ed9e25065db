/*
 * t_shim_cxx.cc - the C++ operators of libvrange_preload.so, run under
 * LD_PRELOAD: every new/delete form, alignment, the new-handler loop and
 * bad_alloc, nothrow, a multi-threaded std::map/std::string churn, and a
 * dlopen'ed C++ plugin whose operator new must bind to the preload.
 */
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include <dlfcn.h>
#include <cerrno>
#include <unistd.h>
#include <sys/wait.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>

extern "C" {
#include "shim/shimtest.h"
}

static std::atomic<int> handler_calls;

static void handler()
{
	handler_calls++;
	std::set_new_handler(nullptr);
}

/* Opaque to the optimiser (new/delete pairs may be elided). */
static std::size_t opaque(std::size_t n)
{
	__asm__ volatile("" : "+r"(n));
	return n;
}

/* What a new-handler throws, and what operator new must let out: a
 * std::bad_alloc (or a type derived from it) ends the loop as bad_alloc;
 * anything else goes through unchanged. */
struct not_memory {
	int code;
};
static std::atomic<int> thrower_kind;

static void thrower()
{
	handler_calls++;
	switch (thrower_kind.load()) {
	case 0:
		throw std::bad_alloc();
	case 1:
		throw std::bad_array_new_length();
	default:
		throw not_memory{7};
	}
}

/* What escaped operator new (array: new[]) of SIZE_MAX/2 with thrower
 * installed: 1 std::bad_alloc itself, 3 a type derived from it, 2
 * not_memory{7}, 0 nothing, -1 anything else. */
static int escaped(int kind, bool array)
{
	handler_calls = 0;
	thrower_kind = kind;
	std::set_new_handler(thrower);
	int what = 0;
	try {
		void *q = array ? ::operator new[](opaque(SIZE_MAX / 2))
		                : ::operator new(opaque(SIZE_MAX / 2));
		::operator delete(q);
	} catch (const std::bad_alloc &e) {
		what = typeid(e) == typeid(std::bad_alloc) ? 1 : 3;
	} catch (const not_memory &e) {
		what = e.code == 7 ? 2 : -1;
	} catch (...) {
		what = -1;
	}
	std::set_new_handler(nullptr);
	return handler_calls == 1 ? what : -2;
}

/* A thread whose new-handler ends it with pthread_exit: a forced unwind
 * through operator new's frames (jemalloc's, with the runtime reached at
 * run time). Returns the thread's exit value, or -1 if operator new
 * returned. */
static void exit_handler()
{
	pthread_exit(reinterpret_cast<void *>(static_cast<uintptr_t>(42)));
}

static void *exiting_thread(void *)
{
	std::set_new_handler(exit_handler);
	void *q = ::operator new(opaque(SIZE_MAX / 2));
	::operator delete(q);
	return reinterpret_cast<void *>(static_cast<intptr_t>(-1));
}

static void test_handler_exceptions()
{
	pthread_t t;
	void *r = nullptr;
	bool ran = pthread_create(&t, nullptr, exiting_thread, nullptr) == 0 &&
	           pthread_join(t, &r) == 0;
	tap_ok(ran && reinterpret_cast<uintptr_t>(r) == 42,
	       "a new-handler that calls pthread_exit unwinds its thread through operator new");

	for (int array = 0; array < 2; array++) {
		const char *op = array ? "new[]" : "new";
		tap_is(escaped(0, array), 1, "%s: a handler's std::bad_alloc ends in bad_alloc", op);
		/* jemalloc's own operators catch what derives from
		 * bad_alloc and throw bad_alloc itself: a check that their
		 * catch clause works without the C++ runtime linked in. */
		tap_is(escaped(1, array), 1, "%s: so does a type derived from it "
		       "(std::bad_array_new_length), as under stock jemalloc", op);
		tap_is(escaped(2, array), 2,
		       "%s: any other exception of the handler goes through unchanged", op);
	}
}

static void test_operators()
{
	tap_ok(std::strstr(st_owner(dlsym(RTLD_DEFAULT, "_Znwm")), "libvrange_preload") != nullptr,
	       "operator new resolves to the preload");
	int *p = new int(5);
	int *a = new int[opaque(1000)];
	tap_ok(st_is_jemalloc(p) && st_is_jemalloc(a), "new and new[] come from jemalloc");
	delete p;
	delete[] a;

	struct alignas(256) Big {
		char c[300];
	};
	Big *b = new Big;
	Big *ba = new Big[3];
	tap_ok(((uintptr_t)b & 255) == 0 && ((uintptr_t)ba & 255) == 0,
	       "aligned new (alignas(256)) is aligned");
	delete b;
	delete[] ba;

	void *raw = ::operator new(opaque(100), std::align_val_t(4096));
	tap_ok(((uintptr_t)raw & 4095) == 0, "operator new(n, align_val_t(4096)) is aligned");
	::operator delete(raw, 100, std::align_val_t(4096));
	raw = ::operator new(opaque(100), std::align_val_t(64), std::nothrow);
	tap_ok(raw && ((uintptr_t)raw & 63) == 0, "nothrow aligned new is aligned");
	::operator delete(raw, std::align_val_t(64), std::nothrow);
	raw = ::operator new(opaque(0));
	tap_ok(raw != nullptr, "operator new(0) returns a pointer");
	::operator delete(raw, std::size_t(0));
	raw = ::operator new[](opaque(77), std::nothrow);
	::operator delete[](raw, std::nothrow);
	raw = ::operator new[](opaque(77));
	::operator delete[](raw, 77);
	raw = ::operator new[](opaque(77), std::align_val_t(128));
	::operator delete[](raw, 77, std::align_val_t(128));
	tap_ok(true, "sized and nothrow array forms");

	/* Sized delete hands the size to jemalloc's sized free, which picks
	 * the thread cache's bin by it: a size mapped to the wrong class
	 * would hand the block out again as a larger one, overlapping its
	 * neighbours. Free blocks of 0-600 bytes by size, then fill fresh
	 * blocks of every class with distinct bytes and read them back. */
	for (int round = 0; round < 200; round++)
		for (std::size_t k = 0; k <= 600; k += 13)
			::operator delete(::operator new(opaque(k)), k);
	enum { NB = 400 };
	unsigned char *blk[NB];
	std::size_t len[NB];
	for (int i = 0; i < NB; i++) {
		len[i] = 1 + (std::size_t)(i * 37) % 600;
		blk[i] = static_cast<unsigned char *>(::operator new(opaque(len[i])));
		std::memset(blk[i], i & 0xff, len[i]);
	}
	int overlap = 0;
	for (int i = 0; i < NB; i++) {
		for (std::size_t j = 0; j < len[i]; j++)
			if (blk[i][j] != (unsigned char)(i & 0xff)) {
				overlap++;
				break;
			}
		::operator delete(blk[i], len[i]);
	}
	tap_is(overlap, 0, "sized delete of 0-600 bytes returns each block to its own class");

	void *n = ::operator new(opaque(SIZE_MAX / 2), std::nothrow);
	tap_ok(n == nullptr, "nothrow new of SIZE_MAX/2 returns nullptr");
	bool threw = false;
	try {
		void *q = ::operator new(opaque(SIZE_MAX / 2));
		::operator delete(q);
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	tap_ok(threw, "new of SIZE_MAX/2 throws std::bad_alloc");
	handler_calls = 0;
	std::set_new_handler(handler);
	threw = false;
	try {
		void *q = ::operator new(opaque(SIZE_MAX / 2));
		::operator delete(q);
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	tap_ok(threw && handler_calls == 1, "the new-handler runs before bad_alloc (%d calls)",
	       handler_calls.load());
	test_handler_exceptions();
}

static void test_churn()
{
	std::atomic<long> bad{0};
	std::vector<std::thread> ts;
	for (int t = 0; t < 6; t++)
		ts.emplace_back([t, &bad] {
			std::map<std::string, std::string> m;
			unsigned seed = 1234u + (unsigned)t;
			for (int i = 0; i < 40000; i++) {
				unsigned r = rand_r(&seed);
				std::string k = "key" + std::to_string(r % 2000);
				if (r & 0x10000)
					m.erase(k);
				else
					m[k] = std::string(r % 700, (char)('a' + r % 26));
			}
			for (auto &kv : m)
				if (!kv.second.empty() &&
				    kv.second.find_first_not_of(kv.second[0]) != std::string::npos)
					bad++;
		});
	for (auto &th : ts)
		th.join();
	tap_is(bad.load(), 0, "6 threads of std::map<std::string, std::string> churn");
}

/* delete of a vrange_malloc object, sized (as C++14 compiles `delete p`)
 * or not, in a child: 1 if it died of SIGABRT. */
static int delete_dies(bool sized)
{
	auto vm = reinterpret_cast<void *(*)(std::size_t)>(dlsym(RTLD_DEFAULT, "vrange_malloc"));
	if (!vm)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		void *p = vm(64);
		if (sized)
			::operator delete(p, static_cast<std::size_t>(64));
		else
			::operator delete(p);
		_exit(0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void test_delete_purgeable()
{
	tap_ok(delete_dies(true), "sized delete of a vrange_malloc object aborts");
	tap_ok(delete_dies(false), "unsized delete of a vrange_malloc object aborts");
}

static void test_plugin()
{
	const char *path = getenv("VRANGE_TEST_PLUGIN");
	void *h = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
	if (!h) {
		tap_ok(false, "dlopen the C++ plugin (%s): %s", path ? path : "VRANGE_TEST_PLUGIN unset",
		       dlerror());
		return;
	}
	auto new_addr = (void *(*)())dlsym(h, "plugin_new_addr");
	auto palloc = (char *(*)(std::size_t))dlsym(h, "plugin_alloc");
	auto pfree = (void (*)(char *))dlsym(h, "plugin_free");
	auto pstrings = (std::size_t (*)(int))dlsym(h, "plugin_strings");
	const char *owner = st_owner(new_addr());
	tap_ok(std::strstr(owner, "libvrange_preload") != nullptr,
	       "the plugin's operator new binds to the preload (%s)", owner);
	char *p = palloc(5000);
	tap_ok(st_is_jemalloc(p), "the plugin's new[] comes from jemalloc");
	delete[] p; /* allocated there, freed here */
	char *q = new char[300];
	pfree(q); /* and the other way round */
	tap_ok(pstrings(1000) > 0, "the plugin's std::string churn runs");
	dlclose(h);
}

int main()
{
	st_require_preload();
	test_operators();
	test_delete_purgeable();
	test_churn();
	test_plugin();
	tap_done();
}
