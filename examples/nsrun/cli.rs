//! The command line, on clap (derive): every command's `--help` lists
//! every option, `nsrun completion bash|zsh|fish` prints a completion
//! script. Docker's conventions: `-it` bundles, `--name=x` and `--name x`,
//! `run`/`exec` options stop at the command, `--` ends them. Every mistake
//! is one line on stderr and exit status 125.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::security::SecurityOpts;
use crate::Fail;

const STATE_NOTE: &str = "State: /run/nsrun as root, $XDG_RUNTIME_DIR/nsrun otherwise ($NSRUN_ROOT overrides).";

#[derive(Debug, Parser)]
#[command(
    name = "nsrun",
    version,
    about = "A small container runtime built on the nsboot library.",
    after_help = STATE_NOTE,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// List containers
    Ps {
        /// Show all containers (default shows just running)
        #[arg(short, long)]
        all: bool,
        /// Only print names
        #[arg(short, long)]
        quiet: bool,
        /// json, or a template of {{.Name}} {{.ID}} {{.Image}} {{.Command}} {{.Status}} {{.State}} {{.Pid}} {{.CreatedAt}}
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Print the log of a detached container
    Logs {
        #[arg(value_name = "CONTAINER")]
        name: String,
        /// Keep printing what it writes until it stops
        #[arg(short, long)]
        follow: bool,
        /// Print only the last N lines
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Send a signal to containers' PID 1 (default SIGKILL)
    Kill {
        /// Signal name or number
        #[arg(short, long, value_name = "SIGNAL", default_value = "KILL", value_parser = crate::lifecycle::parse_signal)]
        signal: nix::sys::signal::Signal,
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// Block until containers stop, then print their exit codes
    Wait {
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// Start stopped containers again, detached, with their write layers
    Start {
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// Stop then start containers
    Restart {
        /// Seconds to wait before killing it
        #[arg(short = 't', long = "time", visible_alias = "timeout", value_name = "SECONDS", default_value_t = 10)]
        time: u64,
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// Print containers' configuration and state as JSON
    Inspect {
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// List a running container's processes
    Top {
        #[arg(value_name = "CONTAINER")]
        name: String,
    },
    /// Show CPU, memory and pids figures from containers' cgroups
    Stats {
        /// Print once instead of every second
        #[arg(long = "no-stream")]
        no_stream: bool,
        #[arg(value_name = "CONTAINER")]
        names: Vec<String>,
    },
    /// Remove every stopped container
    Prune,
    /// Stop running containers: SIGTERM, then SIGKILL after a grace period
    Stop {
        /// Seconds to wait before killing it
        #[arg(short = 't', long = "time", visible_alias = "timeout", value_name = "SECONDS", default_value_t = 10)]
        time: u64,
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// Remove containers and their write layers
    Rm {
        /// Kill a running container first
        #[arg(short, long)]
        force: bool,
        #[arg(value_name = "CONTAINER", required = true)]
        names: Vec<String>,
    },
    /// List images: imported ones by name, and the unpacked --image archives
    Images,
    /// Remove images (NAME[:TAG], IMAGE ID, or a --image archive's path); refused while a container uses one
    Rmi {
        #[arg(value_name = "IMAGE", required = true)]
        names: Vec<String>,
    },
    /// Import an image archive: a rootfs tarball, an OCI image layout or a docker-archive (gzip'd or not)
    Import {
        #[arg(value_name = "TAR")]
        archive: PathBuf,
        #[arg(value_name = "NAME[:TAG]")]
        name: String,
    },
    /// Make a new image of a container's changes (its write layer on top of its image)
    Commit {
        #[arg(value_name = "CONTAINER")]
        container: String,
        #[arg(value_name = "NAME[:TAG]")]
        name: String,
    },
    /// Manage bridge networks (root)
    Network {
        #[command(subcommand)]
        cmd: NetCmd,
    },
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetCmd {
    /// Create a bridge network
    Create {
        /// The network's subnet
        #[arg(long, value_name = "CIDR", default_value = "10.89.0.0/24")]
        subnet: String,
        /// MTU of the bridge and of each container's veth
        #[arg(long, value_name = "BYTES", default_value_t = 1500)]
        mtu: u32,
        name: String,
    },
    /// List networks
    Ls,
    /// Remove networks (refused while a container uses one): their bridge and rules go
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `nsrun run`. New uts, ipc, pid, mount, cgroup and network namespaces
/// (plus a user namespace when not root), an overlay of a read-only image
/// layer and a per-container write layer; without --rootfs/--image/--bundle
/// the host's / is the read-only image layer.
#[derive(Debug, Args)]
#[command(after_help = "Without --rootfs/--image/--bundle the host's / is the read-only image layer.")]
struct RunArgs {
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Run in the background, output to the container's log
    #[arg(short, long, conflicts_with_all = ["tty", "interactive"])]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Name the container (default: a random id)
    #[arg(long)]
    name: Option<String>,
    /// Bind mount host path HOST at CTR (read-only with :ro)
    #[arg(short, long = "volume", value_name = "HOST:CTR[:ro]")]
    volume: Vec<String>,
    /// Set an environment variable (KEY alone: the host's value)
    #[arg(short, long = "env", value_name = "KEY[=VAL]")]
    env: Vec<String>,
    /// Use DIR as the image layer
    #[arg(long, value_name = "DIR", group = "img")]
    rootfs: Option<PathBuf>,
    /// Use a tar archive as the image layer (unpacked once, cached), or an imported image by name
    #[arg(long, value_name = "TAR|NAME", group = "img")]
    image: Option<PathBuf>,
    /// Run an OCI bundle's config.json as is (no overlay)
    #[arg(long, value_name = "DIR", group = "img")]
    bundle: Option<PathBuf>,
    /// Container host name (default: the container id)
    #[arg(long)]
    hostname: Option<String>,
    /// Network: none (loopback only), host, bridge (root: a veth on nsrun0, 10.88.0.0/16, NAT), a network's name, or slirp4netns (rootless too)
    #[arg(long = "net", visible_alias = "network", value_name = "none|host|bridge|NAME|slirp4netns", value_parser = parse_net, default_value = "none")]
    net: Net,
    /// Publish a container port on the host: [IP:]HOST:CONTAINER[/tcp|/udp] (bridge networks)
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CTR[/udp]", value_parser = crate::net::proxy::parse)]
    publish: Vec<crate::net::proxy::Port>,
    /// Give the container every capability, no seccomp filter, no no_new_privs
    #[arg(long)]
    privileged: bool,
    /// Add Linux capabilities (NAME, CAP_NAME or ALL; comma-separated)
    #[arg(long = "cap-add", value_name = "CAP", value_delimiter = ',')]
    cap_add: Vec<String>,
    /// Drop Linux capabilities (NAME, CAP_NAME or ALL; comma-separated)
    #[arg(long = "cap-drop", value_name = "CAP", value_delimiter = ',')]
    cap_drop: Vec<String>,
    /// no-new-privileges[=true|false], seccomp=unconfined or seccomp=FILE (moby or OCI profile)
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opt: Vec<String>,
    /// Run as this user: uid[:gid] or name[:group] (names from the image's /etc/passwd and /etc/group)
    #[arg(short, long, value_name = "USER[:GROUP]")]
    user: Option<String>,
    /// Working directory of the command (made when missing)
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// Memory limit (b, k, m, g)
    #[arg(short, long, value_name = "BYTES", value_parser = crate::limits::parse_bytes)]
    memory: Option<i64>,
    /// Memory plus swap limit (-1: unlimited; default twice --memory)
    #[arg(long = "memory-swap", value_name = "BYTES", value_parser = crate::limits::parse_bytes, allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// Number of CPUs (CFS quota over a 100ms period)
    #[arg(long, value_name = "N", value_parser = crate::limits::parse_cpus)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    cpu_shares: Option<u64>,
    /// Maximum number of processes (-1 or 0: unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Resource limit NAME=SOFT[:HARD] (nofile, nproc, core, stack, ...)
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = crate::limits::parse_ulimit)]
    ulimit: Vec<(String, u64, u64)>,
    /// Mount the container's root filesystem read-only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Mount a tmpfs at PATH (noexec,nosuid,nodev plus OPTIONS)
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    tmpfs: Vec<String>,
    /// Mount: type=bind,source=PATH,target=PATH[,readonly] or type=tmpfs,target=PATH[,tmpfs-size=BYTES][,tmpfs-mode=OCTAL]
    #[arg(long = "mount", value_name = "SPEC")]
    mount: Vec<String>,
    /// Run a small init as PID 1 that reaps zombies and forwards signals to the command
    #[arg(long)]
    init: bool,
    /// Run this program, with COMMAND as its arguments
    #[arg(long, value_name = "PROGRAM")]
    entrypoint: Option<String>,
    /// Read KEY=VAL lines from a file (# comments, KEY alone: the host's value)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// [IMAGE] COMMAND [ARG...]: an imported image's name first runs that image (its Cmd when no command follows)
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = false)]
    cmd: Vec<String>,
}

/// `nsrun exec`: the command joins the container's namespaces and gets
/// its user, capabilities, no_new_privs and seccomp filter.
#[derive(Debug, Args)]
struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable (KEY alone: the host's value)
    #[arg(short, long = "env", value_name = "KEY[=VAL]")]
    env: Vec<String>,
    #[arg(value_name = "CONTAINER")]
    name: String,
    /// The command and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    cmd: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// The host's `/` as the read-only layer.
    Host,
    Rootfs(PathBuf),
    Tar(PathBuf),
    Bundle(PathBuf),
    /// An imported image, by id.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub ctr: PathBuf,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    None,
    Host,
    /// A bridge network by name (`bridge`: the default one, nsrun0).
    Bridge(String),
    /// User-mode networking through slirp4netns (rootless too).
    Slirp,
}

fn parse_net(v: &str) -> Result<Net, String> {
    match v {
        "none" => Ok(Net::None),
        "host" => Ok(Net::Host),
        "slirp4netns" => Ok(Net::Slirp),
        _ if check_name(v).is_ok() => Ok(Net::Bridge(v.to_owned())),
        _ => Err(format!("invalid network {v:?}: use none, host, bridge or a network's name")),
    }
}

#[derive(Debug, Clone)]
pub struct RunOpts {
    pub interactive: bool,
    pub tty: bool,
    pub detach: bool,
    pub rm: bool,
    pub name: Option<String>,
    pub volumes: Vec<Volume>,
    pub env: Vec<String>,
    pub image: Image,
    pub hostname: Option<String>,
    pub net: Net,
    pub publish: Vec<crate::net::proxy::Port>,
    pub security: SecurityOpts,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub limits: crate::limits::LimitOpts,
    pub read_only: bool,
    pub tmpfs: Vec<Tmpfs>,
    pub init: bool,
    /// The command line as given (recorded for `start`).
    pub argv: Vec<String>,
    /// `--entrypoint`: replaces the image's (and drops its Cmd).
    pub entrypoint: Option<String>,
    /// The operands: `[IMAGE] COMMAND...` (see `run::resolve_image`).
    pub cmd: Vec<String>,
}

/// A tmpfs mount (`--tmpfs`, `--mount type=tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub dst: String,
    /// Comma-separated mount options.
    pub options: String,
}

#[derive(Debug, Clone)]
pub struct ExecOpts {
    pub interactive: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub name: String,
    pub cmd: Vec<String>,
}

#[derive(Debug)]
pub enum Cmd {
    /// Text for stdout, exit status 0 (help, version, completion scripts).
    Print(String),
    Run(Box<RunOpts>),
    Exec(ExecOpts),
    Ps { all: bool, quiet: bool, format: Option<String> },
    Logs { name: String, follow: bool, tail: Option<usize> },
    Stop { timeout: u64, names: Vec<String> },
    Rm { force: bool, names: Vec<String> },
    Images,
    Rmi { names: Vec<String> },
    Import { archive: PathBuf, name: String },
    Kill { signal: nix::sys::signal::Signal, names: Vec<String> },
    Wait { names: Vec<String> },
    Start { names: Vec<String> },
    Restart { timeout: u64, names: Vec<String> },
    Inspect { names: Vec<String> },
    Top { name: String },
    Stats { no_stream: bool, names: Vec<String> },
    Prune,
    Commit { container: String, name: String },
    Network(NetCmd),
}

/// One line for a clap error, in nsrun's words where docker users know
/// them ("unknown flag", "unknown command"), with the help to read.
fn clap_fail(e: clap::Error, args: &[String]) -> Fail {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let ctx = |k| match e.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    let sub = args.first().filter(|s| !s.starts_with('-')).map(String::as_str).unwrap_or("");
    let see = if sub.is_empty() || e.kind() == ErrorKind::InvalidSubcommand { "'nsrun --help'".to_owned() } else { format!("'nsrun {sub} --help'") };
    let msg = match e.kind() {
        ErrorKind::UnknownArgument => format!("unknown flag: {}", ctx(ContextKind::InvalidArg)),
        ErrorKind::InvalidSubcommand => format!("unknown command: {:?}", ctx(ContextKind::InvalidSubcommand)),
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("").trim_start_matches("error: ").to_owned();
            first
        }
    };
    Fail::new(125, format!("{msg} (see {see})"))
}

/// Parse the whole command line (without argv[0]).
pub fn parse(args: &[String]) -> Result<Cmd, Fail> {
    use clap::error::ErrorKind;
    let argv = std::iter::once("nsrun".to_owned()).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return Ok(Cmd::Print(e.render().to_string().trim_end().to_owned()))
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return Ok(Cmd::Print(Cli::command().render_help().to_string().trim_end().to_owned()))
        }
        Err(e) => return Err(clap_fail(e, args)),
    };
    Ok(match cli.cmd {
        Sub::Run(r) => {
            let mut o = run_opts(*r)?;
            o.argv = args.to_vec();
            Cmd::Run(Box::new(o))
        }
        Sub::Kill { signal, names } => Cmd::Kill { signal, names },
        Sub::Wait { names } => Cmd::Wait { names },
        Sub::Start { names } => Cmd::Start { names },
        Sub::Restart { time, names } => Cmd::Restart { timeout: time, names },
        Sub::Inspect { names } => Cmd::Inspect { names },
        Sub::Top { name } => Cmd::Top { name },
        Sub::Stats { no_stream, names } => Cmd::Stats { no_stream, names },
        Sub::Prune => Cmd::Prune,
        Sub::Network { cmd } => Cmd::Network(cmd),
        Sub::Exec(x) => Cmd::Exec(ExecOpts {
            interactive: x.interactive,
            tty: x.tty,
            env: envs(x.env)?,
            name: x.name,
            cmd: x.cmd,
        }),
        Sub::Ps { all, quiet, format } => Cmd::Ps { all, quiet, format },
        Sub::Logs { name, follow, tail } => Cmd::Logs { name, follow, tail },
        Sub::Stop { time, names } => Cmd::Stop { timeout: time, names },
        Sub::Rm { force, names } => Cmd::Rm { force, names },
        Sub::Images => Cmd::Images,
        Sub::Rmi { names } => Cmd::Rmi { names },
        Sub::Import { archive, name } => Cmd::Import { archive, name },
        Sub::Commit { container, name } => Cmd::Commit { container, name },
        Sub::Completion { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "nsrun", &mut out);
            Cmd::Print(String::from_utf8_lossy(&out).into_owned())
        }
    })
}

