//! The OpenTelemetry semantic conventions, decided once for every exporter:
//! per operation, the span's name, kind, error status and attributes, the
//! metrics it feeds with their attributes, and the resource of a process.
//! The printer, OTLP traces, OTLP metrics and Prometheus all ask here.
//!
//! HTTP follows the stable HTTP conventions: a SERVER span has `url.path`,
//! `url.scheme`, `http.route` (when known), `client.address` and
//! `client.port`; a CLIENT span `url.full` and the `server.*` of the URL it
//! asked for, and none of the server's attributes.

pub mod attributes;

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::model::{
    Host, HttpMethod, HttpOperation, KafkaOperation, KafkaOperationKind, Operation, Request,
    Resource, ShortString, Span, SpanKind,
};
use attributes as attr;

/// The semantic conventions version the names here follow (OTLP resources and scope).
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";
/// `telemetry.sdk.name` of everything the agent exports, as Beyla names it.
pub const SDK_NAME: &str = "beyla";
/// `telemetry.sdk.version`: the agent's version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `os.type`: the agent runs on Linux only.
pub const OS_TYPE: &str = "linux";

/// An attribute's value, borrowed from the span where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Ip(IpAddr),
    /// Made for the span (`url.full`, an `error.type` status code).
    Owned(String),
}

impl std::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Owned(s) => f.write_str(s),
        }
    }
}

/// `db.system.name` of Redis spans.
pub const DB_SYSTEM_REDIS: &str = "redis";
/// `http.request.method` of a method the conventions do not know; the
/// method as sent is then `http.request.method_original`.
pub const HTTP_METHOD_OTHER: &str = "_OTHER";
/// What stands for such a method in a span name.
const SPAN_NAME_METHOD_OTHER: &str = "HTTP";

/// `http.request.method`: the known method's name, or `_OTHER` (a bounded
/// label whatever clients send).
pub fn http_method(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Known(known) => known.as_str(),
        HttpMethod::Other(_) => HTTP_METHOD_OTHER,
    }
}

fn span_name_method(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Known(known) => known.as_str(),
        HttpMethod::Other(_) => SPAN_NAME_METHOD_OTHER,
    }
}

/// `messaging.system` of Kafka spans.
pub const MESSAGING_SYSTEM_KAFKA: &str = "kafka";

/// The span's name: `{service}/{method}` for an RPC; for an HTTP server
/// `{method} {route}`, or `{method}` without a route; `{method}` for an HTTP
/// client (its route is not the server's to tell), with `HTTP` for a method
/// the conventions do not know; for SQL
/// `{operation} {table}`, with the database for want of a table, the
/// operation alone, or the database system when the statement is not known;
/// the command for Redis; `{topic} {operation type}` for Kafka, or the type
/// alone without a topic.
pub fn span_name(span: &Span) -> String {
    match &span.request.operation {
        Operation::Rpc(rpc) => format!("{}/{}", rpc.service, rpc.method),
        Operation::Http(http) => match (&span.route, span.request.kind) {
            (Some(route), SpanKind::Server) => {
                format!("{} {route}", span_name_method(&http.method))
            }
            _ => span_name_method(&http.method).to_string(),
        },
        Operation::Sql(sql) => {
            let target = sql.collection.as_ref().or(sql.namespace.as_ref());
            match (sql.operation, target) {
                (Some(operation), Some(target)) => format!("{operation} {target}"),
                (Some(operation), None) => operation.to_string(),
                (None, _) => sql.system.to_string(),
            }
        }
        Operation::Redis(redis) => redis.command.to_string(),
        Operation::Kafka(kafka) => match &kafka.topic {
            Some(topic) => format!("{topic} {}", messaging_operation_type(kafka)),
            None => messaging_operation_type(kafka).to_string(),
        },
    }
}

/// A span's kind as OpenTelemetry has them: Kafka clients produce and consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtelKind {
    Server,
    Client,
    Producer,
    Consumer,
}

impl OtelKind {
    pub fn name(self) -> &'static str {
        match self {
            OtelKind::Server => "server",
            OtelKind::Client => "client",
            OtelKind::Producer => "producer",
            OtelKind::Consumer => "consumer",
        }
    }
}

