//! Server spans from the sample servers (Python, Node, Go, Java on their
//! standard libraries; Flask, Express, Spark Java; Ruby on Puma, PHP's
//! `php -S` and php-fpm behind nginx, Rust on axum, C++ on cpp-httplib): the
//! same HTTP/1.1 scenarios against each, then every span is checked against
//! the request that caused it. Run as root with `--test-threads=1`.

use std::sync::Barrier;
use std::thread;

use integration_tests::agent::Agent;
use integration_tests::apps::{Behaviour, Lang, Server};
use integration_tests::http::{request_on_fresh_connection, Connection, Request, Response};
use integration_tests::random_hex;
use integration_tests::require_root;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Window};

#[test]
fn python_http_server() {
    server_scenarios(Lang::Python);
}

#[test]
fn node_http_server() {
    server_scenarios(Lang::Node);
}

#[test]
fn go_http_server() {
    server_scenarios(Lang::Go);
}

#[test]
fn java_http_server() {
    server_scenarios(Lang::Java);
}

#[test]
fn flask_waitress_server() {
    server_scenarios(Lang::Flask);
}

#[test]
fn express_server() {
    server_scenarios(Lang::Express);
}

#[test]
fn spark_java_server() {
    server_scenarios(Lang::SparkJava);
}

#[test]
fn ruby_puma_server() {
    server_scenarios(Lang::Ruby);
}

#[test]
fn php_builtin_server() {
    server_scenarios(Lang::Php);
}

#[test]
fn php_fpm_behind_nginx() {
    server_scenarios(Lang::PhpFpm);
}

#[test]
fn rust_axum_server() {
    server_scenarios(Lang::Rust);
}

#[test]
fn cpp_httplib_server() {
    server_scenarios(Lang::Cpp);
}

