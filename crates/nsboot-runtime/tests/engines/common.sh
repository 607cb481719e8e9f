# Shared by podman.sh and containerd.sh: a temp dir removed at exit, a
# busybox-static image tarball, check helpers.
set -eu
RT=$(readlink -f "$1")
TMP=$(mktemp -d /tmp/nsboot-engine.XXXXXX)
chmod 0755 "$TMP"
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi
}
rc() { # rc CMD...: its exit status (set -e safe), output dropped
  if "$@" >/dev/null 2>&1; then echo 0; else echo $?; fi
}
busybox_tar() { # busybox_tar OUT.tar: a rootfs with every applet
  img=$TMP/img
  mkdir -p "$img/bin" "$img/proc" "$img/sys" "$img/dev" "$img/etc" "$img/tmp"
  cp /bin/busybox "$img/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$img/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$img/etc/passwd"
  echo 'root:x:0:' > "$img/etc/group"
  tar -C "$img" -cf "$1" .
}
finish() {
  if [ "$fails" -eq 0 ]; then echo "all passed"; else echo "$fails failed"; fi
  [ "$fails" -eq 0 ]
}
