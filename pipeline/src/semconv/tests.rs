use super::*;
use crate::model::fixtures;

fn attributes(span: &Span) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    span_attributes(span, |name, value| {
        let text = match value {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Ip(ip) => ip.to_string(),
        };
        out.push((name, text));
    });
    out
}

#[test]
fn http_span_name_has_the_route_when_there_is_one() {
    let mut span = fixtures::span();
    assert_eq!(span_name(&span), "GET /users/*");
    span.route = None;
    assert_eq!(span_name(&span), "GET");
}

#[test]
fn grpc_span_is_named_after_service_and_method_and_carries_rpc_attributes() {
    let mut span = fixtures::span();
    span.route = None;
    fixtures::rpc(&mut span, "demo.v1.Greeter", "SayHello", Some(5));
    assert_eq!(span_name(&span), "demo.v1.Greeter/SayHello");
    assert_eq!(
        attributes(&span),
        [
            ("http.request.method", "GET"),
            ("url.path", "/users/42"),
            ("http.response.status_code", "200"),
            ("server.address", "127.0.0.1"),
            ("server.port", "8080"),
            ("client.address", "127.0.0.2"),
            ("rpc.system", "grpc"),
            ("rpc.service", "demo.v1.Greeter"),
            ("rpc.method", "SayHello"),
            ("rpc.grpc.status_code", "5"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
}

#[test]
fn client_spans_name_the_remote_end_as_the_server() {
    let mut span = fixtures::span();
    span.request.kind = SpanKind::Client;
    let attrs = attributes(&span);
    assert!(attrs.contains(&("server.address", "127.0.0.2".into())));
    assert!(attrs.contains(&("server.port", "40000".into())));
    assert!(attrs.contains(&("client.address", "127.0.0.1".into())));
}

#[test]
fn error_status_follows_the_http_conventions() {
    for (kind, status, error) in [
        (SpanKind::Server, 499, false),
        (SpanKind::Server, 500, true),
        (SpanKind::Server, 404, false),
        (SpanKind::Client, 399, false),
        (SpanKind::Client, 400, true),
        (SpanKind::Client, 503, true),
    ] {
        let mut span = fixtures::span();
        span.request.kind = kind;
        fixtures::http(&mut span).status = status;
        assert_eq!(is_error(&span), error, "{kind:?} {status}");
    }
}

#[test]
fn metric_attributes_pick_the_instrument_and_its_labels() {
    let mut span = fixtures::span();
    let m = metric_attributes(&span);
    assert_eq!(m.instrument, Instrument::HttpServerRequestDuration);
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![
            ("http.request.method", &MetricValue::Str("GET")),
            ("http.route", &MetricValue::Text("/users/*".into())),
            ("http.response.status_code", &MetricValue::Int(200)),
        ]
    );
    span.request.kind = SpanKind::Client;
    fixtures::rpc(&mut span, "demo.v1.Greeter", "SayHello", None);
    let m = metric_attributes(&span);
    assert_eq!(m.instrument, Instrument::RpcClientDuration);
    assert_eq!(
        m.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        Instrument::RpcClientDuration.attribute_names()
    );
    assert_eq!(
        m.iter().last(),
        Some(("rpc.grpc.status_code", &MetricValue::Absent))
    );
}

#[test]
fn instruments_are_listed_in_index_order() {
    for (i, instrument) in Instrument::ALL.iter().enumerate() {
        assert_eq!(instrument.index(), i);
    }
}
