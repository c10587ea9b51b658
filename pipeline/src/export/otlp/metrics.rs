//! OTLP metrics: the histograms `semconv` names (HTTP, RPC, ... durations in
//! seconds, HTTP body sizes in bytes), cumulative, pushed every `interval`.
//!
//! `service.name` and `service.instance.id` belong in the resource, and a
//! MeterProvider has one resource, so there is one MeterProvider per service
//! instance (a process, or a container in a pod), created when its first span
//! arrives (as Beyla does). They are bounded by [`MAX_SERVICES`]: spans of
//! further instances are counted and not recorded.
//! Each provider has a manual reader; one control-plane task records spans
//! and, every interval, collects every provider and sends the results
//! through one OTLP exporter (one connection), each request on the module's
//! tokio runtime.

use std::collections::HashMap;
use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_lite::future::or;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};

use super::convert;
use super::failure::{self, Refusal};
use super::{ExportError, MetricsConfig};
use crate::export::{Context, Queued, Signal, StartError};
use crate::model::{Host, Resource, Span};
use crate::selfmetrics::{Counter, SelfMetrics};
use crate::semconv::{self, Instrument, MetricValue};

/// Service instances with their own MeterProvider at most.
pub const MAX_SERVICES: usize = 512;

/// A service's reader, shared between its provider and the exporter task.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

struct ServiceMeters {
    /// Kept for as long as the meters record into it.
    _provider: SdkMeterProvider,
    reader: SharedReader,
    /// One per instrument, in [`Instrument::ALL`] order.
    histograms: Vec<Histogram<f64>>,
}

/// What has a MeterProvider (a resource) of its own: a service instance
/// (`service.instance.id`: a process, or a container in a pod).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MeterKey {
    service: String,
    instance: String,
}

impl MeterKey {
    fn of(process: &Resource, host: &Host) -> Self {
        Self {
            service: process.service_name.clone(),
            instance: process.instance_id(host),
        }
    }
}

/// Spans to histogram recordings, one MeterProvider per service name (and container).
pub(crate) struct Recorder {
    services: HashMap<MeterKey, ServiceMeters>,
    host: Arc<Host>,
    metrics: Arc<SelfMetrics>,
}

impl Recorder {
    pub fn new(host: Arc<Host>, metrics: Arc<SelfMetrics>) -> Self {
        Self {
            services: HashMap::new(),
            host,
            metrics,
        }
    }

    /// The meters of `process`'s service, made with its resource when the
    /// service's first span arrives.
    fn meters(&mut self, process: &Resource) -> Option<&ServiceMeters> {
        let key = MeterKey::of(process, &self.host);
        if !self.services.contains_key(&key) {
            if self.services.len() >= MAX_SERVICES {
                return None;
            }
            let reader = SharedReader(Arc::new(
                ManualReader::builder()
                    .with_temporality(Temporality::Cumulative)
                    .build(),
            ));
            let provider = SdkMeterProvider::builder()
                .with_resource(convert::resource(process, &self.host, false))
                .with_reader(reader.clone())
                .build();
            let meter = provider.meter_with_scope(convert::scope());
            let histograms = Instrument::ALL
                .iter()
                .map(|instrument| {
                    meter
                        .f64_histogram(instrument.name())
                        .with_unit(instrument.unit().ucum())
                        .with_description(instrument.description())
                        .with_boundaries(instrument.buckets().to_vec())
                        .build()
                })
                .collect();
            let meters = ServiceMeters {
                _provider: provider,
                reader,
                histograms,
            };
            self.services.insert(key.clone(), meters);
        }
        self.services.get(&key)
    }

    pub fn record(&mut self, span: &Span) {
        let Some(metric) = semconv::metric_attributes(span) else {
            return;
        };
        let metrics = Arc::clone(&self.metrics);
        let Some(meters) = self.meters(&span.request.resource) else {
            metrics.inc(Counter::OtlpSpansDroppedServiceLimit);
            return;
        };
        let attributes: Vec<KeyValue> = metric
            .iter()
            .filter_map(|(name, value)| {
                Some(match value {
                    MetricValue::Str(s) => KeyValue::new(name, *s),
                    MetricValue::Int(i) => KeyValue::new(name, *i),
                    MetricValue::Absent => return None,
                    MetricValue::Text(_) | MetricValue::Ip(_) | MetricValue::Status(_) => {
                        KeyValue::new(name, value.text())
                    }
                })
            })
            .collect();
        for (instrument, value) in semconv::measurements(span, metric.instrument) {
            meters.histograms[instrument.index()].record(value, &attributes);
        }
    }

