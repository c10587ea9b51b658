#!/usr/bin/env bash
# Provides a Prometheus server with an OTLP receiver (2.53 LTS, run with
# --enable-feature=otlp-write-receiver) in ~/.cache/beyla/prometheus-<version>/
# (outside the clone: scripts/lib/cache.sh) and prints the binary's path on
# stdout. Idempotent: when the binary is already there, it only prints the
# path. With --check it only says whether the binary is there (exit 0 or 1).
#
# Why it is built from source: Debian's packages cannot do it. Bookworm has
# 2.42 (no OTLP receiver), and trixie's 2.53.3 and sid's 3.5.3 are built with
# the OTLP receiver patched out (`--enable-feature=otlp-write-receiver` is
# "Unknown option", /api/v1/otlp/v1/metrics answers 404). So the upstream
# module is fetched through the Go module proxy (`go mod download`, into a
# private GOPATH beside it, leaving the system's module cache alone) and built
# with `go build` (a few minutes, once per machine).
#
#   integration-tests/receivers/fetch-prometheus.sh   # -> ~/.cache/beyla/prometheus-v0.53.4/bin/prometheus
set -euo pipefail

# Prometheus 2.53.4 (LTS) is Go module version v0.53.4.
MODULE=github.com/prometheus/prometheus
VERSION=v0.53.4

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../../scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
dir="$BEYLA_CACHE/prometheus-$VERSION"
bin="$dir/bin/prometheus"

if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi
if [[ "${1:-}" == --check ]]; then
    echo "fetch-prometheus: $bin is not built yet" >&2
    exit 1
fi

if ! command -v go >/dev/null; then
    echo "fetch-prometheus: building Prometheus needs the go tool (it builds the Go sample app too)" >&2
    exit 1
fi

export GOPATH="$dir/go" GOFLAGS="-modcacherw -buildvcs=false"
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
