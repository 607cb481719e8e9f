//! The rootfs stage: turn a bundle's rootfs into the container's `/`, as
//! runc's `prepareRootfs`/`finalizeRootfs` do, driven by an OCI runtime
//! spec.
//!
//! [`RootfsPlan`] validates the spec completely before anything is
//! mounted; [`prepare`] executes it in seven steps:
//!
//! 1. `/` made recursively slave (or `linux.rootfsPropagation`), the
//!    rootfs's parent mount made private if shared, the rootfs rbind-ed
//!    onto itself;
//! 2. every entry of `mounts`, in order;
//! 3. (throughout) every path resolved in-root with `openat2` and every
//!    mount placed on the resolved fd — see [`path`];
//! 4. /dev: device nodes, ptmx, the /proc/self/fd links (when `/dev` is a
//!    configured mount, as in runc);
//! 5. pivot_root (or MS_MOVE + chroot with `no_pivot`), chdir to
//!    `process.cwd` (created if missing);
//! 6. read-only tmpfs mounts, `root.readonly`, `linux.readonlyPaths`,
//!    `linux.maskedPaths`;
//! 7. hostname and domainname.
//!
//! # Hostname and UTS namespaces
//! A spec that sets `hostname`/`domainname` without a `uts` entry in
//! `linux.namespaces` is rejected by the plan (runc's validator does the
//! same). Whether the caller really unshared one cannot be told reliably
//! from inside, so `prepare` simply calls sethostname and reports its
//! failure as [`RootfsError::Hostname`].
//!
//! # Requirements on the caller
//! Single-threaded, already in a new mount namespace (and the other
//! namespaces the spec lists). `prepare` refuses to run in PID 1's mount
//! namespace unless it is PID 1 itself (initramfs).

mod cgroup;
mod copyup;
mod device;
mod error;
mod mask;
mod mount;
mod path;
mod pivot;
mod plan;
mod procfs;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount as sys_mount, MsFlags};
use nix::sys::stat::Mode;

pub use copyup::{copy_tree, CopyStats};
pub use error::{ConfigError, ConfigProblem, Op, Refusal, Result, RootfsError};
pub use plan::RootfsPlan;
use plan::{MountKind, MountPlan};

use procfs::ProcHandle;

/// Options that do not come from config.json.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootfsOptions {
    /// Use MS_MOVE + chroot instead of pivot_root (initramfs, runc's
    /// `--no-pivot`).
    pub no_pivot: bool,
    /// Base directory for a relative `root.path` and relative bind mount
    /// sources; the current directory when `None`.
    pub bundle: Option<PathBuf>,
}

/// State shared by the steps.
pub(crate) struct Ctx<'a> {
    pub plan: &'a RootfsPlan,
    root: OwnedFd,
    /// (st_dev, st_ino) of `root`, to refuse destinations resolving to it;
    /// taken the first time a target needs the check (see `root_id`).
    root_id: std::cell::Cell<Option<(u64, u64)>>,
    /// /sys/fs/cgroup is cgroup2 (checked before step 1 when the plan has
    /// a cgroup mount).
    pub cgroup2_host: bool,
    /// /proc/self/mountinfo as read before step 1 (the host's mounts) for
    /// a propagation that may leave the rootfs's parent shared; empty
    /// otherwise (the cgroup step reads it itself if it must).
    pub host_mounts: Vec<procfs::MountInfo<'a>>,
    pub proc: ProcHandle,
    /// Known to be in a user namespace (the spec asks for one, or a probe
    /// said so); probed only where it matters (see [`Ctx::in_userns`]).
    userns: std::cell::Cell<Option<bool>>,
    /// mknod was refused (EPERM) once: the remaining nodes are bind-mounted
    /// without trying again.
    pub mknod_refused: std::cell::Cell<bool>,
    /// The root of the filesystem just mounted at a destination that the
    /// next mounts go directly below (`/dev` for `/dev/pts`, `/dev/shm`,
    /// …): their directories are made in it without resolving from the
    /// root again. See [`mount::fresh_child`].
    pub fresh: std::cell::RefCell<Option<mount::Fresh>>,
}

