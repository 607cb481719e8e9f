//! Process-level calls the stage machine needs and nix lacks or makes
//! awkward: raw `clone` with fork semantics, `_exit`, `getenv`, raw-fd
//! borrowing, `dup3` onto a chosen number, `execveat` of an fd.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What [`clone_parent`] returned in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// We are the new child.
    Child,
    /// We are the caller; the child has this pid.
    Parent(Pid),
}

/// Proof that the process is single-threaded. Created only by
/// [`SingleThreaded::check`], which the entry points call before any thread
/// could exist (ELF constructor, `nsexec`, first thing in a Rust `main`).
#[derive(Debug)]
pub struct SingleThreaded(());

impl SingleThreaded {
    /// The token only if the process has exactly one thread: procfs gives
    /// `/proc/self/task` a link count of 2 + the number of threads (one
    /// `stat`, cheaper than parsing `/proc/self/status`).
    pub fn check() -> Option<SingleThreaded> {
        let st = nix::sys::stat::lstat("/proc/self/task").ok()?;
        (st.st_nlink == 3).then_some(SingleThreaded(()))
    }
}

/// `clone(flags | SIGCHLD)` with fork semantics (no new stack, no
/// setjmp/longjmp): the child continues from this call on a copy-on-write
/// copy of the caller's stack, exactly as after `fork(2)`.
///
/// `flags` is typically `CLONE_PARENT` (the child becomes a sibling of the
/// caller, so the program that started stage-0 reaps it).
///
/// The `SingleThreaded` token makes this safe: in the child only the
/// calling thread exists, glibc's fork handlers do not run, and no lock can
/// be held by a thread that vanished. A forked child inherits the property,
/// so stage children pass the same token on.
pub fn clone_parent(_proof: &SingleThreaded, flags: libc::c_int) -> Result<Forked, Errno> {
    let all = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: SYS_clone on x86_64/aarch64 takes (flags, newsp, parent_tid,
    // child_tid, tls). newsp = 0 gives fork semantics; no CLONE_*TID or
    // CLONE_SETTLS flags are passed, so the pointer arguments are unused.
    // `_proof` shows the process is single-threaded, so the child's copy of
    // the address space holds no lock owned by another thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            all,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// The first 64 bytes of `struct clone_args` (CLONE_ARGS_SIZE_VER0),
/// the fields every clone3 kernel (≥ 5.3) knows.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// How [`clone_pidfd`] got its pidfd, for the debug log and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidfdSource {
    /// `clone3(CLONE_PIDFD)`: atomic with the child's creation.
    Clone3,
    /// clone3 missing or filtered: `clone` then `pidfd_open(child)`. Still
    /// exact: the child cannot have been reaped yet (with `CLONE_PARENT`
    /// only a caller reaping *any* child, `waitpid(-1)`, could).
    PidfdOpen,
    /// Neither (Linux < 5.3): no pidfd.
    None,
}

/// [`clone_parent`] that also returns a pidfd of the child (in the
/// parent): `clone3` with `CLONE_PIDFD` where the kernel has it, else
/// `clone` + `pidfd_open`. The child gets `(Forked::Child, None)`.
pub fn clone_pidfd(
    proof: &SingleThreaded,
    flags: libc::c_int,
) -> Result<(Forked, Option<OwnedFd>, PidfdSource), Errno> {
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: (flags as u32 as u64) | libc::CLONE_PIDFD as u64,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        // clone3 refuses an exit signal with CLONE_PARENT (EINVAL): the
        // kernel gives such a child the exit signal of the parent itself
        // (SIGCHLD for a stage-0 started by fork/exec).
        exit_signal: if flags & libc::CLONE_PARENT != 0 { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    // SAFETY: clone3(args, size) reads `args` (a live, fully initialised
    // CLONE_ARGS_SIZE_VER0 struct) and writes the new pidfd into `pidfd`
    // (live until after the call, in both processes: the child's copy of
    // the stack holds its own copy). stack = 0 gives fork semantics: the
    // child continues on a copy-on-write copy of this stack. `proof`
    // shows the process is single-threaded, as for `clone_parent`.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone3, std::ptr::addr_of!(args), std::mem::size_of::<CloneArgs>())
    };
    match ret {
        0 => return Ok((Forked::Child, None, PidfdSource::Clone3)),
        pid if pid > 0 => {
            // SAFETY: the kernel just stored a new fd (O_CLOEXEC is implied
            // by CLONE_PIDFD) in `pidfd`; nothing else owns it.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) };
            return Ok((Forked::Parent(Pid::from_raw(pid as libc::pid_t)), Some(fd), PidfdSource::Clone3));
        }
        _ => {}
    }
    match Errno::last() {
        // No clone3 (< 5.3), or a host seccomp profile that answers ENOSYS
        // or EPERM for it (Docker's does so, to push callers back to clone).
        Errno::ENOSYS | Errno::EPERM | Errno::E2BIG => {}
        e => return Err(e),
    }
    match clone_parent(proof, flags)? {
        Forked::Child => Ok((Forked::Child, None, PidfdSource::PidfdOpen)),
        Forked::Parent(pid) => match pidfd_open(pid) {
            Ok(fd) => Ok((Forked::Parent(pid), Some(fd), PidfdSource::PidfdOpen)),
            Err(_) => Ok((Forked::Parent(pid), None, PidfdSource::None)),
        },
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: signal exactly the process
/// the pidfd names; ESRCH once it has exited (even if its pid was reused).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal takes an fd, a signal number, a NULL
    // siginfo pointer (the kernel fills in a SI_USER one) and flags 0.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED | extra)`, retried on EINTR: the exit
/// of exactly the process the pidfd names (it must be our child). `None`
/// with `WNOHANG` while it still runs. ECHILD once it was reaped.
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>, extra: libc::c_int) -> Result<Option<Exit>, Errno> {
    const P_PIDFD: libc::idtype_t = 3;
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of the C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes one siginfo_t into `info`, live for the call.
        let r = unsafe { libc::waitid(P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED | extra) };
        if r < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        // SAFETY: after a successful waitid the kernel filled `info` as a
        // SIGCHLD siginfo, whose pid/status union members are the valid ones.
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match code {
            libc::CLD_EXITED => Exit::Code(status),
            _ => Exit::Signal(status),
        }));
    }
}

