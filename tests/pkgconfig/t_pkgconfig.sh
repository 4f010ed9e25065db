#!/bin/sh
# t_pkgconfig.sh - every public function links with what pkg-config gives
# for the library the header says provides it.
#
# vrange.h declares with VRANGE_EXPORT what libvrange.so has (pkg-config
# vrange) and with VRANGE_PRELOAD_EXPORT what only libvrange_preload.so has
# (pkg-config vrange-preload). This builds public.c, which calls every one
# of them, with the flags of each .pc file as configure wrote it (its
# libdir and includedir pointed at the build tree), runs it, and checks
# that each VRANGE_PRELOAD_EXPORT name really fails to link with
# "pkg-config --libs vrange", as the header says.
#
# Environment (from make check): VRANGE_TEST_SRCDIR, VRANGE_TEST_CC,
# VRANGE_TEST_PKG_CONFIG, VRANGE_TEST_SAN (sanitizer flags, or empty).
set -u
src=${VRANGE_TEST_SRCDIR:?}
cc=${VRANGE_TEST_CC:-cc}
pkgconfig=${VRANGE_TEST_PKG_CONFIG:-pkg-config}
san=${VRANGE_TEST_SAN:-}
build=$(pwd)
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

if ! command -v "$pkgconfig" >/dev/null 2>&1; then
	echo "1..0 # SKIP $pkgconfig not found"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_pkgconfig.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# The .pc files as installed, but pointing at the build tree.
for pc in vrange:libvrange vrange-preload:malloc_shim; do
	name=${pc%%:*}
	dir=${pc#*:}
	sed -e "s|^libdir=.*|libdir=$build/$dir/.libs|" \
	    -e "s|^includedir=.*|includedir=$src/include|" \
	    "$build/$name.pc" > "$tmp/$name.pc"
done
PKG_CONFIG_PATH=$tmp
export PKG_CONFIG_PATH

core=$(sed -n 's/^VRANGE_EXPORT [^(]*[ *]\([a-z_0-9]*\)(.*/\1/p' "$src/include/vrange.h")
preload=$(sed -n 's/^VRANGE_PRELOAD_EXPORT [^(]*[ *]\([a-z_0-9]*\)(.*/\1/p' "$src/include/vrange.h")
[ -n "$core" ] && [ -n "$preload" ]
ok $? "vrange.h declares functions of both libraries ($(echo $core $preload | wc -w))"

missing=
for f in $core $preload; do
	grep -q "\\b$f(" "$src/tests/pkgconfig/public.c" || missing="$missing $f"
done
[ -z "$missing" ]
ok $? "public.c calls every public function${missing:+ (missing:$missing)}"

# name, extra cflags: build public.c with the module's flags and run it.
build_run() {
	mod=$1
	shift
	flags=$("$pkgconfig" --cflags --libs "$mod") || return 1
	libdir=$("$pkgconfig" --variable=libdir "$mod")
	# shellcheck disable=SC2086
	$cc $san "$@" -o "$tmp/public-$mod" "$src/tests/pkgconfig/public.c" $flags \
		-Wl,-rpath,"$libdir" 2> "$tmp/err-$mod" || { cat "$tmp/err-$mod" >&2; return 1; }
	out=$("$tmp/public-$mod") && [ "$out" = ok ]
}

build_run vrange
ok $? "cc public.c \$(pkg-config --cflags --libs vrange): links and runs"

if [ -n "$san" ]; then
	n=$((n + 1))
	echo "ok $n # SKIP sanitizer build: the preload cannot be linked there"
else
	build_run vrange-preload -DPURGEABLE
	ok $? "cc -DPURGEABLE public.c \$(pkg-config --cflags --libs vrange-preload): every function links and runs"
fi

# What the header says is not in libvrange.so is not.
for f in $preload; do
	printf '#include <vrange.h>\nint main(void) { return (int)(long)&%s; }\n' "$f" > "$tmp/one.c"
	# shellcheck disable=SC2046
	if $cc $san -o "$tmp/one" "$tmp/one.c" $("$pkgconfig" --cflags --libs vrange) \
		2> "$tmp/err"; then
		ok 1 "$f links with pkg-config vrange, but vrange.h says only vrange-preload has it"
	else
		grep -q "undefined reference.*$f" "$tmp/err"
		ok $? "$f: undefined with pkg-config vrange, as vrange.h says"
	fi
done

echo "1..$n"
[ "$failed" -eq 0 ]
