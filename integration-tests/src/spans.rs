//! The spans the agent prints, what a test expects of them, and the one
//! assertion that compares the two.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Slack on each side of a request's wall-clock window. The agent stamps spans
/// with the kernel's monotonic clock and converts to wall-clock time with an
/// offset measured once; the 2 ms allow for that conversion's error, not for
/// any slowness.
pub const CLOCK_SLACK: Duration = Duration::from_millis(2);

/// `kind` of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Server,
    Client,
    /// Kafka Produce, from the client's side.
    Producer,
    /// Kafka Fetch, from the client's side.
    Consumer,
}

/// One line of `BEYLA_TRACE_PRINTER=json` output.
#[derive(Clone, Debug)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub method: String,
    pub path: String,
    pub route: String,
    pub status: u16,
    pub server_address: String,
    pub server_port: u16,
    pub client_address: String,
    pub service: String,
    pub pid: u32,
    /// Every attribute as printed, for the ones a protocol adds (`db.*`, `messaging.*`).
    pub attributes: serde_json::Map<String, Value>,
    /// The resource object as printed (`service.*`, `process.pid`, `k8s.*`).
    pub resource: Value,
    /// The line as printed, for failure messages.
    pub line: String,
}

impl Span {
    /// Parses one printed line; panics naming the line and the missing or
    /// ill-typed field, since a malformed line is itself a failure.
    pub fn parse(line: &str) -> Span {
        let json: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("agent stdout line is not JSON ({e}): {line}"));
        let field = |pointer: &str| {
            json.pointer(pointer)
                .unwrap_or_else(|| panic!("span has no {pointer}: {line}"))
        };
        let text = |pointer: &str| {
            field(pointer)
                .as_str()
                .unwrap_or_else(|| panic!("span {pointer} is not a string: {line}"))
                .to_string()
        };
        let number = |pointer: &str| {
            field(pointer)
                .as_u64()
                .unwrap_or_else(|| panic!("span {pointer} is not an unsigned integer: {line}"))
        };
        let small = |pointer: &str| {
            u16::try_from(number(pointer))
                .unwrap_or_else(|_| panic!("span {pointer} is out of range: {line}"))
        };
        let kind = match text("/kind").as_str() {
            "server" => Kind::Server,
            "client" => Kind::Client,
            "producer" => Kind::Producer,
            "consumer" => Kind::Consumer,
            other => {
                panic!("span kind {other:?} is none of server, client, producer, consumer: {line}")
            }
        };
        let attributes = field("/attributes")
            .as_object()
            .unwrap_or_else(|| panic!("span attributes are not an object: {line}"))
            .clone();
        // HTTP fields are required of HTTP spans only: a database or messaging span has none.
        let http = attributes.contains_key("http.request.method");
        let http_text = |pointer: &str| if http { text(pointer) } else { String::new() };
        Span {
            trace_id: text("/traceId"),
            span_id: text("/spanId"),
            parent_span_id: text("/parentSpanId"),
            name: text("/name"),
            kind,
            start_ns: number("/startTimeUnixNano"),
            end_ns: number("/endTimeUnixNano"),
            method: http_text("/attributes/http.request.method"),
            path: http_text("/attributes/url.path"),
            route: http_text("/attributes/http.route"),
            status: if http {
                small("/attributes/http.response.status_code")
            } else {
                0
            },
            server_address: text("/attributes/server.address"),
            server_port: small("/attributes/server.port"),
            client_address: text("/attributes/client.address"),
            service: text("/resource/service.name"),
            pid: u32::try_from(number("/resource/process.pid"))
                .unwrap_or_else(|_| panic!("span process.pid is out of range: {line}")),
            attributes,
            resource: field("/resource").clone(),
            line: line.to_string(),
        }
    }

    /// A string attribute, `None` when the span has none of that name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// An integer attribute, `None` when the span has none of that name.
    pub fn attr_int(&self, name: &str) -> Option<i64> {
        self.attributes.get(name).and_then(Value::as_i64)
    }
}

