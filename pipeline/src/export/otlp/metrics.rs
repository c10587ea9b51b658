//! OTLP metrics: `http.server.request.duration` and `http.client.request.duration`
//! histograms, and `rpc.server.duration` and `rpc.client.duration` for gRPC
//! calls (which the HTTP ones do not count); seconds, cumulative, pushed every
//! `export_interval`.
//!
//! `service.name` belongs in the resource, and a MeterProvider has one
//! resource, so there is one MeterProvider per service name, created when the
//! service's first span arrives (as Beyla does). They are bounded by
//! [`MAX_SERVICES`]: spans of further services are counted and not recorded.
//! All providers share one OTLP exporter (one connection). Each provider's
//! PeriodicReader has its own thread and calls the exporter from there; the
//! request itself runs on this exporter's tokio runtime, which the exporter
//! thread keeps driving while it waits for spans.

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

use super::convert;
use super::{ExportError, MetricsConfig};
use crate::export::DURATION_BUCKETS;
use crate::export::{Context, Signal, StartError, Threaded};
use crate::model::{Resource, Span};
use crate::selfmetrics::{Counter, SelfMetrics};
use crate::semconv::{self, Instrument, MetricValue};

/// Services with their own MeterProvider (and reader thread) at most.
pub const MAX_SERVICES: usize = 64;

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The OTLP metric exporter, shared by every service's reader; runs each
/// export on the exporter's runtime (see the module comment).
#[derive(Clone)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::MetricExporter>,
    runtime: tokio::runtime::Handle,
    metrics: Arc<SelfMetrics>,
}

impl PushMetricExporter for OnRuntime {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        // Called on a reader thread, outside any tokio context, so blocking here is allowed.
        let result = self.runtime.block_on(self.inner.export(metrics));
        match &result {
            Ok(()) => self.metrics.inc(Counter::OtlpMetricExports),
            Err(e) => {
                self.metrics.inc(Counter::OtlpMetricExportFailures);
                log::warn!("OTLP metrics: export failed: {e}");
            }
        }
        ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    /// The shared exporter outlives each provider; the owner shuts it down once.
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

struct ServiceMeters {
    provider: SdkMeterProvider,
    /// One per instrument, in [`Instrument::ALL`] order.
    histograms: Vec<Histogram<f64>>,
}

/// Spans to histogram recordings, one MeterProvider per service name.
pub(crate) struct Recorder<E> {
    exporter: E,
    interval: Duration,
    services: HashMap<String, ServiceMeters>,
    metrics: Arc<SelfMetrics>,
}

impl<E: PushMetricExporter + Clone> Recorder<E> {
    pub fn new(exporter: E, interval: Duration, metrics: Arc<SelfMetrics>) -> Self {
        Self {
            exporter,
            interval,
            services: HashMap::new(),
            metrics,
        }
    }

    /// The meters of `process`'s service, made with its resource when the
    /// service's first span arrives.
    fn meters(&mut self, process: &Resource) -> Option<&ServiceMeters> {
        let service = process.service_name.as_str();
        if !self.services.contains_key(service) {
            if self.services.len() >= MAX_SERVICES {
                return None;
            }
            let reader = PeriodicReader::builder(self.exporter.clone())
                .with_interval(self.interval)
                .build();
            let provider = SdkMeterProvider::builder()
                .with_resource(convert::resource(process, false))
                .with_reader(reader)
                .build();
            let meter = provider.meter_with_scope(convert::scope());
            let histograms = Instrument::ALL
                .iter()
                .map(|instrument| {
                    meter
                        .f64_histogram(instrument.name())
                        .with_unit(Instrument::UNIT)
                        .with_description(instrument.description())
                        .with_boundaries(DURATION_BUCKETS.to_vec())
                        .build()
                })
                .collect();
            let meters = ServiceMeters {
                histograms,
                provider,
            };
            self.services.insert(service.to_string(), meters);
        }
        self.services.get(service)
    }

    pub fn record(&mut self, span: &Span) {
        let r = &span.request;
        let metrics = Arc::clone(&self.metrics);
        let Some(meters) = self.meters(&r.resource) else {
            metrics.inc(Counter::OtlpSpansDroppedServiceLimit);
            return;
        };
        let seconds = span.duration_seconds();
        let metric = semconv::metric_attributes(span);
        let attributes: Vec<KeyValue> = metric
            .iter()
            .filter_map(|(name, value)| {
                Some(match value {
                    MetricValue::Str(s) => KeyValue::new(name, *s),
                    MetricValue::Text(s) => KeyValue::new(name, s.to_string()),
                    MetricValue::Int(i) => KeyValue::new(name, *i),
                    MetricValue::Absent => return None,
                })
            })
            .collect();
        meters.histograms[metric.instrument.index()].record(seconds, &attributes);
    }

