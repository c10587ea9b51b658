#!/usr/bin/env bash
# Fetch, verify and unpack the kernels of kernels/matrix.toml.
#
#   kernels/fetch.sh                 every default kernel of the manifest
#   kernels/fetch.sh 6.1-amd64 ...   only the kernels named (ids of the manifest)
#   kernels/fetch.sh --arch amd64    only one architecture
#   kernels/fetch.sh --list          print the manifest as a table
#   kernels/fetch.sh --check         compare the manifest with what the archive
#                                    serves now (newer kernel: notice; pinned
#                                    version gone: exit 1)
#
# Each kernel lands in $KERNELS_CACHE/<arch>/<package version>/ (default
# ~/.cache/beyla/kernels, outside the clone: scripts/lib/cache.sh):
#   debs/*.deb     the packages, SHA256-verified against the manifest
#   root/          dpkg -x of every package
#   vmlinuz, config, System.map, modules   symlinks into root/
#   kernel.env     shell variables for the VM harness (vm-tests/)
#   .verified      stamp; a kernel whose stamp matches the manifest is skipped
#
# apt runs with a private state per suite under $KERNELS_CACHE/.apt/<suite>/
# (own sources.list, lists, cache, empty dpkg status); the system's apt
# configuration and lists are not touched.
#
# Environment: KERNELS_MANIFEST, KERNELS_CACHE (or BEYLA_CACHE), DEBIAN_MIRROR,
# DEBIAN_SECURITY_MIRROR.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
MANIFEST=${KERNELS_MANIFEST:-$here/matrix.toml}
# shellcheck source=../scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
CACHE=$KERNELS_CACHE
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

die() { echo "fetch.sh: error: $*" >&2; exit 1; }
say() { echo "fetch.sh: $*" >&2; }

for tool in python3 apt-get apt-cache dpkg sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian/Ubuntu host needed: apt-get install apt dpkg python3)"
done
[ -f "$MANIFEST" ] || die "manifest $MANIFEST not found"

# The manifest flattened to tab-separated records (python3 >= 3.11 reads TOML):
#   K id arch suite release default nixpkgs sources 9p_virtio 9p_fs btf kernel
#   P id name version sha256 size
#   X kernel reason how_to_add
manifest_records() {
  python3 - "$MANIFEST" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    m = tomllib.load(f)
ids = set()
for k in m.get("kernel", []):
    for field in ("id", "arch", "suite", "release", "packages"):
        if field not in k:
            sys.exit(f"manifest: kernel {k.get('id', '?')} lacks '{field}'")
    if k["id"] in ids:
        sys.exit(f"manifest: duplicate id {k['id']}")
    ids.add(k["id"])
    if k["arch"] not in ("amd64", "arm64"):
        sys.exit(f"manifest: kernel {k['id']}: arch {k['arch']} not amd64/arm64")
    print("\t".join(["K", k["id"], k["arch"], k["suite"], k["release"],
                     "1" if k.get("default", True) else "0", k.get("nixpkgs", "-"),
                     "|".join(k.get("sources", [])) or "-",
                     k.get("config_net_9p_virtio", "?"), k.get("config_9p_fs", "?"),
                     k.get("config_debug_info_btf", "?"), k.get("kernel", "?")]))
    for p in k["packages"]:
        sha = p["sha256"].lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            sys.exit(f"manifest: {k['id']}: {p['name']}: sha256 is not 64 hex digits")
        print("\t".join(["P", k["id"], p["name"], p["version"], sha, str(p.get("size", 0))]))
for x in m.get("excluded", []):
    print("\t".join(["X", x["kernel"], x["reason"], x.get("how_to_add", "")]))
PY
}

records=$(manifest_records) || die "cannot read manifest $MANIFEST"

kfield() { # kfield ID N -> field N (1-based) of the K record of ID
  awk -F'\t' -v id="$1" -v n="$2" '$1=="K" && $2==id {print $n}' <<<"$records"
}
kpackages() { # kpackages ID -> "name version sha256 size" lines
  awk -F'\t' -v id="$1" '$1=="P" && $2==id {print $3" "$4" "$5" "$6}' <<<"$records"
}

# ---------------------------------------------------------------- private apt

apt_dir() { echo "$CACHE/.apt/$1"; }

