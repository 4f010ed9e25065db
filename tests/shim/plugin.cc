/*
 * plugin.cc - a C++ plugin that t_shim_cxx dlopens (RTLD_LOCAL): its
 * operator new must bind to the preload, not to libjemalloc.so.2's own
 * operator (which sits in the global scope before the plugin's libstdc++).
 * t_shim (a C program) dlopens it too: the preload's operators must then
 * find this plugin's libstdc++ for the new-handler and std::bad_alloc.
 */
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

namespace {

/* Too large for any allocator; volatile so that the compiler calls new. */
volatile std::size_t huge = SIZE_MAX / 2;
int handler_calls;

void handler_once()
{
	handler_calls++;
	std::set_new_handler(nullptr);
}

void handler_throws()
{
	handler_calls++;
	throw std::bad_alloc();
}

struct plugin_error {
	int code;
};

void handler_throws_other()
{
	handler_calls++;
	throw plugin_error{42};
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) void *plugin_new_addr(void)
{
	/* The address the plugin's own reference to operator new resolved to. */
	void *(*fn)(std::size_t) = &::operator new;
	return reinterpret_cast<void *>(fn);
}

__attribute__((visibility("default"))) char *plugin_alloc(std::size_t n)
{
	return new char[n];
}

__attribute__((visibility("default"))) void plugin_free(char *p)
{
	delete[] p;
}

__attribute__((visibility("default"))) std::size_t plugin_strings(int n)
{
	std::size_t total = 0;
	for (int i = 0; i < n; i++) {
		std::string *s = new std::string(100 + i % 300, 'x');
		total += s->size();
		delete s;
	}
	return total;
}

/* 1 if new[] of a huge size calls the new-handler once, then throws. */
__attribute__((visibility("default"))) int plugin_throws_bad_alloc(void)
{
	handler_calls = 0;
	std::set_new_handler(handler_once);
	bool threw = false;
	try {
		char *p = new char[huge];
		delete[] p;
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	std::set_new_handler(nullptr);
	return threw && handler_calls == 1;
}

/* 1 if new of a huge size, whose new-handler throws a type of the
 * plugin's own, lets that exception through: the operator's catch of
 * std::bad_alloc (jemalloc's) is matched against a type the runtime first
 * met after start-up, when the C program dlopen'ed this plugin. */
__attribute__((visibility("default"))) int plugin_handler_exception(void)
{
	handler_calls = 0;
	std::set_new_handler(handler_throws_other);
	int code = 0;
	try {
		char *p = static_cast<char *>(::operator new(huge));
		::operator delete(p);
	} catch (const plugin_error &e) {
		code = e.code;
	} catch (...) {
		code = -1;
	}
	std::set_new_handler(nullptr);
	return code == 42 && handler_calls == 1;
}

/* 1 if nothrow new of a huge size, whose new-handler throws, is NULL. */
__attribute__((visibility("default"))) int plugin_nothrow_null(void)
{
	handler_calls = 0;
	std::set_new_handler(handler_throws);
	char *p = new (std::nothrow) char[huge];
	std::set_new_handler(nullptr);
	return p == nullptr && handler_calls == 1;
}

}
