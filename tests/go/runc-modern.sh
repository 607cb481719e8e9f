#!/bin/sh
# runc >= 1.2 (1.3.6, 1.5.1: unmodified snapshots from the third-party
# directory) with libnsboot.a in place of libcontainer/nsenter's C files:
#  (a) runc's own libcontainer/nsenter tests, bodies unchanged, against
#      libnsboot;
#  (b) runc built with libnsboot, running real containers: run (rootful and
#      rootless as nobody), run -d + exec (joins every namespace of the
#      container) + kill + delete, a user namespace as root, a time namespace
#      with offsets, create + start, and exec with execCPUAffinity 50 times.
# The snapshot is unpacked into a temporary directory at test time.
# Usage: runc-modern.sh VERSION LIBDIR (holding libnsboot.a). Prints
# PASS/FAIL/SKIP lines; exits 1 if anything failed.
set -eu
version=$1
libdir=$(cd "$2" && pwd)
. "$(dirname "$0")/runc-modern-lib.sh"
if ! nsb_tarball "$version" >/dev/null; then
    echo "SKIP: runc-$version.tar.gz not found (set NSBOOT_THIRD_PARTY to the directory holding it)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
if [ ! -x /bin/busybox ]; then echo "SKIP: busybox-static missing"; exit 0; fi
nsb_setup_go
work=$(mktemp -d "${TMPDIR:-/tmp}/nsboot-runc-$version.XXXXXX")
chmod 755 "$work"
runc=""
cleanup() {
    if [ -n "$runc" ]; then
        for c in m-d m-cs m-aff; do "$runc" --root "$work/state" delete -f "$c" >/dev/null 2>&1 || true; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fails=0
pass() { echo "PASS: runc $version: $1"; }
fail() { echo "FAIL: runc $version: $1"; fails=$((fails + 1)); }
check() { # NAME WANT OUTPUT
    case "$3" in
    *"$2"*) pass "$1" ;;
    *) fail "$1: want '$2' in: $3" ;;
    esac
}

# The archive as `make install` ships it: only the C API global.
"$nsb_repo/scripts/localize-staticlib.sh" "$libdir/libnsboot.a" "$work/libnsboot.a"
liba="$work/libnsboot.a"

# (a) runc's own nsenter tests.
tree=$(nsb_unpack "$version" "$work/src")
nsb_dropin "$tree" "$liba" need
echo "SKIP: runc $version: libcontainer/nsenter/test (TestEscapeJSON) tests runc's C escape_json_string (escape.c), which libnsboot replaces; nsboot's JSON escaping has its own tests"
if (cd "$tree" && nice go test -count=1 -v ./libcontainer/nsenter/ >"$work/nsenter-test.log" 2>&1); then
    grep -E '^(--- |ok|PASS|FAIL)' "$work/nsenter-test.log" || true
    pass "libcontainer/nsenter tests ($(nsb_dialect_note "$liba"))"
else
    cat "$work/nsenter-test.log"
    fail "libcontainer/nsenter tests"
fi
rm -rf "$work/src"

# (b) runc built with libnsboot (cached by the archive's hash; nm-checked).
if ! runc=$(nsb_runc "$version" nsboot "$liba"); then
    runc=""
    fail "build runc with libnsboot"
    exit 1
fi
pass "runc built with libnsboot (nm: nsboot_version in, runc's nsexec.c/log.c/escape.c out)"
R() { "$runc" --root "$work/state" "$@"; }

bundle() { # DIR ROOTLESS SCRIPT [JSON-EDIT (python, on c)]
    mkdir -p "$1/rootfs/bin" "$1/rootfs/proc" "$1/rootfs/sys" "$1/rootfs/dev" "$1/rootfs/tmp"
    cp /bin/busybox "$1/rootfs/bin/"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$1/rootfs/bin/$a"; done
    (cd "$1" && if [ "$2" = 1 ]; then "$runc" spec --rootless; else "$runc" spec; fi)
    python3 - "$1/config.json" "$2" "$3" "${4:-}" <<'PY'
import json, sys
p, rootless, script, edit = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", script]
c["hostname"] = "modern"
if rootless:
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 65534, "size": 1}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 65534, "size": 1}]
def userns(c):
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
def timens(c):
    c["linux"]["namespaces"].append({"type": "time"})
    c["linux"]["timeOffsets"] = {"monotonic": {"secs": 864000, "nanosecs": 0},
                                 "boottime": {"secs": 1728000, "nanosecs": 0}}
exec(edit)
json.dump(c, open(p, "w"))
PY
    chmod -R a+rX "$1"
}

# run, rootful
bundle "$work/b1" 0 'echo pid=$$ uid=$(id -u) host=$(hostname)'
out=$(R run --bundle "$work/b1" m-1 </dev/null 2>&1) || true
check "run (rootful)" "pid=1 uid=0 host=modern" "$out"

# run, rootless as nobody
mkdir -p "$work/rl" && chown nobody "$work/rl"
bundle "$work/b2" 1 'echo rootless uid=$(id -u) map=$(cat /proc/self/uid_map | tr -s " "); echo x > /dev/null && echo devnull-ok'
out=$(cd "$work/b2" && runuser -u nobody -- env XDG_RUNTIME_DIR="$work/rl" "$runc" --root "$work/rl/runc" run --bundle "$work/b2" m-rl </dev/null 2>&1) || true
check "run (rootless, as nobody)" "rootless uid=0 map= 0 65534 1" "$out"
check "run (rootless): /dev/null usable" "devnull-ok" "$out"

