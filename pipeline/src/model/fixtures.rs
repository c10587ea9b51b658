//! A finished span for exporter tests: a server `GET /users/42` (HTTP/1.1, from
//! curl, `Host: localhost:8080`) answered 200 with an 11-byte body in 1.5 ms, route
//! `/users/*`, service `svc`, with a sampled remote parent. Tests change the
//! fields they are about.

use std::sync::Arc;

use super::{
    ConnTuple, Host, HttpOperation, HttpVersion, Method, Operation, Pid, Request, Resource,
    RpcOperation, Span, SpanId, SpanKind, Tid, TraceContext, TraceId,
};

pub const START_UNIX_NS: u64 = 1_764_000_000_000_000_000;

pub fn resource(service_name: &str) -> Arc<Resource> {
    Arc::new(Resource {
        service_name: service_name.into(),
        service_namespace: String::new(),
        pid: Pid(77),
        attributes: Arc::from([]),
        kubernetes: None,
        language: Default::default(),
    })
}

/// The machine of every test resource.
pub fn host() -> Host {
    Host {
        name: "host1".into(),
        id: "4c2e3e63f7c3b3b3".into(),
    }
}

pub fn span() -> Span {
    Span {
        request: Request {
            kind: SpanKind::Server,
            pid: Pid(77),
            tid: Tid(78),
            conn: ConnTuple {
                local: "127.0.0.1".parse().unwrap(),
                local_port: 8080,
                remote: "127.0.0.2".parse().unwrap(),
                remote_port: 40000,
            },
            tls: false,
            start_mono_ns: 0,
            end_mono_ns: 0,
            operation: Operation::Http(HttpOperation {
                method: Method::Get.into(),
                path: "/users/42".into(),
                status: 200,
                version: HttpVersion::Http11,
                host: Some("localhost:8080".into()),
                user_agent: Some("curl/8.5.0".into()),
                request_body_bytes: 0,
                response_body_bytes: 11,
            }),
            context: TraceContext {
                trace_id: TraceId([0xab; 16]),
                span_id: SpanId([0x01; 8]),
                parent: Some(SpanId([0x02; 8])),
                parent_sampled: Some(true),
            },
            resource: resource("svc"),
        },
        route: Some("/users/*".into()),
        start_unix_ns: START_UNIX_NS,
        end_unix_ns: START_UNIX_NS + 1_500_000,
    }
}

/// The HTTP part of a span made from [`span`], to change.
pub fn http(span: &mut Span) -> &mut HttpOperation {
    match &mut span.request.operation {
        Operation::Http(http) => http,
        Operation::Rpc(rpc) => &mut rpc.http,
        Operation::Redis(_) | Operation::Kafka(_) | Operation::Sql(_) => {
            panic!("not an HTTP span")
        }
    }
}

/// Makes a span a gRPC call, carried by its HTTP request.
pub fn rpc(span: &mut Span, service: &str, method: &str, status_code: Option<u32>) {
    let http = self::http(span).clone();
    span.request.operation = Operation::Rpc(Box::new(RpcOperation {
        system: "grpc",
        service: service.into(),
        method: method.into(),
        status_code,
        http,
    }));
}
