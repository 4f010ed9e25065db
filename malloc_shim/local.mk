# malloc_shim/local.mk - included by the top Makefile.am (non-recursive build).
# libvrange_preload.so: the malloc family over jemalloc, extent hooks that
# make freed memory reclaimable (MADV_FREE), the purgeable heap, the v10
# syscall(314) compatibility mode, and its tests (tests/shim/).

# --- the preload library ----------------------------------------------------
# Hidden visibility: only the malloc family, the C++ operators and the core's
# exports (vrange_*, the mmap family) leave the library. -fno-builtin: at -O2
# gcc turns the shim's own allocation patterns back into calls to malloc or
# calloc, which would recurse into the shim. The C++ file gets the warning
# set without the C-only options.
SHIM_CXX_WARN = $(filter-out -Wstrict-prototypes -Wmissing-prototypes,$(WARN_CFLAGS))

lib_LTLIBRARIES += malloc_shim/libvrange_preload.la
malloc_shim_libvrange_preload_la_SOURCES = \
	malloc_shim/shim.h \
	malloc_shim/shim.c \
	malloc_shim/extents.c \
	malloc_shim/purgeable.c \
	malloc_shim/syscall.c \
	malloc_shim/mallctl.c \
	malloc_shim/zero.c \
	malloc_shim/cxx.cc
malloc_shim_libvrange_preload_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -fno-builtin \
	$(JEMALLOC_CFLAGS) $(URCU_BP_CFLAGS)
malloc_shim_libvrange_preload_la_CXXFLAGS = $(SHIM_CXX_WARN) $(SAN_CFLAGS) \
	-fvisibility=hidden -fno-builtin
malloc_shim_libvrange_preload_la_LIBADD = libvrange/libvrange_core.la $(JEMALLOC_LIBS) -lpthread $(SAN_LIBS)
# -avoid-version: LD_PRELOAD names the file, so it is libvrange_preload.so.
malloc_shim_libvrange_preload_la_LDFLAGS = $(AM_LDFLAGS) -avoid-version -Wl,-z,defs

# --- tests (tests/shim/): run under LD_PRELOAD ------------------------------
# The programs link neither jemalloc nor libvrange: like any program, they
# get the shim from LD_PRELOAD, set by a wrapper t_foo-preload that
# tests/shim/preload-stub.sh writes (it points at the .so libtool left in
# malloc_shim/.libs/). The plugin is a libtool module that t_shim_cxx
# dlopens.
SHIM_TESTS = tests/shim/t_shim tests/shim/t_shim_cxx tests/shim/t_purgeable \
	tests/shim/t_compat
SHIM_STUBS = $(SHIM_TESTS:=-preload)
# The same purgeable-heap test linked with -lvrange_preload, run without
# LD_PRELOAD (its stub gets an empty preload).
SHIM_LINKED_TESTS = tests/shim/t_purgeable_linked
SHIM_LINKED_STUBS = $(SHIM_LINKED_TESTS:=-linked)
SHIM_SO = $(abs_top_builddir)/malloc_shim/.libs/libvrange_preload.so
SHIM_PLUGIN = $(abs_top_builddir)/tests/shim/.libs/plugin.so
if SANITIZERS
SHIM_SKIP = sanitizer build: the sanitizer runtime owns malloc and must be loaded first
else
SHIM_SKIP =
endif

check_PROGRAMS += $(SHIM_TESTS) $(SHIM_LINKED_TESTS)
check_LTLIBRARIES = tests/shim/plugin.la
check_SCRIPTS += $(SHIM_STUBS) $(SHIM_LINKED_STUBS)
TESTS += $(SHIM_STUBS) $(SHIM_LINKED_STUBS)
CLEANFILES += $(SHIM_STUBS) $(SHIM_LINKED_STUBS)
EXTRA_DIST += tests/shim/preload-stub.sh

