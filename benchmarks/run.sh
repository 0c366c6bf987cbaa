#!/usr/bin/env bash
# Every benchmark table and chart in one run; writes BENCHMARKS.md and benchmarks/charts/.
#   benchmarks/run.sh           # the full run (about 20 minutes here, half of it builds)
#   benchmarks/run.sh --smoke   # a handful of orders: keeps the benchmarks compiling and running
set -euo pipefail
cd "$(dirname "$0")/.."
# Every function of the template, by the cargo binary that implements it.
packages=$(sed -n 's/^ *Binary: *//p' template.yaml | sed 's/^/-p /' | tr '\n' ' ')
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
