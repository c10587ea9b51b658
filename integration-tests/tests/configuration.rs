//! The config file end to end: the reference example (YAML and TOML) selects
//! and names a service, route patterns and the unmatched modes shape
//! `http.route`, ignored patterns drop spans or metrics per `ignore_mode`,
//! the sampler thins traces but never metrics, and bad files are refused with
//! one clear line, and `--check-config` agrees with start-up on every
//! endpoint form. Run as root with `--test-threads=1`.

use std::collections::BTreeSet;

use serde_json::Value;

use integration_tests::agent::Agent;
use integration_tests::apps::{free_port, Lang, Server};
use integration_tests::config_files::{
    json_lines, parse_exposition, path_str, route_count, run_agent, sample_lines, scrape,
    scrape_until, server_counts, ConfigDir, RawAgent, Sample,
};
use integration_tests::http::{Connection, Request};
use integration_tests::random_hex;
use integration_tests::require_root;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Span};

/// The example of docs/configuration.md with the ports of this run.
fn reference_yaml(port: u16, prometheus_port: u16) -> String {
    format!(
        "log_level: INFO

discovery:
  services:
    - name: my-app
      open_port: {port}

ebpf:
  wakeup_len: 100
  track_request_headers: false
  high_request_volume: false

otel_traces_export:
  endpoint: http://tempo:4318

prometheus_export:
  port: {prometheus_port}
  path: /metrics

otel_metrics_export:
  endpoint: http://prometheus-otlp:9090
"
    )
}

/// The same document in TOML.
fn reference_toml(port: u16, prometheus_port: u16) -> String {
    format!(
        "log_level = \"INFO\"

[[discovery.services]]
name = \"my-app\"
open_port = {port}

[ebpf]
wakeup_len = 100
track_request_headers = false
high_request_volume = false

[otel_traces_export]
endpoint = \"http://tempo:4318\"

[prometheus_export]
port = {prometheus_port}
path = \"/metrics\"

[otel_metrics_export]
endpoint = \"http://prometheus-otlp:9090\"
"
    )
}

/// A config selecting the server on `port`, followed by `rest`.
fn select_port(port: u16, rest: &str) -> String {
    format!("discovery:\n  services:\n    - open_port: {port}\n{rest}")
}

/// The SERVER spans the agent must print for requests to `server`.
struct Expectations<'a> {
    scenario: String,
    server: &'a Server,
    service: String,
    expected: Vec<Expected>,
}