fn envs(list: Vec<String>) -> Result<Vec<String>, Fail> {
    let mut out = Vec::new();
    for v in list {
        let e = parse_env(v)?;
        if !e.is_empty() {
            out.push(e);
        }
    }
    Ok(out)
}

fn parse_env(v: String) -> Result<String, Fail> {
    if v.is_empty() || v.starts_with('=') {
        return Err(Fail::new(125, format!("invalid environment variable: {v:?}")));
    }
    if v.contains('=') {
        return Ok(v);
    }
    // KEY alone: the host's value, or nothing (docker drops it too).
    Ok(std::env::var(&v).map(|val| format!("{v}={val}")).unwrap_or_default())
}

fn parse_volume(v: &str) -> Result<Volume, Fail> {
    let bad = || Fail::new(125, format!("invalid volume specification: {v:?} (see 'nsrun run --help')"));
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, readonly) = match parts.as_slice() {
        [h, c] => (h, c, false),
        [h, c, "ro"] => (h, c, true),
        [h, c, "rw"] => (h, c, false),
        _ => return Err(bad()),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(Fail::new(125, format!("invalid volume specification: {v:?}: both paths must be absolute")));
    }
    Ok(Volume { host: PathBuf::from(host), ctr: PathBuf::from(ctr), readonly })
}

