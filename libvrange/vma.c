/*
 * vma.c - validation of ranges against the process's mappings (see vma.h).
 *
 * Entry points: vr_vma_check_locked, vr_vma_invalidate,
 * vr_vma_atfork_child, vr_vma_method.
 */
#include "internal.h"

#include <string.h>
#include <sys/ioctl.h>
#ifdef HAVE_LINUX_FS_H
#include <linux/fs.h>
#endif

#include "fd.h"
#include "glue.h"
#include "log.h"
#include "vma.h"

#if !HAVE_DECL_PROCMAP_QUERY
/* Linux 6.11 uapi (include/uapi/linux/fs.h), absent from older headers. */
struct procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start;
	uint64_t vma_end;
	uint64_t vma_flags;
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t vma_name_size;
	uint32_t build_id_size;
	uint64_t vma_name_addr;
	uint64_t build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#define PROCMAP_QUERY_VMA_READABLE 0x01
#define PROCMAP_QUERY_VMA_WRITABLE 0x02
#define PROCMAP_QUERY_VMA_SHARED 0x08
#define PROCMAP_QUERY_COVERING_OR_NEXT_VMA 0x10
#endif

typedef enum { KIND_RW, KIND_RO, KIND_BAD } vma_kind_t;

typedef struct vma_info_s {
	uintptr_t start, end;
	vma_kind_t kind;
} vma_info_t;

typedef struct cache_ent_s {
	uintptr_t start, end;
	unsigned long gen;
	vma_kind_t kind;
} cache_ent_t;

#define CACHE_SLOTS 8

static cache_ent_t cache[CACHE_SLOTS];
static unsigned cache_next;
static unsigned long maps_gen = 1;   /* 0 marks an empty cache slot */
/* /proc/self/maps for PROCMAP_QUERY: kept, high, checked (fd.h). */
static vr_fd_t maps_fd = VR_FD_NONE;
static bool use_maps_file;
static bool locks_seen;

void vr_vma_note_locking(void)
{
	__atomic_store_n(&locks_seen, true, __ATOMIC_RELAXED);
}

void vr_vma_invalidate(void)
{
	__atomic_add_fetch(&maps_gen, 1, __ATOMIC_RELEASE);
}

void vr_vma_atfork_child(void)
{
	/* The parent's maps, and perhaps not even ours any more. */
	vr_fd_drop(&maps_fd);
	/* Memory locks are not inherited across fork. */
	locks_seen = false;
	vr_vma_invalidate();
}

void vr_vma_force_maps_file(bool on)
{
	use_maps_file = on;
	vr_vma_invalidate();
}

const char *vr_vma_method(void)
{
	if (__atomic_load_n(&locks_seen, __ATOMIC_RELAXED))
		return "smaps (memory locks seen)";
	return use_maps_file ? "maps file" : "procmap_query";
}

/* Special mappings ([vdso], [vvar], ...) are not anonymous memory; the
 * heap, the stack and named anonymous memory are. */
static bool anon_name_ok(const char *name)
{
	return name[0] != '[' || strcmp(name, "[heap]") == 0 ||
	       strncmp(name, "[stack", 6) == 0 || strncmp(name, "[anon:", 6) == 0;
}

/* The kept descriptor if it is still ours, else a new one: never an ioctl
 * on a number the program closed and reused. */
static int maps_open(void)
{
	int fd = vr_fd_get_raw(&maps_fd);
	if (fd >= 0)
		return fd;
	vr_fd_forget(&maps_fd);
	fd = vr_open_ro("/proc/self/maps");
	if (fd < 0)
		return fd;
	int r = vr_fd_keep(&maps_fd, fd);
	return r < 0 ? r : maps_fd.fd;
}

/*
 * PROCMAP_QUERY: the mapping that contains pos or the next one. Returns 0,
 * -ENOENT if no mapping ends after pos, -ENOTTY if the kernel lacks the
 * ioctl.
 */
static int query_ioctl(uintptr_t pos, vma_info_t *out)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct procmap_query q;
		memset(&q, 0, sizeof q);
		q.size = sizeof q;
		q.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
		q.query_addr = pos;
		int fd = maps_open();
		if (fd < 0)
			return fd;
		int r = vr_ioctl(fd, PROCMAP_QUERY, &q);
		if (r == -ENOENT)
			return r;
		if (r < 0) {
			/* Whatever went wrong, once more on a fresh one. */
			vr_fd_drop(&maps_fd);
			if (attempt == 0)
				continue;
			return r;
		}
		out->start = q.vma_start;
		out->end = q.vma_end;
		bool anon = !(q.vma_flags & PROCMAP_QUERY_VMA_SHARED) && q.inode == 0 &&
		            q.dev_major == 0 && q.dev_minor == 0 &&
		            q.vma_page_size == vr_page_size;
		if (!anon) {
			out->kind = KIND_BAD;
		} else if (q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE) {
			out->kind = KIND_RW;
		} else {
			/* Read-only anonymous memory may be a special mapping:
			 * ask for its name. */
			char name[64];
			memset(&q, 0, sizeof q);
			q.size = sizeof q;
			q.query_addr = out->start;
			q.vma_name_size = sizeof name;
			q.vma_name_addr = (uintptr_t)name;
			name[0] = '\0';
			r = vr_ioctl(fd, PROCMAP_QUERY, &q);
			bool ok = (r == 0 && q.vma_name_size == 0) ||
			          (r == 0 && anon_name_ok(name));
			out->kind = ok ? KIND_RO : KIND_BAD;
		}
		return 0;
	}
	return -ENOTTY;
}

