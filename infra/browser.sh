#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver, for the live view's browser tests and `cargo run --
# picture` (which run this when /usr/bin/chromium or /usr/bin/chromedriver is missing). Once per
# machine: a minute or two to download; nothing to do afterwards.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
packages=(chromium chromium-driver)
echo "installing Debian's ${packages[*]} (once per machine) ..." >&2
if ! "${sudo[@]}" apt-get install -y -q "${packages[@]}" >&2; then
    # A machine whose package lists were never fetched.
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q "${packages[@]}" >&2
fi
