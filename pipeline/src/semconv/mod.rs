//! The OpenTelemetry semantic conventions, decided once for every exporter:
//! per operation, the span's name, kind, error status and attributes, and the
//! duration metric it feeds with that metric's attributes. The printer, OTLP
//! traces, OTLP metrics and Prometheus all ask here.

pub mod attributes;

use std::net::IpAddr;

use crate::model::{
    HttpMethod, KafkaOperation, KafkaOperationKind, Operation, ShortString, Span, SpanKind,
};
use attributes as attr;

/// An attribute's value, borrowed from the span where it can be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Ip(IpAddr),
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

/// The span's name: `{service}/{method}` for an RPC; for HTTP
/// `{method} {route}`, or `{method}` without a route, with `HTTP` for a
/// method the conventions do not know; for SQL
/// `{operation} {table}`, with the database for want of a table, the
/// operation alone, or the database system when the statement is not known;
/// the command for Redis; `{topic} {operation type}` for Kafka, or the type
/// alone without a topic.
pub fn span_name(span: &Span) -> String {
    match &span.request.operation {
        Operation::Rpc(rpc) => format!("{}/{}", rpc.service, rpc.method),
        Operation::Http(http) => match &span.route {
            Some(route) => format!("{} {route}", span_name_method(&http.method)),
            None => span_name_method(&http.method).to_string(),
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

/// Whether the span is an error (its status): for HTTP, and the HTTP/2
/// request of a gRPC call, 5xx for a server and any 4xx or 5xx for a client;
/// an error answer for SQL, Redis and Kafka.
pub fn is_error(span: &Span) -> bool {
    let Some(http) = span.request.operation.http() else {
        return error_type(&span.request.operation).is_some();
    };
    match span.request.kind {
        SpanKind::Server => http.status >= 500,
        SpanKind::Client => http.status >= 400,
    }
}

/// Every attribute of the span, in a stable order.
pub fn span_attributes(span: &Span, mut add: impl FnMut(&'static str, Value<'_>)) {
    let r = &span.request;
    let (server, server_port, client) = r.conn.endpoints(r.kind);
    if let Some(http) = r.operation.http() {
        add(
            attr::HTTP_REQUEST_METHOD,
            Value::Str(http_method(&http.method)),
        );
        if let HttpMethod::Other(original) = &http.method {
            add(attr::HTTP_REQUEST_METHOD_ORIGINAL, Value::Str(original));
        }
        add(attr::URL_PATH, Value::Str(&http.path));
        if let Some(route) = &span.route {
            add(attr::HTTP_ROUTE, Value::Str(route));
        }
        add(
            attr::HTTP_RESPONSE_STATUS_CODE,
            Value::Int(i64::from(http.status)),
        );
    }
    add(attr::SERVER_ADDRESS, Value::Ip(server));
    add(attr::SERVER_PORT, Value::Int(i64::from(server_port)));
    add(attr::CLIENT_ADDRESS, Value::Ip(client));
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

/// A duration histogram; every one is in seconds, with the same buckets.
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
}

impl Instrument {
    pub const ALL: [Instrument; 7] = [
        Instrument::HttpServerRequestDuration,
        Instrument::HttpClientRequestDuration,
        Instrument::RpcServerDuration,
        Instrument::RpcClientDuration,
        Instrument::DbClientOperationDuration,
        Instrument::MessagingPublishDuration,
        Instrument::MessagingProcessDuration,
    ];

    /// The OpenTelemetry name; Prometheus's is it with underscores and `_seconds`.
    pub fn name(self) -> &'static str {
        match self {
            Instrument::HttpServerRequestDuration => "http.server.request.duration",
            Instrument::HttpClientRequestDuration => "http.client.request.duration",
            Instrument::RpcServerDuration => "rpc.server.duration",
            Instrument::RpcClientDuration => "rpc.client.duration",
            Instrument::DbClientOperationDuration => "db.client.operation.duration",
            Instrument::MessagingPublishDuration => "messaging.publish.duration",
            Instrument::MessagingProcessDuration => "messaging.process.duration",
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
        }
    }

    pub const UNIT: &'static str = "s";

    /// The instrument's place in [`Instrument::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The names of the attributes [`metric_attributes`] gives, in its order.
    pub fn attribute_names(self) -> &'static [&'static str] {
        match self {
            Instrument::HttpServerRequestDuration | Instrument::HttpClientRequestDuration => &[
                attr::HTTP_REQUEST_METHOD,
                attr::HTTP_ROUTE,
                attr::HTTP_RESPONSE_STATUS_CODE,
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
}

/// Most attributes any metric has.
pub const MAX_METRIC_ATTRIBUTES: usize = 7;

/// A metric attribute's value, owned so that it can key a series; building
/// one allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetricValue {
    Str(&'static str),
    Text(ShortString),
    Int(i64),
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

/// The histogram a span's duration goes to, with its attributes; the
/// service is the resource's, not an attribute here. None for a database's
/// own (server) spans: `db.client.operation.duration` is the client's.
pub fn metric_attributes(span: &Span) -> Option<MetricAttributes> {
    let r = &span.request;
    let server = r.kind == SpanKind::Server;
    Some(match &r.operation {
        Operation::Http(http) => MetricAttributes {
            instrument: if server {
                Instrument::HttpServerRequestDuration
            } else {
                Instrument::HttpClientRequestDuration
            },
            values: values([
                MetricValue::Str(http_method(&http.method)),
                MetricValue::Text(span.route.clone().unwrap_or_default()),
                MetricValue::Int(i64::from(http.status)),
            ]),
        },
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

#[cfg(test)]
mod tests;