/// SERVER for the traced process's side of an accepted connection; otherwise CLIENT, except
/// Kafka's PRODUCER (Produce) and CONSUMER (Fetch), as Beyla emits them.
pub fn span_kind(span: &Span) -> OtelKind {
    match (&span.request.operation, span.request.kind) {
        (_, SpanKind::Server) => OtelKind::Server,
        (Operation::Kafka(kafka), SpanKind::Client) => match kafka.kind {
            KafkaOperationKind::Produce => OtelKind::Producer,
            KafkaOperationKind::Fetch => OtelKind::Consumer,
        },
        (_, SpanKind::Client) => OtelKind::Client,
    }
}

/// Beyla's `messaging.operation.type`: `publish` for Produce, `process` for Fetch.
fn messaging_operation_type(kafka: &KafkaOperation) -> &'static str {
    match kafka.kind {
        KafkaOperationKind::Produce => "publish",
        KafkaOperationKind::Fetch => "process",
    }
}

/// `messaging.operation.name`: the Kafka request, `produce` or `fetch`.
fn messaging_operation_name(kafka: &KafkaOperation) -> &'static str {
    match kafka.kind {
        KafkaOperationKind::Produce => "produce",
        KafkaOperationKind::Fetch => "fetch",
    }
}

/// The error a span ended with, as `error.type` names it: an SQLSTATE or MySQL
/// error number, a Redis error code, a Kafka error.
fn error_type(operation: &Operation) -> Option<&ShortString> {
    match operation {
        Operation::Sql(sql) => sql.error_code.as_ref(),
        Operation::Redis(redis) => redis.error.as_ref(),
        Operation::Kafka(kafka) => kafka.error.as_ref(),
        Operation::Http(_) | Operation::Rpc(_) => None,
    }
}

/// Whether an HTTP status is an error for this side: 5xx for a server, any
/// 4xx or 5xx for a client (the HTTP conventions' span status).
fn http_error(kind: SpanKind, status: u16) -> bool {
    match kind {
        SpanKind::Server => status >= 500,
        SpanKind::Client => status >= 400,
    }
}

/// Whether the span is an error (its status): for HTTP, and the HTTP/2
/// request of a gRPC call, 5xx for a server and any 4xx or 5xx for a client;
/// an error answer for SQL, Redis and Kafka.
pub fn is_error(span: &Span) -> bool {
    match span.request.operation.http() {
        Some(http) => http_error(span.request.kind, http.status),
        None => error_type(&span.request.operation).is_some(),
    }
}

/// `url.scheme`: what the connection carried.
fn url_scheme(request: &Request) -> &'static str {
    if request.tls {
        "https"
    } else {
        "http"
    }
}

/// The host of a `Host` header or `:authority` (`host[:port]`, `[v6]:port`),
/// without port or brackets; None when empty.
fn host_of(authority: &str) -> Option<&str> {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    host
                } else {
                    authority
                }
            }),
    };
    Some(host).filter(|h| !h.is_empty())
}

/// `server.address` of a client request: the host it asked for (its `Host`
/// header or `:authority`), else the address it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerAddress<'a> {
    Named(&'a str),
    Ip(IpAddr),
}

fn client_server_address<'a>(request: &Request, http: &'a HttpOperation) -> ServerAddress<'a> {
    match http.host.as_deref().and_then(host_of) {
        Some(host) => ServerAddress::Named(host),
        None => ServerAddress::Ip(request.conn.remote),
    }
}

/// `url.full` of a client request: scheme, the authority it asked for (else
/// the address and port it connected to) and the path; the query string is
/// not kept.
pub fn url_full(request: &Request, http: &HttpOperation) -> String {
    let scheme = url_scheme(request);
    match http.host.as_deref().filter(|h| !h.is_empty()) {
        Some(authority) => format!("{scheme}://{authority}{}", http.path),
        None => {
            let port = request.conn.remote_port;
            let default_port = if request.tls { 443 } else { 80 };
            let port = if port == default_port {
                String::new()
            } else {
                format!(":{port}")
            };
            match request.conn.remote {
                IpAddr::V4(ip) => format!("{scheme}://{ip}{port}{}", http.path),
                IpAddr::V6(ip) => format!("{scheme}://[{ip}]{port}{}", http.path),
            }
        }
    }
}

