#!/bin/sh
# The root package built without its `rootfs` feature (no Rust rootfs API,
# no oci-spec) still bootstraps, and still prepares a rootfs through the
# plugin, which the C surfaces use in every build. Usage:
# tests/lite-check.sh LIBDIR (holding libnsboot.so and libnsboot_rootfs.so)
set -eu
lib=$(cd "$1" && pwd)
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
command -v busybox >/dev/null || { echo "SKIP: busybox not installed"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
cp "$lib/libnsboot.so" "$work/libnsboot.so.0"
cp "$lib/libnsboot_rootfs.so" "$work/libnsboot_rootfs.so.0"
for p in spawn probe; do
    cc -std=c99 -Wall -Wextra -Werror -Iinclude "tests/c/$p.c" -o "$work/$p" -L"$lib" -lnsboot -Wl,-rpath,"$work"
done
out=$("$work/spawn" --ns uts,pid -- "$work/probe" sh -c 'echo pid=$$' 2>/dev/null)
[ "$out" = "pid=1" ] && echo "PASS: lite library bootstraps" || { echo "FAIL: lite bootstrap: $out"; exit 1; }
mkdir -p "$work/bundle/rootfs/bin"
cp "$(command -v busybox)" "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/sh"
ln -s busybox "$work/bundle/rootfs/bin/cat"
cat > "$work/bundle/config.json" <<'JSON'
{"ociVersion":"1.0.2","root":{"path":"rootfs"},"hostname":"lite",
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
 "linux":{"namespaces":[{"type":"mount"},{"type":"pid"},{"type":"uts"}]}}
JSON
out=$("$work/spawn" --ns mnt,pid,uts --rootfs "$work/bundle/config.json" --bundle "$work/bundle" -- "$work/probe" /bin/sh -c 'echo pid=$$ $(cat /proc/sys/kernel/hostname)' 2>"$work/err") || true
[ "$out" = "pid=1 lite" ] && echo "PASS: lite library prepares a rootfs through the plugin" || { echo "FAIL: lite rootfs: $out"; cat "$work/err"; exit 1; }