impl Ctx<'_> {
    /// `O_PATH` fd of the rbind-ed rootfs: the root of every resolution.
    pub(crate) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// (st_dev, st_ino) of the rootfs's root.
    pub(crate) fn root_id(&self) -> Result<(u64, u64)> {
        if let Some(id) = self.root_id.get() {
            return Ok(id);
        }
        let st = nix::sys::stat::fstat(&self.root)
            .map_err(|e| RootfsError::Root { op: Op::Stat, path: self.plan.root.clone(), errno: e })?;
        self.root_id.set(Some((st.st_dev, st.st_ino)));
        Ok((st.st_dev, st.st_ino))
    }

    /// Are we in a user namespace? True when the spec creates one;
    /// otherwise /proc/self/uid_map is read, once, the first time a step
    /// needs to know (a refused sysfs mount). Device nodes do not ask:
    /// they try mknod and bind-mount when it is refused.
    pub(crate) fn in_userns(&self) -> Result<bool> {
        if let Some(v) = self.userns.get() {
            return Ok(v);
        }
        let v = self.proc.in_userns()?;
        self.userns.set(Some(v));
        Ok(v)
    }

    /// Device nodes are bind-mounted rather than made: in a user namespace
    /// of the spec's, or once mknod has been refused.
    pub(crate) fn bind_devices(&self) -> bool {
        self.userns.get() == Some(true) || self.mknod_refused.get()
    }
}

/// Run the rootfs stage. Must run inside a NEW mount namespace (and a new
/// UTS namespace if hostname/domainname are set), single-threaded.
/// `warn` receives non-fatal warnings (e.g. "linux.mountLabel ignored").
pub fn prepare(plan: &RootfsPlan, warn: &mut dyn FnMut(&str)) -> Result<()> {
    prepare_traced(plan, warn, &|_| {})
}

/// [`prepare`] with a fault-injection hook: `at` is called with the name of
/// each step boundary (`rootfs-after-root`, `rootfs-between-mounts`,
/// `rootfs-after-mounts`, `rootfs-after-pivot`, `rootfs-after-mask`); the
/// stage machine passes [`nsboot::stages::BootEnv::fault_point`] (through
/// the rootfs plugin).
pub fn prepare_traced(plan: &RootfsPlan, warn: &mut dyn FnMut(&str), at: &dyn Fn(&str)) -> Result<()> {
    if plan.mount_label.is_some() {
        warn("linux.mountLabel ignored: nsboot does not apply SELinux labels");
    }
    let proc = ProcHandle::open()?;
    proc.check_new_mount_ns()?;
    let userns = std::cell::Cell::new(plan.userns.then_some(true));

    // Step 1.
    // Reading mountinfo is the dearest single call here (the kernel
    // formats every mount): only for a propagation that may leave the
    // rootfs's parent shared. (The cgroup step looks for the v1
    // hierarchies where every v1 host has them first; see
    // cgroup::hierarchies.)
    let cgroup2_host = match plan.mounts.iter().find(|m| m.kind == MountKind::Cgroup) {
        Some(m) => cgroup::host_is_unified(m)?,
        None => false,
    };
    let mountinfo = if plan.quiet_propagation() { String::new() } else { proc.mountinfo()? };
    let host_mounts = procfs::parse_mountinfo(&mountinfo);
    prepare_root(plan, &host_mounts)?;
    let root = nix::fcntl::open(&plan.root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| RootfsError::Root { op: Op::Open, path: plan.root.clone(), errno: e })?;
    let ctx = Ctx {
        plan,
        root,
        root_id: Default::default(),
        cgroup2_host,
        host_mounts,
        proc,
        userns,
        mknod_refused: Default::default(),
        fresh: Default::default(),
    };
    at("rootfs-after-root");

    // New filesystems are mounted with fchdir(target) + mount(".") (see
    // mount::fs_mount), so steps 2-5 move the cwd; if one of them fails,
    // the caller gets its cwd back.
    let caller_cwd = nix::fcntl::open(".", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok();
    let r = mount_and_pivot(&ctx, at);
    if r.is_err() {
        if let Some(c) = &caller_cwd {
            let _ = nix::unistd::fchdir(c);
        }
    }
    drop(caller_cwd);
    r?;
    // `ctx.root` is an fd of the rbind that is now `/` (pivot_root and
    // MS_MOVE keep the mount, only its place changes): it is the new root
    // for the in-root resolutions below, no need to open "/" again.
    let new_root = ctx.root();
    // The cwd is made before step 6 (which may make `/` read-only) and
    // entered after it (masking a directory moves the cwd). The pivot ends
    // with chdir("/"): nothing to make for cwd "/".
    let cwd = if plan.cwd != Path::new("/") {
        let fd = path::mkdir_all(new_root, &plan.cwd, 0o755)
            .map_err(|(op, e)| RootfsError::Cwd { op, path: plan.cwd.clone(), errno: e })?;
        Some(fd)
    } else {
        None
    };

    // Step 6.
    let moved_cwd = mask::finalize(plan, new_root)?;
    match &cwd {
        Some(fd) => nix::unistd::fchdir(fd),
        None if moved_cwd => nix::unistd::fchdir(new_root),
        None => Ok(()),
    }
    .map_err(|e| RootfsError::Cwd { op: Op::Chdir, path: plan.cwd.clone(), errno: e })?;
    drop(cwd);
    at("rootfs-after-mask");

    // Step 7.
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(|e| RootfsError::Hostname { name: h.clone(), errno: e })?;
    }
    if let Some(d) = &plan.domainname {
        nsboot::sys::fs::setdomainname(d.as_bytes()).map_err(|e| RootfsError::Domainname { name: d.clone(), errno: e })?;
    }
    Ok(())
}

