#!/usr/bin/env bash
# Installs the pinned deploy tools into .local/deploy-venv (SAM CLI, cargo-lambda, zig) and the
# Rust arm64 Lambda target. Idempotent: a second run only checks. Then:
#   export PATH="$PWD/.local/deploy-venv/bin:$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."
infra/python-env.sh deploy-venv infra/deploy-requirements.txt
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
    || rustup target add aarch64-unknown-linux-gnu