/// The attributes of an HTTP request, or of the HTTP/2 request of a gRPC call.
fn http_attributes(
    span: &Span,
    http: &HttpOperation,
    add: &mut impl FnMut(&'static str, Value<'_>),
) {
    let r = &span.request;
    add(
        attr::HTTP_REQUEST_METHOD,
        Value::Str(http_method(&http.method)),
    );
    if let HttpMethod::Other(original) = &http.method {
        add(attr::HTTP_REQUEST_METHOD_ORIGINAL, Value::Str(original));
    }
    match r.kind {
        SpanKind::Server => {
            add(attr::URL_PATH, Value::Str(&http.path));
            add(attr::URL_SCHEME, Value::Str(url_scheme(r)));
            if let Some(route) = &span.route {
                add(attr::HTTP_ROUTE, Value::Str(route));
            }
        }
        SpanKind::Client => add(attr::URL_FULL, Value::Owned(url_full(r, http))),
    }
    add(
        attr::HTTP_RESPONSE_STATUS_CODE,
        Value::Int(i64::from(http.status)),
    );
    add(
        attr::NETWORK_PROTOCOL_VERSION,
        Value::Str(http.version.as_str()),
    );
    match r.kind {
        SpanKind::Server => {
            add(attr::SERVER_ADDRESS, Value::Ip(r.conn.local));
            add(attr::SERVER_PORT, Value::Int(i64::from(r.conn.local_port)));
            add(attr::CLIENT_ADDRESS, Value::Ip(r.conn.remote));
            add(attr::CLIENT_PORT, Value::Int(i64::from(r.conn.remote_port)));
            if let Some(agent) = &http.user_agent {
                add(attr::USER_AGENT_ORIGINAL, Value::Str(agent));
            }
        }
        SpanKind::Client => {
            let address = match client_server_address(r, http) {
                ServerAddress::Named(host) => Value::Str(host),
                ServerAddress::Ip(ip) => Value::Ip(ip),
            };
            add(attr::SERVER_ADDRESS, address);
            add(attr::SERVER_PORT, Value::Int(i64::from(r.conn.remote_port)));
        }
    }
    add(
        attr::HTTP_REQUEST_BODY_SIZE,
        Value::Int(i64::try_from(http.request_body_bytes).unwrap_or(i64::MAX)),
    );
    add(
        attr::HTTP_RESPONSE_BODY_SIZE,
        Value::Int(i64::try_from(http.response_body_bytes).unwrap_or(i64::MAX)),
    );
    if http_error(r.kind, http.status) {
        add(attr::ERROR_TYPE, Value::Owned(http.status.to_string()));
    }
}

/// Every attribute of the span, in a stable order.
pub fn span_attributes(span: &Span, mut add: impl FnMut(&'static str, Value<'_>)) {
    let r = &span.request;
    match r.operation.http() {
        Some(http) => http_attributes(span, http, &mut add),
        None => {
            let (server, server_port, client) = r.conn.endpoints(r.kind);
            add(attr::SERVER_ADDRESS, Value::Ip(server));
            add(attr::SERVER_PORT, Value::Int(i64::from(server_port)));
            // The client's address is the server's to report.
            if r.kind == SpanKind::Server {
                add(attr::CLIENT_ADDRESS, Value::Ip(client));
            }
        }
    }
    match &r.operation {
        Operation::Rpc(rpc) => {
            add(attr::RPC_SYSTEM, Value::Str(rpc.system));
            add(attr::RPC_SERVICE, Value::Str(&rpc.service));
            add(attr::RPC_METHOD, Value::Str(&rpc.method));
            if let Some(code) = rpc.status_code {
                add(attr::RPC_GRPC_STATUS_CODE, Value::Int(i64::from(code)));
            }
        }
        Operation::Sql(sql) => {
            add(attr::DB_SYSTEM_NAME, Value::Str(sql.system));
            if let Some(operation) = sql.operation {
                add(attr::DB_OPERATION_NAME, Value::Str(operation));
            }
            if let Some(collection) = &sql.collection {
                add(attr::DB_COLLECTION_NAME, Value::Str(collection));
            }
            add(attr::DB_QUERY_TEXT, Value::Str(&sql.query));
            if let Some(namespace) = &sql.namespace {
                add(attr::DB_NAMESPACE, Value::Str(namespace));
            }
            if let Some(code) = &sql.error_code {
                add(attr::DB_RESPONSE_STATUS_CODE, Value::Str(code));
            }
        }
        Operation::Redis(redis) => {
            add(attr::DB_SYSTEM_NAME, Value::Str(DB_SYSTEM_REDIS));
            add(attr::DB_OPERATION_NAME, Value::Str(&redis.command));
            add(attr::DB_QUERY_TEXT, Value::Str(&redis.query));
            if let Some(database) = &redis.database {
                add(attr::DB_NAMESPACE, Value::Str(database));
            }
            if let Some(code) = &redis.error {
                add(attr::DB_RESPONSE_STATUS_CODE, Value::Str(code));
            }
        }
        Operation::Kafka(kafka) => {
            add(attr::MESSAGING_SYSTEM, Value::Str(MESSAGING_SYSTEM_KAFKA));
            add(
                attr::MESSAGING_OPERATION_TYPE,
                Value::Str(messaging_operation_type(kafka)),
            );
            add(
                attr::MESSAGING_OPERATION_NAME,
                Value::Str(messaging_operation_name(kafka)),
            );
            if let Some(topic) = &kafka.topic {
                add(attr::MESSAGING_DESTINATION_NAME, Value::Str(topic));
            }
            if let Some(partition) = kafka.partition {
                add(
                    attr::MESSAGING_DESTINATION_PARTITION_ID,
                    Value::Int(i64::from(partition)),
                );
            }
            if let Some(client_id) = &kafka.client_id {
                add(attr::MESSAGING_CLIENT_ID, Value::Str(client_id));
            }
            if let Some(offset) = kafka.offset {
                add(attr::MESSAGING_KAFKA_OFFSET, Value::Int(offset));
            }
        }
        Operation::Http(_) => {}
    }
    if let Some(error) = error_type(&r.operation) {
        add(attr::ERROR_TYPE, Value::Str(error));
    }
}

