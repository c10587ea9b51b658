#!/usr/bin/env bash
# Builds what the arm64 test VM runs beyond its Debian root filesystem
# (rootfs-arm64.sh), into target/vm-tests/arm64/:
#   beyla       the agent cross-compiled for aarch64-unknown-linux-gnu (probes
#               built with -D__TARGET_ARCH_arm64 by agent/build.rs), stripped;
#               it links to the glibc of Debian 12, which the root filesystem has
#   go-server   the Go sample app, GOARCH=arm64, static
#   busybox     Debian's busybox-static for arm64, for the initramfs
# Needs: rustup, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (the linker
# and glibc), go, and the private apt state kernels/fetch.sh leaves in
# $KERNELS_CACHE/.apt/ (for `apt-get download busybox-static:arm64`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
# shellcheck source=../../scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
dest=target/vm-tests/arm64
target=aarch64-unknown-linux-gnu
cross_libs=/usr/aarch64-linux-gnu/lib

die() { echo "build-arm64: error: $*" >&2; exit 1; }
say() { echo "build-arm64: $*" >&2; }
mkdir -p "$dest"

command -v aarch64-linux-gnu-gcc >/dev/null && [ -e "$cross_libs/libc.so.6" ] ||
  die "the aarch64 cross toolchain is missing: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"

# ---------------------------------------------------------------- the agent
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  say "rustup target add $target"
  rustup target add "$target" || die "cannot add the Rust target $target (rustup target add $target)"
fi
say "cargo build --release --target $target -p beyla"
# Debian's cross gcc links; build.rs sees CARGO_CFG_TARGET_ARCH=aarch64 and
# compiles the probes for arm64 (bindgen reads events.h for the target too).
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  cargo build --release --locked -q -p beyla --target "$target"
bin=target/$target/release/beyla
if [ ! -e "$dest/beyla" ] || [ "$bin" -nt "$dest/beyla" ]; then
  # Stripped: 40 MB of debug info would only slow the initramfs down.
  aarch64-linux-gnu-strip -o "$dest/beyla" "$bin"
fi

# ---------------------------------------------------------------- the Go app
go_bin=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$go_bin" ] || die "go not found (scripts/setup.sh installs it)"
(cd vm-tests/apps/go/server && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOTOOLCHAIN=local \
  "$go_bin" build -o "$repo/$dest/go-server" .)

# ---------------------------------------------------------------- busybox
if [ ! -x "$dest/busybox" ]; then
  # Every suite's private apt state from kernels/fetch.sh has arm64 indexes.
  # A mirror can list a package it no longer serves (a security pocket moving
  # on): then the next suite's state is tried.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  fetched=0
  for d in "$KERNELS_CACHE"/.apt/*/; do
    state=${d%/}
    [ -f "$state/sources.list" ] || continue
    opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null"
      -o "Dir::State::Lists=$state/lists" -o "Dir::State::Status=/dev/null"
      -o "Dir::Cache=$state/cache" -o "APT::Architecture=amd64"
      -o "APT::Architectures=amd64,arm64" -o "Acquire::Languages=none" -o "APT::Sandbox::User=root")
    say "apt-get download busybox-static:arm64 (apt state ${state#"$KERNELS_CACHE"/})"
    if (cd "$tmp" && apt-get "${opts[@]}" -q download busybox-static:arm64 >/dev/null 2>&1); then
      fetched=1
      break
    fi
    # Lists too old for the archive: refresh them once and retry.
    apt-get "${opts[@]}" -q update >/dev/null 2>&1 || true
    if (cd "$tmp" && apt-get "${opts[@]}" -q download busybox-static:arm64 >/dev/null 2>&1); then
      fetched=1
      break
    fi
    say "busybox-static:arm64 not served through ${state#"$KERNELS_CACHE"/}; trying the next suite"
  done
  [ "$fetched" = 1 ] || die "apt-get download busybox-static:arm64 failed with every apt state in $KERNELS_CACHE/.apt (run kernels/fetch.sh --arch arm64 first)"
  dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/root"
  install -m 0755 "$tmp/root/bin/busybox" "$dest/busybox"
fi
say "ready in $dest: beyla, go-server, busybox"
