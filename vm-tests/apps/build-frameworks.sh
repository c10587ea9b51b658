#!/usr/bin/env bash
# Builds the framework sample apps (the same API as python/, node/, go/, java/):
#   target/apps/venv/                  Flask + waitress (flask/requirements.txt), for flask/app.py
#   vm-tests/apps/express/node_modules Express (express/package-lock.json, `npm ci`), for express/server.js
#   target/apps/spark-server.jar       Spark Java (spark-java/pom.xml), one runnable jar
# and the database clients of the /db endpoints of the Python, Node and Java apps:
#   target/apps/python-db/             psycopg, PyMySQL, redis-py (python/db-requirements.txt)
#   vm-tests/apps/node/node_modules    pg, mysql2, ioredis (node/package-lock.json)
#   target/apps/java/lib/, Db.class    pgjdbc, Connector/J, Jedis (java-db/pom.xml), and java/Db.java
# Paths are relative to the repository root. Needs python3 with venv + pip, npm
# and mvn, and their package registries on the first run. Safe to re-run: each
# step is skipped while its output is newer than its inputs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/target/apps"
mkdir -p "$out"

# Flask: a virtual environment with exactly the pinned packages. The copy of
# requirements.txt inside it records what was installed.
venv="$out/venv"
# Made anew when it has no working pip: not made yet, its interpreter is gone
# (python3 upgraded or removed), or an earlier `python3 -m venv` stopped half way.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
if ! cmp -s "$here/flask/requirements.txt" "$venv/requirements.txt"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$here/flask/requirements.txt"
    cp "$here/flask/requirements.txt" "$venv/requirements.txt"
fi

# Express: `npm ci` installs exactly package-lock.json (and deletes node_modules
# first), so only run it when the lock file or package.json changed since.
express="$here/express"
stamp="$express/node_modules/.package-lock.json" # written by npm on every install
if [[ ! -f "$stamp" || "$express/package-lock.json" -nt "$stamp" || "$express/package.json" -nt "$stamp" ]]; then
    (cd "$express" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Spark Java: Maven has no cheap up-to-date check of its own, so compare times.
spark="$here/spark-java"
jar="$out/spark-server.jar"
if [[ ! -f "$jar" ]] || [[ -n "$(find "$spark/pom.xml" "$spark/src" -newer "$jar" -print -quit)" ]]; then
    mvn -q -B -Dstyle.color=never -f "$spark/pom.xml" package
    cp "$spark/target/spark-server.jar" "$jar"
fi

# The Python app's database clients: pip --target, so the app's own interpreter
# (python3, or the guest's in the VM tests) imports them from there.
pydb="$out/python-db"
if ! cmp -s "$here/python/db-requirements.txt" "$pydb/db-requirements.txt"; then
    rm -rf "$pydb"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --target "$pydb" -r "$here/python/db-requirements.txt"
    cp "$here/python/db-requirements.txt" "$pydb/db-requirements.txt"
fi

# The Node app's database clients, as for Express.
node="$here/node"
stamp="$node/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$node/package-lock.json" -nt "$stamp" || "$node/package.json" -nt "$stamp" ]]; then
    (cd "$node" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The Java app's database clients, then Db.java compiled against them.
lib="$out/java/lib"
if [[ ! -f "$out/java/Db.class" || "$here/java-db/pom.xml" -nt "$out/java/Db.class" ||
      "$here/java/Db.java" -nt "$out/java/Db.class" ]]; then
    rm -rf "$lib"
    mvn -q -B -Dstyle.color=never -f "$here/java-db/pom.xml" package -Dclients.dir="$lib"
    javac --release 17 -cp "$lib/*" -d "$out/java" "$here/java/Db.java"
fi

echo "built $venv, $express/node_modules, $jar and the /db clients ($pydb, $node/node_modules, $lib)"
