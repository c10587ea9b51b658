#!/usr/bin/env bash
# Proves the install path on a machine where nothing was set up: a fresh
# Debian bookworm (debootstrap --variant=minbase, the release of the project's
# machines), then, inside it, `scripts/deps.sh --kinds deb,pip install` and
# `check`: every Debian package and PyPI module of scripts/requirements.txt
# must install and then pass its check. A test that calls something missing
# from the list, or a list item that does not install, fails here.
#
#   bash scripts/fresh-debian.sh     (as root; scripts/test.sh runs it)
#
# The Rust and Go toolchains (kind tool) come with the machine, not from
# Debian at the versions needed, and the cargo/go/gomod/script items need them:
# they are checked on the host. In the chroot, which has no toolchain, a full
# `deps.sh install` (what setup.sh runs) must stop on those items only, naming
# Rust and Go; that is checked too.
#
# Cached under ~/.cache/beyla/debootstrap/ (scripts/lib/cache.sh): the minbase
# tree as a tarball, made once, and apt's and pip's downloads, so a run
# downloads only what changed. Each run unpacks a new tree (in a tmpfs) and
# removes it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/cache.sh
. "$repo/scripts/lib/cache.sh"

suite=bookworm
cache="$BEYLA_CACHE/debootstrap"
tarball="$cache/$suite-minbase.tar.gz"
archives="$cache/$suite-apt-archives"
pip_cache="$cache/pip"

die() { echo "fresh-debian: error: $*" >&2; exit 1; }
say() { echo "fresh-debian: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, mounts)"
command -v debootstrap >/dev/null || die "debootstrap not found: bash scripts/deps.sh install ci"
started=$SECONDS
mkdir -p "$cache" "$archives/partial" "$pip_cache"

if [ ! -f "$tarball" ]; then
  say "debootstrap --variant=minbase $suite (once; kept as $tarball)"
  first=$(mktemp -d "$cache/first.XXXXXX")
  debootstrap --variant=minbase "$suite" "$first" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; rm -rf --one-file-system "$first"; die "debootstrap failed (log: $cache/debootstrap.log)"; }
  tar -C "$first" -czf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$first"
fi

root=$(mktemp -d "$cache/root.XXXXXX")
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if grep -q " $root[/ ]" /proc/mounts; then
    say "something is still mounted on $root: left in place"
  else
    rmdir "$root"
  fi
}
trap cleanup EXIT
bind() { # bind SRC DEST-in-root
  mkdir -p "$root$2"
  mount --bind "$1" "$root$2"
  mounts+=("$root$2")
}

# The tree lives in memory (about 2 GiB once installed): dpkg's many fsyncs
# cost nothing there, and removing it is one umount.
mount -t tmpfs -o size=8g,mode=0755 tmpfs "$root"; mounts+=("$root")
tar -C "$root" -xzf "$tarball"
chmod 0755 "$root" # the tree's /, which was mktemp's 0700 directory
mount -t proc proc "$root/proc"; mounts+=("$root/proc")
bind /dev /dev
bind /dev/pts /dev/pts
bind "$archives" /var/cache/apt/archives
bind "$pip_cache" /root/.cache/pip
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# The machine's own certificate authorities, as on any machine of the site (a
# network that inspects TLS needs them); the ca-certificates package adds them
# to the bundle that Debian's pip and curl read.
mkdir -p "$root/usr/local/share/ca-certificates"
cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
# apt downloads into the shared cache as its sandbox user.
chown "$(chroot "$root" id -u _apt)" "$root/var/cache/apt/archives/partial"
# No service may start inside the chroot (nginx's postinst would).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
# The pockets a Debian install has: the release, its updates and security.
mirror=$(awk '$1 == "deb" {print $2; exit}' "$root/etc/apt/sources.list")
[ -n "$mirror" ] || die "no mirror in the chroot's sources.list"
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s-security %s-security main\n' \
  "$mirror" "$suite" "$mirror" "$suite" "${mirror%/}" "$suite" >"$root/etc/apt/sources.list"
# Only the scripts: deps.sh and the list it reads.
mkdir -p "$root/src"
cp -r "$repo/scripts" "$root/src/"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
say "fresh $suite tree ready in $((SECONDS - started)) s"

step=$SECONDS
in_root bash /src/scripts/deps.sh --kinds deb,pip install
say "deb and pip items installed and checked in $((SECONDS - step)) s"

# What setup.sh does on a machine without the toolchains: deps.sh install
# (all kinds) must stop, naming Rust and Go, with nothing else missing but
# what needs them.
out=$(in_root bash /src/scripts/deps.sh install 2>&1) && die "deps.sh install passed in a chroot without the Rust and Go toolchains"
printf '%s\n' "$out" | sed 's/^/  | /' >&2
unexpected=$(printf '%s\n' "$out" | grep -E '^  [a-z]+ \| ' | grep -Ev '^  [a-z]+ \| (tool|cargo|go|gomod|script) \| ' || true)
[ -z "$unexpected" ] || die "items missing after install: $unexpected"
printf '%s\n' "$out" | grep -q '| tool | Rust ' && printf '%s\n' "$out" | grep -q '| tool | Go ' ||
  die "deps.sh install did not name the missing Rust and Go toolchains"
say "PASS: a fresh $suite installs every deb and pip item; without toolchains, install names them ($((SECONDS - started)) s in all)"
