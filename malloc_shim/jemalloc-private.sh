#!/bin/sh
# malloc_shim/jemalloc-private.sh - makes jemalloc's PIC archive into one
# object that libvrange_preload.so links privately (see malloc_shim/local.mk).
#
# Usage: jemalloc-private.sh AR LD OBJCOPY NM PIC_ARCHIVE REDEFINE OUT.o
#
# Every member is combined with ld -r, jemalloc's hidden internals are made
# local, and the public names are renamed as REDEFINE says ("old new" per
# line): malloc becomes je_malloc, which is what <jemalloc/jemalloc.h>
# declares under JEMALLOC_NO_RENAME.
#
# jemalloc_cpp.pic.o, jemalloc's C++ operators, is the one member that
# needs the C++ runtime. Of its operators, only the plain throwing new and
# new[] (CXX_KEEP) stay global: they inline jemalloc's fast path, which no
# wrapper can (cxx.cc defines every other operator). The rest become local,
# unused. Its references to the runtime (the new-handler, bad_alloc and its
# type_info, exception handling) are renamed in REDEFINE to vr_cxx_*, which
# cxx.cc defines by finding the runtime at run time, so that the preload
# still links no libstdc++.
# Kept: malloc_conf and malloc_message, jemalloc's documented data, which it
# reads through the GOT, so that an application's definition still wins.
# REDEFINE also renames jemalloc's calls to libc functions (secure_getenv
# becomes vr_je_secure_getenv), which the shim then defines, and its
# arena_config_default, the configuration it creates arenas with, to
# vr_je_arena_config: jemalloc's definition is made weak and the shim's
# (extents.c: our extent hooks) is the one every reference binds to.
# jemalloc's default extent operations (the *_impl functions behind its
# default hooks) and its thread-specific data (tsd_tls) are made global
# (hidden) for extents.c: our hooks call those operations directly, as
# jemalloc does itself, never through the public default hooks, which
# fetch a full tsd (extents.c says why that deadlocks); the address of
# those hooks stays reachable, to be compared with.
#
# ALIASES: functions the preload exports as jemalloc's own, at the same
# address under a second, global name: malloc is je_malloc itself, not a
# wrapper that jumps to it (shim.c says why), and free is je_free; so are
# glibc's other names for them (__libc_malloc, __libc_free, cfree), and so
# are mallctl and mallctlbymib.
#
# It fails, rather than link something unexpected, if a new name would clash
# with one jemalloc already defines, or if the result defines a global that
# is not in the list (a newer jemalloc with a new entry point).
set -eu
ALIASES="malloc:je_malloc __libc_malloc:je_malloc free:je_free __libc_free:je_free cfree:je_free
	mallctl:je_mallctl mallctlbymib:je_mallctlbymib"
CXX_KEEP="_Znwm _Znam"
ar=$1 ld=$2 objcopy=$3 nm=$4 pic=$5 redefine=$6 out=$7
dir=$out.d
rm -rf "$dir" "$out"
mkdir "$dir"
(cd "$dir" && $ar x "$pic")
if [ ! -f "$dir/jemalloc_cpp.pic.o" ]; then
	echo "jemalloc-private: $pic has no jemalloc_cpp.pic.o (its C++ operators)" >&2
	exit 1
