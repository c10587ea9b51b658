#!/usr/bin/env bash
# Builds the HTTP/2 and gRPC sample apps into <repo>/target/apps:
#   target/apps/grpc-py/demo_pb2*.py   (generated from grpc/demo.proto with grpc_tools.protoc)
#   target/apps/grpc-go-server, target/apps/grpc-go-client   (grpc-go, static)
#   target/apps/h2c-server, target/apps/h2c-client            (net/http only, static)
# Needs python3 with grpcio + grpcio-tools, and the google.golang.org/grpc module
# (Go module proxy or module cache). Safe to re-run: up-to-date outputs are kept.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
apps="$(cd "$here/.." && pwd)"
repo="$(cd "$apps/../.." && pwd)"
out="$repo/target/apps"
mkdir -p "$out/grpc-py"

if [[ ! -f "$out/grpc-py/demo_pb2_grpc.py" || "$here/demo.proto" -nt "$out/grpc-py/demo_pb2_grpc.py" ]]; then
    python3 -m grpc_tools.protoc -I "$here" --python_out="$out/grpc-py" \
        --grpc_python_out="$out/grpc-py" "$here/demo.proto"
fi

go_bin="$(command -v go || echo /usr/local/go/bin/go)"
build() { # <module dir> <package> <output>
    (cd "$1" && CGO_ENABLED=0 GOTOOLCHAIN=local "$go_bin" build -o "$3" "$2")
}
build "$apps/h2c" ./server "$out/h2c-server"
build "$apps/h2c" ./client "$out/h2c-client"
build "$here/go" ./server "$out/grpc-go-server"
build "$here/go" ./client "$out/grpc-go-client"

echo "built $out/grpc-py, grpc-go-server, grpc-go-client, h2c-server, h2c-client"
