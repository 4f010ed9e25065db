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