tests_shim_t_shim_SOURCES = tests/shim/t_shim.c tests/shim/shimtest.h tests/tap.h tests/testutil.h
tests_shim_t_shim_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_shim_t_shim_LDADD = -ldl -lpthread
tests_shim_t_shim_cxx_SOURCES = tests/shim/t_shim_cxx.cc tests/shim/shimtest.h tests/tap.h
tests_shim_t_shim_cxx_CXXFLAGS = $(SHIM_CXX_WARN) $(SAN_CFLAGS) -fno-builtin
tests_shim_t_shim_cxx_LDADD = -ldl -lpthread
tests_shim_t_purgeable_SOURCES = tests/shim/t_purgeable.c tests/shim/shimtest.h tests/tap.h tests/testutil.h
tests_shim_t_purgeable_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_shim_t_purgeable_LDADD = -ldl -lpthread
tests_shim_t_purgeable_linked_SOURCES = tests/shim/t_purgeable.c tests/shim/shimtest.h tests/tap.h tests/testutil.h
tests_shim_t_purgeable_linked_CPPFLAGS = $(AM_CPPFLAGS) -DPURGEABLE_LINKED
tests_shim_t_purgeable_linked_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_shim_t_purgeable_linked_LDADD = malloc_shim/libvrange_preload.la -ldl -lpthread
tests_shim_t_compat_SOURCES = tests/shim/t_compat.c tests/shim/shimtest.h tests/tap.h tests/testutil.h
tests_shim_t_compat_LDADD = -ldl -lpthread
tests_shim_plugin_la_SOURCES = tests/shim/plugin.cc
tests_shim_plugin_la_CXXFLAGS = $(SHIM_CXX_WARN) -fno-builtin
# -rpath makes libtool build a shared object although nothing installs it.
tests_shim_plugin_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

# The .so must exist before a stub can be run: depend on the .la.
%-preload: %$(EXEEXT) malloc_shim/libvrange_preload.la tests/shim/plugin.la $(top_srcdir)/tests/shim/preload-stub.sh
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/tests/shim/preload-stub.sh '$(SHIM_SO)' \
		$(*F)$(EXEEXT) '$(SHIM_PLUGIN)' '$(SHIM_SKIP)' > $@ && chmod +x $@

%-linked: %$(EXEEXT) malloc_shim/libvrange_preload.la $(top_srcdir)/tests/shim/preload-stub.sh
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/tests/shim/preload-stub.sh '' \
		$(*F)$(EXEEXT) '' '$(SHIM_SKIP)' > $@ && chmod +x $@

# --- real programs under the shim (opt-in, a few minutes) -------------------
EXTRA_DIST += tests/realapps/run
.PHONY: check-realapps
check-realapps: malloc_shim/libvrange_preload.la tests/shim/t_shim_cxx-preload
	$(SHELL) $(top_srcdir)/tests/realapps/run '$(SHIM_SO)' '$(abs_top_builddir)'

# --- bench-shim: allocators compared under LD_PRELOAD (bench/) --------------
# bench/bench_shim links only libc; bench/bench_shim.sh runs its workloads
# without preload (glibc), under stock libjemalloc.so.2 and under the shim,
# medians of BENCH_RUNS (5) interleaved runs, and prints a table with the
# targets of issue 4. A check program so that every `make check` (and
# distcheck, with -Werror) builds it; `make bench-shim` runs it.
check_PROGRAMS += bench/bench_shim
bench_bench_shim_SOURCES = bench/bench_shim.c
# -fno-builtin: gcc would otherwise drop a malloc/memset/free sequence whose
# result is not used, and the workload with it.
bench_bench_shim_CFLAGS = $(AM_CFLAGS) -fno-builtin
bench_bench_shim_LDADD = -lpthread
EXTRA_DIST += bench/bench_shim.sh
.PHONY: bench-shim
bench-shim: bench/bench_shim$(EXEEXT) malloc_shim/libvrange_preload.la
	$(SHELL) $(top_srcdir)/bench/bench_shim.sh '$(SHIM_SO)' '$(abs_top_builddir)/bench/bench_shim$(EXEEXT)'
