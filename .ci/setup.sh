#!/usr/bin/env bash
# Installs what the checks need on a fresh machine: the rustfmt and clippy components.
set -euo pipefail
cargo --version
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
