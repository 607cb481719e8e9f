#!/usr/bin/env python3
"""nsrun import vs podman load of the same ~100 MB docker-archive.

Usage (root): bench/nsrun_import_vs_podman.py NSRUN_BINARY [N] [MB]

The archive is made here (no network): two uncompressed layers, a busybox
base and MB megabytes of incompressible files in 1 MiB files, plus the
config and manifest.json of `docker save`. Each round imports it into an
empty store of each tool (nsrun: NSRUN_ROOT; podman: --root/--runroot of
its own, overlay driver, no pull), interleaved, N rounds; the stores live
on /dev/shm (tmpfs) like the archive, so the disk is out of the figures.
Prints median / min wall time per import.
"""
import hashlib, io, json, os, shutil, statistics, subprocess, sys, tarfile, tempfile, time

nsrun = os.path.abspath(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
mb = int(sys.argv[3]) if len(sys.argv) > 3 else 100
tmp = tempfile.mkdtemp(prefix="nsrun-bench-import-", dir="/dev/shm")


def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode in files:
            if data is None:
                ti = tarfile.TarInfo(name)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = len(data), mode
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


bb = open("/bin/busybox", "rb").read()
base = layer([("bin", None, 0), ("bin/busybox", bb, 0o755), ("etc", None, 0), ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)])
data = layer([("data", None, 0)] + [(f"data/f{i:04}", os.urandom(1 << 20), 0o644) for i in range(mb)])
layers = [base, data]
diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/busybox", "sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cfg_name = hashlib.sha256(config).hexdigest() + ".json"
names = [d.split(":")[1] + "/layer.tar" for d in diff_ids]
manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["bench/big:latest"], "Layers": names}]).encode()
archive = os.path.join(tmp, "big.tar")
with tarfile.open(archive, "w") as t:
    for name, body in [("manifest.json", manifest), (cfg_name, config)] + list(zip(names, layers)):
        ti = tarfile.TarInfo(name)
        ti.size = len(body)
        t.addfile(ti, io.BytesIO(body))
size = os.path.getsize(archive) / 1e6


def timed(cmd, env=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - t0


res = {"nsrun import": [], "podman load": []}
for i in range(n + 1):
    st = os.path.join(tmp, f"nsrun-{i}")
    t_ns = timed([nsrun, "import", archive, "bench/big"], env=dict(os.environ, NSRUN_ROOT=st))
    pr, prr = os.path.join(tmp, f"podman-{i}"), os.path.join(tmp, f"podman-run-{i}")
    t_pm = timed(["podman", "--root", pr, "--runroot", prr, "--storage-driver", "overlay", "load", "-q", "-i", archive])
    subprocess.run(["podman", "--root", pr, "--runroot", prr, "--storage-driver", "overlay", "system", "reset", "-f"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(st, ignore_errors=True)
    shutil.rmtree(pr, ignore_errors=True)
    shutil.rmtree(prr, ignore_errors=True)
    if i > 0:  # round 0 is the warm-up
        res["nsrun import"].append(t_ns)
        res["podman load"].append(t_pm)
print(f"archive {size:.0f} MB (docker-archive, 2 uncompressed layers), {n} rounds, load average {os.getloadavg()[0]:.1f}")
base_t = statistics.median(res["podman load"])
for k, v in res.items():
    print(f"{k:13} median {statistics.median(v) * 1000:8.0f} ms  min {min(v) * 1000:8.0f} ms  {statistics.median(v) / base_t:.2f}x")
shutil.rmtree(tmp, ignore_errors=True)
