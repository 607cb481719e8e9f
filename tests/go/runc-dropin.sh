#!/bin/sh
# Build runc 1.1.5 itself from Debian's golang-github-opencontainers-runc-dev
# source with libnsboot.a in place of its libcontainer/nsenter C files, and
# run real containers with it: `runc run` (rootful and rootless as nobody),
# `runc run -d` + `runc exec` + `kill` + `delete`. The runc source is copied
# to a temporary GOPATH at test time; nothing of it is kept.
# Usage: runc-dropin.sh LIBDIR (holding libnsboot.a). Prints PASS/SKIP lines.
set -eu
# A SKIP line here, and in $NSBOOT_TEST_SKIP_DIR for `make test`'s summary.
skip() {
    echo "SKIP: $*"
    if [ -n "${NSBOOT_TEST_SKIP_DIR:-}" ]; then
        mkdir -p "$NSBOOT_TEST_SKIP_DIR" && echo "$(basename "$0"): $*" >> "$NSBOOT_TEST_SKIP_DIR/scripts.txt"
    fi
    exit 0
}
libdir=$(cd "$1" && pwd)
src=/usr/share/gocode/src/github.com/opencontainers/runc
if [ ! -f "$src/main.go" ] || ! command -v go >/dev/null || [ ! -x /bin/busybox ]; then
    skip "runc source (golang-github-opencontainers-runc-dev), go or busybox-static missing"
fi
if [ "$(id -u)" != 0 ]; then
    skip "needs root"
fi
work=$(mktemp -d /tmp/nsboot-runc-dropin.XXXXXX)
chmod 755 "$work"
# The archive as `make install` ships it: only the C API global.
"$(dirname "$0")/../../scripts/localize-staticlib.sh" "$libdir/libnsboot.a" "$work/libnsboot.a"
cleanup() {
    "$work/runc" --root "$work/state" delete -f dropin-d >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/gopath/src/github.com/opencontainers"
cp -r "$src" "$work/gopath/src/github.com/opencontainers/"
ns="$work/gopath/src/github.com/opencontainers/runc/libcontainer/nsenter"
rm -f "$ns"/*.c "$ns"/*.h "$ns"/nsenter_test.go
cat > "$ns/link_nsboot.go" <<GO
package nsenter

// #cgo LDFLAGS: $work/libnsboot.a -lgcc_eh -lutil -lrt -lpthread -lm -ldl -lc
import "C"
GO
(cd "$work/gopath/src/github.com/opencontainers/runc" &&
    GOPATH="$work/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS=-mod=mod \
    GOCACHE="${GOCACHE:-$work/cache}" go build -tags seccomp -o "$work/runc" .)
nm "$work/runc" | grep -q ' T nsboot_version$' || { echo "FAIL: runc does not contain libnsboot"; exit 1; }
if nm "$work/runc" | grep -q ' T ensure_cloned_binary$'; then echo "FAIL: runc's own nsexec.c was linked"; exit 1; fi
chmod 755 "$work/runc"

bundle() { # DIR ROOTLESS SCRIPT
    mkdir -p "$1/rootfs/bin" "$1/rootfs/proc" "$1/rootfs/sys" "$1/rootfs/dev" "$1/rootfs/tmp"
    cp /bin/busybox "$1/rootfs/bin/"
    for a in sh id hostname ps cat sleep echo; do ln -sf busybox "$1/rootfs/bin/$a"; done
    (cd "$1" && if [ "$2" = 1 ]; then runc spec --rootless; else runc spec; fi)
    python3 - "$1/config.json" "$2" "$3" <<'PY'
import json, sys
p, rootless, script = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", script]
c["hostname"] = "dropin"
if rootless:
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 65534, "size": 1}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 65534, "size": 1}]
json.dump(c, open(p, "w"))
PY
    chmod -R a+rX "$1"
}
check() { # NAME WANT OUTPUT
    case "$3" in
    *"$2"*) echo "PASS: $1" ;;
    *) echo "FAIL: $1: want '$2' in: $3"; exit 1 ;;
    esac
}

bundle "$work/b1" 0 'echo pid=$$ uid=$(id -u) host=$(hostname)'
out=$("$work/runc" --root "$work/state" run --bundle "$work/b1" dropin-1 </dev/null 2>&1)
check "runc run (rootful)" "pid=1 uid=0 host=dropin" "$out"

bundle "$work/b2" 0 'exec sleep 60'
"$work/runc" --root "$work/state" run -d --bundle "$work/b2" dropin-d </dev/null >/dev/null 2>&1
out=$("$work/runc" --root "$work/state" exec dropin-d sh -c 'echo exec pid=$$ host=$(hostname); ps -o comm' 2>&1)
check "runc exec joins the container" "exec pid=" "$out"
check "runc exec sees the container's PID 1" "sleep" "$out"
"$work/runc" --root "$work/state" kill dropin-d KILL
"$work/runc" --root "$work/state" delete -f dropin-d
out=$("$work/runc" --root "$work/state" list -q 2>&1)
[ -z "$out" ] && echo "PASS: runc kill + delete leave no container" || { echo "FAIL: left: $out"; exit 1; }

mkdir -p "$work/rl-state" && chown nobody "$work/rl-state"
bundle "$work/b3" 1 'echo rootless uid=$(id -u) map=$(cat /proc/self/uid_map | tr -s " "); echo x > /dev/null && echo devnull-ok'
out=$(cd "$work/b3" && runuser -u nobody -- env XDG_RUNTIME_DIR="$work/rl-state" "$work/runc" --root "$work/rl-state/runc" run --bundle "$work/b3" dropin-rl </dev/null 2>&1)
check "runc run (rootless, as nobody)" "rootless uid=0 map= 0 65534 1" "$out"
check "rootless /dev/null usable" "devnull-ok" "$out"
echo "runc-dropin: all passed"