apt_opts() { # apt_opts SUITE -> options array in APT_OPTS
  local d; d=$(apt_dir "$1")
  APT_OPTS=(
    -o "Dir::Etc::SourceList=$d/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "Dir::State::Lists=$d/lists"
    -o "Dir::State::Status=/dev/null"
    -o "Dir::Cache=$d/cache"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures=amd64,arm64"
    -o "Acquire::Languages=none"
    -o "APT::Sandbox::User=root"
  )
}

sources_for() { # sources_for SUITE SOURCES -> sources.list content
  local suite=$1 sources=$2
  if [ "$sources" != "-" ]; then
    tr '|' '\n' <<<"$sources"
  elif [ "$suite" = sid ] || [ "$suite" = unstable ] || [ "$suite" = experimental ]; then
    echo "deb $MIRROR $suite main"
  else
    echo "deb $MIRROR $suite main"
    echo "deb $SECURITY_MIRROR $suite-security main"
  fi
}

declare -A UPDATED=()
apt_update() { # apt_update SUITE SOURCES: once per run and suite
  local suite=$1 sources=$2 d
  [ -n "${UPDATED[$suite]:-}" ] && return 0
  d=$(apt_dir "$suite")
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  sources_for "$suite" "$sources" >"$d/sources.list.new"
  mv "$d/sources.list.new" "$d/sources.list"
  apt_opts "$suite"
  say "apt-get update ($suite, private state in ${d#"$repo"/})"
  apt-get "${APT_OPTS[@]}" -q update >"$d/update.log" 2>&1 ||
    { cat "$d/update.log" >&2; die "apt-get update failed for suite $suite"; }
  if grep -qE '^(W|E):' "$d/update.log"; then grep -E '^(W|E):' "$d/update.log" >&2; fi
  UPDATED[$suite]=1
}

# ---------------------------------------------------------------- selection

all_ids=$(awk -F'\t' '$1=="K" {print $2}' <<<"$records")
default_ids=$(awk -F'\t' '$1=="K" && $6=="1" {print $2}' <<<"$records")

mode=fetch
arch_filter=""
wanted=()
while [ $# -gt 0 ]; do
  case $1 in
    --check) mode=check ;;
    --list) mode=list ;;
    --arch) [ $# -ge 2 ] || die "--arch needs amd64 or arm64"; arch_filter=$2; shift ;;
    --arch=*) arch_filter=${1#--arch=} ;;
    --all) wanted+=($all_ids) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      if grep -qxF -- "$1" <<<"$all_ids"; then
        wanted+=("$1")
      else
        excl=$(awk -F'\t' -v k="$1" '$1=="X" && ($2==k || k ~ "^"$2"([-.]|$)") {print "  reason: "$3"\n  to add: "$4}' <<<"$records")
        [ -n "$excl" ] && die "kernel $1 is not in the default matrix:"$'\n'"$excl"
        die "no kernel '$1' in $MANIFEST; ids: $(tr '\n' ' ' <<<"$all_ids")"
      fi ;;
  esac
  shift
done
[ ${#wanted[@]} -gt 0 ] || wanted=($default_ids)
sel=()
for id in "${wanted[@]}"; do
  [ -z "$arch_filter" ] || [ "$(kfield "$id" 3)" = "$arch_filter" ] || continue
  case " ${sel[*]:-} " in *" $id "*) ;; *) sel+=("$id") ;; esac
