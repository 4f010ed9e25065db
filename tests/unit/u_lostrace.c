/*
 * u_lostrace - a loss recorded by the signal handler is never erased by a
 * writer updating other pages of the same leaf (R1).
 *
 * The SIGBUS handler records a refilled page lost with an atomic OR and no
 * lock (vr_registry_note_lost), while a mark holds the registry lock and
 * records its own losses in the same 64-page word. If the writer loaded the
 * word and later stored it with its bits added, a handler running in
 * between would have its bit erased, and the refilled page would be
 * reported intact at its unmark.
 *
 * A signal handler runs between two instructions of the thread it
 * interrupts, so the test tries every such point: a child re-marks pages
 * 1-63 of a leaf (their cookies overwritten, so the mark records them
 * lost) under ptrace; the parent single-steps it once to find the
 * instructions that write the leaf's lost word, then, for each of the 48
 * instruction boundaries before each such write, runs the re-mark again,
 * stops it there, and sets page 0's bit in the word itself (PTRACE_POKEDATA:
 * what the handler's atomic OR does). After the re-mark the child reports
 * whether page 0 is still recorded lost. (A timer signal cannot find the
 * window: it is a few instructions in a re-mark of several hundred
 * microseconds; hardware watchpoints are not available in every VM.)
 */
#define _GNU_SOURCE
#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "init.h"
#include "registry.h"
#include "vma.h"
#include "../tap.h"

#define BEFORE 48           /* instruction boundaries tried before each write */
#define MAX_STEPS 200000

static uintptr_t p0;
static unsigned char *base;
static int to_parent[2], from_parent[2];

/* Page 0 volatile and not lost; pages 1-63 volatile, cookies overwritten. */
static void setup_round(void)
{
	/* Never all 64 pages unmarked at once: the leaf stays where it is. */
	vr_registry_lock();
	vr_backend_cookie.mark(p0, p0 + 1, VR_VMA_OK);
	vr_backend_cookie.unmark(p0 + 1, p0 + VR_LEAF_PAGES, VR_VMA_OK, NULL);
	vr_backend_cookie.mark(p0 + 1, p0 + VR_LEAF_PAGES, VR_VMA_OK);
	vr_backend_cookie.unmark(p0, p0 + 1, VR_VMA_OK, NULL);
	vr_backend_cookie.mark(p0, p0 + 1, VR_VMA_OK);
	vr_registry_unlock();
	for (size_t i = 1; i < VR_LEAF_PAGES; i++)
		*(volatile uintptr_t *)(base + i * vr_page_size) = 42;
}

/* The traced child: one round per byte read from the parent (0 ends). */
static void child(void)
{
	ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	setup_round();      /* the leaf exists from here on: pages 1-63 stay */
	uint64_t *word = vr_registry_lost_word(p0);
	if (write(to_parent[1], &word, sizeof word) != sizeof word)
		_exit(2);
	char go;
	while (read(from_parent[0], &go, 1) == 1 && go) {
		setup_round();
		raise(SIGSTOP);     /* the parent steps from here */
		vr_registry_lock();
		vr_backend_cookie.mark(p0 + 1, p0 + VR_LEAF_PAGES, VR_VMA_OK);
		vr_registry_unlock();
		bool lost = false;
		vr_registry_page(p0, &lost, NULL);
		raise(SIGSTOP);     /* end of the re-mark */
		char r = lost;
		if (write(to_parent[1], &r, 1) != 1)
			_exit(2);
	}
	_exit(0);
}

static pid_t pid;

static int wait_stop(void)
{
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
		return -1;
	return WSTOPSIG(st);
}

/*
 * One round: steps `inject` instructions into the re-mark (-1: none), sets
 * page 0's bit there if inject >= 0, runs to the end. With writes != NULL,
 * records (up to *nwrites) the steps after which the word changed.
 * Returns the child's answer (1 if page 0 is still lost), -1 on error.
 */
static int round_trip(uint64_t *word, long inject, long *writes, int *nwrites)
{
	char go = 1;
	if (write(from_parent[1], &go, 1) != 1)
		return -1;
	if (wait_stop() != SIGSTOP)
		return -1;
	int max = nwrites ? *nwrites : 0, n = 0;
	long steps = writes ? MAX_STEPS : inject;
	uint64_t last = (uint64_t)ptrace(PTRACE_PEEKDATA, pid, word, NULL);
	for (long s = 0; s < steps; s++) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) != 0)
			return -1;
		int sig = wait_stop();
		if (sig == SIGSTOP) {
			if (getenv("LOSTRACE_DEBUG"))
				tap_diag("re-mark over after %ld steps, word %llx", s,
				         (unsigned long long)last);
			break;      /* the re-mark is over */
		}
		if (sig != SIGTRAP)
			return -1;
		if (writes) {
			uint64_t now = (uint64_t)ptrace(PTRACE_PEEKDATA, pid, word, NULL);
			if (now != last && n < max)
				writes[n++] = s + 1;
			last = now;
		}
	}
	if (inject >= 0) {
		uint64_t v = (uint64_t)ptrace(PTRACE_PEEKDATA, pid, word, NULL);
		ptrace(PTRACE_POKEDATA, pid, word, (void *)(uintptr_t)(v | 1));
	}
	if (!writes) {
		ptrace(PTRACE_CONT, pid, NULL, NULL);
		if (wait_stop() != SIGSTOP)
			return -1;
	}
	if (nwrites)
		*nwrites = n;
	ptrace(PTRACE_CONT, pid, NULL, NULL);
	char r;
	return read(to_parent[0], &r, 1) == 1 ? r : -1;
}

int main(void)
{
	vr_init();
	tap_plan(3);
	size_t leaf = (size_t)VR_LEAF_PAGES * vr_page_size;
	unsigned char *raw = mmap(NULL, 2 * leaf, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		abort();
	base = (unsigned char *)(((uintptr_t)raw + leaf - 1) & ~(leaf - 1));
	memset(base, 0x11, leaf);
	p0 = vr_vpn((uintptr_t)base);
	if (pipe(to_parent) != 0 || pipe(from_parent) != 0)
		abort();
	pid = fork();
	if (pid == 0)
		child();
	uint64_t *word = NULL;
	if (read(to_parent[0], &word, sizeof word) != sizeof word || !word) {
		tap_printf("Bail out! the traced child did not start\n");
		return 1;
	}

	long writes[16];
	int nwrites = 16;
	int r = round_trip(word, -1, writes, &nwrites);
	tap_ok(r == 0 && nwrites > 0,
	       "single-stepped the re-mark: %d instructions write the lost word "
	       "(page 0 not lost without a handler: %d)", nwrites, r == 0);
	long tried = 0, erased = 0;
	for (int w = 0; w < nwrites; w++) {
		for (long k = writes[w] - BEFORE; k < writes[w]; k++) {
			if (k < 0)
				continue;
			int lost = round_trip(word, k, NULL, NULL);
			tried++;
			if (lost != 1) {
				erased++;
				tap_diag("a loss recorded after instruction %ld of the re-mark "
				         "was erased (answer %d)", k, lost);
			}
		}
	}
	tap_ok(tried > 0, "a handler's loss injected at %ld instruction boundaries", tried);
	tap_ok(erased == 0, "no injected loss erased by the re-mark (%ld erased)", erased);
	char stop = 0;
	if (write(from_parent[1], &stop, 1) != 1)
		return 1;
	int st;
	waitpid(pid, &st, 0);
	tap_done();
	return 0;
}