impl<'a> Expectations<'a> {
    fn new(scenario: &str, server: &'a Server, service: &str) -> Expectations<'a> {
        Expectations {
            scenario: scenario.to_string(),
            server,
            service: service.to_string(),
            expected: Vec::new(),
        }
    }

    /// Sends `request` over `conn`, checks the status, and records the span it
    /// must produce with `route` (unless `traced` is false).
    fn send(
        &mut self,
        conn: &mut Connection,
        request: &Request,
        status: u16,
        route: &str,
        lineage: Lineage,
        traced: bool,
    ) {
        let (response, window) = conn.round_trip(request);
        assert_eq!(
            response.status,
            status,
            "[{}] {} answered {}: {}",
            self.scenario,
            request.line(),
            response.status,
            response.body_text()
        );
        if traced {
            self.expected.push(Expected {
                scenario: self.scenario.clone(),
                kind: Kind::Server,
                method: request.method.clone(),
                path: request.path.clone(),
                route: route.to_string(),
                status,
                service: self.service.clone(),
                pid: self.server.pid(),
                server_port: self.server.port,
                window,
                lineage,
            });
        }
    }

    /// A GET of a fresh trace that must be traced.
    fn get(&mut self, conn: &mut Connection, path: &str, status: u16, route: &str) {
        self.send(
            conn,
            &Request::get(path),
            status,
            route,
            Lineage::Root,
            true,
        );
    }
}

/// The agent started with the config file `name` in `dir` (holding `text`)
/// and the variables `env`; returned once it traces `server` and is ready.
fn start_with_config(
    dir: &ConfigDir,
    name: &str,
    text: &str,
    server: &Server,
    env: &[(&str, &str)],
) -> Agent {
    let path = dir.write(name, text);
    let mut vars = vec![("BEYLA_CONFIG_PATH", path_str(&path))];
    vars.extend_from_slice(env);
    let agent = Agent::start(&vars);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    agent
}

fn agent_context(scenario: &str, stderr: &str) -> String {
    format!("[{scenario}] agent stderr:\n{stderr}")
}

/// [`agent_context`] after the config file the agent ran with.
fn config_context(scenario: &str, text: &str, stderr: &str) -> String {
    format!("config:\n{text}\n{}", agent_context(scenario, stderr))
}

#[test]
fn reference_config_loads_and_selects() {
    require_root();
    let dir = ConfigDir::new("reference");
    for format in ["yml", "toml"] {
        let scenario = format!("reference config as {format}");
        let server = Server::start(Lang::Python, None);
        let prometheus_port = free_port();
        let text = match format {
            "yml" => reference_yaml(server.port, prometheus_port),
            _ => reference_toml(server.port, prometheus_port),
        };
        let path = dir.write(&format!("beyla-config.{format}"), &text);

        let check = run_agent(
            &["--check-config"],
            &[("BEYLA_CONFIG_PATH", path_str(&path))],
        );
        assert!(
            check.status.success()
                && check.stdout.contains("name: my-app")
                && check.stdout.contains(&server.port.to_string()),
            "[{scenario}] --check-config must exit 0 and show `name: my-app` and port {}; \
             status {}, config:\n{text}\nstdout:\n{}\nstderr:\n{}",
            server.port,
            check.status,
            check.stdout,
            check.stderr
        );

        let agent = Agent::start(&[("BEYLA_CONFIG_PATH", path_str(&path))]);
        agent.wait_instrumenting(server.pid());
        agent.wait_ready();
        let mut run = Expectations::new(&scenario, &server, "my-app");
        let mut conn = Connection::open(server.port);
        run.get(&mut conn, "/users/42", 200, "/users/*");
        run.get(&mut conn, "/health", 200, "/health");
        run.get(&mut conn, "/users/7", 200, "/users/*");
        run.get(&mut conn, "/nope", 404, "/nope");
        drop(conn);
        let output = agent.stop();
        assert_spans(
            &output.spans,
            &run.expected,
            &config_context(&scenario, &text, &output.stderr),
        );
    }
}

#[test]
fn routes_patterns_collapse_ids() {
    require_root();
    const REQUESTS: usize = 1000;
    const ROUTE: &str = "/users/{id}";
    let scenario = "routes.patterns";
    let dir = ConfigDir::new("patterns");
    // Go: Python's server writes headers and body separately, and Nagle with
    // delayed ACKs makes each of 1,000 keep-alive requests take ~40 ms.
    let server = Server::start(Lang::Go, None);
    let prometheus_port = free_port();
    let text = select_port(server.port, "routes:\n  patterns: [\"/users/{id}\"]\n");
    let prometheus = prometheus_port.to_string();
    let agent = start_with_config(
        &dir,
        "patterns.yml",
        &text,
        &server,
        &[("BEYLA_PROMETHEUS_PORT", &prometheus)],
    );

    let mut run = Expectations::new(scenario, &server, &server.service_name());
    let mut conn = Connection::open(server.port);
    for _ in 0..REQUESTS {
        // `id-` keeps the heuristic from collapsing the id: only the pattern can.
        let path = format!("/users/id-{}", random_hex(6));
        run.get(&mut conn, &path, 200, ROUTE);
    }
    drop(conn);

    let metrics = scrape_until(prometheus_port, |s| {
        s.iter().map(|x| x.value).sum::<f64>() >= REQUESTS as f64
    });
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    assert_spans(&output.spans, &run.expected, &context);

    let counts = server_counts(&metrics);
    let users: Vec<&Sample> = counts
        .iter()
        .filter(|s| s.label("http_route").starts_with("/users"))
        .collect();
    assert!(
        users.len() == 1
            && users[0].label("http_route") == ROUTE
            && users[0].value == REQUESTS as f64,
        "[{scenario}] Prometheus must have exactly one http_server_request_duration_seconds_count \
         series for /users, with http_route=\"{ROUTE}\" and value {REQUESTS}; got:\n{}\n\n{context}",
        sample_lines(&counts)
    );
}

#[test]
fn ignored_patterns_by_mode() {
    require_root();
    const EACH: usize = 10;
    let dir = ConfigDir::new("ignored");
    for mode in ["traces", "metrics", "all"] {
        let scenario = format!("ignore_mode {mode}");
        let server = Server::start(Lang::Python, None);
        let prometheus_port = free_port();
        let text = select_port(
            server.port,
            &format!("routes:\n  ignored_patterns: [/health]\n  ignore_mode: {mode}\n"),
        );
        let prometheus = prometheus_port.to_string();
        let agent = start_with_config(
            &dir,
            &format!("ignored-{mode}.yml"),
            &text,
            &server,
            &[("BEYLA_PROMETHEUS_PORT", &prometheus)],
        );

        let health_traced = mode == "metrics";
        let health_counted = mode == "traces";
        let mut run = Expectations::new(&scenario, &server, &server.service_name());
        let mut conn = Connection::open(server.port);
        // Alternating, ending with /users/1: once its last request is counted,
        // every /health before it has gone through the pipeline too.
        for _ in 0..EACH {
            let health = Request::get("/health");
            run.send(
                &mut conn,
                &health,
                200,
                "/health",
                Lineage::Root,
                health_traced,
            );
            run.get(&mut conn, "/users/1", 200, "/users/*");
        }
        drop(conn);

        let metrics = scrape_until(prometheus_port, |s| {
            route_count(s, "/users/*") >= EACH as f64
                && (!health_counted || route_count(s, "/health") >= EACH as f64)
        });
        let output = agent.stop();
        let context = config_context(&scenario, &text, &output.stderr);
        assert_spans(&output.spans, &run.expected, &context);

        let counts = server_counts(&metrics);
        let health: Vec<&Sample> = counts
            .iter()
            .filter(|s| s.label("http_route") == "/health")
            .collect();
        let health_total: f64 = health.iter().map(|s| s.value).sum();
        let users_total = route_count(&counts, "/users/*");
        let health_ok = if health_counted {
            health.len() == 1 && health_total == EACH as f64
        } else {
            health.is_empty()
        };
        assert!(
            health_ok && users_total == EACH as f64,
            "[{scenario}] Prometheus must count /users/* {EACH} times and {}; got:\n{}\n\n{context}",
            if health_counted {
                format!("have one /health series with count {EACH}")
            } else {
                "have no /health series".to_string()
            },
            sample_lines(&counts)
        );
    }
}

/// (mode, `routes` section, [(path, status, route)])
type UnmatchedCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, u16, &'static str)>,
);

