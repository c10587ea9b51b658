//! The metrics themselves: the histograms `semconv` names (request durations,
//! HTTP body sizes) and `target_info`, built from spans, the agent's own counters read at scrape time, series
//! expiry and the series cap, and the text encoding of it all.

use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use rustc_hash::FxHashMap;

use crate::export::Context;
use crate::model::{Host, Resource, Span};
use crate::selfmetrics::{self, Counter, SelfMetrics};
use crate::semconv::{self, attributes as attr, Instrument, MetricAttributes, Unit as SemconvUnit};

/// At most this many label sets, over all span-derived families together;
/// a span that would create one more is not recorded in that family and is
/// counted in `beyla_metric_series_dropped_total`.
pub const MAX_SERIES: usize = 10_000;

/// How often the recorder thread looks for series to expire (scrapes always do).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// Labels of a series: for a histogram the instrument's attributes (see
/// [`semconv::metric_attributes`]), then `service_name` and
/// `service_namespace`, then the process's `k8s_*` labels in a pod; for
/// `target_info` the resource's attributes ([`semconv::resource_attributes`]).
type Labels = Vec<(String, String)>;

/// A process's `k8s_*` labels and `service_instance_id`, in the
/// conventions' order; none outside Kubernetes.
fn kubernetes_labels(resource: &Resource) -> Labels {
    let Some(k8s) = resource.kubernetes.as_deref() else {
        return Labels::new();
    };
    k8s.attributes()
        .map(|(key, value)| (attr::prometheus_name(key), value.to_string()))
        .chain([(
            attr::prometheus_name(attr::SERVICE_INSTANCE_ID),
            k8s.instance_id(),
        )])
        .collect()
}

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(semconv::DURATION_BUCKETS)
}

fn size_histogram() -> Histogram {
    Histogram::new(semconv::SIZE_BUCKETS)
}

fn info_gauge() -> Gauge {
    Gauge::default()
}

/// A service as its series name it: compared and hashed by name and
/// namespace, and the container for a process in a pod (its `k8s_*` labels
/// differ), so that building one per span is a reference count, not a copy.
#[derive(Debug, Clone)]
struct ServiceKey(Arc<Resource>);

impl ServiceKey {
    fn container(&self) -> Option<(&str, &str)> {
        let k8s = self.0.kubernetes.as_deref()?;
        Some((&k8s.pod_uid, &k8s.container_name))
    }
}

impl PartialEq for ServiceKey {
    fn eq(&self, other: &Self) -> bool {
        // Spans of one process share their resource.
        Arc::ptr_eq(&self.0, &other.0)
            || self.0.service_name == other.0.service_name
                && self.0.service_namespace == other.0.service_namespace
                && self.container() == other.container()
    }
}

impl Eq for ServiceKey {}

impl Hash for ServiceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.service_name.hash(state);
        self.0.service_namespace.hash(state);
        self.container().hash(state);
    }
}

/// A service instance, as `target_info` has one series per instance: a
/// service's process, or its container in a pod.
#[derive(Debug, Clone)]
struct InstanceKey(ServiceKey);

impl InstanceKey {
    fn process(&self) -> Option<crate::model::Pid> {
        let resource = &(self.0).0;
        resource.kubernetes.is_none().then_some(resource.pid)
    }
}

impl PartialEq for InstanceKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 && self.process() == other.process()
    }
}

impl Eq for InstanceKey {}

impl Hash for InstanceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.process().hash(state);
    }
}

/// What tells the series of one histogram family apart, built per span
/// without allocating; the label strings are made once, with the series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DurationKey {
    attributes: MetricAttributes,
    service: ServiceKey,
}

/// One label set in each of a set of families: its labels (to remove it from
/// them), the metrics (shared with the families, updated without looking
/// them up there), and when it was last updated.
struct Series<L, M> {
    labels: L,
    metrics: Vec<M>,
    last_update: Instant,
}

/// Families that share their label sets (a duration and its body sizes), and
/// those label sets, found with one lookup by a key that is cheap to build.
struct Expiring<K, L, M, C> {
    families: Vec<Family<L, M, C>>,
    series: FxHashMap<K, Series<L, M>>,
}

