"""WSGI hello app for the benchmark, run by gunicorn (gthread worker, keep-alive).

With BENCH_OTEL=1 (set by the harness for the "otel" mode) gunicorn_conf.py (post_worker_init) installs the
OpenTelemetry SDK in each worker: TracerProvider + BatchSpanProcessor + OTLP/HTTP exporter
to the harness's local sink, and wraps this app in OpenTelemetryMiddleware
(opentelemetry-instrumentation-wsgi), so every request makes and exports a real span.
"""

BODY = b"hello"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