#[test]
fn unmatched_modes() {
    require_root();
    let dir = ConfigDir::new("unmatched");

    let cases: [UnmatchedCase; 3] = [
        (
            "path",
            "routes:\n  unmatched: path\n",
            vec![
                ("/users/42", 200, "/users/42"),
                ("/users/abc", 200, "/users/abc"),
                ("/health", 200, "/health"),
                ("/nope/7", 404, "/nope/7"),
            ],
        ),
        (
            "wildcard",
            "routes:\n  unmatched: wildcard\n",
            vec![
                ("/users/42", 200, "/**"),
                ("/health", 200, "/**"),
                ("/nope/7", 404, "/**"),
            ],
        ),
        (
            "heuristic (default)",
            "",
            vec![
                ("/users/42", 200, "/users/*"),
                ("/users/alice", 200, "/users/alice"),
                ("/users/deadbeef42", 200, "/users/*"),
                ("/health", 200, "/health"),
                ("/nope/7", 404, "/nope/*"),
                // Beyla's documented example: an id of letters only goes too.
                (
                    "/document/d/CfMkAGbE_aivhFydEpaRafPuGWbmHfG/edit",
                    404,
                    "/document/d/*/edit",
                ),
            ],
        ),
    ];
    for (mode, routes, requests) in cases {
        let scenario = format!("unmatched {mode}");
        let server = Server::start(Lang::Python, None);
        let text = select_port(server.port, routes);
        let agent = start_with_config(
            &dir,
            &format!("unmatched-{}.yml", &mode[..4]),
            &text,
            &server,
            &[],
        );
        let mut run = Expectations::new(&scenario, &server, &server.service_name());
        let mut conn = Connection::open(server.port);
        for (path, status, route) in requests {
            run.get(&mut conn, path, status, route);
        }
        drop(conn);
        let output = agent.stop();
        let context = config_context(&scenario, &text, &output.stderr);
        assert_spans(&output.spans, &run.expected, &context);
    }

    unmatched_unset(&dir);
    unmatched_low_cardinality(&dir);
}

