//! Services on one machine joined into one trace: a traced client's call to a
//! traced server gives a server span that is the client span's child, in its
//! trace, with nothing written on the wire. HTTP/1 between the sample apps
//! (a front in each language calling a back in another), gRPC between a
//! grpcio client and a grpc-go server, SQL between psycopg and PostgreSQL,
//! and HTTP between two network namespaces joined by a veth pair.
//! Run as root with `--test-threads=1`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use integration_tests::agent::Agent;
use integration_tests::apps::{python_interpreter, Lang, Server};
use integration_tests::config_files::{path_str, regex_escape, ConfigDir, RawAgent};
use integration_tests::databases::postgres::Postgres;
use integration_tests::grpc_apps::{run_grpc_client, AppServer, ClientApp, ServerApp};
use integration_tests::http::{request_on_fresh_connection, Request};
use integration_tests::netns::VethPair;
use integration_tests::receivers::TempDir;
use integration_tests::require_root;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Span, Window};
use integration_tests::sql_clients::{run, sql_spans, Client, Database};

/// Requests each front sends.
const REQUESTS: usize = 5;

/// Which back each front calls: every language is a client once and a server once.
const PAIRS: [(Lang, Lang); 4] = [
    (Lang::Python, Lang::Node),
    (Lang::Node, Lang::Go),
    (Lang::Go, Lang::Java),
    (Lang::Java, Lang::Python),
];

/// What one request to the front must give.
fn expected_triple(front: &Server, back: &Server, window: Window) -> [Expected; 3] {
    let span = |kind, path: &str, route: &str, server: &Server, lineage| Expected {
        scenario: "same node".into(),
        kind,
        method: "GET".into(),
        path: path.into(),
        route: route.into(),
        status: 200,
        service: server.service_name(),
        pid: server.pid(),
        server_port: server.port,
        window,
        lineage,
    };
    [
        span(
            Kind::Server,
            "/downstream",
            "/downstream",
            front,
            Lineage::Root,
        ),
        // The front's call: its own child, as any call made while serving.
        Expected {
            service: front.service_name(),
            pid: front.pid(),
            ..span(
                Kind::Client,
                "/health",
                "",
                back,
                Lineage::ChildOfMatchedSpan,
            )
        },
        // The back's span: the call's child, in the front's trace.
        span(
            Kind::Server,
            "/health",
            "/health",
            back,
            Lineage::ChildOfMatchedSpan,
        ),
    ]
}

/// `child` is `parent`'s child in `parent`'s trace; else a problem.
fn link_problem(what: &str, parent: &Span, child: &Span) -> Option<String> {
    (child.trace_id != parent.trace_id || child.parent_span_id != parent.span_id).then(|| {
        format!(
            "{what}: want traceId {} and parentSpanId {}\n  parent: {}\n  child:  {}",
            parent.trace_id, parent.span_id, parent.line, child.line
        )
    })
}

#[test]
fn http_front_and_back_on_this_machine_are_one_trace() {
    require_root();
    let mut figures = Vec::new();
    for (front_lang, back_lang) in PAIRS {
        let back = Server::start(back_lang, None);
        let front = Server::start(front_lang, Some(&back.url("/health")));
        let ports = format!("{},{}", front.port, back.port);
        let agent = Agent::start(&[("BEYLA_OPEN_PORT", &ports)]);
        agent.wait_instrumenting(front.pid());
        agent.wait_instrumenting(back.pid());
        agent.wait_ready();
        let mut expected = Vec::new();
        for _ in 0..REQUESTS {
            let (response, window) =
                request_on_fresh_connection(front.port, &Request::get("/downstream"));
            assert_eq!(
                (response.status, response.body_text().as_str()),
                (200, "downstream 200"),
                "{front_lang:?} front calling the {back_lang:?} back"
            );
            expected.extend(expected_triple(&front, &back, window));
        }
        let output = agent.stop();
        let context = format!(
            "{front_lang:?} front, {back_lang:?} back; agent stderr:\n{}",
            output.stderr
        );
        let matched = assert_spans(&output.spans, &expected, &context);
        let mut problems = Vec::new();
        let mut traces = std::collections::HashSet::new();
        for triple in matched.chunks(3) {
            let [front_server, call, back_server] = triple else {
                unreachable!("three spans per request")
            };
            problems.extend(link_problem("the call", front_server, call));
            problems.extend(link_problem("the back's span", call, back_server));
            traces.insert(front_server.trace_id.clone());
        }
        assert!(
            problems.is_empty(),
            "{} broken link(s):\n{}\n\n{context}",
            problems.len(),
            problems.join("\n")
        );
        assert_eq!(traces.len(), REQUESTS, "one trace per request: {traces:?}");
        figures.push(format!(
            "{front_lang:?} client -> {back_lang:?} server: {REQUESTS} requests, {} traces of 3 \
             spans, {} parent ids checked; {}",
            traces.len(),
            2 * REQUESTS,
            joins_line(&output.stderr)
        ));
    }
    println!("same-node HTTP:\n  {}", figures.join("\n  "));
}