/// A histogram the agent exports: a duration in seconds, or a body size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instrument {
    HttpServerRequestDuration,
    HttpClientRequestDuration,
    RpcServerDuration,
    RpcClientDuration,
    /// SQL statements and Redis commands, from the client's side.
    DbClientOperationDuration,
    /// Kafka Produce requests.
    MessagingPublishDuration,
    /// Kafka Fetch requests that returned records.
    MessagingProcessDuration,
    HttpServerRequestBodySize,
    HttpServerResponseBodySize,
    HttpClientRequestBodySize,
    HttpClientResponseBodySize,
}

/// What an instrument measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
}

impl Unit {
    /// The UCUM unit of OTLP.
    pub fn ucum(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Bytes => "By",
        }
    }
}

/// Bucket bounds of every duration histogram, Prometheus and OTLP alike: the
/// conventions' advice for request durations, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket bounds of the body size histograms, in bytes (Beyla's).
pub const SIZE_BUCKETS: [f64; 10] = [
    0.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

impl Instrument {
    pub const ALL: [Instrument; 11] = [
        Instrument::HttpServerRequestDuration,
        Instrument::HttpClientRequestDuration,
        Instrument::RpcServerDuration,
        Instrument::RpcClientDuration,
        Instrument::DbClientOperationDuration,
        Instrument::MessagingPublishDuration,
        Instrument::MessagingProcessDuration,
        Instrument::HttpServerRequestBodySize,
        Instrument::HttpServerResponseBodySize,
        Instrument::HttpClientRequestBodySize,
        Instrument::HttpClientResponseBodySize,
    ];

    /// The OpenTelemetry name; Prometheus's is it with underscores and the
    /// unit (`_seconds`, `_bytes`).
    pub fn name(self) -> &'static str {
        match self {
            Instrument::HttpServerRequestDuration => "http.server.request.duration",
            Instrument::HttpClientRequestDuration => "http.client.request.duration",
            Instrument::RpcServerDuration => "rpc.server.duration",
            Instrument::RpcClientDuration => "rpc.client.duration",
            Instrument::DbClientOperationDuration => "db.client.operation.duration",
            Instrument::MessagingPublishDuration => "messaging.publish.duration",
            Instrument::MessagingProcessDuration => "messaging.process.duration",
            Instrument::HttpServerRequestBodySize => "http.server.request.body.size",
            Instrument::HttpServerResponseBodySize => "http.server.response.body.size",
            Instrument::HttpClientRequestBodySize => "http.client.request.body.size",
            Instrument::HttpClientResponseBodySize => "http.client.response.body.size",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Instrument::HttpServerRequestDuration => "Duration of HTTP server requests",
            Instrument::HttpClientRequestDuration => "Duration of HTTP client requests",
            Instrument::RpcServerDuration => "Duration of RPC (gRPC) server calls",
            Instrument::RpcClientDuration => "Duration of RPC (gRPC) client calls",
            Instrument::DbClientOperationDuration => "Duration of database client operations",
            Instrument::MessagingPublishDuration => {
                "Duration of messaging (Kafka) publish operations"
            }
            Instrument::MessagingProcessDuration => {
                "Duration of messaging (Kafka) process operations"
            }
            Instrument::HttpServerRequestBodySize => {
                "Size of HTTP request bodies as received at the server side"
            }
            Instrument::HttpServerResponseBodySize => {
                "Size of HTTP response bodies as sent by the server side"
            }
            Instrument::HttpClientRequestBodySize => {
                "Size of HTTP request bodies as sent by the client side"
            }
            Instrument::HttpClientResponseBodySize => {
                "Size of HTTP response bodies as received at the client side"
            }
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Instrument::HttpServerRequestBodySize
            | Instrument::HttpServerResponseBodySize
            | Instrument::HttpClientRequestBodySize
            | Instrument::HttpClientResponseBodySize => Unit::Bytes,
            _ => Unit::Seconds,
        }
    }

    /// The histogram's bucket bounds.
    pub fn buckets(self) -> &'static [f64] {
        match self.unit() {
            Unit::Seconds => &DURATION_BUCKETS,
            Unit::Bytes => &SIZE_BUCKETS,
        }
    }

    /// The instrument's place in [`Instrument::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The names of the attributes [`metric_attributes`] gives, in its order;
    /// the body sizes have their duration's.
    pub fn attribute_names(self) -> &'static [&'static str] {
        match self {
            Instrument::HttpServerRequestDuration
            | Instrument::HttpServerRequestBodySize
            | Instrument::HttpServerResponseBodySize => &[
                attr::HTTP_REQUEST_METHOD,
                attr::HTTP_ROUTE,
                attr::HTTP_RESPONSE_STATUS_CODE,
                attr::ERROR_TYPE,
                attr::URL_SCHEME,
            ],
            Instrument::HttpClientRequestDuration
            | Instrument::HttpClientRequestBodySize
            | Instrument::HttpClientResponseBodySize => &[
                attr::HTTP_REQUEST_METHOD,
                attr::HTTP_ROUTE,
                attr::HTTP_RESPONSE_STATUS_CODE,
                attr::ERROR_TYPE,
                attr::URL_SCHEME,
                attr::SERVER_ADDRESS,
                attr::SERVER_PORT,
            ],
            Instrument::RpcServerDuration | Instrument::RpcClientDuration => &[
                attr::RPC_SYSTEM,
                attr::RPC_SERVICE,
                attr::RPC_METHOD,
                attr::RPC_GRPC_STATUS_CODE,
            ],
            Instrument::DbClientOperationDuration => &[
                attr::DB_SYSTEM_NAME,
                attr::DB_OPERATION_NAME,
                attr::DB_COLLECTION_NAME,
                attr::DB_NAMESPACE,
                attr::DB_RESPONSE_STATUS_CODE,
                attr::ERROR_TYPE,
                attr::SERVER_PORT,
            ],
            Instrument::MessagingPublishDuration | Instrument::MessagingProcessDuration => &[
                attr::MESSAGING_SYSTEM,
                attr::MESSAGING_DESTINATION_NAME,
                attr::ERROR_TYPE,
            ],
        }
    }

    /// The request and response body size histograms recorded beside this
    /// duration (HTTP requests; not gRPC calls, as in Beyla).
    pub fn body_sizes(self) -> Option<(Instrument, Instrument)> {
        match self {
            Instrument::HttpServerRequestDuration => Some((
                Instrument::HttpServerRequestBodySize,
                Instrument::HttpServerResponseBodySize,
            )),
            Instrument::HttpClientRequestDuration => Some((
                Instrument::HttpClientRequestBodySize,
                Instrument::HttpClientResponseBodySize,
            )),
            _ => None,
        }
    }
}