/// Mount `m` into the rootfs (step 2). Dispatched here, over [`mount`]'s
/// primitives, so that `mount` does not depend on the modules built on it
/// (`cgroup`, `copyup`).
fn mount_one(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    // The fresh root is only good for the mounts directly below it that
    // follow it; any other mount could cover it.
    let fresh = ctx.fresh.borrow_mut().take().filter(|f| m.dest.parent() == Some(f.dest.as_path()));
    match m.kind {
        MountKind::Proc | MountKind::Sysfs => mount::mount_special(ctx, m),
        MountKind::Bind => mount::bind(ctx, m, &m.source, m.flags, &m.dest),
        MountKind::Cgroup => cgroup::mount_cgroup(ctx, m),
        MountKind::Tmpfs if m.copyup => copyup::mount_tmpfs_copyup(ctx, m),
        MountKind::Tmpfs | MountKind::Devpts | MountKind::Mqueue | MountKind::Overlay | MountKind::Cgroup2 => {
            mount::mount_fs(ctx, m, fresh)
        }
    }
}

/// Steps 2 to 5.
fn mount_and_pivot(ctx: &Ctx<'_>, at: &dyn Fn(&str)) -> Result<()> {
    let plan = ctx.plan;
    // Step 2 (and 3, in every resolution).
    for (i, m) in plan.mounts.iter().enumerate() {
        mount_one(ctx, m)?;
        if i == 0 {
            at("rootfs-between-mounts");
        }
    }
    ctx.fresh.borrow_mut().take();
    at("rootfs-after-mounts");
    // Step 4.
    if plan.setup_dev {
        device::setup_dev(ctx)?;
    }
    // Step 5.
    if plan.no_pivot {
        pivot::move_root(ctx)?;
    } else {
        pivot::pivot_root(ctx)?;
    }
    at("rootfs-after-pivot");
    Ok(())
}

fn root_err(op: Op, path: &Path, errno: nix::errno::Errno) -> RootfsError {
    RootfsError::Root { op, path: path.to_path_buf(), errno }
}

/// Step 1: propagation of `/`, private parent if shared (pivot_root
/// refuses a shared parent, and the rbind must not propagate out; after a
/// recursive slave/private propagation nothing is shared and the parent is
/// not looked up), then
/// the rbind of the rootfs onto itself so that it is a mount point.
fn prepare_root(plan: &RootfsPlan, mounts: &[procfs::MountInfo<'_>]) -> Result<()> {
    let none = None::<&str>;
    sys_mount(none, "/", none, plan.propagation, none).map_err(|e| root_err(Op::Propagation, Path::new("/"), e))?;
    // After a recursive slave/private change nothing is shared any more
    // (and `mounts` holds only what the cgroup step needs).
    let parent = mounts
        .iter()
        .filter(|m| !plan.quiet_propagation() && plan.root.starts_with(&m.mountpoint))
        .max_by_key(|m| m.mountpoint.as_os_str().len());
    if let Some(p) = parent {
        // `mounts` was read before the propagation change above: a shared
        // propagation has just made the parent shared if it reached it.
        let made_shared = plan.propagation.contains(MsFlags::MS_SHARED)
            && (plan.propagation.contains(MsFlags::MS_REC) || p.mountpoint == Path::new("/"));
        if made_shared || p.optional().any(|o| o.starts_with("shared:")) {
            sys_mount(none, p.mountpoint.as_ref(), none, MsFlags::MS_PRIVATE, none)
                .map_err(|e| root_err(Op::Propagation, &p.mountpoint, e))?;
        }
    }
    sys_mount(Some(&plan.root), &plan.root, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
        .map_err(|e| root_err(Op::Bind, &plan.root, e))
}