/// The agent's `same_node_joins(...)` figures from its `stopped:` line.
fn joins_line(stderr: &str) -> String {
    let stopped = stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_default();
    stopped
        .split_whitespace()
        .skip_while(|w| !w.starts_with("same_node_joins("))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A config file tracing a server by its port and a client by its executable.
fn port_and_executable(dir: &ConfigDir, port: u16, executable: &str) -> String {
    let file = dir.write(
        "beyla-config.yml",
        &format!(
            "discovery:\n  services:\n    - open_port: {port}\n    - exe_path: '^{}$'\n",
            regex_escape(executable)
        ),
    );
    path_str(&file).to_string()
}

#[test]
fn grpc_client_and_server_on_this_machine_are_one_trace() {
    require_root();
    let server = AppServer::start(ServerApp::GoGrpc);
    let dir = ConfigDir::new("same-node-grpc");
    let python = python_interpreter();
    let config = port_and_executable(&dir, server.port, &python.to_string_lossy());
    let agent = RawAgent::start(&[("BEYLA_CONFIG_PATH", &config)]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let run = run_grpc_client(
        "same node gRPC",
        ClientApp::PythonGrpc,
        &server.target(),
        &["unary", "4", "stream", "2", "fail", "2"],
    );
    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    let spans: Vec<Span> = output.lines.iter().map(|l| Span::parse(l)).collect();
    let clients: HashMap<&str, &Span> = spans
        .iter()
        .filter(|s| s.pid == run.pid && s.kind == Kind::Client)
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| s.pid == server.pid() && s.kind == Kind::Server)
        .collect();
    assert_eq!(
        (clients.len(), servers.len()),
        (run.calls.len(), run.calls.len()),
        "one client and one server span per call\n{context}"
    );
    let mut problems = Vec::new();
    for s in &servers {
        match clients.get(s.parent_span_id.as_str()) {
            Some(c) if c.trace_id == s.trace_id && c.attr("rpc.method") == s.attr("rpc.method") => {
            }
            _ => problems.push(format!("server span is no client span's child: {}", s.line)),
        }
    }
    assert!(problems.is_empty(), "{}\n{context}", problems.join("\n"));
    println!(
        "same-node gRPC (grpcio client -> grpc-go server): {} calls, {} server spans each the \
         child of its call's client span; {}",
        run.calls.len(),
        servers.len(),
        joins_line(&output.stderr)
    );
}

#[test]
fn sql_client_and_postgres_on_this_machine_are_one_trace() {
    require_root();
    let postgres = Postgres::get();
    let dir = ConfigDir::new("same-node-sql");
    // PostgreSQL serves each connection from a process it forks: traced by
    // executable, the children from the fork on.
    let file = dir.write(
        "beyla-config.yml",
        &format!(
            "discovery:\n  services:\n    - exe_path: '/postgres$'\n    - exe_path: '{}'\n",
            Client::Python.executable_pattern()
        ),
    );
    let agent = RawAgent::start(&[("BEYLA_CONFIG_PATH", path_str(&file))]);
    agent.wait_instrumenting(postgres.pid);
    agent.wait_ready();
    postgres.reset();
    let run = run(Client::Python, Database::Postgres, postgres.port, 5, false);
    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    let spans = sql_spans(&output.lines);
    let clients: HashMap<&str, &Span> = spans
        .iter()
        .filter(|s| s.pid == run.pid && s.kind == Kind::Client)
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.kind == Kind::Server && s.attr_text("server.port") == postgres.port.to_string()
        })
        .collect();
    assert!(
        !servers.is_empty() && servers.len() == clients.len(),
        "one server span per client span: {} server, {} client\n{context}",
        servers.len(),
        clients.len()
    );
    let mut problems = Vec::new();
    for s in &servers {
        match clients.get(s.parent_span_id.as_str()) {
            Some(c)
                if c.trace_id == s.trace_id
                    && c.attr_text("db.query.text") == s.attr_text("db.query.text") => {}
            _ => problems.push(format!(
                "server span is not the child of its statement's client span: {}",
                s.line
            )),
        }
    }
    assert!(problems.is_empty(), "{}\n{context}", problems.join("\n"));
    println!(
        "same-node SQL (psycopg -> PostgreSQL): {} statements, {} server spans each the child \
         of its client span; {}",
        run.statements.len(),
        servers.len(),
        joins_line(&output.stderr)
    );
}

