#!/usr/bin/env bash
# Prints a Python 3.13 interpreter (LocalStack's), or fails: LOCALSTACK_PYTHON, python3.13 on
# PATH, or pyenv's 3.13.
for candidate in "${LOCALSTACK_PYTHON:-}" python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
        echo "$candidate"
        exit 0
    fi
done
exit 1
