#!/usr/bin/env bash
# Installs, or checks, what scripts/requirements.txt lists: everything the
# scripts and tests of this repository call that the repository does not hold.
#
#   scripts/deps.sh check   [PURPOSE...]   name every missing item; exit 1 if any
#   scripts/deps.sh install [PURPOSE...]   as root: install what is missing, then check
#   scripts/deps.sh list    [PURPOSE...]   print the selected items
#
# No PURPOSE: all of them (build test fuzz packaging bench vm ci).
# --kinds K[,K]  (before the command) only items of these kinds, e.g. deb,pip
#                for a machine without the Rust and Go toolchains.
# Items of kind "tool" (Rust, Go) are never installed: check names them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$repo/scripts/requirements.txt"
# shellcheck source=lib/path.sh
. "$repo/scripts/lib/path.sh"
cd "$repo"

die() { echo "deps: error: $*" >&2; exit 2; }
say() { echo "deps: $*" >&2; }

kinds=""
if [ "${1:-}" = --kinds ]; then
  [ $# -ge 2 ] || die "--kinds needs a list (deb,pip,cargo,go,gomod,script,tool)"
  kinds=",$2,"
  shift 2
fi
command=${1:-}
[ $# -gt 0 ] && shift
case $command in check|install|list) ;; *) die "usage: deps.sh [--kinds K,...] check|install|list [PURPOSE...]" ;; esac
purposes=" $* "
selection="purposes ${*:-all}${kinds:+, kinds ${kinds:1:-1}}"

# ------------------------------------------------------------ the list

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }
P=() K=() W=() C=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  case $line in ''|'#'*) continue ;; esac
  IFS='|' read -r purpose kind what check <<<"$line"
  purpose=$(trim "$purpose") kind=$(trim "$kind") what=$(trim "$what") check=$(trim "$check")
  [ -n "$purpose" ] && [ -n "$kind" ] && [ -n "$what" ] && [ -n "$check" ] ||
    die "$list:$lineno: expected 'purpose | kind | what | check', got: $line"
  case $kind in deb|pip|cargo|go|gomod|script|tool) ;; *) die "$list:$lineno: unknown kind $kind" ;; esac
  case $check in cmd:*|file:*|deb:*|py:*|version:*:*|gomod:*|run:*) ;; *) die "$list:$lineno: unknown check $check" ;; esac
  wanted=0
  for p in ${purpose//,/ }; do
    [ "$purposes" = "  " ] || [[ $purposes == *" $p "* ]] && wanted=1
  done
  [ $wanted = 1 ] || continue
  [ -z "$kinds" ] || [[ $kinds == *",$kind,"* ]] || continue
  P+=("$purpose") K+=("$kind") W+=("$what") C+=("$check")
done <"$list"
for p in $purposes; do
  grep -Eq "^([a-z]+,)*$p(,[a-z]+)*[[:space:]]*\|" "$list" || die "no purpose '$p' in $list"
done
[ ${#K[@]} -gt 0 ] || die "nothing selected"

# ------------------------------------------------------------ checks

version_of() { # version_of COMMAND -> the first x.y[.z] it prints about itself
  command -v "$1" >/dev/null || return 1
  { "$1" --version 2>&1 || "$1" version 2>&1; } | grep -Eo '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1
}

version_ge() { # version_ge HAVE MIN
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# present CHECK: exit 0 when the item is there; otherwise prints what was found.
present() {
  local c=$1
  case $c in
    cmd:*) command -v "${c#cmd:}" >/dev/null ;;
    file:*) [ -e "${c#file:}" ] ;;
    deb:*) dpkg-query -W -f='${Status}' "${c#deb:}" 2>/dev/null | grep -q "install ok installed" ;;
    py:*) python3 -c "import ${c#py:}" >/dev/null 2>&1 ;;
    version:*)
      local rest=${c#version:} have
      have=$(version_of "${rest%%:*}") || { echo "${rest%%:*} not found"; return 1; }
      version_ge "$have" "${rest#*:}" || { echo "found ${rest%%:*} $have"; return 1; }
      ;;
    gomod:*)
      command -v go >/dev/null || { echo "go not found"; return 1; }
      (cd "${c#gomod:}" && GOPROXY=off GOTOOLCHAIN=local go mod download) >/dev/null 2>&1
      ;;
    run:*) bash -c "${c#run:}" >/dev/null 2>&1 ;;
  esac
}

