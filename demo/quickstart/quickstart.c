/*
 * quickstart.c - libvrange in five steps, for newcomers.
 *
 * A program often keeps data it could compute again: decoded images,
 * decompressed blocks, rendered glyphs. Keeping it costs memory; dropping it
 * costs time. Volatile ranges let the kernel decide: while the data is not
 * in use the program marks it volatile, and under memory pressure the kernel
 * may simply discard those pages instead of swapping them out or killing
 * anyone. When the program needs the data again it marks it non-volatile
 * and learns, page by page, what was discarded, so it regenerates only that.
 *
 * This demo does exactly that with a buffer of 32 pages:
 *   1. fill it with "decoded" data (a function of the page index);
 *   2. mark it volatile;
 *   3. let the kernel reclaim some of its pages;
 *   4. mark it non-volatile, asking which pages were lost, and refill those;
 *   5. check that every page holds what the generator says.
 *
 * Build with the project (`make demo`) or by hand:
 *     cc quickstart.c -lvrange
 * Try VRANGE_BACKEND=eager ./quickstart: that backend keeps no data while
 * volatile, so every page is reported lost and refilled.
 *
 * Exit status: 0 if every page verifies, 1 otherwise (or on an error).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vrange.h>

/* Older C library headers lack it; the kernel number is stable. */
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define NPAGES 32

static size_t page_size;

/*
 * The "decoder": byte off of page i. Any deterministic function will do; a
 * real program would decode an image or decompress a block here. The byte
 * depends on the page index, so a page refilled at the wrong place would
 * not verify.
 */
static unsigned char decoded_byte(size_t i, size_t off)
{
	return (unsigned char)(i * 131 + off * 7 + 1);
}

static void decode_page(unsigned char *buf, size_t i)
{
	for (size_t off = 0; off < page_size; off++)
		buf[i * page_size + off] = decoded_byte(i, off);
}

static int page_is_correct(const unsigned char *buf, size_t i)
{
	for (size_t off = 0; off < page_size; off++)
		if (buf[i * page_size + off] != decoded_byte(i, off))
			return 0;
	return 1;
}

/* Prints "page 5" or "pages 4-7" for the run [first, last]. */
static void print_pages(size_t first, size_t last)
{
	if (first == last)
		printf("  page %zu", first);
	else
		printf("  pages %zu-%zu", first, last);
}

int main(void)
{
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = NPAGES * page_size;

	/*
	 * Volatile ranges work on private anonymous memory, page aligned: what
	 * mmap gives (and what madvise(MADV_FREE) accepts underneath).
	 */
	unsigned char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("quickstart: mmap");
		return 1;
	}

	/* Step 1: produce the data, as the program would after decoding. */
	for (size_t i = 0; i < NPAGES; i++)
		decode_page(buf, i);

	/*
	 * Step 2: the data is not needed for a while: lend it to the kernel.
	 * From now until step 4 the program must not read or write the
	 * buffer (the library keeps a purge cookie in each page's first word).
	 */
	if (vrange_mark_volatile(buf, len, 0) != 0) {
		perror("quickstart: vrange_mark_volatile");
		return 1;
	}
	printf("backend %s: %d pages decoded and marked volatile\n",
	       vrange_backend(), NPAGES);

	/*
	 * Step 3: memory pressure. Rather than squeeze the whole machine, ask
	 * the kernel to reclaim a few pages right now with MADV_PAGEOUT. This
	 * is not a simulation: it runs the kernel's real reclaim code on these
	 * pages, the same code memory pressure would run, and that code
	 * discards volatile pages instead of writing them anywhere. (Linux >=
	 * 5.4; the kernel may also skip a page it is busy with, which is fine:
	 * step 4 reports what was really lost, whatever the reason.)
	 */
	static const struct { size_t first, count; } reclaim[] = {
		{ 4, 4 },   /* pages 4-7 */
		{ 19, 1 },  /* page 19 */
		{ 26, 3 },  /* pages 26-28 */
	};
	for (size_t r = 0; r < sizeof reclaim / sizeof reclaim[0]; r++) {
		if (madvise(buf + reclaim[r].first * page_size,
		            reclaim[r].count * page_size, MADV_PAGEOUT) != 0) {
			printf("MADV_PAGEOUT not available (%s): the kernel "
			       "reclaims nothing now (it needs Linux >= 5.4); "
			       "continuing\n", strerror(errno));
			break;
		}
	}

	/*
	 * Step 4: the data is needed again. Take the buffer back and ask, page
	 * by page, what the kernel discarded: lost[i] becomes 1 for page i if
	 * it was lost (it now reads as zeros), 0 if it kept every byte. After
	 * this call the whole buffer is ordinary memory again and stays so.
	 */
	unsigned char lost[NPAGES];
	ssize_t nlost = vrange_mark_nonvolatile_vec(buf, len, lost);
	if (nlost < 0) {
		perror("quickstart: vrange_mark_nonvolatile_vec");
		return 1;
	}

	/* Regenerate exactly the lost pages, one line per run of them. */
	size_t refilled = 0;
	for (size_t i = 0; i < NPAGES; i++) {
		if (!lost[i])
			continue;
		size_t first = i;
		while (i + 1 < NPAGES && lost[i + 1])
			i++;
		for (size_t j = first; j <= i; j++) {
			decode_page(buf, j);
			refilled++;
		}
		print_pages(first, i);
		printf(" lost, refilled\n");
	}
	if (nlost == 0)
		printf("  no page lost\n");

	/*
	 * Step 5: every page, refilled or not, must hold the decoded data. A
	 * page that lost bytes but was reported intact would fail here: the
	 * library guarantees that never happens.
	 */
	size_t bad = 0;
	for (size_t i = 0; i < NPAGES; i++) {
		if (!page_is_correct(buf, i)) {
			if (bad++ == 0)
				printf("verification FAILED:\n");
			print_pages(i, i);
			printf(" does not match the decoder\n");
		}
	}

	printf("backend %s: %zd of %d pages lost, %zu refilled, "
	       "verification %s\n", vrange_backend(), nlost, NPAGES, refilled,
	       bad == 0 ? "OK" : "FAILED");

	munmap(buf, len);
	return bad == 0 ? 0 : 1;
}
