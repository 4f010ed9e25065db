/*
 * report.c - use-after-purge reports and backtraces (see sigbus.h).
 *
 * Entry points: vr_report_use_after_purge, vr_backtrace_capture.
 *
 * A report is printed when the fault is going to end the process, or with
 * VRANGE_DEBUG=1: not for a program whose own SIGBUS handler takes it.
 *
 * A report is written from inside the SIGBUS handler, so it formats its own
 * numbers into a line buffer on the stack and write(2)s each line to fd 2:
 * no stdio (its lock may be held by the thread that faulted), no snprintf
 * (not async-signal-safe), no malloc. Backtraces come from libunwind's
 * local-only unwinder, which reads the faulting thread's registers from the
 * signal's ucontext and does not allocate; it is loaded on first need
 * (unwinder.c), so the handler prints none if nothing loaded it before.
 *
 *   libvrange: use after purge: address 0x7f0c2a3b1008, range [0x7f0c2a3b1000,0x7f0c2a3b9000) (8 pages)
 *     #0 0x55d1c2a01234 read_cache+0x14
 *     #1 0x55d1c2a01300 main+0x40
 *     marked volatile at:
 *       #0 0x55d1c2a01100 drop_cache+0x20
 */
#include "internal.h"

#include <string.h>

#include "glue.h"
#include "options.h"
#include "sigbus.h"
#include "unwinder.h"

enum {
	MAX_FRAMES = 64,     /* frames printed from the faulting thread */
	NAME_MAX_LEN = 256,  /* symbol names are cut there */
};

struct line {
	char buf[512];
	size_t n;
};

static void put_str(struct line *l, const char *s)
{
	while (*s && l->n < sizeof l->buf - 1)
		l->buf[l->n++] = *s++;
}

static void put_hex(struct line *l, uintptr_t v)
{
	char tmp[2 * sizeof v + 1];
	size_t i = sizeof tmp - 1;
	tmp[i] = '\0';
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	put_str(l, "0x");
	put_str(l, tmp + i);
}

static void put_dec(struct line *l, uintptr_t v)
{
	char tmp[24];
	size_t i = sizeof tmp - 1;
	tmp[i] = '\0';
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_str(l, tmp + i);
}

/* Ends the line and writes it whole; a short write is resumed. */
static void flush(struct line *l)
{
	l->buf[l->n++] = '\n';
	const char *p = l->buf;
	size_t left = l->n;
	while (left > 0) {
		ssize_t w = vr_write(2, p, left);
		if (w == -EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
	l->n = 0;
}

static void put_frame(struct line *l, const char *indent, int i, uintptr_t pc,
                      const char *name, uintptr_t off)
{
	put_str(l, indent);
	put_str(l, "#");
	put_dec(l, (uintptr_t)i);
	put_str(l, " ");
	put_hex(l, pc);
	put_str(l, " ");
	if (name) {
		put_str(l, name);
		put_str(l, "+");
		put_hex(l, off);
	} else {
		put_str(l, "??");
	}
	flush(l);
}

/* unw_get_proc_name: 0, or -UNW_ENOMEM with the name cut to fit. */
static const char *proc_name(const struct vr_unwind *u, unw_cursor_t *cur, char *buf,
                             size_t len, uintptr_t *off)
{
	unw_word_t o = 0;
	int r = u->get_proc_name(cur, buf, len, &o);
	if (r != 0 && r != -UNW_ENOMEM)
		return NULL;
	buf[len - 1] = '\0';
	*off = (uintptr_t)o;
	return buf;
}

static void print_fault_frames(struct line *l, void *uctx)
{
	const struct vr_unwind *u = vr_unwind();
	if (!u) {
		put_str(l, "  (no backtrace: libunwind is not loaded)");
		flush(l);
		return;
	}
	unw_cursor_t cur;
	unw_context_t here;
	int r;
	if (uctx) {
		/*
		 * The signal's ucontext is the faulting thread's state: the first
		 * frame is the faulting instruction itself, not a return address,
		 * which UNW_INIT_SIGNAL_FRAME tells libunwind (so that it does not
		 * look the name up at ip - 1).
		 */
#if VR_UNW_HAS_INIT_LOCAL2
		r = u->init_local2(&cur, (unw_context_t *)uctx, UNW_INIT_SIGNAL_FRAME);
#else
		r = u->init_local(&cur, (unw_context_t *)uctx);
#endif
	} else {
		r = u->getcontext(&here);
		if (r == 0)
			r = u->init_local(&cur, &here);
	}
	if (r != 0) {
		put_str(l, "  (no backtrace: libunwind cannot start here)");
		flush(l);
		return;
	}
	for (int i = 0; i < MAX_FRAMES; i++) {
		unw_word_t ip = 0;
		if (u->get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		char name[NAME_MAX_LEN];
		uintptr_t off = 0;
		const char *n = proc_name(u, &cur, name, sizeof name, &off);
		put_frame(l, "  ", i, (uintptr_t)ip, n, off);
		if (u->step(&cur) <= 0)
			break;
	}
}

/*
 * Names for saved return addresses: libunwind has no lookup by address for
 * the local address space, but a cursor whose IP is set looks its name up
 * there. A return address may be one past the end of its function (a call
 * to a noreturn function), so the name is that of pc - 1.
 */
static void print_mark_frames(struct line *l, const uintptr_t *pcs, int n)
{
	const struct vr_unwind *u = vr_unwind();
	unw_context_t here;
	unw_cursor_t cur;
	bool have = u && u->getcontext(&here) == 0 && u->init_local(&cur, &here) == 0;
	for (int i = 0; i < n; i++) {
		char name[NAME_MAX_LEN];
		const char *nm = NULL;
		uintptr_t off = 0;
		if (have && pcs[i] > 0 && u->set_reg(&cur, UNW_REG_IP, pcs[i] - 1) == 0) {
			nm = proc_name(u, &cur, name, sizeof name, &off);
			off++;
		}
		put_frame(l, "    ", i, pcs[i], nm, off);
	}
}

void vr_report_use_after_purge(void *addr, uintptr_t lo, uintptr_t hi, void *uctx,
                               const uintptr_t *mark_pcs, int nmark)
{
	/* A use after purge always ends as a SIGBUS (the mprotect fallback
	 * synthesises one): a handler of the program's that takes it means
	 * the program expects purged pages to fault, and a report per fault
	 * would be noise on its stderr. */
	if (!opt_debug && vr_sig_app_catches(SIGBUS))
		return;
	struct line l = { .n = 0 };
	uintptr_t pages = hi > lo ? (hi - lo + vr_page_size - 1) / vr_page_size : 0;

	put_str(&l, "libvrange: use after purge: address ");
	put_hex(&l, (uintptr_t)addr);
	put_str(&l, ", range [");
	put_hex(&l, lo);
	put_str(&l, ",");
	put_hex(&l, hi);
	put_str(&l, ") (");
	put_dec(&l, pages);
	put_str(&l, pages == 1 ? " page)" : " pages)");
	flush(&l);

	print_fault_frames(&l, uctx);
	if (mark_pcs && nmark > 0) {
		put_str(&l, "  marked volatile at:");
		flush(&l);
		print_mark_frames(&l, mark_pcs, nmark);
	}
}
