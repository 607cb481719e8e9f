//! nsrun: a small container runtime built on nsboot's public API only.
//!
//! ```text
//! nsrun run [OPTIONS] [--] CMD [ARG...]     (nsrun run --help lists them)
//! nsrun ps [-a] | logs NAME | exec [-i] [-t] NAME CMD... | stop [-t SECONDS] NAME | rm [-f] NAME
//! nsrun images | rmi IMAGE | completion bash|zsh|fish | --version
//! ```
//!
//! Exit status, as docker's: 125 for an error of nsrun itself (a bad flag,
//! an unknown container, a container that cannot start), 126 when the
//! command cannot be executed, 127 when it is not found, and otherwise the
//! command's own status (128+N for a signal).
//!
//! How a container starts (see `run.rs`): the host side seals its own
//! binary once ([`nsboot::SealedExe`]) and starts it through
//! [`nsboot::caller::spawn`] with the namespaces to create. That copy enters
//! `main` below, whose first call is [`nsboot::nsexec`]: stage-0/1/2 run,
//! and stage-2 comes back here as PID 1 of the new PID namespace. It reads
//! its orders from the init socket (`init.rs`), mounts the overlay inside
//! its own mount namespace (so the host mount table never sees it),
//! prepares the rootfs with [`nsboot_oci::rootfs::prepare`], brings `lo` up
//! and execs the command, which is then PID 1.

mod cli;
mod config;
mod exec;
mod identity;
mod images;
mod image;
mod init;
mod lifecycle;
mod limits;
mod net;
mod ops;
mod reaper;
mod run;
mod security;
mod spec;
mod state;
mod supervise;
mod sys;

/// A failure of nsrun itself: the exit status and one line for stderr.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub msg: String,
}

impl Fail {
    pub fn new(code: i32, msg: impl Into<String>) -> Fail {
        Fail { code, msg: msg.into() }
    }
}

pub type Result<T> = std::result::Result<T, Fail>;

/// Turn any error into a 125 failure with context.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Fail::new(125, format!("{}: {e}", what())))
    }
}

fn net_cmd(c: cli::NetCmd) -> Result<i32> {
    let root = state::root()?;
    if !nix::unistd::geteuid().is_root() {
        return Err(Fail::new(125, "bridge networks need root (rootless: --net none or host)"));
    }
    match c {
        cli::NetCmd::Create { subnet, mtu, name } => {
            let n = net::create(&root, &name, &subnet, mtu)?;
            println!("{}", n.name);
        }
        cli::NetCmd::Ls => {
            println!("{:<20} {:<16} SUBNET", "NAME", "BRIDGE");
            for n in net::list(&root) {
                println!("{:<20} {:<16} {}/{}", n.name, n.bridge, n.subnet, n.prefix);
            }
        }
        cli::NetCmd::Rm { names } => {
            for n in names {
                let users = |net: &str| -> Vec<String> {
                    state::list(&root)
                        .into_iter()
                        .filter(|(_, r)| state::is_running(r) && r.network.as_ref().is_some_and(|a| a.network == net))
                        .map(|(_, r)| r.name)
                        .collect()
                };
                net::remove(&root, &n, users)?;
                println!("{n}");
            }
        }
    }
    Ok(0)
}

fn main() {
    // First thing: when started as a bootstrap this runs stage-0/1/2 and
    // returns only in stage-2, inside the container's namespaces.
    if nsboot::nsexec() == nsboot::Outcome::InContainer {
        init::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = cli::parse(&args).and_then(|cmd| match cmd {
        cli::Cmd::Print(text) => {
            use std::io::Write;
            // A closed pipe (`nsrun --help | head`) is not an error.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            Ok(0)
        }
        cli::Cmd::Run(o) => run::run(*o),
        cli::Cmd::Exec(o) => exec::exec(o),
        cli::Cmd::Ps { all, quiet, format } => ops::ps(all, quiet, format.as_deref()),
        cli::Cmd::Logs { name, follow, tail } => ops::logs(&name, follow, tail),
        cli::Cmd::Kill { signal, names } => lifecycle::kill_cmd(signal, &names),
        cli::Cmd::Wait { names } => lifecycle::wait(&names),
        cli::Cmd::Start { names } => lifecycle::start(&names),
        cli::Cmd::Restart { timeout, names } => lifecycle::restart(timeout, &names),
        cli::Cmd::Inspect { names } => lifecycle::inspect(&names),
        cli::Cmd::Top { name } => lifecycle::top(&name),
        cli::Cmd::Stats { no_stream, names } => lifecycle::stats(no_stream, &names),
        cli::Cmd::Prune => lifecycle::prune(),
        cli::Cmd::Network(c) => net_cmd(c),
        cli::Cmd::Stop { timeout, names } => ops::stop(timeout, &names),
        cli::Cmd::Rm { force, names } => ops::rm(force, &names),
        cli::Cmd::Images => ops::images(),
        cli::Cmd::Rmi { names } => ops::rmi(&names),
        cli::Cmd::Import { archive, name } => state::root().and_then(|r| images::import::import(&r, &archive, &name)),
        cli::Cmd::Commit { container, name } => state::root().and_then(|r| images::commit::commit(&r, &container, &name)),
    });
    let code = match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("nsrun: {}", f.msg.replace('\n', " "));
            f.code
        }
    };
    std::process::exit(code)
}
