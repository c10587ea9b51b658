//! Redis and Kafka spans and metrics from the real kernel: redis-server and a KRaft Kafka
//! broker started by the suite, driven by real clients in Go, Python, Node and Java, which
//! print what they sent; the agent's spans and Prometheus counts must match exactly.
//! Run as root with `--test-threads=1`.

use std::collections::BTreeMap;

use integration_tests::agent::Agent;
use integration_tests::apps::free_port;
use integration_tests::databases::kafka::kafka_broker;
use integration_tests::databases::kv_clients::{run, ClientRun, KvClient, RedisHttpServer};
use integration_tests::databases::redis::redis_server;
use integration_tests::http::{Connection, Request};
use std::time::Duration;

use integration_tests::receivers::{exposition_lines, exposition_value, poll, scrape};
use integration_tests::require_root;
use integration_tests::spans::{Kind, Span};

/// Operations of each kind every client makes.
const N: usize = 5;
/// Every client's executable: the Go binary, the Python interpreter the venv links to, node,
/// java. Other processes of these names are traced too; spans are told apart by pid.
const CLIENT_EXECUTABLES: &str = "(kv-client|python3[.0-9]*|node|java)$";

/// A command name and the error code of its reply.
type Outcome = (String, Option<String>);

fn count(outcomes: impl IntoIterator<Item = Outcome>) -> BTreeMap<Outcome, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome).or_insert(0) += 1;
    }
    counts
}

/// What each library sends on its own when it connects, with Redis 7.0's answers (it has no
/// `CLIENT SETINFO` nor `CLIENT MAINT_NOTIFICATIONS`): one hand-shake per connection, and
/// every client opens two (commands, subscription).
fn handshake(client: KvClient) -> Vec<Outcome> {
    let ok = |name: &str| (name.to_string(), None);
    let err = |name: &str| (name.to_string(), Some("ERR".to_string()));
    let one = match client {
        KvClient::Go => vec![
            ok("HELLO"),
            ok("SELECT"),
            err("CLIENT"),
            err("CLIENT"),
            err("CLIENT"),
        ],
        KvClient::Python => vec![err("CLIENT"), err("CLIENT"), ok("SELECT")],
        KvClient::Node => vec![ok("HELLO"), ok("SELECT"), err("CLIENT"), err("CLIENT")],
        // Jedis selects the database with a command the client program prints itself.
        KvClient::Java => vec![],
    };
    [one.clone(), one].concat()
}

/// The Redis commands a client run made, by its own account and its library's hand-shakes.
fn expected_redis(client: KvClient, run: &ClientRun) -> BTreeMap<Outcome, usize> {
    let sent = run.sent.iter().map(|s| (s.name.clone(), s.error.clone()));
    count(sent.chain(handshake(client)))
}

fn redis_outcomes(spans: &[&Span]) -> BTreeMap<Outcome, usize> {
    count(spans.iter().map(|s| {
        (
            s.attr("db.operation.name").unwrap_or_default().to_string(),
            s.attr("error.type").map(str::to_string),
        )
    }))
}

/// Checks what every Redis span must carry, whichever side it is from.
fn check_redis_span(span: &Span, kind: Kind, redis_port: u16) {
    let line = &span.line;
    let operation = span.attr("db.operation.name").unwrap_or_default();
    assert_eq!(span.kind, kind, "{line}");
    assert_eq!(span.name, operation, "{line}");
    assert_eq!(span.attr("db.system.name"), Some("redis"), "{line}");
    assert_eq!(span.server_address, "127.0.0.1", "{line}");
    assert_eq!(span.server_port, redis_port, "{line}");
    let query = span.attr("db.query.text").unwrap_or_default();
    assert!(query.starts_with(operation), "{line}");
    // Values never show: only the first argument (a key) may, the rest are `?`.
    assert!(
        !query.contains(" v0") && !query.contains("event "),
        "{line}"
    );
    assert_eq!(
        span.attr("error.type"),
        span.attr("db.response.status_code"),
        "{line}"
    );
    // Every command after the connection's SELECT runs in database 1.
    if !["HELLO", "SELECT", "CLIENT"].contains(&operation) {
        assert_eq!(span.attr("db.namespace"), Some("1"), "{line}");
    }
}

