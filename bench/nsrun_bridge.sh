#!/bin/sh
# Bridge networking: TCP throughput (iperf3, 5 s) and round-trip latency
# (busybox ping, 20 packets), container <-> container over an nsrun bridge vs the
# same pair of commands host <-> host over loopback. Root; iperf3
# installed (Debian package iperf3). Traffic stays on the host: loopback
# and a bridge network the script creates (10.89.250.0/24) and removes.
#
# Usage: [MTU=65520] bench/nsrun_bridge.sh NSRUN_BINARY [ROUNDS]
set -eu
NSRUN=$(realpath "$1")
ROUNDS=${2:-3}
MTU=${MTU:-1500}
export NSRUN_ROOT=$(mktemp -d /dev/shm/nsrun-bench-net-XXXXXX)
NET=benchnet$$
cleanup() {
    "$NSRUN" rm -f srv >/dev/null 2>&1 || true
    "$NSRUN" network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$NSRUN_ROOT"
}
trap cleanup EXIT
"$NSRUN" network create --subnet 10.89.250.0/24 --mtu "$MTU" "$NET" >/dev/null
# The host's / as the image (iperf3 and ping from the host), each its own netns.
"$NSRUN" run -d --name srv --net "$NET" iperf3 -s >/dev/null
SRV=$("$NSRUN" inspect srv | sed -n 's/.*"Cmd".*//p' >/dev/null; grep -o '"addr": *"[0-9.]*"' "$NSRUN_ROOT/containers/srv/state.json" | grep -o '[0-9.]*$' || true)
[ -n "$SRV" ] || SRV=$(sed 's/.*"addr":"\([0-9.]*\)".*/\1/' "$NSRUN_ROOT/containers/srv/state.json")
iperf3 -s -D -1 >/dev/null 2>&1 || true
sleep 0.5
gbps() { sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | tail -1 | awk '{printf "%.2f", $1/1e9}'; }
rtt() { sed -n 's|.*min/avg/max[^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p'; }
echo "round  ctr-ctr Gbit/s  host-host Gbit/s  ctr-ctr rtt ms  host-host rtt ms"
for i in $(seq "$ROUNDS"); do
    c=$("$NSRUN" run --rm --net "$NET" iperf3 -c "$SRV" -t 5 -J | gbps)
    iperf3 -s -D -1 >/dev/null 2>&1 || true
    sleep 0.3
    h=$(iperf3 -c 127.0.0.1 -t 5 -J | gbps)
    cr=$("$NSRUN" run --rm --net "$NET" busybox ping -c 20 -i 0.05 "$SRV" | rtt)
    hr=$(busybox ping -c 20 -i 0.05 127.0.0.1 | rtt)
    echo "$i      $c            $h              $cr          $hr"
done
echo "load average: $(cut -d' ' -f1 /proc/loadavg)"
