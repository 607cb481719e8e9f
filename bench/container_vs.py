#!/usr/bin/env python3
"""Container create-to-exec of /bin/true: nsboot_oci::container (through
examples/oci_container, `run`) vs crun 1.8.1 and runc 1.1.5 (Debian),
interleaved, same busybox-static bundle with Docker's default capabilities,
no_new_privs, Docker's default seccomp profile (the moby fixture converted
as Docker does for amd64: x86_64 + x86 + x32) and a cgroup with
memory (256 MiB) and pids (64) limits.

Usage (root): bench/container_vs.py OCI_CONTAINER_BINARY [N]

crun 1.8 refuses a hybrid cgroup host, so on one the script re-runs itself
in a private mount namespace with /sys/fs/cgroup/unified unmounted: every
runtime then sees the same cgroup v1 layout (nsboot then has no cgroup2 to
clone3 into and writes cgroup.procs, as runc and crun do). "crun-nocg" is
crun --cgroup-manager=disabled: no cgroup (strictly less work).

Order: interleaved, shuffled every round (see below). Also nsboot
variants, interleaved with the rest, whose median differences
give the cost of each step: bare (no caps, seccomp, cgroup, hook), +caps,
+caps+seccomp, +caps+seccomp+cgroup (= the full config), full + a prestart
hook (/bin/true).

Prints median / p10 / p90 wall time (Popen to wait, stderr drained) and
the median peak RSS (GNU time %M in a separate pass of up to 15 runs).
"""
import copy, json, os, random, shutil, statistics, subprocess, sys, tempfile, time

if os.path.ismount("/sys/fs/cgroup/unified") and not os.environ.get("NSBOOT_BENCH_INNER"):
    os.environ["NSBOOT_BENCH_INNER"] = "1"
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                          'umount /sys/fs/cgroup/unified && exec "$@"', "sh", sys.executable] + sys.argv)
cli = os.path.abspath(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
here = os.path.dirname(os.path.abspath(__file__))
fixture = os.path.join(here, "..", "crates/nsboot-oci/tests/fixtures/docker-default-seccomp.json")
tmp = tempfile.mkdtemp(prefix="nsboot-ct-bench-")
# Runtime state (nsboot's state dirs, crun's and runc's --root) on tmpfs,
# where runtimes keep it (/run/runc, /run/crun): creating files on this
# VM's ext4 /tmp costs 1-5 ms each under load.
run_root = tempfile.mkdtemp(prefix="nsboot-ct-bench-", dir="/run")

DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

def kernel_at_least(v):
    rel = os.uname().release.split("-")[0].split(".")
    want = [int(x) for x in v.split(".")[:2]]
    return [int(x) for x in rel[:2]] >= want

def docker_seccomp():
    raw = json.load(open(fixture))
    out = []
    for call in raw["syscalls"]:
        inc, exc = call.get("includes", {}), call.get("excludes", {})
        if not all(c in DOCKER_CAPS for c in inc.get("caps", [])):
            continue
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if inc.get("minKernel") and not kernel_at_least(inc["minKernel"]):
            continue
        if any(c in DOCKER_CAPS for c in exc.get("caps", [])) or "amd64" in exc.get("arches", []):
            continue
        c = {"names": call["names"], "action": call["action"]}
        for k in ["args", "errnoRet"]:
            if k in call:
                c[k] = call[k]
        out.append(c)
    am = next(m for m in raw["archMap"] if m["architecture"] == "SCMP_ARCH_X86_64")
    return {"defaultAction": raw["defaultAction"], "defaultErrnoRet": raw.get("defaultErrnoRet"),
            "architectures": [am["architecture"]] + am["subArchitectures"], "syscalls": out}

def make_bundle(name, edit):
    bundle = os.path.join(tmp, name)
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
    cfg["root"]["readonly"] = False
    edit(cfg)
    json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))
    return bundle

def caps(cfg):
    cfg["process"]["capabilities"] = {k: DOCKER_CAPS for k in ["bounding", "effective", "permitted"]}
    cfg["process"]["noNewPrivileges"] = True
def seccomp(cfg):
    cfg["linux"]["seccomp"] = docker_seccomp()