/// How long the agent may take to count what it has traced (it reads the kernel's events in
/// batches).
const METRICS_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent's exposition once `ready` says it has counted everything, or as it is after
/// `METRICS_TIMEOUT`: the exact comparisons that follow then say what is missing.
fn scrape_when(metrics_port: u16, ready: impl Fn(&str) -> bool) -> String {
    poll(METRICS_TIMEOUT, || {
        Some(scrape(metrics_port, "/metrics")).filter(|text| ready(text))
    })
    .unwrap_or_else(|| scrape(metrics_port, "/metrics"))
}

/// The count of a histogram series with these labels in a Prometheus exposition.
fn histogram_count(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    exposition_lines(text, &format!("{metric}_count"))
        .into_iter()
        .filter(|line| {
            labels
                .iter()
                .all(|(name, value)| line.contains(&format!("{name}=\"{value}\"")))
        })
        .map(exposition_value)
        .sum()
}

/// The agent tracing the clients (by executable), ready, with its Prometheus
/// endpoint on a free port.
fn agent_for_clients() -> (Agent, u16) {
    let metrics_port = free_port();
    let agent = Agent::start(&[
        ("BEYLA_EXECUTABLE_NAME", CLIENT_EXECUTABLES),
        ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
    ]);
    agent.wait_ready();
    (agent, metrics_port)
}

#[test]
fn redis_client_spans_from_go_python_node_and_java() {
    require_root();
    let redis = redis_server();
    let (agent, metrics_port) = agent_for_clients();

    let mut runs = Vec::new();
    for client in KvClient::ALL {
        let run = run(client.redis(redis.port, N), Some(&agent));
        assert_eq!(run.received.len(), N, "{client:?} messages\n{}", run.stdout);
        runs.push((client, run));
    }
    // Services are named after executables: read them while the processes' files are known.
    let services: Vec<String> = KvClient::ALL
        .iter()
        .map(|c| match c {
            KvClient::Go => "kv-client".to_string(),
            KvClient::Node => "node".to_string(),
            KvClient::Java => "java".to_string(),
            KvClient::Python => service_of_python(),
        })
        .collect();
    let exposition = scrape_when(metrics_port, |text| {
        runs.iter().zip(&services).all(|((client, run), service)| {
            let labels = [
                ("db_system_name", "redis"),
                ("service_name", service.as_str()),
            ];
            let sent: usize = expected_redis(*client, run).values().sum();
            histogram_count(text, "db_client_operation_duration_seconds", &labels) >= sent as f64
        })
    });
    let output = agent.stop();
    let all_spans = output.all_spans();

    let mut report = Vec::new();
    for ((client, run), service) in runs.iter().zip(&services) {
        let spans: Vec<&Span> = all_spans.iter().filter(|s| s.pid == run.pid).collect();
        let context = format!(
            "{client:?}: client output:\n{}\nagent stderr:\n{}",
            run.stdout, output.stderr
        );
        let expected = expected_redis(*client, run);
        assert_eq!(redis_outcomes(&spans), expected, "{context}");
        for span in &spans {
            check_redis_span(span, Kind::Client, redis.port);
            assert_eq!(&span.service, service, "{}", span.line);
        }
        // The series is the service's: every process of that name adds to it.
        let of_service: Vec<&Span> = all_spans
            .iter()
            .filter(|s| &s.service == service && s.attr("db.system.name") == Some("redis"))
            .collect();
        for ((operation, error), n) in &redis_outcomes(&of_service) {
            let mut labels = vec![
                ("db_system_name", "redis"),
                ("db_operation_name", operation.as_str()),
                ("service_name", service.as_str()),
            ];
            labels.push(("error_type", error.as_deref().unwrap_or("")));
            assert_eq!(
                histogram_count(&exposition, "db_client_operation_duration_seconds", &labels),
                *n as f64,
                "{client:?} {operation} {error:?}\n{exposition}"
            );
        }
        let sent: usize = expected.values().sum();
        report.push(format!(
            "{client:?}: {sent} commands sent, {} spans",
            spans.len()
        ));
    }
    eprintln!("redis client spans: {}", report.join("; "));
}

/// The service name of the Python clients: the base name of the interpreter the venv links to.
fn service_of_python() -> String {
    let python = integration_tests::workspace_root().join("target/clients/kv/venv/bin/python");
    std::fs::canonicalize(&python)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| panic!("{} does not resolve", python.display()))
}

