//! The metrics themselves: request-duration histograms and `target_info`
//! built from spans, the agent's own counters read at scrape time, series
//! expiry and the series cap, and the text encoding of it all.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{InstrumentedProcesses, KernelDropSource};
use crate::model::{Span, SpanKind};
use crate::selfmetrics::SelfMetrics;

/// The OpenTelemetry semantic conventions' advice for `http.*.request.duration`, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// At most this many label sets, over all span-derived families together;
/// a span that would create one more is not recorded in that family and is
/// counted in `beyla_metric_series_dropped_total`.
pub const MAX_SERIES: usize = 10_000;

/// How often the recorder thread looks for series to expire (scrapes always do).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// Labels of `http_{server,client}_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    http_request_method: &'static str,
    http_route: String,
    http_response_status_code: u16,
    service_name: String,
    service_namespace: String,
}

/// Labels of `target_info`: one series per service seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TargetLabels {
    service_name: String,
    service_namespace: String,
    host_name: String,
    telemetry_sdk_language: &'static str,
    telemetry_sdk_name: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn info_gauge() -> Gauge {
    Gauge::default()
}

/// A family and when each of its label sets was last updated.
struct Expiring<L, M, C> {
    family: Family<L, M, C>,
    last_update: HashMap<L, Instant>,
}

impl<L: Clone + Hash + Eq, M, C: MetricConstructor<M>> Expiring<L, M, C> {
    fn new(family: Family<L, M, C>) -> Self {
        Self {
            family,
            last_update: HashMap::new(),
        }
    }

    fn expire(&mut self, now: Instant, ttl: Duration) {
        let family = &self.family;
        self.last_update.retain(|labels, last| {
            let keep = now.saturating_duration_since(*last) < ttl;
            if !keep {
                family.remove(labels);
            }
            keep
        });
    }
}

/// Every metric the exporter serves, in one registry.
pub struct Metrics {
    registry: Registry,
    server: Expiring<HttpLabels, Histogram, fn() -> Histogram>,
    client: Expiring<HttpLabels, Histogram, fn() -> Histogram>,
    target: Expiring<TargetLabels, Gauge, fn() -> Gauge>,
    host_name: String,
    series_ttl: Duration,
    max_series: usize,
    series_dropped: Arc<AtomicU64>,
    last_expiry: Option<Instant>,
}

