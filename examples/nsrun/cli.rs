//! Hand-written command-line parsing: docker-style flags (`-it` bundles,
//! `--name=x` and `--name x`), options stop at the first operand, `--`
//! ends them. Every mistake becomes one line and exit status 125.

use std::path::PathBuf;

use crate::Fail;

pub const USAGE: &str = "\
Usage: nsrun COMMAND [OPTIONS]

A small container runtime built on the nsboot library.

Commands:
  run     Run a command in a new container
  exec    Run a command in a running container
  ps      List containers
  logs    Print the log of a detached container
  stop    Stop a running container
  rm      Remove a container
  images  List the unpacked --image archives
  rmi     Remove unpacked --image archives

Run 'nsrun COMMAND --help' for more information on a command.
State: /run/nsrun as root, $XDG_RUNTIME_DIR/nsrun otherwise ($NSRUN_ROOT overrides).";

const RUN_USAGE: &str = "\
Usage: nsrun run [OPTIONS] [--] COMMAND [ARG...]

Run a command in a new container: new uts, ipc, pid, mount, cgroup and
network namespaces (plus a user namespace when not root), an overlay of a
read-only image layer and a per-container write layer.

Options:
  -i, --interactive        Keep stdin open
  -t, --tty                Allocate a pseudo-TTY
  -d, --detach             Run in the background, output to the container's log
      --rm                 Remove the container when it exits
      --name NAME          Name the container (default: a random id)
  -v, --volume H:C[:ro]    Bind mount host path H at C (read-only with :ro)
  -e, --env KEY[=VAL]      Set an environment variable (KEY alone: the host's value)
      --rootfs DIR         Use DIR as the image layer
      --image TAR          Use a tar archive as the image layer (unpacked once, cached)
      --bundle DIR         Run an OCI bundle's config.json as is (no overlay)
      --hostname NAME      Container host name (default: the container id)
      --net none|host      Network: only loopback (default) or the host's
  -h, --help               Print this help

Without --rootfs/--image/--bundle the host's / is the read-only image layer.";

const EXEC_USAGE: &str = "\
Usage: nsrun exec [OPTIONS] CONTAINER COMMAND [ARG...]

Run a command in the namespaces of a running container.

Options:
  -i, --interactive        Keep stdin open
  -t, --tty                Allocate a pseudo-TTY
  -e, --env KEY[=VAL]      Set an environment variable
  -h, --help               Print this help";

const PS_USAGE: &str = "\
Usage: nsrun ps [OPTIONS]

List containers.

Options:
  -a, --all     Show all containers (default shows just running)
  -q, --quiet   Only print names
  -h, --help    Print this help";

const LOGS_USAGE: &str = "\
Usage: nsrun logs CONTAINER

Print the output of a detached container.";

const STOP_USAGE: &str = "\
Usage: nsrun stop [OPTIONS] CONTAINER [CONTAINER...]

Send SIGTERM to a container's PID 1, then SIGKILL after a grace period.

Options:
  -t, --time SECONDS   Seconds to wait before killing it (default 10)
  -h, --help           Print this help";

const RM_USAGE: &str = "\
Usage: nsrun rm [OPTIONS] CONTAINER [CONTAINER...]

Remove containers and their write layers.

Options:
  -f, --force   Kill a running container first
  -h, --help    Print this help";

const IMAGES_USAGE: &str = "\
Usage: nsrun images

List the tar archives `run --image` has unpacked (under <state>/images),
their size, and how many containers use each.";

const RMI_USAGE: &str = "\
Usage: nsrun rmi IMAGE [IMAGE...]

Remove unpacked --image archives, given by IMAGE ID (as `nsrun images`
shows it) or by the archive's path. An image a container still uses is
kept: remove the container first.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// The host's `/` as the read-only layer.
    Host,
    Rootfs(PathBuf),
    Tar(PathBuf),
    Bundle(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub ctr: PathBuf,
    pub readonly: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    None,
    Host,
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
    pub cmd: Vec<String>,
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
    Help(&'static str),
    Run(RunOpts),
    Exec(ExecOpts),
    Ps { all: bool, quiet: bool },
    Logs { name: String },
    Stop { timeout: u64, names: Vec<String> },
    Rm { force: bool, names: Vec<String> },
    Images,
    Rmi { names: Vec<String> },
}

fn usage_err(cmd: &str, msg: impl std::fmt::Display) -> Fail {
    let see = if cmd.is_empty() { "'nsrun --help'".to_owned() } else { format!("'nsrun {cmd} --help'") };
    Fail::new(125, format!("{msg} (see {see})"))
}

/// A flag as written (`-i`, `--name`) and its value, if it takes one.
type Flag = (String, Option<String>);

/// Split the options off `args`: `(flag, value)` pairs and the index where
/// the operands start. `-it` becomes `-i -t`; `-v/a:/b` and `--name=x` carry
/// their value inline; flags in `takes_value` take the next argument.
fn split_opts(
    cmd: &'static str,
    args: &[String],
    takes_value: &[&str],
) -> Result<(Vec<Flag>, usize), Fail> {
    let mut out = Vec::new();
    let mut i = 0;
    let need = |f: &str, i: usize| -> Result<String, Fail> {
        args.get(i).cloned().ok_or_else(|| usage_err(cmd, format!("flag needs an argument: {f}")))
    };
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return Ok((out, i + 1));
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((k, v)) => out.push((format!("--{k}"), Some(v.to_owned()))),
                None if takes_value.contains(&a.as_str()) => {
                    out.push((a.clone(), Some(need(a, i)?)));
                    i += 1;
                }
                None => out.push((a.clone(), None)),
            }
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        for (k, c) in chars.iter().enumerate() {
            let f = format!("-{c}");
            if takes_value.contains(&f.as_str()) {
                let rest: String = chars[k + 1..].iter().collect();
                let v = if rest.is_empty() {
                    i += 1;
                    need(&f, i - 1)?
                } else {
                    rest
                };
                out.push((f, Some(v)));
                break;
            }
            out.push((f, None));
        }
    }
    Ok((out, i))
}

