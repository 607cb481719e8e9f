//! include/nsboot.h must be what cbindgen generates from the sources today.
//! `NSBOOT_WRITE_HEADER=1` rewrites it (cbind/gen-header.sh).

use std::path::Path;

#[test]
fn header_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbind/cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root.join("crates/nsboot-capi"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    let want = String::from_utf8(out).expect("utf-8 header");
    let path = root.join("include/nsboot.h");
    if std::env::var_os("NSBOOT_WRITE_HEADER").is_some() {
        std::fs::write(&path, &want).expect("write include/nsboot.h");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "include/nsboot.h is stale: run cbind/gen-header.sh and commit it");
}

#[test]
fn header_version_matches_cargo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let h = std::fs::read_to_string(root.join("include/nsboot.h")).expect("header");
    let v: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').collect();
    for (name, want) in ["MAJOR", "MINOR", "PATCH"].iter().zip(v) {
        let line = format!("#define NSBOOT_VERSION_{name} {want}");
        assert!(h.contains(&line), "header lacks {line:?}");
    }
}

/// Every exported function documents NULL handling, ownership, threads and
/// errors (the four `- NULL:`, `- Ownership:`, `- Threads:`, `- Errors:`
/// lines of its doc comment, which cbindgen copies into the header).
#[test]
fn every_export_documents_null_ownership_threads_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let h = std::fs::read_to_string(root.join("include/nsboot.h")).expect("header");
    let lines: Vec<&str> = h.lines().collect();
    let mut checked = 0;
    for (i, l) in lines.iter().enumerate() {
        let is_decl = !l.starts_with("//")
            && !l.starts_with(' ')
            && l.contains('(')
            && (l.contains("nsboot_") || l.contains("nsexec"))
            && !l.starts_with('#')
            && !l.starts_with("typedef");
        if !is_decl {
            continue;
        }
        let mut doc = String::new();
        for prev in lines[..i].iter().rev() {
            if !prev.starts_with("//") {
                break;
            }
            doc.push_str(prev);
            doc.push('\n');
        }
        for key in ["- NULL:", "- Ownership:", "- Threads:", "- Errors:"] {
            assert!(doc.contains(key), "{l:?} lacks {key:?} in its doc comment");
        }
        checked += 1;
    }
    assert!(checked >= 26, "only {checked} exported functions found in the header");
}