/// Most attributes any metric has.
pub const MAX_METRIC_ATTRIBUTES: usize = 7;

/// A metric attribute's value, owned so that it can key a series; building
/// one allocates nothing.
#[derive(Debug, Clone, Eq)]
pub enum MetricValue {
    Str(&'static str),
    Text(ShortString),
    Int(i64),
    Ip(IpAddr),
    /// An HTTP status code as `error.type` has it: text (`"503"`).
    Status(u16),
    /// Not known for this span: OTLP leaves the attribute out, Prometheus
    /// writes an empty label.
    Absent,
}

/// The values of an instrument's attributes, in [`Instrument::attribute_names`] order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricAttributes {
    pub instrument: Instrument,
    values: [MetricValue; MAX_METRIC_ATTRIBUTES],
}

/// Compares a series key per span: the constant texts (methods, schemes,
/// systems) are nearly always the same static string, told apart without a
/// byte comparison.
impl PartialEq for MetricValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (MetricValue::Str(a), MetricValue::Str(b)) => std::ptr::eq(*a, *b) || a == b,
            (MetricValue::Text(a), MetricValue::Text(b)) => a == b,
            (MetricValue::Int(a), MetricValue::Int(b)) => a == b,
            (MetricValue::Ip(a), MetricValue::Ip(b)) => a == b,
            (MetricValue::Status(a), MetricValue::Status(b)) => a == b,
            (MetricValue::Absent, MetricValue::Absent) => true,
            _ => false,
        }
    }
}