fn no_value(cmd: &'static str, f: &str, v: &Option<String>) -> Result<(), Fail> {
    match v {
        Some(_) => Err(usage_err(cmd, format!("flag {f} takes no value"))),
        None => Ok(()),
    }
}

/// Parse the whole command line (without argv[0]).
pub fn parse(args: &[String]) -> Result<Cmd, Fail> {
    let Some((sub, rest)) = args.split_first() else { return Ok(Cmd::Help(USAGE)) };
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Cmd::Help(USAGE)),
        "run" => parse_run(rest),
        "exec" => parse_exec(rest),
        "ps" => parse_ps(rest),
        "logs" => {
            let (opts, end) = split_opts("logs", rest, &[])?;
            if let Some((f, _)) = opts.first() {
                return if f == "-h" || f == "--help" { Ok(Cmd::Help(LOGS_USAGE)) } else { Err(usage_err("logs", format!("unknown flag: {f}"))) };
            }
            match &rest[end..] {
                [name] => Ok(Cmd::Logs { name: name.clone() }),
                _ => Err(usage_err("logs", "\"nsrun logs\" requires exactly 1 argument")),
            }
        }
        "stop" => {
            let (opts, end) = split_opts("stop", rest, &["-t", "--time", "--timeout"])?;
            let mut timeout = 10;
            for (f, v) in opts {
                match f.as_str() {
                    "-h" | "--help" => return Ok(Cmd::Help(STOP_USAGE)),
                    "-t" | "--time" | "--timeout" => {
                        let v = v.unwrap_or_default();
                        timeout = v.parse().map_err(|_| usage_err("stop", format!("invalid value {v:?} for {f}: not a number of seconds")))?;
                    }
                    _ => return Err(usage_err("stop", format!("unknown flag: {f}"))),
                }
            }
            let names = rest[end..].to_vec();
            if names.is_empty() {
                return Err(usage_err("stop", "\"nsrun stop\" requires at least 1 argument"));
            }
            Ok(Cmd::Stop { timeout, names })
        }
        "rm" => {
            let (opts, end) = split_opts("rm", rest, &[])?;
            let mut force = false;
            for (f, v) in opts {
                match f.as_str() {
                    "-h" | "--help" => return Ok(Cmd::Help(RM_USAGE)),
                    "-f" | "--force" => {
                        no_value("rm", &f, &v)?;
                        force = true
                    }
                    _ => return Err(usage_err("rm", format!("unknown flag: {f}"))),
                }
            }
            let names = rest[end..].to_vec();
            if names.is_empty() {
                return Err(usage_err("rm", "\"nsrun rm\" requires at least 1 argument"));
            }
            Ok(Cmd::Rm { force, names })
        }
        "images" => {
            let (opts, end) = split_opts("images", rest, &[])?;
            if let Some((f, _)) = opts.first() {
                return if f == "-h" || f == "--help" { Ok(Cmd::Help(IMAGES_USAGE)) } else { Err(usage_err("images", format!("unknown flag: {f}"))) };
            }
            if end < rest.len() {
                return Err(usage_err("images", "\"nsrun images\" accepts no arguments"));
            }
            Ok(Cmd::Images)
        }
        "rmi" => {
            let (opts, end) = split_opts("rmi", rest, &[])?;
            if let Some((f, _)) = opts.first() {
                return if f == "-h" || f == "--help" { Ok(Cmd::Help(RMI_USAGE)) } else { Err(usage_err("rmi", format!("unknown flag: {f}"))) };
            }
            let names = rest[end..].to_vec();
            if names.is_empty() {
                return Err(usage_err("rmi", "\"nsrun rmi\" requires at least 1 argument"));
            }
            Ok(Cmd::Rmi { names })
        }
        other if other.starts_with('-') => Err(usage_err("", format!("unknown flag: {other}"))),
        other => Err(usage_err("", format!("unknown command: {other:?}"))),
    }
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
    let bad = || usage_err("run", format!("invalid volume specification: {v:?}"));
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

