#!/usr/bin/env bash
# The main job: a sample Python service on port 8080, the agent instrumenting
# it with the trace printer on, and a little traffic so spans show at once.
# Ctrl-C stops everything.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup_purposes="build test"
source "$repo/scripts/setup.sh"

port="${DEMO_PORT:-8080}"
PORT="$port" DOWNSTREAM_URL="http://127.0.0.1:$port/health" python3 "$repo/vm-tests/apps/python/server.py" &
app=$!
BEYLA_OPEN_PORT="$port" BEYLA_TRACE_PRINTER="${BEYLA_TRACE_PRINTER:-text}" "$repo/target/debug/beyla" &
agent=$!
trap 'kill $app $agent 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

# Traffic: a few routes, an error and a nested call, every second.
sleep 2
while kill -0 $agent 2>/dev/null; do
  for path in /health /users/$RANDOM /error /missing /downstream; do
    curl -s -o /dev/null "http://127.0.0.1:$port$path" || true
  done
  sleep 1
done
