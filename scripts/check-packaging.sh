#!/usr/bin/env bash
# Checks of the packaging (flake.nix, nix/, nixos-module/, deploy/, the
# install pages) that need no Nix store: these machines cannot build with Nix,
# so this is what can be checked here. What needs a machine with Nix is in
# docs/install-nixos.md ("Checks that need Nix").
#
#   bash scripts/check-packaging.sh      (as root: installs what it needs)
#
# Prints one line per check (PASS, FAIL or SKIP) and exits non-zero when a
# check failed. Environment: BEYLA_BIN (the agent binary; default: cargo build
# -p beyla), BEYLA_PACKAGING_TOOLS (where k8svalidate is built and kept).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
started=$SECONDS

tools="${BEYLA_PACKAGING_TOOLS:-/usr/local/lib/beyla-packaging}"
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH:/usr/local/go/bin"
export GOTOOLCHAIN=local GOBIN="$tools/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failures=0
passes=0
pass() { echo "PASS  $*"; passes=$((passes + 1)); }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
skip() { echo "SKIP  $*"; }
# Runs a command quietly; on failure prints its output indented.
quiet() {
  local out
  if out="$("$@" 2>&1)"; then return 0; fi
  printf '%s\n' "$out" | sed 's/^/      /' | tail -n 30
  return 1
}

# ---------------------------------------------------------------- tools
# nix-instantiate, python3-yaml, nixpkgs-fmt, kubeconform, helm: the packaging
# items of scripts/requirements.txt.
bash "$repo/scripts/deps.sh" install packaging
py=/usr/bin/python3

if [ -n "${BEYLA_BIN:-}" ]; then
  beyla="$BEYLA_BIN"
else
  command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
  echo "setup: cargo build -p beyla"
  cargo build --locked -q -p beyla
  beyla="$repo/target/debug/beyla"
fi
[ -x "$beyla" ] || { echo "FAIL  no agent binary at $beyla" >&2; exit 1; }


# Typed, strict decoding of manifests with the Kubernetes API's own Go types
# (k8s.io/api through client-go's scheme): unknown fields, misspelt fields and
# wrong types are refused, as the API server does. No JSON schemas needed.
have_k8svalidate=yes
if [ ! -x "$tools/bin/k8svalidate" ]; then
  echo "setup: building k8svalidate (k8s.io/api v0.37.0 strict decoding)"
  mkdir -p "$work/k8svalidate"
  cat >"$work/k8svalidate/main.go" <<'GO'
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