/// By content, as [`PartialEq`] compares.
impl Hash for MetricValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            MetricValue::Str(s) => s.hash(state),
            MetricValue::Text(s) => s.hash(state),
            MetricValue::Int(i) => i.hash(state),
            MetricValue::Ip(ip) => ip.hash(state),
            MetricValue::Status(code) => code.hash(state),
            MetricValue::Absent => {}
        }
    }
}

impl MetricValue {
    /// As text (a Prometheus label); empty when absent.
    pub fn text(&self) -> String {
        match self {
            MetricValue::Str(s) => (*s).to_string(),
            MetricValue::Text(s) => s.to_string(),
            MetricValue::Int(i) => i.to_string(),
            MetricValue::Ip(ip) => ip.to_string(),
            MetricValue::Status(code) => code.to_string(),
            MetricValue::Absent => String::new(),
        }
    }
}

impl MetricAttributes {
    /// Each attribute's name with its value.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &MetricValue)> {
        self.instrument
            .attribute_names()
            .iter()
            .copied()
            .zip(self.values.iter())
    }
}

/// An instrument's attribute values, the slots past its own left absent.
fn values<const N: usize>(given: [MetricValue; N]) -> [MetricValue; MAX_METRIC_ATTRIBUTES] {
    let mut given = given.into_iter();
    std::array::from_fn(|_| given.next().unwrap_or(MetricValue::Absent))
}

fn text(value: &Option<ShortString>) -> MetricValue {
    value.clone().map_or(MetricValue::Absent, MetricValue::Text)
}

/// The histogram a span's duration goes to, with its attributes (the body
/// sizes of an HTTP request have the same, see [`measurements`]); the
/// service is the resource's, not an attribute here. None for a database's
/// own (server) spans: `db.client.operation.duration` is the client's.
pub fn metric_attributes(span: &Span) -> Option<MetricAttributes> {
    let r = &span.request;
    let server = r.kind == SpanKind::Server;
    Some(match &r.operation {
        Operation::Http(http) => {
            let common = [
                MetricValue::Str(http_method(&http.method)),
                MetricValue::Text(span.route.clone().unwrap_or_default()),
                MetricValue::Int(i64::from(http.status)),
                if http_error(r.kind, http.status) {
                    MetricValue::Status(http.status)
                } else {
                    MetricValue::Absent
                },
                MetricValue::Str(url_scheme(r)),
            ];
            if server {
                MetricAttributes {
                    instrument: Instrument::HttpServerRequestDuration,
                    values: values(common),
                }
            } else {
                let [method, route, status, error, scheme] = common;
                let address = match client_server_address(r, http) {
                    ServerAddress::Named(host) => MetricValue::Text(host.into()),
                    ServerAddress::Ip(ip) => MetricValue::Ip(ip),
                };
                MetricAttributes {
                    instrument: Instrument::HttpClientRequestDuration,
                    values: values([
                        method,
                        route,
                        status,
                        error,
                        scheme,
                        address,
                        MetricValue::Int(i64::from(r.conn.remote_port)),
                    ]),
                }
            }
        }
        Operation::Rpc(rpc) => MetricAttributes {
            instrument: if server {
                Instrument::RpcServerDuration
            } else {
                Instrument::RpcClientDuration
            },
            values: values([
                MetricValue::Str(rpc.system),
                MetricValue::Text(rpc.service.clone()),
                MetricValue::Text(rpc.method.clone()),
                rpc.status_code
                    .map_or(MetricValue::Absent, |c| MetricValue::Int(i64::from(c))),
            ]),
        },
        Operation::Sql(_) | Operation::Redis(_) if server => return None,
        Operation::Sql(sql) => MetricAttributes {
            instrument: Instrument::DbClientOperationDuration,
            values: values([
                MetricValue::Str(sql.system),
                sql.operation.map_or(MetricValue::Absent, MetricValue::Str),
                text(&sql.collection),
                text(&sql.namespace),
                text(&sql.error_code),
                text(&sql.error_code),
                MetricValue::Int(i64::from(r.conn.endpoints(r.kind).1)),
            ]),
        },
        Operation::Redis(redis) => MetricAttributes {
            instrument: Instrument::DbClientOperationDuration,
            values: values([
                MetricValue::Str(DB_SYSTEM_REDIS),
                MetricValue::Text(redis.command.clone()),
                MetricValue::Absent,
                text(&redis.database),
                text(&redis.error),
                text(&redis.error),
                MetricValue::Int(i64::from(r.conn.endpoints(r.kind).1)),
            ]),
        },
        Operation::Kafka(kafka) => MetricAttributes {
            instrument: match kafka.kind {
                KafkaOperationKind::Produce => Instrument::MessagingPublishDuration,
                KafkaOperationKind::Fetch => Instrument::MessagingProcessDuration,
            },
            values: values([
                MetricValue::Str(MESSAGING_SYSTEM_KAFKA),
                text(&kafka.topic),
                text(&kafka.error),
            ]),
        },
    })
}

