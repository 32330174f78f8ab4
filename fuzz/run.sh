#!/usr/bin/env bash
# Runs the fuzz targets one after another (`make fuzz`).
#
#   FUZZ_SECONDS=600      how long each target runs (libFuzzer -max_total_time)
#   FUZZ_TARGETS="a b"    which targets (default: all four)
#   FUZZ_TARGET_DIR=dir   cargo's target dir (default: fuzz/target)
#
# Needs cargo-fuzz (installed into ~/.cache/distans/tools/bin if missing)
# and nightly compiler flags: on a stable toolchain it sets
# RUSTC_BOOTSTRAP=1. Seeds come from the project's fixtures
# (examples/seed_corpora.rs) into fuzz/corpus/<target>, which also keeps what
# libFuzzer finds; a crashing input lands in fuzz/artifacts/<target>/.
# Runs under `nice -n 19`. Not part of `make test`: a fuzz run is long.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${DISTANS_TOOLS:-$HOME/.cache/distans/tools}"
export PATH="$TOOLS/bin:$PATH"
export RUSTC_BOOTSTRAP=1
SECONDS_EACH="${FUZZ_SECONDS:-600}"
TARGETS="${FUZZ_TARGETS:-wire_decode invoices_json_lines invoices_csv listing_register}"
TARGET_DIR="${FUZZ_TARGET_DIR:-fuzz/target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz into $TOOLS"
    cargo install cargo-fuzz --locked --root "$TOOLS"
fi

# Seeds: plain build (no fuzzing flags), then written from the fixtures.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TARGET_DIR/seeds}" cargo run --quiet --manifest-path fuzz/Cargo.toml --example seed_corpora -- fuzz/corpus

# Safe Rust (unsafe_code = forbid): no sanitizer, so more executions per
# second; panics, overflow (debug assertions are on), timeouts and memory
# over -rss_limit_mb are what is looked for.
for target in $TARGETS; do
    nice -n 19 cargo fuzz build -s none --target-dir "$TARGET_DIR" "$target"
done
status=0
for target in $TARGETS; do
    mkdir -p "fuzz/artifacts/$target"
    log="fuzz/artifacts/$target/run.log"
    echo "== $target: ${SECONDS_EACH} s (log: $log)"
    # -fork=1 with -ignore_*: a crash does not end the run; every crashing
    # input is saved and the run lasts its whole time.
    nice -n 19 cargo fuzz run -s none --target-dir "$TARGET_DIR" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 >"$log" 2>&1 || status=1
    # The last status line: executions, coverage, corpus, and
    # "oom/timeout/crash: a/b/c".
    grep -E '^#[0-9]+' "$log" | tail -1 || true
    crashes=$(find "fuzz/artifacts/$target" -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l)
    echo "   inputs saved in fuzz/artifacts/$target/: $crashes"
    [ "$crashes" -eq 0 ] || status=1
done
exit $status