#[test]
fn redis_server_spans_from_redis_server_itself() {
    require_root();
    let redis = redis_server();
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &redis.port.to_string())]);
    agent.wait_ready();
    agent.wait_instrumenting(redis.process.pid);
    let run = run(KvClient::Go.redis(redis.port, N), None);
    let output = agent.stop();
    let all_spans = output.all_spans();

    let spans: Vec<&Span> = all_spans
        .iter()
        .filter(|s| s.pid == redis.process.pid)
        .collect();
    let context = format!(
        "client output:\n{}\nagent stderr:\n{}",
        run.stdout, output.stderr
    );
    assert_eq!(
        redis_outcomes(&spans),
        expected_redis(KvClient::Go, &run),
        "{context}"
    );
    for span in &spans {
        check_redis_span(span, Kind::Server, redis.port);
        assert_eq!(span.parent_span_id, "", "{}", span.line);
    }
    eprintln!(
        "redis server spans: {} commands sent by go-redis, {} SERVER spans from redis-server",
        expected_redis(KvClient::Go, &run).values().sum::<usize>(),
        spans.len()
    );
}

#[test]
fn a_redis_call_made_while_serving_a_request_is_its_child() {
    require_root();
    let redis = redis_server();
    let server = RedisHttpServer::start(redis.port);
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_ready();
    agent.wait_instrumenting(server.pid());
    let mut connection = Connection::open(server.port);
    for i in 0..N {
        let (response, _) = connection.round_trip(&Request::get(&format!("/redis/kv:{i}")));
        assert_eq!(response.status, 200);
    }
    drop(connection);
    let output = agent.stop();
    let all_spans = output.all_spans();
    let context = format!("agent stderr:\n{}", output.stderr);

    let mut spans: Vec<&Span> = all_spans.iter().filter(|s| s.pid == server.pid()).collect();
    spans.sort_by_key(|s| s.start_ns);
    let requests: Vec<&&Span> = spans.iter().filter(|s| s.kind == Kind::Server).collect();
    assert_eq!(requests.len(), N, "{context}");
    let gets: Vec<&&Span> = spans
        .iter()
        .filter(|s| s.attr("db.operation.name") == Some("GET"))
        .collect();
    assert_eq!(gets.len(), N, "{context}");
    for (request, get) in requests.iter().zip(&gets) {
        assert_eq!(
            request.path,
            get.attr("db.query.text")
                .unwrap_or_default()
                .replace("GET kv:", "/redis/kv:")
        );
        assert_eq!(get.trace_id, request.trace_id, "{}", get.line);
        assert_eq!(get.parent_span_id, request.span_id, "{}", get.line);
    }
    // The connection's hand-shake (CLIENT SETINFO twice, SELECT) ran inside the first request.
    let first = requests[0];
    let others: Vec<&&Span> = spans
        .iter()
        .filter(|s| s.kind == Kind::Client && s.attr("db.operation.name") != Some("GET"))
        .collect();
    assert_eq!(others.len(), 3, "{context}");
    assert!(
        others.iter().all(|s| s.parent_span_id == first.span_id),
        "{context}"
    );
}

/// The client id each Kafka client sends.
fn kafka_client_id(client: KvClient) -> &'static str {
    match client {
        KvClient::Go => "beyla-kv-go",
        KvClient::Python => "beyla-kv-python",
        KvClient::Java => "beyla-kv-java",
        KvClient::Node => unreachable!("no Node Kafka client"),
    }
}

fn topic_for(client: KvClient) -> String {
    format!("beyla-kv-{client:?}-{}", integration_tests::random_hex(4)).to_lowercase()
}

