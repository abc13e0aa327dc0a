#!/usr/bin/env bash
# Fuzzing in CI: builds every fuzz target, replays the committed seeds and crash inputs,
# then fuzzes each target for FUZZ_SECONDS (default 60). A crash fails the script; the
# log shows libFuzzer's report, the failing input (base64) and the `cargo fuzz run`
# line that reproduces it. Works on the stable toolchain (`-s none`: no sanitizer).
#
# Usage: .ci/fuzz.sh [TARGET...]      FUZZ_SECONDS=600 .ci/fuzz.sh parse
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=(parse wire engine_vs_reference dependency callbacks_conf restore)
fi
# Bounds on one input: a hang or a blow-up is a failure too, not only a panic.
LIMITS=(-timeout=20 -rss_limit_mb=2048)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build -s none

report() {
    local target="$1"
    echo "::error::fuzz target '$target' failed" >&2
    for f in fuzz/artifacts/"$target"/*; do
        [ -f "$f" ] || continue
        echo "--- $f (base64) ---" >&2
        base64 "$f" >&2
        echo "reproduce: cargo fuzz run -s none $target $f" >&2
    done
    exit 1
}

for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t"
    dirs=("fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t")
    # A dictionary of the format's tokens, where the target reads text.
    dict=()
    if [ -f "fuzz/dicts/$t.dict" ]; then dict=("-dict=fuzz/dicts/$t.dict"); fi
    echo "=== $t: replaying the committed seeds and regressions"
    cargo fuzz run -s none "$t" "${dirs[@]}" -- -runs=0 "${LIMITS[@]}" || report "$t"
    echo "=== $t: fuzzing for ${FUZZ_SECONDS}s"
    # libFuzzer's progress lines go to a log; the end of it is shown either way.
    log="fuzz/artifacts/$t.log"
    mkdir -p fuzz/artifacts
    if ! cargo fuzz run -s none "$t" "${dirs[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "${LIMITS[@]}" ${dict[@]+"${dict[@]}"} >"$log" 2>&1; then
        tail -n 80 "$log" >&2
        report "$t"
    fi
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done|stat::(number_of_executed_units|peak_rss_mb|new_units_added))' "$log" || tail -n 5 "$log"
done
echo "fuzzing passed: ${TARGETS[*]} (${FUZZ_SECONDS}s each)"
