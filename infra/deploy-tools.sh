#!/usr/bin/env bash
# Installs the pinned deploy tools into .local/deploy-venv (SAM CLI, cargo-lambda, zig) and the
# Rust arm64 Lambda target. Idempotent: a second run only checks. Then:
#   export PATH="$PWD/.local/deploy-venv/bin:$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.local/deploy-venv
stamp="$venv/.installed"
if ! cmp -s infra/deploy-requirements.txt "$stamp" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/deploy-requirements.txt
    cp infra/deploy-requirements.txt "$stamp"
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
    || rustup target add aarch64-unknown-linux-gnu
