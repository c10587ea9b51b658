//! HTTP/2 and gRPC spans from real peers: a Go h2c server (net/http), grpcio
//! (Python) and grpc-go servers and clients, over plain TCP (prior knowledge;
//! TLS is not covered). Each stream must give exactly one span with the
//! right attributes. Run as root with `--test-threads=1`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::apps::{free_port, python_interpreter};
use integration_tests::config_files::{parse_exposition, regex_escape, scrape, RawAgent, Sample};
use integration_tests::grpc_apps::{
    assert_span_set, build, go_grpc_client_binary, run_grpc_client, stopped_line, AppServer,
    ClientApp, ExpectedSpan, ServerApp, GRPC_SERVICE,
};
use integration_tests::random_hex;
use integration_tests::require_root;
use integration_tests::spans::{Kind, Span};

/// Starts the agent tracing `server` (by its port) and waits until it does.
fn agent_for_server(server: &AppServer) -> RawAgent {
    agent_for_server_with(server, &[])
}

/// The same, with more agent settings.
fn agent_for_server_with(server: &AppServer, extra: &[(&str, &str)]) -> RawAgent {
    let port = server.port.to_string();
    // Some calls carry `traceparent`: joining it is asked for, as in Beyla.
    let mut env = vec![
        ("BEYLA_OPEN_PORT", port.as_str()),
        ("BEYLA_BPF_TRACK_REQUEST_HEADERS", "true"),
    ];
    env.extend_from_slice(extra);
    let agent = RawAgent::start(&env);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    agent
}

/// Stops the agent; returns its spans and a failure context with its log.
fn stop(agent: RawAgent, what: &str) -> (Vec<Span>, String, String) {
    let output = agent.stop();
    let spans = output.lines.iter().map(|l| Span::parse(l)).collect();
    let counters = stopped_line(&output.stderr).to_string();
    (
        spans,
        format!("{what}, agent stderr:\n{}", output.stderr),
        counters,
    )
}

fn spans_of_pid(spans: Vec<Span>, pid: u32) -> (Vec<Span>, usize) {
    let total = spans.len();
    (spans.into_iter().filter(|s| s.pid == pid).collect(), total)
}

/// 1: GETs to a Go h2c server, several on one HTTP/2 connection (Go h2c
/// client), then `curl --http2-prior-knowledge` runs: /error and requests
/// carrying `traceparent`.
#[test]
fn h2c_go_server_with_curl() {
    h2c_server_with_curl(ServerApp::GoH2c, "h2c Go server");
}

/// 1, against axum on hyper (the Rust sample app, HTTP/2 by prior knowledge).
#[test]
fn h2c_rust_server_with_curl() {
    h2c_server_with_curl(ServerApp::RustH2c, "h2c Rust server");
}

