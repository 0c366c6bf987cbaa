#!/usr/bin/env bash
# Installs the pinned cargo subcommands CI runs (cargo-deny, cargo-machete) from crates.io, once
# per version, into $ORDERFLOW_CACHE/tools (outside the clone), and prints the directory to put
# on PATH. A later run with the same versions only checks.
set -euo pipefail
root="${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}/tools"
install() {
    local crate=$1 version=$2
    if [ "$("$root/bin/$crate" --version 2>/dev/null | awk '{print $NF}')" != "$version" ]; then
        # Their own target directory: the shared one holds the project's builds.
        CARGO_TARGET_DIR="$root/build" cargo install --quiet --locked --root "$root" "$crate@$version" >&2
    fi
}
install cargo-deny 0.20.2
install cargo-machete 0.9.2
rm -rf "$root/build"
echo "$root/bin"
