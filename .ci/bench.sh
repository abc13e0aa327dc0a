#!/usr/bin/env bash
# The benches of both packages must build, the demo must run, and a small `trigwire bench`
# must run against the reference (seconds, not minutes); it exits non-zero if they
# disagree. `cargo run` at the root runs the tools crate's one binary.
set -euo pipefail
cargo bench --workspace --no-run
cargo run --release -q -- demo >/dev/null
cargo run --release -q -- bench --jobs 20 --frames 100 --reference
cargo run --release -q -- bench --jobs 20 --frames 100 --batch 64 --order inorder
