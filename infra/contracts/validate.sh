#!/usr/bin/env bash
# Validates the project's API documents: events/asyncapi.yaml with the AsyncAPI parser, and
# events/openapi.yaml with Redocly's linter (rules in redocly.yaml). Both are pinned in
# package-lock.json and installed here on first use with the machine's Node.js and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ ! -d "$here/node_modules/@asyncapi/parser" ] || [ ! -d "$here/node_modules/@redocly/cli" ]; then
    npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
node "$here/validate.mjs" "$root/events/asyncapi.yaml"
# Redocly prints a banner about the Node.js version on stderr; its findings go to stdout.
"$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format stylish \
    "$root/events/openapi.yaml" 2>/dev/null
echo "$root/events/openapi.yaml: valid OpenAPI $(grep -m1 '^openapi:' "$root/events/openapi.yaml" | cut -d' ' -f2)"
