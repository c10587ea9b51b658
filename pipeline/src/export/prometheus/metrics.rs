//! The metrics themselves: request-duration histograms (HTTP, and RPC for
//! gRPC calls) and `target_info`
//! built from spans, the agent's own counters read at scrape time, series
//! expiry and the series cap, and the text encoding of it all.

use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{Hash, Hasher};
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

use rustc_hash::FxHashMap;

use super::{InstrumentedProcesses, KernelDropSource};
use crate::export::DURATION_BUCKETS;
use crate::model::{Resource, ShortString, Span, SpanKind};
use crate::selfmetrics::SelfMetrics;

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

/// Labels of `rpc_{server,client}_duration_seconds`: gRPC calls, which the
/// HTTP families do not count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RpcLabels {
    rpc_system: &'static str,
    rpc_service: String,
    rpc_method: String,
    /// Empty when the status never arrived (a call cut short).
    rpc_grpc_status_code: String,
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
type RpcHistogramFamily = Family<RpcLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn info_gauge() -> Gauge {
    Gauge::default()
}

/// A service as its series name it: compared and hashed by name and
/// namespace, so that building one per span is a reference count, not a copy.
#[derive(Debug, Clone)]
struct ServiceKey(Arc<Resource>);

impl PartialEq for ServiceKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.service_name == other.0.service_name
            && self.0.service_namespace == other.0.service_namespace
    }
}

impl Eq for ServiceKey {}

impl Hash for ServiceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.service_name.hash(state);
        self.0.service_namespace.hash(state);
    }
}

/// What tells the duration series of one family apart, built per span
/// without allocating; the label strings are made once, with the series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DurationKey {
    method: &'static str,
    route: ShortString,
    status: u16,
    service: ServiceKey,
}

/// The RPC families' counterpart of [`DurationKey`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RpcKey {
    system: &'static str,
    service: ShortString,
    method: ShortString,
    status: Option<u32>,
    resource: ServiceKey,
}

/// One label set of a family: its labels (to remove it from the family), the
/// metric (shared with the family, updated without looking it up there), and
/// when it was last updated.
struct Series<L, M> {
    labels: L,
    metric: M,
    last_update: Instant,
}

/// A family and its label sets, found by a key that is cheap to build.
struct Expiring<K, L, M, C> {
    family: Family<L, M, C>,
    series: FxHashMap<K, Series<L, M>>,
}

impl<K: Hash + Eq, L: Clone + Hash + Eq, M: Clone, C: MetricConstructor<M>> Expiring<K, L, M, C> {
    fn new(family: Family<L, M, C>) -> Self {
        Self {
            family,
            series: FxHashMap::default(),
        }
    }

    /// The metric of `key`'s series, marked updated at `now`; a new series
    /// gets `labels()`, unless `room` is false (the cap is reached): None.
    fn get_or_add(
        &mut self,
        key: K,
        now: Instant,
        room: bool,
        labels: impl FnOnce() -> L,
    ) -> Option<&M> {
        match self.series.entry(key) {
            Entry::Occupied(known) => {
                let series = known.into_mut();
                series.last_update = now;
                Some(&series.metric)
            }
            Entry::Vacant(_) if !room => None,
            Entry::Vacant(new) => {
                let labels = labels();
                let metric = self.family.get_or_create(&labels).clone();
                let series = new.insert(Series {
                    labels,
                    metric,
                    last_update: now,
                });
                Some(&series.metric)
            }
        }
    }

    fn expire(&mut self, now: Instant, ttl: Duration) {
        let family = &self.family;
        self.series.retain(|_, series| {
            let keep = now.saturating_duration_since(series.last_update) < ttl;
            if !keep {
                family.remove(&series.labels);
            }
            keep
        });
    }
}

type DurationSeries = Expiring<DurationKey, HttpLabels, Histogram, fn() -> Histogram>;
type RpcSeries = Expiring<RpcKey, RpcLabels, Histogram, fn() -> Histogram>;

/// Every metric the exporter serves, in one registry.
pub struct Metrics {
    registry: Registry,
    server: DurationSeries,
    client: DurationSeries,
    rpc_server: RpcSeries,
    rpc_client: RpcSeries,
    target: Expiring<ServiceKey, TargetLabels, Gauge, fn() -> Gauge>,
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
        let rpc_server = RpcHistogramFamily::new_with_constructor(duration_histogram);
        let rpc_client = RpcHistogramFamily::new_with_constructor(duration_histogram);
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
        registry.register_with_unit(
            "rpc_server_duration",
            "Duration of RPC (gRPC) server calls",
            Unit::Seconds,
            rpc_server.clone(),
        );
        registry.register_with_unit(
            "rpc_client_duration",
            "Duration of RPC (gRPC) client calls",
            Unit::Seconds,
            rpc_client.clone(),
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
            rpc_server: Expiring::new(rpc_server),
            rpc_client: Expiring::new(rpc_client),
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
        self.server.series.len()
            + self.client.series.len()
            + self.rpc_server.series.len()
            + self.rpc_client.series.len()
            + self.target.series.len()
    }

