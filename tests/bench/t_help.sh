#!/bin/sh
# t_help.sh - every bench program answers --help: exit status 0 and a
# usage text on stdout naming the program.
#
# Environment (from make check): VRANGE_TEST_SRCDIR; run from the top of
# the build tree.
set -u
src=${VRANGE_TEST_SRCDIR:?}
n=0
failed=0
for p in bench/bench_mark bench/bench_opt bench/bench_shim "$src/bench/bench_shim.sh"; do
	n=$((n + 1))
	name=$(basename "$p")
	case $p in
	*.sh) out=$(sh "$p" --help 2>/dev/null) ;;
	*) out=$("./$p" --help 2>/dev/null) ;;
	esac
	st=$?
	if [ "$st" -eq 0 ] && printf '%s\n' "$out" | head -n 1 | grep -qi "^usage: $name"; then
		echo "ok $n - $name --help: usage on stdout, status 0"
	else
		echo "not ok $n - $name --help: status $st, first line: $(printf '%s\n' "$out" | head -n 1)"
		failed=$((failed + 1))
	fi
done
echo "1..$n"
[ "$failed" -eq 0 ]
