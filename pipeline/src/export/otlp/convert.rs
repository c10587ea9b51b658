//! Our spans as the SDK's `SpanData`, with the kernel's timestamps and the
//! pipeline's own ids (the SDK's tracer could not take either).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, SpanKind as OtelSpanKind, Status, TraceFlags,
    TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

use crate::model::{self, Span, SpanKind};
use crate::semconv::{self, attributes as attr};

/// The instrumentation scope of every span and metric we emit.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("beyla")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Resource keys the agent sets itself; OTEL_RESOURCE_ATTRIBUTES cannot
/// override them (OTEL_SERVICE_NAME and the discovery entries name services).
const OWN_KEYS: [&str; 3] = [
    attr::SERVICE_NAME,
    attr::SERVICE_NAMESPACE,
    attr::PROCESS_PID,
];

/// `service.name`, `service.namespace` when set, `process.pid` when
/// `with_pid` (traces: one resource per process; metrics: per service), the
/// agent's OTEL_RESOURCE_ATTRIBUTES, and `telemetry.sdk.*`.
pub fn resource(process: &model::Resource, with_pid: bool) -> Resource {
    let extra = process
        .attributes
        .iter()
        .filter(|(key, _)| !OWN_KEYS.contains(&key.as_str()))
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()));
    let own = [
        (!process.service_namespace.is_empty())
            .then(|| KeyValue::new(attr::SERVICE_NAMESPACE, process.service_namespace.clone())),
        with_pid.then(|| KeyValue::new(attr::PROCESS_PID, i64::from(process.pid.0))),
    ];
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_service_name(process.service_name.clone())
        .with_attributes(extra.chain(own.into_iter().flatten()))
        .build()
}

pub fn unix_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// An attribute as the SDK takes it.
pub fn key_value(name: &'static str, value: semconv::Value<'_>) -> KeyValue {
    match value {
        semconv::Value::Str(s) => KeyValue::new(name, s.to_string()),
        semconv::Value::Int(i) => KeyValue::new(name, i),
        semconv::Value::Ip(ip) => KeyValue::new(name, ip.to_string()),
    }
}

pub fn span_data(span: &Span, scope: &InstrumentationScope) -> SpanData {
    let r = &span.request;
    let ctx = &r.context;
    let span_context = SpanContext::new(
        OtelTraceId::from_bytes(ctx.trace_id.0),
        OtelSpanId::from_bytes(ctx.span_id.0),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let mut attributes = Vec::new();
    semconv::span_attributes(span, |name, value| {
        attributes.push(key_value(name, value));
    });
    SpanData {
        span_context,
        parent_span_id: ctx
            .parent
            .map_or(OtelSpanId::INVALID, |p| OtelSpanId::from_bytes(p.0)),
        // A server's parent comes from the caller's traceparent header; a
        // client's is the server span of the same process.
        parent_span_is_remote: ctx.parent.is_some() && r.kind == SpanKind::Server,
        span_kind: match r.kind {
            SpanKind::Server => OtelSpanKind::Server,
            SpanKind::Client => OtelSpanKind::Client,
        },
        name: Cow::Owned(semconv::span_name(span)),
        start_time: unix_ns(span.start_unix_ns),
        end_time: unix_ns(span.end_unix_ns),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if semconv::is_error(span) {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {

    use opentelemetry::{Key, Value};

    use super::*;
    use crate::model::{fixtures, Pid, SpanId};
    use std::sync::Arc;

    pub fn span(kind: SpanKind, status: u16, service: &str, n: u8) -> Span {
        let mut span = fixtures::span();
        span.request.kind = kind;
        fixtures::http(&mut span).status = status;
        span.request.conn.remote = "10.0.0.2".parse().unwrap();
        fixtures::http(&mut span).path = format!("/users/{n}").into();
        span.request.context.span_id = SpanId([n; 8]);
        span.request.resource = fixtures::resource(service);
        span
    }

    fn attr(d: &SpanData, key: &str) -> Value {
        d.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .unwrap_or_else(|| panic!("no attribute {key}"))
            .value
            .clone()
    }

    #[test]
    fn server_span_field_by_field() {
        let d = span_data(&span(SpanKind::Server, 200, "svc", 1), &scope());
        assert_eq!(
            d.span_context.trace_id().to_string(),
            "abababababababababababababababab"
        );
        assert_eq!(d.span_context.span_id().to_string(), "0101010101010101");
        assert!(d.span_context.is_sampled());
        assert!(!d.span_context.is_remote());
        assert_eq!(d.parent_span_id.to_string(), "0202020202020202");
        assert!(d.parent_span_is_remote);
        assert_eq!(d.span_kind, OtelSpanKind::Server);
        assert_eq!(d.name, "GET /users/*");
        assert_eq!(
            d.start_time.duration_since(UNIX_EPOCH).unwrap().as_nanos(),
            1_764_000_000_000_000_000
        );
        assert_eq!(
            d.end_time.duration_since(UNIX_EPOCH).unwrap().as_nanos(),
            1_764_000_000_001_500_000
        );
        assert_eq!(d.attributes.len(), 7);
        assert_eq!(attr(&d, "http.request.method"), Value::from("GET"));
        assert_eq!(attr(&d, "url.path"), Value::from("/users/1"));
        assert_eq!(attr(&d, "http.route"), Value::from("/users/*"));
        assert_eq!(attr(&d, "http.response.status_code"), Value::I64(200));
        assert_eq!(attr(&d, "server.address"), Value::from("127.0.0.1"));
        assert_eq!(attr(&d, "server.port"), Value::I64(8080));
        assert_eq!(attr(&d, "client.address"), Value::from("10.0.0.2"));
        assert_eq!(d.status, Status::Unset);
        assert_eq!(d.instrumentation_scope.name(), "beyla");
    }

    #[test]
    fn client_span_swaps_endpoints_and_has_local_parent() {
        let mut s = span(SpanKind::Client, 404, "svc", 3);
        s.request.context.parent = None;
        let d = span_data(&s, &scope());
        assert_eq!(d.span_kind, OtelSpanKind::Client);
        assert_eq!(d.parent_span_id, OtelSpanId::INVALID);
        assert!(!d.parent_span_is_remote);
        assert_eq!(attr(&d, "server.address"), Value::from("10.0.0.2"));
        assert_eq!(attr(&d, "server.port"), Value::I64(40000));
        assert_eq!(attr(&d, "client.address"), Value::from("127.0.0.1"));
        assert_eq!(d.status, Status::error(""));
    }

    #[test]
    fn resource_has_service_pid_sdk_and_the_agents_attributes() {
        let process = model::Resource {
            service_name: "checkout".into(),
            service_namespace: "shop".into(),
            pid: Pid(42),
            attributes: Arc::from([
                ("deployment.environment".to_string(), "prod".to_string()),
                ("service.name".to_string(), "ignored".to_string()),
            ]),
        };
        let r = resource(&process, true);
        let get = |key: &'static str| r.get(&Key::from_static_str(key));
        assert_eq!(get("service.name"), Some(Value::from("checkout")));
        assert_eq!(get("service.namespace"), Some(Value::from("shop")));
        assert_eq!(get("process.pid"), Some(Value::I64(42)));
        assert_eq!(get("deployment.environment"), Some(Value::from("prod")));
        assert_eq!(get("telemetry.sdk.language"), Some(Value::from("rust")));
        assert!(get("telemetry.sdk.name").is_some());
        assert!(get("telemetry.sdk.version").is_some());
        let r = resource(&process, false);
        assert_eq!(r.get(&Key::from_static_str("process.pid")), None);
    }
}