    #[cfg(test)]
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Every service's metrics as they stand.
    pub fn collect(&self) -> Vec<ResourceMetrics> {
        self.services
            .values()
            .filter_map(|meters| {
                let mut rm = ResourceMetrics::default();
                match meters.reader.collect(&mut rm) {
                    Ok(()) => Some(rm),
                    Err(e) => {
                        log::warn!("OTLP metrics: cannot collect: {e}");
                        None
                    }
                }
            })
            .collect()
    }
}

/// Starts the metrics exporter on the control plane; it ends after its queue
/// closes and a last push of every service's metrics (bounded by the
/// shutdown timeout), then logs what it did.
pub fn spawn_metrics(config: &MetricsConfig, context: &Context) -> Result<Queued, StartError> {
    config.validate().map_err(ExportError::from)?;
    let io = super::io("metrics")?;
    let exporter = {
        let _inside = io.enter();
        Arc::new(super::build_metric_exporter(&config.signal)?)
    };
    let push = Push {
        exporter,
        io,
        timeout: config.signal.timeout + Duration::from_secs(1),
        metrics: Arc::clone(&context.self_metrics),
        failing: false,
        refused: None,
    };
    let (interval, last_push) = (config.interval, context.shutdown_timeout);
    let host = Arc::clone(&context.host);
    log::info!(
        "exporting metrics over OTLP {} to {} every {interval:?}",
        config.signal.protocol,
        config.signal.url()
    );
    Ok(Queued::spawn(
        &context.control,
        Signal::Metrics,
        move |rx| run(rx, host, push, interval, last_push),
    ))
}

/// Sends collected metrics, counting what the receiver accepts and refuses.
struct Push {
    exporter: Arc<opentelemetry_otlp::MetricExporter>,
    io: &'static tokio::runtime::Runtime,
    timeout: Duration,
    metrics: Arc<SelfMetrics>,
    /// Whether the last push failed: a failure is logged when it starts, not every interval.
    failing: bool,
    /// The permanent refusal already logged: a receiver that takes no metrics
    /// (Jaeger) is told once, not every interval.
    refused: Option<Refusal>,
}

impl Push {
    /// Sends what was collected, one request per service.
    async fn send(&mut self, collected: Vec<ResourceMetrics>) {
        for rm in collected {
            let exporter = Arc::clone(&self.exporter);
            let sent = super::request(
                self.io,
                self.timeout,
                async move { exporter.export(&rm).await },
            )
            .await
            .and_then(|r| r.map_err(|e| e.to_string()));
            match sent {
                Ok(()) => {
                    self.metrics.inc(Counter::OtlpMetricExports);
                    if self.failing || self.refused.is_some() {
                        log::info!("OTLP metrics: the receiver accepts metrics again");
                        self.failing = false;
                        self.refused = None;
                    }
                }
                Err(e) => {
                    self.metrics.inc(Counter::OtlpMetricExportFailures);
                    match failure::refusal(&e) {
                        Some(refusal) => {
                            self.metrics.inc(Counter::OtlpMetricExportsRejected);
                            if self.refused.as_ref() != Some(&refusal) {
                                log::warn!(
                                    "OTLP metrics: the receiver refused metrics with {refusal}: dropped, not retried (they are pushed again each interval, cumulative); {}",
                                    failure::advice(&refusal, "metrics")
                                );
                            }
                            self.refused = Some(refusal);
                        }
                        None if !self.failing => {
                            log::warn!("OTLP metrics: export failed: {e}");
                            self.failing = true;
                        }
                        None => {}
                    }
                }
            }
        }
    }
}

/// A push under way; it owns the `Push` and gives it back.
type InFlight = Pin<Box<dyn Future<Output = Push> + Send>>;

enum Event {
    Span(Option<Arc<Span>>),
    Due,
    Pushed(Push),
}

