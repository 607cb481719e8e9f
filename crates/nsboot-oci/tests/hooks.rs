//! Lifecycle hooks: through the probe (a whole create/start/run with every
//! hook kind, failures and timeouts) and through `Hooks::run` directly
//! (posix_spawn from this multi-threaded harness).

mod common;

use std::time::{Duration, Instant};

use common::{config, text, Bundle, TempDir};
use nsboot_oci::hooks::{HookKind, Hooks, State, Status};
use nsboot_oci::HookError;
use serde_json::{json, Value};

/// A hook that appends "<kind> <$HOOKVAR> <stdin>" to `log`, with `sh`
/// (the host's for runtime-namespace hooks, busybox's in the container).
fn logging_hook(kind: &str, log: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("printf '%s %s %s\\n' \"$0\" \"$HOOKVAR\" \"$(cat)\" >> {log}"), kind],
        "env": ["HOOKVAR=from-config"],
    })
}

/// A config whose six hook kinds log to `logdir/hooks.log`; `logdir` is
/// bind-mounted at /hooklog in the container for startContainer and the
/// program.
fn lifecycle_config(logdir: &std::path::Path, namespaces: &[&str]) -> Value {
    let host_log = logdir.join("hooks.log").display().to_string();
    let mut c = config("echo program - - >> /hooklog/hooks.log", namespaces);
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/hooklog", "type": "bind", "source": logdir, "options": ["rbind"],
    }));
    c["annotations"] = json!({"org.example.key": "value"});
    let mut hooks = serde_json::Map::new();
    for kind in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] {
        hooks.insert(kind.into(), json!([logging_hook(kind, &host_log)]));
    }
    hooks.insert("startContainer".into(), json!([logging_hook("startContainer", "/hooklog/hooks.log")]));
    c["hooks"] = Value::Object(hooks);
    c
}

fn read_log(logdir: &std::path::Path) -> Vec<(String, String, Option<Value>)> {
    let s = std::fs::read_to_string(logdir.join("hooks.log")).unwrap_or_default();
    s.lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let kind = parts.next().unwrap_or_default().to_owned();
            let var = parts.next().unwrap_or_default().to_owned();
            let state = serde_json::from_str(parts.next().unwrap_or_default()).ok();
            (kind, var, state)
        })
        .collect()
}

fn check_lifecycle(rootless: bool) {
    let logdir = TempDir::new("hooklog");
    common::chmod(logdir.path(), 0o777);
    let mut ns = vec!["mount", "pid", "uts", "ipc"];
    if rootless {
        ns.insert(0, "user");
    }
    let b = Bundle::new("lifecycle", &lifecycle_config(logdir.path(), &ns));
    let out = b.run(rootless, &["--id", "ctr-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = read_log(logdir.path());
    let kinds: Vec<&str> = log.iter().map(|(k, _, _)| k.as_str()).collect();
    // poststart runs once the program was executed: before or after the
    // program's own line; everything else is ordered.
    let mut hooks_only: Vec<&str> = kinds.iter().copied().filter(|k| *k != "program").collect();
    assert_eq!(
        hooks_only,
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "{kinds:?}"
    );
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos("startContainer") < pos("program") && pos("program") < pos("poststop"), "{kinds:?}");
    hooks_only.clear();

    let mut pid = None;
    for (kind, var, state) in log.iter().filter(|(k, _, _)| k != "program") {
        assert_eq!(var, "from-config", "{kind}: env");
        let st = state.as_ref().unwrap_or_else(|| panic!("{kind}: no state JSON on stdin"));
        assert_eq!(st["ociVersion"], "1.2.0", "{kind}");
        assert_eq!(st["id"], "ctr-1", "{kind}");
        assert_eq!(st["bundle"], b.path().display().to_string(), "{kind}");
        assert_eq!(st["annotations"], json!({"org.example.key": "value"}), "{kind}");
        let want = match kind.as_str() {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(st["status"], want, "{kind}");
        let p = st["pid"].as_i64().unwrap_or_else(|| panic!("{kind}: no pid"));
        assert!(p > 1, "{kind}: the host pid of the container's init");
        assert_eq!(*pid.get_or_insert(p), p, "{kind}: same pid for every hook");
    }
}

#[test]
fn every_hook_kind_runs_in_order_with_the_state() {
    require_root!();
    check_lifecycle(false);
}

#[test]
fn every_hook_kind_runs_in_order_with_the_state_rootless() {
    require_rootless!();
    check_lifecycle(true);
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    require_root!();
    let logdir = TempDir::new("hookfail");
    let log = logdir.path().join("hooks.log").display().to_string();
    let mut c = config("echo program - - >> /hooklog/hooks.log", &["mount", "pid"]);
    c["hooks"] = json!({
        "createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo hook says no >&2; exit 3"]},
            logging_hook("second-createRuntime", &log),
        ],
        "createContainer": [logging_hook("createContainer", &log)],
        "poststop": [logging_hook("poststop", &log)],
    });
    let b = Bundle::new("hookfail", &c);
    let out = b.run(false, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("hooks.createRuntime[0] \"/bin/sh\": exit status 3: hook says no"), "{err}");
    let kinds: Vec<String> = read_log(logdir.path()).into_iter().map(|(k, _, _)| k).collect();
    // The rest of createRuntime and createContainer did not run; poststop
    // did (the lifecycle continues at "destroy").
    assert_eq!(kinds, ["poststop"]);
    assert!(!b.rootfs().join("hooklog/hooks.log").exists());
    assert!(common::processes_with(&b.path().to_string_lossy()).is_empty(), "a process was left");
}

