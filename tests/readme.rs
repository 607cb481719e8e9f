//! Every shell command the README shows is run by a test: this one runs
//! those that can run here (in a scratch directory, with the README's
//! `$HOME` pointing into it), and for each of the others names the test
//! that runs the same thing, or says why nothing does. A command added to
//! the README without an entry below fails `every_readme_command_is_accounted_for`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// How a README command line is tested.
enum How {
    /// Run by `readme_commands_run_as_shown`, in the block's order.
    Run,
    /// Run (the same command, or the same build in the debug profile) by
    /// these test functions of tests/*.rs.
    By(&'static [&'static str]),
    /// Not run by any test, and why.
    NotRun(&'static str),
}

/// Every command line of the README's `sh` blocks (continuations joined,
/// trailing `# comments` dropped), and how it is tested.
const LINES: &[(&str, How)] = &[
    ("make run", How::By(&["make_run_removes_its_container", "default_image_isolation_and_write_layer", "tty_through_a_real_pty"])),
    ("make test", How::NotRun("it is the whole suite: CI runs it (.ci/run)")),
    ("make install PREFIX=$HOME/nsboot", How::Run),
    ("export PKG_CONFIG_PATH=$HOME/nsboot/lib/pkgconfig", How::Run),
    ("cc -o hello examples/c/hello.c $(pkg-config --cflags --libs nsboot) -Wl,-rpath,$HOME/nsboot/lib", How::Run),
    ("cc -o hello-static examples/c/hello.c $(pkg-config --cflags --libs nsboot-static)", How::Run),
    ("./hello-static", How::Run),
    ("cargo build --release", How::NotRun("a release build (LTO) takes minutes; the suite builds the same packages in its own profile")),
    (
        "cd examples/go/nsboot-hello && CGO_LDFLAGS=-L$OLDPWD/target/release go build && ./nsboot-hello",
        How::By(&["go_package_side_effect_import_and_builder"]),
    ),
    (
        "NSBOOT_NS=mnt,pid,uts NSBOOT_ROOTLESS=1 NSBOOT_HOSTNAME=box LD_PRELOAD=$HOME/nsboot/lib/libnsboot.so /bin/sh -c 'id -u; hostname; echo $$'",
        How::Run,
    ),
    ("cargo build --release --example nsrun", How::NotRun("a release build; the suite builds nsrun in its own profile (common::nsrun_bin)")),
    ("sudo target/release/examples/nsrun run --rm -it sh", How::By(&["default_image_isolation_and_write_layer", "tty_through_a_real_pty"])),
    ("target/release/examples/nsrun run --rm -it sh", How::By(&["default_image_isolation_rootless"])),
    ("nsrun run --rm --image busybox.tar --hostname box sh -c 'hostname; ps; ip link'", How::Run),
    ("nsrun run -d --name web -v /srv/www:/www:ro --rootfs ./rootfs httpd -f -h /www", How::Run),
    ("nsrun exec web cat /www/index.html; nsrun logs web; nsrun stop -t 2 web; nsrun rm web", How::Run),
    ("nsrun run --rm --bundle ./bundle /bin/true", How::Run),
    ("nsrun images; nsrun rmi busybox.tar", How::Run),
    ("nsrun import busybox-oci.tar busybox", How::By(&["images_import_oci_and_docker_archive_run_commit_rmi"])),
    ("nsrun run --rm busybox", How::By(&["images_import_oci_and_docker_archive_run_commit_rmi"])),
    (
        "nsrun run --rm -u nobody -w /tmp --memory 64m --pids-limit 50 busybox sh -c 'id; pwd'",
        How::By(&["user_workdir_mounts_env_file_entrypoint_etc_files_init", "limits_are_in_the_cgroup_and_enforced"]),
    ),
    ("nsrun run -d --name web2 --net bridge -p 8080:80 busybox httpd -f -h /www", How::By(&["bridge_network_ping_port_publish_nat_and_teardown"])),
];

/// The README's shell lines, in order: ```sh blocks, `\` continuations
/// joined, comment lines and trailing comments dropped; with the comment
/// lines (`# text`) that follow each, its expected output.
fn readme_lines() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(root_dir().join("README.md")).expect("README.md");
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            in_sh = !in_sh && lang.trim() == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(c) = line.trim_start().strip_prefix("# ") {
            if let Some(last) = out.last_mut() {
                last.1.push(c.to_owned());
            }
            continue;
        }
        let code = match line.find("  #") {
            Some(i) => &line[..i],
            None => line,
        };
        let code = code.trim();
        if let Some(cont) = code.strip_suffix('\\') {
            pending.push_str(cont.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let full = std::mem::take(&mut pending).trim().to_owned();
        if !full.is_empty() {
            out.push((full, Vec::new()));
        }
    }
    out
}

fn how(line: &str) -> Option<&'static How> {
    LINES.iter().find(|(l, _)| *l == line).map(|(_, h)| h)
}

