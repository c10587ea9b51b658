#!/usr/bin/env bash
# Packs the arm64 test VM's initramfs: busybox (arm64), the aarch64 agent and
# its glibc, the Go sample app, the 9P modules (for the results share) and
# inet_diag's, the requests to send (from vm-tests/lib/checks.py) and
# vm-tests/guest/arm64-init.
#
#   initramfs-arm64.sh MODULES_DIR DEST.cpio.gz
#
# Inputs come from vm-tests/lib/build-arm64.sh (target/vm-tests/arm64/).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: initramfs-arm64.sh MODULES_DIR DEST.cpio.gz" >&2; exit 2; }
modules=$1 dest=$2
built=$repo/target/vm-tests/arm64
for f in beyla go-server busybox lib/ld-linux-aarch64.so.1; do
  [ -e "$built/$f" ] || { echo "initramfs-arm64: $built/$f missing: run vm-tests/lib/build-arm64.sh" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,modules,proc,sys,dev,tmp,results,sys/fs/bpf}
install -m 0755 "$built/busybox" "$stage/bin/busybox"
# The applet list is the same as the host's busybox; the arm64 binary cannot
# run here to print its own.
for applet in sh mount umount mkdir cat echo sleep kill insmod ip grep sed wc tail head \
  wget poweroff sync dmesg uname rm cp ls ps seq tr date mountpoint; do
  ln -s busybox "$stage/bin/$applet"
done
cp "$built"/lib/* "$stage/lib/"
install -m 0755 "$built/beyla" "$stage/bin/beyla"
install -m 0755 "$built/go-server" "$stage/bin/go-server"
# inet_diag/tcp_diag: the agent finds listening sockets over sock_diag netlink.
python3 "$here/modules.py" "$modules" "$stage/modules" '?virtio_pci' 9pnet_virtio 9p inet_diag tcp_diag \
  >"$stage/modules/order"
python3 "$here/checks.py" requests basic,chunked >"$stage/requests"
install -m 0755 "$here/../guest/arm64-init" "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$dest"
