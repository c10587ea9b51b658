#!/usr/bin/env bash
# Builds, once, the Debian bookworm arm64 root filesystem the arm64 test VMs
# boot (shared read-only over 9P, as the amd64 guests share the host's /):
# minbase with python3, nodejs and a Java 17 runtime, so the same sample apps
# and scenario.py run there as on amd64, then (apt-get in the chroot, its own
# step, so a longer list does not start over) the database servers the apps'
# /db endpoints query.
#
#   rootfs-arm64.sh            prints the root directory (builds it if needed)
#   rootfs-arm64.sh --check    exit 0 if it is built, 1 if not
#
# Kept in ~/.cache/beyla/arm64-rootfs/ (scripts/lib/cache.sh), outside the
# clone. debootstrap runs the arm64 maintainer scripts through
# qemu-user-static, so binfmt_misc must know aarch64: this registers Debian's
# entry (/usr/lib/binfmt.d/qemu-aarch64.conf) when the kernel has none.
# Needs root, debootstrap, qemu-user-static and Debian's archive.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../../scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
suite=bookworm
# What the guest runs: the apps' runtimes, and what boot.sh calls beyond minbase.
packages=python3,nodejs,openjdk-17-jre-headless,iproute2,procps,kmod
# The servers of the /db scenario (vm-tests/lib/databases.sh starts them).
extra="postgresql mariadb-server redis-server"
dir=$BEYLA_CACHE/arm64-rootfs
root=$dir/$suite
stamp=$root/.complete
extra_stamp=$root/.extra

die() { echo "rootfs-arm64: error: $*" >&2; exit 1; }
say() { echo "rootfs-arm64: $*" >&2; }

base_built() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$suite $packages" ]; }
extra_built() { [ -f "$extra_stamp" ] && [ "$(cat "$extra_stamp")" = "$extra" ]; }
if [ "${1:-}" = --check ]; then
  base_built && extra_built
  exit
fi
if base_built && extra_built; then
  echo "$root"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, binfmt_misc)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
interpreter=/usr/libexec/qemu-binfmt/aarch64-binfmt-P
[ -x "$interpreter" ] || die "$interpreter not found: apt-get install qemu-user-static"

binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  mountpoint -q "$binfmt" || mount -t binfmt_misc binfmt_misc "$binfmt" ||
    die "cannot mount binfmt_misc on $binfmt"
  entry=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$entry" ] || die "$entry not found (qemu-user-static)"
  say "registering aarch64 with binfmt_misc ($entry)"
  cat "$entry" >"$binfmt/register" || die "cannot register $entry with binfmt_misc"
fi

if ! base_built; then
  mkdir -p "$dir"
  rm -rf --one-file-system "$root.tmp"
  say "debootstrap --arch arm64 --variant=minbase $suite with $packages (once; a few minutes)"
  debootstrap --arch arm64 --variant=minbase --include="$packages" "$suite" "$root.tmp" \
    >"$dir/debootstrap.log" 2>&1 ||
    { tail -20 "$dir/debootstrap.log" >&2; die "debootstrap failed (log: $dir/debootstrap.log)"; }
  # The package cache is not needed in the guest.
  rm -rf "$root.tmp"/var/cache/apt/archives/*.deb
  rm -rf --one-file-system "$root"
  mv "$root.tmp" "$root"
  echo "$suite $packages" >"$stamp"
fi

# The database servers: installed, never started here (policy-rc.d), with no
# default cluster (the scenario makes its own data directories).
say "apt-get install $extra (in the chroot)"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/etc/postgresql-common"
echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
status=0
# shellcheck disable=SC2086 # a list of packages
DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c \
  "apt-get update -q && apt-get install -y -q --no-install-recommends $extra" \
  >"$dir/apt.log" 2>&1 || status=$?
umount "$root/proc"
[ $status = 0 ] || { tail -20 "$dir/apt.log" >&2; die "apt-get install in the chroot failed (log: $dir/apt.log)"; }
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
echo "$extra" >"$extra_stamp"
say "ready: $root ($(du -sh "$root" | cut -f1))"
echo "$root"