impl<K: Hash + Eq, L: Clone + Hash + Eq, M: Clone, C: MetricConstructor<M>> Expiring<K, L, M, C> {
    fn new(families: Vec<Family<L, M, C>>) -> Self {
        Self {
            families,
            series: FxHashMap::default(),
        }
    }

    /// Label sets held, over all the families.
    fn len(&self) -> usize {
        self.series.len() * self.families.len()
    }

    /// The metrics of `key`'s series, one per family, marked updated at
    /// `now`; a new series gets `labels(&key)`, unless `room` is false (the cap is
    /// reached): None.
    fn get_or_add(
        &mut self,
        key: K,
        now: Instant,
        room: bool,
        labels: impl FnOnce(&K) -> L,
    ) -> Option<&[M]> {
        match self.series.entry(key) {
            Entry::Occupied(known) => {
                let series = known.into_mut();
                series.last_update = now;
                Some(&series.metrics)
            }
            Entry::Vacant(_) if !room => None,
            Entry::Vacant(new) => {
                let labels = labels(new.key());
                let metrics = self
                    .families
                    .iter()
                    .map(|family| family.get_or_create(&labels).clone())
                    .collect();
                let series = new.insert(Series {
                    labels,
                    metrics,
                    last_update: now,
                });
                Some(&series.metrics)
            }
        }
    }

    fn expire(&mut self, now: Instant, ttl: Duration) {
        let families = &self.families;
        self.series.retain(|_, series| {
            let keep = now.saturating_duration_since(series.last_update) < ttl;
            if !keep {
                for family in families {
                    family.remove(&series.labels);
                }
            }
            keep
        });
        // A table sized for a burst of series keeps its memory otherwise.
        if self.series.len() * 4 < self.series.capacity() {
            self.series.shrink_to_fit();
        }
    }
}

/// The histograms of one duration instrument: its own and, for HTTP, the
/// request and response body sizes, in [`semconv::measurements`] order.
type HistogramSeries = Expiring<DurationKey, Labels, Histogram, fn() -> Histogram>;

/// Every metric the exporter serves, in one registry.
pub struct Metrics {
    registry: Registry,
    /// One per duration instrument, by its [`Instrument::index`].
    histograms: Vec<HistogramSeries>,
    target: Expiring<InstanceKey, Labels, Gauge, fn() -> Gauge>,
    host: Arc<Host>,
    series_ttl: Duration,
    max_series: usize,
    self_metrics: Arc<SelfMetrics>,
    last_expiry: Option<Instant>,
}

impl Metrics {
    /// Span-derived metrics only; add the agent's own with [`Metrics::register_self_metrics`].
    /// Spans beyond `max_series` are counted in `self_metrics`.
    pub fn new(
        host: Arc<Host>,
        series_ttl: Duration,
        max_series: usize,
        self_metrics: Arc<SelfMetrics>,
    ) -> Self {
        let mut registry = Registry::default();
        let families: Vec<HistogramFamily> = Instrument::ALL
            .iter()
            .map(|instrument| {
                let (constructor, unit): (fn() -> Histogram, Unit) = match instrument.unit() {
                    SemconvUnit::Seconds => (duration_histogram, Unit::Seconds),
                    SemconvUnit::Bytes => (size_histogram, Unit::Bytes),
                };
                let family = HistogramFamily::new_with_constructor(constructor);
                // The unit is appended to the name: `http_server_request_duration_seconds`,
                // `http_server_request_body_size_bytes`.
                registry.register_with_unit(
                    attr::prometheus_name(instrument.name()),
                    instrument.description(),
                    unit,
                    family.clone(),
                );
                family
            })
            .collect();
        let histograms = Instrument::ALL
            .iter()
            .filter(|instrument| instrument.unit() == SemconvUnit::Seconds)
            .map(|duration| {
                let sizes = duration.body_sizes().into_iter().flat_map(|(a, b)| [a, b]);
                let members = std::iter::once(*duration).chain(sizes);
                Expiring::new(members.map(|i| families[i.index()].clone()).collect())
            })
            .collect();
        let target = Family::<Labels, Gauge, fn() -> Gauge>::new_with_constructor(info_gauge);
        registry.register(
            "target_info",
            "Target metadata: one series per instrumented service instance",
            target.clone(),
        );
        Self {
            registry,
            histograms,
            target: Expiring::new(vec![target]),
            host,
            series_ttl,
            max_series,
            self_metrics,
            last_expiry: None,
        }
    }

