#!/usr/bin/env python3
"""nsrun vs crun vs runc: N sequential containers each, interleaved
(nsrun, crun, runc, nsrun, ...), same busybox bundle, /bin/true.

Usage (root): bench/nsrun_vs.py NSRUN_BINARY [N]
crun 1.8 refuses a hybrid cgroup host, so on one the script re-runs itself
in a private mount namespace with /sys/fs/cgroup/unified unmounted: all
three runtimes then see the same cgroup v1 layout, at no per-run cost.
"crun-nocg" is crun with --cgroup-manager=disabled (no cgroup created,
like nsrun); "crun" and "runc" create one (cgroupfs).
Prints per-runtime median / p10 / p90 wall time per container and the
median peak RSS (max RSS of the runtime's process tree, from wait4).
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

if os.path.ismount("/sys/fs/cgroup/unified") and not os.environ.get("NSRUN_BENCH_INNER"):
    os.environ["NSRUN_BENCH_INNER"] = "1"
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                          'umount /sys/fs/cgroup/unified && exec "$@"', "sh", sys.executable] + sys.argv)
nsrun = os.path.abspath(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
tmp = tempfile.mkdtemp(prefix="nsrun-bench-")
bundle = os.path.join(tmp, "bundle")
rootfs = os.path.join(bundle, "rootfs")
for d in ["bin", "proc", "sys", "dev", "etc", "tmp"]:
    os.makedirs(os.path.join(rootfs, d))
shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
for a in ["sh", "true"]:
    os.symlink("busybox", os.path.join(rootfs, "bin", a))
subprocess.run(["runc", "spec"], cwd=bundle, check=True)
cfg = json.load(open(os.path.join(bundle, "config.json")))
cfg["process"]["terminal"] = False
cfg["process"]["args"] = ["/bin/true"]
json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))
state = os.path.join(tmp, "nsrun-state")
devnull = open(os.devnull, "w")

def cmd(rt, i):
    if rt == "nsrun":
        return [nsrun, "run", "--rm", "--bundle", bundle, "/bin/true"]
    # runc/crun run delete the container when it exits (not detached).
    if rt == "crun-nocg":
        return ["crun", "--root", os.path.join(tmp, "crun-nocg-root"), "--cgroup-manager=disabled",
                "run", "--bundle", bundle, f"bn{i}"]
    return [rt, "--root", os.path.join(tmp, rt + "-root"), "run", "--bundle", bundle, f"b{rt}{i}"]

def one(rt, i):
    env = dict(os.environ, NSRUN_ROOT=state)
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(cmd(rt, i), stdout=devnull, stderr=subprocess.PIPE, env=env)
    _, status = os.waitpid(p.pid, 0)
    t1 = time.perf_counter_ns()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{rt} failed ({p.returncode}): {p.stderr.read().decode()}")
    p.stderr.close()
    return (t1 - t0) / 1e6, 0

rts = ["nsrun", "crun", "crun-nocg", "runc"]
for rt in rts:  # warm-up, discarded
    one(rt, "w")
res = {rt: [] for rt in rts}
for i in range(n):
    for rt in rts:
        res[rt].append(one(rt, i))

def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]

# Peak RSS, in a separate pass: GNU time's wait4 covers the runtime and
# the children it waits for (nsrun reaps its bootstrap stages; crun and runc
# their children), without the harness's own memory.
rss = {rt: [] for rt in rts}
for i in range(min(n, 20)):
    for rt in rts:
        out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd(rt, f"m{i}"), stdout=devnull,
                             stderr=subprocess.PIPE, env=dict(os.environ, NSRUN_ROOT=state), check=True)
        rss[rt].append(int(out.stderr.decode().split()[-1]))
med = {rt: statistics.median(t for t, _ in res[rt]) for rt in rts}
print(f"{n} containers per runtime, interleaved; wall time per container (ms) and peak RSS (KiB)")
print(f"{'runtime':9} {'median':>8} {'p10':>8} {'p90':>8} {'vs crun':>8} {'RSS med':>8} {'RSS max':>8}")
for rt in rts:
    ts = [t for t, _ in res[rt]]
    rs = rss[rt]
    print(f"{rt:9} {med[rt]:8.2f} {q(ts, .1):8.2f} {q(ts, .9):8.2f} {med[rt] / med['crun']:7.2f}x {statistics.median(rs):8.0f} {max(rs):8.0f}")
shutil.rmtree(tmp, ignore_errors=True)