#[test]
fn kafka_producer_and_consumer_spans_from_go_python_and_java() {
    require_root();
    let broker = kafka_broker();
    let (agent, metrics_port) = agent_for_clients();
    let mut runs = Vec::new();
    for client in KvClient::KAFKA {
        let topic = topic_for(client);
        let run = run(client.kafka(broker.port, N, &topic), Some(&agent));
        assert_eq!(run.sent.len(), N, "{client:?}\n{}", run.stdout);
        assert_eq!(run.received.len(), N, "{client:?}\n{}", run.stdout);
        runs.push((client, topic, run));
    }
    let exposition = scrape_when(metrics_port, |text| {
        runs.iter().all(|(_, topic, _)| {
            let labels = [("messaging_destination_name", topic.as_str())];
            histogram_count(text, "messaging_publish_duration_seconds", &labels) >= N as f64
                && histogram_count(text, "messaging_process_duration_seconds", &labels) >= 1.0
        })
    });
    let output = agent.stop();
    let all_spans = output.all_spans();

    let mut report = Vec::new();
    for (client, topic, run) in &runs {
        let context = format!(
            "{client:?}: client output:\n{}\nagent stderr:\n{}",
            run.stdout, output.stderr
        );
        let spans: Vec<&Span> = all_spans.iter().filter(|s| s.pid == run.pid).collect();
        let produced: Vec<&&Span> = spans.iter().filter(|s| s.kind == Kind::Producer).collect();
        let consumed: Vec<&&Span> = spans.iter().filter(|s| s.kind == Kind::Consumer).collect();
        assert_eq!(produced.len(), N, "{context}");
        assert!(!consumed.is_empty(), "{context}");
        assert_eq!(produced.len() + consumed.len(), spans.len(), "{context}");
        for span in &spans {
            let (operation, name) = if span.kind == Kind::Producer {
                ("publish", "produce")
            } else {
                ("process", "fetch")
            };
            let line = &span.line;
            assert_eq!(span.name, format!("{topic} {operation}"), "{line}");
            assert_eq!(span.attr("messaging.system"), Some("kafka"), "{line}");
            assert_eq!(
                span.attr("messaging.operation.type"),
                Some(operation),
                "{line}"
            );
            assert_eq!(span.attr("messaging.operation.name"), Some(name), "{line}");
            assert_eq!(
                span.attr("messaging.destination.name"),
                Some(topic.as_str()),
                "{line}"
            );
            assert_eq!(
                span.attr_int("messaging.destination.partition.id"),
                Some(0),
                "{line}"
            );
            assert_eq!(
                span.attr("messaging.client.id"),
                Some(kafka_client_id(*client)),
                "{line}"
            );
            assert_eq!(span.attr("error.type"), None, "{line}");
            assert_eq!(span.server_port, broker.port, "{line}");
        }
        // Every record was produced before the first fetch: that one reads from offset 0.
        assert_eq!(
            consumed[0].attr_int("messaging.kafka.offset"),
            Some(0),
            "{context}"
        );
        // The series are the service's: every process of that name adds to them (the broker
        // is a `java` too, and its SERVER spans count with the Java client's).
        let service = &spans[0].service;
        let labels = [
            ("messaging_system", "kafka"),
            ("messaging_destination_name", topic.as_str()),
            ("service_name", service.as_str()),
        ];
        for (metric, operation) in [
            ("messaging_publish_duration_seconds", "publish"),
            ("messaging_process_duration_seconds", "process"),
        ] {
            let of_service = all_spans
                .iter()
                .filter(|s| &s.service == service && s.name == format!("{topic} {operation}"))
                .count();
            assert_eq!(
                histogram_count(&exposition, metric, &labels),
                of_service as f64,
                "{context}\n{exposition}"
            );
        }
        report.push(format!(
            "{client:?}: {N} records produced, {} PRODUCER spans; {N} records fetched, {} CONSUMER spans",
            produced.len(),
            consumed.len()
        ));
    }
    eprintln!("kafka client spans: {}", report.join("; "));
}

#[test]
fn kafka_server_spans_from_the_broker() {
    require_root();
    let broker = kafka_broker();
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &broker.port.to_string())]);
    agent.wait_ready();
    agent.wait_instrumenting(broker.process.pid);
    let topic = topic_for(KvClient::Python);
    let run = run(KvClient::Python.kafka(broker.port, N, &topic), None);
    let output = agent.stop();
    let all_spans = output.all_spans();
    let context = format!(
        "client output:\n{}\nagent stderr:\n{}",
        run.stdout, output.stderr
    );

    let produced: Vec<&Span> = all_spans
        .iter()
        .filter(|s| s.pid == broker.process.pid && s.name == format!("{topic} publish"))
        .collect();
    assert_eq!(produced.len(), N, "{context}");
    for span in &produced {
        let line = &span.line;
        assert_eq!(span.kind, Kind::Server, "{line}");
        assert_eq!(
            span.attr("messaging.destination.name"),
            Some(topic.as_str()),
            "{line}"
        );
        assert_eq!(
            span.attr("messaging.client.id"),
            Some("beyla-kv-python"),
            "{line}"
        );
        assert_eq!(span.server_port, broker.port, "{line}");
    }
    // Fetch responses carry their records by sendfile, which the socket probes do not see:
    // reported, not asserted (docs/running.md).
    let fetched = all_spans
        .iter()
        .filter(|s| s.pid == broker.process.pid && s.name == format!("{topic} process"))
        .count();
    eprintln!(
        "kafka server spans: {N} records produced by kafka-python, {} SERVER publish spans from \
         the broker; {} SERVER process spans, anomalies: {}",
        produced.len(),
        fetched,
        output.stderr.lines().last().unwrap_or_default()
    );
}
