#!/usr/bin/env bash
# The deploy path, offline: validate the template with SAM's linter, build every function of
# the template for arm64 with `sam build` (cargo-lambda + zig), and report the size of each bootstrap binary.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/deploy-tools.sh
export PATH="$PWD/.local/deploy-venv/bin:$PATH" SAM_CLI_TELEMETRY=0
# The consumers are one Fn::ForEach loop (AWS::LanguageExtensions): SAM CLI expands it locally
# with --language-extensions (samconfig.toml sets it for validate, build, package and deploy),
# and its expansion must be the local runtime's.
extended=$(mktemp --suffix=.json)
trap 'rm -f "$extended"' EXIT
cargo run -q -- template >"$extended"
python infra/sam/extensions.py template.yaml "$extended"
sam validate --lint
sam build
echo
echo "function              bootstrap (arm64, stripped)"
for binary in .aws-sam/build/*/bootstrap; do
    function=$(basename "$(dirname "$binary")")
    file "$binary" | grep -q "ARM aarch64" || { echo "$binary is not an arm64 binary" >&2; exit 1; }
    printf '%-21s %s bytes\n' "$function" "$(stat -c %s "$binary")"
done
built=$(find .aws-sam/build -name bootstrap | wc -l)
expected=$(grep -c '"Type": "AWS::Serverless::Function"' "$extended")
[ "$built" -eq "$expected" ] || { echo "expected $expected functions, built $built" >&2; exit 1; }
