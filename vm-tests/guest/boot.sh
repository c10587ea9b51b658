#!/bin/bash
# PID 1 of the amd64 test VM once the initramfs has switched to the host's
# filesystem (read-only 9P under a tmpfs overlay). Mounts what the agent needs,
# runs vm-tests/guest/scenario.py for the apps in /run/vm-results/job.json and
# powers the VM off, whatever happened, so that qemu exits.
#
# No `set -e`: PID 1 must reach the power-off; every failure is written to
# /run/vm-results/boot.log for the host to report instead.
set -uo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(cd "$here/../.." && pwd)
results=/run/vm-results
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

power_off() {
  sync
  # sysrq "o" powers off without init's help; qemu runs with -no-reboot, so a
  # panic (if this fails) ends it too.
  echo o >/proc/sysrq-trigger
  sleep 60
}
trap power_off EXIT

log() { echo "boot: $*" | tee -a "$results/boot.log"; }

mount_fs() { # mount_fs TYPE DIR [OPTIONS]: mount unless something is there already
  local type=$1 dir=$2 opts=${3:-}
  mkdir -p "$dir" 2>/dev/null
  mountpoint -q "$dir" && return 0
  mount -t "$type" ${opts:+-o "$opts"} "$type" "$dir" || log "error: cannot mount $type on $dir"
}

# What scripts/setup.sh prepares on a host, plus what an init would do (the
# initramfs has mounted /tmp already, before the repository).
mount_fs proc /proc
mount_fs sysfs /sys
mount_fs devpts /dev/pts
mount_fs tmpfs /dev/shm mode=1777
mount_fs tracefs /sys/kernel/tracing
mount_fs debugfs /sys/kernel/debug
mount_fs bpf /sys/fs/bpf
mount_fs cgroup2 /sys/fs/cgroup
# Kernel messages stay in dmesg (saved below), not between the test's lines.
echo 1 >/proc/sys/kernel/printk
ip link set lo up || log "error: cannot bring up the loopback interface"
hostname beyla-vm

uname -r >"$results/uname"
log "kernel $(uname -r), $(nproc) cpu(s), repo $repo"
# inet_diag/tcp_diag among them: the agent's discovery uses sock_diag.
log "modules: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
cd "$repo" || exit 1
python3 "$here/scenario.py" --job "$results/job.json" --out "$results" 2>&1 | tee -a "$results/boot.log"
log "scenario.py exited with ${PIPESTATUS[0]}"
dmesg >"$results/dmesg.log" 2>&1
