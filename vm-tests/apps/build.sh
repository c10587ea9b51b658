#!/usr/bin/env bash
# Builds the compiled sample apps into <repo>/target/apps:
#   target/apps/go-server     (Go, static binary)
#   target/apps/go-tls-server (Go over crypto/tls, static binary)
#   target/apps/java/App.class
#   target/apps/cpp-server    (C++, cpp-httplib) and target/apps/curl-client (C, libcurl)
#   target/apps/rust-server, target/apps/rust-client (axum, reqwest; cargo, crates.io)
# Python, Node, Ruby and PHP run from source and need no build. Safe to re-run:
# up-to-date outputs are kept.
# Then, each without failing this script, the framework apps (build-frameworks.sh)
# and the HTTP/2 and gRPC apps (grpc/build.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/target/apps"
mkdir -p "$out/java"

go_bin="$(command -v go || echo /usr/local/go/bin/go)"
# go build is incremental (build cache, and it leaves an up-to-date binary alone).
# CGO_ENABLED=0: a static binary that runs in any test VM; GOTOOLCHAIN=local: never download a toolchain.
(cd "$here/go/server" && CGO_ENABLED=0 GOTOOLCHAIN=local "$go_bin" build -o "$out/go-server" .)
# The same API over Go's crypto/tls, for the kernel matrix (the Go TLS tests build their own per toolchain).
(cd "$here/go-tls" && CGO_ENABLED=0 GOTOOLCHAIN=local "$go_bin" build -o "$out/go-tls-server" .)

# javac has no incremental mode, so only run it when the source is newer than the class file.
if [[ ! -f "$out/java/App.class" || "$here/java/App.java" -nt "$out/java/App.class" ]]; then
    javac --release 17 -d "$out/java" "$here/java/App.java"
fi

# C and C++: make-style, only when the source is newer than the binary.
if [[ ! -x "$out/cpp-server" || "$here/cpp/server.cpp" -nt "$out/cpp-server" ]]; then
    # shellcheck disable=SC2046 # pkg-config prints several words
    g++ -std=c++17 -O2 -Wall -o "$out/cpp-server" "$here/cpp/server.cpp" \
        $(pkg-config --cflags --libs cpp-httplib) -pthread
fi
if [[ ! -x "$out/curl-client" || "$here/cpp/client.c" -nt "$out/curl-client" ]]; then
    # shellcheck disable=SC2046
    gcc -O2 -Wall -o "$out/curl-client" "$here/cpp/client.c" $(pkg-config --cflags --libs libcurl)
fi

# Rust: cargo is incremental; its own target directory, so the agent's build is left alone.
CARGO_TARGET_DIR="$out/rust-target" cargo build --release --locked -q \
    --manifest-path "$here/rust/Cargo.toml"
for bin in rust-server rust-client; do
    cp -p "$out/rust-target/release/$bin" "$out/$bin"
done

echo "built $out/{go-server,java/App.class,cpp-server,curl-client,rust-server,rust-client}"

# HTTP/2 and gRPC apps (vm-tests/apps/grpc/build.sh). They need grpcio-tools and
# the grpc-go module, which the HTTP/1 apps do not: a failure here only warns;
# the HTTP/2 tests run that script themselves and fail on it.
if ! "$here/grpc/build.sh"; then
    echo "warning: the HTTP/2 / gRPC sample apps were not built (see above)" >&2
fi

# Framework apps (Flask, Express, Spark Java; build-frameworks.sh). They need
# packages from PyPI, npm and Maven Central, which the apps above do not: a
# failure here only warns; the tests of those apps run that script themselves
# and fail on it.
if ! "$here/build-frameworks.sh"; then
    echo "warning: the framework sample apps were not built (see above)" >&2
fi