static uintptr_t parse_hex(const char **s)
{
	uintptr_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uintptr_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uintptr_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* One line of /proc/self/maps: "start-end perms offset maj:min inode name". */
static bool parse_line(const char *s, vma_info_t *out)
{
	out->start = parse_hex(&s);
	if (*s++ != '-')
		return false;
	out->end = parse_hex(&s);
	if (*s++ != ' ' || strlen(s) < 5)
		return false;
	bool writable = s[1] == 'w', private = s[3] == 'p';
	s += 5;
	parse_hex(&s);                      /* offset */
	s++;
	uintptr_t major = parse_hex(&s);
	s++;
	uintptr_t minor = parse_hex(&s);
	while (*s == ' ')
		s++;
	uintptr_t inode = 0;
	while (*s >= '0' && *s <= '9')
		inode = inode * 10 + (uintptr_t)(*s++ - '0');
	while (*s == ' ')
		s++;
	bool anon = private && inode == 0 && major == 0 && minor == 0 && anon_name_ok(s);
	out->kind = !anon ? KIND_BAD : writable ? KIND_RW : KIND_RO;
	return true;
}

/*
 * The same answer as query_ioctl, by reading a file from the start: the
 * maps file, or the smaps file, whose "VmFlags:" line after each mapping
 * says "lo" for mlocked memory.
 */
static int query_file(uintptr_t pos, vma_info_t *out, bool smaps)
{
	int fd = vr_open_ro(smaps ? "/proc/self/smaps" : "/proc/self/maps");
	if (fd < 0)
		return fd;
	char buf[4096], line[512];
	size_t ll = 0;
	int found = -ENOENT;
	bool done = false;
	while (!done) {
		ssize_t n = vr_read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && !done; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof line - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			if (found == 0) {
				/* smaps: the found mapping's detail lines. */
				if (strncmp(line, "VmFlags:", 8) != 0)
					continue;
				for (const char *f = line + 8; (f = strstr(f, " lo")) != NULL; f += 3)
					if (f[3] == ' ' || f[3] == '\0')
						out->kind = KIND_BAD;
				done = true;
				continue;
			}
			vma_info_t v;
			/* Mapping lines start with a lower-case hex address;
			 * smaps detail lines with a capitalised key. */
			bool header = (line[0] >= '0' && line[0] <= '9') ||
			              (line[0] >= 'a' && line[0] <= 'f');
			if (header && parse_line(line, &v) && v.end > pos) {
				*out = v;
				found = 0;
				done = !smaps;
			}
		}
	}
	vr_close(fd);
	return found;
}

static int query(uintptr_t pos, vma_info_t *out)
{
	if (__atomic_load_n(&locks_seen, __ATOMIC_RELAXED))
		return query_file(pos, out, true);
	if (!use_maps_file) {
		int r = query_ioctl(pos, out);
		if (r == 0 || r == -ENOENT)
			return r;
		vr_debug("PROCMAP_QUERY unavailable (%s): parsing /proc/self/maps",
		         strerror(-r));
		use_maps_file = true;
	}
	return query_file(pos, out, false);
}

static const cache_ent_t *cache_find(uintptr_t pos, unsigned long gen)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].gen == gen && cache[i].start <= pos && pos < cache[i].end)
			return &cache[i];
	return NULL;
}

int vr_vma_check_locked(uintptr_t a, uintptr_t b)
{
	unsigned long gen = __atomic_load_n(&maps_gen, __ATOMIC_ACQUIRE);
	bool hole = false, readonly = false;
	for (uintptr_t pos = a; pos < b;) {
		const cache_ent_t *c = cache_find(pos, gen);
		if (c) {
			readonly |= c->kind == KIND_RO;
			pos = c->end;
			continue;
		}
		vma_info_t v;
		int r = query(pos, &v);
		if (r == -ENOENT || (r == 0 && v.start >= b)) {
			hole = true;
			break;
		}
		if (r < 0)
			return -ENOMEM;
		if (v.start > pos)
			hole = true;
		/* madvise stops at the first mapping it cannot take. */
		if (v.kind == KIND_BAD)
			return -EINVAL;
		readonly |= v.kind == KIND_RO;
		cache[cache_next] = (cache_ent_t){ v.start, v.end, gen, v.kind };
		cache_next = (cache_next + 1) % CACHE_SLOTS;
		pos = v.end;
	}
	if (hole)
		return -ENOMEM;
	return readonly ? VR_VMA_READONLY : VR_VMA_OK;
}
