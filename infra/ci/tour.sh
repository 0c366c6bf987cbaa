#!/usr/bin/env bash
# The README's tour, run as a newcomer runs it: `cargo run -- up` (terminal 1, here in the
# background), then the README's block between `<!-- tour -->` and `<!-- /tour -->` (terminal 2),
# as one `bash -euo pipefail`: the first command that fails fails CI (every curl there has -f).
# The README cannot drift from the CLI or the API without this failing.
set -euo pipefail
cd "$(dirname "$0")/../.."
logs=.local/ci
mkdir -p "$logs"

tour=$(awk '/^<!-- tour -->$/ {on = 1; next} /^<!-- \/tour -->$/ {on = 0} on && !/^```/' README.md)
[ -n "$tour" ] || { echo "README.md has no <!-- tour --> block" >&2; exit 1; }

cargo build --quiet --bin orderflow
source infra/local-system.sh
trap 'if [ -n "${UP_PID:-}" ]; then kill -- "-$UP_PID" 2>/dev/null || true; fi' EXIT
up_start "$logs/tour-up.log"

started=$SECONDS
bash -veuo pipefail -c "$tour"
echo
echo "the README's tour ran in $((SECONDS - started)) s"
