#!/usr/bin/env bash
# The whole test suite, as root, from a clone in any folder: install what
# scripts/requirements.txt lists, check it, prove the list installs on a fresh
# Debian, then formatting, lints, unit and replay tests, fuzzing, packaging,
# the benchmark smoke run, the kernel matrix in QEMU and the eBPF integration
# tests against real servers on this machine's kernel. Each step prints its
# time, and a table of all of them closes the run (also when a step fails).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

steps=() current="" step_start=$SECONDS suite_start=$SECONDS
step() { # step NAME: closes the running step (prints its time), opens NAME
  end_step
  current=$1 step_start=$SECONDS
  echo "== $current"
}
end_step() {
  [ -n "$current" ] || return 0
  steps+=("$(printf '%5d s  %s' $((SECONDS - step_start)) "$current")")
  echo "== $current: $((SECONDS - step_start)) s"
  current=""
}
summary() {
  local status=$?
  [ -n "$current" ] && [ $status -ne 0 ] && current="$current (FAILED)"
  end_step
  echo "== step times"
  printf '%s\n' "${steps[@]}"
  printf '%5d s  total\n' $((SECONDS - suite_start))
}
trap summary EXIT

step "setup: install what scripts/requirements.txt lists, build the agent and the sample apps"
source "$repo/scripts/setup.sh"
cd "$repo"

step "requirements: every item of scripts/requirements.txt is present"
bash scripts/deps.sh check

step "kernel"
bash "$repo/../shared/tools/kernel-facts" 2>/dev/null || uname -a

step "install path: the Debian and PyPI items install on a fresh Debian bookworm (debootstrap chroot)"
bash scripts/fresh-debian.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets --workspace -- -D warnings

step "unit and replay tests"
cargo test --locked -p beyla-pipeline -p beyla

step "fuzzing: every parser target for a bounded time"
bash scripts/fuzz.sh

step "packaging: Nix files parse, module examples, Kubernetes manifests, Helm chart"
bash scripts/check-packaging.sh

step "benchmark harness, smoke mode (no thresholds; the full run is bash bench/run.sh)"
bash bench/run.sh --quick

step "kernel matrix in QEMU: one kernel other than the host's, two apps (all: vm-tests/run)"
# vm-tests/run fetches the kernel (kernels/fetch.sh, cached in ~/.cache/beyla),
# reuses the release build the benchmark step made, and exits non-zero if qemu
# or the kernel is missing.
bash vm-tests/run --kernel 5.10-amd64 --apps go,go-tls,python

step "eBPF integration tests (root, real kernel)"
cargo test --locked -p integration-tests -- --test-threads=1 --nocapture
