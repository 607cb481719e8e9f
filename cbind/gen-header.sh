#!/bin/sh
# Regenerate include/nsboot.h from the Rust sources with cbindgen (the
# dev-dependency pinned by Cargo.lock, driven by tests/header.rs).
# --check: fail if the committed header is stale.
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
    cargo test -q --test header
else
    NSBOOT_WRITE_HEADER=1 cargo test -q --test header
fi