/// Starts `lang`'s server and the agent, runs every scenario, stops the agent
/// and checks that each request produced exactly its span and nothing else.
fn server_scenarios(lang: Lang) {
    require_root();
    // Not in BEYLA_OPEN_PORT: the agent must not trace it, only the traced
    // server's call to it.
    let downstream = Server::start(Lang::Go, None);
    let server = Server::start(lang, Some(&downstream.url("/health")));
    // Scenario 8 sends `traceparent`: joining it is asked for, as in Beyla.
    let agent = Agent::start(&[
        ("BEYLA_OPEN_PORT", &server.port.to_string()),
        ("BEYLA_BPF_TRACK_REQUEST_HEADERS", "true"),
    ]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();

    let mut run = Run {
        port: server.port,
        service: server.service_name(),
        pid: server.pid(),
        behaviour: lang.behaviour(),
        expected: Vec::new(),
    };
    keep_alive_requests(&mut run);
    idle_keep_alive_request(&mut run);
    fresh_connection_requests(&mut run);
    posts_of_various_sizes(&mut run);
    error_statuses(&mut run);
    chunked_responses(&mut run);
    large_request_headers(&mut run);
    concurrent_connections(&mut run);
    incoming_traceparent(&mut run);
    let downstream_spans = downstream_call(&mut run, downstream.port);

    // Every client connection is closed by now: each scenario drops its own.
    let output = agent.stop();
    let context = format!("{lang:?} server, agent stderr:\n{}", output.stderr);
    let matched = assert_spans(&output.spans, &run.expected, &context);
    // The figures a run reports (visible with --nocapture, as .ci/run runs it).
    let counters = output
        .stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("");
    println!(
        "{lang:?} server: {} requests expected {} spans, agent printed {}; {counters}",
        run.expected
            .iter()
            .filter(|e| e.kind == Kind::Server)
            .count(),
        run.expected.len(),
        output.spans.len()
    );

    let Some((server_call, client_call)) = downstream_spans else {
        return;
    };
    let (server_span, client_span) = (&matched[server_call], &matched[client_call]);
    assert!(
        client_span.trace_id == server_span.trace_id
            && client_span.parent_span_id == server_span.span_id,
        "[downstream] the CLIENT span must be a child of the SERVER span that made the call \
         (same traceId, parentSpanId = its spanId)\n  server: {}\n  client: {}\n{context}",
        server_span.line,
        client_span.line
    );
}

/// The traced server and the spans the scenarios expect from it.
struct Run {
    port: u16,
    service: String,
    pid: u32,
    behaviour: Behaviour,
    expected: Vec<Expected>,
}

/// The connection a scenario sends its requests on: one kept open, or a new
/// one per request for a server that closes each (`php -S`).
struct Session {
    port: u16,
    kept: Option<Connection>,
}

impl Session {
    fn round_trip(&mut self, request: &Request) -> (Response, Window) {
        match self.kept.as_mut() {
            Some(connection) => connection.round_trip(request),
            None => request_on_fresh_connection(self.port, request),
        }
    }
}

impl Run {
    fn session(&self) -> Session {
        Session {
            port: self.port,
            kept: self
                .behaviour
                .keep_alive
                .then(|| Connection::open(self.port)),
        }
    }

    /// Records that `request`, made during `window`, must yield one SERVER
    /// span; returns its index in `expected`.
    fn expect_server_span(
        &mut self,
        scenario: &str,
        request: &Request,
        route: &str,
        status: u16,
        window: Window,
        lineage: Lineage,
    ) -> usize {
        self.expected.push(Expected {
            scenario: scenario.to_string(),
            kind: Kind::Server,
            method: request.method.clone(),
            path: request.path.clone(),
            route: route.to_string(),
            status,
            service: self.service.clone(),
            pid: self.pid,
            server_port: self.port,
            window,
            lineage,
        });
        self.expected.len() - 1
    }

    /// Sends `request` on a new connection, asserts the status, and expects a
    /// root SERVER span with `route`.
    fn fresh_request(&mut self, scenario: &str, request: &Request, route: &str, status: u16) {
        let (response, window) = request_on_fresh_connection(self.port, request);
        assert_status(scenario, request, &response, status);
        self.expect_server_span(scenario, request, route, status, window, Lineage::Root);
    }
}

fn assert_status(scenario: &str, request: &Request, response: &Response, status: u16) {
    assert_eq!(
        response.status,
        status,
        "[{scenario}] {} answered {} (expected {status}), body: {}",
        request.line(),
        response.status,
        response.body_text()
    );
}

/// Scenario 1: many requests over one keep-alive connection, so the agent must
/// split one TCP stream into requests.
fn keep_alive_requests(run: &mut Run) {
    const SCENARIO: &str = "1 keep-alive";
    let mut session = run.session();
    for i in 0..100 {
        let request = Request::get(&format!("/users/{}", 1000 + i));
        let (response, window) = session.round_trip(&request);
        assert_status(SCENARIO, &request, &response, 200);
        assert_eq!(
            response.closes_connection,
            !run.behaviour.keep_alive,
            "[{SCENARIO}] the server closed the keep-alive connection after {}; \
             the sample apps must keep HTTP/1.1 connections open",
            request.line()
        );
        run.expect_server_span(SCENARIO, &request, "/users/*", 200, window, Lineage::Root);
    }
}

/// Scenario 10: a request on a keep-alive connection that sat idle. A
/// blocking server thread is already waiting in `read` before the request is
/// sent; the span must still start when the request arrived, inside its window.
fn idle_keep_alive_request(run: &mut Run) {
    const SCENARIO: &str = "10 idle keep-alive";
    /// Long enough to dwarf the window slack; not a measurement.
    const IDLE: std::time::Duration = std::time::Duration::from_millis(300);
    let mut session = run.session();
    for i in 0..2 {
        let request = Request::get(&format!("/users/{}", 3000 + i));
        let (response, window) = session.round_trip(&request);
        assert_status(SCENARIO, &request, &response, 200);
        run.expect_server_span(SCENARIO, &request, "/users/*", 200, window, Lineage::Root);
        std::thread::sleep(IDLE);
    }
}

/// Scenario 2: one request per connection.
fn fresh_connection_requests(run: &mut Run) {
    for i in 0..20 {
        let request = Request::get(&format!("/users/{}", 2000 + i));
        run.fresh_request("2 fresh connections", &request, "/users/*", 200);
    }
}

/// Scenario 3: request bodies from a few bytes to several capture buffers,
/// over one connection, so the end of each body must be found exactly.
fn posts_of_various_sizes(run: &mut Run) {
    const SCENARIO: &str = "3 POST bodies";
    let mut session = run.session();
    for size in [10, 100, 500, 1000, 1023, 1025, 2000, 3000, 4096, 5000] {
        let request = Request::post("/users", "text/plain", vec![b'a'; size]);
        let (response, window) = session.round_trip(&request);
        assert_status(SCENARIO, &request, &response, 201);
        let received = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|json| json["received"].as_u64());
        assert_eq!(
            received,
            Some(size as u64),
            "[{SCENARIO}] POST /users with {size} bytes answered {}",
            response.body_text()
        );
        run.expect_server_span(SCENARIO, &request, "/users", 201, window, Lineage::Root);
    }
}

