//! Real engines drive nsboot-runtime: podman (rootful, private storage and
//! containers.conf) and containerd (started by the script with a private
//! root, state and socket, driven with `ctr --runc-binary`). The scripts
//! under tests/engines/ print one `ok`/`FAIL` line per check; each test
//! skips (with the reason) when its engine is not installed
//! (`make engines` installs them: podman, conmon, containerd).

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nsboot-runtime");

fn engine(script: &str, tools: &[&str]) {
    if !common::is_root() {
        common::skip("requires root (rootful engines)");
        return;
    }
    for t in tools {
        if !common::have(t) {
            common::skip(&format!("{t} not installed (make engines installs it)"));
            return;
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines").join(script);
    let out = Command::new("sh").arg(&path).arg(BIN).output().expect("run engine script");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("all passed"), "{script}:\n{text}");
}

#[test]
fn podman_drives_it() {
    engine("podman.sh", &["podman", "conmon", "script"]);
}

#[test]
fn containerd_drives_it() {
    engine("containerd.sh", &["containerd", "ctr", "podman"]);
}