/// `_exit(2)`: leave without running atexit handlers or unwinding (a stage
/// child must never run the host program's exit path).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and never returns.
    unsafe { libc::_exit(code) }
}

/// `getenv(3)`, returned as an owned copy.
///
/// Reads the C environment, which is what a constructor has before Rust's
/// `std::env` is guaranteed usable.
pub fn getenv(name: &CStr) -> Option<CString> {
    // SAFETY: name is a valid NUL-terminated string. getenv is not
    // thread-safe against setenv; nsboot only calls it before threads exist
    // (constructor, stage children) or reads variables nobody mutates. The
    // returned pointer is copied at once.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: getenv returned a non-NULL pointer to a NUL-terminated
        // string inside the environment block.
        Some(unsafe { CStr::from_ptr(p) }.to_owned())
    }
}

/// Whether `fd` is an open descriptor (`fcntl(F_GETFD)`).
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; EBADF means closed.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Move `fd` onto the number `target` with `dup3(fd, target, O_CLOEXEC)`
/// and close the original. Used to install mount-source fds at the numbers
/// the caller reserved in `_LIBCONTAINER_MOUNT_FDS`.
pub fn install_fd_at(fd: OwnedFd, target: RawFd) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() == target {
        // Keep it open at that number; dropping would close it.
        std::mem::forget(fd);
        return Ok(());
    }
    // SAFETY: dup3 on a valid open fd; target may be any number: an fd that
    // was open there is atomically replaced, which is what the protocol asks
    // (the caller reserved the number with a placeholder).
    let r = unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: execute the file behind
/// `fd` (a sealed memfd copy of ourselves). Returns only on failure.
pub fn exec_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> Errno {
    use std::os::fd::AsRawFd;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let empty = c"";
    // SAFETY: argv_p and envp_p are NULL-terminated arrays of pointers to
    // NUL-terminated strings that outlive the call (owned by argv/envp);
    // fd is a valid open descriptor.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}

/// A copy of the current C environment (`environ`), for re-exec.
pub fn environ_copy() -> Vec<CString> {
    let mut out = Vec::new();
    // Entries come from NUL-terminated strings: no inner NUL, never fails.
    for_each_env(|entry| out.extend(CString::new(entry).ok()));
    out
}

/// `unsetenv(3)` for the LD_PRELOAD mode's scrubbing of `NSBOOT_*`.
pub fn unsetenv(name: &CStr) {
    // SAFETY: single-threaded callers only (constructor); name is a valid
    // C string.
    unsafe {
        libc::unsetenv(name.as_ptr());
    }
}

/// `write(2)` on a raw fd number the caller handed us (init pipe, log pipe,
/// stderr), looping over short writes and EINTR.
///
/// Memory-safe for any number: a closed or foreign fd only makes the call
/// fail (EBADF) or write where the caller pointed us.
pub fn write_all_raw(fd: RawFd, bytes: &[u8]) -> Result<(), Errno> {
    let mut rest = bytes;
    while !rest.is_empty() {
        // send(MSG_NOSIGNAL) so a vanished peer is EPIPE, not a SIGPIPE
        // death; ENOTSOCK (a pipe or file) falls back to write.
        // SAFETY: the pointer/length pair comes from a live slice.
        let mut n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n < 0 && Errno::last() == Errno::ENOTSOCK {
            // SAFETY: as above.
            n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        }
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(Errno::EPIPE);
        }
        rest = rest.get(n as usize..).unwrap_or_default();
    }
    Ok(())
}