    /// Adds one span: a duration observation and its service's `target_info`.
    /// Allocates only for a series it has not seen yet.
    pub fn record(&mut self, span: &Span, now: Instant) {
        let request = &span.request;
        let resource = &request.resource;
        let service = ServiceKey(Arc::clone(resource));
        let room = self.series() < self.max_series;
        let host_name = &self.host_name;
        let target = self
            .target
            .get_or_add(service.clone(), now, room, || TargetLabels {
                service_name: resource.service_name.clone(),
                service_namespace: resource.service_namespace.clone(),
                host_name: host_name.clone(),
                telemetry_sdk_language: "rust",
                telemetry_sdk_name: "beyla",
            });
        match target {
            Some(gauge) => {
                gauge.set(1);
            }
            None => {
                self.series_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }

        let seconds = span.duration_seconds();
        let room = self.series() < self.max_series;
        let histogram = match &request.rpc {
            Some(rpc) => {
                let key = RpcKey {
                    system: rpc.system,
                    service: rpc.service.clone(),
                    method: rpc.method.clone(),
                    status: rpc.status_code,
                    resource: service,
                };
                let family = match request.kind {
                    SpanKind::Server => &mut self.rpc_server,
                    SpanKind::Client => &mut self.rpc_client,
                };
                family.get_or_add(key, now, room, || RpcLabels {
                    rpc_system: rpc.system,
                    rpc_service: rpc.service.to_string(),
                    rpc_method: rpc.method.to_string(),
                    rpc_grpc_status_code: rpc
                        .status_code
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    service_name: resource.service_name.clone(),
                    service_namespace: resource.service_namespace.clone(),
                })
            }
            None => self.http_histogram(span, service, now, room),
        };
        match histogram {
            Some(histogram) => histogram.observe(seconds),
            None => {
                self.series_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self
            .last_expiry
            .is_none_or(|t| now.saturating_duration_since(t) >= EXPIRY_INTERVAL)
        {
            self.expire(now);
        }
    }

    /// The HTTP duration histogram of a span that is not an RPC call.
    fn http_histogram(
        &mut self,
        span: &Span,
        service: ServiceKey,
        now: Instant,
        room: bool,
    ) -> Option<&Histogram> {
        let request = &span.request;
        let resource = &request.resource;
        let route = span.route.clone().unwrap_or_default();
        let key = DurationKey {
            method: request.method,
            route,
            status: request.status,
            service,
        };
        let family = match request.kind {
            SpanKind::Server => &mut self.server,
            SpanKind::Client => &mut self.client,
        };
        let labels = || HttpLabels {
            http_request_method: request.method,
            http_route: span.route.as_deref().unwrap_or_default().to_owned(),
            http_response_status_code: request.status,
            service_name: resource.service_name.clone(),
            service_namespace: resource.service_namespace.clone(),
        };
        family.get_or_add(key, now, room, labels)
    }

    /// Removes every series not updated for the configured TTL.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.series_ttl;
        self.server.expire(now, ttl);
        self.client.expire(now, ttl);
        self.rpc_server.expire(now, ttl);
        self.rpc_client.expire(now, ttl);
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
            "beyla_config_settings_ignored",
            "Beyla's configuration keys and variables given but not supported yet (each warned about at start-up).",
            m.config_settings_ignored.get(),
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
    use crate::model::fixtures::{self, START_UNIX_NS as T0_NS};
    use crate::model::RpcCall;
    use crate::selfmetrics::KernelDropCounts;

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
    fn grpc_calls_go_to_the_rpc_histograms_only() {
        let mut m = metrics();
        let now = Instant::now();
        let call = |kind, status_code| {
            let mut s = span(kind, "svc", "/beyla.Users/Get", 200, 40_000_000);
            s.request.method = "POST";
            s.request.rpc = Some(RpcCall {
                system: "grpc",
                service: "beyla.Users".into(),
                method: "Get".into(),
                status_code,
            });
            s
        };
        m.record(&call(SpanKind::Server, Some(0)), now);
        m.record(&call(SpanKind::Server, Some(5)), now);
        m.record(&call(SpanKind::Client, None), now);
        let text = m.encode(now);
        let l = |code: &str| {
            format!(
                "rpc_system=\"grpc\",rpc_service=\"beyla.Users\",rpc_method=\"Get\",\
                 rpc_grpc_status_code=\"{code}\",service_name=\"svc\",service_namespace=\"\""
            )
        };
        assert_has(
            &text,
            &[
                "# TYPE rpc_server_duration_seconds histogram",
                &format!(
                    "rpc_server_duration_seconds_bucket{{{},le=\"0.025\"}} 0",
                    l("0")
                ),
                &format!(
                    "rpc_server_duration_seconds_bucket{{{},le=\"0.05\"}} 1",
                    l("0")
                ),
                &format!("rpc_server_duration_seconds_sum{{{}}} 0.04", l("0")),
                &format!("rpc_server_duration_seconds_count{{{}}} 1", l("0")),
                &format!("rpc_server_duration_seconds_count{{{}}} 1", l("5")),
                "# TYPE rpc_client_duration_seconds histogram",
                &format!("rpc_client_duration_seconds_count{{{}}} 1", l("")),
            ],
        );
        assert_lacks(&text, "http_server_request_duration_seconds_count");
        assert_lacks(&text, "http_client_request_duration_seconds_count");
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
