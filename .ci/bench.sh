#!/usr/bin/env bash
# The benches must build, and a small `trigwire bench` must run (seconds, not minutes).
set -euo pipefail
cargo bench --no-run
cargo run --release -- demo >/dev/null
if cargo run --release -q -- bench --help >/dev/null 2>&1; then
  cargo run --release -q -- bench --jobs 20 --frames 100 --reference
fi
