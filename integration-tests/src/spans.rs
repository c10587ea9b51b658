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

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Server, Kind::Client, Kind::Producer, Kind::Consumer];

    /// The name the printer gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        }
    }
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
    /// `url.path` of a SERVER span; the path of `url.full` of a CLIENT span.
    pub path: String,
    /// `http.route`; a CLIENT span has none (empty).
    pub route: String,
    pub status: u16,
    pub server_address: String,
    pub server_port: u16,
    /// A SERVER span's `client.address`; a CLIENT span has none (empty).
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
        let kind_text = text("/kind");
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_text)
            .unwrap_or_else(|| {
                panic!(
                    "span kind {kind_text:?} is none of server, client, producer, consumer: {line}"
                )
            });
        let attributes = field("/attributes")
            .as_object()
            .unwrap_or_else(|| panic!("span attributes are not an object: {line}"))
            .clone();
        // HTTP fields are required of HTTP spans only: a database or messaging span has none.
        let http = attributes.contains_key("http.request.method");
        let http_text = |pointer: &str| if http { text(pointer) } else { String::new() };
        let optional = |pointer: &str| {
            json.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        // The HTTP conventions: a server reports the path it served, a client
        // the URL it asked for.
        let path = match (http, kind) {
            (false, _) => String::new(),
            (true, Kind::Server) => text("/attributes/url.path"),
            (true, _) => path_of_url(&text("/attributes/url.full")),
        };
        Span {
            trace_id: text("/traceId"),
            span_id: text("/spanId"),
            parent_span_id: text("/parentSpanId"),
            name: text("/name"),
            kind,
            start_ns: number("/startTimeUnixNano"),
            end_ns: number("/endTimeUnixNano"),
            method: http_text("/attributes/http.request.method"),
            path,
            route: optional("/attributes/http.route"),
            status: if http {
                small("/attributes/http.response.status_code")
            } else {
                0
            },
            server_address: text("/attributes/server.address"),
            server_port: small("/attributes/server.port"),
            client_address: optional("/attributes/client.address"),
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

    /// An attribute as text (a number as its digits), "" when the span has
    /// none of that name.
    pub fn attr_text(&self, name: &str) -> String {
        match self.attributes.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// The path of an absolute URL (`http://host:port/users/42` gives `/users/42`).
pub fn path_of_url(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].to_string(),
        None => "/".to_string(),
    }
}

/// What the HTTP semantic conventions (stable, current) say of a span, as a
/// list of problems: the attributes each kind requires are there, those that
/// belong to the other side are not, the name is `{method} {route}` or
/// `{method}` for a server, `{method}` for a client. `attributes` is the
/// span's attribute object (printer JSON or an OTLP receiver's, flattened).
pub fn http_convention_problems(
    kind: Kind,
    name: &str,
    attributes: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let text = |key: &str| attributes.get(key).and_then(Value::as_str);
    let int = |key: &str| attributes.get(key).and_then(Value::as_i64);
    let method = text("http.request.method").unwrap_or_default();
    let status = int("http.response.status_code");
    let (required, forbidden): (&[&str], &[&str]) = match kind {
        Kind::Server => (
            &[
                "http.request.method",
                "url.path",
                "url.scheme",
                "http.response.status_code",
                "network.protocol.version",
                "server.address",
                "server.port",
                "client.address",
                "client.port",
            ],
            &["url.full"],
        ),
        _ => (
            &[
                "http.request.method",
                "url.full",
                "server.address",
                "server.port",
                "http.response.status_code",
                "network.protocol.version",
            ],
            &[
                "url.path",
                "http.route",
                "client.address",
                "client.port",
                "user_agent.original",
            ],
        ),
    };
    for key in required {
        if !attributes.contains_key(*key) {
            problems.push(format!("{kind:?} span lacks the required {key}"));
        }
    }
    for key in forbidden {
        if attributes.contains_key(*key) {
            problems.push(format!(
                "{kind:?} span has {key}, which is not a {kind:?}'s"
            ));
        }
    }
    if let Some(scheme) = text("url.scheme") {
        if scheme != "http" && scheme != "https" {
            problems.push(format!("url.scheme {scheme:?} is neither http nor https"));
        }
    }
    if let Some(url) = text("url.full") {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(format!("url.full {url:?} is not an absolute http(s) URL"));
        }
    }
    if !matches!(
        text("network.protocol.version"),
        None | Some("1.0" | "1.1" | "2")
    ) {
        problems.push(format!(
            "network.protocol.version {:?} is none of 1.0, 1.1, 2",
            attributes["network.protocol.version"]
        ));
    }
    // error.type: the status code as text exactly when the status is an error.
    let error = status.is_some_and(|s| match kind {
        Kind::Server => s >= 500,
        _ => s >= 400,
    });
    let want_error = error.then(|| status.unwrap_or_default().to_string());
    if text("error.type").map(str::to_string) != want_error {
        problems.push(format!(
            "error.type is {:?}, the conventions want {want_error:?} for status {status:?}",
            attributes.get("error.type")
        ));
    }
    let name_method = name_method(method);
    let want_name = match (kind, text("http.route")) {
        (Kind::Server, Some(route)) => format!("{name_method} {route}"),
        _ => name_method.to_string(),
    };
    // gRPC calls are named after the call (rpc.* attributes), not the HTTP request.
    if !attributes.contains_key("rpc.system") && name != want_name {
        problems.push(format!("name {name:?}, the conventions want {want_name:?}"));
    }
    problems
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

/// How a span name writes `http.request.method`: a method the conventions
/// do not know (`_OTHER`) is `HTTP` there.
fn name_method(method: &str) -> &str {
    match method {
        "_OTHER" => "HTTP",
        known => known,
    }
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
    let name_method = name_method(&e.method);
    // A route is the server's: a CLIENT span has none, and is named after its method.
    let (route, name) = match e.kind {
        Kind::Server => (e.route.clone(), format!("{name_method} {}", e.route)),
        _ => (String::new(), name_method.to_string()),
    };
    compare("http.route", route, s.route.clone());
    compare("name", name, s.name.clone());
    compare(
        "http.response.status_code",
        e.status.to_string(),
        s.status.to_string(),
    );
    compare_ends(s, e.kind, &e.service, e.pid, e.server_port, &mut compare);
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
    mismatches.extend(http_convention_problems(s.kind, &s.name, &s.attributes));
    mismatches.extend(id_and_time_problems(s));
    if !s.parent_span_id.is_empty() && !is_hex(&s.parent_span_id, 16) {
        mismatches.push(format!(
            "parentSpanId is neither empty nor 16 hex digits: {:?}",
            s.parent_span_id
        ));
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

/// Compares, with `compare(what, want, got)`, what span `s` (expected of
/// `kind`) shows of its request's two ends: the service and pid that made
/// it, the server's port and address, and the client's address. Every test
/// talks over loopback; a client asks for 127.0.0.1 by its address, and a
/// client's address is the server's to report.
pub fn compare_ends(
    s: &Span,
    kind: Kind,
    service: &str,
    pid: u32,
    server_port: u16,
    compare: &mut impl FnMut(&str, String, String),
) {
    compare("service.name", service.to_string(), s.service.clone());
    compare("process.pid", pid.to_string(), s.pid.to_string());
    compare(
        "server.port",
        server_port.to_string(),
        s.server_port.to_string(),
    );
    compare(
        "server.address",
        "127.0.0.1".into(),
        s.server_address.clone(),
    );
    let client_address = match kind {
        Kind::Server => "127.0.0.1",
        _ => "",
    };
    compare(
        "client.address",
        client_address.into(),
        s.client_address.clone(),
    );
}

/// What is wrong with span `s`'s ids (32 and 16 hex digits) and times (a
/// start not after its end).
pub fn id_and_time_problems(s: &Span) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_hex(&s.trace_id, 32) {
        problems.push(format!("traceId is not 32 hex digits: {:?}", s.trace_id));
    }
    if !is_hex(&s.span_id, 16) {
        problems.push(format!("spanId is not 16 hex digits: {:?}", s.span_id));
    }
    if s.start_ns > s.end_ns {
        problems.push(format!("start {} is after end {}", s.start_ns, s.end_ns));
    }
    problems
}
