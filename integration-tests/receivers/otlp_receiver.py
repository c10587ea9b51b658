#!/usr/bin/env python3
"""A small OTLP receiver for tests, on the official protobuf definitions.

Serves OTLP/HTTP (protobuf) `POST /v1/traces` and `POST /v1/metrics` on
--http-port and OTLP/gRPC TraceService/Export and MetricsService/Export on
--grpc-port. Every received span, and every metric data point, becomes one JSON
line in --out:

  {"type": "span", "transport": "http"|"grpc", "traceId", "spanId",
   "parentSpanId" (hex, "" when none), "name", "kind" ("SPAN_KIND_SERVER"...),
   "startTimeUnixNano", "endTimeUnixNano", "status": {"code", "message"},
   "attributes": {flattened}, "resource": {flattened}, "resourceSchemaUrl",
   "scope": {"name", "version", "schemaUrl"},
   "headers": {lowercased request headers / gRPC metadata}}

  {"type": "metric", "transport", "name", "unit", "description",
   "dataType": "histogram"|"sum"|"gauge"|"exponentialHistogram",
   "aggregationTemporality" ("AGGREGATION_TEMPORALITY_CUMULATIVE"...),
   "startTimeUnixNano", "timeUnixNano", "attributes", "resource", "resourceSchemaUrl",
   "scope", "headers",
   histogram: "count", "sum", "min", "max", "explicitBounds", "bucketCounts";
   sum/gauge: "value" (and "isMonotonic" for sums)}

--tls-cert and --tls-key make both servers speak TLS (https:// and gRPC over TLS).

--fail-with CODE answers every request (or only the first --fail-first N) with that
HTTP status, or its gRPC equivalent, for fault tests; refused requests are not
written. --traces-only takes no metrics, as Jaeger: `POST /v1/metrics` is 404
and the gRPC MetricsService is not served (UNIMPLEMENTED); the HTTP requests to
a path it does not serve are counted as `unserved`. The line "listening http=PORT grpc=PORT" on stdout tells that both
servers are up (ports 0 pick free ones).

Needs: pip install opentelemetry-proto grpcio protobuf
"""

import argparse
import gzip
import json
import signal
import ssl
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

GRPC_CODE_FOR_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def scope_json(scope, schema_url):
    return {"name": scope.name, "version": scope.version, "schemaUrl": schema_url}


class Sink:
    """Writes JSON lines and decides which requests to refuse."""

    def __init__(self, path, fail_with, fail_first, delay_ms=0):
        self.out = open(path, "a", encoding="utf-8")
        self.delay = delay_ms / 1000.0
        self.lock = threading.Lock()
        self.fail_with = fail_with
        self.fail_left = fail_first
        self.counts = {"spans": 0, "points": 0, "refused": 0, "unserved": 0}

    def refuse(self):
        """Whether to refuse this request (counts it); a slow receiver waits first."""
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if self.fail_with is None:
                return False
            if self.fail_left is not None:
                if self.fail_left <= 0:
                    return False
                self.fail_left -= 1
            self.counts["refused"] += 1
            return True

    def write(self, records, counter):
        with self.lock:
            for r in records:
                self.out.write(json.dumps(r, sort_keys=True) + "\n")
            self.out.flush()
            self.counts[counter] += len(records)

    def traces(self, request, transport, headers):
        records = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    records.append(
                        {
                            "type": "span",
                            "transport": transport,
                            "traceId": s.trace_id.hex(),
                            "spanId": s.span_id.hex(),
                            "parentSpanId": s.parent_span_id.hex(),
                            "name": s.name,
                            "kind": trace_pb2.Span.SpanKind.Name(s.kind),
                            "startTimeUnixNano": s.start_time_unix_nano,
                            "endTimeUnixNano": s.end_time_unix_nano,
                            "status": {
                                "code": trace_pb2.Status.StatusCode.Name(s.status.code),
                                "message": s.status.message,
                            },
                            "flags": s.flags,
                            "attributes": attributes(s.attributes),
                            "resource": resource,
                            "resourceSchemaUrl": rs.schema_url,
                            "scope": scope_json(ss.scope, ss.schema_url),
                            "headers": headers,
                        }
                    )
        self.write(records, "spans")

    def metrics(self, request, transport, headers):
        temporality = metrics_pb2.AggregationTemporality.Name
        records = []
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    data_type = m.WhichOneof("data")
                    base = {
                        "type": "metric",
                        "transport": transport,
                        "name": m.name,
                        "unit": m.unit,
                        "description": m.description,
                        "dataType": {"exponential_histogram": "exponentialHistogram"}.get(
                            data_type, data_type
                        ),
                        "resource": resource,
                        "resourceSchemaUrl": rm.schema_url,
                        "scope": scope_json(sm.scope, sm.schema_url),
                        "headers": headers,
                    }
                    data = getattr(m, data_type)
                    for dp in data.data_points:
                        r = dict(base)
                        r["attributes"] = attributes(dp.attributes)
                        r["startTimeUnixNano"] = dp.start_time_unix_nano
                        r["timeUnixNano"] = dp.time_unix_nano
                        if data_type in ("sum", "histogram", "exponential_histogram"):
                            r["aggregationTemporality"] = temporality(
                                data.aggregation_temporality
                            )
                        if data_type == "histogram":
                            r["count"] = dp.count
                            r["sum"] = dp.sum
                            r["min"] = dp.min if dp.HasField("min") else None
                            r["max"] = dp.max if dp.HasField("max") else None
                            r["explicitBounds"] = list(dp.explicit_bounds)
                            r["bucketCounts"] = list(dp.bucket_counts)
                        elif data_type == "exponential_histogram":
                            r["count"] = dp.count
                            r["sum"] = dp.sum
                            r["scale"] = dp.scale
                        else:
                            r["value"] = getattr(dp, dp.WhichOneof("value"))
                            if data_type == "sum":
                                r["isMonotonic"] = data.is_monotonic
                        records.append(r)
        self.write(records, "points")


