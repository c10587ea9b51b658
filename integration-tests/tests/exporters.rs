//! The exporters against real receivers: a Prometheus server scraping the
//! agent or taking its OTLP metrics, and the OTLP test receiver taking its
//! spans over http/protobuf and gRPC, healthy or failing. The JSON trace
//! printer runs alongside and is the truth the receivers are compared with.
//! Run as root with `--test-threads=1`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use integration_tests::agent::{agent_command, run_to_exit, Agent, AgentOutput};
use integration_tests::apps::{free_port, Lang, Server};
use integration_tests::http::{Connection, Request};
use integration_tests::random_hex;
use integration_tests::receivers::{
    poll, poll_until, received_records, received_spans, scrape, this_host, OtlpReceiver,
    Prometheus, Sample, TempDir,
};
use integration_tests::require_root;
use integration_tests::spans::{
    assert_spans, http_convention_problems, Expected, Kind, Lineage, Span,
};

/// How long any receiver may take to show what the agent sent it. Generous:
/// these are bounds, not measurements.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests of the metrics tests: `/users/<i>` (200), `/error` (500) and
/// unknown paths (404).
const USERS: usize = 30;
const ERRORS: usize = 5;
const UNKNOWN: [&str; 3] = ["/missing-a", "/missing-b", "/missing-c"];
/// Floating-point rounding allowed between a histogram's sum and the sum of
/// the printed spans' durations, in seconds.
const SUM_TOLERANCE: f64 = 1e-6;

/// The traced server and the spans its requests must produce.
struct Run {
    port: u16,
    service: String,
    pid: u32,
    expected: Vec<Expected>,
}

impl Run {
    fn new(server: &Server) -> Run {
        Run {
            port: server.port,
            service: server.service_name(),
            pid: server.pid(),
            expected: Vec::new(),
        }
    }

    /// Sends `request` over `connection`, asserts `status`, and records the
    /// SERVER span it must produce; returns that span's index.
    fn request(
        &mut self,
        connection: &mut Connection,
        request: &Request,
        route: &str,
        status: u16,
        lineage: Lineage,
    ) -> usize {
        let (response, window) = connection.round_trip(request);
        assert_eq!(
            response.status,
            status,
            "{} answered {} (expected {status}): {}",
            request.line(),
            response.status,
            response.body_text()
        );
        self.expected.push(Expected {
            scenario: "exporters".into(),
            kind: Kind::Server,
            method: request.method.clone(),
            path: request.path.clone(),
            route: route.into(),
            status,
            service: self.service.clone(),
            pid: self.pid,
            server_port: self.port,
            window,
            lineage,
        });
        self.expected.len() - 1
    }

    /// `/users/<first + i>` for `i` in `0..n` (numbers: the route is `/users/*`),
    /// over one keep-alive connection.
    fn users(&mut self, first: usize, n: usize) {
        let mut connection = Connection::open(self.port);
        for i in 0..n {
            let request = Request::get(&format!("/users/{}", first + i));
            self.request(&mut connection, &request, "/users/*", 200, Lineage::Root);
        }
    }

    /// The metrics tests' mix: [`USERS`] × 200, [`ERRORS`] × 500, [`UNKNOWN`] × 404.
    fn metrics_mix(&mut self) {
        self.users(1000, USERS);
        let mut connection = Connection::open(self.port);
        for _ in 0..ERRORS {
            let request = Request::get("/error");
            self.request(&mut connection, &request, "/error", 500, Lineage::Root);
        }
        for path in UNKNOWN {
            self.request(
                &mut connection,
                &Request::get(path),
                path,
                404,
                Lineage::Root,
            );
        }
    }

    /// `/downstream`, whose call to the untraced server is a CLIENT span.
    fn downstream(&mut self, downstream_port: u16) {
        let mut connection = Connection::open(self.port);
        let request = Request::get("/downstream");
        let lineage = Lineage::Root;
        self.request(&mut connection, &request, "/downstream", 200, lineage);
        let window = self.expected.last().expect("just pushed").window;
        self.expected.push(Expected {
            scenario: "exporters".into(),
            kind: Kind::Client,
            method: "GET".into(),
            path: "/health".into(),
            route: "/health".into(),
            status: 200,
            service: self.service.clone(),
            pid: self.pid,
            server_port: downstream_port,
            window,
            lineage: Lineage::ChildOfMatchedSpan,
        });
    }

    /// A request joining the trace of an incoming `traceparent`.
    fn traceparent(&mut self) {
        let (trace_id, parent_span_id) = (random_hex(16), random_hex(8));
        let request = Request::get("/users/9000")
            .header("traceparent", &format!("00-{trace_id}-{parent_span_id}-01"));
        let mut connection = Connection::open(self.port);
        let lineage = Lineage::Joins {
            trace_id,
            parent_span_id,
        };
        self.request(&mut connection, &request, "/users/*", 200, lineage);
    }

    /// The expected label sets of the server histogram and their counts.
    fn series(&self) -> BTreeMap<(String, String, u16), usize> {
        let mut series = BTreeMap::new();
        for e in self.expected.iter().filter(|e| e.kind == Kind::Server) {
            *series
                .entry((e.method.clone(), e.route.clone(), e.status))
                .or_insert(0) += 1;
        }
        series
    }
}

fn duration_seconds(span: &Span) -> f64 {
    span.end_ns.saturating_sub(span.start_ns) as f64 / 1e9
}

/// `(method, route, status)` of a histogram sample, by the given label names.
fn series_key(sample: &Sample) -> (String, String, u16) {
    (
        sample.label("http_request_method").to_string(),
        sample.label("http_route").to_string(),
        sample
            .label("http_response_status_code")
            .parse()
            .unwrap_or(0),
    )
}

fn samples_text(samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "  (none)".into();
    }
    samples
        .iter()
        .map(|s| format!("  {:?} = {}", s.labels, s.value))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls `query` until its series (by method, route, status) have at least
/// the expected counts; returns the samples of that moment.
fn wait_for_counts(
    prometheus: &Prometheus,
    query: &str,
    expected: &BTreeMap<(String, String, u16), usize>,
) -> Vec<Sample> {
    poll_until(
        ARRIVAL_TIMEOUT,
        &format!("Prometheus query {query} reaching the counts {expected:?}"),
        || {
            let samples = prometheus.query(query);
            let reached = expected.iter().all(|(key, &count)| {
                samples
                    .iter()
                    .any(|s| series_key(s) == *key && s.value >= count as f64)
            });
            reached.then_some(samples)
        },
        || {
            format!(
                "last result:\n{}\ntargets: {:?}\nprometheus log:\n{}",
                samples_text(&prometheus.query(query)),
                prometheus.targets(),
                prometheus.log()
            )
        },
    )
}

