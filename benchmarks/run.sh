#!/usr/bin/env bash
# Every benchmark table and chart in one run; writes BENCHMARKS.md and benchmarks/charts/.
#   benchmarks/run.sh           # the full run (about 35 minutes here, a few of them builds)
#   benchmarks/run.sh --smoke   # a handful of orders: keeps the benchmarks compiling and running
set -euo pipefail
cd "$(dirname "$0")/.."
# Every function of the template: each is a crate under functions/ (a template rule holds them
# to it), named as its binary.
packages=$(for crate in functions/*/; do printf -- '-p %s ' "$(basename "$crate")"; done)
if [ "${1:-}" = "--smoke" ]; then
    # The dev profile, which the test run has built already: --workspace --all-targets selects
    # the features `cargo test --workspace` did, so no dependency is built a second time.
    # criterion only checks its benches run.
    cargo build --quiet --workspace --all-targets
    cargo bench --quiet --profile dev --workspace --bench per_record -- --test
    target="${CARGO_TARGET_DIR:-target}"
    "$target/debug/orderflow-benchmarks" --smoke --binaries "$target/debug" --profile dev
else
    # The functions as deployed: the release profile (LTO, stripped).
    cargo build --release $packages
    cargo bench --profile measure -p orderflow-benchmarks --bench per_record
    cargo run --profile measure -p orderflow-benchmarks
fi
