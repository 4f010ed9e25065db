/*
 * t_fds - R11's descriptors: a program sees none of the library's until it
 * uses volatile memory, and the ones the library then keeps (the
 * userfaultfd, /proc/self/maps) are high, close-on-exec, and never trusted
 * after the program may have closed them: every descriptor the library
 * holds x the program closing it (close_range(3, ~0U) as daemons do, or
 * closing it and putting a file of its own at that number).
 *
 * Built twice from this file: t_fds, linked with -lvrange and run on every
 * backend; and tests/shim/t_fds, which links nothing of ours and runs
 * under LD_PRELOAD=libvrange_preload.so, reaching the API with dlsym (the
 * purgeable heap too, which only the preload has). There the process is
 * also compared with itself run without the preload.
 *
 * Mode "list" (re-executed): prints what a program can see of the library
 * at start-up: its descriptors, its threads, its blocked signals, whether
 * its environment is the one it was given.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vrange.h"
#include "testutil.h"

#define SEED 41
#define NPAGES 8

extern char **environ;

/* The API, direct (linked) or looked up (preload). */
static struct {
	int (*mark)(void *, size_t, unsigned);
	int (*unmark)(void *, size_t, int *);
	int (*set_refill)(void *, size_t, vrange_refill_fn, void *);
	const char *(*backend)(void);
	void *(*pmalloc)(size_t);
	int (*plock)(void *);
	int (*punlock)(void *);
	void (*pfree)(void *);
} api;

static void api_init(void)
{
#ifdef T_FDS_PRELOAD
	const char *lp = getenv("LD_PRELOAD");
	if (!lp || !strstr(lp, "libvrange_preload"))
		tap_skip_all("not run under LD_PRELOAD=libvrange_preload.so "
		             "(use the -preload wrapper)");
#define LOOK(field, name) \
	(*(void **)&api.field = dlsym(RTLD_DEFAULT, name), api.field ? 0 : \
	 (tap_printf("Bail out! %s not found\n", name), exit(1), 0))
	LOOK(mark, "vrange_mark_volatile");
	LOOK(unmark, "vrange_mark_nonvolatile");
	LOOK(set_refill, "vrange_set_refill");
	LOOK(backend, "vrange_backend");
	LOOK(pmalloc, "vrange_malloc");
	LOOK(plock, "vrange_lock");
	LOOK(punlock, "vrange_unlock");
	LOOK(pfree, "vrange_free");
#undef LOOK
#else
	api.mark = vrange_mark_volatile;
	api.unmark = vrange_mark_nonvolatile;
	api.set_refill = vrange_set_refill;
	api.backend = vrange_backend;
#endif
}

/* --- what a program can see ----------------------------------------------- */

/* The descriptors open now, but the one reading the directory, as a
 * space-separated list in increasing order, into buf. Also fills is_lib[i]
 * for each descriptor i < 4096 that is a userfaultfd or a maps file. */
static void list_fds(char *buf, size_t size, unsigned char *is_lib)
{
	DIR *d = opendir("/proc/self/fd");
	static unsigned char open_fd[4096];
	memset(open_fd, 0, sizeof open_fd);
	if (is_lib)
		memset(is_lib, 0, 4096);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d) || fd < 0 || fd >= 4096)
			continue;
		open_fd[fd] = 1;
		char path[64], link[256];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, link, sizeof link - 1);
		link[n > 0 ? n : 0] = '\0';
		if (is_lib && (strstr(link, "userfaultfd") || strstr(link, "/maps")))
			is_lib[fd] = 1;
	}
	if (d)
		closedir(d);
	size_t used = 0;
	buf[0] = '\0';
	for (int fd = 0; fd < 4096; fd++)
		if (open_fd[fd] && used < size)
			used += (size_t)snprintf(buf + used, size - used, "%s%d", used ? " " : "", fd);
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Is environ still exactly the environment the process was given? */
static int environ_intact(void)
{
	static char buf[1 << 16];
	int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t n = 0;
	ssize_t r;
	while (n < sizeof buf && (r = read(fd, buf + n, sizeof buf - n)) > 0)
		n += (size_t)r;
	close(fd);
	size_t off = 0;
	for (char **e = environ; *e; e++) {
		size_t l = strlen(*e) + 1;
		if (off + l > n || memcmp(buf + off, *e, l) != 0)
			return 0;
		off += l;
	}
	return off == n;
}

