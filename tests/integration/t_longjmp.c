/*
 * t_longjmp - R5 and R7 with an application SIGBUS handler that never
 * returns: it siglongjmps out of the fault on a purged page of an
 * optimistic range (no refill callback), as v10-style programs do. The
 * library must be left usable: no lock, no RCU read side and no signal
 * mask of its own may still be held by the thread that jumped. Hundreds of
 * rounds, each retiring registry leaves (which waits for every reader),
 * and a vrange_set_refill and an unmark from inside the handler; run in a
 * child with a deadline, since the failure is a hang with every signal
 * blocked.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <signal.h>

#include "vrange.h"
#include "../model.h"

#define SEED 5
#define ROUNDS 300
#define NPAGES 4

static sigjmp_buf jb;
static unsigned char *volatile cur;
static volatile int unmark_in_handler;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	if (unmark_in_handler)
		vrange_mark_nonvolatile(cur, NPAGES * tu_pagesize(), NULL);
	siglongjmp(jb, 1);
}

static int rounds(void *arg)
{
	(void)arg;
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	volatile int faults = 0;
	for (volatile int r = 0; r < ROUNDS; r++) {
		/* A fresh mapping each round, far from the last: its leaf is
		 * new, and the unmark below retires it. */
		unsigned char *p = tu_map(NPAGES);
		memset(p, 0x5a, NPAGES * tu_pagesize());
		cur = p;
		unmark_in_handler = r & 1;
		if (vrange_mark_volatile(p, NPAGES * tu_pagesize(), VRANGE_OPTIMISTIC) != 0)
			return 10;
		tu_pageout(p, 0, NPAGES);
		if (sigsetjmp(jb, 1) == 0) {
			volatile unsigned char c = p[0];
			(void)c;
		} else {
			faults++;
		}
		/* Each takes the registry lock; the unmark retires the leaf. */
		if (vrange_set_refill(p, NPAGES * tu_pagesize(), NULL, NULL) != 0)
			return 11;
		vrange_mark_nonvolatile(p, NPAGES * tu_pagesize(), NULL);
		munmap(p, NPAGES * tu_pagesize());
	}
	/* Every signal is deliverable again: the jump restored the mask. */
	sigset_t now;
	sigprocmask(SIG_SETMASK, NULL, &now);
	if (sigismember(&now, SIGBUS) || sigismember(&now, SIGSEGV))
		return 12;
	return faults > 0 ? 0 : 13;
}

int main(void)
{
	tu_require_pageout();
	tap_plan(1);
	int st = tu_run_child(rounds, NULL, 60);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "%d rounds of a purged-page fault whose handler siglongjmps out "
	       "(every other one after an unmark inside the handler), each "
	       "followed by vrange_set_refill and an unmark: no hang (status 0x%x: "
	       "exit %d, signal %d)", ROUNDS, st, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	       WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	tap_done();
	return 0;
}
