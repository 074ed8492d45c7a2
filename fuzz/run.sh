#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 600), two at a time,
# on the committed corpora, and prints each target's executions. Needs cargo-fuzz and a
# nightly toolchain: `cargo install cargo-fuzz`, then `fuzz/run.sh [SECONDS] [TARGET...]`.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(npy csv csv_bytes idx npz tar model_file checkpoint preprocess)
cargo +nightly fuzz build -O
mkdir -p logs
run() {
  # -rss_limit_mb: a reader that allocates what the input does not back fails the run.
  cargo +nightly fuzz run -O "$1" "corpus/$1" -- -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"logs/$1.log" 2>&1 \
    && echo "$1: ok" || echo "$1: FAILED (see fuzz/logs/$1.log)"
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "logs/$1.log" | sed "s/^/$1 /" || true
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [[ $((i + 1)) -lt ${#targets[@]} ]] && run "${targets[i + 1]}" &
  wait
done