static int mode_list(void)
{
	char fds[512];
	list_fds(fds, sizeof fds, NULL);
	sigset_t mask;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	int blocked = 0;
	for (int s = 1; s < 65; s++)
		if (sigismember(&mask, s) == 1)
			blocked = blocked * 67 + s;
	printf("fds=%s threads=%d blocked=%d environ=%s\n", fds, count_threads(), blocked,
	       environ_intact() ? "intact" : "changed");
	return 0;
}

/* Runs this program in list mode with the given environment, with only
 * descriptors 0-2 (closed_from 3) or all of ours (closed_from 0), and
 * returns its line in out. */
static int run_list(char *const envp[], int closed_from, char *out, size_t size)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		if (closed_from)
			syscall(SYS_close_range, closed_from, ~0U, 0);
		char *argv[] = { (char *)"/proc/self/exe", (char *)"list", NULL };
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	close(p[1]);
	tu_read_all(p[0], out, size);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The expected line of a program started with only 0-2 and SIGUSR2
 * blocked: what the kernel and libc alone give it. */
static char expect_line[128];

static void test_invisible(void)
{
	char got[512];
	snprintf(expect_line, sizeof expect_line, "fds=0 1 2 threads=1 blocked=%d environ=intact",
	         SIGUSR2);
	tap_ok(run_list(environ, 3, got, sizeof got) == 0 && strcmp(got, expect_line) == 0,
	       "a program that uses no volatile memory sees nothing of the library: "
	       "'%s' (want '%s')", got, expect_line);
#ifdef T_FDS_PRELOAD
	/* The same program without the preload, same descriptors and mask. */
	static char *env[512];
	size_t n = 0;
	for (char **e = environ; *e && n < 511; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			env[n++] = *e;
	env[n] = NULL;
	char plain[512];
	tap_ok(run_list(env, 3, plain, sizeof plain) == 0 && strcmp(plain, got) == 0,
	       "the same without the preload: '%s'", plain);
#endif
}

/* --- the library's descriptors -------------------------------------------- */

static int refills;

static int refill(void *page, void *buf, size_t ps, void *arg)
{
	size_t i = (size_t)((unsigned char *)page - (unsigned char *)arg) / ps;
	__atomic_add_fetch(&refills, 1, __ATOMIC_RELAXED);
	for (size_t off = 0; off < ps; off++)
		((unsigned char *)buf)[off] = tu_byte(SEED, i, off);
	return 0;
}

/* An optimistic range of NPAGES with the refill above. */
static unsigned char *opt_range(void)
{
	unsigned char *p = tu_map(NPAGES);
	tu_fill(p, NPAGES, SEED);
	if (api.set_refill(p, NPAGES * tu_pagesize(), refill, p) != 0 ||
	    api.mark(p, NPAGES * tu_pagesize(), VRANGE_OPTIMISTIC) != 0)
		tap_diag("optimistic mark: %s", strerror(errno));
	return p;
}

/*
 * Page `page` of the optimistic range p is reclaimed now: reading the range
 * must give the pattern everywhere (the reclaimed page through a fault and
 * its refill, never as zeros), and its unmark must report the loss.
 */
static void check_opt(unsigned char *p, size_t page, const char *what)
{
	tu_pageout(p, page, 1);
	size_t good = 0;
	for (size_t i = 0; i < NPAGES; i++)
		good += tu_page_state(p, i, SEED) == 1;
	int purged = -1;
	int r = api.unmark(p, NPAGES * tu_pagesize(), &purged);
	tap_ok(good == NPAGES && r == 0 && purged == 1,
	       "%s: %zu of %d pages read their bytes after a reclaim, unmark %d "
	       "purged %d", what, good, NPAGES, r, purged);
}

/* An explicit range: marked, page 0 reclaimed, unmarked. */
static void check_explicit(const char *what)
{
	unsigned char *p = tu_map(NPAGES);
	tu_fill(p, NPAGES, SEED);
	int r1 = api.mark(p, NPAGES * tu_pagesize(), 0);
	tu_pageout(p, 0, 1);
	int purged = -1;
	int r2 = api.unmark(p + tu_pagesize(), (NPAGES - 1) * tu_pagesize(), &purged);
	/* Eager loses every page it is given. */
	int intact = purged == 0 || !strcmp(api.backend(), "eager");
	int purged0 = -1;
	int r3 = api.unmark(p, tu_pagesize(), &purged0);
	tap_ok(r1 == 0 && r2 == 0 && r3 == 0 && intact && purged0 == 1,
	       "%s: explicit mark, reclaim of page 0, unmark of the rest (purged %d) "
	       "and of page 0 (purged %d)", what, purged, purged0);
	munmap(p, NPAGES * tu_pagesize());
}

static void check_purgeable(const char *what)
{
	if (!api.pmalloc)
		return;
	size_t len = 4 * tu_pagesize();
	unsigned char *o = api.pmalloc(len);
	if (!o) {
		tap_ok(0, "%s: vrange_malloc: %s", what, strerror(errno));
		return;
	}
	memset(o, 0x5a, len);
	int u = api.punlock(o);
	madvise(o, len, MADV_PAGEOUT);
	int l = api.plock(o);
	size_t zeros = 0;
	for (size_t i = 0; i < len; i++)
		zeros += o[i] == 0;
	tap_ok(u == 0 && l == 1 && zeros == len,
	       "%s: a purgeable object unlocked, reclaimed and locked: unlock %d, "
	       "lock %d (1 = purged), %zu of %zu bytes zero", what, u, l, zeros, len);
	api.pfree(o);
}

static int uffd_backend(void)
{
	return strcmp(api.backend(), "uffd") == 0;
}

static int floor_fd(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= 2048)
		return 1024;
	return rl.rlim_cur / 2 > 3 ? (int)(rl.rlim_cur / 2) : 3;
}