/// Scenario 4: status codes other than 200 are reported as they were sent.
fn error_statuses(run: &mut Run) {
    const SCENARIO: &str = "4 error statuses";
    for i in 0..5 {
        let path = format!("/missing-{i}");
        // Beyla's heuristic: a segment with a digit becomes the wildcard.
        run.fresh_request(SCENARIO, &Request::get(&path), "/*", 404);
        run.fresh_request(SCENARIO, &Request::get("/error"), "/error", 500);
    }
}

/// Scenario 5: a chunked response ends at its last chunk, not at a length.
fn chunked_responses(run: &mut Run) {
    const SCENARIO: &str = "5 chunked";
    for _ in 0..5 {
        let request = Request::get("/chunked");
        let (response, window) = request_on_fresh_connection(run.port, &request);
        assert_status(SCENARIO, &request, &response, 200);
        assert_eq!(
            response.chunked, run.behaviour.chunked,
            "[{SCENARIO}] /chunked answered with these headers {:?}",
            response.headers
        );
        assert_eq!(response.body_text(), "part1;part2;part3", "[{SCENARIO}]");
        run.expect_server_span(SCENARIO, &request, "/chunked", 200, window, Lineage::Root);
    }
}

/// Scenario 6: headers far longer than what the probes copy per call; the
/// request line must still be read and the request must end at the response.
/// One 8 KiB header, or 8 KiB over several lines where a server limits a line.
fn large_request_headers(run: &mut Run) {
    const TOTAL: usize = 8192;
    let line = run
        .behaviour
        .header_line_limit
        .map_or(TOTAL, |limit| limit / 2);
    let mut request = Request::get("/health");
    for (i, start) in (0..TOTAL).step_by(line).enumerate() {
        let value = "a".repeat(line.min(TOTAL - start));
        request = request.header(&format!("X-Big-{i}"), &value);
    }
    run.fresh_request("6 8 KiB of headers", &request, "/health", 200);
}

/// Scenario 7: 50 connections opened and used at the same moment.
fn concurrent_connections(run: &mut Run) {
    const SCENARIO: &str = "7 concurrent";
    const CONNECTIONS: usize = 50;
    let barrier = Barrier::new(CONNECTIONS);
    let port = run.port;
    let results: Vec<(Request, Response, Window)> = thread::scope(|scope| {
        let threads: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let request = Request::get(&format!("/users/{}", 5000 + i));
                    // Before anything that can fail, so no thread waits forever.
                    barrier.wait();
                    let mut connection = Connection::open(port);
                    let (response, window) = connection.round_trip(&request);
                    (request, response, window)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .expect("a concurrent request failed (see its panic above)")
            })
            .collect()
    });
    for (request, response, window) in results {
        assert_status(SCENARIO, &request, &response, 200);
        run.expect_server_span(SCENARIO, &request, "/users/*", 200, window, Lineage::Root);
    }
}

