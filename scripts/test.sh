#!/usr/bin/env bash
# The whole test suite, as root: formatting, lints, unit and replay tests, then
# the eBPF integration tests against real servers on this machine's kernel.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/setup.sh"
cd "$repo"

echo "== kernel"
bash "$repo/../shared/tools/kernel-facts" 2>/dev/null || uname -a

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets --workspace -- -D warnings

echo "== unit and replay tests"
cargo test --locked -p beyla-pipeline -p beyla

echo "== fuzzing: every parser target for a bounded time"
bash scripts/fuzz.sh

echo "== packaging: Nix files parse, module examples, Kubernetes manifests, Helm chart"
bash scripts/check-packaging.sh

echo "== benchmark harness, smoke mode (no thresholds; the full run is bash bench/run.sh)"
bash bench/run.sh --quick

echo "== kernel matrix in QEMU: one kernel other than the host's, two apps (all: vm-tests/run)"
# vm-tests/run fetches the kernel (kernels/fetch.sh), reuses the release build
# the benchmark step made, and exits non-zero if qemu or the kernel is missing.
bash vm-tests/run --kernel 5.10-amd64 --apps go,python

echo "== eBPF integration tests (root, real kernel)"
cargo test --locked -p integration-tests -- --test-threads=1 --nocapture