    /// Serves the agent's own counters from the same registry, read at each scrape.
    pub fn register_self_metrics(&mut self, context: &Context) {
        self.registry
            .register_collector(Box::new(SelfMetricsCollector(context.clone())));
    }

    fn series(&self) -> usize {
        self.histograms.iter().map(Expiring::len).sum::<usize>() + self.target.len()
    }

    /// Adds one span: its observations and its service instance's `target_info`.
    /// Allocates only for a series it has not seen yet.
    pub fn record(&mut self, span: &Span, now: Instant) {
        let request = &span.request;
        let resource = &request.resource;
        let service = ServiceKey(Arc::clone(resource));
        let room = self.series() < self.max_series;
        let host = &self.host;
        let target = self
            .target
            .get_or_add(InstanceKey(service.clone()), now, room, |_| {
                let mut labels = Labels::new();
                semconv::resource_attributes(resource, host, false, |key, value| {
                    labels.push((attr::prometheus_name(key), value.to_string()));
                });
                labels
            });
        // A span that finds no room is counted once, whichever of its series did not fit.
        let mut dropped = target.is_none();
        for gauge in target.into_iter().flatten() {
            gauge.set(1);
        }

        let Some(attributes) = semconv::metric_attributes(span) else {
            if dropped {
                self.self_metrics.inc(Counter::MetricSeriesDropped);
            }
            return;
        };
        let labels = |key: &DurationKey| {
            let mut labels: Labels = key
                .attributes
                .iter()
                .map(|(name, value)| (attr::prometheus_name(name), value.text()))
                .collect();
            labels.push((
                attr::prometheus_name(attr::SERVICE_NAME),
                resource.service_name.clone(),
            ));
            labels.push((
                attr::prometheus_name(attr::SERVICE_NAMESPACE),
                resource.service_namespace.clone(),
            ));
            labels.extend(kubernetes_labels(resource));
            labels
        };
        let instrument = attributes.instrument;
        let members = self.histograms[instrument.index()].families.len();
        let room = self.series() + members <= self.max_series;
        let set = &mut self.histograms[instrument.index()];
        let measurements = semconv::measurements(span, instrument);
        let key = DurationKey {
            attributes,
            service,
        };
        match set.get_or_add(key, now, room, labels) {
            Some(histograms) => {
                for (histogram, (_, value)) in histograms.iter().zip(measurements) {
                    histogram.observe(value);
                }
            }
            None => dropped = true,
        }
        if dropped {
            self.self_metrics.inc(Counter::MetricSeriesDropped);
        }
        if self
            .last_expiry
            .is_none_or(|t| now.saturating_duration_since(t) >= EXPIRY_INTERVAL)
        {
            self.expire(now);
        }
    }

    /// Removes every series not updated for the configured TTL.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.series_ttl;
        for set in &mut self.histograms {
            set.expire(now, ttl);
        }
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
struct SelfMetricsCollector(Context);

/// One series of a self-metric family, as a gauge or a counter.
fn encode_value(gauge: bool, value: u64, metric: MetricEncoder<'_>) -> fmt::Result {
    if gauge {
        ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)
    } else {
        ConstCounter::new(value).encode(metric)
    }
}

impl fmt::Debug for SelfMetricsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfMetricsCollector")
            .finish_non_exhaustive()
    }
}

