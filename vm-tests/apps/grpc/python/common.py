"""Shared by the sample gRPC server and client: finds the code generated from
vm-tests/apps/grpc/demo.proto (by vm-tests/apps/grpc/build.sh, into
<repo>/target/apps/grpc-py, or into $GRPC_PY_GEN)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
GEN = os.environ.get("GRPC_PY_GEN") or os.path.join(REPO, "target", "apps", "grpc-py")

if not os.path.isfile(os.path.join(GEN, "demo_pb2.py")):
    sys.stderr.write(f"{GEN}/demo_pb2.py is missing: run vm-tests/apps/grpc/build.sh\n")
    sys.exit(2)
sys.path.insert(0, GEN)

import demo_pb2  # noqa: E402,F401
import demo_pb2_grpc  # noqa: E402,F401

# How long a "slow-" call waits, so concurrent calls overlap on the connection.
SLOW_SECONDS = 0.3