# user namespace as root
bundle "$work/b3" 0 'echo userns map=$(cat /proc/self/uid_map | tr -s " ") uid=$(id -u)' 'userns(c)'
out=$(R run --bundle "$work/b3" m-u </dev/null 2>&1) || true
check "run with a user namespace (as root)" "userns map= 0 100000 65536 uid=0" "$out"

# time namespace with offsets
bundle "$work/b4" 0 'echo offs=$(tr -s " " < /proc/self/timens_offsets | tr "\n" ,) up=$(cut -d. -f1 /proc/uptime)' 'timens(c)'
out=$(R run --bundle "$work/b4" m-t </dev/null 2>&1) || true
check "run with a time namespace: offsets" "offs=monotonic 864000 0,boottime 1728000 0," "$out"
up=$(echo "$out" | sed -n 's/.* up=\([0-9]*\).*/\1/p')
if [ -n "$up" ] && [ "$up" -ge 1728000 ]; then pass "run with a time namespace: uptime $up s >= boottime offset"; else fail "time namespace uptime: $out"; fi

# run -d (every namespace runc can make: user and time too) + exec + kill + delete
bundle "$work/b5" 0 'exec sleep 600' 'userns(c); timens(c)'
if R run -d --bundle "$work/b5" m-d </dev/null >"$work/d.log" 2>&1; then
    pass "run -d"
    pid=$(R state m-d | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    out=$(R exec m-d sh -c 'echo exec-pid=$$; for n in /proc/self/ns/*; do b=${n##*/}; echo "ns $b $(readlink $n) $(readlink /proc/1/ns/$b)"; done' 2>&1) || true
    check "exec runs in the container" "exec-pid=" "$out"
    nsl=$(echo "$out" | grep '^ns ' || true)
    bad=$(echo "$nsl" | awk '$3 != $4' || true)
    n=$(echo "$nsl" | grep -c . || true)
    if [ "$n" -ge 10 ] && [ -z "$bad" ]; then pass "exec joins all $n namespaces of the container's init"; else fail "exec namespaces: $out"; fi
    for t in $(python3 -c 'import json,sys; print(" ".join({"mount": "mnt", "network": "net"}.get(n["type"], n["type"]) for n in json.load(open(sys.argv[1]))["linux"]["namespaces"]))' "$work/b5/config.json"); do
        [ "$(readlink /proc/$pid/ns/$t)" != "$(readlink /proc/self/ns/$t)" ] || { fail "container init shares the host's $t namespace"; }
    done
    out=$(R exec m-d sh -c 'echo offs=$(tr -s " " < /proc/self/timens_offsets | tr "\n" ,) map=$(tr -s " " < /proc/self/uid_map)' 2>&1) || true
    check "exec sees the container's time offsets and uid map" "offs=monotonic 864000 0,boottime 1728000 0, map= 0 100000 65536" "$out"
    R kill m-d KILL || fail "kill"
    i=0; while [ $i -lt 50 ] && ! R state m-d 2>/dev/null | grep -q '"stopped"'; do sleep 0.1; i=$((i + 1)); done
    R delete m-d || fail "delete"
    out=$(R list -q 2>&1)
    # gone, or a zombie not yet reaped by whoever adopted it
    if [ -z "$out" ] && ! grep -qv '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then pass "kill + delete leave no container"; else fail "left: $out"; fi
else
    fail "run -d: $(cat "$work/d.log")"
fi

# create + start
bundle "$work/b6" 0 'echo started-after-create pid=$$'
if R create --bundle "$work/b6" m-cs </dev/null >"$work/cs.out" 2>&1; then
    st=$(R state m-cs | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$st" = created ] && pass "create: state created" || fail "create: state $st"
    R start m-cs || fail "start"
    i=0; while [ $i -lt 100 ] && ! grep -q started-after-create "$work/cs.out"; do sleep 0.1; i=$((i + 1)); done
    check "create + start: the process ran" "started-after-create pid=1" "$(cat "$work/cs.out")"
    R delete -f m-cs || fail "delete after start"
else
    fail "create: $(cat "$work/cs.out")"
fi

# exec --process with execCPUAffinity, 50 times
if [ "$(nproc)" -lt 2 ]; then
    echo "SKIP: runc $version: execCPUAffinity: needs 2 CPUs, this host has $(nproc)"
else
    bundle "$work/b7" 0 'exec sleep 600'
    python3 - "$work/b7/config.json" "$work/p.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["process"]
p["args"] = ["sh", "-c", "echo aff=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"]
p["execCPUAffinity"] = {"initial": "1"}
json.dump(p, open(sys.argv[2], "w"))
PY
    if R run -d --bundle "$work/b7" m-aff </dev/null >"$work/aff.log" 2>&1; then
        nf=0; first=""
        for i in $(seq 50); do
            if ! o=$(R exec --process "$work/p.json" m-aff 2>&1) || [ "${o#aff=}" = "$o" ]; then
                nf=$((nf + 1)); [ -n "$first" ] || first="run $i: $o"
            fi
        done
        [ "$nf" = 0 ] && pass "exec --process with execCPUAffinity initial=1: 50 runs, 0 failures" ||
            fail "exec --process with execCPUAffinity initial=1: $nf of 50 failed; first: $first"
        R delete -f m-aff || true
    else
        fail "run -d for execCPUAffinity: $(cat "$work/aff.log")"
    fi
fi

if [ "$fails" = 0 ]; then echo "runc-modern $version: all passed"; else echo "runc-modern $version: $fails FAILED"; exit 1; fi
