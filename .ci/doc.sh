#!/usr/bin/env bash
# Docs of both packages (the library and the tools crate) build with warnings (broken
# intra-doc links included) denied.
set -euo pipefail
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
