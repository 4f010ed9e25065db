#!/bin/sh
# t_man.sh - every public name of vrange.h has a manual page.
#
# For each function vrange.h declares (VRANGE_EXPORT, VRANGE_PRELOAD_EXPORT):
# man/NAME.3 exists and is installed (it is in dist_man_MANS), and the page
# it is, or that its ".so" line names, lists NAME in its NAME section. Every
# page renders with groff without a warning; laid out as `make install`
# lays them out (manN/), man(1) finds and renders each name, and
# libvrange_preload in section 7.
#
# Environment (from make check): VRANGE_TEST_SRCDIR, VRANGE_TEST_MANS (the
# installed pages, paths relative to the top of the tree).
set -u
src=${VRANGE_TEST_SRCDIR:?}
mans=${VRANGE_TEST_MANS:?}
n=0
failed=0

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}

names=$(sed -n 's/^VRANGE_\(PRELOAD_\)\{0,1\}EXPORT [^(]*[ *]\([a-z_0-9]*\)(.*/\2/p' \
	"$src/include/vrange.h")
[ "$(echo $names | wc -w)" -ge 13 ]
ok $? "vrange.h declares the public functions ($(echo $names | wc -w))"

# The page a file stands for: itself, or the target of its .so line.
target() {
	first=$(head -n 1 "$1")
	case $first in
	".so "*) echo "$src/man/$(basename "${first#.so }")" ;;
	*) echo "$1" ;;
	esac
}

for f in $names; do
	page=$src/man/$f.3
	case " $mans " in
	*" man/$f.3 "*) listed=0 ;;
	*) listed=1 ;;
	esac
	t=$(target "$page" 2>/dev/null)
	# The NAME section: from .SH NAME to the next .SH.
	[ -f "$page" ] && [ "$listed" -eq 0 ] && [ -f "$t" ] &&
		sed -n '/^\.SH NAME/,/^\.SH /p' "$t" | grep -q "\\b$f\\b"
	ok $? "man/$f.3 is installed and its page ($(basename "$t")) names $f"
done

for m in $mans; do
	case $(head -n 1 "$src/$m") in
	".so "*) continue ;;
	esac
	if command -v groff >/dev/null 2>&1; then
		w=$(groff -man -Tutf8 -ww -z "$src/$m" 2>&1)
		[ -z "$w" ]
		ok $? "$m renders without warnings${w:+: $w}"
	else
		skip "groff not found: $m not rendered"
	fi
done

if ! command -v man >/dev/null 2>&1; then
	skip "man not found"
else
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_man.XXXXXX") || exit 1
	trap 'rm -rf "$tmp"' EXIT
	for m in $mans; do
		sec=${m##*.}
		mkdir -p "$tmp/man$sec"
		cp "$src/$m" "$tmp/man$sec/"
	done
	bad=
	for f in $names; do
		MANPAGER=cat MANWIDTH=80 man -M "$tmp" 3 "$f" 2>/dev/null | grep -q "$f" ||
			bad="$bad $f"
	done
	[ -z "$bad" ]
	ok $? "man NAME finds a page for every public function${bad:+ (not:$bad)}"
	MANPAGER=cat man -M "$tmp" 7 libvrange_preload 2>/dev/null | grep -q "LD_PRELOAD"
	ok $? "man 7 libvrange_preload finds the preload's page"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
