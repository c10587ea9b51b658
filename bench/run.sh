#!/usr/bin/env bash
# The benchmark, in one command (as root, from anywhere):
#   bash bench/run.sh            full run: Go, nginx, Python (gunicorn), Node, every capture path; ~30 min
#   bash bench/run.sh --quick    smoke mode: Go server (HTTP and Redis client phases), a few
#                                seconds per phase, no targets
# Other flags go to bench/bench.py (--servers go,nginx --rounds 3 --duration 10 --no-capacity).
# Installs what is missing from the build and bench items of scripts/requirements.txt
# (wrk, nginx-light, redis-server, bpftool, gunicorn, the OpenTelemetry SDK), builds the Go tools
# (bench/tools) and the agent (cargo build --release -p beyla), then runs
# bench/bench.py, which prints a Markdown table and writes bench/results/<stamp>.{json,md}.
# Exit status: 0 when every step ran; otherwise non-zero after "bench: FAILED: <step>: <why>".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
step="start"
trap 'echo "bench: FAILED: step \"$step\" (exit $?); see the output above" >&2' ERR

if [[ $(id -u) -ne 0 ]]; then
    echo "bench: FAILED: needs root (eBPF programs, kernel.bpf_stats_enabled)" >&2
    exit 1
fi

step="install tools (scripts/deps.sh install build bench)"
bash "$repo/scripts/deps.sh" install build bench

step="build the Go tools (bench/tools)"
# shellcheck source=../scripts/lib/path.sh
. "$repo/scripts/lib/path.sh"
go_bin="$(command -v go)"
mkdir -p "$here/.build"
for t in loadgen hello sink; do
    (cd "$here/tools" && CGO_ENABLED=0 GOTOOLCHAIN=local "$go_bin" build -o "$here/.build/$t" "./$t")
done

step="build the agent (cargo build --release -p beyla)"
(cd "$repo" && cargo build --release -q -p beyla)
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
# A copy: others may rebuild target/release while the benchmark runs.
cp "$target_dir/release/beyla" "$here/.build/beyla"

step="run bench/bench.py"
python3 "$here/bench.py" "$@"
