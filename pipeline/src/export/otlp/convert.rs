//! Our spans as the SDK's `SpanData`, with the kernel's timestamps and the
//! pipeline's own ids (the SDK's tracer could not take either).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, SpanKind as OtelSpanKind, Status, TraceFlags,
    TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, Key, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

use crate::model::{self, Host, Span, SpanKind};
use crate::semconv::{self, OtelKind};

/// The instrumentation scope of every span and metric we emit.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(semconv::SDK_NAME)
        .with_version(semconv::SDK_VERSION)
        .with_schema_url(semconv::SCHEMA_URL)
        .build()
}

/// The resource of a process's telemetry, as [`semconv::resource_attributes`]
/// lists it, with the conventions' schema URL. `with_pid`: traces have one
/// resource per process; metrics leave `process.pid` out (it is in
/// `service.instance.id`).
pub fn resource(process: &model::Resource, host: &Host, with_pid: bool) -> Resource {
    let mut attributes = Vec::new();
    semconv::resource_attributes(process, host, with_pid, |key, value| {
        attributes.push(key_value(key.to_string(), value));
    });
    Resource::builder_empty()
        .with_schema_url(attributes, semconv::SCHEMA_URL)
        .build()
}

pub fn unix_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// An attribute as the SDK takes it.
pub fn key_value(name: impl Into<Key>, value: semconv::Value<'_>) -> KeyValue {
    match value {
        semconv::Value::Str(s) => KeyValue::new(name, s.to_string()),
        semconv::Value::Int(i) => KeyValue::new(name, i),
        semconv::Value::Ip(ip) => KeyValue::new(name, ip.to_string()),
        semconv::Value::Owned(s) => KeyValue::new(name, s),
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
        // A server's parent is its caller's (a traceparent header, or a traced
        // client on this machine); a client's is the server span of its process.
        parent_span_is_remote: ctx.parent.is_some() && r.kind == SpanKind::Server,
        span_kind: match semconv::span_kind(span) {
            OtelKind::Server => OtelSpanKind::Server,
            OtelKind::Client => OtelSpanKind::Client,
            OtelKind::Producer => OtelSpanKind::Producer,
            OtelKind::Consumer => OtelSpanKind::Consumer,
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
        assert_eq!(d.attributes.len(), 13);
        assert_eq!(attr(&d, "http.request.method"), Value::from("GET"));
        assert_eq!(attr(&d, "url.path"), Value::from("/users/1"));
        assert_eq!(attr(&d, "url.scheme"), Value::from("http"));
        assert_eq!(attr(&d, "http.route"), Value::from("/users/*"));
        assert_eq!(attr(&d, "http.response.status_code"), Value::I64(200));
        assert_eq!(attr(&d, "network.protocol.version"), Value::from("1.1"));
        assert_eq!(attr(&d, "server.address"), Value::from("127.0.0.1"));
        assert_eq!(attr(&d, "server.port"), Value::I64(8080));
        assert_eq!(attr(&d, "client.address"), Value::from("10.0.0.2"));
        assert_eq!(attr(&d, "client.port"), Value::I64(40000));
        assert_eq!(attr(&d, "user_agent.original"), Value::from("curl/8.5.0"));
        assert_eq!(attr(&d, "http.request.body.size"), Value::I64(0));
        assert_eq!(attr(&d, "http.response.body.size"), Value::I64(11));
        assert_eq!(d.status, Status::Unset);
        assert_eq!(d.instrumentation_scope.name(), "beyla");
    }

    #[test]
    fn client_span_names_the_url_it_asked_for_and_has_no_parent_here() {
        let mut s = span(SpanKind::Client, 404, "svc", 3);
        s.request.context.parent = None;
        let d = span_data(&s, &scope());
        assert_eq!(d.span_kind, OtelSpanKind::Client);
        assert_eq!(d.parent_span_id, OtelSpanId::INVALID);
        assert!(!d.parent_span_is_remote);
        assert_eq!(d.name, "GET");
        assert_eq!(
            attr(&d, "url.full"),
            Value::from("http://localhost:8080/users/3")
        );
        assert_eq!(attr(&d, "server.address"), Value::from("localhost"));
        assert_eq!(attr(&d, "server.port"), Value::I64(40000));
        assert_eq!(attr(&d, "error.type"), Value::from("404"));
        for absent in ["url.path", "http.route", "client.address", "client.port"] {
            assert!(
                d.attributes.iter().all(|kv| kv.key.as_str() != absent),
                "{absent} on a client span"
            );
        }
        assert_eq!(d.status, Status::error(""));
    }

    #[test]
    fn resource_has_service_instance_host_sdk_and_the_agents_attributes() {
        let process = model::Resource {
            service_name: "checkout".into(),
            service_namespace: "shop".into(),
            pid: Pid(42),
            attributes: Arc::from([
                ("deployment.environment".to_string(), "prod".to_string()),
                ("service.name".to_string(), "ignored".to_string()),
                ("host.name".to_string(), "ignored".to_string()),
            ]),
            kubernetes: None,
            language: model::Language::Java,
        };
        let r = resource(&process, &fixtures::host(), true);
        let mut all: Vec<(String, String)> = r
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.sort();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            all,
            [
                ("deployment.environment", "prod"),
                ("host.id", "4c2e3e63f7c3b3b3"),
                ("host.name", "host1"),
                ("os.type", "linux"),
                ("process.pid", "42"),
                ("service.instance.id", "host1:42"),
                ("service.name", "checkout"),
                ("service.namespace", "shop"),
                ("telemetry.sdk.language", "java"),
                ("telemetry.sdk.name", "beyla"),
                ("telemetry.sdk.version", version),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(
            r.get(&Key::from_static_str("process.pid")),
            Some(Value::I64(42))
        );
        assert_eq!(
            r.schema_url(),
            Some("https://opentelemetry.io/schemas/1.37.0")
        );
        let r = resource(&process, &fixtures::host(), false);
        assert_eq!(r.get(&Key::from_static_str("process.pid")), None);
        assert_eq!(scope().schema_url(), Some(semconv::SCHEMA_URL));
    }

    #[test]
    fn per_process_resource_has_the_pods_attributes() {
        let mut process = (*fixtures::resource("web")).clone();
        process.kubernetes = Some(Arc::new(model::KubernetesResource {
            namespace: "shop".into(),
            pod_name: "web-0".into(),
            pod_uid: "9f1c".into(),
            container_name: "app".into(),
            node_name: "node-1".into(),
            statefulset_name: Some("web".into()),
            owner_name: "web".into(),
            cluster_name: Some("prod-eu".into()),
            ..Default::default()
        }));
        let r = resource(&process, &fixtures::host(), true);
        let get = |key: &'static str| r.get(&Key::from_static_str(key));
        assert_eq!(get("k8s.namespace.name"), Some(Value::from("shop")));
        assert_eq!(get("k8s.pod.name"), Some(Value::from("web-0")));
        assert_eq!(get("k8s.pod.uid"), Some(Value::from("9f1c")));
        assert_eq!(get("k8s.container.name"), Some(Value::from("app")));
        assert_eq!(get("k8s.node.name"), Some(Value::from("node-1")));
        assert_eq!(get("k8s.statefulset.name"), Some(Value::from("web")));
        assert_eq!(get("k8s.owner.name"), Some(Value::from("web")));
        assert_eq!(get("k8s.cluster.name"), Some(Value::from("prod-eu")));
        assert_eq!(get("k8s.deployment.name"), None);
        assert_eq!(
            get("service.instance.id"),
            Some(Value::from("shop.web-0.app"))
        );
        // Metrics: no pid, the same pod.
        let metrics = resource(&process, &fixtures::host(), false);
        assert_eq!(metrics.get(&Key::from_static_str("process.pid")), None);
        assert_eq!(
            metrics.get(&Key::from_static_str("k8s.pod.name")),
            Some(Value::from("web-0"))
        );
    }
}
