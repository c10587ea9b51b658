#!/usr/bin/env bash
# Evaluates the flake and the services.beyla module against a real nixpkgs
# tree, offline. Nothing is built (that needs a binary cache or the bootstrap
# seed): evaluation and instantiation are what this checks.
#
#   nix/eval-check.sh --lib-only NIXPKGS   the module scenarios with
#                                          lib.evalModules (Nix 2.8 or newer)
#   nix/eval-check.sh NIXPKGS              everything (Nix 2.18 or newer)
#   nix/eval-check.sh --chroot DIR NIXPKGS everything, with the Nix installed
#                                          in the chroot DIR
#   nix/eval-check.sh --prepare NIXPKGS    make whole the slimmed nixpkgs
#                                          tree of docs/install-nixos.md
#
# Everything: the module scenarios of nix/tests/module-scenarios.nix with the
# lib driver and in a whole NixOS system, the system's instantiation, `nix
# flake check --no-build --all-systems`, the instantiation of the package, the
# OCI image and every check for both systems, and the package's source
# fileset. Prints PASS/FAIL lines, the time of each step, and a last line
# "N passed, N failed"; exits non-zero when a check failed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
mode=all
case "${1:-}" in
  --lib-only | --prepare) mode="${1#--}"; shift ;;
  --chroot) mode=chroot; chroot_dir="${2:?--chroot needs a directory}"; shift 2 ;;
  -* | "") usage ;;
esac
[ $# -eq 1 ] || usage
tree="$(cd "$1" && pwd)"
[ -f "$tree/lib/default.nix" ] || { echo "$tree is not a nixpkgs tree (no lib/default.nix)" >&2; exit 2; }

if [ "$mode" = prepare ]; then
  # The tree of docs/install-nixos.md is a whole nixpkgs tree whose module
  # list has most NixOS modules commented out, and which lacks three large
  # generated files. Of those, evaluation reaches only the Haskell package
  # set, for ShellCheck (the shell checks of NixOS units and of the test
  # driver); it gets a stand-in: a plain derivation, overridable the way
  # haskell.lib expects, since the Haskell builder would need GHC and the
  # Hackage packages that build it.
  sed -i -E 's|^([[:space:]]*)#(\./)|\1\2|' "$tree/nixos/modules/module-list.nix"
  hackage="$tree/pkgs/development/haskell-modules/hackage-packages.nix"
  if [ ! -f "$hackage" ] || grep -q '^# Stand-in' "$hackage"; then
    cat >"$hackage" <<'NIX'
# Stand-in written by nix/eval-check.sh --prepare: the generated Hackage set
# is absent from this tree; only ShellCheck is reached by evaluation.
{ pkgs, lib, callPackage }:
self: {
  ShellCheck = callPackage (
    { mkDerivation }:
    mkDerivation {
      pname = "ShellCheck";
      version = "0.11.0";
    }
  ) {
    mkDerivation = lib.makeOverridable (
      args:
      pkgs.stdenv.mkDerivation {
        inherit (args) pname version;
        src = pkgs.fetchurl {
          url = "mirror://hackage/${args.pname}-${args.version}.tar.gz";
          hash = lib.fakeHash;
        };
        meta = {
          mainProgram = "shellcheck";
          license = lib.licenses.gpl3Only;
        };
        # What writeShellApplication asks of a Haskell package's compiler.
        passthru.compiler.bootstrapAvailable = true;
      }
    );
  };
}
NIX
  fi
  echo "prepared $tree: $(grep -cE '^[[:space:]]*\./' "$tree/nixos/modules/module-list.nix") NixOS modules listed"
  exit 0
fi

if [ "$mode" = chroot ]; then
  # The repository, its git directory and the tree appear at the same paths
  # inside the chroot; the chroot's own Nix does the rest.
  mounts=()
  cleanup() { for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" || true; done; }
  trap cleanup EXIT
  bind() {
    mkdir -p "$chroot_dir$1"
    mountpoint -q "$chroot_dir$1" && return
    mount --bind "$1" "$chroot_dir$1"
    mounts+=("$chroot_dir$1")
  }
  bind "$repo"
  bind "$(cd "$(git rev-parse --git-common-dir)" && pwd)"
  bind "$tree"
  bind /dev
  if ! mountpoint -q "$chroot_dir/proc"; then
    mount -t proc proc "$chroot_dir/proc"
    mounts+=("$chroot_dir/proc")
  fi
  chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    bash "$repo/nix/eval-check.sh" "$tree"
  exit $?
fi

passes=0
failures=0
pass() { echo "PASS  $*"; passes=$((passes + 1)); }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
indent() { sed 's/^/      /' | tail -n 25; }
step_started=$SECONDS
step() { echo "== $* "; step_started=$SECONDS; }
took() { echo "   ($((SECONDS - step_started)) s)"; }

# The agent's capabilities, as the one list in the code defines them.
capabilities="[$(sed -n '/pub const PRIVILEGES/,/^];/p' agent/src/ebpf/preflight.rs |
  grep -o 'capability: Capability::CAP_[A-Z_]*' | sed 's/.*::\(.*\)/ "\1"/' | tr -d '\n') ]"
echo "nixpkgs: $tree ($(cat "$tree/lib/.version" 2>/dev/null || echo '?'))"
echo "nix: $(nix-instantiate --version)"
echo "capabilities (agent/src/ebpf/preflight.rs): $capabilities"

