# sigbus/local.mk - included by the top Makefile.am (non-recursive build).
# SIGBUS/SIGSEGV handlers, chaining and use-after-purge reports.
