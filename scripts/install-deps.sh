#!/bin/sh
# Install the Debian packages the test suite and benchmarks use; a no-op
# when they are all present (idempotent, safe to run on every CI start).
set -eu
# iptables, slirp4netns: nsrun's networks; podman, conmon, containerd: the engines
# that drive nsboot-runtime (crates/nsboot-runtime/tests/engines.rs).
pkgs="busybox-static golang-go runc crun golang-github-opencontainers-runc-dev uidmap pkg-config util-linux iproute2 procps valgrind python3 python3-pip bats jq gawk libseccomp-dev xz-utils iptables slirp4netns podman conmon containerd"
[ "${1:-}" = "--bench" ] && pkgs="$pkgs hyperfine strace"
# --build: only what compiling the workspace needs (nsboot-oci links
# Debian's libseccomp), for `make run` and `make build` on a fresh machine.
[ "${1:-}" = "--build" ] && pkgs="libseccomp-dev pkg-config"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
