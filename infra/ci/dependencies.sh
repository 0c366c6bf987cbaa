#!/usr/bin/env bash
# The toolchain and dependency checks:
# - the workspace builds with the oldest Rust it declares (`rust-version` in Cargo.toml), with
#   that toolchain from rustup (`cargo check`: the compiler's verdict without code generation);
# - cargo deny (deny.toml): licences, bans (a second major of a crate only where deny.toml says
#   why it cannot be avoided), sources, and advisories when the advisory database can be fetched;
# - cargo machete: no dependency declared that the code does not use.
set -euo pipefail
cd "$(dirname "$0")/../.."

msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
echo "rust-version $msrv (rust-toolchain.toml: $(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml))"
rustup --quiet toolchain install "$msrv" --profile minimal --no-self-update
cargo "+$msrv" check --quiet --locked --workspace --all-targets

tools=$(infra/ci/cargo-tools.sh)
export PATH="$tools:$PATH"
# The advisory database is a git repository: fetched when its host can be reached, otherwise
# the other checks run and the skip is said plainly.
if cargo deny fetch db >/dev/null 2>&1; then
    cargo deny --locked check
else
    echo "cargo deny: the advisory database cannot be fetched from here; checking bans, licences and sources"
    cargo deny --locked check bans licenses sources
fi
cargo machete