fi
$ld -r -o "$dir/all.o" "$dir"/*.pic.o

# Global symbols defined in $1, one name a line, sorted.
globals() {
	$nm -g --defined-only "$1" | awk 'NF == 3 { print $3 }' | sort
}

# The new names must be new.
awk '{ print $2 }' "$redefine" | sort > "$dir/new"
$nm "$dir/all.o" | awk 'NF == 3 { print $3 }' | sort -u > "$dir/had"
clash=$(comm -12 "$dir/new" "$dir/had")
if [ -n "$clash" ]; then
	echo "jemalloc-private: jemalloc already defines: $clash" >&2
	exit 1
fi

# je_test_hooks_*: pointers for jemalloc's own test suite, exported only so
# that its tests can reach them; nobody else may. jemalloc's C++ operators
# but CXX_KEEP: local.
cxx_local=
for op in $($nm -g --defined-only "$dir/all.o" | awk '$3 ~ /^_Z(nw|na|dl|da)/ { print $3 }'); do
	case " $CXX_KEEP " in
	*" $op "*) ;;
	*) cxx_local="$cxx_local --localize-symbol=$op" ;;
	esac
done
$objcopy --localize-hidden $cxx_local --wildcard --localize-symbol='je_test_hooks_*' \
	--redefine-syms="$redefine" "$dir/all.o" "$dir/renamed.o"

# Each alias: a global function symbol at the section and offset of its
# target (readelf -s: value in column 2, section index in column 7).
add=
for a in $ALIASES; do
	name=${a%%:*} target=${a#*:}
	where=$(${READELF:-readelf} -sW "$dir/renamed.o" |
		awk -v t="$target" '$8 == t && $4 == "FUNC" { print $7, $2; exit }')
	ndx=${where% *} value=${where#* }
	sec=$(${READELF:-readelf} -SW "$dir/renamed.o" |
		sed -n "s/^ *\[ *$ndx\] \([^ ]*\) .*/\1/p")
	if [ -z "$where" ] || [ -z "$sec" ]; then
		echo "jemalloc-private: cannot find $target for the alias $name" >&2
		exit 1
	fi
	add="$add --add-symbol $name=$sec:0x$value,global,function"
done
# jemalloc's sized free without flags, hidden (its C++ operators call it,
# and so do ours): global again, for the preload's other objects only; so
# are its default extent hooks, and its arena configuration, weak. That
# configuration is 16 bytes in jemalloc 5.3 (hooks, metadata_use_hooks): a
# jemalloc whose object differs needs extents.c's struct looked at first.
size=$(${READELF:-readelf} -sW "$dir/renamed.o" |
	awk '$8 == "vr_je_arena_config" && $4 == "OBJECT" { print $3; exit }')
if [ "$size" != 16 ]; then
	echo "jemalloc-private: arena_config_default is ${size:-missing}, not 16 bytes" >&2
	exit 1
fi
EHOOKS_IMPL="alloc dalloc destroy commit decommit purge_lazy purge_forced split merge"
glob=
for op in $EHOOKS_IMPL; do
	glob="$glob --globalize-symbol=je_ehooks_default_${op}_impl"
done
$objcopy $add $glob --globalize-symbol=je_je_sdallocx_noflags \
	--globalize-symbol=je_tsd_tls --globalize-symbol=je_ehooks_default_extent_hooks \
	--globalize-symbol=vr_je_arena_config "$dir/renamed.o" "$dir/glob.o"
$objcopy --weaken-symbol=vr_je_arena_config "$dir/glob.o" "$dir/out.o"

# What may stay global: the new names of what jemalloc defines (not of
# what it calls: vr_prof_*, vr_je_*, vr_cxx_*), the aliases, CXX_KEEP, and
# its two data symbols.
{ awk '$2 !~ /^vr_(prof|je|cxx)_/ { print $2 }' "$redefine"
  for a in $ALIASES; do echo "${a%%:*}"; done
  for op in $CXX_KEEP; do echo "$op"; done
  echo je_je_sdallocx_noflags; echo je_tsd_tls; echo je_ehooks_default_extent_hooks
  for op in $EHOOKS_IMPL; do echo "je_ehooks_default_${op}_impl"; done
  echo vr_je_arena_config; echo malloc_conf; echo malloc_message; } |
	sort > "$dir/want"
globals "$dir/out.o" > "$dir/got"
extra=$(comm -13 "$dir/want" "$dir/got")
if [ -n "$extra" ]; then
	echo "jemalloc-private: unexpected globals in jemalloc: $extra" >&2
	exit 1
fi
mv "$dir/out.o" "$out"
rm -rf "$dir"
