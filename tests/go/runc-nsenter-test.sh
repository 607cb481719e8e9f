#!/bin/sh
# Run runc 1.1.5's own libcontainer/nsenter tests (from Debian's
# golang-github-opencontainers-runc-dev) with libnsboot linked in place of
# runc's nsexec.c. The test bodies are used unchanged; only the package's C
# files are left out and one cgo file pointing at libnsboot is added. The
# Debian copy carries a `// +build ignore` line, which is dropped.
# Usage: runc-nsenter-test.sh LIBDIR (holding libnsboot.a)
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
src=/usr/share/gocode/src/github.com/opencontainers/runc/libcontainer/nsenter
if [ ! -f "$src/nsenter_test.go" ]; then
    skip "$src/nsenter_test.go not installed (apt-get install golang-github-opencontainers-runc-dev)"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The archive as `make install` ships it: only the C API global.
"$(dirname "$0")/../../scripts/localize-staticlib.sh" "$libdir/libnsboot.a" "$work/libnsboot.a"
pkg="$work/gopath/src/nsbootcompat/nsenter"
mkdir -p "$pkg"
cp "$src/nsenter.go" "$pkg/"
grep -v '^// +build ignore$' "$src/nsenter_test.go" > "$pkg/nsenter_test.go"
cat > "$pkg/link_nsboot.go" <<GO
package nsenter

// #cgo LDFLAGS: $work/libnsboot.a -ldl -lpthread -lm -lgcc_eh -lc
import "C"
GO
cd "$pkg"
GOPATH="$work/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS=-mod=mod GOCACHE="${GOCACHE:-$work/cache}" \
    go test -count=1 -v . 2>&1