done
[ ${#sel[@]} -gt 0 ] || die "no kernel selected"

# ---------------------------------------------------------------- list

if [ "$mode" = list ]; then
  printf '%-14s %-6s %-9s %-26s %-39s %-4s %-4s %-4s\n' id arch suite release nixpkgs 9pv 9pfs btf
  for id in "${sel[@]}"; do
    printf '%-14s %-6s %-9s %-26s %-39s %-4s %-4s %-4s\n' "$id" "$(kfield "$id" 3)" "$(kfield "$id" 4)" \
      "$(kfield "$id" 5)" "$(kfield "$id" 7)" "$(kfield "$id" 9)" "$(kfield "$id" 10)" "$(kfield "$id" 11)"
    kpackages "$id" | while read -r n v s z; do printf '    %s=%s (%s bytes)\n' "$n" "$v" "$z"; done
  done
  awk -F'\t' '$1=="X" {print "excluded "$2": "$3}' <<<"$records"
  exit 0
fi

# ---------------------------------------------------------------- check

if [ "$mode" = check ]; then
  rc=0
  for id in "${sel[@]}"; do
    arch=$(kfield "$id" 3); suite=$(kfield "$id" 4)
    apt_update "$suite" "$(kfield "$id" 8)"
    apt_opts "$suite"
    while read -r name version sha size; do
      served=$(apt-cache "${APT_OPTS[@]}" show "$name:$arch=$version" 2>/dev/null |
        awk '/^SHA256:/ {print $2; exit}') || true
      if [ -z "$served" ]; then
        echo "MISSING  $id: $name=$version is no longer served by $suite (a cached copy still works; bump the manifest)"
        rc=1
      elif [ "$served" != "$sha" ]; then
        echo "MISMATCH $id: $name=$version: archive SHA256 $served, manifest $sha"
        rc=1
      else
        echo "ok       $id: $name=$version served by $suite"
      fi
    done < <(kpackages "$id")
    # Newest kernel of the flavour: what the linux-image-<arch> meta package
    # of the suite depends on.
    meta=$(apt-cache "${APT_OPTS[@]}" policy "linux-image-$arch:$arch" 2>/dev/null |
      awk '/Candidate:/ {print $2; exit}') || true
    if [ -n "$meta" ] && [ "$meta" != "(none)" ]; then
      newest=$(apt-cache "${APT_OPTS[@]}" show "linux-image-$arch:$arch=$meta" 2>/dev/null |
        awk -F': ' '/^Depends:/ {print $2; exit}' | tr ',' '\n' |
        sed -n 's/^ *\(linux-image-[^ ]*\) (= \(.*\))$/\1 \2/p' | head -n1)
      first_version=$(kpackages "$id" | awk 'NR==1 {print $2}')
      if [ "$meta" != "$first_version" ]; then
        echo "notice   $id: $suite now serves $newest (manifest pins $first_version)"
      fi
    fi
  done
  exit $rc
fi

# ---------------------------------------------------------------- fetch

config_value() { # config_value FILE SYMBOL -> y|m|n
  local v
  v=$(sed -n "s/^$2=\(.*\)$/\1/p" "$1" | head -n1)
  echo "${v:-n}"
}

fetch_kernel() {
  local id=$1 arch suite release sources version dir stamp want
  arch=$(kfield "$id" 3); suite=$(kfield "$id" 4); release=$(kfield "$id" 5)
  sources=$(kfield "$id" 8)
  version=$(kpackages "$id" | awk 'NR==1 {print $2}')
  dir=$CACHE/$arch/$version
  stamp=$dir/.verified
  want=$(kpackages "$id")

  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
     [ -e "$dir/vmlinuz" ] && [ -e "$dir/config" ] && [ -e "$dir/kernel.env" ]; then
    say "$id: cached and verified in ${dir#"$repo"/}"
    return 0
  fi
  rm -f "$stamp"
  mkdir -p "$dir/debs"

  local name ver sha size deb got
  while read -r name ver sha size; do
    deb="$dir/debs/${name}_${ver//:/%3a}_${arch}.deb"
    if [ -f "$deb" ] && [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$sha" ]; then
      say "$id: $name=$ver already downloaded"
      continue
    fi
    rm -f "$deb"
    apt_update "$suite" "$sources"
    apt_opts "$suite"
    say "$id: downloading $name:$arch=$ver ($((size / 1024 / 1024)) MiB)"
    (cd "$dir/debs" && apt-get "${APT_OPTS[@]}" -q download "$name:$arch=$ver") >&2 ||
      die "$id: apt-get download $name:$arch=$ver failed; is it still served? (kernels/fetch.sh --check $id)"
    [ -f "$deb" ] || die "$id: apt-get download did not produce $deb"
    got=$(sha256sum "$deb" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
      rm -f "$deb"
      die "$id: SHA256 MISMATCH for $name=$ver: downloaded $got, manifest says $sha; file deleted. The archive rebuilt or replaced the package: check it (fetch.sh --check) before updating the manifest."
    fi
  done <<<"$want"

  say "$id: unpacking"
  rm -rf "$dir/root"
  mkdir -p "$dir/root"
  while read -r name ver sha size; do
    dpkg -x "$dir/debs/${name}_${ver//:/%3a}_${arch}.deb" "$dir/root"
  done <<<"$want"

  local vmlinuz config sysmap modules f
  vmlinuz=""; config=""; sysmap=""; modules=""
  # Debian <= trixie: /boot/{vmlinuz,config,System.map}-<release> and
  # /lib/modules/<release>; sid (7.x) and later: all of it inside
  # /usr/lib/modules/<release>/ (vmlinuz.unsigned in linux-binary-unsigned-*).
  for f in "boot/vmlinuz-$release" "usr/lib/modules/$release/vmlinuz.unsigned" \
           "usr/lib/modules/$release/vmlinuz" "boot/vmlinux-$release"; do
    [ -e "$dir/root/$f" ] && { vmlinuz=$f; break; }
  done
  for f in "boot/config-$release" "usr/lib/modules/$release/config"; do
    [ -e "$dir/root/$f" ] && { config=$f; break; }
  done
  for f in "boot/System.map-$release" "usr/lib/modules/$release/System.map"; do
    [ -e "$dir/root/$f" ] && { sysmap=$f; break; }
  done
  for f in "lib/modules/$release" "usr/lib/modules/$release"; do
    [ -d "$dir/root/$f" ] && { modules=$f; break; }
  done
  [ -n "$vmlinuz" ] || die "$id: no vmlinuz-$release in the packages (contents: $(cd "$dir/root" && find . -maxdepth 3 | head -20 | tr '\n' ' '))"
  [ -n "$config" ] || die "$id: no config-$release in the packages"
  [ -n "$modules" ] || die "$id: no modules directory for $release in the packages"
  ln -sfn "root/$vmlinuz" "$dir/vmlinuz"
  ln -sfn "root/$config" "$dir/config"
  ln -sfn "root/$modules" "$dir/modules"
  if [ -n "$sysmap" ]; then ln -sfn "root/$sysmap" "$dir/System.map"; else rm -f "$dir/System.map"; fi

  local v9p fs9p btf virtio_pci want9p wantfs wantbtf
  v9p=$(config_value "$dir/config" CONFIG_NET_9P_VIRTIO)
  fs9p=$(config_value "$dir/config" CONFIG_9P_FS)
  btf=$(config_value "$dir/config" CONFIG_DEBUG_INFO_BTF)
  virtio_pci=$(config_value "$dir/config" CONFIG_VIRTIO_PCI)
  want9p=$(kfield "$id" 9); wantfs=$(kfield "$id" 10); wantbtf=$(kfield "$id" 11)
  say "$id: CONFIG_NET_9P_VIRTIO=$v9p CONFIG_9P_FS=$fs9p CONFIG_DEBUG_INFO_BTF=$btf CONFIG_VIRTIO_PCI=$virtio_pci"
  if [ "$v9p/$fs9p/$btf" != "$want9p/$wantfs/$wantbtf" ]; then
    say "WARNING: $id: the config differs from the manifest ($want9p/$wantfs/$wantbtf); update config_* in matrix.toml"
  fi
  [ "$v9p" != n ] && [ "$fs9p" != n ] || say "WARNING: $id: no 9p in this kernel; the VM harness cannot share the host's files with it"
  [ "$btf" = y ] || say "WARNING: $id: no CONFIG_DEBUG_INFO_BTF; CO-RE programs need an external BTF file"

  {
    echo "KERNEL_ID=$id"
    echo "KERNEL_ARCH=$arch"
    echo "KERNEL_RELEASE=$release"
    echo "KERNEL_SUITE=$suite"
    echo "KERNEL_NIXPKGS=$(kfield "$id" 7)"
    echo "KERNEL_DIR=$dir"
    echo "KERNEL_VMLINUZ=$dir/root/$vmlinuz"
    echo "KERNEL_CONFIG=$dir/root/$config"
    echo "KERNEL_SYSTEM_MAP=${sysmap:+$dir/root/$sysmap}"
    echo "KERNEL_MODULES=$dir/root/$modules"
    echo "KERNEL_MODULES_ROOT=$dir/root"
    echo "KERNEL_CONFIG_NET_9P_VIRTIO=$v9p"
    echo "KERNEL_CONFIG_9P_FS=$fs9p"
    echo "KERNEL_CONFIG_DEBUG_INFO_BTF=$btf"
  } >"$dir/kernel.env"
  printf '%s\n' "$want" >"$stamp"
  say "$id: ready in ${dir#"$repo"/} ($(du -sh "$dir/debs" | cut -f1) of .debs, $(du -sh "$dir/root" | cut -f1) unpacked)"
}

for id in "${sel[@]}"; do
  start=$SECONDS
  fetch_kernel "$id"
  say "$id: done in $((SECONDS - start)) s"
done