#[test]
fn every_readme_command_is_accounted_for() {
    let lines = readme_lines();
    assert!(lines.len() >= 10, "few shell lines found in the README: {lines:?}");
    let missing: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).filter(|l| how(l).is_none()).collect();
    assert!(missing.is_empty(), "README commands no test accounts for (add them to tests/readme.rs LINES): {missing:#?}");
    let stale: Vec<&str> = LINES.iter().map(|(l, _)| *l).filter(|l| !lines.iter().any(|(r, _)| r == l)).collect();
    assert!(stale.is_empty(), "LINES entries no longer in the README: {stale:#?}");
    // The tests named must exist.
    let mut sources = String::new();
    for e in std::fs::read_dir(root_dir().join("tests")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "rs") {
            sources.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    for (l, h) in LINES {
        match h {
            How::By(tests) => {
                for t in *tests {
                    assert!(sources.contains(&format!("fn {t}()")), "{l:?}: no test fn {t}");
                }
            }
            How::NotRun(why) => assert!(why.len() > 10, "{l:?}: say why no test runs it"),
            How::Run => {}
        }
    }
}

/// Run `script` with sh in `cwd`; panic with its output unless it succeeds.
fn sh(script: &str, cwd: &Path, env: &[(&str, &Path)]) -> String {
    let mut c = Command::new("sh");
    c.args(["-euc", script]).current_dir(cwd).env_remove("MAKEFLAGS").env_remove("MAKELEVEL");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run_with_timeout(c, Duration::from_secs(300));
    assert!(o.status.success(), "README commands failed:\n{script}\n--- stdout\n{}--- stderr\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn readme_commands_run_as_shown() {
    require_root!();
    for tool in ["make", "cc", "pkg-config", "tar"] {
        if !have(tool) {
            common::skip(&format!("{tool} not installed"));
            return;
        }
    }
    let lines = readme_lines();
    let run: Vec<&(String, Vec<String>)> = lines.iter().filter(|(l, _)| matches!(how(l), Some(How::Run))).collect();
    let home = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-readme-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(home.path()).unwrap();
    let _ = Command::new("chmod").arg("0755").arg(home.path()).status();
    let root = root_dir();
    let lib = lib_dir();
    let profile = lib.file_name().unwrap().to_string_lossy().into_owned();
    let target = lib.parent().unwrap().to_path_buf();

    // C and LD_PRELOAD: one script, in order (the export carries over).
    // `make install` gets the test-only variables the suite always uses
    // (install what this test run built, no nested release build).
    let mut c_script = String::new();
    for (l, want) in run.iter().filter(|(l, _)| !l.starts_with("nsrun ")) {
        let mut cmd = l.replace("examples/c/", &format!("{}/examples/c/", root.display()));
        if cmd.starts_with("make install") {
            cmd = format!(
                "make -C {} install PREFIX=$HOME/nsboot NSBOOT_NO_BUILD=1 PROFILE={profile} CARGO_TARGET_DIR={} >/dev/null",
                root.display(),
                target.display()
            );
        }
        if want.is_empty() {
            c_script.push_str(&format!("{cmd}\n"));
        } else {
            // The README shows its output: compare.
            c_script.push_str(&format!("out=$({cmd}); test \"$out\" = '{}' || {{ echo \"got: $out\"; exit 1; }}\n", want.join("\n")));
        }
    }
    common::plugin_lib();
    sh(&c_script, home.path(), &[("HOME", home.path())]);

    // nsrun: the README's files, made here.
    let Some(img) = busybox_rootfs("readme-img", &["sh", "hostname", "ps", "ip"]) else { return };
    let st = Command::new("tar").arg("-cf").arg(home.join("busybox.tar")).arg("-C").arg(img.path()).arg(".").status().unwrap();
    assert!(st.success());
    let Some(rootfs) = busybox_rootfs("readme-rootfs", &["sh", "httpd", "cat"]) else { return };
    std::os::unix::fs::symlink(rootfs.path(), home.join("rootfs")).unwrap();
    let Some(bundle) = busybox_bundle("readme", false) else { return };
    std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin/true")).unwrap();
    std::os::unix::fs::symlink(bundle.path(), home.join("bundle")).unwrap();
    let www = home.join("srv/www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from www\n").unwrap();
    let state = home.join("state");
    let bin_dir = nsrun_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mounts = OwnMounts::new(&[home.path(), img.path(), rootfs.path(), bundle.path()]);
    let mut script = String::new();
    for (l, _) in run.iter().filter(|(l, _)| l.starts_with("nsrun ")) {
        script.push_str(&l.replace("/srv/www", &www.to_string_lossy()));
        script.push('\n');
    }
    let out = {
        let mut c = Command::new("sh");
        c.args(["-euc", &script]).current_dir(home.path()).env("PATH", &path).env("NSRUN_ROOT", &state);
        let o = run_with_timeout(c, Duration::from_secs(120));
        assert!(o.status.success(), "README nsrun commands failed:\n{script}\n--- stdout\n{}--- stderr\n{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    assert!(out.starts_with("box\n"), "hostname: {out}");
    assert!(out.contains("hello from www\n"), "the read-only volume: {out}");
    assert!(out.contains("IMAGE ID"), "nsrun images: {out}");
    mounts.assert_unchanged("README nsrun commands");
    let left: Vec<_> = std::fs::read_dir(state.join("containers")).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "containers left: {left:?}");
}