/// `read(2)` on a raw fd number, retrying EINTR. Returns bytes read (0 = EOF).
pub fn read_raw(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: the pointer/length pair comes from a live mutable slice.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// Read until `buf` is full or end of file; returns how many bytes were
/// read (less than `buf.len()` only at end of file). Short reads and EINTR
/// are handled.
pub fn read_full(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut off = 0;
    while off < buf.len() {
        match read_raw(fd, buf.get_mut(off..).unwrap_or_default())? {
            0 => break,
            n => off += n,
        }
    }
    Ok(off)
}

/// Take ownership of an fd number the kernel just installed in this
/// process through SCM_RIGHTS.
pub fn own_received_fd(fd: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed `fd` for us in recvmsg; nothing else in
    // the process knows the number, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Let the program `cmd` starts inherit these fds (the init socket, the log
/// pipe): clear their close-on-exec flag in the child, between fork and
/// exec, so the parent's copies stay close-on-exec. The numbers must stay
/// open in the parent until `cmd` is spawned.
pub fn inherit_on_exec(cmd: &mut std::process::Command, fds: [Option<RawFd>; 2]) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls fcntl(F_SETFD), which is async-signal-safe: no allocation, no
    // lock. The fds are open there (a copy of the parent's table).
    unsafe {
        cmd.pre_exec(move || {
            for fd in fds.into_iter().flatten() {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// What [`spawn_exec`]'s child does between fork and exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecSetup<'a> {
    /// fds to clear close-on-exec on in the child (the parent's copies stay
    /// close-on-exec).
    pub inherit: &'a [RawFd],
    /// `PR_SET_PDEATHSIG(SIGKILL)` in the child, so it dies with the
    /// process that started it (a newuidmap helper of stage-0).
    pub die_with_parent: bool,
}

/// Start `prog` (searched in `PATH` when it has no `/`, like `execvp`) with
/// exactly `argv` and `envp`: fork, then in the child only async-signal-safe
/// calls on data prepared before the fork — `fcntl`, `prctl`, `sigprocmask`
/// (an empty mask, as std's `Command` gives), `execvpe`, `write`, `_exit` —
/// so any caller, threaded or not, may use it. An exec failure comes back as
/// the child's errno through a close-on-exec pipe (the child is reaped).
///
/// The C surfaces use this instead of `std::process::Command`, whose code
/// (env maps, posix_spawn/pidfd paths) would be linked into every program
/// that loads libnsboot (BENCHMARKS.md §4).
pub fn spawn_exec(prog: &CStr, argv: &[CString], envp: &[CString], setup: ExecSetup<'_>) -> Result<Pid, Errno> {
    let argv_p: Vec<*const libc::c_char> =
        argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp_p: Vec<*const libc::c_char> =
        envp.iter().map(|e| e.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is a valid sigset_t to write.
    unsafe { libc::sigemptyset(&mut empty) };
    let w = report_w.as_raw_fd();
    // SAFETY: fork duplicates the process; the child below touches only the
    // pointer arrays, fds and sigset built above (no allocation, no lock,
    // no unwinding) and calls only async-signal-safe functions before
    // execvpe or _exit, which is what POSIX allows after fork in a
    // multi-threaded process. The arrays are NULL-terminated and their
    // strings outlive the call.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; each call is async-signal-safe.
        unsafe {
            let fail = || -> ! {
                let e = *libc::__errno_location();
                let b = e.to_ne_bytes();
                libc::write(w, b.as_ptr().cast(), b.len());
                libc::_exit(127)
            };
            for &fd in setup.inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    fail();
                }
            }
            if setup.die_with_parent {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) < 0 {
                    fail();
                }
                if libc::getppid() != parent {
                    libc::_exit(127);
                }
            }
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::execvpe(prog.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
            fail()
        }
    }
    if pid < 0 {
        return Err(Errno::last());
    }
    drop(report_w);
    let mut b = [0u8; 4];
    let n = read_full(report_r.as_raw_fd(), &mut b).unwrap_or(0);
    if n == b.len() {
        let _ = wait_exit(Pid::from_raw(pid));
        return Err(Errno::from_raw(i32::from_ne_bytes(b)));
    }
    Ok(Pid::from_raw(pid))
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Wait for `pid` to end (retrying EINTR, ignoring stops).
pub fn wait_exit(pid: Pid) -> Result<Exit, Errno> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(Exit::Code(c)),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(Exit::Signal(s as i32)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether any `NAME=value` entry of the C environment starts with one of
/// `prefixes`: the constructor's first test, inlined into it, reading only
/// the bytes it compares (no `strlen`, no allocation, no call).
#[inline(always)]
pub fn env_has_prefix(prefixes: &[&[u8]]) -> bool {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is libc's NULL-terminated environment array; the
    // caller is the constructor (single-threaded, nothing modifies it). Each
    // entry is NUL-terminated, and a comparison stops at the first byte that
    // differs from the prefix, so it never reads past the NUL.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return false;
        }
        while !(*p).is_null() {
            let e = *p as *const u8;
            for prefix in prefixes {
                let mut i = 0;
                while i < prefix.len() && *e.add(i) == prefix[i] {
                    i += 1;
                }
                if i == prefix.len() {
                    return true;
                }
            }
            p = p.add(1);
        }
    }
    false
}

/// Call `f` with every `NAME=value` entry of the C environment, in order,
/// without allocating (the constructor's hot path uses this to see whether
/// any `NSBOOT_*` variable is set).
pub fn for_each_env(mut f: impl FnMut(&[u8])) {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is libc's NULL-terminated environment array; the
    // callers are single-threaded (constructor), so nothing modifies it
    // while we walk it. Each entry is a NUL-terminated string that outlives
    // the callback (the callback must not call setenv/unsetenv).
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return;
        }
        while !(*p).is_null() {
            f(CStr::from_ptr(*p).to_bytes());
            p = p.add(1);
        }
    }
}

/// `pidfd_open(pid, 0)`: a close-on-exec fd that becomes readable (POLLIN)
/// once the whole process `pid` has exited, all its threads: one of its
/// threads exiting does nothing to it (Linux ≥ 5.3; ENOSYS before).
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd (O_CLOEXEC is implied by
    // pidfd_open); nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as RawFd) })
}

/// `poll(2)` for POLLIN on fd numbers, retried on EINTR; says, per fd,
/// whether it is ready (readable, hung up, in error or not an open fd).
/// `timeout_ms` -1 waits for ever, 0 only looks.
pub fn poll_in<const N: usize>(fds: [RawFd; N], timeout_ms: i32) -> Result<[bool; N], Errno> {
    let mut p = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
    loop {
        // SAFETY: `p` is a live array of N pollfd structs; poll only reads
        // the fd numbers (an fd that is not open is reported as POLLNVAL,
        // never dereferenced) and writes `revents`.
        let r = unsafe { libc::poll(p.as_mut_ptr(), N as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(p.map(|x| x.revents != 0));
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// `dup2(fd, target)`: `target` becomes a copy of `fd` without
/// close-on-exec (stdio for an exec). The caller owns `target` afterwards.
pub fn dup2_raw(fd: RawFd, target: RawFd) -> Result<(), Errno> {
    // SAFETY: dup2 only takes fd numbers; an invalid one is EBADF. The
    // number `target` is replaced atomically; it is the caller's to give.
    let r = unsafe { libc::dup2(fd, target) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Call the `extern "C" fn() -> c_int` at `addr` (the bootstrap server's
/// callback entry) and return its result.
pub fn call_host_fn(addr: usize) -> i32 {
    // SAFETY: `addr` was sent by the host, the only process the server
    // accepts requests from (SO_PEERCRED), as the address of an
    // `extern "C" fn() -> c_int` of its image (`server::Program::Callback`);
    // the server and this stage are forks of the host, so the same
    // address holds the same function here. It is non-zero (checked when
    // the request was decoded).
    let f: extern "C" fn() -> libc::c_int = unsafe { std::mem::transmute::<usize, extern "C" fn() -> libc::c_int>(addr) };
    f()
}

/// [`poll_in`] for a list whose length is known only at run time.
pub fn poll_many(fds: &[RawFd], timeout_ms: i32) -> Result<Vec<bool>, Errno> {
    let mut p: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    loop {
        // SAFETY: `p` is a live vector of `p.len()` pollfd structs; poll
        // reads the fd numbers and writes `revents` only.
        let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(p.iter().map(|x| x.revents != 0).collect());
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec copy of `fd` at the
/// lowest free number >= `min`.
pub fn dup_cloexec_from(fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the fd numbers; an fd that is not
    // open is EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}