/// `unset`: the span has no `http.route` at all and is named by the method.
fn unmatched_unset(dir: &ConfigDir) {
    let scenario = "unmatched unset";
    let server = Server::start(Lang::Python, None);
    let text = select_port(server.port, "routes:\n  unmatched: unset\n");
    let path = dir.write("unmatched-unset.yml", &text);
    let agent = RawAgent::start(&[("BEYLA_CONFIG_PATH", path_str(&path))]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let paths = ["/users/42", "/health", "/users/abc"];
    let mut conn = Connection::open(server.port);
    for path in paths {
        let (response, _) = conn.round_trip(&Request::get(path));
        assert_eq!(response.status, 200, "[{scenario}] GET {path}");
    }
    drop(conn);
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    let mut problems = Vec::new();
    let got_paths: Vec<&str> = output
        .json
        .iter()
        .map(|s| {
            s.pointer("/attributes/url.path")
                .and_then(Value::as_str)
                .unwrap_or("")
        })
        .collect();
    if got_paths != paths {
        problems.push(format!(
            "expected one span per request with url.path {paths:?} in order, got {got_paths:?}"
        ));
    }
    for span in &output.json {
        let route = span
            .pointer("/attributes")
            .and_then(|a| a.get("http.route"));
        let name = span.get("name").and_then(Value::as_str);
        let pid = span
            .pointer("/resource/process.pid")
            .and_then(Value::as_u64);
        if route.is_some() || name != Some("GET") || pid != Some(u64::from(server.pid())) {
            problems.push(format!(
                "expected no http.route attribute, name \"GET\" and pid {}: {span}",
                server.pid()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "[{scenario}] {}\nspans:\n{}\n\n{context}",
        problems.join("\n"),
        json_lines(&output.json.iter().collect::<Vec<_>>())
    );
}

/// `low-cardinality` with at most 3 values per segment: the first 3 ids keep
/// their name, every later one becomes `/users/*`.
fn unmatched_low_cardinality(dir: &ConfigDir) {
    const MAX: usize = 3;
    let scenario = "unmatched low-cardinality";
    let ids = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    ];
    let server = Server::start(Lang::Python, None);
    let text = select_port(
        server.port,
        &format!("routes:\n  unmatched: low-cardinality\n  max_path_segment_cardinality: {MAX}\n"),
    );
    let agent = start_with_config(dir, "unmatched-low.yml", &text, &server, &[]);
    let mut run = Expectations::new(scenario, &server, &server.service_name());
    let mut conn = Connection::open(server.port);
    for (i, id) in ids.iter().enumerate() {
        let path = format!("/users/{id}");
        let route = if i < MAX {
            path.clone()
        } else {
            "/users/*".to_string()
        };
        run.get(&mut conn, &path, 200, &route);
    }
    drop(conn);
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    let routes: BTreeSet<&str> = output.spans.iter().map(|s| s.route.as_str()).collect();
    assert!(
        routes.len() <= MAX + 1,
        "[{scenario}] {} distinct ids may give at most {} distinct routes, got {routes:?}\n\n{context}",
        ids.len(),
        MAX + 1
    );
    assert_spans(&output.spans, &run.expected, &context);
}

/// One sampling scenario: `requests` GETs (each with `traceparent` flags
/// `flags` if given), then exactly `requests` counted by Prometheus; returns
/// the printed spans, the expectations (all requests, as if all were kept)
/// and the context for messages.
fn sampled_run(
    dir: &ConfigDir,
    scenario: &str,
    sampler: &str,
    requests: usize,
    flags: Option<&str>,
    server: &Server,
) -> (Vec<Span>, Vec<Expected>, String) {
    let prometheus_port = free_port();
    let text = select_port(
        server.port,
        &format!(
            "ebpf:\n  track_request_headers: true\notel_traces_export:\n  sampler:\n{sampler}"
        ),
    );
    let prometheus = prometheus_port.to_string();
    let agent = start_with_config(
        dir,
        &format!("{}.yml", scenario.replace(' ', "-")),
        &text,
        server,
        &[("BEYLA_PROMETHEUS_PORT", &prometheus)],
    );
    let mut run = Expectations::new(scenario, server, &server.service_name());
    let mut conn = Connection::open(server.port);
    for i in 0..requests {
        let path = format!("/users/{i}");
        let mut request = Request::get(&path);
        let mut lineage = Lineage::Root;
        if let Some(flags) = flags {
            let (trace_id, parent_span_id) = (random_hex(16), random_hex(8));
            request = request.header(
                "traceparent",
                &format!("00-{trace_id}-{parent_span_id}-{flags}"),
            );
            lineage = Lineage::Joins {
                trace_id,
                parent_span_id,
            };
        }
        run.send(&mut conn, &request, 200, "/users/*", lineage, true);
    }
    drop(conn);
    let metrics = scrape_until(prometheus_port, |s| {
        route_count(s, "/users/*") >= requests as f64
    });
    // Once more, so that a count going past `requests` shows too.
    let metrics = if route_count(&server_counts(&metrics), "/users/*") == requests as f64 {
        scrape(prometheus_port)
    } else {
        metrics
    };
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    let counts = server_counts(&metrics);
    assert_eq!(
        route_count(&counts, "/users/*"),
        requests as f64,
        "[{scenario}] metrics count every request, sampled or not: Prometheus must count \
         {requests} GET /users/*; got:\n{}\n\n{context}",
        sample_lines(&counts)
    );
    (output.spans, run.expected, context)
}

fn assert_no_spans(scenario: &str, spans: &[Span], context: &str) {
    assert!(
        spans.is_empty(),
        "[{scenario}] the sampler must drop every trace, but {} span(s) were printed:\n{}\n\n{context}",
        spans.len(),
        spans
            .iter()
            .map(|s| format!("  {}", s.line))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn sampling() {
    require_root();
    let dir = ConfigDir::new("sampling");
    // Go rather than Python: see routes_patterns_collapse_ids.
    let server = Server::start(Lang::Go, None);

    // traceidratio 0.1 over 2,000 fresh traces: Binomial(2000, 0.1) has mean
    // 200 and sd 13.4; [156, 244] is its 99.9% interval.
    const N: usize = 2000;
    let scenario = "traceidratio 0.1";
    let (spans, expected, context) = sampled_run(
        &dir,
        scenario,
        "    name: traceidratio\n    arg: \"0.1\"\n",
        N,
        None,
        &server,
    );
    let kept = spans.len();
    let foreign: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.kind != Kind::Server
                || s.pid != server.pid()
                || s.route != "/users/*"
                || !expected.iter().any(|e| e.path == s.path)
        })
        .collect();
    let distinct_paths: BTreeSet<&str> = spans.iter().map(|s| s.path.as_str()).collect();
    assert!(
        (156..=244).contains(&kept) && foreign.is_empty() && distinct_paths.len() == kept,
        "[{scenario}] expected between 156 and 244 of {N} server spans (99.9% binomial interval \
         for p=0.1), each for a distinct request made; got {kept} spans, {} distinct paths, \
         {} not matching a request:\n{}\n\n{context}",
        distinct_paths.len(),
        foreign.len(),
        foreign
            .iter()
            .map(|s| format!("  {}", s.line))
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("[{scenario}] kept {kept} of {N} traces");

    // A sampled parent is followed even when the root ratio is 0.
    const M: usize = 20;
    let scenario = "parentbased_traceidratio 0, parent sampled";
    let (spans, expected, context) = sampled_run(
        &dir,
        scenario,
        "    name: parentbased_traceidratio\n    arg: 0\n",
        M,
        Some("01"),
        &server,
    );
    assert_spans(&spans, &expected, &context);

    // An unsampled parent is followed even when the root sampler keeps all.
    let scenario = "parentbased_always_on, parent not sampled";
    let (spans, _, context) = sampled_run(
        &dir,
        scenario,
        "    name: parentbased_always_on\n",
        M,
        Some("00"),
        &server,
    );
    assert_no_spans(scenario, &spans, &context);

    let scenario = "always_off";
    let (spans, _, context) =
        sampled_run(&dir, scenario, "    name: always_off\n", M, None, &server);
    assert_no_spans(scenario, &spans, &context);
}

/// Beyla's default: without `ebpf.track_request_headers`, an incoming
/// `traceparent` is not followed; every server span starts its own trace.
#[test]
fn traceparent_is_followed_only_with_track_request_headers() {
    require_root();
    let server = Server::start(Lang::Go, None);
    for track in ["false", "true"] {
        let scenario = format!("track_request_headers={track}");
        let agent = Agent::start(&[
            ("BEYLA_OPEN_PORT", &server.port.to_string()),
            ("BEYLA_BPF_TRACK_REQUEST_HEADERS", track),
        ]);
        agent.wait_instrumenting(server.pid());
        agent.wait_ready();
        let mut run = Expectations::new(&scenario, &server, &server.service_name());
        let mut conn = Connection::open(server.port);
        for i in 0..3 {
            let (trace_id, parent_span_id) = (random_hex(16), random_hex(8));
            let request = Request::get(&format!("/users/{i}"))
                .header("traceparent", &format!("00-{trace_id}-{parent_span_id}-01"));
            let lineage = match track {
                "true" => Lineage::Joins {
                    trace_id,
                    parent_span_id,
                },
                _ => Lineage::Root,
            };
            run.send(&mut conn, &request, 200, "/users/*", lineage, true);
        }
        drop(conn);
        let output = agent.stop();
        assert_spans(
            &output.spans,
            &run.expected,
            &agent_context(&scenario, &output.stderr),
        );
    }
}

#[test]
fn bad_configs_exit_with_one_clear_line() {
    require_root();
    let dir = ConfigDir::new("bad");
    // (file, text, what stderr must contain besides the file name)
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "misspelt-key.yml",
            "discovery:\n  servces:\n    - open_port: 8080\n",
            &["discovery.servces", "did you mean discovery.services"],
        ),
        (
            "bad-port-range.yml",
            "discovery:\n  services:\n    - open_port: \"80-\"\n",
            &["discovery.services[0].open_port", "\"80-\""],
        ),
        (
            "bad-regex.yml",
            "discovery:\n  services:\n    - exe_path: \"(\"\n",
            &["discovery.services[0].exe_path", "\"(\""],
        ),
        (
            "sampler-arg.toml",
            "[[discovery.services]]\nopen_port = 8080\n\n\
             [otel_traces_export.sampler]\nname = \"traceidratio\"\narg = \"ten\"\n",
            &["otel_traces_export.sampler.arg", "\"ten\""],
        ),
        (
            "sampler-arg.yml",
            "discovery:\n  services:\n    - open_port: 8080\n\
             otel_traces_export:\n  sampler:\n    name: traceidratio\n    arg: ten\n",
            &["otel_traces_export.sampler.arg", "\"ten\""],
        ),
        (
            "unknown-unmatched.yml",
            "discovery:\n  services:\n    - open_port: 8080\nroutes:\n  unmatched: sometimes\n",
            &["routes.unmatched", "\"sometimes\""],
        ),
    ];
    let mut problems = Vec::new();
    for (i, (file, text, wanted)) in cases.iter().enumerate() {
        let path = dir.write(file, text);
        // Alternate between the flag and the variable.
        let finished = if i % 2 == 0 {
            run_agent(&["--config", path_str(&path)], &[])
        } else {
            run_agent(&[], &[("BEYLA_CONFIG_PATH", path_str(&path))])
        };
        let stderr = finished.stderr.trim();
        let mut wrong = Vec::new();
        if finished.status.success() {
            wrong.push(format!("exited with {}", finished.status));
        }
        if stderr.lines().count() != 1 {
            wrong.push(format!(
                "{} stderr lines instead of 1",
                stderr.lines().count()
            ));
        }
        if stderr.contains("panicked") {
            wrong.push("panicked".to_string());
        }
        for w in std::iter::once(file).chain(wanted.iter()) {
            if !stderr.contains(w) {
                wrong.push(format!("stderr lacks {w:?}"));
            }
        }
        if !wrong.is_empty() {
            problems.push(format!(
                "{file}: {}\n  file:\n{}\n  stderr:\n{stderr}",
                wrong.join("; "),
                text.lines()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "a bad config file must stop the agent with a non-zero status and one line naming \
         the file and the key:\n\n{}",
        problems.join("\n\n")
    );
}

/// `filter.application`: spans whose `url.path` matches `/health*` reach
/// neither the printed traces nor Prometheus; the others reach both.
#[test]
fn filter_application_drops_spans_and_series() {
    require_root();
    const EACH: usize = 10;
    let scenario = "filter.application";
    let dir = ConfigDir::new("filter");
    let server = Server::start(Lang::Python, None);
    let prometheus_port = free_port();
    let text = select_port(
        server.port,
        "filter:\n  application:\n    url.path:\n      not_match: '/health*'\n",
    );
    let prometheus = prometheus_port.to_string();
    let agent = start_with_config(
        &dir,
        "filter.yml",
        &text,
        &server,
        &[("BEYLA_PROMETHEUS_PORT", &prometheus)],
    );
    let mut run = Expectations::new(scenario, &server, &server.service_name());
    let mut conn = Connection::open(server.port);
    // Alternating, ending with /users/1: once it is counted, every /health
    // before it has gone through the pipeline too.
    for _ in 0..EACH {
        let health = Request::get("/health");
        run.send(&mut conn, &health, 200, "/health", Lineage::Root, false);
        run.get(&mut conn, "/users/1", 200, "/users/*");
    }
    drop(conn);
    let metrics = scrape_until(prometheus_port, |s| {
        route_count(s, "/users/*") >= EACH as f64
    });
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    assert_spans(&output.spans, &run.expected, &context);
    let counts = server_counts(&metrics);
    assert!(
        route_count(&counts, "/users/*") == EACH as f64 && route_count(&counts, "/health") == 0.0,
        "[{scenario}] Prometheus must count /users/* {EACH} times and have no /health series; got:\n{}\n\n{context}",
        sample_lines(&counts)
    );
}

/// `prometheus_export.ttl`: a series not updated for the TTL disappears from
/// the endpoint, while one still updated stays.
#[test]
fn prometheus_ttl_expires_series() {
    require_root();
    let scenario = "prometheus_export.ttl";
    let dir = ConfigDir::new("ttl");
    let server = Server::start(Lang::Python, None);
    let prometheus_port = free_port();
    let text = select_port(
        server.port,
        &format!("prometheus_export:\n  port: {prometheus_port}\n  ttl: 2s\n"),
    );
    let agent = start_with_config(&dir, "ttl.yml", &text, &server, &[]);
    let mut conn = Connection::open(server.port);
    let (response, _) = conn.round_trip(&Request::get("/users/1"));
    assert_eq!(response.status, 200, "[{scenario}] GET /users/1");
    let seen = scrape_until(prometheus_port, |s| route_count(s, "/users/*") >= 1.0);
    // Only /health from now on: /users/* is no longer updated.
    let expired = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (response, _) = conn.round_trip(&Request::get("/health"));
            assert_eq!(response.status, 200, "[{scenario}] GET /health");
            let counts = server_counts(&scrape(prometheus_port));
            let gone =
                route_count(&counts, "/users/*") == 0.0 && route_count(&counts, "/health") > 0.0;
            if gone || std::time::Instant::now() >= deadline {
                break counts;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    drop(conn);
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    assert!(
        route_count(&server_counts(&seen), "/users/*") == 1.0,
        "[{scenario}] /users/* must be counted once first; got:\n{}\n\n{context}",
        sample_lines(&server_counts(&seen))
    );
    assert!(
        route_count(&expired, "/users/*") == 0.0 && route_count(&expired, "/health") > 0.0,
        "[{scenario}] the /users/* series must expire while /health stays; got:\n{}\n\n{context}",
        sample_lines(&expired)
    );
}

/// `prometheus_export.features` without `application`: no request metrics
/// on the endpoint (and a warning for the feature not produced), while the
/// printed traces still have every span.
#[test]
fn prometheus_features_without_application() {
    require_root();
    let scenario = "prometheus_export.features";
    let dir = ConfigDir::new("features");
    let server = Server::start(Lang::Python, None);
    let prometheus_port = free_port();
    let text = select_port(
        server.port,
        &format!("prometheus_export:\n  port: {prometheus_port}\n  features: [application_service_graph]\n"),
    );
    let agent = start_with_config(&dir, "features.yml", &text, &server, &[]);
    let mut run = Expectations::new(scenario, &server, &server.service_name());
    let mut conn = Connection::open(server.port);
    run.get(&mut conn, "/users/1", 200, "/users/*");
    drop(conn);
    // Once the agent counts the span as created, it has been handed to the
    // exporters (in the same pass); a later scrape shows what was recorded.
    let created = |text: &str| {
        parse_exposition(text)
            .iter()
            .any(|s| s.name == "beyla_spans_created_total" && s.value >= 1.0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !created(&scrape(prometheus_port)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = scrape(prometheus_port);
    let output = agent.stop();
    let context = config_context(scenario, &text, &output.stderr);
    assert_spans(&output.spans, &run.expected, &context);
    assert!(
        created(&after) && server_counts(&after).is_empty(),
        "[{scenario}] without the application feature the endpoint must have no request series once the span is created; got:\n{after}\n\n{context}"
    );
    assert!(
        output.stderr.contains(
            "key prometheus_export.features: application_service_graph not supported yet, ignored"
        ),
        "[{scenario}] the feature must be warned about\n\n{context}"
    );
}

/// How the agent must take an endpoint: started with the exporter's URL, or
/// refused before starting.
enum Verdict {
    Exports(&'static str),
    Refused,
}

/// `--check-config` and start-up agree on every endpoint form
/// docs/configuration.md lists: a form the check accepts starts the agent,
/// exporting to the URL it names; a form it refuses stops start-up with the
/// same line.
#[test]
fn check_config_and_start_up_agree_on_endpoint_forms() {
    require_root();
    // (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, verdict for traces)
    let cases: [(&str, Option<&str>, Verdict); 11] = [
        (
            "http://127.0.0.1:4318",
            Some("http/protobuf"),
            Verdict::Exports("http/protobuf to http://127.0.0.1:4318/v1/traces"),
        ),
        (
            "http://127.0.0.1:4318/otlp",
            Some("http/protobuf"),
            Verdict::Exports("http/protobuf to http://127.0.0.1:4318/otlp/v1/traces"),
        ),
        (
            "https://127.0.0.1:4318",
            Some("http/protobuf"),
            Verdict::Exports("http/protobuf to https://127.0.0.1:4318/v1/traces"),
        ),
        (
            "http://[::1]:4318",
            Some("http/protobuf"),
            Verdict::Exports("http/protobuf to http://[::1]:4318/v1/traces"),
        ),
        (
            "http://127.0.0.1:4317",
            Some("grpc"),
            Verdict::Exports("grpc to http://127.0.0.1:4317"),
        ),
        (
            "127.0.0.1:4317",
            Some("grpc"),
            Verdict::Exports("grpc to http://127.0.0.1:4317"),
        ),
        (
            "127.0.0.1:4317",
            None,
            Verdict::Exports("grpc to http://127.0.0.1:4317"),
        ),
        ("127.0.0.1:4318", Some("http/protobuf"), Verdict::Refused),
        ("tempo", Some("grpc"), Verdict::Refused),
        (
            "ftp://127.0.0.1:4318",
            Some("http/protobuf"),
            Verdict::Refused,
        ),
        ("http://:4318", Some("http/protobuf"), Verdict::Refused),
    ];
    let port = free_port().to_string();
    let mut problems = Vec::new();
    for (endpoint, protocol, verdict) in cases {
        let mut env = vec![
            ("BEYLA_OPEN_PORT", port.as_str()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("BEYLA_SHUTDOWN_TIMEOUT", "2s"),
        ];
        if let Some(protocol) = protocol {
            env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", protocol));
        }
        let case = format!("endpoint {endpoint:?}, protocol {protocol:?}");
        let checked = run_agent(&["--check-config"], &env);
        match verdict {
            Verdict::Exports(url) => {
                if !checked.status.success() {
                    problems.push(format!(
                        "{case}: --check-config refused it: {}",
                        checked.stderr.trim()
                    ));
                    continue;
                }
                let agent = Agent::start(&env);
                agent.wait_for_log_containing(
                    &format!("exporting traces over OTLP {url}"),
                    std::time::Duration::from_secs(30),
                );
                agent.wait_ready();
                agent.stop();
            }
            Verdict::Refused => {
                let refusal = checked.stderr.trim().to_string();
                if checked.status.success() || refusal.lines().count() != 1 {
                    problems.push(format!(
                        "{case}: --check-config should refuse it in one line; exit {}, stderr:\n{refusal}",
                        checked.status
                    ));
                    continue;
                }
                let started = run_agent(&[], &env);
                if started.status.success() || started.stderr.trim() != refusal {
                    problems.push(format!(
                        "{case}: start-up should stop with the check's line {refusal:?}; exit {}, stderr:\n{}",
                        started.status,
                        started.stderr.trim()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