impl Metrics {
    /// Span-derived metrics only; add the agent's own with [`Metrics::register_self_metrics`].
    pub fn new(host_name: String, series_ttl: Duration, max_series: usize) -> Self {
        let mut registry = Registry::default();
        let server = HistogramFamily::new_with_constructor(duration_histogram);
        let client = HistogramFamily::new_with_constructor(duration_histogram);
        let target = Family::<TargetLabels, Gauge, fn() -> Gauge>::new_with_constructor(info_gauge);
        // The unit is appended to the name: `http_server_request_duration_seconds`.
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP server requests",
            Unit::Seconds,
            server.clone(),
        );
        registry.register_with_unit(
            "http_client_request_duration",
            "Duration of HTTP client requests",
            Unit::Seconds,
            client.clone(),
        );
        registry.register(
            "target_info",
            "Target metadata: one series per instrumented service",
            target.clone(),
        );
        Self {
            registry,
            server: Expiring::new(server),
            client: Expiring::new(client),
            target: Expiring::new(target),
            host_name,
            series_ttl,
            max_series,
            series_dropped: Arc::new(AtomicU64::new(0)),
            last_expiry: None,
        }
    }

    /// Serves the agent's own counters from the same registry, read at each scrape.
    pub fn register_self_metrics(
        &mut self,
        self_metrics: Arc<SelfMetrics>,
        kernel_drops: Box<dyn KernelDropSource>,
        instrumented: Box<dyn InstrumentedProcesses>,
    ) {
        self.registry
            .register_collector(Box::new(SelfMetricsCollector {
                metrics: self_metrics,
                kernel_drops,
                instrumented,
                series_dropped: Arc::clone(&self.series_dropped),
            }));
    }

    fn series(&self) -> usize {
        self.server.last_update.len()
            + self.client.last_update.len()
            + self.target.last_update.len()
    }

    /// Adds one span: a duration observation and its service's `target_info`.
    pub fn record(&mut self, span: &Span, now: Instant) {
        let request = &span.request;
        let service_name = &request.resource.service_name;
        let target = TargetLabels {
            service_name: service_name.clone(),
            service_namespace: request.resource.service_namespace.clone(),
            host_name: self.host_name.clone(),
            telemetry_sdk_language: "rust",
            telemetry_sdk_name: "beyla",
        };
        if self.admit_target(&target, now) {
            self.target.family.get_or_create(&target).set(1);
        }

        let labels = HttpLabels {
            http_request_method: request.method,
            http_route: span.route.clone().unwrap_or_default(),
            http_response_status_code: request.status,
            service_name: service_name.clone(),
            service_namespace: request.resource.service_namespace.clone(),
        };
        let seconds = span.end_unix_ns.saturating_sub(span.start_unix_ns) as f64 / 1e9;
        let is_server = request.kind == SpanKind::Server;
        if self.admit_http(is_server, &labels, now) {
            let family = if is_server {
                &self.server.family
            } else {
                &self.client.family
            };
            family.get_or_create(&labels).observe(seconds);
        }
        if self
            .last_expiry
            .is_none_or(|t| now.saturating_duration_since(t) >= EXPIRY_INTERVAL)
        {
            self.expire(now);
        }
    }

    /// Marks the series updated at `now`; false when it is new and the cap is reached.
    fn admit_target(&mut self, labels: &TargetLabels, now: Instant) -> bool {
        if let Some(last) = self.target.last_update.get_mut(labels) {
            *last = now;
            return true;
        }
        if self.series() >= self.max_series {
            self.series_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.target.last_update.insert(labels.clone(), now);
        true
    }

    fn admit_http(&mut self, is_server: bool, labels: &HttpLabels, now: Instant) -> bool {
        let series = self.series();
        let tracked = if is_server {
            &mut self.server
        } else {
            &mut self.client
        };
        if let Some(last) = tracked.last_update.get_mut(labels) {
            *last = now;
            return true;
        }
        if series >= self.max_series {
            self.series_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        tracked.last_update.insert(labels.clone(), now);
        true
    }

    /// Removes every series not updated for the configured TTL.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.series_ttl;
        self.server.expire(now, ttl);
        self.client.expire(now, ttl);
        self.target.expire(now, ttl);
        self.last_expiry = Some(now);
    }

    /// Expires stale series, then writes everything in the Prometheus text format 0.0.4.
    pub fn encode(&mut self, now: Instant) -> String {
        self.expire(now);
        let mut out = String::new();
        // Writing into a String cannot fail; a collector never returns an error.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            log::error!("cannot encode Prometheus metrics: {e}");
        }
        out
    }
}

/// Reads the agent's own counters at each scrape.
struct SelfMetricsCollector {
    metrics: Arc<SelfMetrics>,
    kernel_drops: Box<dyn KernelDropSource>,
    instrumented: Box<dyn InstrumentedProcesses>,
    series_dropped: Arc<AtomicU64>,
}

impl fmt::Debug for SelfMetricsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfMetricsCollector")
            .finish_non_exhaustive()
    }
}

/// One counter without labels; `_total` is appended by the encoder.
fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One counter with a single label; `_total` is appended by the encoder.
fn labelled_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> fmt::Result {
    let mut metric =
        encoder.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for &(label_value, value) in values {
        ConstCounter::new(value).encode(metric.encode_family(&[(label, label_value)])?)?;
    }
    Ok(())
}