def limits(cfg):
    cfg["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 64}}
def hook(cfg):
    cfg["hooks"] = {"prestart": [{"path": "/bin/true"}]}
def bare(cfg):
    cfg["process"].pop("capabilities", None)
    cfg["process"]["noNewPrivileges"] = False

full = make_bundle("full", lambda c: (caps(c), seccomp(c), limits(c)))
variants = {
    "nsboot bare": make_bundle("bare", bare),
    "nsboot +caps": make_bundle("caps", caps),
    "nsboot +caps+seccomp": make_bundle("capsec", lambda c: (caps(c), seccomp(c))),
    "nsboot +hook": make_bundle("hook", lambda c: (caps(c), seccomp(c), limits(c), hook(c))),
}
devnull = open(os.devnull, "w")

def cmd(rt, i):
    if rt == "nsboot":
        return [cli, "run", os.path.join(run_root, f"ns-state-{i}"), full, f"bns{i}"]
    if rt.startswith("nsboot "):
        return [cli, "run", os.path.join(run_root, f"ns-state-{rt[7:]}-{i}"), variants[rt], f"bv{i}"]
    if rt == "crun-nocg":
        return ["crun", "--root", os.path.join(run_root, "crun-nocg-root"), "--cgroup-manager=disabled",
                "run", "--bundle", full, f"bn{i}"]
    return [rt, "--root", os.path.join(run_root, rt + "-root"), "run", "--bundle", full, f"b{rt}{i}"]

def one(rt, i, env=None):
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(cmd(rt, i), stdout=devnull, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read().decode(errors="replace")
    p.wait()
    dt = (time.perf_counter_ns() - t0) / 1e6
    if p.returncode != 0:
        sys.exit(f"{rt} run {i} failed ({p.returncode}): {err}")
    return (dt, err) if env else dt

def peak_rss(rt, i):
    """GNU time's %M (wait4: the runtime and the children it reaped), KiB;
    a separate pass: a Python child's ru_maxrss would count the Python
    image it was forked from."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd(rt, i), stdout=devnull,
                         stderr=subprocess.PIPE, check=True).stderr.decode()
    return int(out.strip().splitlines()[-1])

runtimes = ["nsboot", "crun-nocg", "crun", "runc"] + list(variants)
times = {rt: [] for rt in runtimes}
rss = {rt: [] for rt in runtimes}
for rt in runtimes:
    one(rt, 999999)  # warm-up (page cache, seccomp cache)
# A new random order every round: each runtime's run pays part of the
# previous run's asynchronous teardown (the network namespace is destroyed
# by a kernel worker after the process exits, and the next unshare of one
# waits for it); a fixed order would charge one runtime's teardown to the
# same neighbour every time.
rng = random.Random(16)
for i in range(n):
    order_i = runtimes[:]
    rng.shuffle(order_i)
    for rt in order_i:
        times[rt].append(one(rt, i))
for i in range(min(n, 15)):
    for rt in runtimes:
        rss[rt].append(peak_rss(rt, 100000 + i))

def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]

base = {k: statistics.median(times[k]) for k in runtimes}
print(f"{n} containers per runtime, interleaved; load average {os.getloadavg()[0]:.1f}")
print("| runtime | median | p10 | p90 | vs crun-nocg | vs runc | peak RSS (median) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for rt in runtimes:
    m = base[rt]
    print(f"| {rt} | {m:.2f} ms | {q(times[rt], .1):.2f} ms | {q(times[rt], .9):.2f} ms | "
          f"{m / base['crun-nocg']:.2f}× | {m / base['runc']:.2f}× | {statistics.median(rss[rt]):.0f} KiB |")
steps = [("capabilities + no_new_privs", "nsboot +caps", "nsboot bare"),
         ("seccomp (Docker profile, load + build or cache)", "nsboot +caps+seccomp", "nsboot +caps"),
         ("cgroup create + join + remove (memory, pids)", "nsboot", "nsboot +caps+seccomp"),
         ("one prestart hook (/bin/true)", "nsboot +hook", "nsboot")]
print("\n| step | median difference |")
print("| --- | ---: |")
for name, a, b in steps:
    print(f"| {name} | {base[a] - base[b]:+.2f} ms |")

# Step costs from the runtime's own clock (NSBOOT_OCI_TIMES=1: the time of
# each runtime-side step), medians over interleaved runs of the variants;
# "full, no cache" compiles the seccomp profile every time.
m = min(n, 40)
cols = ["nsboot bare", "nsboot +caps", "nsboot +caps+seccomp", "nsboot", "nsboot +hook", "nsboot (no seccomp cache)"]
steps_t = {c: {} for c in cols}
order = []
for i in range(m):
    cols_i = cols[:]
    rng.shuffle(cols_i)
    for c in cols_i:
        env = dict(os.environ, NSBOOT_OCI_TIMES="1")
        rt = c
        if c == "nsboot (no seccomp cache)":
            env["NSBOOT_OCI_SECCOMP_CACHE"] = "off"
            rt = "nsboot"
        _, err = one(rt, 200000 + i, env)
        for line in err.splitlines():
            if line.startswith("nsboot-oci time "):
                name, us = line[len("nsboot-oci time "):].rsplit(" ", 1)
                if name not in order:
                    order.append(name)
                steps_t[c].setdefault(name, []).append(int(us) / 1000)
print(f"\nruntime-side steps (NSBOOT_OCI_TIMES=1), median ms of {m} runs each, interleaved:")
print("| step | " + " | ".join(cols) + " |")
print("| --- |" + " ---: |" * len(cols))
for name in order:
    row = [f"{statistics.median(steps_t[c][name]):.2f}" if steps_t[c].get(name) else "–" for c in cols]
    print(f"| {name} | " + " | ".join(row) + " |")
shutil.rmtree(tmp, ignore_errors=True)
shutil.rmtree(run_root, ignore_errors=True)
