#!/usr/bin/env bash
# Provides a Prometheus server with an OTLP receiver (2.53 LTS, run with
# --enable-feature=otlp-write-receiver) in <repo>/target/tools/prometheus/ and
# prints the binary's path on stdout. Idempotent: when the binary is already
# there, it only prints the path.
#
# Why it is built from source: Debian's packages cannot do it. Bookworm has
# 2.42 (no OTLP receiver), and trixie's 2.53.3 and sid's 3.5.3 are built with
# the OTLP receiver patched out (`--enable-feature=otlp-write-receiver` is
# "Unknown option", /api/v1/otlp/v1/metrics answers 404). So the upstream
# module is fetched through the Go module proxy (`go mod download`, into a
# private GOPATH, target/tools/go, leaving the system's module cache alone) and
# built with `go build` (a few minutes, once).
#
#   integration-tests/receivers/fetch-prometheus.sh   # -> .../target/tools/prometheus/bin/prometheus
set -euo pipefail

# Prometheus 2.53.4 (LTS) is Go module version v0.53.4.
MODULE=github.com/prometheus/prometheus
VERSION=v0.53.4

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$repo/target/tools/prometheus"
bin="$dir/bin/prometheus"

if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi

if ! command -v go >/dev/null; then
    echo "fetch-prometheus: building Prometheus needs the go tool (it builds the Go sample app too)" >&2
    exit 1
fi

export GOPATH="$repo/target/tools/go" GOFLAGS="-modcacherw -buildvcs=false"
build="$GOPATH/src-prom"
mkdir -p "$dir/bin" "$GOPATH"
# Where the module's source landed in the private module cache.
src="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ ! -d "$src/cmd/prometheus" ]]; then
    echo "fetch-prometheus: go mod download $MODULE@$VERSION gave no source (Dir=$src)" >&2
    exit 1
fi
# Built as the main module (its go.mod has replace directives, which
# `go install pkg@version` refuses), from a writable copy.
rm -rf "$build"
cp -r "$src" "$build"
chmod -R u+w "$build"
(cd "$build" && go build -o "$bin.tmp" ./cmd/prometheus) >&2
if ! "$bin.tmp" --help 2>&1 | grep -q otlp-write-receiver; then
    echo "fetch-prometheus: the built Prometheus has no otlp-write-receiver feature" >&2
    exit 1
fi
# Only a complete build becomes visible under the final name.
mv "$bin.tmp" "$bin"
"$bin" --version >&2
echo "$bin"
