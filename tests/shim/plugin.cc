/*
 * plugin.cc - a C++ plugin that t_shim_cxx dlopens (RTLD_LOCAL): its
 * operator new must bind to the preload, not to libjemalloc.so.2's own
 * operator (which sits in the global scope before the plugin's libstdc++).
 */
#include <cstddef>
#include <new>
#include <string>

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

}
