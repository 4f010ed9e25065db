# malloc_shim/local.mk - included by the top Makefile.am (non-recursive build).
# libvrange_preload.so: the malloc family over jemalloc.
