#!/bin/sh
# Turn cargo's libnsboot.a (hundreds of objects: nsboot, its dependencies and
# Rust std, every Rust symbol global) into a one-object archive whose only
# global symbols are the C API (nsboot_*, nsexec). Why:
# - a program that links it does not export thousands of Rust symbols: a Go
#   program built with cgo links with -rdynamic, and runc built with the raw
#   archive paid ~1,200 symbol lookups in the dynamic loader at every start
#   (BENCHMARKS.md section 1);
# - two Rust static libraries can live in one program (no duplicate
#   rust_eh_personality / std symbols, style.md 7.8).
# Usage: localize-staticlib.sh IN.a OUT.a
set -eu
in=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ld -r --whole-archive "$in" -o "$tmp/nsboot.o"
readelf -sW "$tmp/nsboot.o" \
    | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" { print $8 }' \
    | grep -E '^(nsboot_[A-Za-z0-9_]+|nsexec)$' | sort -u > "$tmp/keep"
[ -s "$tmp/keep" ] || { echo "localize-staticlib: no C API symbol in $in" >&2; exit 1; }
# .llvmbc/.llvmcmd: embedded LLVM bitcode, useless to a C linker and
# unreadable to binutils' LTO plugin.
objcopy --keep-global-symbols="$tmp/keep" --remove-section=.llvmbc --remove-section=.llvmcmd \
    "$tmp/nsboot.o" "$tmp/libnsboot.o"
rm -f "$out.tmp"
ar rcs "$out.tmp" "$tmp/libnsboot.o"
mv "$out.tmp" "$out"