fn run_opts(r: RunArgs) -> Result<RunOpts, Fail> {
    let image = match (r.rootfs, r.image, r.bundle) {
        (Some(p), _, _) => Image::Rootfs(p),
        (_, Some(p), _) => Image::Tar(p),
        (_, _, Some(p)) => Image::Bundle(p),
        _ => Image::Host,
    };
    let mut security = SecurityOpts { privileged: r.privileged, cap_add: r.cap_add, cap_drop: r.cap_drop, ..Default::default() };
    for s in &r.security_opt {
        security.security_opt(s)?;
    }
    let mut env = Vec::new();
    for f in &r.env_file {
        let text = std::fs::read_to_string(f).map_err(|e| Fail::new(125, format!("open env file {}: {e}", f.display())))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            env.push(line.to_owned());
        }
    }
    env.extend(r.env);
    let mut volumes: Vec<Volume> = r.volume.iter().map(|v| parse_volume(v)).collect::<Result<_, _>>()?;
    let mut tmpfs = Vec::new();
    for t in &r.tmpfs {
        let (dst, options) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            return Err(Fail::new(125, format!("invalid --tmpfs {t:?}: the path must be absolute")));
        }
        tmpfs.push(Tmpfs { dst: dst.to_owned(), options: options.to_owned() });
    }
    for m in &r.mount {
        match parse_mount(m)? {
            Mount::Bind(v) => volumes.push(v),
            Mount::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let cmd = r.cmd;
    let limits = crate::limits::LimitOpts {
        memory: r.memory,
        memory_swap: r.memory_swap,
        cpus: r.cpus,
        cpu_shares: r.cpu_shares,
        pids_limit: r.pids_limit,
        ulimits: r.ulimit,
    };
    let o = RunOpts {
        interactive: r.interactive,
        tty: r.tty,
        detach: r.detach,
        rm: r.rm,
        name: r.name,
        volumes,
        env: envs(env)?,
        image,
        hostname: r.hostname,
        net: r.net,
        publish: r.publish,
        security,
        user: r.user,
        workdir: r.workdir,
        limits,
        read_only: r.read_only,
        tmpfs,
        init: r.init,
        argv: Vec::new(),
        entrypoint: r.entrypoint,
        cmd,
    };
    if !o.publish.is_empty() && !matches!(o.net, Net::Bridge(_) | Net::Slirp) {
        return Err(Fail::new(125, "-p needs a bridge network (--net bridge) or --net slirp4netns"));
    }
    if let Some(w) = &o.workdir {
        if !w.starts_with('/') {
            return Err(Fail::new(125, format!("invalid --workdir {w:?}: the path must be absolute")));
        }
    }
    if let Some(n) = &o.name {
        check_name(n)?;
    }
    if let Some(h) = &o.hostname {
        if h.is_empty() || h.len() > 64 || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(Fail::new(125, format!("invalid hostname {h:?}")));
        }
    }
    Ok(o)
}

