#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine, as root: everything scripts/requirements.txt
# lists (scripts/deps.sh install: Debian packages, PyPI modules, Go and
# crates.io tools, the sample apps' PyPI/npm/Maven packages, Prometheus), the
# kernel filesystems, the agent's build and the sample apps. Idempotent;
# sourced by demo.sh and test.sh. setup_purposes (set before sourcing) limits
# the install to some purposes of the list, e.g. "build test"; default: all.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (the agent loads eBPF programs; the tests run it for real)" >&2
  exit 1
fi

# shellcheck source=lib/path.sh
. "$repo/scripts/lib/path.sh"
# shellcheck disable=SC2086 # a list of purposes
bash "$repo/scripts/deps.sh" install ${setup_purposes:-}

# The agent mounts tracefs itself when it can; bpffs and debugfs are for bpftool and people.
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

cd "$repo"
cargo build --locked -q -p beyla
bash vm-tests/apps/build.sh
# Kubernetes tests: kube-apiserver v1.32.0 (a few minutes the first time; prints its build time).
bash integration-tests/fixtures/kube-apiserver/build.sh