/// What a span records, each with the attributes [`metric_attributes`] gave:
/// its duration, and for an HTTP request its request and response body sizes.
pub fn measurements(span: &Span, duration: Instrument) -> impl Iterator<Item = (Instrument, f64)> {
    let sizes = duration
        .body_sizes()
        .zip(span.request.operation.http())
        .map(|((request, response), http)| {
            [
                (request, http.request_body_bytes as f64),
                (response, http.response_body_bytes as f64),
            ]
        });
    std::iter::once((duration, span.duration_seconds())).chain(sizes.into_iter().flatten())
}

/// The resource of a process's telemetry, the same for OTLP and Prometheus's
/// `target_info`: `service.name`, `service.namespace` (when set),
/// `service.instance.id`, `process.pid` (when `with_pid`), `host.name`,
/// `host.id`, `os.type`, `telemetry.sdk.*` (the language is the process's),
/// the `k8s.*` of a process in a pod, then the agent's
/// `OTEL_RESOURCE_ATTRIBUTES` but for the keys above.
pub fn resource_attributes(
    process: &Resource,
    host: &Host,
    with_pid: bool,
    mut add: impl FnMut(&str, Value<'_>),
) {
    let mut own: Vec<&'static str> = Vec::new();
    let mut put = |key: &'static str, value: Value<'_>| {
        own.push(key);
        add(key, value);
    };
    put(attr::SERVICE_NAME, Value::Str(&process.service_name));
    if !process.service_namespace.is_empty() {
        put(
            attr::SERVICE_NAMESPACE,
            Value::Str(&process.service_namespace),
        );
    }
    put(
        attr::SERVICE_INSTANCE_ID,
        Value::Owned(process.instance_id(host)),
    );
    if with_pid {
        put(attr::PROCESS_PID, Value::Int(i64::from(process.pid.0)));
    }
    put(attr::HOST_NAME, Value::Str(&host.name));
    put(attr::HOST_ID, Value::Str(&host.id));
    put(attr::OS_TYPE, Value::Str(OS_TYPE));
    put(attr::TELEMETRY_SDK_NAME, Value::Str(SDK_NAME));
    put(
        attr::TELEMETRY_SDK_LANGUAGE,
        Value::Str(process.language.as_str()),
    );
    put(attr::TELEMETRY_SDK_VERSION, Value::Str(SDK_VERSION));
    if let Some(k8s) = process.kubernetes.as_deref() {
        for (key, value) in k8s.attributes() {
            put(key, Value::Str(value));
        }
    }
    for (key, value) in process.attributes.iter() {
        // `process.pid` stays out of metrics, whatever the variable says.
        if !own.contains(&key.as_str()) && key != attr::PROCESS_PID {
            add(key, Value::Str(value));
        }
    }
}

#[cfg(test)]
mod tests;