/* Every descriptor that is open now and was not at start (in before) is
 * high and close-on-exec; returns how many are the library's, in lib. */
static unsigned char lib_fd[4096];

static void test_kept_high(const char *before)
{
	unsigned char *o = opt_range();
	check_explicit("first use");
	char now[1024];
	list_fds(now, sizeof now, lib_fd);
	int nlib = 0, bad = 0, uffds = 0;
	for (int fd = 3; fd < 4096; fd++) {
		if (!lib_fd[fd])
			continue;
		nlib++;
		char path[64], link[128];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, link, sizeof link - 1);
		link[n > 0 ? n : 0] = '\0';
		uffds += strstr(link, "userfaultfd") != NULL;
		if (fd < floor_fd() || !(fcntl(fd, F_GETFD) & FD_CLOEXEC)) {
			bad++;
			tap_diag("descriptor %d (%s) is low or inherited by exec", fd, link);
		}
	}
	tap_ok(bad == 0 && nlib >= (uffd_backend() ? 1 : 0) && uffds == uffd_backend(),
	       "after first use the library holds %d descriptors (%d userfaultfd), "
	       "each at %d or above, close-on-exec ('%s' before, '%s' now)",
	       nlib, uffds, floor_fd(), before, now);
	char got[512];
	tap_ok(run_list(environ, 0, got, sizeof got) == 0 &&
	       strncmp(got + 4, before, strlen(before)) == 0 &&
	       got[4 + strlen(before)] == ' ',
	       "a program it executes inherits none of them: '%s'", got);
	check_opt(o, 3, "the first optimistic range");
	munmap(o, NPAGES * tu_pagesize());
}

/*
 * The program closes every descriptor above 2, as daemons do, while an
 * optimistic range is registered: the next call of each kind gets a new
 * descriptor, and the old range faults again.
 */
static void test_close_range(void)
{
	unsigned char *a = opt_range(), *b = opt_range();
	syscall(SYS_close_range, 3, ~0U, 0);
	/* Re-marking the same range, and marking another, each find the
	 * library's descriptor gone. */
	api.unmark(a, NPAGES * tu_pagesize(), NULL);
	tu_fill(a, NPAGES, SEED);
	api.mark(a, NPAGES * tu_pagesize(), VRANGE_OPTIMISTIC);
	check_opt(a, 2, "after close_range, the same range marked again");
	unsigned char *c = opt_range();
	check_opt(b, 5, "after close_range, a range marked before, once another is marked");
	check_opt(c, 1, "after close_range, a new range");
	syscall(SYS_close_range, 3, ~0U, 0);
	check_explicit("after close_range");
	syscall(SYS_close_range, 3, ~0U, 0);
	check_purgeable("after close_range");
	munmap(a, NPAGES * tu_pagesize());
	munmap(b, NPAGES * tu_pagesize());
	munmap(c, NPAGES * tu_pagesize());
}