/// The wall-clock interval within which a request happened: from just before
/// its first byte was sent to just after the last byte of its answer was read.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
}

impl Window {
    /// Runs `f` and returns its result with the window around it.
    pub fn around<T>(f: impl FnOnce() -> T) -> (T, Window) {
        let start = SystemTime::now();
        let value = f();
        let end = SystemTime::now();
        (value, Window { start, end })
    }

    fn start_ns(&self) -> u64 {
        unix_nanos(self.start)
    }

    fn end_ns(&self) -> u64 {
        unix_nanos(self.end)
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    let since_epoch = t.duration_since(UNIX_EPOCH).expect("clock after 1970");
    u64::try_from(since_epoch.as_nanos()).expect("time fits in u64 nanoseconds")
}

/// Which trace a span must belong to.
#[derive(Clone, Debug)]
pub enum Lineage {
    /// A root span: a fresh trace, no parent.
    Root,
    /// A span joining a trace given by an incoming `traceparent`.
    Joins {
        trace_id: String,
        parent_span_id: String,
    },
    /// A child of another span of the same run; the test checks the link
    /// itself once both spans are matched.
    ChildOfMatchedSpan,
}

/// One span the agent must print, for one request the test made.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Which scenario made the request, for failure messages.
    pub scenario: String,
    pub kind: Kind,
    pub method: String,
    pub path: String,
    pub route: String,
    pub status: u16,
    pub service: String,
    pub pid: u32,
    pub server_port: u16,
    pub window: Window,
    pub lineage: Lineage,
}

/// Spans are paired with expectations by kind, method and path. Requests that
/// share all three are paired in time order, which is exact when they were
/// made one after another.
type Key = (Kind, String, String);

fn key_of_span(s: &Span) -> Key {
    (s.kind, s.method.clone(), s.path.clone())
}

fn key_of_expected(e: &Expected) -> Key {
    (e.kind, e.method.clone(), e.path.clone())
}

/// Asserts that `spans` are exactly the `expected` ones: one span per
/// expectation with the right attributes, times inside the request's window
/// (give or take [`CLOCK_SLACK`]), no duplicate, no span nobody asked for.
/// Returns the matched span of each expectation, in the order of `expected`.
/// On failure, panics listing every problem with the offending spans, then
/// `context` (e.g. the agent's log).
pub fn assert_spans(spans: &[Span], expected: &[Expected], context: &str) -> Vec<Span> {
    let mut problems = Vec::new();
    let mut spans_by_key: BTreeMap<Key, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        spans_by_key
            .entry(key_of_span(span))
            .or_default()
            .push(span);
    }
    let mut expected_by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, e) in expected.iter().enumerate() {
        expected_by_key
            .entry(key_of_expected(e))
            .or_default()
            .push(i);
    }

    let mut matched: Vec<Option<Span>> = vec![None; expected.len()];
    for (key, mut indices) in expected_by_key {
        let mut got = spans_by_key.remove(&key).unwrap_or_default();
        let first = &expected[indices[0]];
        if got.len() != indices.len() {
            problems.push(format!(
                "[{}] expected {} {:?} span(s) for {} {}, got {}:\n{}",
                first.scenario,
                indices.len(),
                key.0,
                key.1,
                key.2,
                got.len(),
                lines_of(&got)
            ));
            continue;
        }
        indices.sort_by_key(|&i| expected[i].window.start);
        got.sort_by_key(|s| s.start_ns);
        for (i, span) in indices.into_iter().zip(got) {
            check_span(&expected[i], span, &mut problems);
            matched[i] = Some(span.clone());
        }
    }
    for (key, got) in spans_by_key {
        problems.push(format!(
            "unexpected {:?} span(s) for {} {} (no such request was made):\n{}",
            key.0,
            key.1,
            key.2,
            lines_of(&got)
        ));
    }
    let mut seen_ids = HashSet::new();
    for span in spans {
        if !seen_ids.insert(&span.span_id) {
            problems.push(format!(
                "spanId {} appears twice: {}",
                span.span_id, span.line
            ));
        }
    }

    if !problems.is_empty() {
        panic!(
            "{} problem(s) in {} span(s) for {} expected request(s):\n\n{}\n\n{context}",
            problems.len(),
            spans.len(),
            expected.len(),
            problems.join("\n\n")
        );
    }
    matched
        .into_iter()
        .map(|s| s.expect("every expectation matched"))
        .collect()
}