fn h2c_server_with_curl(app: ServerApp, what: &str) {
    const ONE_CONNECTION: &str = "1a ten GETs on one h2c connection";
    const ERRORS: &str = "1b curl /error";
    const TRACEPARENT: &str = "1c curl with traceparent";
    require_root();
    let server = AppServer::start(app);
    let agent = agent_for_server(&server);
    let service = server.service_name();
    let mut expected = Vec::new();
    let expect = |scenario: &str, path: &str, route: &str, status: u64, joins| ExpectedSpan {
        scenario: scenario.to_string(),
        kind: Kind::Server,
        method: "GET".into(),
        path: path.into(),
        route: Some(route.into()),
        status,
        rpc: None,
        service: service.clone(),
        pid: server.pid(),
        server_port: server.port,
        joins,
    };

    // curl 7.88 cannot reuse a prior-knowledge connection to a Go server (the
    // second transfer fails with "Error in the HTTP2 framing layer"), so the
    // one-connection part uses the Go h2c client, which reports reuse.
    let mut paths = vec![("/health".to_string(), "/health")];
    paths.extend((1..10).map(|i| (format!("/users/{}", 100 + i), "/users/*")));
    let urls: Vec<String> = paths.iter().map(|(p, _)| server.url(p)).collect();
    let out = Command::new(integration_tests::workspace_root().join("target/apps/h2c-client"))
        .args(&urls)
        .stdin(Stdio::null())
        .output()
        .expect("run target/apps/h2c-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "[{ONE_CONNECTION}] h2c-client failed: {out:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), paths.len(), "[{ONE_CONNECTION}] {stdout}");
    for (i, (line, (path, route))) in lines.iter().zip(&paths).enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let reused = if i == 0 { "0" } else { "1" };
        assert_eq!(
            (f[0], f[1], f[2]),
            ("200", "HTTP/2.0", reused),
            "[{ONE_CONNECTION}] request {i} ({path}): want 200 over HTTP/2 on one connection \
             (reused=0 only for the first), got {line}"
        );
        expected.push(expect(ONE_CONNECTION, path, route, 200, None));
    }

    let curl = |scenario: &str, path: &str, headers: &[String]| {
        let mut command = Command::new("curl");
        command.args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "30",
            "--http2-prior-knowledge",
        ]);
        for h in headers {
            command.arg("-H").arg(h);
        }
        let out = command
            .args(["-w", "%{http_code} %{http_version}"])
            .arg(server.url(path))
            .stdin(Stdio::null())
            .output()
            .expect("run curl (is it installed?)");
        assert!(
            out.status.success(),
            "[{scenario}] curl {path} failed: {out:?}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for _ in 0..3 {
        let got = curl(ERRORS, "/error", &[]);
        assert_eq!(
            got, "500 2",
            "[{ERRORS}] curl /error: status and HTTP version"
        );
        expected.push(expect(ERRORS, "/error", "/error", 500, None));
    }
    for i in 0..2 {
        let (trace_id, parent) = (random_hex(16), random_hex(8));
        let path = format!("/users/{}", 900 + i);
        let header = format!("traceparent: 00-{trace_id}-{parent}-01");
        let got = curl(TRACEPARENT, &path, &[header]);
        assert_eq!(
            got, "200 2",
            "[{TRACEPARENT}] curl {path}: status and HTTP version"
        );
        expected.push(expect(
            TRACEPARENT,
            &path,
            "/users/*",
            200,
            Some((trace_id, parent)),
        ));
    }

    let (spans, context, counters) = stop(agent, what);
    let (spans, total) = spans_of_pid(spans, server.pid());
    println!(
        "{what}: {} requests sent (10 on one connection, 3 /error, 2 traceparent), \
         {} server spans seen ({total} printed); {counters}",
        expected.len(),
        spans.len()
    );
    assert_span_set(&spans, &expected, &context);
}

/// Server spans for the calls a client made to `server`, as it reported them.
fn expected_server_spans(
    scenario: &str,
    run: &integration_tests::grpc_apps::ClientRun,
    server: &AppServer,
) -> Vec<ExpectedSpan> {
    let service = server.service_name();
    run.calls
        .iter()
        .map(|call| {
            ExpectedSpan::grpc(
                scenario,
                Kind::Server,
                call,
                &service,
                server.pid(),
                server.port,
            )
        })
        .collect()
}

/// Client spans for the calls `run` made to `server_port`.
fn expected_client_spans(
    scenario: &str,
    run: &integration_tests::grpc_apps::ClientRun,
    server_port: u16,
) -> Vec<ExpectedSpan> {
    run.calls
        .iter()
        .map(|call| {
            ExpectedSpan::grpc(
                scenario,
                Kind::Client,
                call,
                &run.service,
                run.pid,
                server_port,
            )
        })
        .collect()
}

