#!/usr/bin/env bash
# Runs every fuzz target (parsers, HPACK, stitchers) for a bounded time with
# cargo-fuzz (libFuzzer, nightly Rust). A crash fails the run and leaves its
# input in fuzz/artifacts/. FUZZ_SECONDS sets the time per target.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"
# The nightly toolchain and cargo-fuzz: the fuzz items of scripts/requirements.txt.
bash "$repo/scripts/deps.sh" check fuzz
cd "$repo/fuzz"
log="$(mktemp)"
for target in $(cargo +nightly fuzz list); do
  if cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
    echo "fuzz: $target: $(grep -E '^Done' "$log" | tail -1)"
  else
    tail -30 "$log" >&2
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
rm -f "$log"
