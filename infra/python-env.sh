#!/usr/bin/env bash
# Makes .local/NAME the virtualenv of the pinned packages of REQUIREMENTS. Every Python tool of the
# project is installed this way: the emulator (the local runtime calls this), the template
# scanners, the deploy tools, LocalStack, the benchmarks' Powertools peer.
#
#   infra/python-env.sh NAME REQUIREMENTS [PYTHON]     (PYTHON: the interpreter, default python3)
#
# The virtualenv itself lives outside the clone, in $ORDERFLOW_CACHE/venvs (default
# ~/.cache/orderflow), one per requirements file and interpreter, and .local/NAME links to it:
# every clone of the same requirements uses the same one, at the same path. The path matters:
# cargo-lambda's zig wrappers are keyed by it, and a new path would make cargo rebuild every
# arm64 dependency.
#
# The installer is uv (pinned below, from PyPI): from its cache it lays out a virtualenv of a
# hundred pinned wheels in seconds, where pip takes 25 s or more. The virtualenv is built under a
# temporary name, relocatable, and renamed into place, so that two runs at once cannot leave half
# of one; it is seeded with pip and setuptools, as `python -m venv` makes it.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.9
name=$1 requirements=$2 python=${3:-${PYTHON:-python3}}
cache=${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}

# The marker the local runtime checks: the requirements' sha256. The place: that and the Python.
sha256() { "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'; }
wanted=$(sha256 <"$requirements")
key=$( { cat "$requirements"; "$python" -c 'import sys; print(sys.version)'; } | sha256 | cut -c1-16)
venv="$cache/venvs/$name-$key"

if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$wanted" ]; then
    tools="$cache/tools/uv-$uv_version"
    if [ ! -x "$tools/bin/uv" ]; then
        python3 -m venv --clear "$tools"
        "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$uv_version"
    fi
    # The interpreter is the machine's: uv is not to download one.
    export UV_PYTHON_DOWNLOADS=never
    building="$venv.building-$$"
    rm -rf "$building"
    "$tools/bin/uv" venv --quiet --seed --relocatable --python "$python" "$building"
    VIRTUAL_ENV="$building" "$tools/bin/uv" pip install --quiet --compile-bytecode \
        --requirement "$requirements"
    printf %s "$wanted" >"$building/.installed"
    rm -rf "$venv"
    mv -T "$building" "$venv" 2>/dev/null || rm -rf "$building"
fi
mkdir -p .local
rm -rf ".local/$name"
ln -s "$venv" ".local/$name"
