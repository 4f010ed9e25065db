# sigbus/local.mk - included by the top Makefile.am (non-recursive build).
# SIGBUS/SIGSEGV handlers, chaining and use-after-purge reports.

# Compiled into the core, with its hidden visibility: handler.c exports only
# the interposed sigaction/signal family (VRANGE_EXPORT). libunwind for the
# report's backtraces, dlopen'ed when first needed; dlsym for libc's sigaction (in libc since glibc 2.34,
# -ldl keeps older ones linking).
#
# Its own convenience library, because ThreadSanitizer must not instrument
# it: the TSan runtime calls sigaction (the interposed one, here) while it
# initialises, before instrumented code can run. Other sanitizers apply.
noinst_LTLIBRARIES += sigbus/libvrange_sigbus.la
sigbus_libvrange_sigbus_la_SOURCES = \
	sigbus/sigbus.h \
	sigbus/handler.c \
	sigbus/report.c
sigbus_libvrange_sigbus_la_CFLAGS = $(WARN_CFLAGS) $(SIGBUS_SAN_CFLAGS) -fvisibility=hidden \
	$(UNWIND_CFLAGS) $(URCU_BP_CFLAGS)
# libunwind's header only: the library is dlopen'ed on first need (unwinder.c).
sigbus_libvrange_sigbus_la_LIBADD = -ldl
libvrange_libvrange_core_la_LIBADD += sigbus/libvrange_sigbus.la

# Chaining, through libvrange.so as an application sees it, once per backend
# like the other integration tests (the handlers do not depend on the
# backend, the faults the core declines do).
INTEGRATION_TESTS += tests/integration/t_sigchain
tests_integration_t_sigchain_SOURCES = tests/integration/t_sigchain.c tests/testutil.h tests/tap.h
tests_integration_t_sigchain_LDADD = $(INTEGRATION_LDADD)

# The same cases against the core linked statically, where the test can
# install its handler before the library's and call vr_sig_install itself;
# and the report's format and backtraces.
UNIT_TESTS += tests/unit/u_sigchain tests/unit/u_report
tests_unit_u_sigchain_SOURCES = tests/integration/t_sigchain.c tests/testutil.h tests/tap.h
tests_unit_u_sigchain_CPPFLAGS = $(AM_CPPFLAGS) -DVR_SIGCHAIN_UNIT
tests_unit_u_sigchain_CFLAGS = $(UNIT_CFLAGS)
tests_unit_u_sigchain_LDADD = $(UNIT_LDADD)
tests_unit_u_report_SOURCES = tests/unit/u_report.c tests/testutil.h tests/tap.h
tests_unit_u_report_CFLAGS = $(UNIT_CFLAGS)
tests_unit_u_report_LDADD = $(UNIT_LDADD)