#[test]
fn timed_out_create_container_hook_is_killed_and_fails_create() {
    require_root!();
    let logdir = TempDir::new("hooktimeout");
    let log = logdir.path().join("hooks.log").display().to_string();
    let mut c = config("echo program - - >> /hooklog/hooks.log", &["mount", "pid"]);
    c["hooks"] = json!({
        "createContainer": [{"path": "/bin/sleep", "args": ["sleep", "7.4321"], "timeout": 1}],
        "startContainer": [logging_hook("startContainer", "/hooklog/hooks.log")],
        "poststop": [logging_hook("poststop", &log)],
    });
    let b = Bundle::new("hooktimeout", &c);
    let t = Instant::now();
    let out = b.run(false, &[]);
    let err = text(&out.stderr);
    assert!(t.elapsed() < Duration::from_secs(6), "took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("hooks.createContainer[0] \"/bin/sleep\": timed out after 1s (killed)"), "{err}");
    assert!(common::processes_with("7.4321").is_empty(), "the hook was left running");
    assert!(common::processes_with(&b.path().to_string_lossy()).is_empty(), "a process was left");
    assert!(!b.rootfs().join("hooklog/hooks.log").exists(), "startContainer or the program ran");
    let kinds: Vec<String> = read_log(logdir.path()).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["poststop"]);
}

#[test]
fn failing_poststart_hook_is_a_warning_and_the_rest_run() {
    require_root!();
    let logdir = TempDir::new("poststart");
    let log = logdir.path().join("hooks.log").display().to_string();
    let mut c = config("true", &["mount", "pid"]);
    c["hooks"] = json!({
        "poststart": [{"path": "/bin/false"}, logging_hook("poststart", &log)],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}, logging_hook("poststop", &log)],
    });
    let b = Bundle::new("poststart", &c);
    let out = b.run(false, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: hooks.poststart[0] \"/bin/false\": exit status 1"), "{err}");
    assert!(err.contains("warning: hooks.poststop[0] \"/bin/sh\": exit status 9"), "{err}");
    let kinds: Vec<String> = read_log(logdir.path()).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["poststart", "poststop"]);
}

fn spec_with_hooks(hooks: Value) -> nsboot_oci::oci_spec::runtime::Spec {
    let mut c = config("true", &[]);
    c["hooks"] = hooks;
    serde_json::from_value(c).unwrap()
}

