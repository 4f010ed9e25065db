#!/bin/sh
# bench/bench_shim.sh - the allocation-heavy workloads of bench/bench_shim.c
# under three allocators in the same run: glibc (no preload), stock jemalloc
# (LD_PRELOAD of Debian's libjemalloc.so.2, built from the same sources as
# the PIC archive the shim links privately) and
# libvrange_preload.so. Run by `make bench-shim`.
#
# Usage: bench_shim.sh PRELOAD_SO BENCH_PROGRAM   (or --help)
#   BENCH_RUNS=11                      runs per workload and allocator
#   BENCH_WORKLOADS="large small threads realloc calloc"
#   BENCH_JEMALLOC=path                stock jemalloc to preload
#   BENCH_INSTR="small threads"        workloads also run under cachegrind
#                                      (instructions, simulated cache misses
#                                      and mispredicts, one run each under
#                                      stock jemalloc and the shim; "" = none)
#
# Runs are interleaved (run 1 of every workload under every allocator, then
# run 2, ...; the order of the allocators rotates from run to run) so that a
# slow phase of the machine hits all of them alike. Figures are medians;
# each time target also shows the spread of the shim/jemalloc ratio run by
# run. Eleven runs by default, not five: on this machine, medians of 5 put
# the same code's small-churn ratio anywhere in 0.97-1.10 from one bench
# run to the next.
# It prints a table and the targets of issue 4 marked met / not met: the
# figures only, it never fails on them (exit 1 only if a run itself failed).
# On a shared machine, run-to-run noise in time exceeds 3% (measured here:
# the same program under the same allocator, 0.48-0.85 s): cachegrind's
# counts (BENCH_INSTR) are exact, and with its simulated caches and branch
# predictor say whether the shim adds work or changes how the memory is
# used (not to the instruction: jemalloc purges on a timer, and under
# valgrind time passes slowly).
set -u
# The usage block of this file's banner.
usage() {
	sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "$0" | sed '$d'
}
case ${1:-} in
-h|--help)
	usage
	exit 0
	;;
"")
	usage >&2
	exit 2
	;;
esac
so=$1
prog=$2
runs=${BENCH_RUNS:-11}
workloads=${BENCH_WORKLOADS:-large small threads realloc calloc}
je=${BENCH_JEMALLOC:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
if [ ! -f "$je" ]; then
	echo "bench_shim: stock jemalloc not found ($je); set BENCH_JEMALLOC" >&2
	exit 1
fi
out=$(mktemp "${TMPDIR:-/tmp}/bench-shim.XXXXXX")
trap 'rm -f "$out"' EXIT

echo "bench-shim: $runs runs of: $workloads"
echo "  glibc    no preload"
echo "  jemalloc LD_PRELOAD=$je"
echo "  vrange   LD_PRELOAD=$so"
echo "  (VRANGE_* and MALLOC_CONF from the environment: ${MALLOC_CONF:+MALLOC_CONF=$MALLOC_CONF }$(env | grep '^VRANGE_' | tr '\n' ' '))"

t0=$(date +%s)
r=1
while [ "$r" -le "$runs" ]; do
	case $((r % 3)) in
	1) order="glibc jemalloc vrange" ;;
	2) order="jemalloc vrange glibc" ;;
	*) order="vrange glibc jemalloc" ;;
	esac
	for w in $workloads; do
		for a in $order; do
			case $a in
			glibc) pre= ;;
			jemalloc) pre=$je ;;
			*) pre=$so ;;
			esac
			if ! line=$(LD_PRELOAD=$pre "$prog" "$w"); then
				echo "bench_shim: $w under $a failed (run $r)" >&2
				exit 1
			fi
			echo "$a $line" >> "$out"
		done
	done
	printf 'bench-shim: run %d of %d done (%ds)\n' "$r" "$runs" $(($(date +%s) - t0))
	r=$((r + 1))
done

# Lines: ALLOC WORKLOAD wall_s=S cpu_s=S peak_rss_kb=N rss_kb=N lazyfree_kb=N
awk -v workloads="$workloads" '
function median(key,    n, i, j, t, v) {
	n = cnt[key]
	for (i = 1; i <= n; i++) v[i] = val[key, i]
	for (i = 2; i <= n; i++) {	# insertion sort, n is small
		t = v[i]
		for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
		v[j + 1] = t
	}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, x) { val[key, ++cnt[key]] = x }
