#!/bin/sh
# Bootstrap latency benchmark: floor vs runc 1.1.5's nsexec.c (built here
# from Debian's golang-github-opencontainers-runc-dev source, not kept in the
# repository) vs nsboot. Usage: bench/run-bootstrap-bench.sh [ITERS]
set -eu
cd "$(dirname "$0")/.."
iters=${1:-300}
./scripts/install-deps.sh
cargo build --release --lib -q
out=target/bench; mkdir -p "$out"
src=/usr/share/gocode/src/github.com/opencontainers/runc/libcontainer/nsenter
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$src"/nsexec.c "$src"/cloned_binary.c "$src"/escape.c "$src"/namespace.h "$tmp"/
libs=$(cargo rustc --release -q -p nsboot-capi --lib -- --print native-static-libs 2>&1 | sed -n "s/.*native-static-libs: //p" | tail -1 | sed "s/-lgcc_s/-lgcc_eh/")
link="-Wl,--gc-sections -s"
cc -O2 -o "$out/floor" bench/floor.c
cc -O2 -DRUNC_NSEXEC $link -o "$out/hello-runc" bench/hello.c "$tmp"/nsexec.c "$tmp"/cloned_binary.c "$tmp"/escape.c
cc -O2 -Iinclude -o "$out/hello-nsboot" bench/hello.c target/release/libnsboot.a $libs $link
cc -O2 -Iinclude -o "$out/bootbench" bench/bootbench.c target/release/libnsboot.a $libs $link
ls -l "$out"/hello-runc "$out"/hello-nsboot
echo "machine: $(nproc) cores, $(uname -r), $(date -u +%F)"
"$out/bootbench" "$iters" "$out/floor" "$out/hello-runc" "$out/hello-nsboot"

# CVE-2019-5736 defence: 2 MB and 20 MB host binaries, nsboot and runc 1.1.
# Padded to the same total size for both.
for mb in 2 20; do
    base_ns=$(stat -c %s "$out/hello-nsboot"); base_rc=$(stat -c %s "$out/hello-runc")
    cc -O2 -DPAD_BYTES=$((mb * 1000000 - base_ns)) -Iinclude -o "$out/hello-nsboot-${mb}mb" bench/hello.c target/release/libnsboot.a $libs $link
    cc -O2 -DPAD_BYTES=$((mb * 1000000 - base_rc)) -DRUNC_NSEXEC $link -o "$out/hello-runc-${mb}mb" bench/hello.c "$tmp"/nsexec.c "$tmp"/cloned_binary.c "$tmp"/escape.c
done
echo
"$out/bootbench" cve $((iters / 2)) "$out/hello-nsboot-2mb" "$out/hello-runc-2mb" "$out/hello-nsboot-20mb" "$out/hello-runc-20mb"

# Both dialects (issue #7: no regression).
echo
"$out/bootbench" dialects "$iters" "$out/hello-nsboot"

# The same unprivileged (runc and nsboot both fall back to a sealed memfd
# copy when they may not mount).
echo
chmod -R a+rX "$out"
runuser -u nobody -- "$out/bootbench" cve $((iters / 2)) "$out/hello-nsboot-2mb" "$out/hello-runc-2mb" "$out/hello-nsboot-20mb" "$out/hello-runc-20mb"
