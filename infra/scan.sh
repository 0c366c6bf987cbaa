#!/usr/bin/env bash
# The template scanners: checkov and cfn-lint with the serverless rules (pinned in
# infra/scan/requirements.txt, installed into .local/scan-venv on first use), on template.yaml
# and on its SAM-expanded form. infra/scan/suppressions.yaml says why each remaining finding
# stays; a finding it does not cover, or an entry no finding needs, fails the scan.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.local/scan-venv
infra/python-env.sh scan-venv infra/scan/requirements.txt
# The SAM translator lives with the emulator's pinned tools in .local/venv.
infra/setup.sh >/dev/null
# The template as AWS::LanguageExtensions leaves it (the consumers' loop expanded: the scanners
# do not expand loops), then as SAM's transform leaves that.
extended=$(mktemp --suffix=.json)
expanded=$(mktemp --suffix=.json)
trap 'rm -f "$extended" "$expanded"' EXIT
cargo run -q -- template >"$extended"
.local/venv/bin/python infra/sam/translate.py "$extended" >"$expanded"
PATH="$PWD/$venv/bin:$PATH" python infra/scan/scan.py "$extended" "$expanded" \
    infra/scan/suppressions.yaml
