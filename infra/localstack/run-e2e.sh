#!/usr/bin/env bash
# Runs the end-to-end tests against LocalStack running on the host, without Docker: SNS and SQS
# from LocalStack (127.0.0.1:4566); DynamoDB and SES v2 from moto (LocalStack's DynamoDB
# downloads DynamoDB Local, which an offline machine cannot; its community edition has no SES v2). Needs Python 3.13: `python3.13` on PATH,
# pyenv's 3.13, or LOCALSTACK_PYTHON. Extra arguments go to `cargo test`.
#
#   infra/localstack/run-e2e.sh                  # every end-to-end test
#   infra/localstack/run-e2e.sh --test e2e fanout   # one module (arguments go to cargo test)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

python=$(infra/localstack/python.sh) || {
    echo "LocalStack needs Python 3.13 (set LOCALSTACK_PYTHON)" >&2
    exit 2
}

venv=.local/localstack-venv
infra/python-env.sh localstack-venv infra/localstack/requirements.txt "$python"
infra/setup.sh   # the pinned moto, for DynamoDB

logs=.local/localstack-run
mkdir -p "$logs"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

GATEWAY_LISTEN=127.0.0.1:4566 SERVICES=sns,sqs DNS_ADDRESS=0 DISABLE_EVENTS=1 \
    SKIP_SSL_CERT_DOWNLOAD=1 LOCALSTACK_VOLUME_DIR="$root/$logs/volume" \
    "$venv/bin/python" -m localstack.runtime.main >"$logs/localstack.log" 2>&1 &
pids+=($!)
moto_port=4599
.local/venv/bin/python infra/moto_server.py -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
pids+=($!)

wait_for() {
    for _ in $(seq 1 120); do
        if curl -sf "$1" >/dev/null; then return 0; fi
        sleep 0.5
    done
    echo "$1 did not answer; see $logs/" >&2
    exit 1
}
wait_for http://127.0.0.1:4566/_localstack/health
wait_for "http://127.0.0.1:$moto_port/moto-api/"
curl -s http://127.0.0.1:4566/_localstack/health
echo

export AWS_ENDPOINT_URL=http://127.0.0.1:4566
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$moto_port"
export AWS_ENDPOINT_URL_SESV2="http://127.0.0.1:$moto_port"
# Cognito (the customers' user pool and its tokens) is not in LocalStack's community edition.
export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
if [ $# -eq 0 ]; then
    # --workspace: the same feature set as `cargo test --workspace`, so nothing is built twice.
    set -- --workspace --test e2e
fi
cargo test "$@"
