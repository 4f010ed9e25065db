/*
 * t_secure_prog - the program t_secure makes set-user-ID: prints whether
 * it runs with AT_SECURE, the backend in use and, linked with
 * -lvrange_preload (SECURE_PRELOAD), what syscall(314, 0, NULL, 0, NULL)
 * returns: 0 if the v10 compatibility answered it (vrange of nothing),
 * -1 if it reached the kernel (sched_setattr refuses a NULL attr).
 * Its statistics, warnings and debug output go where the environment says.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrange.h"

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer stops a process's threads to scan them at exit, which a
 * set-user-ID (non-dumpable) process does not allow: it would end every
 * set-user-ID run with a fatal error of its own. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return 1;
}
#endif

int main(void)
{
	long compat = -2;
#if defined(SECURE_PRELOAD) && defined(__x86_64__)
	compat = syscall(314, 0, NULL, 0, NULL);
#endif
	printf("secure %lu backend %s compat %ld\n", getauxval(AT_SECURE), vrange_backend(),
	       compat);
	return 0;
}
