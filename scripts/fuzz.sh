#!/usr/bin/env bash
# Fuzzes the parsers an unauthenticated client reaches (Basic header, cookie
# header, path and query, create bodies) and the htpasswd parser, each for a
# bounded time: FUZZ_SECONDS (default 10) per target, starting from the corpus
# kept in fuzz/corpus/<target>. New inputs go to a scratch directory, so a run
# leaves the repository as it was; `cargo fuzz cmin` folds finds back in.
#
# cargo-fuzz builds with sanitizer and coverage flags that only nightly compilers
# take; this machine has one stable toolchain, so RUSTC_BOOTSTRAP=1 lets it accept
# them. A crash stops the run with the input saved under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-10}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build --fuzz-dir fuzz
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  mkdir -p "$scratch/$target"
  echo "fuzzing $target for ${seconds}s"
  log="$scratch/$target.log"
  if ! cargo fuzz run --fuzz-dir fuzz "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed"
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$log" || true
done
