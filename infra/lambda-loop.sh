#!/usr/bin/env bash
# The cargo-lambda loop of a Rust Lambda developer, run end to end and checked (CI runs it):
#
#   cargo run -- up                 the local system: the emulator where Cargo.toml's
#                                   metadata.lambda.env points the functions (127.0.0.1:4580),
#                                   the template provisioned, the catalogue stocked
#   cargo lambda watch              every function of the workspace, built and run on demand
#   cargo lambda invoke <function> --data-file events/lambda/<sample>.json
#
# Every sample in events/lambda/ is invoked and its answer checked against what the sample
# promises (tests/lambda_samples.rs): 202 from the order API; a consumer's batch with no failed
# record; its -poison batch with no failed record either, the poison record having gone to the
# consumer's dead-letter queue at once with why (a permanent failure: `cargo run -- dlq list`
# shows it).
#
#   infra/lambda-loop.sh            (LAMBDA_WATCH_PORT: watch's invoke port, default 9000)
set -euo pipefail
cd "$(dirname "$0")/.."
infra/deploy-tools.sh # cargo-lambda, pinned
export PATH="$PWD/.local/deploy-venv/bin:$PATH"
port=${LAMBDA_WATCH_PORT:-9000}
logs=.local/lambda-loop
mkdir -p "$logs"
pids=()
cleanup() { for pid in "${pids[@]}" ${UP_PID:-}; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# The CLI and every function, built before anything waits on them (the default members: one
# feature set for `cargo run -- up` and watch's `cargo run --bin <function>`).
cargo build --quiet --bins

# Each in a process group of its own, so that stopping it stops what it started; watch first,
# so that it listens by the time the system is up.
set -m
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes --timeout 300 >"$logs/watch.log" 2>&1 &
pids+=($!)
set +m
source infra/local-system.sh
up_start "$logs/up.log" --port 0
echo "local system up: $(grep -m1 'AWS emulator' "$logs/up.log")"

# What the sample promises: 202, or no failure (a poison record is dead-lettered, not failed).
check() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
sample, answer = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
if "Records" not in sample:
    ok, want = answer.get("statusCode") == 202, "statusCode 202"
else:
    failed = [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]
    ok, want = failed == [], "no failed record"
print(("ok   " if ok else "FAIL ") + f"{sys.argv[1]}: {want}; answered {json.dumps(answer)[:300]}")
sys.exit(0 if ok else 1)
EOF
}

failures=0
for sample in events/lambda/*.json; do
    function=$(basename "$sample" .json)
    function=${function%-poison}
    if answer=$(cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$port" \
        --data-file "$sample" --output-format json 2>"$logs/invoke.err"); then
        check "$sample" "$answer" || failures=$((failures + 1))
        if [[ "$sample" == *-poison.json ]]; then
            # The poison record is in the consumer's DLQ, with the reason it failed permanently.
            if cargo run --quiet -- dlq list "$function" --endpoint http://127.0.0.1:4580 \
                | grep -q "failed permanently: unreadable message"; then
                echo "ok   $sample: its poison record is in the $function DLQ with its reason"
            else
                echo "FAIL $sample: no dead letter with its reason in the $function DLQ"
                failures=$((failures + 1))
            fi
        fi
    else
        echo "FAIL $sample: cargo lambda invoke failed: $(tail -5 "$logs/invoke.err")"
        failures=$((failures + 1))
    fi
done
if [ "$failures" -ne 0 ]; then
    echo "$failures sample(s) not answered as promised; logs: $logs/ (watch.log has the functions' own)" >&2
    exit 1
fi
echo "every function answered its samples as promised"