#[test]
fn a_hook_that_ignores_a_large_state_neither_blocks_nor_kills_us() {
    let mut spec = spec_with_hooks(json!({"createRuntime": [{"path": "/bin/true"}]}));
    // 1 MiB of annotations: far more than a socket buffer.
    let big: std::collections::HashMap<String, String> = [("big".to_owned(), "x".repeat(1 << 20))].into();
    spec.set_annotations(Some(big));
    let hooks = Hooks::from_spec(&spec).unwrap();
    let st = State::new(&spec, "big", "/b", Status::Creating, Some(1));
    let t = Instant::now();
    assert_eq!(hooks.run(HookKind::CreateRuntime, &st), Ok(vec![]));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_hook_reads_the_whole_state_and_a_background_child_does_not_hang_us() {
    let dir = TempDir::new("direct");
    let out = dir.path().join("state.json");
    let spec = spec_with_hooks(json!({"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}; sleep 3 & exit 0", out.display())]}
    ]}));
    let hooks = Hooks::from_spec(&spec).unwrap();
    let st = State::new(&spec, "direct", "/bundle", Status::Stopped, None);
    let t = Instant::now();
    assert_eq!(hooks.run(HookKind::Poststop, &st), Ok(vec![]));
    assert!(t.elapsed() < Duration::from_secs(2), "waited for the hook's child: {:?}", t.elapsed());
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v, json!({"ociVersion": "1.2.0", "id": "direct", "status": "stopped", "bundle": "/bundle"}));
}

#[test]
fn hook_errors_name_the_hook_and_a_signal() {
    let spec = spec_with_hooks(json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $$"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}, {"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}],
    }));
    let hooks = Hooks::from_spec(&spec).unwrap();
    let st = State::new(&spec, "x", "/b", Status::Creating, Some(1));
    match hooks.run(HookKind::Prestart, &st) {
        Err(HookError::Signaled { kind: "prestart", index: 0, signal: 9, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Non-fatal: both run, both reported.
    let w = hooks.run(HookKind::Poststop, &st).unwrap();
    assert!(matches!(&w[..], [HookError::Exit { code: 4, .. }, HookError::Exit { code: 5, index: 1, .. }]), "{w:?}");
}

#[test]
fn hook_plan_errors() {
    for (hooks, want) in [
        (
            json!({"poststop": [{"path": "relative/hook"}]}),
            "hooks.poststop[0].path \"relative/hook\": must be an absolute path",
        ),
        (
            json!({"createRuntime": [{"path": "/etc/passwd"}]}),
            "hooks.createRuntime[0].path \"/etc/passwd\": not executable",
        ),
        (json!({"prestart": [{"path": "/bin"}]}), "hooks.prestart[0].path \"/bin\": not a regular file"),
        (
            json!({"poststart": [{"path": "/bin/true", "timeout": 0}]}),
            "hooks.poststart[0].timeout: \"0\": must be greater than zero",
        ),
    ] {
        let e = Hooks::from_spec(&spec_with_hooks(hooks)).unwrap_err().to_string();
        assert_eq!(e, want);
    }
    // startContainer paths resolve in the container: only absoluteness is
    // checked here.
    assert!(Hooks::from_spec(&spec_with_hooks(json!({"startContainer": [{"path": "/only/in/container"}]}))).is_ok());
}

#[test]
fn failing_start_container_hook_stops_before_exec() {
    require_root!();
    let logdir = TempDir::new("startfail");
    let log = logdir.path().join("hooks.log").display().to_string();
    let mut c = config("echo program - - >> /hooklog/hooks.log", &["mount", "pid"]);
    c["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo not today; exit 2"]}],
        "poststart": [logging_hook("poststart", &log)],
        "poststop": [logging_hook("poststop", &log)],
    });
    let b = Bundle::new("startfail", &c);
    let out = b.run(false, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("hooks.startContainer[0] \"/bin/sh\": exit status 2: not today"), "{err}");
    assert!(!b.rootfs().join("hooklog/hooks.log").exists(), "the program ran");
    let kinds: Vec<String> = read_log(logdir.path()).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["poststop"], "poststart must not run when the program was not executed");
}

#[test]
fn a_start_container_hook_missing_in_the_container_is_a_spawn_error() {
    // startContainer paths are only resolved when the hook runs (in the
    // container); run here, the path does not exist either.
    let spec = spec_with_hooks(json!({"startContainer": [{"path": "/nonexistent/start-hook"}]}));
    let hooks = Hooks::from_spec(&spec).unwrap();
    let st = State::new(&spec, "x", "/b", Status::Created, Some(1));
    let e = hooks.run(HookKind::StartContainer, &st).unwrap_err();
    assert_eq!(
        e.to_string(),
        "hooks.startContainer[0] \"/nonexistent/start-hook\": spawn: ENOENT: No such file or directory"
    );
}