# Runs every scenario of a driver; a scenario passes with no failure, or, for
# a value the option types must refuse, with an evaluation error matching
# its regex.
scenarios() { # label driver.nix
  local label="$1" driver="$2" errors name regex out rc
  local args=(--eval --strict --json "$driver" --arg nixpkgs "$tree" --arg capabilities "$capabilities")
  errors="$(nix-instantiate "${args[@]}" -A errors)"
  while IFS=$'\t' read -r name regex; do
    rc=0
    out="$(nix-instantiate "${args[@]}" -A "results.$name" 2>&1)" || rc=$?
    if [ -z "$regex" ]; then
      if [ $rc -eq 0 ] && [ "$out" = "[]" ]; then
        pass "$label: $name"
      else
        fail "$label: $name"
        printf '%s\n' "$out" | indent
      fi
    elif [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -Eq "$regex"; then
      pass "$label: $name (refused: $(printf '%s\n' "$out" | grep -Eo "A definition for option .* is not of type \`[^']*'" | head -n 1))"
    else
      fail "$label: $name must be refused with /$regex/"
      printf '%s\n' "$out" | indent
    fi
  done < <(printf '%s' "$errors" | python3 -c 'import json, sys
for name, regex in json.load(sys.stdin).items():
    print(name + "\t" + (regex or ""))')
}

step "module scenarios, lib.evalModules (nix/tests/module-lib.nix)"
scenarios lib nix/tests/module-lib.nix
took

if [ "$mode" = all ]; then
  version="$(nix --version | grep -Eo '[0-9]+\.[0-9]+' | head -n 1)"
  if ! printf '2.18\n%s\n' "$version" | sort -V -C; then
    echo "the full evaluation needs Nix 2.18 or newer (this is $version): use --chroot or --lib-only" >&2
    exit 2
  fi
  nix_() { nix --extra-experimental-features 'nix-command flakes' "$@"; }
  flake_args=(--override-input nixpkgs "path:$tree" --no-write-lock-file)

  step "module scenarios in a whole NixOS system (nix/tests/module-nixos.nix)"
  scenarios nixos nix/tests/module-nixos.nix
  took

  step "the NixOS system instantiates"
  toplevel=(nix-instantiate nix/tests/module-nixos.nix --arg nixpkgs "$tree" --arg capabilities "$capabilities")
  if out="$("${toplevel[@]}" -A toplevel.example-settings 2>&1)"; then
    pass "system with the example settings: $(printf '%s\n' "$out" | tail -n 1)"
  else
    fail "system with the example settings instantiates"
    printf '%s\n' "$out" | indent
  fi
  if out="$("${toplevel[@]}" -A toplevel.neither-settings-nor-config-file 2>&1)"; then
    fail "a system with neither settings nor configFile is refused"
  elif printf '%s\n' "$out" | grep -q 'Failed assertions:' && printf '%s\n' "$out" | grep -q 'set exactly one of services.beyla.settings'; then
    pass "a system with neither settings nor configFile is refused: $(printf '%s\n' "$out" | grep -o 'services.beyla: set exactly one.*' | head -n 1)"
  else
    fail "a system with neither settings nor configFile is refused with the module's assertion"
    printf '%s\n' "$out" | indent
  fi
  took

  step "nix flake check --no-build --all-systems"
  if out="$(nix_ flake check --no-build --all-systems "${flake_args[@]}" 2>&1)"; then
    pass "nix flake check --no-build --all-systems"
  else
    fail "nix flake check --no-build --all-systems"
  fi
  printf '%s\n' "$out" | indent
  took

  step "instantiate the package, the OCI image and every check, for both systems"
  # One evaluation of the flake: the checks hold the package and the image.
  apply='checks: {
    drvs = builtins.mapAttrs (system: builtins.mapAttrs (name: drv: drv.drvPath)) checks;
    src = checks.x86_64-linux.package.src.outPath;
  }'
  if out="$(nix_ eval --json .#checks --apply "$apply" "${flake_args[@]}" 2>&1)"; then
    while IFS=$'\t' read -r attr drv; do
      pass "checks.$attr: $drv"
    done < <(printf '%s\n' "$out" | tail -n 1 | python3 -c 'import json, sys
for system, drvs in json.load(sys.stdin)["drvs"].items():
    for name, drv in sorted(drvs.items()):
        print(f"{system}.{name}\t{drv}")')
    src="$(printf '%s\n' "$out" | tail -n 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["src"])')"
  else
    fail "the checks instantiate"
    printf '%s\n' "$out" | indent
    src=""
  fi
  took

  step "the package's source is the fileset of nix/source.nix"
  if [ -d "$src" ]; then
    mapfile -t paths < <(nix-instantiate --eval --strict --json nix/source.nix | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))')
    expected="$(git ls-files -- "${paths[@]}" | sort)"
    actual="$(cd "$src" && find . -type f | sed 's|^\./||' | sort)"
    if [ "$expected" = "$actual" ]; then
      pass "the package's src holds exactly the git-tracked files of nix/source.nix ($(printf '%s\n' "$actual" | wc -l) files, docs/configuration.md among them)"
    else
      fail "the package's src differs from the git-tracked files of nix/source.nix"
      diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") | indent
    fi
  else
    fail "the package's src evaluates to a directory ($src)"
  fi
  took
fi

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
