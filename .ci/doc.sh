#!/usr/bin/env bash
# Docs build with warnings (broken intra-doc links included) denied.
set -euo pipefail
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