# pinned SPEC: a pip item's installed version is its pin (NAME==VERSION);
# otherwise prints the version found.
pinned() {
  python3 - "${1%%==*}" "${1#*==}" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
have = m.version(sys.argv[1])
if have != sys.argv[2]:
    print(f"found {sys.argv[1]} {have}")
    sys.exit(1)
PY
}

# item_present I: the check of item I passes (pip items: at their pinned version).
item_present() {
  present "${C[$1]}" || return 1
  [ "${K[$1]}" != pip ] || pinned "${W[$1]}"
}

# check: prints every missing item; exit 1 if any.
check() {
  local i found missing=0
  for i in "${!K[@]}"; do
    if ! found=$(item_present "$i"); then
      [ $missing = 0 ] && say "MISSING (scripts/requirements.txt: purpose | kind | what | check):"
      echo "  ${P[$i]} | ${K[$i]} | ${W[$i]} | ${C[$i]}${found:+ ($found)}" >&2
      missing=$((missing + 1))
    fi
  done
  if [ $missing -gt 0 ]; then
    say "$missing of ${#K[@]} items missing ($selection); 'bash scripts/deps.sh install' (as root) installs all but kind tool"
    return 1
  fi
  say "all ${#K[@]} items present ($selection)"
}

if [ "$command" = list ]; then
  for i in "${!K[@]}"; do printf '%-9s | %-6s | %s | %s\n' "${P[$i]}" "${K[$i]}" "${W[$i]}" "${C[$i]}"; done
  exit 0
fi
if [ "$command" = check ]; then
  check
  exit
fi

# ------------------------------------------------------------ install

[ "$(id -u)" -eq 0 ] || die "install runs as root (apt-get, and binaries into /usr/local)"
started=$SECONDS
missing_of_kind() { # missing_of_kind KIND -> what of its missing items, one a line
  local i
  for i in "${!K[@]}"; do
    [ "${K[$i]}" = "$1" ] && ! item_present "$i" >/dev/null && echo "${W[$i]}"
  done
  return 0
}
all_of_kind() { local i; for i in "${!K[@]}"; do [ "${K[$i]}" = "$1" ] && echo "${W[$i]}"; done; return 0; }

quietly() { # quietly COMMAND...: its output only when it fails
  local out
  out=$("$@" 2>&1) || { printf '%s\n' "$out" | tail -n 30 >&2; return 1; }
}

mapfile -t debs < <(missing_of_kind deb)
if [ ${#debs[@]} -gt 0 ]; then
  say "apt-get install ${debs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

mapfile -t pips < <(missing_of_kind pip)
if [ ${#pips[@]} -gt 0 ]; then
  # All pinned specs in one resolution, so they agree with each other. Debian's
  # own python3 is "externally managed": these machines are test machines.
  mapfile -t pips < <(all_of_kind pip)
  say "pip install ${pips[*]}"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore --no-input "${pips[@]}"
fi

# The remaining kinds need the toolchains: stop here, naming everything
# missing, when one is absent.
mapfile -t tools < <(missing_of_kind tool)
if [ ${#tools[@]} -gt 0 ]; then
  say "a toolchain the machine must bring is missing; nothing that needs one was installed"
  check
  exit 1
fi

mapfile -t gomods < <(missing_of_kind gomod)
for dir in ${gomods[@]+"${gomods[@]}"}; do
  say "go mod download in $dir"
  (cd "$dir" && GOTOOLCHAIN=local quietly go mod download)
done

mapfile -t gos < <(missing_of_kind go)
for mod in ${gos[@]+"${gos[@]}"}; do
  say "go install $mod"
  GOBIN=/usr/local/bin GOTOOLCHAIN=local GOFLAGS=-buildvcs=false quietly go install "$mod"
done

mapfile -t crates < <(missing_of_kind cargo)
for crate in ${crates[@]+"${crates[@]}"}; do
  say "cargo install $crate"
  quietly cargo install --locked "$crate"
done

mapfile -t scripts < <(missing_of_kind script)
for script in ${scripts[@]+"${scripts[@]}"}; do
  say "bash $script"
  bash "$script" >&2
done

say "install done in $((SECONDS - started)) s"
check
