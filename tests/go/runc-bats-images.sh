#!/bin/sh
# Make the two images runc's bats suite loads (tests/integration/get-images.sh
# downloads them unless testdata/ already holds them), without downloads:
#   busybox-amd64.tar.xz  the shape of docker-library's busybox rootfs
#       (bin/ with busybox and one hard link per applet, etc/passwd and
#       etc/group as that image has them, home root tmp usr var), from
#       Debian's busybox-static;
#   debian-amd64.tar.xz   a small Debian rootfs assembled from this Debian
#       host's own binaries (dash, coreutils, util-linux, ldconfig, ...) and
#       the shared libraries they need (runc's upstream uses Debian buster
#       slim; only six test files use it).
# Usage: runc-bats-images.sh TESTDATA_DIR. Idempotent.
set -eu
out=$1
arch=amd64
[ "$(uname -m)" = x86_64 ] || { echo "runc-bats-images: only x86_64 is handled" >&2; exit 1; }
mkdir -p "$out"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

etc_files() { # ROOT
    mkdir -p "$1/etc"
    cat > "$1/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
    cat > "$1/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$1/etc/nsswitch.conf"
    : > "$1/etc/hosts"; : > "$1/etc/resolv.conf"; echo nsboot-test > "$1/etc/hostname"
}

if [ ! -s "$out/busybox-$arch.tar.xz" ]; then
    r="$t/busybox"
    mkdir -p "$r/bin" "$r/dev" "$r/home" "$r/root" "$r/tmp" "$r/usr/sbin" "$r/var/spool/mail" "$r/var/www"
    chmod 1777 "$r/tmp"; chmod 700 "$r/root"
    cp /bin/busybox "$r/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln "$r/bin/busybox" "$r/bin/$a"; done
    etc_files "$r"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cJf "$out/.busybox.tmp" .
    mv "$out/.busybox.tmp" "$out/busybox-$arch.tar.xz"
fi

if [ ! -s "$out/debian-$arch.tar.xz" ]; then
    r="$t/debian"
    mkdir -p "$r/dev" "$r/home" "$r/root" "$r/tmp" "$r/proc" "$r/sys" "$r/run" "$r/var/tmp" "$r/etc" "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib" "$r/usr/lib64"
    chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
    # merged /usr, as Debian 12 has it
    ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
    progs="sh dash bash cat cp echo env false id ln ls mkdir mktemp mv readlink rm rmdir sleep stat tail head touch true uname wc grep sed awk mawk tr cut sort xargs find findmnt mount umount ionice chrt taskset nproc getent ldconfig ps kill hostname date dd sync test printf seq nsenter unshare setpriv"
    for p in $progs; do
        f=$(command -v "$p" 2>/dev/null) || continue
        f=$(readlink -f "$f")
        case "$f" in /usr/*) ;; *) f="/usr${f}" ;; esac
        [ -x "$f" ] || continue
        d="$r$(dirname "$f")"; mkdir -p "$d"; cp -n "$f" "$d/"
        [ "$(basename "$f")" = "$p" ] || ln -sf "$(basename "$f")" "$d/$p"
        ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | while read -r l; do
            l=$(readlink -f "$l"); case "$l" in /usr/*) ;; *) l="/usr$l" ;; esac
            mkdir -p "$r$(dirname "$l")"; cp -n "$l" "$r$(dirname "$l")/"
        done
    done
    # the dynamic loader and the soname links ldconfig makes
    cp -n /usr/lib64/ld-linux-x86-64.so.2 "$r/usr/lib64/" 2>/dev/null || true
    cp -n /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/usr/lib/x86_64-linux-gnu/" 2>/dev/null || true
    mkdir -p "$r/etc/ld.so.conf.d"; echo /usr/lib/x86_64-linux-gnu > "$r/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
    echo 'include /etc/ld.so.conf.d/*.conf' > "$r/etc/ld.so.conf"
    etc_files "$r"
    sed -i 's|:/bin/false$|:/usr/sbin/nologin|' "$r/etc/passwd"
    ldconfig -r "$r" 2>/dev/null || true
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cJf "$out/.debian.tmp" .
    mv "$out/.debian.tmp" "$out/debian-$arch.tar.xz"
fi