enum Mount {
    Bind(Volume),
    Tmpfs(Tmpfs),
}

/// `--mount type=bind,source=/a,target=/b,readonly` or
/// `type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770` (docker's keys
/// and aliases: src, dst/destination, ro).
fn parse_mount(spec: &str) -> Result<Mount, Fail> {
    let bad = |why: &str| Fail::new(125, format!("invalid --mount {spec:?}: {why}"));
    let (mut kind, mut src, mut dst, mut ro) = ("", None, None, false);
    let mut opts = Vec::new();
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => src = Some(v.to_owned()),
            "target" | "destination" | "dst" => dst = Some(v.to_owned()),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => opts.push(format!("size={}", crate::limits::parse_bytes(v).map_err(|e| bad(&e))?)),
            "tmpfs-mode" => {
                u32::from_str_radix(v, 8).map_err(|_| bad("tmpfs-mode must be octal"))?;
                opts.push(format!("mode={v}"));
            }
            _ => return Err(bad(&format!("unknown key {k:?}"))),
        }
    }
    let dst = dst.filter(|d| d.starts_with('/')).ok_or_else(|| bad("an absolute target is required"))?;
    match kind {
        "bind" => {
            let src = src.filter(|s| s.starts_with('/')).ok_or_else(|| bad("an absolute source is required"))?;
            Ok(Mount::Bind(Volume { host: src.into(), ctr: dst.into(), readonly: ro }))
        }
        "tmpfs" if src.is_none() => {
            if ro {
                opts.push("ro".into());
            }
            Ok(Mount::Tmpfs(Tmpfs { dst, options: opts.join(",") }))
        }
        "tmpfs" => Err(bad("a tmpfs has no source")),
        _ => Err(bad("type must be bind or tmpfs")),
    }
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128
/// characters (a directory name of the state root).
pub fn check_name(n: &str) -> Result<(), Fail> {
    const MAX: usize = 128;
    let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok && n.len() > MAX {
        return Err(Fail::new(125, format!("invalid container name: too long ({} characters, max {MAX})", n.len())));
    }
    if ok {
        Ok(())
    } else {
        Err(Fail::new(125, format!("invalid container name {n:?}, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn bundled_and_valued_flags() {
        Cli::command().debug_assert();
        let Cmd::Run(o) = parse(&v("run -it --rm -v/a:/b:ro --name=x -e A=1 sh -c true --rm")).unwrap() else { panic!() };
        assert!(o.interactive && o.tty && o.rm);
        assert_eq!(o.volumes, vec![Volume { host: "/a".into(), ctr: "/b".into(), readonly: true }]);
        assert_eq!(o.name.as_deref(), Some("x"));
        assert_eq!(o.env, vec!["A=1".to_owned()]);
        assert_eq!(o.cmd, v("sh -c true --rm"));
        let Cmd::Stop { timeout, .. } = parse(&v("stop -t 3 a")).unwrap() else { panic!() };
        assert_eq!(timeout, 3);
        assert!(parse(&v("run --bogus sh")).unwrap_err().msg.contains("unknown flag: --bogus"));
        assert!(parse(&v("run --name")).is_err());
        assert!(parse(&v("frobnicate")).unwrap_err().msg.contains("unknown command"));
    }
}
