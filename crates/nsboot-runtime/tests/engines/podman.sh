#!/bin/sh
# podman drives nsboot-runtime (rootful): podman.sh NSBOOT_RUNTIME
# Private storage (--root/--runroot under a temp dir, vfs driver), a private
# containers.conf (this host's hard limits for open files and processes are
# below podman's defaults, so ulimits 1024:4096; cgroupfs; file events).
. "$(dirname "$0")/common.sh"
busybox_tar "$TMP/bb.tar"
cat > "$TMP/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:4096", "nproc=1024:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$TMP/containers.conf
P="podman --root $TMP/storage --runroot $TMP/runroot --storage-driver vfs --runtime $RT"
cleanup() {
  $P rm -af >/dev/null 2>&1 || true
  $P rmi -af >/dev/null 2>&1 || true
  grep -o " $TMP[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
$P import -q "$TMP/bb.tar" localhost/nsboot-bb:1 >/dev/null
IMG=localhost/nsboot-bb:1

check "run --rm true" 0 "$(rc $P run --rm --network none $IMG true)"
check "run --rm exit status" 7 "$(rc $P run --rm --network none $IMG sh -c 'exit 7')"
check "run --rm output" "hello 0" "$($P run --rm $IMG sh -c 'echo hello $(id -u)' 2>&1)"
id=$($P run -d --memory 64m --pids-limit 50 $IMG sh -c 'echo started; trap "exit 0" TERM; while :; do sleep 1; done')
check "run -d: running" running "$($P inspect -f '{{.State.Status}}' "$id")"
check "exec" "in-exec" "$($P exec "$id" echo in-exec 2>&1)"
check "exec exit status" 3 "$(rc $P exec "$id" sh -c 'exit 3')"
check "--memory read back" 67108864 "$($P exec "$id" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
check "--pids-limit read back" 50 "$($P exec "$id" cat /sys/fs/cgroup/pids/pids.max 2>&1)"
check "logs" started "$($P logs "$id" 2>&1)"
check "pause" paused "$($P pause "$id" >/dev/null && $P inspect -f '{{.State.Status}}' "$id")"
check "unpause" running "$($P unpause "$id" >/dev/null && $P inspect -f '{{.State.Status}}' "$id")"
check "stop" 0 "$(rc $P stop -t 5 "$id")"
check "rm" 0 "$(rc $P rm "$id")"
check "no cgroup left" "" "$(ls -d /sys/fs/cgroup/memory/libpod_parent/libpod-"$id" 2>/dev/null)"
check "--memory enforced (OOM kill)" 137 "$(rc $P run --rm --network none --memory 32m $IMG sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a)')"
check "--pids-limit enforced" "limited" "$($P run --rm --network none --pids-limit 10 $IMG sh -c '(for i in $(seq 30); do sleep 3 & done) 2>/dev/null; set -- /proc/[0-9]*; [ $# -le 10 ] && echo limited' 2>/dev/null)"
if command -v script >/dev/null; then
  # script reads a pipe kept open 3 s (not the caller's stdin, not an
  # early EOF that may end the session before tty prints); a miss is a FAIL
  # line, not a silent exit under set -e.
  out=$(sleep 3 | timeout 30 script -qec "$P run --rm -it --network none $IMG tty" /dev/null | tr -d '\r\000' | grep -m1 -o '/dev/pts/[0-9]*' || true)
  check "run -it (pty through script)" /dev/pts/0 "$out"
  tid=$($P run -d --network none $IMG sh -c 'trap "exit 0" TERM; while :; do sleep 1; done')
  out=$(sleep 3 | timeout 30 script -qec "$P exec -it $tid sh -c 'tty; echo exec-tty'" /dev/null | tr -d '\r\000' | { grep -o 'pts/[0-9]* *$\|exec-tty' || true; } | tr '\n' ' ')
  check "exec -it (pty through --console-socket)" "pts/0 exec-tty " "$out"
  $P rm -f -t 2 "$tid" >/dev/null 2>&1 || true
else
  echo "SKIP - run -it: no script(1)"
fi
# Rootless: as a user with a subordinate id range (newuidmap), if this
# host has one; no slirp4netns here, so --network none; no delegated v1
# cgroup, so the runtime runs the container without one (a warning).
RU=${NSBOOT_ROOTLESS_USER:-nsboot-rootless}
if id "$RU" >/dev/null 2>&1 && grep -q "^$RU:" /etc/subuid && command -v newuidmap >/dev/null && command -v setpriv >/dev/null; then
  R=$TMP/rootless; mkdir -p "$R/run" "$R/home"; cp "$RT" "$R/rt"; cp "$TMP/bb.tar" "$TMP/containers.conf" "$R/"
  chown -R "$RU" "$R"; chmod 0700 "$R/run"
  as_user() {
    # From the user's own directory: the test's cwd (the repository) may
    # be private to root (a clone in a 0700 directory).
    cd "$R" && setpriv --reuid "$RU" --regid "$(id -g "$RU")" --init-groups env -i HOME="$R/home" XDG_RUNTIME_DIR="$R/run" \
      PATH=/usr/bin:/bin:/usr/sbin:/sbin CONTAINERS_CONF="$R/containers.conf" \
      podman --root "$R/st" --runroot "$R/rr" --storage-driver vfs --runtime "$R/rt" "$@"; st=$?
    cd - >/dev/null; return $st
  }
  as_user import -q "$R/bb.tar" localhost/nsboot-bb:1 >/dev/null
  check "rootless run --rm" "0 rootless" "$(as_user run --rm --network none $IMG sh -c 'echo $(id -u) rootless' 2>/dev/null)"
  rid=$(as_user run -d --network none $IMG sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' 2>/dev/null)
  check "rootless exec (uid map)" "0 $(id -u "$RU") 1" "$(as_user exec "$rid" head -n1 /proc/self/uid_map 2>/dev/null | tr -s ' ' | sed 's/^ //')"
  check "rootless stop + rm" 0 "$(rc as_user rm -f -t 3 "$rid")"
  as_user rmi -af >/dev/null 2>&1 || true
  rm -rf "$R"
else
  echo "SKIP - rootless podman: no user $RU with a /etc/subuid range and newuidmap"
fi
finish
