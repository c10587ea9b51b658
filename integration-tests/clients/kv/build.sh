#!/usr/bin/env bash
# Builds the Redis and Kafka clients the database tests run (each does N operations of every
# kind and prints one line per operation), into <repo>/target/clients/kv:
#   kv-client                     Go: go-redis and segmentio/kafka-go (go/)
#   venv/                         Python: redis-py and kafka-python (python/requirements.txt)
#   java/kv-clients.jar, java/lib Java: Jedis and kafka-clients (java/pom.xml)
# and node/node_modules (ioredis, node/package-lock.json) beside the Node client.
# Needs the Go, Python, Node and Maven registries on the first run. Safe to re-run: each step is
# skipped while its output is newer than its inputs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$repo/target/clients/kv"
mkdir -p "$out/java"

go_bin="$(command -v go || echo /usr/local/go/bin/go)"
(cd "$here/go" && CGO_ENABLED=0 GOTOOLCHAIN=local "$go_bin" build -o "$out/kv-client" .)

venv="$out/venv"
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
if ! cmp -s "$here/python/requirements.txt" "$venv/requirements.txt"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$here/python/requirements.txt"
    cp "$here/python/requirements.txt" "$venv/requirements.txt"
fi

node="$here/node"
stamp="$node/node_modules/.package-lock.json" # written by npm on every install
if [[ ! -f "$stamp" || "$node/package-lock.json" -nt "$stamp" || "$node/package.json" -nt "$stamp" ]]; then
    (cd "$node" && npm ci --no-audit --no-fund --loglevel=error)
fi

java="$here/java"
jar="$out/java/kv-clients.jar"
if [[ ! -f "$jar" ]] || [[ -n "$(find "$java/pom.xml" "$java/src" -newer "$jar" -print -quit)" ]]; then
    rm -rf "$out/java/lib"
    mvn -q -B -Dstyle.color=never -f "$java/pom.xml" package dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$out/java/lib"
    cp "$java/target/kv-clients-1.jar" "$jar"
fi

echo "built $out/kv-client, $venv, $node/node_modules and $jar"
