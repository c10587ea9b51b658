#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine, as root: system packages, kernel
# filesystems, the agent's build and the sample apps. Idempotent; sourced by
# demo.sh and test.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (the agent loads eBPF programs; the tests run it for real)" >&2
  exit 1
fi

# Build tools for the probes, load generators and clients the tests drive.
packages=(clang llvm libbpf-dev bpftool pkg-config curl wrk iproute2 util-linux procps openssl)
command -v python3 >/dev/null || packages+=(python3)
command -v node >/dev/null || packages+=(nodejs)
# The framework sample apps: a venv for Flask (Debian's python3 has ensurepip
# only with python3-venv), npm for Express, Maven for Spark Java.
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
command -v npm >/dev/null || packages+=(npm)
command -v mvn >/dev/null || packages+=(maven)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || packages+=(golang-go)
command -v javac >/dev/null || packages+=(default-jdk-headless)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The kernel-matrix VM tests (vm-tests/run): QEMU for amd64 and arm64 guests, a
# static busybox and cpio for their initramfs, the aarch64 linker and glibc for
# the cross-compiled agent. No recommends: they would add QEMU's GUI and firmware.
vm_packages=(qemu-system-x86 qemu-system-arm busybox-static cpio gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
vm_missing=()
for p in "${vm_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || vm_missing+=("$p")
done
if [ ${#vm_missing[@]} -gt 0 ]; then
  echo "setup: installing ${vm_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${vm_missing[@]}" >/dev/null
fi

# The Kubernetes integration tests: etcd and etcdctl from Debian; the real
# kube-apiserver is built from its Go module below (cached under ~/.cache/beyla).
k8s_packages=(etcd-server etcd-client)
k8s_missing=()
for p in "${k8s_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || k8s_missing+=("$p")
done
if [ ${#k8s_missing[@]} -gt 0 ]; then
  echo "setup: installing ${k8s_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${k8s_missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "setup: Rust 1.87 or newer is required (install it with rustup)" >&2; exit 1; }
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"

# The agent mounts tracefs itself when it can; bpffs and debugfs are for bpftool and people.
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

cd "$repo"
cargo build --locked -q -p beyla
bash vm-tests/apps/build.sh
# Kubernetes tests: kube-apiserver v1.32.0 (a few minutes the first time; prints its build time).
bash integration-tests/fixtures/kube-apiserver/build.sh
