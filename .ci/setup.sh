#!/usr/bin/env bash
# Installs what the checks need on a fresh machine: the rustfmt and clippy components,
# and a headless browser (Debian's chromium) for the timeline page's tests
# (tools/tests/timeline.rs, which fail under CI without one).
set -euo pipefail
cargo --version
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: no chromium and no apt-get: install chromium or set TRIGWIRE_CHROMIUM" >&2
    fi
fi