fn parse_run(args: &[String]) -> Result<Cmd, Fail> {
    const VALUED: &[&str] = &[
        "-v", "--volume", "-e", "--env", "--name", "--rootfs", "--image", "--bundle", "--hostname", "--net",
        "--network",
    ];
    let (opts, end) = split_opts("run", args, VALUED)?;
    let mut o = RunOpts {
        interactive: false,
        tty: false,
        detach: false,
        rm: false,
        name: None,
        volumes: Vec::new(),
        env: Vec::new(),
        image: Image::Host,
        hostname: None,
        net: Net::None,
        cmd: args[end..].to_vec(),
    };
    let mut image_flag: Option<String> = None;
    for (f, v) in opts {
        let mut set_image = |img: Image, f: &str| -> Result<(), Fail> {
            if let Some(prev) = &image_flag {
                return Err(usage_err("run", format!("{prev} and {f} cannot be used together")));
            }
            image_flag = Some(f.to_owned());
            o.image = img;
            Ok(())
        };
        if matches!(f.as_str(), "-i" | "-t" | "-d" | "--interactive" | "--tty" | "--detach" | "--rm") {
            no_value("run", &f, &v)?;
        }
        match f.as_str() {
            "-h" | "--help" => return Ok(Cmd::Help(RUN_USAGE)),
            "-i" | "--interactive" => o.interactive = true,
            "-t" | "--tty" => o.tty = true,
            "-d" | "--detach" => o.detach = true,
            "--rm" => o.rm = true,
            "--name" => o.name = v,
            "-v" | "--volume" => o.volumes.push(parse_volume(&v.unwrap_or_default())?),
            "-e" | "--env" => {
                let e = parse_env(v.unwrap_or_default())?;
                if !e.is_empty() {
                    o.env.push(e);
                }
            }
            "--rootfs" => set_image(Image::Rootfs(v.unwrap_or_default().into()), &f)?,
            "--image" => set_image(Image::Tar(v.unwrap_or_default().into()), &f)?,
            "--bundle" => set_image(Image::Bundle(v.unwrap_or_default().into()), &f)?,
            "--hostname" => o.hostname = v,
            "--net" | "--network" => {
                o.net = match v.as_deref() {
                    Some("none") => Net::None,
                    Some("host") => Net::Host,
                    other => {
                        return Err(usage_err("run", format!("invalid network {:?}: use none or host", other.unwrap_or(""))))
                    }
                }
            }
            _ => return Err(usage_err("run", format!("unknown flag: {f}"))),
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
    if o.cmd.is_empty() && !matches!(o.image, Image::Bundle(_)) {
        return Err(usage_err("run", "\"nsrun run\" requires a command to run"));
    }
    if o.detach && o.tty {
        return Err(Fail::new(125, "-t cannot be combined with -d: nsrun has no attach"));
    }
    if o.detach && o.interactive {
        return Err(Fail::new(125, "-i cannot be combined with -d: nsrun has no attach"));
    }
    Ok(Cmd::Run(o))
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

fn parse_exec(args: &[String]) -> Result<Cmd, Fail> {
    let (opts, end) = split_opts("exec", args, &["-e", "--env"])?;
    let mut o = ExecOpts { interactive: false, tty: false, env: Vec::new(), name: String::new(), cmd: Vec::new() };
    for (f, v) in opts {
        match f.as_str() {
            "-h" | "--help" => return Ok(Cmd::Help(EXEC_USAGE)),
            "-i" | "--interactive" => o.interactive = true,
            "-t" | "--tty" => o.tty = true,
            "-e" | "--env" => {
                let e = parse_env(v.unwrap_or_default())?;
                if !e.is_empty() {
                    o.env.push(e);
                }
            }
            _ => return Err(usage_err("exec", format!("unknown flag: {f}"))),
        }
    }
    match &args[end..] {
        [name, cmd @ ..] if !cmd.is_empty() => {
            o.name = name.clone();
            o.cmd = cmd.to_vec();
            Ok(Cmd::Exec(o))
        }
        _ => Err(usage_err("exec", "\"nsrun exec\" requires at least 2 arguments")),
    }
}

fn parse_ps(args: &[String]) -> Result<Cmd, Fail> {
    let (opts, end) = split_opts("ps", args, &[])?;
    let (mut all, mut quiet) = (false, false);
    for (f, v) in opts {
        match f.as_str() {
            "-h" | "--help" => return Ok(Cmd::Help(PS_USAGE)),
            "-a" | "--all" => all = true,
            "-q" | "--quiet" => quiet = true,
            _ => return Err(usage_err("ps", format!("unknown flag: {f}"))),
        }
        no_value("ps", &f, &v)?;
    }
    if end < args.len() {
        return Err(usage_err("ps", format!("unexpected argument {:?}", args[end])));
    }
    Ok(Cmd::Ps { all, quiet })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn bundled_and_valued_flags() {
        let Cmd::Run(o) = parse(&v("run -it --rm -v/a:/b:ro --name=x -e A=1 sh -c true")).unwrap() else { panic!() };
        assert!(o.interactive && o.tty && o.rm);
        assert_eq!(o.volumes, vec![Volume { host: "/a".into(), ctr: "/b".into(), readonly: true }]);
        assert_eq!(o.name.as_deref(), Some("x"));
        assert_eq!(o.env, vec!["A=1".to_owned()]);
        assert_eq!(o.cmd, v("sh -c true"));
        let Cmd::Stop { timeout, .. } = parse(&v("stop -t 3 a")).unwrap() else { panic!() };
        assert_eq!(timeout, 3);
        assert!(parse(&v("run --bogus sh")).unwrap_err().msg.contains("unknown flag: --bogus"));
        assert!(parse(&v("run --name")).is_err());
    }
}