def http_handler(sink, traces_only):
    routes = {
        "/v1/traces": (
            trace_service_pb2.ExportTraceServiceRequest,
            trace_service_pb2.ExportTraceServiceResponse,
            sink.traces,
        ),
        "/v1/metrics": (
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse,
            sink.metrics,
        ),
    }
    if traces_only:
        del routes["/v1/metrics"]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def reply(self, code, body=b"", content_type="application/x-protobuf"):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            route = routes.get(self.path)
            if route is None:
                with sink.lock:
                    sink.counts["unserved"] += 1
                return self.reply(404, b"not found", "text/plain")
            if sink.refuse():
                return self.reply(sink.fail_with, b"refused", "text/plain")
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            if "protobuf" not in self.headers.get("Content-Type", ""):
                return self.reply(415, b"only application/x-protobuf", "text/plain")
            request_type, response_type, handle = route
            request = request_type()
            try:
                request.ParseFromString(body)
            except Exception as e:  # noqa: BLE001 - any decode failure is the client's
                return self.reply(400, str(e).encode(), "text/plain")
            headers = {k.lower(): v for k, v in self.headers.items()}
            handle(request, "http", headers)
            self.reply(200, response_type().SerializeToString())

    return Handler


def grpc_servicers(sink):
    def check(context):
        if sink.refuse():
            code = GRPC_CODE_FOR_HTTP.get(sink.fail_with, grpc.StatusCode.UNAVAILABLE)
            context.abort(code, f"refused (as HTTP {sink.fail_with})")
        return {k.lower(): v for k, v in context.invocation_metadata()}

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            sink.traces(request, "grpc", check(context))
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):
            sink.metrics(request, "grpc", check(context))
            return metrics_service_pb2.ExportMetricsServiceResponse()

    return Traces(), Metrics()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--http-port", type=int, default=4318)
    p.add_argument("--grpc-port", type=int, default=4317)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--out", required=True, help="JSON lines file (appended to)")
    p.add_argument("--fail-with", type=int, metavar="HTTP_STATUS")
    p.add_argument(
        "--fail-first", type=int, metavar="N", help="refuse only the first N requests"
    )
    p.add_argument(
        "--delay-ms", type=int, default=0, help="answer every request this late (a slow receiver)"
    )
    p.add_argument("--tls-cert", help="PEM certificate: both servers speak TLS with it")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument(
        "--traces-only", action="store_true", help="take no metrics (404 / UNIMPLEMENTED), as Jaeger"
    )
    args = p.parse_args()

    sink = Sink(args.out, args.fail_with, args.fail_first, args.delay_ms)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    traces, metrics = grpc_servicers(sink)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(traces, server)
    if not args.traces_only:
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics, server)
    if args.tls_cert:
        with open(args.tls_cert, "rb") as cert, open(args.tls_key, "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        grpc_port = server.add_secure_port(f"{args.host}:{args.grpc_port}", credentials)
    else:
        grpc_port = server.add_insecure_port(f"{args.host}:{args.grpc_port}")
    server.start()

    httpd = ThreadingHTTPServer((args.host, args.http_port), http_handler(sink, args.traces_only))
    httpd.daemon_threads = True
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    http_port = httpd.server_address[1]

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening http={http_port} grpc={grpc_port}", flush=True)
    httpd.serve_forever()
    server.stop(grace=1).wait()
    c = sink.counts
    print(
        f"received spans={c['spans']} points={c['points']} refused={c['refused']} "
        f"unserved={c['unserved']}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