/// Asserts that the histogram `name` (its `_count`, `_sum` and `_bucket`
/// series, with `selector` labels) agrees exactly with the printed spans: one
/// series per (method, route, status), counts equal, sums equal within
/// [`SUM_TOLERANCE`], every bucket holding the spans at or under its bound.
// Queried with last_over_time: the agent is stopped by now (its spans are
// only complete then), and Prometheus marks a vanished target's series stale.
fn assert_histogram_matches_spans(
    prometheus: &Prometheus,
    name: &str,
    selector: &str,
    spans: &[Span],
    context: &str,
) {
    let mut by_key: BTreeMap<(String, String, u16), Vec<f64>> = BTreeMap::new();
    for span in spans.iter().filter(|s| s.kind == Kind::Server) {
        by_key
            .entry((span.method.clone(), span.route.clone(), span.status))
            .or_default()
            .push(duration_seconds(span));
    }
    let mut problems = Vec::new();

    let counts = prometheus.query(&format!("last_over_time({name}_count{{{selector}}}[10m])"));
    let got: BTreeMap<_, _> = counts.iter().map(|s| (series_key(s), s.value)).collect();
    let want: BTreeMap<_, _> = by_key
        .iter()
        .map(|(k, v)| (k.clone(), v.len() as f64))
        .collect();
    if got != want {
        problems.push(format!(
            "{name}_count per (method, route, status): Prometheus has {got:?}, the printed spans give {want:?}"
        ));
    }

    for sample in prometheus.query(&format!("last_over_time({name}_sum{{{selector}}}[10m])")) {
        let key = series_key(&sample);
        let spans_sum: f64 = by_key.get(&key).map_or(0.0, |d| d.iter().sum());
        if (sample.value - spans_sum).abs() > SUM_TOLERANCE {
            problems.push(format!(
                "{name}_sum {key:?}: Prometheus {} s, the printed spans' durations add up to {spans_sum} s",
                sample.value
            ));
        }
    }

    let buckets = prometheus.query(&format!("last_over_time({name}_bucket{{{selector}}}[10m])"));
    let mut bounds_seen = 0;
    for sample in &buckets {
        let key = series_key(sample);
        let le = sample.label("le");
        let bound: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let want = by_key
            .get(&key)
            .map_or(0, |d| d.iter().filter(|&&s| s <= bound).count());
        bounds_seen += 1;
        if sample.value != want as f64 {
            problems.push(format!(
                "{name}_bucket {key:?} le={le}: Prometheus {}, {want} printed span(s) at or under it",
                sample.value
            ));
        }
    }
    if bounds_seen == 0 {
        problems.push(format!("no {name}_bucket series at all"));
    }

    assert!(
        problems.is_empty(),
        "the histogram disagrees with the printed spans:\n{}\n{context}",
        problems.join("\n")
    );
}

/// Starts the Python server (optionally with a downstream) and the agent with
/// `env`, and waits until the agent traces it.
fn traced_python(downstream: Option<&Server>, env: &[(&str, &str)]) -> (Server, Agent) {
    let server = Server::start(
        Lang::Python,
        downstream.map(|d| d.url("/health")).as_deref(),
    );
    let port = server.port.to_string();
    // Some requests carry `traceparent`: joining it is asked for, as in Beyla.
    let mut all_env = vec![
        ("BEYLA_OPEN_PORT", port.as_str()),
        ("BEYLA_BPF_TRACK_REQUEST_HEADERS", "true"),
    ];
    all_env.extend_from_slice(env);
    let agent = Agent::start(&all_env);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    (server, agent)
}

fn stopped_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("")
}