/// Records spans as they come and pushes every `interval`, a push running
/// beside the recording: a receiver that does not answer holds up neither
/// the spans nor the stop. An interval that finds the last push still under
/// way is skipped (the metrics are cumulative: the next push carries it).
/// After the queue closes, one last push, which may take `last_push` with
/// the one under way.
async fn run(
    rx: async_channel::Receiver<Arc<Span>>,
    host: Arc<Host>,
    push: Push,
    interval: Duration,
    last_push: Duration,
) {
    let metrics = Arc::clone(&push.metrics);
    let exporter = Arc::clone(&push.exporter);
    let mut recorder = Recorder::new(host, Arc::clone(&metrics));
    let mut due = smol::Timer::at(Instant::now() + interval);
    let mut idle = Some(push);
    let mut in_flight: Option<InFlight> = None;
    loop {
        let pushed = async {
            match in_flight.as_mut() {
                Some(push) => Event::Pushed(push.await),
                None => pending().await,
            }
        };
        let span = async { Event::Span(rx.recv().await.ok()) };
        let tick = async {
            (&mut due).await;
            Event::Due
        };
        match or(pushed, or(span, tick)).await {
            Event::Span(Some(span)) => recorder.record(&span),
            Event::Span(None) => break,
            Event::Due => {
                if let Some(mut push) = idle.take() {
                    let collected = recorder.collect();
                    in_flight = Some(Box::pin(async move {
                        push.send(collected).await;
                        push
                    }));
                }
                due.set_at(Instant::now() + interval);
            }
            Event::Pushed(push) => {
                in_flight = None;
                idle = Some(push);
            }
        }
    }
    let collected = recorder.collect();
    let last = async {
        // The push is idle, or under way: it has to end first.
        let push = match (idle, in_flight) {
            (Some(push), _) => Some(push),
            (None, Some(under_way)) => Some(under_way.await),
            (None, None) => None,
        };
        if let Some(mut push) = push {
            push.send(collected).await;
        }
        true
    };
    let late = async {
        smol::Timer::after(last_push).await;
        false
    };
    if !or(last, late).await {
        log::warn!("OTLP metrics: the last push did not finish within {last_push:?}");
    }
    let _ = exporter.shutdown();
    log::info!(
        "OTLP metrics: exports={} export_failures={} exports_rejected={} spans_dropped_service_limit={}",
        metrics.get(Counter::OtlpMetricExports),
        metrics.get(Counter::OtlpMetricExportFailures),
        metrics.get(Counter::OtlpMetricExportsRejected),
        metrics.get(Counter::OtlpSpansDroppedServiceLimit),
    );
}

#[cfg(test)]
mod tests {

    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

    use super::*;
    use crate::export::otlp::convert::tests::span;
    use crate::model::{fixtures, SpanKind};
    use crate::semconv::{DURATION_BUCKETS, SIZE_BUCKETS};

    /// One histogram data point, as the receiver would see it.
    #[derive(Debug, Clone, PartialEq)]
    struct Point {
        service: String,
        metric: String,
        unit: String,
        attributes: Vec<(String, String)>,
        count: u64,
        sum: f64,
        bounds: Vec<f64>,
        buckets: Vec<u64>,
    }

