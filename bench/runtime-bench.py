#!/usr/bin/env python3
"""nsboot-runtime vs runc vs crun, interleaved round-robin in one run.

    bench/runtime-bench.py NSBOOT_RUNTIME [ITERS] [--podman]

Bundle: busybox-static, `/bin/true`, Docker's default capability set and
seccomp profile (crates/nsboot-oci/tests/fixtures/docker-default-seccomp.json),
a cgroup with memory (256 MiB) and pids (1024) limits at a fresh absolute
cgroupsPath per run. crun refuses every cgroup on this hybrid host, so it
runs with --cgroup-manager=disabled (strictly less work). Shapes:
  run      `<rt> run` of the bundle (create+start+wait+delete in one call)
  csd      `<rt> create` + `<rt> start` + wait for exit + `<rt> delete`
  podman   `podman --runtime <rt> run --rm IMG true` (with --podman)
Reports medians (ms), ratios to crun and runc, and the peak RSS of the
runtime process (ru_maxrss of wait4, KiB, median).
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def bundle(tmp, ours):
    b = os.path.join(tmp, "bundle")
    os.makedirs(os.path.join(b, "rootfs", "bin"))
    for d in ["proc", "sys", "dev", "etc", "tmp"]:
        os.makedirs(os.path.join(b, "rootfs", d))
    shutil.copy("/bin/busybox", os.path.join(b, "rootfs/bin/busybox"))
    os.symlink("busybox", os.path.join(b, "rootfs/bin/true"))
    subprocess.run([ours, "spec", "--bundle", b], check=True)
    with open(os.path.join(b, "config.json")) as f:
        c = json.load(f)
    with open(os.path.join(HERE, "../crates/nsboot-oci/tests/fixtures/docker-default-seccomp.json")) as f:
        seccomp = json.load(f)
    c["process"]["terminal"] = False
    c["process"]["args"] = ["/bin/true"]
    c["process"]["noNewPrivileges"] = False
    c["process"]["capabilities"] = {k: DOCKER_CAPS for k in ["bounding", "effective", "permitted"]}
    c["linux"]["seccomp"] = seccomp
    c["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 1024}}
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    # crun cannot mount cgroupfs on a hybrid host: no /sys/fs/cgroup mount for anyone.
    c["mounts"] = [m for m in c["mounts"] if m["type"] != "cgroup"]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(c, f)
    return b


def set_cgroup(b, path):
    p = os.path.join(b, "config.json")
    with open(p) as f:
        c = json.load(f)
    c["linux"]["cgroupsPath"] = path
    with open(p, "w") as f:
        json.dump(c, f)


def timed(argv):
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{argv}: exit {p.returncode}: {p.stderr.read().decode()}")
    return dt, ru.ru_maxrss


def main():
    if os.environ.get("NSBOOT_RTBENCH_NS") != "1":
        # crun refuses to run on this host while the unified hierarchy has
        # a controller enabled (hugetlb, enabled by cgroup users here), even
        # with --cgroup-manager=disabled: all three runtimes run in a private
        # mount namespace without /sys/fs/cgroup/unified (v1 hierarchies
        # intact, so the memory and pids limits are the same for ours and runc).
        if os.path.ismount("/sys/fs/cgroup/unified"):
            os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                                   'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"', sys.executable] + sys.argv,
                       dict(os.environ, NSBOOT_RTBENCH_NS="1"))
    ours = os.path.abspath(sys.argv[1])
    iters = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 100
    podman = "--podman" in sys.argv
    tmp = tempfile.mkdtemp(prefix="nsboot-rtbench.")
    try:
        b = bundle(tmp, ours)
        rts = {
            "ours": [ours, "--root", os.path.join(tmp, "ours")],
            "crun": ["crun", "--cgroup-manager=disabled", "--root", os.path.join(tmp, "crun")],
            "runc": ["runc", "--root", os.path.join(tmp, "runc")],
        }
        res = {s: {r: [] for r in rts} for s in ["run", "csd"]}
        rss = {r: [] for r in rts}
        n = 0
        for i in range(iters):
            for r, base in rts.items():
                n += 1
                set_cgroup(b, f"/nsboot-rtbench/{r}-{n}")
                dt, _ = timed(base + ["run", "--bundle", b, f"b{n}"])
                res["run"][r].append(dt)
                n += 1
                set_cgroup(b, f"/nsboot-rtbench/{r}-{n}")
                t = time.perf_counter()
                timed(base + ["create", "--bundle", b, f"b{n}"])
                timed(base + ["start", f"b{n}"])
                while True:  # wait for exit (state says stopped)
                    st = subprocess.run(base + ["state", f"b{n}"], capture_output=True, text=True)
                    if '"stopped"' in st.stdout:
                        break
                timed(base + ["delete", f"b{n}"])
                res["csd"][r].append(time.perf_counter() - t)
        # Peak RSS in a separate pass: ru_maxrss of a child of Python counts
        # Python's pages before the exec, so GNU time (~1 MiB) starts it.
        for i in range(10):
            for r, base in rts.items():
                n += 1
                set_cgroup(b, f"/nsboot-rtbench/{r}-{n}")
                out = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M"] + base + ["run", "--bundle", b, f"b{n}"],
                                     capture_output=True, text=True, check=True)
                rss[r].append(int(out.stderr.strip().rsplit("maxrss=", 1)[1]))
        for c in os.listdir("/sys/fs/cgroup"):
            d = os.path.join("/sys/fs/cgroup", c, "nsboot-rtbench")
            if os.path.isdir(d):
                for s in os.listdir(d):
                    if os.path.isdir(os.path.join(d, s)):
                        os.rmdir(os.path.join(d, s))
                os.rmdir(d)
        print(f"iterations: {iters} per runtime and shape, interleaved")
        print("| shape | nsboot-runtime ms | crun ms | runc ms | ours/crun | ours/runc |")
        print("|---|---|---|---|---|---|")
        for s in ["run", "csd"]:
            m = {r: statistics.median(v) * 1000 for r, v in res[s].items()}
            print(f"| {s} | {m['ours']:.2f} | {m['crun']:.2f} | {m['runc']:.2f} | {m['ours']/m['crun']:.2f} | {m['ours']/m['runc']:.2f} |")
        print("| peak RSS of `run` (KiB, median of 10, GNU time %M) | " + " | ".join(str(int(statistics.median(rss[r]))) for r in ["ours", "crun", "runc"]) + " | | |")
        if podman:
            pod(ours, tmp, max(10, iters // 5))
    finally:
        subprocess.run(["umount", "-R", tmp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


def pod(ours, tmp, iters):
    conf = os.path.join(tmp, "containers.conf")
    with open(conf, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:4096", "nproc=1024:4096"]\n'
                '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    env = dict(os.environ, CONTAINERS_CONF=conf)
    p = ["podman", "--root", os.path.join(tmp, "st"), "--runroot", os.path.join(tmp, "rr"), "--storage-driver", "vfs"]
    img = os.path.join(tmp, "img")
    subprocess.run(["tar", "-C", os.path.join(tmp, "bundle", "rootfs"), "-cf", img + ".tar", "."], check=True)
    subprocess.run(p + ["import", "-q", img + ".tar", "localhost/rtbench:1"], check=True, env=env, stdout=subprocess.DEVNULL)
    rts = {"ours": ours, "runc": "/usr/sbin/runc"}
    res = {r: [] for r in rts}
    for i in range(iters):
        for r, path in rts.items():
            t = time.perf_counter()
            subprocess.run(p + ["--runtime", path, "run", "--rm", "--network", "none", "localhost/rtbench:1", "true"],
                           check=True, env=env)
            res[r].append(time.perf_counter() - t)
    m = {r: statistics.median(v) * 1000 for r, v in res.items()}
    print(f"\npodman run --rm --network none IMG true, {iters} each, interleaved (crun refuses podman on this host)")
    print(f"| nsboot-runtime ms | runc ms | ours/runc |\n|---|---|---|\n| {m['ours']:.1f} | {m['runc']:.1f} | {m['ours']/m['runc']:.2f} |")
    subprocess.run(p + ["rmi", "-af"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