/// Scenario 8: a request carrying W3C `traceparent` joins the caller's trace.
fn incoming_traceparent(run: &mut Run) {
    const SCENARIO: &str = "8 traceparent";
    let (trace_id, parent_span_id) = (random_hex(16), random_hex(8));
    let request = Request::get("/users/9000")
        .header("traceparent", &format!("00-{trace_id}-{parent_span_id}-01"));
    let (response, window) = request_on_fresh_connection(run.port, &request);
    assert_status(SCENARIO, &request, &response, 200);
    let lineage = Lineage::Joins {
        trace_id,
        parent_span_id,
    };
    run.expect_server_span(SCENARIO, &request, "/users/*", 200, window, lineage);
}

/// Scenario 9: while serving `/downstream` the server calls the untraced
/// server's `/health`; that call is a CLIENT span. Returns the indices of the
/// SERVER and CLIENT expectations, whose link the caller checks; behind nginx
/// a php-fpm worker (not traced) makes the call, so there is no CLIENT span.
fn downstream_call(run: &mut Run, downstream_port: u16) -> Option<(usize, usize)> {
    const SCENARIO: &str = "9 downstream";
    let request = Request::get("/downstream");
    let (response, window) = request_on_fresh_connection(run.port, &request);
    assert_status(SCENARIO, &request, &response, 200);
    let server_call = run.expect_server_span(
        SCENARIO,
        &request,
        "/downstream",
        200,
        window,
        Lineage::Root,
    );
    if !run.behaviour.downstream_in_process {
        return None;
    }
    run.expected.push(Expected {
        scenario: SCENARIO.to_string(),
        kind: Kind::Client,
        method: "GET".into(),
        path: "/health".into(),
        route: "/health".into(),
        status: 200,
        service: run.service.clone(),
        pid: run.pid,
        server_port: downstream_port,
        window,
        lineage: Lineage::ChildOfMatchedSpan,
    });
    Some((server_call, run.expected.len() - 1))
}

/// What php-fpm itself gives when it is selected too: nothing for the
/// requests nginx hands it (FastCGI over a Unix socket is neither HTTP nor
/// TCP), and a root CLIENT span for each call a PHP worker makes.
#[test]
fn php_fpm_workers_give_client_spans_only() {
    const DOWNSTREAM_CALLS: usize = 3;
    require_root();
    let downstream = Server::start(Lang::Go, None);
    let server = Server::start(Lang::PhpFpm, Some(&downstream.url("/health")));
    let agent = Agent::start(&[("BEYLA_EXECUTABLE_NAME", "php-fpm[0-9.]*$")]);
    agent.wait_ready();
    for i in 0..5 {
        let request = Request::get(&format!("/users/{i}"));
        let (response, _) = request_on_fresh_connection(server.port, &request);
        assert_eq!(response.status, 200);
    }
    for _ in 0..DOWNSTREAM_CALLS {
        let (response, _) = request_on_fresh_connection(server.port, &Request::get("/downstream"));
        assert_eq!(response.body_text(), "downstream 200");
    }
    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_eq!(
        output.spans.len(),
        DOWNSTREAM_CALLS,
        "one span per downstream call, none for the FastCGI requests\n{context}"
    );
    for span in &output.spans {
        assert!(
            span.kind == Kind::Client
                && span.path == "/health"
                && span.status == 200
                && span.server_port == downstream.port
                && span.service.starts_with("php-fpm")
                && span.parent_span_id.is_empty(),
            "expected a root CLIENT span GET /health from a php-fpm worker: {}\n{context}",
            span.line
        );
    }
}