    /// The histogram data points of everything the recorder holds, sorted.
    fn points(recorder: &Recorder) -> Vec<Point> {
        let mut out = Vec::new();
        for rm in recorder.collect() {
            let service = rm
                .resource()
                .get(&opentelemetry::Key::from_static_str("service.name"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            for sm in rm.scope_metrics() {
                assert_eq!(sm.scope().name(), "beyla");
                for m in sm.metrics() {
                    let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() else {
                        panic!("{} is not an f64 histogram", m.name());
                    };
                    assert_eq!(h.temporality(), Temporality::Cumulative);
                    for dp in h.data_points() {
                        let mut attributes: Vec<_> = dp
                            .attributes()
                            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                            .collect();
                        attributes.sort();
                        out.push(Point {
                            service: service.clone(),
                            metric: m.name().to_string(),
                            unit: m.unit().to_string(),
                            attributes,
                            count: dp.count(),
                            sum: dp.sum(),
                            bounds: dp.bounds().collect(),
                            buckets: dp.bucket_counts().collect(),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.service, &a.metric).cmp(&(&b.service, &b.metric)));
        out
    }

    /// The attributes of the fixture's `GET /users/*` (`Host: localhost:8080`,
    /// server port 40000 seen from the client) answered `status`.
    fn attrs(kind: SpanKind, status: u16) -> Vec<(String, String)> {
        let mut v = vec![
            ("http.request.method", "GET".to_string()),
            ("http.response.status_code", status.to_string()),
            ("http.route", "/users/*".to_string()),
            ("url.scheme", "http".to_string()),
        ];
        let error = match kind {
            SpanKind::Server => status >= 500,
            SpanKind::Client => status >= 400,
        };
        if error {
            v.push(("error.type", status.to_string()));
        }
        if kind == SpanKind::Client {
            v.push(("server.address", "localhost".to_string()));
            v.push(("server.port", "40000".to_string()));
        }
        let mut v: Vec<(String, String)> = v.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        v.sort();
        v
    }

    fn recorder() -> Recorder {
        Recorder::new(Arc::new(fixtures::host()), Arc::default())
    }

    #[test]
    fn spans_become_duration_histograms_per_service() {
        let mut recorder = recorder();
        // 1.5 ms each.
        recorder.record(&span(SpanKind::Server, 200, "front", 1));
        recorder.record(&span(SpanKind::Server, 200, "front", 2));
        let mut slow = span(SpanKind::Client, 503, "front", 3);
        slow.end_unix_ns = slow.start_unix_ns + 2_000_000_000;
        recorder.record(&slow);
        recorder.record(&span(SpanKind::Server, 500, "back", 4));
        assert_eq!(recorder.service_count(), 2);
        let points: Vec<Point> = points(&recorder)
            .into_iter()
            .filter(|p| p.unit == "s")
            .collect();
        let mut one_fast = vec![0u64; 15];
        one_fast[0] = 1;
        let mut two_fast = vec![0u64; 15];
        two_fast[0] = 2;
        let mut one_two_seconds = vec![0u64; 15];
        one_two_seconds[10] = 1; // (1, 2.5]
        const SERVER: &str = "http.server.request.duration";
        const CLIENT: &str = "http.client.request.duration";
        let point = |service: &str, metric: &str, kind, status, count, sum, buckets| Point {
            service: service.into(),
            metric: metric.into(),
            unit: "s".into(),
            attributes: attrs(kind, status),
            count,
            sum,
            bounds: DURATION_BUCKETS.to_vec(),
            buckets,
        };
        use SpanKind::{Client, Server};
        assert_eq!(
            points,
            vec![
                point("back", SERVER, Server, 500, 1, 0.0015, one_fast.clone()),
                point("front", CLIENT, Client, 503, 1, 2.0, one_two_seconds),
                point("front", SERVER, Server, 200, 2, 0.003, two_fast),
            ]
        );
    }

    #[test]
    fn http_spans_record_their_body_sizes_in_bytes() {
        let mut recorder = recorder();
        let mut post = span(SpanKind::Server, 201, "front", 1);
        fixtures::http(&mut post).request_body_bytes = 100;
        fixtures::http(&mut post).response_body_bytes = 5000;
        recorder.record(&post);
        let mut call = span(SpanKind::Client, 200, "front", 2);
        fixtures::http(&mut call).request_body_bytes = 0;
        fixtures::http(&mut call).response_body_bytes = 20;
        recorder.record(&call);
        let sizes: Vec<Point> = points(&recorder)
            .into_iter()
            .filter(|p| p.unit == "By")
            .collect();
        // Buckets: (-inf, 0], (0, 32], (32, 64] ... (4096, 8192], (8192, +inf).
        let point = |metric: &str, kind, status, sum: f64, bucket: usize| {
            let mut buckets = vec![0u64; 11];
            buckets[bucket] = 1;
            Point {
                service: "front".into(),
                metric: metric.into(),
                unit: "By".into(),
                attributes: attrs(kind, status),
                count: 1,
                sum,
                bounds: SIZE_BUCKETS.to_vec(),
                buckets,
            }
        };
        use SpanKind::{Client, Server};
        assert_eq!(
            sizes,
            vec![
                point("http.client.request.body.size", Client, 200, 0.0, 0),
                point("http.client.response.body.size", Client, 200, 20.0, 1),
                point("http.server.request.body.size", Server, 201, 100.0, 3),
                point("http.server.response.body.size", Server, 201, 5000.0, 9),
            ]
        );
    }

    #[test]
    fn grpc_calls_become_rpc_duration_histograms() {
        let mut recorder = recorder();
        let mut call = span(SpanKind::Server, 200, "front", 1);
        fixtures::rpc(&mut call, "beyla.Users", "Get", Some(5));
        recorder.record(&call);
        let points = points(&recorder);
        let mut one_fast = vec![0u64; 15];
        one_fast[0] = 1;
        let mut attributes = vec![
            ("rpc.grpc.status_code".to_string(), "5".to_string()),
            ("rpc.method".to_string(), "Get".to_string()),
            ("rpc.service".to_string(), "beyla.Users".to_string()),
            ("rpc.system".to_string(), "grpc".to_string()),
        ];
        attributes.sort();
        assert_eq!(
            points,
            vec![Point {
                service: "front".into(),
                metric: Instrument::RpcServerDuration.name().into(),
                unit: "s".into(),
                attributes,
                count: 1,
                sum: 0.0015,
                bounds: DURATION_BUCKETS.to_vec(),
                buckets: one_fast,
            }]
        );
    }

    #[test]
    fn services_beyond_the_limit_are_counted_not_recorded() {
        let metrics = Arc::new(SelfMetrics::default());
        let mut recorder = Recorder::new(Arc::new(fixtures::host()), Arc::clone(&metrics));
        for i in 0..MAX_SERVICES + 3 {
            recorder.record(&span(SpanKind::Server, 200, &format!("svc{i}"), 1));
        }
        recorder.record(&span(SpanKind::Server, 200, "svc0", 1));
        assert_eq!(recorder.service_count(), MAX_SERVICES);
        assert_eq!(metrics.get(Counter::OtlpSpansDroppedServiceLimit), 3);
    }
}
