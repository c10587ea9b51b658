use super::*;
use crate::model::{fixtures, HttpVersion};

fn attributes(span: &Span) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    span_attributes(span, |name, value| {
        out.push((name, value.to_string()));
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
fn a_method_the_conventions_do_not_know_is_other_with_its_original() {
    let mut span = fixtures::span();
    fixtures::http(&mut span).method = HttpMethod::from_token("PURGE");
    assert_eq!(span_name(&span), "HTTP /users/*");
    let attrs = attributes(&span);
    assert_eq!(
        attrs[..2],
        [
            ("http.request.method", "_OTHER".to_string()),
            ("http.request.method_original", "PURGE".to_string()),
        ]
    );
    let m = metric_attributes(&span).expect("an HTTP span feeds a metric");
    assert_eq!(
        m.iter().next(),
        Some(("http.request.method", &MetricValue::Str("_OTHER")))
    );
    // Methods are case-sensitive: `get` is not `GET`.
    fixtures::http(&mut span).method = HttpMethod::from_token("get");
    span.route = None;
    assert_eq!(span_name(&span), "HTTP");
    assert!(attributes(&span).contains(&("http.request.method_original", "get".into())));
    fixtures::http(&mut span).method = HttpMethod::from_token("GET");
    assert!(!attributes(&span)
        .iter()
        .any(|(name, _)| *name == "http.request.method_original"));
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
            ("url.scheme", "http"),
            ("http.response.status_code", "200"),
            ("network.protocol.version", "1.1"),
            ("server.address", "127.0.0.1"),
            ("server.port", "8080"),
            ("client.address", "127.0.0.2"),
            ("client.port", "40000"),
            ("user_agent.original", "curl/8.5.0"),
            ("http.request.body.size", "0"),
            ("http.response.body.size", "11"),
            ("rpc.system", "grpc"),
            ("rpc.service", "demo.v1.Greeter"),
            ("rpc.method", "SayHello"),
            ("rpc.grpc.status_code", "5"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
}

#[test]
fn http_server_spans_have_the_servers_attributes() {
    let mut span = fixtures::span();
    span.request.tls = true;
    fixtures::http(&mut span).status = 503;
    assert_eq!(
        attributes(&span),
        [
            ("http.request.method", "GET"),
            ("url.path", "/users/42"),
            ("url.scheme", "https"),
            ("http.route", "/users/*"),
            ("http.response.status_code", "503"),
            ("network.protocol.version", "1.1"),
            ("server.address", "127.0.0.1"),
            ("server.port", "8080"),
            ("client.address", "127.0.0.2"),
            ("client.port", "40000"),
            ("user_agent.original", "curl/8.5.0"),
            ("http.request.body.size", "0"),
            ("http.response.body.size", "11"),
            ("error.type", "503"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
    assert_eq!(span_name(&span), "GET /users/*");
}

#[test]
fn http_client_spans_have_the_url_they_asked_for_and_no_server_side_attributes() {
    let mut span = fixtures::span();
    span.request.kind = SpanKind::Client;
    fixtures::http(&mut span).version = HttpVersion::Http2;
    assert_eq!(
        attributes(&span),
        [
            ("http.request.method", "GET"),
            ("url.full", "http://localhost:8080/users/42"),
            ("http.response.status_code", "200"),
            ("network.protocol.version", "2"),
            ("server.address", "localhost"),
            ("server.port", "40000"),
            ("http.request.body.size", "0"),
            ("http.response.body.size", "11"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
    // A route is the server's: a client span is named after its method alone.
    assert_eq!(span_name(&span), "GET");
    // No Host header: the address and port connected to.
    fixtures::http(&mut span).host = None;
    fixtures::http(&mut span).status = 404;
    let attrs = attributes(&span);
    assert!(attrs.contains(&("url.full", "http://127.0.0.2:40000/users/42".into())));
    assert!(attrs.contains(&("server.address", "127.0.0.2".into())));
    assert!(attrs.contains(&("error.type", "404".into())));
    span.request.conn.remote = "::1".parse().unwrap();
    span.request.conn.remote_port = 443;
    span.request.tls = true;
    assert!(attributes(&span).contains(&("url.full", "https://[::1]/users/42".into())));
}

#[test]
fn server_address_is_the_host_of_the_authority() {
    for (authority, host) in [
        ("shop.example:8443", "shop.example"),
        ("shop.example", "shop.example"),
        ("[2001:db8::1]:8080", "2001:db8::1"),
        ("10.0.0.5", "10.0.0.5"),
    ] {
        let mut span = fixtures::span();
        span.request.kind = SpanKind::Client;
        fixtures::http(&mut span).host = Some(authority.into());
        assert!(
            attributes(&span).contains(&("server.address", host.into())),
            "{authority}"
        );
    }
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
    let m = metric_attributes(&span).expect("an HTTP span feeds a metric");
    assert_eq!(m.instrument, Instrument::HttpServerRequestDuration);
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![
            ("http.request.method", &MetricValue::Str("GET")),
            ("http.route", &MetricValue::Text("/users/*".into())),
            ("http.response.status_code", &MetricValue::Int(200)),
            ("error.type", &MetricValue::Absent),
            ("url.scheme", &MetricValue::Str("http")),
        ]
    );
    assert_eq!(
        measurements(&span, m.instrument).collect::<Vec<_>>(),
        [
            (Instrument::HttpServerRequestDuration, 0.0015),
            (Instrument::HttpServerRequestBodySize, 0.0),
            (Instrument::HttpServerResponseBodySize, 11.0),
        ]
    );
    let mut client = span.clone();
    client.request.kind = SpanKind::Client;
    fixtures::http(&mut client).status = 502;
    let m = metric_attributes(&client).expect("an HTTP client span feeds a metric");
    assert_eq!(m.instrument, Instrument::HttpClientRequestDuration);
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![
            ("http.request.method", &MetricValue::Str("GET")),
            ("http.route", &MetricValue::Text("/users/*".into())),
            ("http.response.status_code", &MetricValue::Int(502)),
            ("error.type", &MetricValue::Status(502)),
            ("url.scheme", &MetricValue::Str("http")),
            ("server.address", &MetricValue::Text("localhost".into())),
            ("server.port", &MetricValue::Int(40000)),
        ]
    );
    assert_eq!(
        measurements(&client, m.instrument)
            .map(|(i, _)| i.name())
            .collect::<Vec<_>>(),
        [
            "http.client.request.duration",
            "http.client.request.body.size",
            "http.client.response.body.size"
        ]
    );
    span.request.kind = SpanKind::Client;
    fixtures::rpc(&mut span, "demo.v1.Greeter", "SayHello", None);
    let m = metric_attributes(&span).expect("a gRPC span feeds a metric");
    assert_eq!(m.instrument, Instrument::RpcClientDuration);
    assert_eq!(
        m.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        Instrument::RpcClientDuration.attribute_names()
    );
    assert_eq!(
        m.iter().last(),
        Some(("rpc.grpc.status_code", &MetricValue::Absent))
    );
    // A gRPC call records its duration only, as in Beyla.
    assert_eq!(measurements(&span, m.instrument).count(), 1);
}

#[test]
fn instruments_are_listed_in_index_order() {
    for (i, instrument) in Instrument::ALL.iter().enumerate() {
        assert_eq!(instrument.index(), i);
    }
}

/// A client span of the fixture made a Redis command.
fn redis_span(command: &str, query: &str, error: Option<&str>) -> Span {
    let mut span = fixtures::span();
    span.route = None;
    span.request.kind = SpanKind::Client;
    span.request.operation = Operation::Redis(crate::model::RedisOperation {
        command: command.into(),
        query: query.into(),
        database: Some("1".into()),
        error: error.map(Into::into),
    });
    span
}

/// A client span of the fixture made a Kafka request.
fn kafka_span(kind: KafkaOperationKind, topic: Option<&str>, error: Option<&str>) -> Span {
    let mut span = fixtures::span();
    span.route = None;
    span.request.kind = SpanKind::Client;
    span.request.operation = Operation::Kafka(KafkaOperation {
        kind,
        topic: topic.map(Into::into),
        partition: Some(0),
        client_id: Some("orders-app".into()),
        offset: (kind == KafkaOperationKind::Fetch).then_some(42),
        error: error.map(Into::into),
    });
    span
}

#[test]
fn redis_spans_are_named_after_the_command_and_carry_db_attributes() {
    let span = redis_span("LPUSH", "LPUSH queue ?", Some("WRONGTYPE"));
    assert_eq!(span_name(&span), "LPUSH");
    assert_eq!(span_kind(&span), OtelKind::Client);
    assert!(is_error(&span));
    assert_eq!(
        attributes(&span),
        [
            ("server.address", "127.0.0.2"),
            ("server.port", "40000"),
            ("db.system.name", "redis"),
            ("db.operation.name", "LPUSH"),
            ("db.query.text", "LPUSH queue ?"),
            ("db.namespace", "1"),
            ("db.response.status_code", "WRONGTYPE"),
            ("error.type", "WRONGTYPE"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
    let ok = redis_span("GET", "GET user:1", None);
    assert!(!is_error(&ok));
    let metric = metric_attributes(&ok).expect("a Redis client span feeds a metric");
    assert_eq!(metric.instrument, Instrument::DbClientOperationDuration);
    assert_eq!(metric.instrument.name(), "db.client.operation.duration");
    let values: Vec<(&str, MetricValue)> = metric.iter().map(|(k, v)| (k, v.clone())).collect();
    assert_eq!(
        values,
        [
            ("db.system.name", MetricValue::Str("redis")),
            ("db.operation.name", MetricValue::Text("GET".into())),
            ("db.collection.name", MetricValue::Absent),
            ("db.namespace", MetricValue::Text("1".into())),
            ("db.response.status_code", MetricValue::Absent),
            ("error.type", MetricValue::Absent),
            ("server.port", MetricValue::Int(40000)),
        ]
    );
    let mut server = ok;
    server.request.kind = SpanKind::Server;
    assert_eq!(metric_attributes(&server), None);
}

#[test]
fn kafka_spans_produce_and_consume_as_beyla_names_them() {
    let produce = kafka_span(KafkaOperationKind::Produce, Some("orders"), None);
    assert_eq!(span_name(&produce), "orders publish");
    assert_eq!(span_kind(&produce), OtelKind::Producer);
    assert_eq!(
        metric_attributes(&produce).map(|m| m.instrument),
        Some(Instrument::MessagingPublishDuration)
    );
    let fetch = kafka_span(
        KafkaOperationKind::Fetch,
        Some("orders"),
        Some("OFFSET_OUT_OF_RANGE"),
    );
    assert_eq!(span_name(&fetch), "orders process");
    assert_eq!(span_kind(&fetch), OtelKind::Consumer);
    assert!(is_error(&fetch));
    assert_eq!(
        attributes(&fetch)[2..],
        [
            ("messaging.system", "kafka"),
            ("messaging.operation.type", "process"),
            ("messaging.operation.name", "fetch"),
            ("messaging.destination.name", "orders"),
            ("messaging.destination.partition.id", "0"),
            ("messaging.client.id", "orders-app"),
            ("messaging.kafka.offset", "42"),
            ("error.type", "OFFSET_OUT_OF_RANGE"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
    let metric = metric_attributes(&fetch).expect("a Kafka span feeds a metric");
    assert_eq!(metric.instrument.name(), "messaging.process.duration");
    // A topic named by an id no Metadata response showed: the operation alone.
    assert_eq!(
        span_name(&kafka_span(KafkaOperationKind::Produce, None, None)),
        "publish"
    );
    // The broker's side is SERVER, whichever the request.
    let mut broker = produce;
    broker.request.kind = SpanKind::Server;
    assert_eq!(span_kind(&broker), OtelKind::Server);
}

fn sql_span(error_code: Option<&str>) -> Span {
    let mut span = fixtures::span();
    span.route = None;
    span.request.kind = SpanKind::Client;
    span.request.operation = Operation::Sql(crate::model::SqlOperation {
        system: "postgresql",
        operation: Some("SELECT"),
        collection: Some("users".into()),
        query: "SELECT name FROM users WHERE id = ?".into(),
        namespace: Some("beyla".into()),
        error_code: error_code.map(ShortString::from),
    });
    span
}

#[test]
fn sql_spans_follow_the_database_conventions() {
    let span = sql_span(None);
    assert_eq!(span_name(&span), "SELECT users");
    assert!(!is_error(&span));
    assert_eq!(
        attributes(&span),
        [
            ("server.address", "127.0.0.2"),
            ("server.port", "40000"),
            ("db.system.name", "postgresql"),
            ("db.operation.name", "SELECT"),
            ("db.collection.name", "users"),
            ("db.query.text", "SELECT name FROM users WHERE id = ?"),
            ("db.namespace", "beyla"),
        ]
        .map(|(k, v)| (k, v.to_string()))
    );
    let failed = sql_span(Some("42P01"));
    assert!(is_error(&failed));
    let attrs = attributes(&failed);
    assert!(attrs.contains(&("db.response.status_code", "42P01".into())));
    assert!(attrs.contains(&("error.type", "42P01".into())));
}

#[test]
fn sql_span_names_fall_back_to_the_database_then_the_system() {
    let mut span = sql_span(None);
    let Operation::Sql(sql) = &mut span.request.operation else {
        unreachable!()
    };
    sql.collection = None;
    assert_eq!(span_name(&span), "SELECT beyla");
    let Operation::Sql(sql) = &mut span.request.operation else {
        unreachable!()
    };
    sql.namespace = None;
    assert_eq!(span_name(&span), "SELECT");
    let Operation::Sql(sql) = &mut span.request.operation else {
        unreachable!()
    };
    sql.operation = None;
    assert_eq!(span_name(&span), "postgresql");
}

#[test]
fn sql_client_spans_feed_db_client_operation_duration_and_server_spans_nothing() {
    let span = sql_span(Some("42P01"));
    let m = metric_attributes(&span).expect("an SQL client span feeds a metric");
    assert_eq!(m.instrument, Instrument::DbClientOperationDuration);
    assert_eq!(m.instrument.name(), "db.client.operation.duration");
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![
            ("db.system.name", &MetricValue::Str("postgresql")),
            ("db.operation.name", &MetricValue::Str("SELECT")),
            ("db.collection.name", &MetricValue::Text("users".into())),
            ("db.namespace", &MetricValue::Text("beyla".into())),
            (
                "db.response.status_code",
                &MetricValue::Text("42P01".into())
            ),
            ("error.type", &MetricValue::Text("42P01".into())),
            ("server.port", &MetricValue::Int(40000)),
        ]
    );
    let mut server = span;
    server.request.kind = SpanKind::Server;
    assert_eq!(metric_attributes(&server), None);
}
