#!/bin/sh
# containerd (started here with a private root/state/socket) drives
# nsboot-runtime through ctr --runc-binary: containerd.sh NSBOOT_RUNTIME
. "$(dirname "$0")/common.sh"
command -v podman >/dev/null || { echo "SKIP - containerd: podman is used to make the image archive"; exit 0; }
busybox_tar "$TMP/bb.tar"
cat > "$TMP/config.toml" <<CONF
version = 2
root = "$TMP/root"
state = "$TMP/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$TMP/ctd.sock"
[ttrpc]
  address = "$TMP/ctd.sock.ttrpc"
CONF
P="podman --root $TMP/storage --runroot $TMP/runroot --storage-driver vfs"
containerd --config "$TMP/config.toml" >"$TMP/containerd.log" 2>&1 &
ctd=$!
C="ctr --address $TMP/ctd.sock"
cleanup() {
  $C task kill -s KILL t2 >/dev/null 2>&1 || true
  $C task delete t2 >/dev/null 2>&1 || true
  $C container rm t1 t2 >/dev/null 2>&1 || true
  kill "$ctd" 2>/dev/null || true
  wait "$ctd" 2>/dev/null || true
  $P rmi -af >/dev/null 2>&1 || true
  grep -o " $TMP[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
$P import -q "$TMP/bb.tar" localhost/nsboot-bb:1 >/dev/null
$P save -q --format docker-archive -o "$TMP/bb-docker.tar" localhost/nsboot-bb:1
for i in $(seq 50); do [ -S "$TMP/ctd.sock" ] && break; sleep 0.1; done
$C images import "$TMP/bb-docker.tar" >/dev/null
IMG=localhost/nsboot-bb:1
check "ctr run --rm" "hi 0" "$($C run --rm --runc-binary "$RT" $IMG t1 sh -c 'echo hi $(id -u)' 2>&1)"
$C run -d --runc-binary "$RT" $IMG t2 sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
check "task running" RUNNING "$($C task ls | awk '$1=="t2"{print $3}')"
check "task exec" in-exec "$($C task exec --exec-id e1 t2 echo in-exec 2>&1)"
check "task exec exit status" 4 "$(rc $C task exec --exec-id e2 t2 sh -c 'exit 4')"
check "task pause" PAUSED "$($C task pause t2 && $C task ls | awk '$1=="t2"{print $3}')"
check "task resume" RUNNING "$($C task resume t2 && $C task ls | awk '$1=="t2"{print $3}')"
$C task kill t2
for i in $(seq 50); do [ "$($C task ls | awk '$1=="t2"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "task kill" STOPPED "$($C task ls | awk '$1=="t2"{print $3}')"
check "task delete" 0 "$(rc $C task delete t2)"
check "no state left" "" "$(ls "$TMP/state/io.containerd.runtime.v2.task/default" 2>/dev/null)"
finish
