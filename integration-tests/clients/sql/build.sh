#!/usr/bin/env bash
# Builds the SQL clients of the database tests (see README.md) into <repo>/target/clients:
#   target/clients/sql-go          Go: pgx, database/sql + go-sql-driver/mysql (static binary)
#   target/clients/sql-venv/       Python: psycopg (on the system's libpq) and PyMySQL
#   target/clients/sql-client.jar  Java: pgjdbc and MariaDB Connector/J, one runnable jar
#   clients/sql/node/node_modules  Node: pg and mysql2 (`npm ci`)
# Needs go, python3 with venv, mvn and npm, and their package registries on the first
# run (pinned versions, cached by each tool). Safe to re-run: up-to-date outputs are kept.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$repo/target/clients"
mkdir -p "$out"

go_bin="$(command -v go || echo /usr/local/go/bin/go)"
(cd "$here/go" && CGO_ENABLED=0 "$go_bin" build -o "$out/sql-go" .)

venv="$out/sql-venv"
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
stamp="$node/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$node/package-lock.json" -nt "$stamp" || "$node/package.json" -nt "$stamp" ]]; then
    (cd "$node" && npm ci --no-audit --no-fund --loglevel=error)
fi

jar="$out/sql-client.jar"
java="$here/java"
if [[ ! -f "$jar" ]] || [[ -n "$(find "$java/pom.xml" "$java/src" -newer "$jar" -print -quit)" ]]; then
    mvn -q -B -Dstyle.color=never -f "$java/pom.xml" package
    cp "$java/target/sql-client.jar" "$jar"
fi

echo "built $out/sql-go, $venv, $jar and $node/node_modules"
