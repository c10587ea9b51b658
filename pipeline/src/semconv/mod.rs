//! The OpenTelemetry semantic conventions, decided once for every exporter:
//! per operation, the span's name, kind, error status and attributes, and the
//! duration metric it feeds with that metric's attributes. The printer, OTLP
//! traces, OTLP metrics and Prometheus all ask here.

pub mod attributes;

use std::net::IpAddr;

use crate::model::{Operation, ShortString, Span, SpanKind};
use attributes as attr;

/// An attribute's value, borrowed from the span where it can be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Ip(IpAddr),
}

/// The span's name: `{service}/{method}` for an RPC; for HTTP
/// `{method} {route}`, or `{method}` without a route.
pub fn span_name(span: &Span) -> String {
    match &span.request.operation {
        Operation::Rpc(rpc) => format!("{}/{}", rpc.service, rpc.method),
        Operation::Http(http) => match &span.route {
            Some(route) => format!("{} {route}", http.method),
            None => http.method.to_string(),
        },
    }
}

/// Whether the span is an error (its status): for HTTP, and the HTTP/2
/// request of a gRPC call, 5xx for a server and any 4xx or 5xx for a client.
pub fn is_error(span: &Span) -> bool {
    let Some(http) = span.request.operation.http() else {
        return false;
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
        add(attr::HTTP_REQUEST_METHOD, Value::Str(http.method));
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
    if let Operation::Rpc(rpc) = &r.operation {
        add(attr::RPC_SYSTEM, Value::Str(rpc.system));
        add(attr::RPC_SERVICE, Value::Str(&rpc.service));
        add(attr::RPC_METHOD, Value::Str(&rpc.method));
        if let Some(code) = rpc.status_code {
            add(attr::RPC_GRPC_STATUS_CODE, Value::Int(i64::from(code)));
        }
    }
}

/// A duration histogram; every one is in seconds, with the same buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instrument {
    HttpServerRequestDuration,
    HttpClientRequestDuration,
    RpcServerDuration,
    RpcClientDuration,
}

impl Instrument {
    pub const ALL: [Instrument; 4] = [
        Instrument::HttpServerRequestDuration,
        Instrument::HttpClientRequestDuration,
        Instrument::RpcServerDuration,
        Instrument::RpcClientDuration,
    ];

    /// The OpenTelemetry name; Prometheus's is it with underscores and `_seconds`.
    pub fn name(self) -> &'static str {
        match self {
            Instrument::HttpServerRequestDuration => "http.server.request.duration",
            Instrument::HttpClientRequestDuration => "http.client.request.duration",
            Instrument::RpcServerDuration => "rpc.server.duration",
            Instrument::RpcClientDuration => "rpc.client.duration",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Instrument::HttpServerRequestDuration => "Duration of HTTP server requests",
            Instrument::HttpClientRequestDuration => "Duration of HTTP client requests",
            Instrument::RpcServerDuration => "Duration of RPC (gRPC) server calls",
            Instrument::RpcClientDuration => "Duration of RPC (gRPC) client calls",
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
        }
    }
}

/// Most attributes any metric has.
pub const MAX_METRIC_ATTRIBUTES: usize = 4;

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

/// The histogram a span's duration goes to, with its attributes; the
/// service is the resource's, not an attribute here.
pub fn metric_attributes(span: &Span) -> MetricAttributes {
    let r = &span.request;
    let server = r.kind == SpanKind::Server;
    match &r.operation {
        Operation::Http(http) => MetricAttributes {
            instrument: if server {
                Instrument::HttpServerRequestDuration
            } else {
                Instrument::HttpClientRequestDuration
            },
            values: [
                MetricValue::Str(http.method),
                MetricValue::Text(span.route.clone().unwrap_or_default()),
                MetricValue::Int(i64::from(http.status)),
                MetricValue::Absent,
            ],
        },
        Operation::Rpc(rpc) => MetricAttributes {
            instrument: if server {
                Instrument::RpcServerDuration
            } else {
                Instrument::RpcClientDuration
            },
            values: [
                MetricValue::Str(rpc.system),
                MetricValue::Text(rpc.service.clone()),
                MetricValue::Text(rpc.method.clone()),
                rpc.status_code
                    .map_or(MetricValue::Absent, |c| MetricValue::Int(i64::from(c))),
            ],
        },
    }
}

#[cfg(test)]
mod tests;