# Quantile q (0..1) of the n values in v[1..n], sorted in place (nearest rank).
function quant(v, n, q,    i, j, t, k) {
	for (i = 2; i <= n; i++) {
		t = v[i]
		for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
		v[j + 1] = t
	}
	k = int(q * (n - 1) + 0.5) + 1
	return v[k]
}
# The ratios vrange/jemalloc of field K in run 1..n, run by run: the two
# runs of a pair are adjacent in time, so a slow phase of the machine that
# hits both cancels out. Sets pr[1..n], returns n.
function pairs(w, k,    n, i) {
	n = cnt["vrange" SUBSEP w SUBSEP k]
	for (i = 1; i <= n; i++)
		pr[i] = val["vrange" SUBSEP w SUBSEP k, i] / val["jemalloc" SUBSEP w SUBSEP k, i]
	return n
}
{
	a = $1; w = $2
	for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	add(a SUBSEP w SUBSEP "t", f["wall_s"])
	add(a SUBSEP w SUBSEP "cpu", f["cpu_s"])
	add(a SUBSEP w SUBSEP "peak", f["peak_rss_kb"] / 1024)
	add(a SUBSEP w SUBSEP "rss", f["rss_kb"] / 1024)
	add(a SUBSEP w SUBSEP "lazy", f["lazyfree_kb"] / 1024)
	add(a SUBSEP w SUBSEP "net", (f["rss_kb"] - f["lazyfree_kb"]) / 1024)
}
END {
	nw = split(workloads, W, " ")
	split("glibc jemalloc vrange", A, " ")
	printf "\nmedians of %d runs; time = wall time of the workload, cpu = its user+system time (all threads; not inflated by other tenants of a shared machine); RSS in MiB, at the end: after the workload freed what it does not keep\n\n", cnt["glibc" SUBSEP W[1] SUBSEP "t"]
	hdr = sprintf("%-8s %-8s %8s %8s %8s %8s %8s %8s  %9s %9s %9s  %9s %9s", "workload", "alloc", "time s", "cpu s", "peakRSS", "RSS end", "LazyFree", "RSS-Lazy", "t/jemal", "cpu/jem", "t/glibc", "peak/jem", "peak/gli")
	print hdr
	gsub(/./, "-", hdr); print hdr
	for (i = 1; i <= nw; i++) {
		w = W[i]
		for (j = 1; j <= 3; j++) {
			a = A[j]
			split("t cpu peak rss lazy net", K, " ")
			for (k = 1; k <= 6; k++) m[a, w, K[k]] = median(a SUBSEP w SUBSEP K[k])
		}
		for (j = 1; j <= 3; j++) {
			a = A[j]
			printf "%-8s %-8s %8.3f %8.3f %8.1f %8.1f %8.1f %8.1f  %9.3f %9.3f %9.3f  %9.3f %9.3f\n", \
				(j == 1 ? w : ""), a, m[a, w, "t"], m[a, w, "cpu"], m[a, w, "peak"], m[a, w, "rss"], m[a, w, "lazy"], m[a, w, "net"], \
				m[a, w, "t"] / m["jemalloc", w, "t"], m[a, w, "cpu"] / m["jemalloc", w, "cpu"], m[a, w, "t"] / m["glibc", w, "t"], \
				m[a, w, "peak"] / m["jemalloc", w, "peak"], m[a, w, "peak"] / m["glibc", w, "peak"]
		}
	}
	print "\ntargets (issue 4), figures only:"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		r = m["vrange", w, "t"] / m["jemalloc", w, "t"]
		c = m["vrange", w, "cpu"] / m["jemalloc", w, "cpu"]
		printf "  %-8s time vs stock jemalloc %.3f wall, %.3f cpu (at most 1.030): %s wall, %s cpu\n", \
			w, r, c, (r <= 1.03 ? "met" : "NOT MET"), (c <= 1.03 ? "met" : "NOT MET")
		n = pairs(w, "cpu")
		q1 = quant(pr, n, 0.25); q2 = quant(pr, n, 0.5); q3 = quant(pr, n, 0.75)
		printf "  %-8s   cpu run by run: median %.3f, quartiles %.3f-%.3f, range %.3f-%.3f\n", \
			"", q2, q1, q3, pr[1], pr[n]
	}
	for (i = 1; i <= nw; i++) {
		w = W[i]
		if (w != "large") continue
		r = m["jemalloc", w, "t"] / m["vrange", w, "t"]
		printf "  %-8s speed-up over stock jemalloc %.2fx (at least 3x): %s\n", w, r, (r >= 3 ? "met" : "NOT MET")
	}
	for (i = 1; i <= nw; i++) {
		w = W[i]
		printf "  %-8s RSS-LazyFree %.1f MiB vs stock jemalloc RSS %.1f MiB (no higher): %s\n", w, \
			m["vrange", w, "net"], m["jemalloc", w, "rss"], (m["vrange", w, "net"] <= m["jemalloc", w, "rss"] ? "met" : "NOT MET")
	}
}' "$out"

instr=${BENCH_INSTR-small threads}
if [ -n "$instr" ] && ! command -v valgrind > /dev/null 2>&1; then
	echo "bench-shim: valgrind not installed: no instruction counts"
	instr=
fi
if [ -n "$instr" ]; then
	echo
	echo "simulated by cachegrind (whole process, one run each; its model of the caches"
	echo "and branch predictor; within about 0.5% from run to run, since jemalloc's decay"
	echo "is timed), vrange / stock jemalloc:"
fi
# Instructions, D1 misses, last-level misses, mispredicted branches of the
# traced program, one line (the last summary: env execs the program).
counts() {
	valgrind --tool=cachegrind --cache-sim=yes --branch-sim=yes \
		--cachegrind-out-file=/dev/null --trace-children=yes \
		env LD_PRELOAD="$1" "$prog" "$2" 2>&1 > /dev/null | awk '
		function num(s) { gsub(/,/, "", s); return s + 0 }
		/I *refs:/ { i = num($4) }
		/D1 *misses:/ { d = num($4) }
		/LL misses:/ { l = num($4) }
		/Mispredicts:/ { m = num($3) }
		END { if (i) print i, d, l, m }'
}
for w in $instr; do
	cj=$(counts "$je" "$w")
	cv=$(counts "$so" "$w")
	if [ -z "$cj" ] || [ -z "$cv" ]; then
		echo "bench_shim: cachegrind of $w failed" >&2
		exit 1
	fi
	echo "$w $cj $cv" | awk '{
		printf "  %-8s instructions %.4f (%d / %d), D1 misses %.4f, LL misses %.4f, mispredicts %.4f\n",
			$1, $6 / $2, $6, $2, $7 / $3, $8 / $4, $9 / $5 }'
done
echo "bench-shim: $(($(date +%s) - t0)) s"
