"""gunicorn settings for the benchmark; PORT and BENCH_OTEL come from the environment."""
import os

bind = "127.0.0.1:" + os.environ["PORT"]
worker_class = "gthread"
workers = int(os.environ.get("BENCH_WORKERS", "2"))
threads = 8
keepalive = 75
accesslog = None
loglevel = "warning"


def post_worker_init(worker):
    if os.environ.get("BENCH_OTEL") != "1":
        return
    # In each worker, once it has loaded the app: the batch processor's thread lives there.
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bench-python"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])))
    trace.set_tracer_provider(provider)
    worker.wsgi = OpenTelemetryMiddleware(worker.wsgi)


def when_ready(server):
    print("listening on " + os.environ["PORT"], flush=True)
