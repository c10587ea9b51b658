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

/// The instrumentation scope of every span and metric we emit.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("beyla")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Resource keys the agent sets itself; OTEL_RESOURCE_ATTRIBUTES cannot
/// override them (OTEL_SERVICE_NAME and the discovery entries name services).
const OWN_KEYS: [&str; 4] = [
    "service.name",
    "service.namespace",
    "process.pid",
    "service.instance.id",
];

/// `service.name`, `service.namespace` when set, `process.pid` and the
/// process's `k8s.*` attributes with its `service.instance.id` when `with_pid`
/// (traces: one resource per process; metrics: per service), the agent's
/// OTEL_RESOURCE_ATTRIBUTES, and `telemetry.sdk.*`.
pub fn resource(process: &model::Resource, with_pid: bool) -> Resource {
    let extra = process
        .attributes
        .iter()
        .filter(|(key, _)| !OWN_KEYS.contains(&key.as_str()))
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()));
    let own = [
        (!process.service_namespace.is_empty())
            .then(|| KeyValue::new("service.namespace", process.service_namespace.clone())),
        with_pid.then(|| KeyValue::new("process.pid", i64::from(process.pid.0))),
    ];
    let kubernetes = process.kubernetes.as_deref().filter(|_| with_pid);
    let k8s = kubernetes.into_iter().flat_map(|k8s| {
        k8s.attributes()
            .map(|(key, value)| KeyValue::new(key, value.to_string()))
            .chain([KeyValue::new("service.instance.id", k8s.instance_id())])
    });
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_service_name(process.service_name.clone())
        .with_attributes(extra.chain(own.into_iter().flatten()).chain(k8s))
        .build()
}

pub fn unix_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// The HTTP semantic conventions: 5xx is an error for a server, any 4xx or 5xx
/// for a client; otherwise the status stays unset.
pub fn status(kind: SpanKind, code: u16) -> Status {
    let error = match kind {
        SpanKind::Server => code >= 500,
        SpanKind::Client => code >= 400,
    };
    if error {
        Status::error("")
    } else {
        Status::Unset
    }
}

pub fn span_data(span: &Span, scope: &InstrumentationScope) -> SpanData {
    let r = &span.request;
    let ctx = &r.context;
    let (server, server_port, client) = r.conn.endpoints(r.kind);
    let span_context = SpanContext::new(
        OtelTraceId::from_bytes(ctx.trace_id.0),
        OtelSpanId::from_bytes(ctx.span_id.0),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
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
        name: Cow::Owned(span.name()),
        start_time: unix_ns(span.start_unix_ns),
        end_time: unix_ns(span.end_unix_ns),
        attributes: [
            Some(KeyValue::new("http.request.method", r.method)),
            Some(KeyValue::new("url.path", r.path.to_string())),
            span.route
                .as_deref()
                .map(|route| KeyValue::new("http.route", route.to_owned())),
            Some(KeyValue::new(
                "http.response.status_code",
                i64::from(r.status),
            )),
            Some(KeyValue::new("server.address", server.to_string())),
            Some(KeyValue::new("server.port", i64::from(server_port))),
            Some(KeyValue::new("client.address", client.to_string())),
            r.rpc
                .as_ref()
                .map(|c| KeyValue::new("rpc.system", c.system)),
            r.rpc
                .as_ref()
                .map(|c| KeyValue::new("rpc.service", c.service.to_string())),
            r.rpc
                .as_ref()
                .map(|c| KeyValue::new("rpc.method", c.method.to_string())),
            r.rpc
                .as_ref()
                .and_then(|c| c.status_code)
                .map(|code| KeyValue::new("rpc.grpc.status_code", i64::from(code))),
        ]
        .into_iter()
        .flatten()
        .collect(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: status(r.kind, r.status),
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
        span.request.status = status;
        span.request.conn.remote = "10.0.0.2".parse().unwrap();
        span.request.path = format!("/users/{n}").into();
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
    fn error_status_follows_http_semconv() {
        assert_eq!(status(SpanKind::Server, 499), Status::Unset);
        assert_eq!(status(SpanKind::Server, 500), Status::error(""));
        assert_eq!(status(SpanKind::Server, 404), Status::Unset);
        assert_eq!(status(SpanKind::Client, 399), Status::Unset);
        assert_eq!(status(SpanKind::Client, 400), Status::error(""));
        assert_eq!(status(SpanKind::Client, 503), Status::error(""));
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
            kubernetes: None,
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
        let r = resource(&process, true);
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
        let shared = resource(&process, false);
        assert_eq!(shared.get(&Key::from_static_str("k8s.pod.name")), None);
    }
}
