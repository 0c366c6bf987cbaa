#!/usr/bin/env bash
# Validates the project's API documents: events/asyncapi.yaml with the AsyncAPI parser (pinned in
# package-lock.json, installed here on first use with the machine's Node.js and npm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ ! -d "$here/node_modules/@asyncapi/parser" ]; then
    npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
node "$here/validate.mjs" "$root/events/asyncapi.yaml"
