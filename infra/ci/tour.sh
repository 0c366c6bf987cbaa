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
set -m
cargo run --quiet -- up >"$logs/tour-up.log" 2>&1 &
up=$!
set +m
trap 'kill -- "-$up" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    grep -q 'Ctrl-C stops everything' "$logs/tour-up.log" && break
    kill -0 "$up" 2>/dev/null || { cat "$logs/tour-up.log" >&2; exit 1; }
    sleep 0.5
done
grep -q 'Ctrl-C stops everything' "$logs/tour-up.log" || { cat "$logs/tour-up.log" >&2; exit 1; }

started=$SECONDS
bash -veuo pipefail -c "$tour"
echo "the README's tour ran in $((SECONDS - started)) s"
