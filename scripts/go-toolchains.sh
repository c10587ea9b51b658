#!/usr/bin/env bash
# Fetches the Go releases the Go TLS tests build with besides the system's
# (agent/src/golang/tests.rs, integration-tests/tests/go_tls.rs): the go
# command downloads a toolchain named by GOTOOLCHAIN from the Go module proxy
# into its module cache, once.
set -euo pipefail
for version in go1.27.3; do
  GOTOOLCHAIN=$version go version
done