/// Counts calls by (method, grpc code) for a summary line.
fn call_mix(run: &integration_tests::grpc_apps::ClientRun) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for c in &run.calls {
        *counts.entry((c.method.as_str(), c.code)).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|((m, code), n)| format!("{m}/{code}x{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts the client reported exactly `want` calls.
fn assert_call_count(scenario: &str, run: &integration_tests::grpc_apps::ClientRun, want: usize) {
    assert_eq!(
        run.calls.len(),
        want,
        "[{scenario}] the client reported {} calls, expected {want}:\n{}",
        run.calls.len(),
        String::from_utf8_lossy(&run.output.stdout)
    );
}

/// `rpc_server_duration_seconds_count` by (method, status code), once the
/// agent has counted `calls` in all (or the wait ran out).
fn rpc_server_counts(prometheus_port: u16, calls: usize) -> BTreeMap<(String, String), f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let samples: Vec<Sample> = parse_exposition(&scrape(prometheus_port))
            .into_iter()
            .filter(|s| s.name == "rpc_server_duration_seconds_count")
            .collect();
        let total: f64 = samples.iter().map(|s| s.value).sum();
        if total as usize >= calls || Instant::now() >= deadline {
            let mut counts = BTreeMap::new();
            for s in &samples {
                assert_eq!(
                    (s.label("rpc_system"), s.label("rpc_service")),
                    ("grpc", GRPC_SERVICE),
                    "{}",
                    s.line
                );
                *counts
                    .entry((
                        s.label("rpc_method").to_string(),
                        s.label("rpc_grpc_status_code").to_string(),
                    ))
                    .or_insert(0.0) += s.value;
            }
            return counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// 2: a traced grpcio server: unary OK, server streaming OK, NOT_FOUND, and
/// unary calls carrying `traceparent` metadata. Its calls are counted in
/// `rpc_server_duration_seconds` by method and status, and not as HTTP.
#[test]
fn grpc_python_unary_and_streaming() {
    const SCENARIO: &str = "2 python grpc server";
    require_root();
    let server = AppServer::start(ServerApp::PythonGrpc);
    let prometheus_port = free_port().to_string();
    let agent = agent_for_server_with(&server, &[("BEYLA_PROMETHEUS_PORT", &prometheus_port)]);
    let run = run_grpc_client(
        SCENARIO,
        ClientApp::PythonGrpc,
        &server.target(),
        &["unary", "5", "stream", "2", "fail", "2", "traced", "2"],
    );
    assert_call_count(SCENARIO, &run, 11);
    let prometheus_port: u16 = prometheus_port.parse().expect("a port");
    let counted = rpc_server_counts(prometheus_port, run.calls.len());
    let mut expected_counts = BTreeMap::new();
    for call in &run.calls {
        *expected_counts
            .entry((call.method.clone(), call.code.to_string()))
            .or_insert(0.0) += 1.0;
    }
    assert_eq!(
        counted, expected_counts,
        "rpc_server_duration_seconds_count by (method, status)"
    );
    let http_counted = parse_exposition(&scrape(prometheus_port))
        .iter()
        .any(|s| s.name == "http_server_request_duration_seconds_count");
    assert!(
        !http_counted,
        "gRPC calls were counted as HTTP requests too"
    );
    let expected = expected_server_spans(SCENARIO, &run, &server);
    let (spans, context, counters) = stop(agent, "Python gRPC server");
    let (spans, total) = spans_of_pid(spans, server.pid());
    println!(
        "Python gRPC server: {} calls sent ({}), {} server spans seen ({total} printed), \
         rpc_server_duration_seconds_count {counted:?}; {counters}",
        run.calls.len(),
        call_mix(&run),
        spans.len()
    );
    assert_span_set(&spans, &expected, &context);
}

/// 3: twenty calls in flight at once on one channel (one HTTP/2 connection):
/// unary OK, unary NOT_FOUND and server streaming, each with its own
/// `traceparent`; each span must carry its own call's method and status.
#[test]
fn grpc_twenty_concurrent_streams_on_one_connection() {
    const SCENARIO: &str = "3 twenty concurrent streams";
    require_root();
    let server = AppServer::start(ServerApp::PythonGrpc);
    // Twenty streams answered together make reads and writes of several KiB;
    // docs/running.md says to raise the capture size for such connections, as
    // HPACK cannot follow frames the capture cut off.
    let agent = agent_for_server_with(&server, &[("BEYLA_BPF_CAPTURE_SIZE", "8191")]);
    let run = run_grpc_client(
        SCENARIO,
        ClientApp::PythonGrpc,
        &server.target(),
        &["concurrent", "20"],
    );
    assert_call_count(SCENARIO, &run, 20);
    let expected = expected_server_spans(SCENARIO, &run, &server);
    let (spans, context, counters) = stop(agent, "Python gRPC server, 20 concurrent calls");
    let (spans, total) = spans_of_pid(spans, server.pid());
    let overlap = max_overlap(&spans);
    println!(
        "Python gRPC server, concurrent: {} calls sent ({}), {} server spans seen ({total} printed), \
         at most {overlap} spans overlapping in time; {counters}",
        run.calls.len(),
        call_mix(&run),
        spans.len()
    );
    assert_span_set(&spans, &expected, &context);
}

/// The largest number of spans whose [start, end] intervals overlap.
fn max_overlap(spans: &[Span]) -> usize {
    let mut edges: Vec<(u64, i32)> = spans
        .iter()
        .flat_map(|s| [(s.start_ns, 1), (s.end_ns, -1)])
        .collect();
    edges.sort_by_key(|&(t, d)| (t, -d));
    let (mut now, mut best) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        best = best.max(now);
    }
    usize::try_from(best).unwrap_or(0)
}

/// 4: a traced grpcio client (selected by its interpreter's path) calling an
/// untraced grpc-go server: CLIENT spans with the rpc fields.
#[test]
fn grpc_python_client_spans() {
    const SCENARIO: &str = "4 python grpc client";
    require_root();
    build();
    let server = AppServer::start(ServerApp::GoGrpc);
    let regex = format!(
        "^{}$",
        regex_escape(&python_interpreter().to_string_lossy())
    );
    let agent = RawAgent::start(&[("BEYLA_EXECUTABLE_NAME", &regex)]);
    agent.wait_ready();
    let run = run_grpc_client(
        SCENARIO,
        ClientApp::PythonGrpc,
        &server.target(),
        &["unary", "3", "stream", "2", "fail", "2"],
    );
    assert_call_count(SCENARIO, &run, 7);
    let expected = expected_client_spans(SCENARIO, &run, server.port);
    let (spans, context, counters) = stop(agent, "Python gRPC client");
    // The regex selects every process of this interpreter on the machine.
    let (spans, total) = spans_of_pid(spans, run.pid);
    println!(
        "Python gRPC client: {} calls sent ({}), {} client spans seen for its pid ({total} printed); {counters}",
        run.calls.len(),
        call_mix(&run),
        spans.len()
    );
    assert_span_set(&spans, &expected, &context);
}

/// 5: grpc-go both ways: first the traced Go server (called by the Go
/// client, untraced), then the traced Go client (selected by its binary)
/// calling the untraced Go server.
#[test]
fn grpc_go_server_and_client() {
    const SERVER_SCENARIO: &str = "5a go grpc server";
    const CLIENT_SCENARIO: &str = "5b go grpc client";
    require_root();
    let server = AppServer::start(ServerApp::GoGrpc);

    let agent = agent_for_server(&server);
    let run = run_grpc_client(
        SERVER_SCENARIO,
        ClientApp::GoGrpc,
        &server.target(),
        &[
            "unary",
            "5",
            "stream",
            "2",
            "fail",
            "2",
            "traced",
            "2",
            "concurrent",
            "9",
        ],
    );
    assert_call_count(SERVER_SCENARIO, &run, 20);
    let expected = expected_server_spans(SERVER_SCENARIO, &run, &server);
    let (spans, context, counters) = stop(agent, "Go gRPC server");
    let (spans, total) = spans_of_pid(spans, server.pid());
    println!(
        "Go gRPC server: {} calls sent ({}), {} server spans seen ({total} printed); {counters}",
        run.calls.len(),
        call_mix(&run),
        spans.len()
    );
    assert_span_set(&spans, &expected, &context);

    let regex = format!(
        "^{}$",
        regex_escape(&go_grpc_client_binary().to_string_lossy())
    );
    let agent = RawAgent::start(&[("BEYLA_EXECUTABLE_NAME", &regex)]);
    agent.wait_ready();
    let run = run_grpc_client(
        CLIENT_SCENARIO,
        ClientApp::GoGrpc,
        &server.target(),
        &["unary", "3", "stream", "2", "fail", "2"],
    );
    assert_call_count(CLIENT_SCENARIO, &run, 7);
    let expected = expected_client_spans(CLIENT_SCENARIO, &run, server.port);
    let (spans, context, counters) = stop(agent, "Go gRPC client");
    let (spans, total) = spans_of_pid(spans, run.pid);
    println!(
        "Go gRPC client: {} calls sent ({}), {} client spans seen for its pid ({total} printed); {counters}",
        run.calls.len(),
        call_mix(&run),
        spans.len()
    );
    assert_span_set(&spans, &expected, &context);
}
