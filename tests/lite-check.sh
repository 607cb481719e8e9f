#!/bin/sh
# A library built without the `rootfs` feature (the bootstrap alone) still
# bootstraps, and refuses a message carrying a rootfs config with one clear
# fatal line, leaving nothing running. Usage: tests/lite-check.sh LIBDIR
set -eu
lib=$(cd "$1" && pwd)
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$lib/libnsboot.so" "$work/libnsboot.so.0"
for p in spawn probe; do
    cc -std=c99 -Wall -Wextra -Werror -Iinclude "tests/c/$p.c" -o "$work/$p" -L"$lib" -lnsboot -Wl,-rpath,"$work"
done
out=$("$work/spawn" --ns uts,pid -- "$work/probe" sh -c 'echo pid=$$' 2>/dev/null)
[ "$out" = "pid=1" ] && echo "PASS: lite library bootstraps" || { echo "FAIL: lite bootstrap: $out"; exit 1; }
echo '{"ociVersion":"1.0.2","root":{"path":"rootfs"}}' > "$work/config.json"
set +e
err=$("$work/spawn" --ns mnt,pid --rootfs "$work/config.json" -- "$work/probe" echo must-not-run 2>&1)
rc=$?
set -e
case "$err" in
*"built without the rootfs feature"*) ;;
*) echo "FAIL: no clear refusal (exit $rc): $err"; exit 1 ;;
esac
[ "$rc" = 125 ] || { echo "FAIL: exit $rc"; exit 1; }
case "$err" in *must-not-run*) echo "FAIL: the program ran"; exit 1 ;; esac
echo "PASS: lite library refuses a rootfs config (exit 125, fatal line names it)"