/*
 * The program closes the library's descriptors and opens files of its own
 * at their numbers: the library must neither write to them, nor move their
 * offsets, nor close them, in this process or in a fork child.
 */
#define FILE_TEXT "the program's own file, not the library's\n"
#define FILE_OFF 7

static int theirs_ok(int fd, ino_t ino)
{
	struct stat st;
	char buf[sizeof FILE_TEXT];
	return fstat(fd, &st) == 0 && st.st_ino == ino &&
	       lseek(fd, 0, SEEK_CUR) == FILE_OFF &&
	       pread(fd, buf, sizeof buf, 0) == (ssize_t)sizeof FILE_TEXT - 1 &&
	       memcmp(buf, FILE_TEXT, sizeof FILE_TEXT - 1) == 0;
}

static void test_reused(void)
{
	unsigned char *a = opt_range();
	check_explicit("before the numbers are reused");
	char now[1024];
	list_fds(now, sizeof now, lib_fd);
	int fds[8], n = 0;
	ino_t inos[8];
	for (int fd = 3; fd < 4096 && n < 8; fd++) {
		if (!lib_fd[fd])
			continue;
		char path[] = "/tmp/vrange-t_fds.XXXXXX";
		int t = mkstemp(path);
		unlink(path);
		if (t < 0 || write(t, FILE_TEXT, sizeof FILE_TEXT - 1) < 0 ||
		    lseek(t, FILE_OFF, SEEK_SET) != FILE_OFF) {
			tap_diag("temporary file: %s", strerror(errno));
			continue;
		}
		close(fd);
		if (dup2(t, fd) != fd)
			continue;
		close(t);
		struct stat st;
		fstat(fd, &st);
		fds[n] = fd;
		inos[n++] = st.st_ino;
	}
	tap_ok(n >= (uffd_backend() ? 1 : 0),
	       "%d of the library's descriptors replaced by files of the program's", n);
	/* Between the close and the library's next call, a reclaimed page
	 * of a range marked before reads as zeros (nothing is registered:
	 * vrange(3)); the unmark must still report the loss. */
	tu_pageout(a, 4, 1);
	int purged = -1;
	int r = api.unmark(a, NPAGES * tu_pagesize(), &purged);
	tap_ok(r == 0 && purged == 1 && tu_page_state(a, 4, SEED) != -1,
	       "with its numbers reused, a range marked before and reclaimed at once: "
	       "unmark %d, purged %d (never a false intact)", r, purged);
	unsigned char *b = opt_range();
	check_opt(b, 0, "with its numbers reused, a new range");
	check_explicit("with its numbers reused");
	check_purgeable("with its numbers reused");
	/* A fork child: the library's child handlers run there. */
	pid_t pid = fork();
	if (pid == 0) {
		int ok = 1;
		for (int i = 0; i < n; i++)
			ok &= theirs_ok(fds[i], inos[i]);
		unsigned char *c = opt_range();
		tu_pageout(c, 6, 1);
		for (size_t i = 0; i < NPAGES; i++)
			ok &= tu_page_state(c, i, SEED) == 1;
		for (int i = 0; i < n; i++)
			ok &= theirs_ok(fds[i], inos[i]);
		_exit(ok ? 0 : 1);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "in a fork child, the program's files stay open and untouched and an "
	       "optimistic range refills (status 0x%x)", st);
	int ok = 1;
	for (int i = 0; i < n; i++) {
		int mine = theirs_ok(fds[i], inos[i]);
		if (!mine)
			tap_diag("descriptor %d: not the program's file as it left it", fds[i]);
		ok &= mine;
	}
	tap_ok(ok, "the program's files at the library's old numbers: same file, "
	       "same bytes, offset still %d", FILE_OFF);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	munmap(a, NPAGES * tu_pagesize());
	munmap(b, NPAGES * tu_pagesize());
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "list") == 0)
		return mode_list();
	api_init();
	tu_require_pageout();
	/* A mask the list children must see unchanged. */
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_SETMASK, &m, NULL);

	char before[1024];
	list_fds(before, sizeof before, NULL);
	test_invisible();
	test_kept_high(before);
	test_close_range();
	test_reused();
	tap_done();
	return 0;
}