impl Collector for SelfMetricsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let m = &self.metrics;
        let e = &mut encoder;
        counter(
            e,
            "beyla_events_read",
            "Ring buffer records read.",
            m.events_read.get(),
        )?;
        counter(
            e,
            "beyla_spans_created",
            "Spans created.",
            m.spans_created.get(),
        )?;
        let k = self.kernel_drops.read();
        labelled_counter(
            e,
            "beyla_kernel_drops",
            "Events the kernel probes dropped, by reason.",
            "reason",
            &[
                ("ringbuf_full", k.ringbuf_full),
                ("inflight_map_full", k.inflight_map_full),
                ("connection_map_full", k.connection_map_full),
                ("tls_unknown_connection", k.tls_unknown_connection),
            ],
        )?;
        labelled_counter(
            e,
            "beyla_events_dropped",
            "Events or requests dropped in user space, by pipeline stage.",
            "stage",
            &[
                ("decode", m.events_undecodable.get()),
                ("untraced", m.events_untraced.get()),
                ("connection_table", m.connections_dropped.get()),
                ("undecodable_request", m.undecodable_requests.get()),
                ("requests_queue", m.requests_dropped.get()),
                ("export_queue", m.spans_dropped.get()),
            ],
        )?;
        let otlp = &m.otlp;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        counter(
            e,
            "beyla_otlp_spans_exported",
            "Spans an OTLP receiver accepted.",
            get(&otlp.spans_exported),
        )?;
        labelled_counter(
            e,
            "beyla_otlp_export_failures",
            "OTLP export requests that failed (each retry counts), by signal.",
            "signal",
            &[
                ("traces", get(&otlp.export_failures)),
                ("metrics", get(&otlp.metric_export_failures)),
            ],
        )?;
        labelled_counter(
            e,
            "beyla_otlp_spans_dropped",
            "Spans the OTLP exporters could not deliver or record, by reason.",
            "reason",
            &[
                ("queue_full", get(&otlp.spans_dropped_queue_full)),
                ("shutdown", get(&otlp.spans_dropped_at_shutdown)),
                (
                    "service_limit",
                    get(&otlp.metric_spans_dropped_service_limit),
                ),
            ],
        )?;
        counter(
            e,
            "beyla_parse_errors",
            "Malformed HTTP messages skipped.",
            m.parse_errors.get(),
        )?;
        counter(
            e,
            "beyla_metric_series_dropped",
            "Metric observations not recorded because the series limit was reached.",
            self.series_dropped.load(Ordering::Relaxed),
        )?;
        let gauge = ConstGauge::new(i64::try_from(self.instrumented.count()).unwrap_or(i64::MAX));
        gauge.encode(e.encode_descriptor(
            "beyla_instrumented_processes",
            "Processes currently instrumented.",
            None,
            gauge.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ebpf::KernelDropCounts;
    use crate::model::fixtures::{self, START_UNIX_NS as T0_NS};

    fn span(kind: SpanKind, service: &str, route: &str, status: u16, duration_ns: u64) -> Span {
        let mut span = fixtures::span();
        span.request.kind = kind;
        span.request.status = status;
        span.request.resource = fixtures::resource(service);
        span.route = Some(route.into());
        span.end_unix_ns = T0_NS + duration_ns;
        span
    }

    fn metrics() -> Metrics {
        Metrics::new("host1".into(), Duration::from_secs(300), MAX_SERIES)
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[track_caller]
    fn assert_has(text: &str, expected: &[&str]) {
        let lines = lines(text);
        for line in expected {
            assert!(lines.contains(line), "missing line {line:?} in:\n{text}");
        }
    }

    #[track_caller]
    fn assert_lacks(text: &str, prefix: &str) {
        assert!(
            !text.lines().any(|l| l.starts_with(prefix)),
            "unexpected {prefix:?} in:\n{text}"
        );
    }

    const SERVER_LABELS: &str = "http_request_method=\"GET\",http_route=\"/users/*\",\
        http_response_status_code=\"200\",service_name=\"svc\",service_namespace=\"\"";

    #[test]
    fn server_histogram_count_sum_and_buckets() {
        let mut m = metrics();
        let now = Instant::now();
        // 1.5 ms, 30 ms and 3 s.
        for ns in [1_500_000, 30_000_000, 3_000_000_000] {
            m.record(&span(SpanKind::Server, "svc", "/users/*", 200, ns), now);
        }
        let text = m.encode(now);
        let l = SERVER_LABELS;
        let expected = [
            "# HELP http_server_request_duration_seconds Duration of HTTP server requests."
                .to_string(),
            "# TYPE http_server_request_duration_seconds histogram".to_string(),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"0.005\"}} 1"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"0.025\"}} 1"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"0.05\"}} 2"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"1\"}} 2"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"2.5\"}} 2"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"5\"}} 3"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"10\"}} 3"),
            format!("http_server_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 3"),
            format!("http_server_request_duration_seconds_sum{{{l}}} 3.0315"),
            format!("http_server_request_duration_seconds_count{{{l}}} 3"),
        ];
        assert_has(
            &text,
            &expected.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        // Every bucket of the convention, and nothing else.
        let buckets: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("http_server_request_duration_seconds_bucket"))
            .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        assert_eq!(
            buckets,
            [
                "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1",
                "2.5", "5", "7.5", "10", "+Inf"
            ]
        );
        assert_lacks(&text, "http_client_request_duration_seconds_count");
    }

    #[test]
    fn client_spans_go_to_the_client_histogram() {
        let mut m = metrics();
        let now = Instant::now();
        m.record(
            &span(SpanKind::Client, "svc", "/api", 503, 250_000_000),
            now,
        );
        let text = m.encode(now);
        let l = "http_request_method=\"GET\",http_route=\"/api\",\
                 http_response_status_code=\"503\",service_name=\"svc\",service_namespace=\"\"";
        assert_has(
            &text,
            &[
                "# TYPE http_client_request_duration_seconds histogram",
                &format!("http_client_request_duration_seconds_bucket{{{l},le=\"0.1\"}} 0"),
                &format!("http_client_request_duration_seconds_bucket{{{l},le=\"0.25\"}} 1"),
                &format!("http_client_request_duration_seconds_sum{{{l}}} 0.25"),
                &format!("http_client_request_duration_seconds_count{{{l}}} 1"),
            ],
        );
        assert_lacks(&text, "http_server_request_duration_seconds_count");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = metrics();
        let now = Instant::now();
        m.record(
            &span(SpanKind::Server, "a\"b\\c\nd", "/q\"x", 200, 1_000_000),
            now,
        );
        let text = m.encode(now);
        assert_has(
            &text,
            &[
                "http_server_request_duration_seconds_count{http_request_method=\"GET\",\
                 http_route=\"/q\\\"x\",http_response_status_code=\"200\",\
                 service_name=\"a\\\"b\\\\c\\nd\",service_namespace=\"\"} 1",
            ],
        );
    }

    #[test]
    fn target_info_once_per_service() {
        let mut m = metrics();
        let now = Instant::now();
        m.record(&span(SpanKind::Server, "svc", "/a", 200, 1), now);
        m.record(&span(SpanKind::Client, "svc", "/b", 200, 1), now);
        m.record(&span(SpanKind::Server, "other", "/a", 200, 1), now);
        let text = m.encode(now);
        assert_has(
            &text,
            &[
                "# TYPE target_info gauge",
                "target_info{service_name=\"svc\",service_namespace=\"\",host_name=\"host1\",\
                 telemetry_sdk_language=\"rust\",telemetry_sdk_name=\"beyla\"} 1",
                "target_info{service_name=\"other\",service_namespace=\"\",host_name=\"host1\",\
                 telemetry_sdk_language=\"rust\",telemetry_sdk_name=\"beyla\"} 1",
            ],
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("target_info{"))
                .count(),
            2
        );
    }

    #[test]
    fn series_not_updated_for_the_ttl_disappear() {
        let ttl = Duration::from_secs(300);
        let mut m = Metrics::new("host1".into(), ttl, MAX_SERIES);
        let t0 = Instant::now();
        m.record(&span(SpanKind::Server, "old", "/a", 200, 1_000_000), t0);
        m.record(&span(SpanKind::Server, "kept", "/b", 200, 1_000_000), t0);
        // Updated later: survives the first one's expiry.
        m.record(
            &span(SpanKind::Server, "kept", "/b", 200, 1_000_000),
            t0 + Duration::from_secs(200),
        );

        let text = m.encode(t0 + ttl - Duration::from_nanos(1));
        assert!(text.contains("service_name=\"old\""), "{text}");

        let text = m.encode(t0 + ttl);
        assert!(!text.contains("service_name=\"old\""), "{text}");
        assert_has(
            &text,
            &[
                "http_server_request_duration_seconds_count{http_request_method=\"GET\",\
                 http_route=\"/b\",http_response_status_code=\"200\",service_name=\"kept\",\
                 service_namespace=\"\"} 2",
            ],
        );
        assert!(text.contains("target_info{service_name=\"kept\""), "{text}");

        let text = m.encode(t0 + Duration::from_secs(200) + ttl);
        assert_lacks(&text, "http_server_request_duration_seconds_count{");
        assert_lacks(&text, "target_info{");
        assert_eq!(m.series(), 0);

        // A series that comes back starts again from zero.
        let t1 = t0 + Duration::from_secs(1000);
        m.record(&span(SpanKind::Server, "old", "/a", 200, 1_000_000), t1);
        assert!(m.encode(t1).contains(
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",\
             http_route=\"/a\",http_response_status_code=\"200\",service_name=\"old\",\
             service_namespace=\"\"} 1"
        ));
    }

    #[test]
    fn recording_expires_without_a_scrape() {
        let ttl = Duration::from_secs(10);
        let mut m = Metrics::new("host1".into(), ttl, MAX_SERIES);
        let t0 = Instant::now();
        m.record(&span(SpanKind::Server, "old", "/a", 200, 1), t0);
        m.record(&span(SpanKind::Server, "new", "/a", 200, 1), t0 + ttl);
        // old: histogram and target_info gone; new: both there.
        assert_eq!(m.series(), 2);
    }

    #[test]
    fn series_beyond_the_cap_are_dropped_and_counted() {
        let mut m = Metrics::new("host1".into(), Duration::from_secs(300), 3);
        m.register_self_metrics(
            Arc::new(SelfMetrics::default()),
            Box::new(KernelDropCounts::default),
            Box::new(|| 0),
        );
        let now = Instant::now();
        // target_info{svc} + /0 + /1 reach the cap of 3.
        for i in 0..4 {
            m.record(
                &span(SpanKind::Server, "svc", &format!("/{i}"), 200, 1),
                now,
            );
        }
        // Existing series still update.
        m.record(&span(SpanKind::Server, "svc", "/0", 200, 1), now);
        // A new service: neither its target_info nor its histogram fit.
        m.record(&span(SpanKind::Server, "svc2", "/0", 200, 1), now);
        assert_eq!(m.series(), 3);
        let text = m.encode(now);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
                .count(),
            2
        );
        assert_has(
            &text,
            &[
                &format!(
                    "http_server_request_duration_seconds_count{{{}}} 2",
                    SERVER_LABELS.replace("/users/*", "/0")
                ),
                "# TYPE beyla_metric_series_dropped_total counter",
                "beyla_metric_series_dropped_total 4",
            ],
        );
        assert!(!text.contains("svc2"), "{text}");
    }

    #[test]
    fn self_metrics_are_read_at_scrape_time() {
        let own = Arc::new(SelfMetrics::default());
        let processes = Arc::new(AtomicU64::new(2));
        let mut m = metrics();
        m.register_self_metrics(
            Arc::clone(&own),
            Box::new(|| KernelDropCounts {
                ringbuf_full: 1,
                inflight_map_full: 2,
                connection_map_full: 3,
                tls_unknown_connection: 4,
            }),
            Box::new({
                let processes = Arc::clone(&processes);
                move || processes.load(Ordering::Relaxed)
            }),
        );
        for _ in 0..5 {
            own.events_read.inc();
        }
        own.spans_created.inc();
        own.events_undecodable.inc();
        own.events_untraced.inc();
        own.events_untraced.inc();
        own.connections_dropped.inc();
        own.requests_dropped.inc();
        own.spans_dropped.inc();
        own.parse_errors.inc();
        let now = Instant::now();
        let text = m.encode(now);
        assert_has(
            &text,
            &[
                "# HELP beyla_events_read_total Ring buffer records read.",
                "# TYPE beyla_events_read_total counter",
                "beyla_events_read_total 5",
                "beyla_spans_created_total 1",
                "# TYPE beyla_kernel_drops_total counter",
                "beyla_kernel_drops_total{reason=\"ringbuf_full\"} 1",
                "beyla_kernel_drops_total{reason=\"inflight_map_full\"} 2",
                "beyla_kernel_drops_total{reason=\"connection_map_full\"} 3",
                "beyla_kernel_drops_total{reason=\"tls_unknown_connection\"} 4",
                "beyla_events_dropped_total{stage=\"decode\"} 1",
                "beyla_events_dropped_total{stage=\"untraced\"} 2",
                "beyla_events_dropped_total{stage=\"connection_table\"} 1",
                "beyla_events_dropped_total{stage=\"requests_queue\"} 1",
                "beyla_events_dropped_total{stage=\"export_queue\"} 1",
                "beyla_parse_errors_total 1",
                "beyla_metric_series_dropped_total 0",
                "# TYPE beyla_instrumented_processes gauge",
                "beyla_instrumented_processes 2",
            ],
        );
        own.events_read.inc();
        processes.store(3, Ordering::Relaxed);
        let text = m.encode(now);
        assert_has(
            &text,
            &[
                "beyla_events_read_total 6",
                "beyla_instrumented_processes 3",
            ],
        );
    }

    #[test]
    fn families_without_series_are_left_out() {
        // Nothing recorded, or everything expired: not even HELP/TYPE lines.
        assert_eq!(metrics().encode(Instant::now()), "");
        let mut m = metrics();
        let t0 = Instant::now();
        m.record(&span(SpanKind::Client, "svc", "/a", 200, 1), t0);
        assert!(!m.encode(t0).is_empty());
        assert_eq!(m.encode(t0 + Duration::from_secs(300)), "");
    }
}