    #[cfg(test)]
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// The providers, for a final flush and shutdown.
    pub fn into_providers(self) -> Vec<SdkMeterProvider> {
        self.services.into_values().map(|m| m.provider).collect()
    }
}

/// Starts the metrics exporter thread; it ends after its queue closes and a
/// last push of every service's metrics (bounded by 5 s), then logs what it did.
pub fn spawn_metrics(config: &MetricsConfig, context: &Context) -> Result<Threaded, StartError> {
    config.validate().map_err(ExportError::from)?;
    let runtime = super::runtime("metrics")?;
    let metrics = Arc::clone(&context.self_metrics);
    let exporter = {
        let _inside = runtime.enter();
        OnRuntime {
            inner: Arc::new(super::build_metric_exporter(&config.signal)?),
            runtime: runtime.handle().clone(),
            metrics: Arc::clone(&metrics),
        }
    };
    let interval = config.interval;
    let url = config.signal.url();
    let protocol = config.signal.protocol;
    Threaded::spawn("otlp-metrics", Signal::Metrics, move |rx| {
        log::info!("exporting metrics over OTLP {protocol} to {url} every {interval:?}");
        let inner = Arc::clone(&exporter.inner);
        let mut recorder = Recorder::new(exporter, interval, Arc::clone(&metrics));
        runtime.block_on(async {
            while let Ok(span) = rx.recv().await {
                recorder.record(&span);
            }
            shutdown(recorder.into_providers()).await;
        });
        if let Err(e) = inner.shutdown() {
            log::debug!("OTLP metric exporter shutdown: {e}");
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
        log::info!(
            "OTLP metrics: exports={} export_failures={} spans_dropped_service_limit={}",
            metrics.get(Counter::OtlpMetricExports),
            metrics.get(Counter::OtlpMetricExportFailures),
            metrics.get(Counter::OtlpSpansDroppedServiceLimit),
        );
    })
}

/// Shuts every provider down (each pushes its metrics a last time) on blocking
/// threads, while this runtime keeps serving the requests they make.
async fn shutdown(providers: Vec<SdkMeterProvider>) {
    let tasks: Vec<_> = providers
        .into_iter()
        .map(|p| tokio::task::spawn_blocking(move || p.shutdown()))
        .collect();
    let all = async {
        for task in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!("OTLP metrics: final push failed: {e}"),
                Err(e) => log::warn!("OTLP metrics: final push panicked: {e}"),
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, all).await.is_err() {
        log::warn!("OTLP metrics: final push did not finish within {SHUTDOWN_TIMEOUT:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

    use super::*;
    use crate::export::otlp::convert::tests::span;
    use crate::model::{fixtures, SpanKind};

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

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Point>>>);

    impl PushMetricExporter for Capture {
        fn export(&self, rm: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
            let service = rm
                .resource()
                .get(&opentelemetry::Key::from_static_str("service.name"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let mut out = self.0.lock().unwrap();
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
            ready(Ok(()))
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    fn attrs(method: &str, route: &str, status: &str) -> Vec<(String, String)> {
        let mut v = vec![
            ("http.request.method".to_string(), method.to_string()),
            ("http.response.status_code".to_string(), status.to_string()),
            ("http.route".to_string(), route.to_string()),
        ];
        v.sort();
        v
    }

    #[test]
    fn spans_become_duration_histograms_per_service() {
        let capture = Capture::default();
        let metrics = Arc::new(SelfMetrics::default());
        let mut recorder =
            Recorder::new(capture.clone(), Duration::from_secs(3600), metrics.clone());
        // 1.5 ms each.
        recorder.record(&span(SpanKind::Server, 200, "front", 1));
        recorder.record(&span(SpanKind::Server, 200, "front", 2));
        let mut slow = span(SpanKind::Client, 503, "front", 3);
        slow.end_unix_ns = slow.start_unix_ns + 2_000_000_000;
        recorder.record(&slow);
        recorder.record(&span(SpanKind::Server, 500, "back", 4));
        assert_eq!(recorder.service_count(), 2);
        for p in recorder.into_providers() {
            p.shutdown().unwrap();
        }
        let mut points = capture.0.lock().unwrap().clone();
        points.sort_by(|a, b| (&a.service, &a.metric).cmp(&(&b.service, &b.metric)));
        let mut one_fast = vec![0u64; 15];
        one_fast[0] = 1;
        let mut two_fast = vec![0u64; 15];
        two_fast[0] = 2;
        let mut one_two_seconds = vec![0u64; 15];
        one_two_seconds[10] = 1; // (1, 2.5]
        const SERVER: &str = "http.server.request.duration";
        const CLIENT: &str = "http.client.request.duration";
        let point = |service: &str, metric: &str, status, count, sum, buckets| Point {
            service: service.into(),
            metric: metric.into(),
            unit: "s".into(),
            attributes: attrs("GET", "/users/*", status),
            count,
            sum,
            bounds: DURATION_BUCKETS.to_vec(),
            buckets,
        };
        assert_eq!(
            points,
            vec![
                point("back", SERVER, "500", 1, 0.0015, one_fast.clone()),
                point("front", CLIENT, "503", 1, 2.0, one_two_seconds),
                point("front", SERVER, "200", 2, 0.003, two_fast),
            ]
        );
    }

    #[test]
    fn grpc_calls_become_rpc_duration_histograms() {
        let capture = Capture::default();
        let metrics = Arc::new(SelfMetrics::default());
        let mut recorder =
            Recorder::new(capture.clone(), Duration::from_secs(3600), metrics.clone());
        let mut call = span(SpanKind::Server, 200, "front", 1);
        fixtures::rpc(&mut call, "beyla.Users", "Get", Some(5));
        recorder.record(&call);
        for p in recorder.into_providers() {
            p.shutdown().unwrap();
        }
        let points = capture.0.lock().unwrap().clone();
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
        let mut recorder = Recorder::new(
            Capture::default(),
            Duration::from_secs(3600),
            metrics.clone(),
        );
        for i in 0..MAX_SERVICES + 3 {
            recorder.record(&span(SpanKind::Server, 200, &format!("svc{i}"), 1));
        }
        recorder.record(&span(SpanKind::Server, 200, "svc0", 1));
        assert_eq!(recorder.service_count(), MAX_SERVICES);
        assert_eq!(metrics.get(Counter::OtlpSpansDroppedServiceLimit), 3);
        for p in recorder.into_providers() {
            p.shutdown().unwrap();
        }
    }
}