func main() {
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	failed := 0
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Println(path, err)
			failed++
			continue
		}
		for i, doc := range bytes.Split(data, []byte("\n---")) {
			if !hasContent(string(doc)) {
				continue
			}
			if _, _, err := dec.Decode(doc, nil, nil); err != nil {
				fmt.Printf("%s document %d: %v\n", path, i+1, err)
				failed++
			}
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func hasContent(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}
GO
  printf 'module k8svalidate\n\ngo 1.24\n\nrequire (\n\tk8s.io/api v0.37.0\n\tk8s.io/apimachinery v0.37.0\n\tk8s.io/client-go v0.37.0\n)\n' >"$work/k8svalidate/go.mod"
  if ! (cd "$work/k8svalidate" && timeout 300 go mod tidy && timeout 300 go build -o "$tools/bin/k8svalidate" .) >"$work/k8svalidate.log" 2>&1; then
    tail -n 5 "$work/k8svalidate.log" | sed 's/^/      /'
    have_k8svalidate=no
  fi
fi

# The Python side: extracts examples from the docs, runs beyla --check-config,
# checks manifests' structure. Prints its own PASS/FAIL lines.
cat >"$work/checks.py" <<'PY'
import json, os, re, subprocess, sys, yaml

BEYLA = os.environ["BEYLA"]
failures = 0

def report(ok, what, detail=""):
    global failures
    print(("PASS  " if ok else "FAIL  ") + what)
    if not ok:
        failures += 1
        for line in detail.strip().splitlines()[-20:]:
            print("      " + line)

def check_config(path, env=None, what=None):
    """beyla --check-config --config PATH in a clean environment plus env."""
    e = {"PATH": os.environ["PATH"]}
    e.update(env or {})
    r = subprocess.run([BEYLA, "--check-config", "--config", path], env=e,
                       capture_output=True, text=True)
    report(r.returncode == 0, what or f"beyla --check-config accepts {path}",
           r.stderr + r.stdout)

def docs(outdir, files):
    """Extracts the fenced blocks of the install pages. yaml: a beyla config,
    or Kubernetes objects (apiVersion/kind), or Helm values when the line
    before the fence is <!-- helm-values -->; toml: a beyla config; nix: must
    parse. <!-- no-check --> before a fence skips that block."""
    n = 0
    for f in files:
        lines = open(f).read().split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^\s*```(\w+)\s*$", lines[i])
            if not m:
                i += 1
                continue
            lang = m.group(1)
            marker = lines[i - 1].strip() if i > 0 else ""
            j = i + 1
            while not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            body = "\n".join(lines[i + 1:j]) + "\n"
            where = f"{f}:{i + 1}"
            i = j + 1
            if marker == "<!-- no-check -->":
                continue
            n += 1
            if lang == "nix":
                p = os.path.join(outdir, f"nix-{n}.nix")
                open(p, "w").write(body)
                r = subprocess.run(["nix-instantiate", "--parse", p], capture_output=True, text=True)
                report(r.returncode == 0, f"nix block parses ({where})", r.stderr)
            elif lang == "toml":
                p = os.path.join(outdir, f"config-{n}.toml")
                open(p, "w").write(body)
                check_config(p, what=f"beyla --check-config accepts the TOML config at {where}")
            elif lang == "yaml":
                try:
                    docs_ = [d for d in yaml.safe_load_all(body) if d is not None]
                except yaml.YAMLError as e:
                    report(False, f"yaml block parses ({where})", str(e))
                    continue
                if marker == "<!-- helm-values -->":
                    p = os.path.join(outdir, f"helm-values-{n}.yaml")
                    open(p, "w").write(body)
                    print(f"helm-values {p} {where}", file=sys.stderr)
                elif all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs_):
                    p = os.path.join(outdir, f"k8s-{n}.yaml")
                    open(p, "w").write(body)
                    print(f"k8s {p} {where}", file=sys.stderr)
                else:
                    p = os.path.join(outdir, f"config-{n}.yml")
                    open(p, "w").write(body)
                    check_config(p, what=f"beyla --check-config accepts the YAML config at {where}")

def load_docs(paths):
    """Objects of the files; a later object with the same kind, namespace and
    name replaces an earlier one (a page's ConfigMap over deploy/'s)."""
    out = {}
    for p in paths:
        for d in yaml.safe_load_all(open(p)):
            if d is None:
                continue
            meta = (d.get("metadata") or {}) if isinstance(d, dict) else {}
            key = (d.get("kind"), meta.get("namespace"), meta.get("name")) if isinstance(d, dict) else (len(out),)
            out.pop(key, None)
            out[key] = d
    return list(out.values())

def code_capabilities():
    """The agent's one list of capabilities: PRIVILEGES in preflight.rs, in order."""
    src = open("agent/src/ebpf/preflight.rs").read()
    block = src[src.index("pub const PRIVILEGES"):]
    block = block[:block.index("\n];")]
    return re.findall(r"capability: Capability::(CAP_\w+),", block)

# Kubernetes spells capabilities without the CAP_ prefix.
REQUIRED_CAPS = {c[len("CAP_"):] for c in code_capabilities()}

def capabilities(module_json):
    """Every place that grants or lists the agent's capabilities says exactly
    what preflight.rs says."""
    code = code_capabilities()
    report(len(code) >= 4, f"agent/src/ebpf/preflight.rs: PRIVILEGES lists {', '.join(code)}")
    def same(where, found, ordered=False):
        ok = found == code if ordered else sorted(set(found)) == sorted(code)
        report(ok, f"capabilities of {where} are the agent's list",
               f"found:    {', '.join(found) or 'none'}\nexpected: {', '.join(code)} (agent/src/ebpf/preflight.rs)")
    def section(path, start, end):
        text = open(path).read()
        if start not in text:
            return ""
        rest = text[text.index(start):]
        return rest[:rest.index(end, len(start))] if end in rest[len(start):] else rest
    caps = lambda text: re.findall(r"CAP_[A-Z_]+", text)
    same("nixos-module/capabilities.nix (the NixOS unit)", json.load(open(module_json)), ordered=True)
    same("README.md (Requirements)", caps(section("README.md", "- Root, or the capabilities", "\n- ")))
    same("docs/running.md (Privileges table)",
         re.findall(r"^\| `(CAP_[A-Z_]+)` \|", section("docs/running.md", "## Privileges", "\n## "), re.M), ordered=True)
    same("docs/install-nixos.md (The service)",
         caps(section("docs/install-nixos.md", "`beyla.service` does not run as root", "Other settings:")))
    same("docs/install-oci.md (docker run --cap-add)",
         ["CAP_" + c for c in re.findall(r"--cap-add (\w+)", section("docs/install-oci.md", "## With only the capabilities", "\n## "))])
    same("docs/install-kubernetes.md (the capabilities variant)",
         ["CAP_" + c for c in re.findall(r"\b([A-Z][A-Z_]+)\b", section("docs/install-kubernetes.md", "not privileged: capabilities", "(why"))])
    for path in ["deploy/kubernetes/variants/daemonset-capabilities.yaml"]:
        for d in yaml.safe_load_all(open(path)):
            for c in ((d or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []):
                add = ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
                same(f"{path} (container {c.get('name')})", ["CAP_" + a for a in add])
    values = yaml.safe_load(open("deploy/helm/beyla/values.yaml"))
    same("deploy/helm/beyla/values.yaml (capabilities)", ["CAP_" + a for a in values.get("capabilities") or []])
REQUIRED_RESOURCES = {("", "pods"), ("apps", "replicasets")}

def manifests(name, paths, outdir):
    """Structure of a set of manifests (one deployment), and beyla
    --check-config on each ConfigMap's beyla-config.yml with the literal
    environment of the DaemonSet container that mounts it."""
    try:
        objs = load_docs(paths)
    except yaml.YAMLError as e:
        report(False, f"{name}: YAML parses", str(e))
        return
    problems = []
    by_kind = {}
    for o in objs:
        if not isinstance(o, dict):
            problems.append(f"not a mapping: {o!r:.60}")
            continue
        for k in ("apiVersion", "kind"):
            if not o.get(k):
                problems.append(f"object without {k}: {json.dumps(o)[:80]}")
        if not (o.get("metadata") or {}).get("name"):
            problems.append(f"{o.get('kind')} without metadata.name")
        by_kind.setdefault(o.get("kind"), []).append(o)
    names = lambda kind: {(o.get("metadata") or {}).get("name") for o in by_kind.get(kind, [])}
    configmaps = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    daemonsets = by_kind.get("DaemonSet", [])
    if not daemonsets:
        problems.append("no DaemonSet")
    configs_checked = 0
    for ds in daemonsets:
        dsn = ds["metadata"]["name"]
        spec = ds.get("spec") or {}
        tmpl = spec.get("template") or {}
        pod = tmpl.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problems.append(f"DaemonSet {dsn}: spec.selector.matchLabels {sel} do not match the template labels {labels}")
        if pod.get("hostPID") is not True:
            problems.append(f"DaemonSet {dsn}: hostPID is not true")
        sa = pod.get("serviceAccountName")
        if by_kind.get("ServiceAccount") and sa not in names("ServiceAccount"):
            problems.append(f"DaemonSet {dsn}: serviceAccountName {sa} is not among the ServiceAccounts {names('ServiceAccount')}")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        containers = pod.get("containers") or []
        if not containers:
            problems.append(f"DaemonSet {dsn}: no container")
        for c in containers:
            sc = c.get("securityContext") or {}
            caps = set((sc.get("capabilities") or {}).get("add") or [])
            if not sc.get("privileged") and REQUIRED_CAPS != caps:
                problems.append(f"DaemonSet {dsn}: container {c.get('name')} is neither privileged nor has exactly the agent's capabilities {sorted(REQUIRED_CAPS)} (has {sorted(caps)})")
            for m in c.get("volumeMounts") or []:
                if m["name"] not in volumes:
                    problems.append(f"DaemonSet {dsn}: volumeMount {m['name']} has no volume")
            env = {e["name"]: str(e["value"]) for e in c.get("env") or [] if "value" in e}
            args = c.get("args") or []
            cfg_path = args[args.index("--config") + 1] if "--config" in args else env.get("BEYLA_CONFIG_PATH")
            if not cfg_path:
                continue
            for m in c.get("volumeMounts") or []:
                if not cfg_path.startswith(m["mountPath"].rstrip("/") + "/"):
                    continue
                cm_name = ((volumes.get(m["name"]) or {}).get("configMap") or {}).get("name")
                key = cfg_path[len(m["mountPath"].rstrip("/")) + 1:]
                cm = configmaps.get(cm_name)
                if cm is None or key not in (cm.get("data") or {}):
                    problems.append(f"DaemonSet {dsn}: --config {cfg_path}: no key {key} in ConfigMap {cm_name}")
                    continue
                p = os.path.join(outdir, f"{name.replace('/', '_').replace(' ', '_')}-{cm_name}-{key}")
                open(p, "w").write(cm["data"][key])
                shown = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
                check_config(p, env, f"{name}: beyla --check-config accepts ConfigMap {cm_name}/{key} with the DaemonSet's env ({shown or 'none'})")
                configs_checked += 1
    for cr in by_kind.get("ClusterRole", []):
        granted = set()
        for rule in cr.get("rules") or []:
            if {"list", "watch"} <= set(rule.get("verbs") or []):
                for g in rule.get("apiGroups") or []:
                    for r in rule.get("resources") or []:
                        granted.add((g, r))
        missing = REQUIRED_RESOURCES - granted
        if missing:
            problems.append(f"ClusterRole {cr['metadata']['name']}: no list/watch on {sorted(missing)}")
    for crb in by_kind.get("ClusterRoleBinding", []):
        if crb.get("roleRef", {}).get("name") not in names("ClusterRole"):
            problems.append(f"ClusterRoleBinding {crb['metadata']['name']}: roleRef names no ClusterRole of the set")
        for s in crb.get("subjects") or []:
            if s.get("kind") == "ServiceAccount" and s.get("name") not in names("ServiceAccount"):
                problems.append(f"ClusterRoleBinding {crb['metadata']['name']}: subject {s.get('name')} is no ServiceAccount of the set")
    if daemonsets and configs_checked == 0 and by_kind.get("ConfigMap"):
        problems.append("no DaemonSet container reads a ConfigMap's config file")
    kinds = ", ".join(f"{k} x{len(v)}" if len(v) > 1 else k for k, v in sorted(by_kind.items()))
    report(not problems, f"{name}: structure ({kinds}): selector/labels, hostPID, privileges, RBAC, references", "\n".join(problems))

def settings_equal(nix_json, yml):
    a = json.load(open(nix_json))
    b = yaml.safe_load(open(yml))
    report(a == b, f"{yml} holds the same data as its .nix file",
           f"nix: {json.dumps(a, sort_keys=True)}\nyaml: {json.dumps(b, sort_keys=True)}")

cmd = sys.argv[1]
if cmd == "docs":
    docs(sys.argv[2], sys.argv[3:])
elif cmd == "manifests":
    manifests(sys.argv[2], sys.argv[4:], sys.argv[3])
elif cmd == "settings-equal":
    settings_equal(sys.argv[2], sys.argv[3])
elif cmd == "capabilities":
    capabilities(sys.argv[2])
elif cmd == "check-config":
    check_config(sys.argv[2], what=sys.argv[3])
sys.exit(1 if failures else 0)
PY
export BEYLA="$beyla"
# Runs a python check; its PASS/FAIL lines are counted here.
pycheck() {
  local out rc=0
  out="$("$py" "$work/checks.py" "$@" 2>>"$work/py.stderr")" || rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  passes=$((passes + $(printf '%s\n' "$out" | grep -c '^PASS' || true)))
  failures=$((failures + $(printf '%s\n' "$out" | grep -c '^FAIL' || true)))
  if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL'; then
    fail "python check $1 crashed: $(tail -n 3 "$work/py.stderr")"
  fi
}

echo "== Nix files"
mapfile -t nix_files < <(find flake.nix nix nixos-module -name '*.nix' | sort)
for f in "${nix_files[@]}"; do
  if quiet nix-instantiate --parse "$f"; then pass "nix-instantiate --parse $f"; else fail "nix-instantiate --parse $f"; fi
done
url="$(nix-instantiate --eval --json -E '(import ./flake.nix).inputs.nixpkgs.url' 2>&1)" || true
if nix-instantiate --eval -E 'builtins.isFunction (import ./flake.nix).outputs' 2>/dev/null | grep -qx true && [[ "$url" == '"github:NixOS/nixpkgs/'* ]]; then
  pass "flake.nix: outputs is a function, nixpkgs input $url"
else
  fail "flake.nix: outputs is a function and inputs.nixpkgs.url is set ($url)"
fi
# nixpkgs-fmt: the flake's formatter.
if quiet nixpkgs-fmt --check "${nix_files[@]}"; then
  pass "nixpkgs-fmt --check (every .nix file)"
else
  fail "nixpkgs-fmt --check: run nixpkgs-fmt on the .nix files (or nix fmt)"
fi

echo "== The package's source fileset builds with its tests"
# nix/package.nix builds from exactly the paths of nix/source.nix (the git-
# tracked files under them, as a flake sees them); a file the build or a test
# reads that the list lacks fails here, as it would inside Nix.
if grep -q 'import ./source.nix' nix/package.nix && ! grep -q 'fileset.unions \[' nix/package.nix; then
  pass "nix/package.nix takes its source fileset from nix/source.nix"
else
  fail "nix/package.nix takes its source fileset from nix/source.nix (and lists no path of its own)"
fi
mapfile -t source_paths < <(nix-instantiate --eval --strict --json nix/source.nix | "$py" -c 'import json,sys; print("\n".join(json.load(sys.stdin)))')
fileset="$work/source-fileset"
mkdir -p "$fileset"
git ls-files -z -- "${source_paths[@]}" | (cd "$repo" && xargs -0 cp --parents -t "$fileset" 2>/dev/null) || true
# The checkout's target directory: the dependencies checked by the lint step
# before this one are reused, only the two crates of the copy are checked.
if quiet env CARGO_TARGET_DIR="$repo/target" cargo check --locked -q --workspace --all-targets --manifest-path "$fileset/Cargo.toml"; then
  pass "cargo check --workspace --all-targets on the fileset of nix/source.nix (${source_paths[*]})"
else
  fail "cargo check --workspace --all-targets on the fileset of nix/source.nix: add what the build reads to nix/source.nix"
fi

echo "== NixOS test scripts and kernels"
# retry()'s timeout keyword was renamed (timeout -> timeout_seconds) by newer
# NixOS test drivers; by position it works with both.
bad_retry="$(grep -nE 'retry\([^)]*\btimeout(_seconds)?[[:space:]]*=' nix/*.nix || true)"
n_retry="$(grep -cE 'retry\(' nix/vm-test.nix || true)"
if [ -z "$bad_retry" ] && [ "$n_retry" -gt 0 ]; then
  pass "nix/vm-test.nix: retry() takes its timeout by position ($n_retry calls)"
else
  fail "retry() with a timeout keyword (valid for one test driver only): $bad_retry"
fi
# linuxPackages_* are aliases; nixpkgs with allowAliases = false has none.
if ! grep -nE '^[^#]*linuxPackages_' flake.nix nix/*.nix nixos-module/*.nix kernels/matrix.toml; then
  pass "kernels named through pkgs.linuxKernel (no linuxPackages_* alias)"
else
  fail "a linuxPackages_* alias is used: name kernels through pkgs.linuxKernel.packages"
fi

echo "== NixOS module settings (rendered as pkgs.formats.yaml would)"
for pair in nixos-module/examples/settings.nix:nixos-module/examples/settings.yml nix/vm-test-settings.nix:; do
  nixf="${pair%%:*}" yml="${pair#*:}"
  json="$work/$(basename "$nixf").json"
  if ! quiet nix-instantiate --eval --strict --json "$nixf" >"$json"; then
    fail "nix-instantiate --eval $nixf"
    continue
  fi
  nix-instantiate --eval --strict --json "$nixf" >"$json"
  if [ -n "$yml" ]; then
    pycheck settings-equal "$json" "$yml"
  else
    yml="$work/$(basename "$nixf" .nix).yml"
    "$py" -c 'import json,sys,yaml; yaml.safe_dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"))' "$json" "$yml"
  fi
  pycheck check-config "$yml" "beyla --check-config accepts the settings of $nixf"
done

echo "== Capabilities: one list (agent/src/ebpf/preflight.rs) everywhere"
nix-instantiate --eval --strict --json nixos-module/capabilities.nix >"$work/capabilities.json"
pycheck capabilities "$work/capabilities.json"

echo "== Install pages"
mkdir -p "$work/docs"
pycheck docs "$work/docs" docs/install-nixos.md docs/install-oci.md docs/install-kubernetes.md

echo "== Kubernetes manifests"
k8s_sets=()
k8s_sets+=("deploy/kubernetes|$(find deploy/kubernetes -maxdepth 1 -name '*.yaml' | sort | tr '\n' ' ')")
k8s_sets+=("deploy/kubernetes with variants/daemonset-capabilities.yaml|$(find deploy/kubernetes -maxdepth 1 -name '*.yaml' ! -name daemonset.yaml | sort | tr '\n' ' ') deploy/kubernetes/variants/daemonset-capabilities.yaml")

chart=deploy/helm/beyla
if quiet helm lint "$chart"; then pass "helm lint $chart"; else fail "helm lint $chart"; fi
if quiet helm lint --strict "$chart" -f "$chart/ci/reference-values.yaml"; then
  pass "helm lint --strict $chart -f ci/reference-values.yaml"
else
  fail "helm lint --strict $chart -f ci/reference-values.yaml"
fi
# The reference document's command, as --set flags.
render() { # name args...
  local name="$1"; shift
  local out="$work/helm-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_').yaml"
  if quiet helm template beyla "$chart" --namespace monitoring "$@" && helm template beyla "$chart" --namespace monitoring "$@" >"$out"; then
    pass "helm template ($name)"
    k8s_sets+=("helm template ($name)|$out")
  else
    fail "helm template ($name)"
  fi
}
render "--set discovery.services[0].open_port=8080 --set otelTraces.endpoint=http://tempo:4318" \
  --set 'discovery.services[0].open_port=8080' --set otelTraces.endpoint=http://tempo:4318
out="$work/helm-reference.yaml"
helm template beyla "$chart" --set 'discovery.services[0].open_port=8080' --set otelTraces.endpoint=http://tempo:4318 >"$out" 2>/dev/null || true
if grep -q 'open_port: 8080' "$out" && grep -A1 'name: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' "$out" | grep -q 'value: "http://tempo:4318"'; then
  pass "helm: discovery.services[0].open_port in the ConfigMap, otelTraces.endpoint as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
else
  fail "helm: discovery.services[0].open_port in the ConfigMap, otelTraces.endpoint as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
fi
render "privileged=false, OTLP metrics grpc, headers secret, env" \
  --set privileged=false --set 'discovery.instrument[0].open_ports=8000-8090' \
  --set otelMetrics.endpoint=http://mimir:4317 --set otelMetrics.protocol=grpc \
  --set otelHeadersSecret=beyla-otlp --set env.OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod \
  --set config.routes.unmatched=low-cardinality
render "selection by env.BEYLA_OPEN_PORT, prometheus disabled" \
  --set env.BEYLA_OPEN_PORT=8080 --set prometheus.enabled=false
# Beyla's chart values layout (config.data, env, envValueFrom), as a Beyla
# user's values file carries it to `helm upgrade`.
render "Beyla's chart values (ci/beyla-chart-values.yaml)" -f "$chart/ci/beyla-chart-values.yaml"
out="$work/helm-beyla-values.yaml"
helm template beyla "$chart" -f "$chart/ci/beyla-chart-values.yaml" >"$out" 2>/dev/null || true
if grep -q 'k8s_namespace: shop' "$out" && grep -q 'port: 9090' "$out" \
  && grep -q 'containerPort: 9090' "$out" \
  && grep -A4 'name: OTEL_EXPORTER_OTLP_HEADERS' "$out" | grep -q 'name: grafana-cloud'; then
  pass "helm: config.data in the ConfigMap, its Prometheus port on the container, envValueFrom as valueFrom"
else
  fail "helm: config.data in the ConfigMap, its Prometheus port on the container, envValueFrom as valueFrom"
fi
out="$work/helm-external-config.yaml"
if helm template beyla "$chart" --set config.create=false --set config.name=my-beyla-config >"$out" 2>&1 \
  && ! grep -q '^kind: ConfigMap' "$out" && grep -A2 'configMap:' "$out" | grep -q 'name: my-beyla-config'; then
  pass "helm: config.name (an existing ConfigMap) replaces the chart's"
else
  fail "helm: config.name (an existing ConfigMap) replaces the chart's: $(tail -n 2 "$out")"
fi
render "preset=application (Beyla's chart default)" --set preset=application
if helm template beyla "$chart" >"$work/helm-default.out" 2>&1; then
  fail "helm template with no selection is refused"
elif grep -q 'nothing to instrument' "$work/helm-default.out"; then
  pass "helm template with no selection is refused (nothing to instrument)"
else
  fail "helm template with no selection is refused: $(tail -n 2 "$work/helm-default.out")"
fi
while read -r _ values where; do
  render "values of $where" -f "$values"
done < <(grep '^helm-values ' "$work/py.stderr" 2>/dev/null || true)
# A page's manifest is checked in place: over deploy/kubernetes/ (its objects
# replace those of the same kind and name) for the structure and the config,
# alone for decoding.
while read -r _ file where; do
  k8s_sets+=("deploy/kubernetes with the manifest at $where|$(find deploy/kubernetes -maxdepth 1 -name '*.yaml' | sort | tr '\n' ' ') $file")
done < <(grep '^k8s ' "$work/py.stderr" 2>/dev/null || true)

for set in "${k8s_sets[@]}"; do
  name="${set%%|*}"
  read -r -a files <<<"${set#*|}"
  pycheck manifests "$name" "$work" "${files[@]}"
  if [ "$have_k8svalidate" = yes ]; then
    if quiet k8svalidate "${files[@]}"; then
      pass "$name: strict decoding into the k8s.io/api v0.37 types (unknown fields, types)"
    else
      fail "$name: strict decoding into the k8s.io/api v0.37 types"
    fi
  else
    skip "$name: strict decoding (k8svalidate could not be built)"
  fi
  if quiet kubeconform -strict -ignore-missing-schemas -schema-location "$work/no-schemas/{{ .ResourceKind }}.json" -summary "${files[@]}"; then
    pass "$name: kubeconform -strict -ignore-missing-schemas (YAML and object shape; no JSON schemas offline)"
  else
    fail "$name: kubeconform -strict"
  fi
done

echo "== packaging checks: $passes passed, $failures failed, $((SECONDS - started))s"
[ "$failures" -eq 0 ]
