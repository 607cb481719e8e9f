//! runc's command line (the flags engines pass), parsed with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{container, ops, Error, Log};

#[derive(Parser, Debug)]
#[command(name = "nsboot-runtime", version, about = "OCI runtime on nsboot (runc's command line)")]
pub struct Cli {
    /// State directory (default /run/nsboot-runtime as root,
    /// $XDG_RUNTIME_DIR/nsboot-runtime rootless).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[arg(long, global = true)]
    pub debug: bool,
    /// cgroupsPath "slice:prefix:name" is mapped to the cgroupfs path
    /// "/slice/prefix-name.scope" (no systemd D-Bus call is made).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility ("true", "false", "auto"): rootless
    /// mode follows the euid.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub rootless: Option<String>,
    /// Accepted and ignored (runc: criu path).
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug, Clone, Default)]
pub struct CreateOpts {
    /// Bundle directory (default: the current directory).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted (no session keyring is made either way).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ExecOpts {
    /// process.json (a runtime-spec `process` object).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub cwd: Option<String>,
    #[arg(short, long)]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    #[arg(long = "ignore-paused", hide = true)]
    pub ignore_paused: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct UpdateOpts {
    /// resources.json (a runtime-spec `linux.resources` object; "-" for stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container (it waits for `start`).
    Create {
        id: String,
        #[command(flatten)]
        o: CreateOpts,
    },
    /// Run the created container's program.
    Start { id: String },
    /// Print the state JSON.
    State { id: String },
    /// Send a signal (name or number, default SIGTERM).
    Kill {
        id: String,
        signal: Option<String>,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container (`--force`: also a running one).
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// create + start (+ wait and delete unless -d).
    Run {
        id: String,
        #[command(flatten)]
        o: CreateOpts,
        #[arg(short, long)]
        detach: bool,
        #[arg(long)]
        keep: bool,
    },
    /// Run a process in a running container.
    Exec {
        id: String,
        #[command(flatten)]
        o: ExecOpts,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// The container's processes.
    Ps {
        id: String,
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// The containers under --root.
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw it.
    Resume { id: String },
    /// Change the cgroup resources.
    Update {
        id: String,
        #[command(flatten)]
        o: UpdateOpts,
    },
    /// The OCI features document.
    Features,
    /// Write a config.json template.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Not supported.
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Not supported.
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// runc events: not supported.
    Events {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// In a user namespace other than the initial one (rootless podman runs
/// the runtime as uid 0 of its own namespace).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// runc's rule: `$XDG_RUNTIME_DIR` for a non-root euid, and for "root" in
/// a user namespace whose `$USER` is not root (rootless engines).
pub fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let honor_xdg = !nix::unistd::geteuid().is_root()
        || (in_user_namespace() && std::env::var("USER").map(|u| u != "root").unwrap_or(true));
    if let (true, Some(d)) = (honor_xdg, &xdg) {
        return PathBuf::from(d).join("nsboot-runtime");
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/nsboot-runtime");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("nsboot-runtime"),
        _ => PathBuf::from(format!("/tmp/nsboot-runtime-{}", nix::unistd::geteuid())),
    }
}

pub struct Ctx<'a> {
    pub root: PathBuf,
    pub log: &'a Log,
    pub systemd_cgroup: bool,
}

pub fn dispatch(cli: &Cli, log: &Log) -> Result<i32, Error> {
    let ctx = Ctx { root: cli.root.clone().unwrap_or_else(default_root), log, systemd_cgroup: cli.systemd_cgroup };
    log.debug(&format!("{:?}", cli.cmd));
    match &cli.cmd {
        Cmd::Create { id, o } => container::create(&ctx, id, o, container::Mode::Create).map(|_| 0),
        Cmd::Run { id, o, detach, keep } => {
            let mode = if *detach { container::Mode::RunDetached } else { container::Mode::Run { keep: *keep } };
            container::create(&ctx, id, o, mode)
        }
        Cmd::Start { id } => ops::start(&ctx, id).map(|_| 0),
        Cmd::State { id } => ops::state(&ctx, id).map(|_| 0),
        Cmd::Kill { id, signal, all } => ops::kill(&ctx, id, signal.as_deref().unwrap_or("SIGTERM"), *all).map(|_| 0),
        Cmd::Delete { id, force } => ops::delete(&ctx, id, *force).map(|_| 0),
        Cmd::Exec { id, o, command } => container::exec(&ctx, id, o, command),
        Cmd::Ps { id, format, ps_args } => ops::ps(&ctx, id, *format, ps_args).map(|_| 0),
        Cmd::List { format, quiet } => ops::list(&ctx, *format, *quiet).map(|_| 0),
        Cmd::Pause { id } => ops::freeze(&ctx, id, true).map(|_| 0),
        Cmd::Resume { id } => ops::freeze(&ctx, id, false).map(|_| 0),
        Cmd::Update { id, o } => ops::update(&ctx, id, o).map(|_| 0),
        Cmd::Features => ops::features().map(|_| 0),
        Cmd::Spec { bundle, rootless } => ops::spec(bundle, *rootless).map(|_| 0),
        Cmd::Checkpoint { .. } => Err(Error::msg("checkpoint: not supported by nsboot-runtime (no CRIU support)")),
        Cmd::Restore { .. } => Err(Error::msg("restore: not supported by nsboot-runtime (no CRIU support)")),
        Cmd::Events { .. } => Err(Error::msg("events: not supported by nsboot-runtime")),
    }
}
