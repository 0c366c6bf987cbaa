#!/usr/bin/env bash
# `cargo run -- setup` (the pinned emulator and tools under .local/) for the scripts CI runs, from
# a build of the whole workspace: `--workspace --all-targets` selects the dependency features
# `cargo test --workspace` selects, where `cargo run` (the root package alone) selects others and
# builds some sixty dependencies a second time, gigabytes of disk on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --all-targets
exec "${CARGO_TARGET_DIR:-target}/debug/orderflow" setup "$@"