impl Collector for SelfMetricsCollector {
    /// Every family of [`selfmetrics::FAMILIES`]; `_total` is appended to
    /// counters by the encoder.
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let kernel = (self.0.kernel_drops)();
        let counter_type = ConstCounter::new(0u64).metric_type();
        let gauge_type = ConstGauge::new(0i64).metric_type();
        for (family, members) in selfmetrics::values(&self.0.self_metrics, &kernel) {
            let gauge = family.is_gauge();
            let metric_type = if gauge { gauge_type } else { counter_type };
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            match family.label {
                None => encode_value(gauge, members.map(|(_, v)| v).sum::<u64>(), metric)?,
                Some(label) => {
                    for (label_value, value) in members {
                        encode_value(gauge, value, metric.encode_family(&[(label, label_value)])?)?;
                    }
                }
            }
        }
        let gauge = ConstGauge::new(i64::try_from((self.0.instrumented)()).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor(
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
    use crate::model::SpanKind;
    use crate::selfmetrics::{Gauge, KernelDropCounts};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn span(kind: SpanKind, service: &str, route: &str, status: u16, duration_ns: u64) -> Span {
        let mut span = fixtures::span();
        span.request.kind = kind;
        fixtures::http(&mut span).status = status;
        span.request.resource = fixtures::resource(service);
        span.route = Some(route.into());
        span.end_unix_ns = T0_NS + duration_ns;
        span
    }

    fn metrics() -> Metrics {
        with(Duration::from_secs(300), MAX_SERIES)
    }

    fn with(ttl: Duration, max_series: usize) -> Metrics {
        Metrics::new(Arc::new(fixtures::host()), ttl, max_series, Arc::default())
    }

    /// The agent's state as the endpoint reads it: its counters, fixed kernel
    /// drops, and a process count the test changes.
    fn context(own: &Arc<SelfMetrics>, processes: &Arc<AtomicU64>) -> Context {
        let processes = Arc::clone(processes);
        Context {
            control: crate::control::Control::start().unwrap(),
            self_metrics: Arc::clone(own),
            kernel_drops: Arc::new(|| KernelDropCounts::read(|d| d as u64 + 1)),
            instrumented: Arc::new(move || processes.load(Ordering::Relaxed)),
            shutdown_timeout: Duration::from_secs(1),
            host: Arc::new(fixtures::host()),
        }
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
        http_response_status_code=\"200\",error_type=\"\",url_scheme=\"http\",\
        service_name=\"svc\",service_namespace=\"\"";

    /// `target_info` labels of the fixture's process (pid 77 on `host1`) of `service`.
    fn target(service: &str) -> String {
        format!(
            "service_name=\"{service}\",service_instance_id=\"host1:77\",host_name=\"host1\",\
             host_id=\"4c2e3e63f7c3b3b3\",os_type=\"linux\",telemetry_sdk_name=\"beyla\",\
             telemetry_sdk_language=\"generic\",telemetry_sdk_version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )
    }

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
                 http_response_status_code=\"503\",error_type=\"503\",url_scheme=\"http\",\
                 server_address=\"localhost\",server_port=\"40000\",service_name=\"svc\",\
                 service_namespace=\"\"";
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
            fixtures::http(&mut s).method = crate::model::Method::Post.into();
            fixtures::rpc(&mut s, "beyla.Users", "Get", status_code);
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
                 http_route=\"/q\\\"x\",http_response_status_code=\"200\",error_type=\"\",\
                 url_scheme=\"http\",service_name=\"a\\\"b\\\\c\\nd\",service_namespace=\"\"} 1",
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
                &format!("target_info{{{}}} 1", target("svc")),
                &format!("target_info{{{}}} 1", target("other")),
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
    fn target_info_per_container_with_its_kubernetes_labels() {
        let mut m = metrics();
        let now = Instant::now();
        for (pod, uid) in [("web-a", "uid-a"), ("web-b", "uid-b")] {
            let mut s = span(SpanKind::Server, "web", "/a", 200, 1);
            let mut resource = (*s.request.resource).clone();
            resource.kubernetes = Some(Arc::new(crate::model::KubernetesResource {
                namespace: "shop".into(),
                pod_name: pod.into(),
                pod_uid: uid.into(),
                container_name: "app".into(),
                node_name: "n1".into(),
                owner_name: "web".into(),
                ..Default::default()
            }));
            s.request.resource = Arc::new(resource);
            m.record(&s, now);
            m.record(&s, now);
        }
        let text = m.encode(now);
        assert_has(
            &text,
            &[&format!(
                "target_info{{{},k8s_namespace_name=\"shop\",k8s_pod_name=\"web-b\",\
                     k8s_pod_uid=\"uid-b\",k8s_container_name=\"app\",k8s_node_name=\"n1\",\
                     k8s_owner_name=\"web\"}} 1",
                target("web").replace("host1:77", "shop.web-b.app")
            )],
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("target_info{"))
                .count(),
            2
        );
        // Each pod's duration series carries its pod's labels.
        assert_eq!(
            text.lines()
                .filter(
                    |l| l.starts_with("http_server_request_duration_seconds_count{")
                        && l.contains("k8s_pod_name=\"web-a\"")
                        && l.ends_with(" 2")
                )
                .count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn series_not_updated_for_the_ttl_disappear() {
        let ttl = Duration::from_secs(300);
        let mut m = with(ttl, MAX_SERIES);
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
                 http_route=\"/b\",http_response_status_code=\"200\",error_type=\"\",\
                 url_scheme=\"http\",service_name=\"kept\",service_namespace=\"\"} 2",
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
             http_route=\"/a\",http_response_status_code=\"200\",error_type=\"\",\
             url_scheme=\"http\",service_name=\"old\",service_namespace=\"\"} 1"
        ));
    }

    #[test]
    fn recording_expires_without_a_scrape() {
        let ttl = Duration::from_secs(10);
        let mut m = with(ttl, MAX_SERIES);
        let t0 = Instant::now();
        m.record(&span(SpanKind::Server, "old", "/a", 200, 1), t0);
        m.record(&span(SpanKind::Server, "new", "/a", 200, 1), t0 + ttl);
        // old: histograms and target_info gone; new: its three histograms
        // (duration, request and response body sizes) and target_info.
        assert_eq!(m.series(), 4);
    }

    #[test]
    fn series_beyond_the_cap_are_dropped_and_counted() {
        let own = Arc::new(SelfMetrics::default());
        let mut m = Metrics::new(
            Arc::new(fixtures::host()),
            Duration::from_secs(300),
            7,
            Arc::clone(&own),
        );
        m.register_self_metrics(&context(&own, &Arc::default()));
        let now = Instant::now();
        // target_info{svc} and the three histograms of /0 and of /1 reach the cap of 7.
        for i in 0..4 {
            m.record(
                &span(SpanKind::Server, "svc", &format!("/{i}"), 200, 1),
                now,
            );
        }
        // Existing series still update.
        m.record(&span(SpanKind::Server, "svc", "/0", 200, 1), now);
        // A new service: neither its target_info nor its histograms fit.
        m.record(&span(SpanKind::Server, "svc2", "/0", 200, 1), now);
        assert_eq!(m.series(), 7);
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
                // The spans of /2, /3 and svc2.
                "beyla_metric_series_dropped_total 3",
            ],
        );
        assert!(!text.contains("svc2"), "{text}");
    }

    #[test]
    fn self_metrics_are_read_at_scrape_time() {
        let own = Arc::new(SelfMetrics::default());
        let processes = Arc::new(AtomicU64::new(2));
        let mut m = metrics();
        m.register_self_metrics(&context(&own, &processes));
        own.add(Counter::EventsRead, 5);
        own.inc(Counter::SpansCreated);
        own.inc(Counter::EventsUndecodable);
        own.add(Counter::EventsUntraced, 2);
        own.inc(Counter::ConnectionsDropped);
        own.inc(Counter::ExportQueueFull);
        own.inc(Counter::ParseErrors);
        own.add(Counter::UnansweredRequests, 3);
        own.inc(Counter::KubernetesWatchRestartsPods);
        own.set(Gauge::KubernetesPods, 7);
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
                "beyla_unanswered_requests_total 3",
                "beyla_connections_unsupported_total 0",
                "beyla_orphan_responses_total 0",
                "beyla_metric_series_dropped_total 0",
                "# TYPE beyla_instrumented_processes gauge",
                "beyla_instrumented_processes 2",
                "beyla_kubernetes_watch_restarts_total{resource=\"pods\"} 1",
                "# TYPE beyla_kubernetes_objects gauge",
                "beyla_kubernetes_objects{resource=\"pods\"} 7",
                "beyla_kubernetes_objects{resource=\"replicasets\"} 0",
            ],
        );
        own.inc(Counter::EventsRead);
        processes.store(3, Ordering::Relaxed);
        own.set(Gauge::KubernetesPods, 6);
        let text = m.encode(now);
        assert_has(
            &text,
            &[
                "beyla_events_read_total 6",
                "beyla_instrumented_processes 3",
                "beyla_kubernetes_objects{resource=\"pods\"} 6",
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
