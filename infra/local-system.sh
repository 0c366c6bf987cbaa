# Sourced by the scripts that run the local system as a user runs it (infra/lambda-loop.sh,
# infra/ci/tour.sh). `up_start LOG [flags of up]` starts `cargo run -- up` in a process group of
# its own (stopping the group stops the emulator it started too), waits until it serves, and
# sets UP_PID; it fails, showing the log, when `up` ends first or does not come up.
up_start() {
    local log=$1
    shift
    set -m
    cargo run --quiet -- up "$@" >"$log" 2>&1 &
    UP_PID=$!
    set +m
    for _ in $(seq 1 600); do
        grep -q 'Ctrl-C stops everything' "$log" && return 0
        kill -0 "$UP_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.5
    done
    echo "the local system did not come up; see $log" >&2
    return 1
}
