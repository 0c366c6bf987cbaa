#!/usr/bin/env bash
# Creates the virtualenv .local/NAME with the pinned packages of REQUIREMENTS, unless it already
# holds exactly them (its .installed file names the requirements' sha256). Every Python tool of
# the project is installed this way: the emulator (the local runtime calls this), the template
# scanners, the deploy tools, LocalStack, the benchmarks' Powertools peer.
#
#   infra/python-env.sh NAME REQUIREMENTS [PYTHON]     (PYTHON: the interpreter, default python3)
#
# The installer is uv (pinned below, from PyPI): from its cache (outside the clone) it lays out a
# virtualenv of a hundred pinned wheels in about a second, where pip takes 25 s or more, which
# every fresh clone (and CI, four virtualenvs) would pay. The virtualenv is seeded with pip and
# setuptools, as `python -m venv` makes it.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.9
name=$1 requirements=$2 python=${3:-${PYTHON:-python3}}
venv=.local/$name
wanted=$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$requirements")
if [ "$(cat "$venv/.installed" 2>/dev/null)" = "$wanted" ] && [ -x "$venv/bin/python" ]; then
    exit 0
fi

tools="${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}/tools/uv-$uv_version"
if [ ! -x "$tools/bin/uv" ]; then
    python3 -m venv --clear "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$uv_version"
fi
# The interpreter is the machine's: uv is not to download one.
export UV_PYTHON_DOWNLOADS=never
rm -rf "$venv"
mkdir -p .local
"$tools/bin/uv" venv --quiet --seed --python "$python" "$venv"
VIRTUAL_ENV="$PWD/$venv" "$tools/bin/uv" pip install --quiet --compile-bytecode --requirement "$requirements"
printf %s "$wanted" >"$venv/.installed"
