#!/bin/sh
# runc >= 1.2 (default 1.5.1, the unmodified third-party snapshot) built
# twice with the same Go and flags — with its own libcontainer/nsenter C, and
# with libnsboot.a (release build, localized as `make install` ships it) in
# place of those C files — then, interleaved (alternating which goes first):
#   N `runc run` of a busybox bundle running /bin/true;
#   N `runc exec` of /bin/true into one running container (both binaries
#   exec into the same container, so only the exec's bootstrap differs).
# Prints medians, p10/p90 and the ratio as a Markdown table.
# Usage: bench/runc-modern-bench.sh [VERSION] [N]   (root; not a test)
set -eu
cd "$(dirname "$0")/.."
version=${1:-1.5.1}
n=${2:-100}
NSB_REPO=$(pwd)
. ./tests/go/runc-modern-lib.sh
./scripts/install-deps.sh
cargo build --release --lib -q
nsb_setup_go
work=$(mktemp -d /tmp/nsboot-runc-modern-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
./scripts/localize-staticlib.sh target/release/libnsboot.a "$work/libnsboot.a"
runc_c=$(nsb_runc "$version" c)
runc_ns=$(nsb_runc "$version" nsboot "$work/libnsboot.a")
mkdir -p "$work/b/rootfs/bin" "$work/b/rootfs/proc" "$work/b/rootfs/sys" "$work/b/rootfs/dev" "$work/b/rootfs/tmp"
cp /bin/busybox "$work/b/rootfs/bin/"
for a in true sleep sh; do ln -s busybox "$work/b/rootfs/bin/$a"; done
(cd "$work/b" && "$runc_c" spec)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" "$n" "$version" "$runc_c" "$runc_ns" <<'PY'
import json, statistics, subprocess, sys, time
work, n, version, runc_c, runc_ns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
p = f"{work}/b/config.json"
c = json.load(open(p)); c["process"]["terminal"] = False; c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"))
bins = [(f"runc {version} (its C)", runc_c), (f"runc {version} + libnsboot", runc_ns)]
state = f"{work}/state"

def bench(title, argv_of):
    t = {k: [] for k, _ in bins}
    for i in range(n + 5):
        for k, b in (bins if i % 2 == 0 else bins[::-1]):
            a = time.perf_counter()
            r = subprocess.run(argv_of(b, i), stdin=subprocess.DEVNULL, capture_output=True)
            d = time.perf_counter() - a
            if r.returncode != 0:
                sys.exit(f"{k}: {r.stderr.decode()}")
            if i >= 5:
                t[k].append(d)
    base = statistics.median(t[bins[0][0]])
    print(f"\n{title} ({n} each, interleaved, 5 warm-up rounds dropped)\n")
    print("| runc binary | median | p10 | p90 | ratio of medians |\n|---|---:|---:|---:|---:|")
    for k, v in t.items():
        v.sort()
        m = statistics.median(v)
        print(f"| {k} | {m*1000:.2f} ms | {v[len(v)//10]*1000:.2f} ms | {v[9*len(v)//10]*1000:.2f} ms | {m/base:.3f}x |")

bench("`runc run` of /bin/true", lambda b, i: [b, "--root", state, "run", "--bundle", f"{work}/b", f"r{i}"])
c["process"]["args"] = ["sleep", "100000"]
json.dump(c, open(p, "w"))
subprocess.run([runc_c, "--root", state, "run", "-d", "--bundle", f"{work}/b", "ex"], check=True,
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    bench("`runc exec` of /bin/true into a running container", lambda b, i: [b, "--root", state, "exec", "ex", "/bin/true"])
finally:
    subprocess.run([runc_c, "--root", state, "delete", "-f", "ex"])
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
