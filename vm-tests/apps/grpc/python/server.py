"""Sample gRPC server (grpcio): demo.v1.Greeter on 127.0.0.1:$PORT.

SayHello(name)         -> "hello <name>"; name starting with "fail" -> NOT_FOUND
StreamHellos(name, n)  -> n replies "hello <name> #<i>"; same "fail" rule
A name starting with "slow-" makes the call wait SLOW_SECONDS first (the prefix
is then dropped), so concurrent calls are in flight together.
Prints "listening on <port>" once the port is bound.
"""
import os
import sys
import time
from concurrent import futures

import grpc

from common import SLOW_SECONDS, demo_pb2, demo_pb2_grpc


def _prepare(name, context):
    if name.startswith("slow-"):
        time.sleep(SLOW_SECONDS)
        name = name[len("slow-"):]
    if name.startswith("fail"):
        context.abort(grpc.StatusCode.NOT_FOUND, f"no such name: {name}")
    return name


class Greeter(demo_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        name = _prepare(request.name, context)
        return demo_pb2.HelloReply(message=f"hello {name}")

    def StreamHellos(self, request, context):
        name = _prepare(request.name, context)
        for i in range(request.count):
            yield demo_pb2.HelloReply(message=f"hello {name} #{i}")


def main():
    port = os.environ.get("PORT")
    if port is None:
        sys.stderr.write("PORT is not set\n")
        sys.exit(1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    demo_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound == 0:
        sys.stderr.write(f"cannot listen on 127.0.0.1:{port}\n")
        sys.exit(1)
    server.start()
    print(f"listening on {bound}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
