#!/usr/bin/env python3
"""nsrun vs crun, Docker's defaults: /bin/true in a busybox bundle whose
config.json has Docker's default capability set (bounding, effective,
permitted), no_new_privs, Docker's default seccomp profile (moby's
profile turned into linux.seccomp for those capabilities on x86_64, as
docker does) and cgroup limits (memory 64 MiB, pids 100).

Usage (root): bench/nsrun_docker_defaults.py NSRUN_BINARY [N]

Runtimes, interleaved after one discarded warm-up each, N containers each:
  nsrun-bundle  nsrun run --rm --bundle B /bin/true
                (applies caps, no_new_privs, seccomp; creates the cgroup
                with the memory and pids limits)
  nsrun-cli     nsrun run --rm --rootfs B/rootfs --memory 64m --pids-limit 100 /bin/true
                (the docker-like path: Docker's caps and seccomp by default,
                an overlay write layer, /etc/hostname,hosts,resolv.conf)
  crun          crun --cgroup-manager=disabled run --bundle B ID
                (crun 1.8 refuses any cgroup on a hybrid host: it creates
                none, so it does strictly less than nsrun here)
Wall time from Popen to waitpid; median, p10, p90; peak RSS (GNU time %M,
wait4 of the runtime and the children it reaps) in a second pass.
crun 1.8 refuses a hybrid cgroup host even with cgroups disabled, so on
one the script re-runs itself in a private mount namespace with
/sys/fs/cgroup/unified unmounted (no per-run cost, same for all).
"""
import json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

if os.path.ismount("/sys/fs/cgroup/unified") and not os.environ.get("NSRUN_BENCH_INNER"):
    os.environ["NSRUN_BENCH_INNER"] = "1"
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                          'umount /sys/fs/cgroup/unified && exec "$@"', "sh", sys.executable] + sys.argv)
here = os.path.dirname(os.path.abspath(__file__))
nsrun = os.path.abspath(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100

DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def kernel_at_least(want):
    nums = lambda s: tuple(int(x) for x in s.split("-")[0].split(".")[:2])
    return nums(platform.release()) >= nums(want)


def docker_seccomp(caps):
    """moby's profile → linux.seccomp, as examples/nsrun/security.rs does."""
    raw = json.load(open(os.path.join(here, "../crates/nsboot-oci/tests/fixtures/docker-default-seccomp.json")))
    out = []
    for call in raw["syscalls"]:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        if not all(c in caps for c in inc.get("caps") or []):
            continue
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if inc.get("minKernel") and not kernel_at_least(inc["minKernel"]):
            continue
        if any(c in caps for c in exc.get("caps") or []) or "amd64" in (exc.get("arches") or []):
            continue
        c = {"names": call["names"], "action": call["action"]}
        for k in ("args", "errnoRet"):
            if call.get(k) is not None:
                c[k] = call[k]
        out.append(c)
    arch = next(m for m in raw["archMap"] if m["architecture"] == "SCMP_ARCH_X86_64")
    return {"defaultAction": raw["defaultAction"], "defaultErrnoRet": raw["defaultErrnoRet"],
            "architectures": [arch["architecture"]] + arch["subArchitectures"], "syscalls": out}


# Everything on a tmpfs (/dev/shm): on a disk shared with other jobs each
# unlink of a container's state can take milliseconds.
tmp = tempfile.mkdtemp(prefix="nsrun-bench-dd-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
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
cfg["process"]["noNewPrivileges"] = True
cfg["process"]["capabilities"] = {"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS}
cfg["linux"]["seccomp"] = docker_seccomp(DOCKER_CAPS)
cfg["linux"].setdefault("resources", {})
cfg["linux"]["resources"]["memory"] = {"limit": 64 << 20}
cfg["linux"]["resources"]["pids"] = {"limit": 100}
json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))
state = os.path.join(tmp, "nsrun-state")
devnull = open(os.devnull, "w")


def cmd(rt, i):
    if rt == "nsrun-bundle":
        return [nsrun, "run", "--rm", "--bundle", bundle, "/bin/true"]
    if rt == "nsrun-cli":
        return [nsrun, "run", "--rm", "--rootfs", rootfs, "--memory", "64m", "--pids-limit", "100", "/bin/true"]
    return ["crun", "--root", os.path.join(tmp, "crun-root"), "--cgroup-manager=disabled",
            "run", "--bundle", bundle, f"dd{i}"]


def one(rt, i):
    env = dict(os.environ, NSRUN_ROOT=state)
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(cmd(rt, i), stdout=devnull, stderr=subprocess.PIPE, env=env)
    _, status = os.waitpid(p.pid, 0)
    t1 = time.perf_counter_ns()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{rt} failed ({code}): {p.stderr.read().decode()}")
    p.stderr.close()
    return (t1 - t0) / 1e6


rts = ["nsrun-bundle", "nsrun-cli", "crun"]
for rt in rts:
    one(rt, "w")
res = {rt: [] for rt in rts}
for i in range(n):
    for rt in rts:
        res[rt].append(one(rt, i))


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


rss = {rt: [] for rt in rts}
for i in range(min(n, 20)):
    for rt in rts:
        out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd(rt, f"m{i}"), stdout=devnull,
                             stderr=subprocess.PIPE, env=dict(os.environ, NSRUN_ROOT=state), check=True)
        rss[rt].append(int(out.stderr.decode().split()[-1]))
med = {rt: statistics.median(res[rt]) for rt in rts}
print(f"{n} containers per runtime, interleaved; load average {os.getloadavg()[0]:.1f}")
print(f"{'runtime':13} {'median':>8} {'p10':>8} {'p90':>8} {'vs crun':>8} {'RSS med':>8}")
for rt in rts:
    ts = res[rt]
    print(f"{rt:13} {med[rt]:8.2f} {q(ts, .1):8.2f} {q(ts, .9):8.2f} {med[rt] / med['crun']:7.2f}x {statistics.median(rss[rt]):8.0f}")
shutil.rmtree(tmp, ignore_errors=True)
