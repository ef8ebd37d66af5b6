#!/usr/bin/env bash
# Builds every fuzz target, then runs each for FUZZ_SECS seconds (default 60); or only the
# targets named as arguments: `FUZZ_SECS=600 fuzz/run-ci.sh guest_abi`.
#
# Works on a stable toolchain: cargo-fuzz passes nightly-only flags, which RUSTC_BOOTSTRAP=1
# allows. No sanitizer (`-s none`): wasmtime's signal handlers and ASan do not mix, and the code
# under test is safe Rust, so panics and hangs are what we are after.
#
# The committed seeds in fuzz/corpus/<target> are read but never written: new inputs go to
# fuzz/target/corpus/<target> (ignored by git). A failing input lands in fuzz/artifacts/<target>/
# and cargo-fuzz prints the command that reproduces it.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Build first, so the time limits below are spent fuzzing.
cargo fuzz build -s none

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

for target in "${targets[@]}"; do
    echo "--- fuzzing $target for ${FUZZ_SECS:-60} s"
    mkdir -p "fuzz/target/corpus/$target"
    cargo fuzz run "$target" -s none "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="${FUZZ_SECS:-60}" -timeout=10 -rss_limit_mb=4096
done
