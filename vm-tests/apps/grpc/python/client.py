"""Sample gRPC client (grpcio) for demo.v1.Greeter; every call goes over ONE channel.

usage: client.py HOST:PORT STEP...
  unary N        N SayHello calls one after another (names user-<i>)
  stream N       N StreamHellos calls one after another (3 replies each)
  fail N         N SayHello calls with name "fail" (NOT_FOUND)
  traced N       N SayHello calls, each with its own random traceparent metadata
  concurrent N   N calls at once from N threads, each with its own traceparent:
                 i%3==0 SayHello OK, i%3==1 SayHello NOT_FOUND, i%3==2 StreamHellos(2);
                 all "slow-" so they are in flight together

Prints one line per call, in the order the calls finished:
  <method> <grpc status code> <replies> <traceparent or -> <start_ns> <end_ns>
and exits 0 if every call ended as planned.
"""
import os
import sys
import threading
import time

import grpc

from common import demo_pb2, demo_pb2_grpc

_print_lock = threading.Lock()
_ok = True


def _traceparent():
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def call(stub, method, name, count, traceparent, want_code):
    global _ok
    metadata = [("traceparent", traceparent)] if traceparent else None
    start = time.time_ns()
    replies = 0
    try:
        if method == "SayHello":
            stub.SayHello(demo_pb2.HelloRequest(name=name), metadata=metadata, timeout=30)
            replies = 1
        else:
            for _ in stub.StreamHellos(
                demo_pb2.HelloRequest(name=name, count=count), metadata=metadata, timeout=30
            ):
                replies += 1
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code = e.code()
    end = time.time_ns()
    number = code.value[0]
    with _print_lock:
        print(f"{method} {number} {replies} {traceparent or '-'} {start} {end}", flush=True)
        if code != want_code:
            sys.stderr.write(f"{method}({name!r}) ended with {code}, expected {want_code}\n")
            _ok = False


def concurrent(stub, n):
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        tp = _traceparent()
        if i % 3 == 0:
            call(stub, "SayHello", f"slow-c{i}", 0, tp, grpc.StatusCode.OK)
        elif i % 3 == 1:
            call(stub, "SayHello", f"slow-fail-c{i}", 0, tp, grpc.StatusCode.NOT_FOUND)
        else:
            call(stub, "StreamHellos", f"slow-c{i}", 2, tp, grpc.StatusCode.OK)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main():
    if len(sys.argv) < 2 or len(sys.argv) % 2 != 0:
        sys.stderr.write(__doc__)
        sys.exit(2)
    target, steps = sys.argv[1], sys.argv[2:]
    with grpc.insecure_channel(target) as channel:
        stub = demo_pb2_grpc.GreeterStub(channel)
        for step, n in zip(steps[::2], steps[1::2]):
            n = int(n)
            if step == "unary":
                for i in range(n):
                    call(stub, "SayHello", f"user-{i}", 0, None, grpc.StatusCode.OK)
            elif step == "stream":
                for i in range(n):
                    call(stub, "StreamHellos", f"user-{i}", 3, None, grpc.StatusCode.OK)
            elif step == "fail":
                for _ in range(n):
                    call(stub, "SayHello", "fail", 0, None, grpc.StatusCode.NOT_FOUND)
            elif step == "traced":
                for i in range(n):
                    call(stub, "SayHello", f"traced-{i}", 0, _traceparent(), grpc.StatusCode.OK)
            elif step == "concurrent":
                concurrent(stub, n)
            else:
                sys.stderr.write(f"unknown step {step!r}\n{__doc__}")
                sys.exit(2)
    sys.exit(0 if _ok else 1)


if __name__ == "__main__":
    main()