fn lines_of(spans: &[&Span]) -> String {
    if spans.is_empty() {
        return "  (none)".to_string();
    }
    spans
        .iter()
        .map(|s| format!("  {}", s.line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares one matched span with its expectation, adding one problem per
/// mismatching field.
fn check_span(e: &Expected, s: &Span, problems: &mut Vec<String>) {
    let mut mismatches = Vec::new();
    let mut compare = |what: &str, want: String, got: String| {
        if want != got {
            mismatches.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    compare("http.route", e.route.clone(), s.route.clone());
    // A method the conventions do not know is `_OTHER`, and `HTTP` in the name.
    let name_method = match e.method.as_str() {
        "_OTHER" => "HTTP",
        known => known,
    };
    compare("name", format!("{name_method} {}", e.route), s.name.clone());
    compare(
        "http.response.status_code",
        e.status.to_string(),
        s.status.to_string(),
    );
    compare("service.name", e.service.clone(), s.service.clone());
    compare("process.pid", e.pid.to_string(), s.pid.to_string());
    compare(
        "server.port",
        e.server_port.to_string(),
        s.server_port.to_string(),
    );
    // Every test talks over loopback.
    compare(
        "server.address",
        "127.0.0.1".into(),
        s.server_address.clone(),
    );
    compare(
        "client.address",
        "127.0.0.1".into(),
        s.client_address.clone(),
    );
    match &e.lineage {
        Lineage::Root => compare(
            "parentSpanId",
            "\"\"".into(),
            format!("{:?}", s.parent_span_id),
        ),
        Lineage::Joins {
            trace_id,
            parent_span_id,
        } => {
            compare("traceId", trace_id.clone(), s.trace_id.clone());
            compare(
                "parentSpanId",
                parent_span_id.clone(),
                s.parent_span_id.clone(),
            );
        }
        Lineage::ChildOfMatchedSpan => {}
    }
    if !is_hex(&s.trace_id, 32) {
        mismatches.push(format!("traceId is not 32 hex digits: {:?}", s.trace_id));
    }
    if !is_hex(&s.span_id, 16) {
        mismatches.push(format!("spanId is not 16 hex digits: {:?}", s.span_id));
    }
    if !s.parent_span_id.is_empty() && !is_hex(&s.parent_span_id, 16) {
        mismatches.push(format!(
            "parentSpanId is neither empty nor 16 hex digits: {:?}",
            s.parent_span_id
        ));
    }
    if s.start_ns > s.end_ns {
        mismatches.push(format!("start {} is after end {}", s.start_ns, s.end_ns));
    }
    let slack = u64::try_from(CLOCK_SLACK.as_nanos()).expect("slack fits in u64");
    if s.start_ns + slack < e.window.start_ns() {
        mismatches.push(format!(
            "starts {} ns before the request was sent (window {}..{})",
            e.window.start_ns() - s.start_ns,
            e.window.start_ns(),
            e.window.end_ns()
        ));
    }
    if s.end_ns > e.window.end_ns() + slack {
        mismatches.push(format!(
            "ends {} ns after the response was read (window {}..{})",
            s.end_ns - e.window.end_ns(),
            e.window.start_ns(),
            e.window.end_ns()
        ));
    }
    if !mismatches.is_empty() {
        problems.push(format!(
            "[{}] {:?} span for {} {}:\n  {}\n  span: {}",
            e.scenario,
            e.kind,
            e.method,
            e.path,
            mismatches.join("\n  "),
            s.line
        ));
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}