/// A traced client in one network namespace calls a traced server in
/// another, over a veth pair: the server's span is the child of the client's.
#[test]
fn http_over_a_veth_pair_between_namespaces_is_one_trace() {
    require_root();
    let pair = VethPair::create();
    let python = python_interpreter();
    let site = TempDir::new("beyla-same-node-site");
    std::fs::write(site.path.join("health"), "ok").expect("write the served file");
    let port = "18080";
    let mut server = pair
        .command(
            1,
            &python,
            &[
                "-m",
                "http.server",
                port,
                "--bind",
                &pair.addresses[1],
                "--directory",
                path_str(&site.path),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python's http.server in the second namespace");
    let dir = ConfigDir::new("same-node-veth");
    let file = dir.write(
        "beyla-config.yml",
        &format!(
            "discovery:\n  services:\n    - exe_path: '^{}$'\n    - exe_path: '/curl$'\n",
            regex_escape(&python.to_string_lossy())
        ),
    );
    let agent = RawAgent::start(&[("BEYLA_CONFIG_PATH", path_str(&file))]);
    agent.wait_instrumenting(server.id());
    agent.wait_ready();
    let url = format!("http://{}:{port}/health", pair.addresses[1]);
    let curl = which("curl");
    let mut clients = Vec::new();
    for _ in 0..REQUESTS {
        // The server may take a moment to listen: curl retries refused connections.
        let out = pair
            .command(
                0,
                &curl,
                &[
                    "-s",
                    "--retry",
                    "20",
                    "--retry-connrefused",
                    "--retry-delay",
                    "1",
                    &url,
                ],
            )
            .output()
            .expect("run curl in the first namespace");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok", "{out:?}");
        clients.push(out);
    }
    let output = agent.stop();
    let _ = server.kill();
    let _ = server.wait();
    let context = format!("agent stderr:\n{}", output.stderr);
    let spans = output.spans();
    let calls: HashMap<&str, &Span> = spans
        .iter()
        .filter(|s| s.kind == Kind::Client && s.path == "/health")
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let served: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == Kind::Server && s.pid == server.id())
        .collect();
    assert_eq!(
        (calls.len(), served.len()),
        (REQUESTS, REQUESTS),
        "one CLIENT span per curl and one SERVER span per request\n{context}"
    );
    let mut problems = Vec::new();
    for s in &served {
        match calls.get(s.parent_span_id.as_str()) {
            Some(c) if c.trace_id == s.trace_id => {
                if s.client_address != pair.addresses[0] || c.server_address != pair.addresses[1] {
                    problems.push(format!("addresses are not the veth pair's: {}", s.line));
                }
            }
            _ => problems.push(format!("server span is no curl span's child: {}", s.line)),
        }
    }
    assert!(problems.is_empty(), "{}\n{context}", problems.join("\n"));
    println!(
        "same-node over a veth pair ({} -> {}): {REQUESTS} curl calls, {} server spans each \
         the child of its call; {}",
        pair.addresses[0],
        pair.addresses[1],
        served.len(),
        joins_line(&output.stderr)
    );
}

/// The real path of a program on PATH.
fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .and_then(|path| std::fs::canonicalize(path).ok())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}