/// The counters of the agent's `OTLP traces: spans_exported=N ...` line at stop.
fn otlp_trace_stats(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("OTLP traces: spans_exported="))
        .unwrap_or_else(|| {
            panic!("the agent logged no \"OTLP traces: spans_exported=\" line:\n{stderr}")
        });
    line.split_whitespace()
        .filter_map(|word| {
            let (name, value) = word.split_once('=')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Asserts the agent's own count of exported spans, and that it dropped none.
fn assert_trace_stats(stderr: &str, exported: usize, what: &str) -> BTreeMap<String, u64> {
    let stats = otlp_trace_stats(stderr);
    let get = |name: &str| stats.get(name).copied();
    assert_eq!(
        (
            get("spans_exported"),
            get("spans_dropped_queue_full"),
            get("spans_dropped_at_shutdown")
        ),
        (Some(exported as u64), Some(0), Some(0)),
        "[{what}] the agent's OTLP counters (spans_exported, spans_dropped_queue_full, \
         spans_dropped_at_shutdown) must say every span was exported and none dropped: {stats:?}"
    );
    stats
}

#[test]
fn prometheus_scrape_counts_every_request() {
    require_root();
    let started = Instant::now();
    let metrics_port = free_port();
    let (server, agent) = traced_python(
        None,
        &[("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string())],
    );
    let prometheus = Prometheus::start(Some((metrics_port, "/metrics")));
    let mut run = Run::new(&server);
    run.metrics_mix();
    let expected = run.series();
    let service = run.service.clone();
    let selector = format!("service_name=\"{service}\"");

    let counts = wait_for_counts(
        &prometheus,
        &format!("http_server_request_duration_seconds_count{{{selector}}}"),
        &expected,
    );
    // Exact label sets: the agent's labels (service_namespace is empty, and
    // error_type but for 5xx, which Prometheus stores as absent) and the
    // scrape's job and instance.
    let mut label_problems = Vec::new();
    for sample in &counts {
        let (method, route, status) = series_key(sample);
        let mut want: BTreeMap<String, String> = [
            (
                "__name__",
                "http_server_request_duration_seconds_count".to_string(),
            ),
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status.to_string()),
            ("url_scheme", "http".to_string()),
            ("service_name", service.clone()),
            ("instance", format!("127.0.0.1:{metrics_port}")),
            ("job", "beyla".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if status >= 500 {
            want.insert("error_type".into(), status.to_string());
        }
        if sample.labels != want {
            label_problems.push(format!("  got  {:?}\n  want {want:?}", sample.labels));
        }
    }
    assert!(
        label_problems.is_empty(),
        "label sets of http_server_request_duration_seconds_count:\n{}",
        label_problems.join("\n")
    );
    let got: BTreeMap<_, _> = counts
        .iter()
        .map(|s| (series_key(s), s.value as usize))
        .collect();
    assert_eq!(
        got, expected,
        "Prometheus's counts per (method, route, status) must be the requests sent"
    );
    let client = prometheus.query("http_client_request_duration_seconds_count");
    assert!(
        client.is_empty(),
        "no client call was made, yet Prometheus has client series:\n{}",
        samples_text(&client)
    );

    let targets = prometheus.query(&format!("target_info{{{selector}}}"));
    assert_eq!(
        targets.len(),
        1,
        "one target_info series for {service}:\n{}",
        samples_text(&targets)
    );
    let target = &targets[0];
    assert_eq!(target.value, 1.0, "target_info is 1: {target:?}");
    // The resource, as OTLP has it (the same function makes both).
    let (host_name, host_id) = this_host();
    let want: BTreeMap<String, String> = [
        ("__name__", "target_info".to_string()),
        ("service_name", service.clone()),
        ("service_instance_id", format!("{host_name}:{}", run.pid)),
        ("host_name", host_name.clone()),
        ("host_id", host_id),
        ("os_type", "linux".to_string()),
        ("telemetry_sdk_name", "beyla".to_string()),
        ("telemetry_sdk_language", "python".to_string()),
        (
            "telemetry_sdk_version",
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("instance", format!("127.0.0.1:{metrics_port}")),
        ("job", "beyla".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(target.labels, want, "target_info labels");

    let self_metric = |name: &str| -> Vec<Sample> { prometheus.query(name) };
    let events_read = self_metric("beyla_events_read_total");
    assert!(
        events_read.len() == 1 && events_read[0].value > 0.0,
        "beyla_events_read_total must be one series above 0:\n{}",
        samples_text(&events_read)
    );
    let kernel_drops = self_metric("beyla_kernel_drops_total");
    assert!(
        !kernel_drops.is_empty() && kernel_drops.iter().all(|s| s.value == 0.0),
        "beyla_kernel_drops_total must exist and be 0 for every reason:\n{}",
        samples_text(&kernel_drops)
    );
    let instrumented = self_metric("beyla_instrumented_processes");
    assert!(
        instrumented.len() == 1 && instrumented[0].value == 1.0,
        "beyla_instrumented_processes must be 1 (the Python server):\n{}",
        samples_text(&instrumented)
    );
    let spans_created = self_metric("beyla_spans_created_total");
    let events_dropped = self_metric("beyla_events_dropped_total");

    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_spans(&output.spans, &run.expected, &context);
    assert!(
        spans_created.len() == 1 && spans_created[0].value == output.spans.len() as f64,
        "beyla_spans_created_total must equal the {} printed spans:\n{}",
        output.spans.len(),
        samples_text(&spans_created)
    );
    assert_histogram_matches_spans(
        &prometheus,
        "http_server_request_duration_seconds",
        &selector,
        &output.spans,
        &context,
    );

    let total: usize = expected.values().sum();
    println!(
        "prometheus scrape: {total} requests sent ({USERS} /users/*, {ERRORS} /error, {} 404), \
         Prometheus counts {got:?}; events_read={} kernel_drops={} events_dropped={}; \
         {}; {:.1}s",
        UNKNOWN.len(),
        events_read[0].value,
        kernel_drops.iter().map(|s| s.value).sum::<f64>(),
        events_dropped
            .iter()
            .map(|s| format!("{}={}", s.label("stage"), s.value))
            .collect::<Vec<_>>()
            .join(" "),
        stopped_line(&output.stderr),
        started.elapsed().as_secs_f64()
    );
}

/// The name Prometheus (2.53, OTLP receiver) gives the agent's
/// `http.server.request.duration` histogram (unit `s`): dots become
/// underscores and the unit becomes a `_seconds` suffix.
const OTLP_HISTOGRAM: &str = "http_server_request_duration_seconds";

#[test]
fn prometheus_otlp_receiver_gets_metrics() {
    require_root();
    let started = Instant::now();
    let prometheus = Prometheus::start(None);
    let url = prometheus.otlp_metrics_url();
    let (server, agent) = traced_python(
        None,
        &[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &url),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );
    let mut run = Run::new(&server);
    run.metrics_mix();
    let expected = run.series();
    let service = run.service.clone();
    let count_name = format!("{OTLP_HISTOGRAM}_count");
    // OTLP's service.name becomes the job label.
    let selector = format!("job=\"{service}\"");
    let query = format!("{count_name}{{{selector}}}");

    // Which names did the OTLP ingestion create, and did the counts arrive?
    let reached = poll(ARRIVAL_TIMEOUT, || {
        let samples = prometheus.query(&query);
        let reached = expected.iter().all(|(key, &count)| {
            samples
                .iter()
                .any(|s| series_key(s) == *key && s.value >= count as f64)
        });
        reached.then_some(samples)
    });
    let names: Vec<String> = prometheus
        .metric_names()
        .into_iter()
        .filter(|n| n.contains("request_duration"))
        .collect();
    let Some(counts) = reached else {
        let output = agent.stop();
        panic!(
            "Prometheus query {query} did not reach {expected:?} within {ARRIVAL_TIMEOUT:?}; \
             it has {:?}; request-duration names stored: {names:?}\nprometheus log:\n{}\n\
             agent stderr:\n{}",
            prometheus.query(&query),
            prometheus.log(),
            output.stderr
        );
    };
    assert!(
        names.contains(&count_name),
        "Prometheus should store the OTLP histogram as {OTLP_HISTOGRAM}_*, it has {names:?}"
    );
    let got: BTreeMap<_, _> = counts
        .iter()
        .map(|s| (series_key(s), s.value as usize))
        .collect();

    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_eq!(
        got, expected,
        "OTLP-ingested counts per (method, route, status) must be the requests sent\n{context}"
    );
    // Exact label sets: the data point's attributes (error.type only for
    // 5xx), job from the resource's service.name and instance from its
    // service.instance.id.
    let (host_name, _) = this_host();
    for sample in &counts {
        let (method, route, status) = series_key(sample);
        let mut want: BTreeMap<String, String> = [
            ("__name__", count_name.clone()),
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status.to_string()),
            ("url_scheme", "http".to_string()),
            ("job", service.clone()),
            ("instance", format!("{host_name}:{}", run.pid)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if status >= 500 {
            want.insert("error_type".into(), status.to_string());
        }
        assert_eq!(sample.labels, want, "label set of {count_name}");
    }
    assert_spans(&output.spans, &run.expected, &context);
    assert_histogram_matches_spans(
        &prometheus,
        OTLP_HISTOGRAM,
        &selector,
        &output.spans,
        &context,
    );

    let total: usize = expected.values().sum();
    println!(
        "prometheus OTLP: {total} requests sent, Prometheus counts {got:?} as {count_name} \
         (labels {:?}); {}; {}; {:.1}s",
        counts.first().map(|s| &s.labels),
        output
            .stderr
            .lines()
            .find(|l| l.contains("OTLP metrics: exports="))
            .unwrap_or("(no OTLP metrics summary)"),
        stopped_line(&output.stderr),
        started.elapsed().as_secs_f64()
    );
}

/// The agent's OTEL_RESOURCE_ATTRIBUTES in the trace comparison: on every
/// received resource, while `service.name` stays the one discovery gave.
const RESOURCE_ATTRIBUTES: &str = "deployment.environment=test,service.name=not-this";

/// The semantic conventions version the agent's names follow.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";

/// `OTEL_EXPORTER_OTLP_PROTOCOL` value and the receiver's `transport` field.
const PROTOCOLS: [(&str, &str); 2] = [("http/protobuf", "http"), ("grpc", "grpc")];

fn traces_endpoint(receiver: &OtlpReceiver, protocol: &str) -> String {
    match protocol {
        "grpc" => receiver.grpc_url(),
        _ => receiver.http_traces_url(),
    }
}

/// The problems found comparing the printed spans (the truth) with the
/// receiver's: each printed span exactly once, every field equal, nothing else.
fn compare_with_printer(printed: &[Span], received: &[Value], transport: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for r in received {
        by_id
            .entry(r["spanId"].as_str().unwrap_or_default())
            .or_default()
            .push(r);
    }
    for span in printed {
        let printed_json: Value = serde_json::from_str(&span.line).expect("parsed before");
        let got = by_id.remove(span.span_id.as_str()).unwrap_or_default();
        if got.len() != 1 {
            problems.push(format!(
                "printed span received {} times (want 1): {}",
                got.len(),
                span.line
            ));
            continue;
        }
        let r = got[0];
        let kind = match span.kind {
            Kind::Server => "SPAN_KIND_SERVER",
            Kind::Client => "SPAN_KIND_CLIENT",
            Kind::Producer => "SPAN_KIND_PRODUCER",
            Kind::Consumer => "SPAN_KIND_CONSUMER",
        };
        // The HTTP semantic conventions (this test's spans are all HTTP): 5xx
        // is an error for a server, 4xx and 5xx for a client; otherwise unset.
        let error = match span.kind {
            Kind::Server => span.status >= 500,
            Kind::Client | Kind::Producer | Kind::Consumer => span.status >= 400,
        };
        let status = if error {
            "STATUS_CODE_ERROR"
        } else {
            "STATUS_CODE_UNSET"
        };
        let (host_name, host_id) = this_host();
        let checks: [(&str, Value, Value); 20] = [
            (
                "traceId",
                printed_json["traceId"].clone(),
                r["traceId"].clone(),
            ),
            (
                "parentSpanId",
                printed_json["parentSpanId"].clone(),
                r["parentSpanId"].clone(),
            ),
            ("name", printed_json["name"].clone(), r["name"].clone()),
            ("kind", Value::from(kind), r["kind"].clone()),
            (
                "startTimeUnixNano",
                printed_json["startTimeUnixNano"].clone(),
                r["startTimeUnixNano"].clone(),
            ),
            (
                "endTimeUnixNano",
                printed_json["endTimeUnixNano"].clone(),
                r["endTimeUnixNano"].clone(),
            ),
            (
                "attributes",
                printed_json["attributes"].clone(),
                r["attributes"].clone(),
            ),
            (
                "resource service.name",
                printed_json["resource"]["service.name"].clone(),
                r["resource"]["service.name"].clone(),
            ),
            (
                "resource process.pid",
                printed_json["resource"]["process.pid"].clone(),
                r["resource"]["process.pid"].clone(),
            ),
            (
                "resource deployment.environment (OTEL_RESOURCE_ATTRIBUTES)",
                Value::from("test"),
                r["resource"]["deployment.environment"].clone(),
            ),
            (
                "resource service.instance.id",
                Value::from(format!("{host_name}:{}", span.pid)),
                r["resource"]["service.instance.id"].clone(),
            ),
            (
                "resource host.name",
                Value::from(host_name),
                r["resource"]["host.name"].clone(),
            ),
            (
                "resource host.id",
                Value::from(host_id),
                r["resource"]["host.id"].clone(),
            ),
            (
                "resource os.type",
                Value::from("linux"),
                r["resource"]["os.type"].clone(),
            ),
            (
                "resource telemetry.sdk.name",
                Value::from("beyla"),
                r["resource"]["telemetry.sdk.name"].clone(),
            ),
            (
                "resource telemetry.sdk.language (the traced Python server's)",
                Value::from("python"),
                r["resource"]["telemetry.sdk.language"].clone(),
            ),
            (
                "resource telemetry.sdk.version (the agent's)",
                Value::from(env!("CARGO_PKG_VERSION")),
                r["resource"]["telemetry.sdk.version"].clone(),
            ),
            (
                "resource schema URL",
                Value::from(SCHEMA_URL),
                r["resourceSchemaUrl"].clone(),
            ),
            (
                "status.code",
                Value::from(status),
                r["status"]["code"].clone(),
            ),
            ("transport", Value::from(transport), r["transport"].clone()),
        ];
        let mismatches: Vec<String> = checks
            .iter()
            .filter(|(_, want, got)| want != got)
            .map(|(what, want, got)| format!("{what}: printed {want}, received {got}"))
            .collect();
        if !mismatches.is_empty() {
            problems.push(format!(
                "span {}:\n  {}\n  printed:  {}\n  received: {r}",
                span.span_id,
                mismatches.join("\n  "),
                span.line
            ));
        }
    }
    for (id, extra) in by_id {
        problems.push(format!(
            "received span {id} ({} time(s)) was never printed: {}",
            extra.len(),
            extra[0]
        ));
    }
    problems
}

/// Waits until the receiver's file holds at least `n` spans; returns them.
fn wait_for_received(out: &Path, n: usize, what: &str) -> Vec<Value> {
    poll_until(
        ARRIVAL_TIMEOUT,
        &format!("{n} spans at the receiver ({what})"),
        || {
            let spans = received_spans(out);
            (spans.len() >= n).then_some(spans)
        },
        || format!("received so far: {} span(s)", received_spans(out).len()),
    )
}

/// Asserts the receiver got exactly the printed spans, field by field.
fn assert_received_match(output: &AgentOutput, out: &Path, transport: &str, what: &str) -> usize {
    let received = wait_for_received(out, output.spans.len(), what);
    let problems = compare_with_printer(&output.spans, &received, transport);
    assert!(
        problems.is_empty(),
        "[{what}] {} problem(s) comparing {} printed with {} received span(s):\n{}\n\nagent stderr:\n{}",
        problems.len(),
        output.spans.len(),
        received.len(),
        problems.join("\n"),
        output.stderr
    );
    received.len()
}

#[test]
fn otlp_traces_http_and_grpc_match_the_printer() {
    require_root();
    let downstream = Server::start(Lang::Go, None);
    let mut figures = Vec::new();
    for (protocol, transport) in PROTOCOLS {
        let started = Instant::now();
        let dir = TempDir::new("beyla-otlp-traces");
        let out = dir.path.join("received.jsonl");
        let receiver = OtlpReceiver::start(0, 0, &out, &[]);
        let endpoint = traces_endpoint(&receiver, protocol);
        let (server, agent) = traced_python(
            Some(&downstream),
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_RESOURCE_ATTRIBUTES", RESOURCE_ATTRIBUTES),
            ],
        );
        let mut run = Run::new(&server);
        run.users(2000, 17);
        let mut connection = Connection::open(run.port);
        run.request(
            &mut connection,
            &Request::get("/error"),
            "/error",
            500,
            Lineage::Root,
        );
        drop(connection);
        run.traceparent();
        run.downstream(downstream.port);
        let requests = run
            .expected
            .iter()
            .filter(|e| e.kind == Kind::Server)
            .count();
        assert_eq!(requests, 20);

        let output = agent.stop();
        let context = format!("{protocol}: agent stderr:\n{}", output.stderr);
        assert_spans(&output.spans, &run.expected, &context);
        let received = assert_received_match(&output, &out, transport, protocol);
        let stats = assert_trace_stats(&output.stderr, output.spans.len(), protocol);
        assert_eq!(
            stats.get("export_failures"),
            Some(&0),
            "[{protocol}] no export may fail with a healthy receiver: {stats:?}\n{context}"
        );
        let summary = receiver.stop();
        figures.push(format!(
            "{protocol}: {requests} requests, {} spans printed, {received} received \
             (receiver: {}); agent {stats:?}; {}; {:.1}s",
            output.spans.len(),
            summary.trim(),
            stopped_line(&output.stderr),
            started.elapsed().as_secs_f64()
        ));
    }
    println!("OTLP traces:\n  {}", figures.join("\n  "));
}

/// The kind of a received span, for the convention rules.
fn received_kind(r: &Value) -> Kind {
    match r["kind"].as_str() {
        Some("SPAN_KIND_SERVER") => Kind::Server,
        Some("SPAN_KIND_CLIENT") => Kind::Client,
        other => panic!("unexpected span kind {other:?}: {r}"),
    }
}

/// The last pushed value of each metric data point (metrics are cumulative:
/// every push repeats them), by metric name and sorted attributes.
fn last_points(records: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut last: BTreeMap<(String, String), Value> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "metric") {
        let key = (
            r["name"].as_str().unwrap_or_default().to_string(),
            r["attributes"].to_string(),
        );
        let newer = last
            .get(&key)
            .is_none_or(|old| old["timeUnixNano"].as_u64() <= r["timeUnixNano"].as_u64());
        if newer {
            last.insert(key, r.clone());
        }
    }
    last
}

/// A metric point a test wants: its name, its attributes, its unit, and
/// its sum when the test knows it.
type WantedPoint = (
    &'static str,
    Vec<(&'static str, Value)>,
    &'static str,
    Option<f64>,
);

/// Spans and metrics over OTLP (decoded by the official protobuf
/// definitions), checked against the HTTP semantic conventions: every span's
/// required attributes present and the other side's absent, and each
/// attribute's value; the duration and body size histograms with their
/// attributes; the resource of both signals.
#[test]
fn otlp_spans_and_metrics_follow_the_http_conventions() {
    require_root();
    let started = Instant::now();
    let downstream = Server::start(Lang::Go, None);
    let dir = TempDir::new("beyla-otlp-conventions");
    let out = dir.path.join("received.jsonl");
    let receiver = OtlpReceiver::start(0, 0, &out, &[]);
    let endpoint = format!("http://127.0.0.1:{}", receiver.http_port);
    let (server, agent) = traced_python(
        Some(&downstream),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );
    let mut run = Run::new(&server);
    let mut connection = Connection::open(run.port);
    let mut send = |run: &mut Run, request: Request, route: &str, status: u16| {
        let (response, window) = connection.round_trip(&request);
        assert_eq!(response.status, status, "{}", request.line());
        run.expected.push(Expected {
            scenario: "conventions".into(),
            kind: Kind::Server,
            method: request.method.clone(),
            path: request.path.clone(),
            route: route.into(),
            status,
            service: run.service.clone(),
            pid: run.pid,
            server_port: run.port,
            window,
            lineage: Lineage::Root,
        });
        response.body.len() as i64
    };
    let get_body = send(
        &mut run,
        Request::get("/users/7").header("User-Agent", "beyla-test/1.0"),
        "/users/*",
        200,
    );
    let post_body = send(
        &mut run,
        Request::post("/users", "text/plain", vec![b'x'; 1000]),
        "/users",
        201,
    );
    send(&mut run, Request::get("/error"), "/error", 500);
    drop(connection);
    run.downstream(downstream.port);
    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_spans(&output.spans, &run.expected, &context);
    let received = wait_for_received(&out, output.spans.len(), "conventions");

    // Every span, by the rules; then each attribute's value.
    let mut problems = Vec::new();
    let attributes = |r: &Value| r["attributes"].as_object().cloned().unwrap_or_default();
    for r in &received {
        let name = r["name"].as_str().unwrap_or_default();
        for problem in http_convention_problems(received_kind(r), name, &attributes(r)) {
            problems.push(format!("{problem}: {r}"));
        }
    }
    let find = |kind: &str, key: &str, value: &str| -> serde_json::Map<String, Value> {
        received
            .iter()
            .find(|r| r["kind"] == kind && r["attributes"][key] == value)
            .map(attributes)
            .unwrap_or_else(|| panic!("no {kind} span with {key}={value}: {received:#?}"))
    };
    let get = find("SPAN_KIND_SERVER", "url.path", "/users/7");
    let post = find("SPAN_KIND_SERVER", "url.path", "/users");
    let error = find("SPAN_KIND_SERVER", "url.path", "/error");
    let call_url = format!("http://127.0.0.1:{}/health", downstream.port);
    let call = find("SPAN_KIND_CLIENT", "url.full", &call_url);
    let port = i64::from(run.port);
    let checks: Vec<(&str, Value, Value)> = vec![
        ("GET url.scheme", "http".into(), get["url.scheme"].clone()),
        (
            "GET network.protocol.version",
            "1.1".into(),
            get["network.protocol.version"].clone(),
        ),
        (
            "GET user_agent.original",
            "beyla-test/1.0".into(),
            get["user_agent.original"].clone(),
        ),
        (
            "GET server.address",
            "127.0.0.1".into(),
            get["server.address"].clone(),
        ),
        ("GET server.port", port.into(), get["server.port"].clone()),
        (
            "GET client.address",
            "127.0.0.1".into(),
            get["client.address"].clone(),
        ),
        (
            "GET http.request.body.size",
            0.into(),
            get["http.request.body.size"].clone(),
        ),
        (
            "GET http.response.body.size",
            get_body.into(),
            get["http.response.body.size"].clone(),
        ),
        (
            "POST http.request.body.size",
            1000.into(),
            post["http.request.body.size"].clone(),
        ),
        (
            "POST http.response.body.size",
            post_body.into(),
            post["http.response.body.size"].clone(),
        ),
        (
            "/error error.type",
            "500".into(),
            error["error.type"].clone(),
        ),
        (
            "call server.address",
            "127.0.0.1".into(),
            call["server.address"].clone(),
        ),
        (
            "call server.port",
            i64::from(downstream.port).into(),
            call["server.port"].clone(),
        ),
    ];
    for (what, want, got) in &checks {
        if want != got {
            problems.push(format!("{what}: want {want}, got {got}"));
        }
    }
    let client_port = get["client.port"].as_i64().unwrap_or_default();
    if !(1..=65535).contains(&client_port) || client_port == port {
        problems.push(format!(
            "GET client.port is not the client's port: {client_port}"
        ));
    }

    // Metrics: the last push of each point, after the agent's last push at exit.
    let records = poll_until(
        ARRIVAL_TIMEOUT,
        "the client duration at the receiver",
        || {
            let records = received_records(&out);
            let points = last_points(&records);
            points
                .keys()
                .any(|(name, _)| name == "http.client.request.duration")
                .then_some(records)
        },
        || format!("{} records so far", received_records(&out).len()),
    );
    let points = last_points(&records);
    let point = |name: &str, want: &[(&str, Value)]| -> Option<&Value> {
        let want: serde_json::Map<String, Value> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        points
            .iter()
            .find(|((n, _), p)| n == name && p["attributes"].as_object() == Some(&want))
            .map(|(_, p)| p)
    };
    let server_attrs = |method: &str, route: &str, status: i64| {
        let mut v = vec![
            ("http.request.method", Value::from(method)),
            ("http.route", route.into()),
            ("http.response.status_code", status.into()),
            ("url.scheme", "http".into()),
        ];
        if status >= 500 {
            v.push(("error.type", status.to_string().into()));
        }
        v
    };
    let mut client_attrs = server_attrs("GET", "/health", 200);
    client_attrs.push(("server.address", "127.0.0.1".into()));
    client_attrs.push(("server.port", i64::from(downstream.port).into()));
    let size_bounds: Vec<Value> = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
        .iter()
        .map(|b| Value::from(f64::from(*b)))
        .collect();
    let expectations: Vec<WantedPoint> = vec![
        (
            "http.server.request.duration",
            server_attrs("GET", "/users/*", 200),
            "s",
            None,
        ),
        (
            "http.server.request.duration",
            server_attrs("POST", "/users", 201),
            "s",
            None,
        ),
        (
            "http.server.request.duration",
            server_attrs("GET", "/error", 500),
            "s",
            None,
        ),
        (
            "http.server.request.duration",
            server_attrs("GET", "/downstream", 200),
            "s",
            None,
        ),
        (
            "http.client.request.duration",
            client_attrs.clone(),
            "s",
            None,
        ),
        (
            "http.server.request.body.size",
            server_attrs("POST", "/users", 201),
            "By",
            Some(1000.0),
        ),
        (
            "http.server.response.body.size",
            server_attrs("POST", "/users", 201),
            "By",
            Some(post_body as f64),
        ),
        (
            "http.server.response.body.size",
            server_attrs("GET", "/users/*", 200),
            "By",
            Some(get_body as f64),
        ),
        (
            "http.client.request.body.size",
            client_attrs.clone(),
            "By",
            Some(0.0),
        ),
        (
            "http.client.response.body.size",
            client_attrs,
            "By",
            Some(2.0),
        ),
    ];
    for (name, attrs, unit, sum) in &expectations {
        let Some(p) = point(name, attrs) else {
            problems.push(format!("no {name} point with {attrs:?}"));
            continue;
        };
        if p["count"] != 1 || p["unit"] != *unit {
            problems.push(format!("{name} {attrs:?}: want count 1 unit {unit}: {p}"));
        }
        if let Some(sum) = sum {
            if p["sum"].as_f64() != Some(*sum)
                || p["explicitBounds"] != Value::from(size_bounds.clone())
            {
                problems.push(format!(
                    "{name} {attrs:?}: want sum {sum} and Beyla's size buckets: {p}"
                ));
            }
        }
        let resource = &p["resource"];
        let (host_name, _) = this_host();
        if resource["service.instance.id"] != format!("{host_name}:{}", run.pid).as_str()
            || resource["telemetry.sdk.language"] != "python"
            || resource["telemetry.sdk.name"] != "beyla"
            || resource["os.type"] != "linux"
            || !resource["process.pid"].is_null()
            || p["resourceSchemaUrl"] != SCHEMA_URL
        {
            problems.push(format!(
                "{name}: resource {resource} (schema {})",
                p["resourceSchemaUrl"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n\n{context}",
        problems.len(),
        problems.join("\n")
    );
    println!(
        "OTLP conventions: {} spans received, each checked against the HTTP rules, {} \
         attribute values and {} metric points checked; receiver: {}; {:.1}s",
        received.len(),
        checks.len() + 1,
        expectations.len(),
        receiver.stop().trim(),
        started.elapsed().as_secs_f64()
    );
}

/// The agent's log lines about OTLP export, and its `stopped:` line.
fn export_log(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.contains("OTLP") || l.contains("stopped:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The agent's own `beyla_*` metrics, read from its scrape endpoint.
fn self_metrics(metrics_port: u16) -> Vec<String> {
    scrape(metrics_port, "/metrics")
        .lines()
        .filter(|l| l.starts_with("beyla_"))
        .map(String::from)
        .collect()
}

/// A traced Python server and an agent exporting its spans to a receiver that
/// may be absent or failing, with the Prometheus endpoint for self-metrics.
struct FaultRun {
    run: Run,
    agent: Agent,
    metrics_port: u16,
    _server: Server,
}

impl FaultRun {
    fn start(endpoint: &str, protocol: &str) -> FaultRun {
        let metrics_port = free_port();
        let (server, agent) = traced_python(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_RESOURCE_ATTRIBUTES", RESOURCE_ATTRIBUTES),
                ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
            ],
        );
        FaultRun {
            run: Run::new(&server),
            agent,
            metrics_port,
            _server: server,
        }
    }

    /// Stops the agent (asserting status 0), then asserts that the receiver
    /// got every printed span exactly once; returns a line of figures.
    fn finish(
        self,
        out: &Path,
        transport: &str,
        what: &str,
    ) -> (String, AgentOutput, BTreeMap<String, u64>) {
        let metrics = self_metrics(self.metrics_port);
        let output = self.agent.stop();
        let context = format!("[{what}] agent stderr:\n{}", output.stderr);
        assert_spans(&output.spans, &self.run.expected, &context);
        let received = assert_received_match(&output, out, transport, what);
        let stats = assert_trace_stats(&output.stderr, output.spans.len(), what);
        let counters: Vec<&String> = metrics
            .iter()
            .filter(|l| l.contains("otlp") || l.contains("export") || l.contains("dropped"))
            .collect();
        let line = format!(
            "{what}: {} requests, {} printed, {received} received; self-metrics {counters:?}\n    \
             agent log:\n      {}",
            self.run.expected.len(),
            output.spans.len(),
            export_log(&output.stderr).replace('\n', "\n      ")
        );
        (line, output, stats)
    }
}

#[test]
fn otlp_receiver_faults() {
    require_root();
    let started = Instant::now();
    let mut figures = Vec::new();

    // (a) No receiver at start; it comes up 5 s later on the configured port.
    {
        let dir = TempDir::new("beyla-otlp-absent");
        let out = dir.path.join("received.jsonl");
        let (http_port, grpc_port) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{http_port}/v1/traces");
        let mut fault = FaultRun::start(&endpoint, "http/protobuf");
        fault.run.users(3000, 5);
        thread::sleep(Duration::from_secs(5));
        let receiver = OtlpReceiver::start(http_port, grpc_port, &out, &[]);
        fault.run.users(3100, 5);
        wait_for_received(&out, 10, "(a) receiver started late");
        let (line, output, stats) = fault.finish(&out, "http", "(a) receiver absent for 5 s");
        assert!(
            output.stderr.contains("export failed") && stats["export_failures"] >= 1,
            "(a) the agent must count and log the failed exports while the receiver was \
             absent ({stats:?}):\n{}",
            output.stderr
        );
        figures.push(format!("{line}\n    receiver: {}", receiver.stop().trim()));
    }

    // (b) The receiver refuses its first 3 requests with 503, then with 502:
    // answers the OTLP specification retries.
    for status in ["503", "502"] {
        const REFUSED: u32 = 3;
        let dir = TempDir::new("beyla-otlp-refused");
        let out = dir.path.join("received.jsonl");
        let receiver = OtlpReceiver::start(
            0,
            0,
            &out,
            &["--fail-with", status, "--fail-first", &REFUSED.to_string()],
        );
        let mut fault = FaultRun::start(&receiver.http_traces_url(), "http/protobuf");
        fault.run.users(4000, 10);
        wait_for_received(&out, 10, "(b) after refusals");
        let what = format!("(b) {status} for the first 3 requests");
        let (line, output, stats) = fault.finish(&out, "http", &what);
        let summary = receiver.stop();
        assert!(
            summary.contains(&format!("refused={REFUSED}")),
            "(b) the receiver must have refused {REFUSED} requests: {summary}"
        );
        let failures = output
            .stderr
            .lines()
            .filter(|l| l.contains("export failed"))
            .count();
        assert!(
            failures >= 1 && output.stderr.contains("accepts spans again"),
            "(b) the agent must log the failed export(s) and the recovery:\n{}",
            output.stderr
        );
        assert_eq!(
            stats["export_failures"],
            u64::from(REFUSED),
            "(b) each refused request is one failed export: {stats:?}"
        );
        figures.push(format!("{line}\n    receiver: {}", summary.trim()));
    }

    // (c) The receiver goes away for 30 s mid-run and comes back on the same
    // ports, once per protocol.
    for (protocol, transport) in PROTOCOLS {
        let dir = TempDir::new("beyla-otlp-restart");
        let out = dir.path.join("received.jsonl");
        let receiver = OtlpReceiver::start(0, 0, &out, &[]);
        let (http_port, grpc_port) = (receiver.http_port, receiver.grpc_port);
        let mut fault = FaultRun::start(&traces_endpoint(&receiver, protocol), protocol);
        fault.run.users(5000, 5);
        wait_for_received(&out, 5, "(c) before the restart");
        let first = receiver.stop();
        fault.run.users(5100, 5);
        thread::sleep(Duration::from_secs(30));
        let receiver = OtlpReceiver::start(http_port, grpc_port, &out, &[]);
        fault.run.users(5200, 5);
        wait_for_received(&out, 15, "(c) after the restart");
        let what = format!("(c) {protocol} receiver down for 30 s");
        let (line, output, stats) = fault.finish(&out, transport, &what);
        assert!(
            stats["export_failures"] >= 1 && output.stderr.contains("accepts spans again"),
            "{what}: the agent must count the failed exports and log the recovery \
             ({stats:?}):\n{}",
            output.stderr
        );
        figures.push(format!(
            "{line}\n    receiver: {} / {}",
            first.trim(),
            receiver.stop().trim()
        ));
    }

    // (d) A slow receiver (3 s per request, under the exporter's 10 s
    // timeout): spans still arrive, and the agent is not held up.
    {
        let dir = TempDir::new("beyla-otlp-slow");
        let out = dir.path.join("received.jsonl");
        let receiver = OtlpReceiver::start(0, 0, &out, &["--delay-ms", "3000"]);
        let mut fault = FaultRun::start(&receiver.http_traces_url(), "http/protobuf");
        fault.run.users(6000, 10);
        wait_for_received(&out, 10, "(d) slow receiver");
        let (line, _output, _stats) =
            fault.finish(&out, "http", "(d) receiver answering after 3 s");
        figures.push(format!("{line}\n    receiver: {}", receiver.stop().trim()));
    }

    // (e) A receiver that refuses the credentials (HTTP 401, gRPC
    // UNAUTHENTICATED), and one that refuses the data (HTTP 400): a permanent
    // answer. Each batch is sent once, dropped and counted; one warning.
    for (protocol, status) in [
        ("http/protobuf", "401"),
        ("grpc", "401"),
        ("http/protobuf", "400"),
    ] {
        let dir = TempDir::new("beyla-otlp-rejected");
        let out = dir.path.join("received.jsonl");
        let receiver = OtlpReceiver::start(0, 0, &out, &["--fail-with", status]);
        let mut fault = FaultRun::start(&traces_endpoint(&receiver, protocol), protocol);
        fault.run.users(7000, 6);
        // Two batches, a second apart: two refusals, one warning.
        thread::sleep(Duration::from_millis(1500));
        fault.run.users(7100, 4);
        let metrics = self_metrics(fault.metrics_port);
        let output = fault.agent.stop();
        let what = format!("(e) {protocol} receiver answering {status}");
        let context = format!("[{what}] agent stderr:\n{}", output.stderr);
        assert_spans(&output.spans, &fault.run.expected, &context);
        let summary = receiver.stop();
        let stats = otlp_trace_stats(&output.stderr);
        let refused: u64 = summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix("refused="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what}: no refused= in {summary:?}"));
        let warnings: Vec<&str> = output
            .stderr
            .lines()
            .filter(|l| l.contains("refused") && l.contains("dropped, not retried"))
            .collect();
        assert!(
            received_spans(&out).is_empty()
                && stats["spans_exported"] == 0
                && stats["spans_dropped_rejected"] == output.spans.len() as u64
                && stats["exports_rejected"] == refused
                && refused >= 2,
            "{what}: every span dropped and counted, each batch sent once (the receiver \
             refused {refused}): {stats:?}\n{context}"
        );
        assert_eq!(warnings.len(), 1, "{what}: one warning\n{context}");
        if status == "401" {
            assert!(
                warnings[0].contains("OTEL_EXPORTER_OTLP_HEADERS"),
                "{what}: the warning says what to check: {}",
                warnings[0]
            );
        }
        let rejected = metrics
            .iter()
            .find(|l| l.starts_with("beyla_otlp_exports_rejected_total{signal=\"traces\"}"))
            .cloned()
            .unwrap_or_default();
        figures.push(format!(
            "{what}: {} spans printed, {} dropped as rejected, {refused} requests refused \
             (no retry); {rejected}; warning: {}",
            output.spans.len(),
            stats["spans_dropped_rejected"],
            warnings[0]
        ));
    }

    println!(
        "OTLP faults ({:.1}s):\n  {}",
        started.elapsed().as_secs_f64(),
        figures.join("\n  ")
    );
}

/// A receiver that takes traces and no metrics, as Jaeger: one clear warning
/// for the whole run, not one per interval; traces still arrive. With
/// `OTEL_METRICS_EXPORTER=none` the agent sends it no metrics at all.
#[test]
fn a_traces_only_receiver_gets_one_warning_about_metrics() {
    require_root();
    let started = Instant::now();
    let mut figures = Vec::new();
    for (protocol, transport) in PROTOCOLS {
        for metrics_exporter in ["otlp", "none"] {
            let dir = TempDir::new("beyla-otlp-traces-only");
            let out = dir.path.join("received.jsonl");
            let receiver = OtlpReceiver::start(0, 0, &out, &["--traces-only"]);
            let endpoint = match protocol {
                "grpc" => receiver.grpc_url(),
                _ => format!("http://127.0.0.1:{}", receiver.http_port),
            };
            let (server, agent) = traced_python(
                None,
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                    ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
                    ("OTEL_METRICS_EXPORTER", metrics_exporter),
                    ("OTEL_RESOURCE_ATTRIBUTES", RESOURCE_ATTRIBUTES),
                ],
            );
            let mut run = Run::new(&server);
            run.users(8000, 5);
            // Several metric intervals.
            thread::sleep(Duration::from_secs(3));
            let output = agent.stop();
            let what = format!("{protocol}, OTEL_METRICS_EXPORTER={metrics_exporter}");
            let context = format!("[{what}] agent stderr:\n{}", output.stderr);
            assert_spans(&output.spans, &run.expected, &context);
            let received = assert_received_match(&output, &out, transport, &what);
            let warnings: Vec<&str> = output
                .stderr
                .lines()
                .filter(|l| l.contains("WARN") && l.contains("OTLP metrics"))
                .collect();
            let summary = receiver.stop();
            match metrics_exporter {
                "otlp" => {
                    assert!(
                        warnings.len() == 1
                            && warnings[0].contains("does not take OTLP metrics")
                            && warnings[0].contains("OTEL_METRICS_EXPORTER=none"),
                        "[{what}] one clear warning about metrics, got {warnings:#?}\n{context}"
                    );
                }
                _ => assert!(
                    warnings.is_empty() && !output.stderr.contains("exporting metrics over OTLP"),
                    "[{what}] no metrics exporter, no warning: {warnings:#?}\n{context}"
                ),
            }
            figures.push(format!(
                "{what}: {received} spans received, metric warnings: {warnings:?}; receiver: {}",
                summary.trim()
            ));
        }
    }
    println!(
        "traces-only receiver ({:.1}s):\n  {}",
        started.elapsed().as_secs_f64(),
        figures.join("\n  ")
    );
}

#[test]
fn bad_exporter_settings_are_startup_errors() {
    require_root();
    // A malformed header is named by its header, its value (a secret) never shown.
    let (status, stderr) = run_to_exit(agent_command(&[
        ("BEYLA_OPEN_PORT", "8080"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "X-Scope-OrgID=1,Authorization=Bearer%zzs3cr3t-t0k3n",
        ),
    ]));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !status.success()
            && lines.len() == 1
            && lines[0].contains("OTEL_EXPORTER_OTLP_HEADERS")
            && lines[0].contains("Authorization")
            && !stderr.contains("s3cr3t"),
        "a malformed header must be refused in one line naming the variable and the header, \
         without its value; got ({status}):\n{stderr}"
    );
    println!("malformed header: {status}, {}", lines[0]);
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "foo"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not-a-url"),
    ] {
        let (status, stderr) = run_to_exit(agent_command(&[
            ("BEYLA_OPEN_PORT", "8080"),
            (variable, value),
        ]));
        assert!(
            !status.success(),
            "{variable}={value:?} was accepted (status {status}); stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{variable}={value:?}: the agent panicked instead of reporting the error:\n{stderr}"
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() == 1
                && lines[0].contains(variable)
                && lines[0].contains(&format!("\"{value}\"")),
            "{variable}={value:?} must be refused with one line naming the variable and the \
             value, got:\n{stderr}"
        );
        println!("{variable}={value}: {status}, {}", lines[0]);
    }
}
