//! Go over TLS (crypto/tls, no OpenSSL): the Go TLS sample server
//! (`vm-tests/apps/go-tls`, the Go sample app's API) built here by each
//! tested Go toolchain, with symbols and stripped (`-ldflags=-s -w`),
//! serving HTTPS. curl sends requests one after another, then (once the
//! agent has attached the goroutine probes the first request brings) 200 at once to
//! `/downstream`, whose handler calls another Go HTTPS server from a
//! goroutine it starts (a Go HTTPS client). Every span must be exact, and
//! every CLIENT span the child of its own SERVER span: goroutines move
//! between threads, so only the goroutine tracking links them right.
//! Then grpc-go over TLS, server and client, with the system toolchain.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration_tests::agent::Agent;
use integration_tests::apps::{free_port, Server};
use integration_tests::config_files::RawAgent;
use integration_tests::grpc_apps::{
    self, assert_span_set, go_grpc_client_binary, run_grpc_client, stopped_line, ClientApp,
    ClientRun, ExpectedSpan,
};
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Span, Window};
use integration_tests::{random_hex, require_root, workspace_root};

/// Requests to `/downstream` sent at once.
const CONCURRENT: usize = 200;

/// A Go toolchain the tests build with.
#[derive(Clone, Copy)]
enum Toolchain {
    /// The system's `go` (Debian's golang-go or /usr/local/go).
    System,
    /// Debian's golang-1.19-go, the oldest release tested.
    Debian119,
    /// A release the go command fetches from the Go module proxy.
    Release(&'static str),
}

impl Toolchain {
    fn command(self) -> Command {
        let (go, toolchain) = match self {
            Self::System => ("go", "local"),
            Self::Debian119 => ("/usr/lib/go-1.19/bin/go", "local"),
            Self::Release(version) => ("go", version),
        };
        let mut c = Command::new(go);
        c.env("GOTOOLCHAIN", toolchain);
        c
    }
}

/// Builds the Go TLS sample server into target/apps/go-tls/<label>/go-tls-server.
fn build(toolchain: Toolchain, label: &str, stripped: bool) -> PathBuf {
    let root = workspace_root();
    let out = root
        .join("target/apps/go-tls")
        .join(label)
        .join("go-server");
    let ldflags = if stripped {
        "-ldflags=-s -w"
    } else {
        "-ldflags="
    };
    let result = toolchain
        .command()
        .current_dir(root.join("vm-tests/apps/go-tls"))
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-buildvcs=false")
        .args(["build", ldflags, "-o"])
        .arg(&out)
        .arg(".")
        .output()
        .unwrap_or_else(|e| panic!("{label}: cannot run the go command (scripts/setup.sh installs the toolchains): {e}"));
    assert!(
        result.status.success(),
        "{label}: go build failed (scripts/setup.sh installs the toolchains):\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// A self-signed certificate for 127.0.0.1, made fresh for the run.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (apt-get install openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    (cert.display().to_string(), key.display().to_string())
}

fn https_server(exe: &Path, cert: &str, key: &str, downstream: Option<&str>) -> Server {
    let mut command = Command::new(exe);
    command.env("TLS_CERT", cert).env("TLS_KEY", key);
    if let Some(url) = downstream {
        command.env("DOWNSTREAM_URL", url);
    }
    Server::spawn(command, free_port(), "the Go HTTPS server")
}

/// curl's answers, one status line per URL (`-w`), all on one process.
fn curl(args: &[&str], urls: &[String]) -> Vec<String> {
    let out = Command::new("curl")
        .args(["-sk", "-w", "%{http_code}\n"])
        .args(args)
        .args(
            urls.iter()
                .flat_map(|u| ["-o".to_string(), "/dev/null".into(), u.clone()]),
        )
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn check(toolchain: Toolchain, version: &str, stripped: bool) {
    require_root();
    let label = format!("{version}{}", if stripped { "-stripped" } else { "" });
    let exe = build(toolchain, &label, stripped);
    let dir = std::env::temp_dir().join(format!("beyla-go-tls-{}", random_hex(4)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = certificate(&dir);
    let downstream = https_server(&exe, &cert, &key, None);
    let down_url = format!("https://127.0.0.1:{}/health", downstream.port);
    let front = https_server(&exe, &cert, &key, Some(&down_url));
    let ports = format!("{},{}", front.port, downstream.port);

    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &ports)]);
    agent.wait_instrumenting(front.pid());
    agent.wait_instrumenting(downstream.pid());
    agent.wait_ready();

    let base = format!("https://127.0.0.1:{}", front.port);
    // One connection, requests one after another (keep-alive).
    let paths = ["/health", "/users/1", "/error", "/missing"];
    let statuses = ["200", "200", "500", "404"];
    let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
    let (codes, window) = Window::around(|| curl(&[], &urls));
    assert_eq!(codes, statuses, "{label}: curl over TLS got other answers");
    // The first TLS request served brings the goroutine probes, which link
    // the calls of the goroutines a handler starts.
    let front_goroutines = format!("pid={} Go goroutine probes attached", front.pid());
    agent.wait_for_log(&front_goroutines, |line| line.contains(&front_goroutines));
    // Then many at once, each on a connection of its own.
    let urls = vec![format!("{base}/downstream"); CONCURRENT];
    let parallel = CONCURRENT.to_string();
    let (codes, burst) = Window::around(|| {
        curl(
            &[
                "--parallel",
                "--parallel-immediate",
                "--parallel-max",
                &parallel,
            ],
            &urls,
        )
    });
    assert_eq!(
        codes,
        vec!["200"; CONCURRENT],
        "{label}: /downstream answers"
    );

    let output = agent.stop();
    let (front_pid, down_pid) = (front.pid(), downstream.pid());
    let service = front.service_name();
    drop(front);
    drop(downstream);
    let _ = std::fs::remove_dir_all(&dir);

    let expect = |kind, path: &str, route: &str, status, pid, port, window, lineage| Expected {
        scenario: format!("Go TLS {label}"),
        kind,
        method: "GET".into(),
        path: path.into(),
        route: route.into(),
        status,
        service: service.clone(),
        pid,
        server_port: port,
        window,
        lineage,
    };
    let (front_port, down_port) = (ports_of(&ports).0, ports_of(&ports).1);
    let mut expected = vec![
        expect(
            Kind::Server,
            "/health",
            "/health",
            200,
            front_pid,
            front_port,
            window,
            Lineage::Root,
        ),
        expect(
            Kind::Server,
            "/users/1",
            "/users/*",
            200,
            front_pid,
            front_port,
            window,
            Lineage::Root,
        ),
        expect(
            Kind::Server,
            "/error",
            "/error",
            500,
            front_pid,
            front_port,
            window,
            Lineage::Root,
        ),
        expect(
            Kind::Server,
            "/missing",
            "/missing",
            404,
            front_pid,
            front_port,
            window,
            Lineage::Root,
        ),
    ];
    for _ in 0..CONCURRENT {
        expected.push(expect(
            Kind::Server,
            "/downstream",
            "/downstream",
            200,
            front_pid,
            front_port,
            burst,
            Lineage::Root,
        ));
        expected.push(expect(
            Kind::Client,
            "/health",
            "/health",
            200,
            front_pid,
            down_port,
            burst,
            Lineage::ChildOfMatchedSpan,
        ));
        expected.push(expect(
            Kind::Server,
            "/health",
            "/health",
            200,
            down_pid,
            down_port,
            burst,
            Lineage::ChildOfMatchedSpan,
        ));
    }
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_spans(&output.spans, &expected, &context);
    // Each request's three spans are one trace: the front's server span, its
    // client call from the spawned goroutine, and (same-node join) the
    // downstream server's span.
    assert_one_child_each(
        &output.spans,
        |s| s.pid == front_pid && s.kind == Kind::Server && s.path == "/downstream",
        |s| s.pid == front_pid && s.kind == Kind::Client,
        &context,
    );
    assert_one_child_each(
        &output.spans,
        |s| s.pid == front_pid && s.kind == Kind::Client,
        |s| s.pid == down_pid && s.kind == Kind::Server,
        &context,
    );

    let counters = output
        .stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("");
    for clean in [
        "tls_unknown_connection=0",
        "connections_unsupported=0",
        "parse_errors=0",
    ] {
        assert!(
            counters.contains(clean),
            "{label}: expected {clean}: {counters}"
        );
    }
    let mode = if stripped { "stripped" } else { "symbols" };
    let attached = format!("pid={front_pid} Go {version}");
    assert!(
        output
            .stderr
            .lines()
            .any(|l| l.contains(&attached) && l.contains(mode)),
        "{label}: no log line with {attached:?} and {mode:?}:\n{}",
        output.stderr
    );
    println!(
        "Go TLS {label}: {} calls, {} spans; {counters}",
        expected.len(),
        output.spans.len()
    );
}

fn ports_of(list: &str) -> (u16, u16) {
    let mut ports = list.split(',').map(|p| p.parse::<u16>().expect("port"));
    (
        ports.next().expect("front"),
        ports.next().expect("downstream"),
    )
}

/// Each span `child` picks has one span `parent` picks as parent, in its
/// trace, and each of those has exactly one: no request took another's.
fn assert_one_child_each(
    spans: &[Span],
    parent: impl Fn(&Span) -> bool,
    child: impl Fn(&Span) -> bool,
    context: &str,
) {
    let parents: HashMap<&str, &Span> = spans
        .iter()
        .filter(|s| parent(s))
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let mut taken = HashSet::new();
    for c in spans.iter().filter(|s| child(s)) {
        let p = parents
            .get(c.parent_span_id.as_str())
            .unwrap_or_else(|| panic!("span without its parent: {}\n{context}", c.line));
        assert_eq!(p.trace_id, c.trace_id, "{}\n{}", c.line, p.line);
        assert!(
            taken.insert(c.parent_span_id.as_str()),
            "two spans under one parent {}\n{context}",
            p.line
        );
    }
    assert_eq!(
        taken.len(),
        parents.len(),
        "parent spans without their child\n{context}"
    );
}

#[test]
fn go_1_26_https() {
    check(Toolchain::System, "go1.26.8", false);
}

#[test]
fn go_1_26_https_stripped() {
    check(Toolchain::System, "go1.26.8", true);
}

#[test]
fn go_1_27_https() {
    check(Toolchain::Release("go1.27.3"), "go1.27.3", false);
}

#[test]
fn go_1_27_https_stripped() {
    check(Toolchain::Release("go1.27.3"), "go1.27.3", true);
}

#[test]
fn go_1_19_https() {
    check(Toolchain::Debian119, "go1.19.8", false);
}

#[test]
fn go_1_19_https_stripped() {
    check(Toolchain::Debian119, "go1.19.8", true);
}

/// grpc-go over crypto/tls: the traced Go server called by the Go client,
/// then the traced Go client calling the (untraced) server. The same exact
/// spans as over plain TCP (http2_grpc.rs).
#[test]
fn grpc_go_over_tls() {
    require_root();
    grpc_apps::build();
    let dir = std::env::temp_dir().join(format!("beyla-go-grpc-tls-{}", random_hex(4)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = certificate(&dir);
    let mut command = Command::new(workspace_root().join("target/apps/grpc-go-server"));
    command.env("TLS_CERT", &cert).env("TLS_KEY", &key);
    let server = Server::spawn(command, free_port(), "the grpc-go TLS server");
    let target = format!("127.0.0.1:{}", server.port);
    // The sample client speaks TLS when GRPC_TLS=1; it inherits this
    // process's environment (the tests of this file run one at a time).
    std::env::set_var("GRPC_TLS", "1");

    let port = server.port.to_string();
    // Incoming traceparent metadata is joined with Beyla's request-header tracking.
    let agent = RawAgent::start(&[
        ("BEYLA_OPEN_PORT", &port),
        ("BEYLA_BPF_TRACK_REQUEST_HEADERS", "true"),
    ]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let steps = [
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
    ];
    let run = run_grpc_client(
        "go grpc server over TLS",
        ClientApp::GoGrpc,
        &target,
        &steps,
    );
    assert_eq!(run.calls.len(), 20);
    let expected = expected_spans(
        "go grpc server over TLS",
        Kind::Server,
        &run,
        &server.service_name(),
        server.pid(),
        server.port,
    );
    let (spans, counters) = grpc_stop(agent, server.pid());
    println!(
        "grpc-go server over TLS: {} calls, {} spans; {}",
        run.calls.len(),
        spans.len(),
        counters.lines().next().unwrap_or("")
    );
    assert_span_set(&spans, &expected, &counters);

    for clean in ["tls_unknown_connection=0", "parse_errors=0"] {
        assert!(counters.contains(clean), "expected {clean}: {counters}");
    }

    // A process selected at exec gets its uprobes once the agent has read
    // its executable: the client gives it a second before its first call
    // (else its first writes, the HTTP/2 preface among them, are not seen).
    std::env::set_var("START_DELAY_MS", "1000");
    let regex = format!("^{}$", go_grpc_client_binary().display());
    let agent = RawAgent::start(&[("BEYLA_EXECUTABLE_NAME", &regex)]);
    agent.wait_ready();
    let steps = ["unary", "3", "stream", "2", "fail", "2"];
    let run = run_grpc_client(
        "go grpc client over TLS",
        ClientApp::GoGrpc,
        &target,
        &steps,
    );
    std::env::remove_var("GRPC_TLS");
    std::env::remove_var("START_DELAY_MS");
    assert_eq!(run.calls.len(), 7);
    let expected = expected_spans(
        "go grpc client over TLS",
        Kind::Client,
        &run,
        &run.service,
        run.pid,
        server.port,
    );
    let (spans, counters) = grpc_stop(agent, run.pid);
    println!(
        "grpc-go client over TLS: {} calls, {} spans; {}",
        run.calls.len(),
        spans.len(),
        counters.lines().next().unwrap_or("")
    );
    assert_span_set(&spans, &expected, &counters);
    for clean in ["tls_unknown_connection=0", "parse_errors=0"] {
        assert!(counters.contains(clean), "expected {clean}: {counters}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn expected_spans(
    scenario: &str,
    kind: Kind,
    run: &ClientRun,
    service: &str,
    pid: u32,
    port: u16,
) -> Vec<ExpectedSpan> {
    run.calls
        .iter()
        .map(|call| ExpectedSpan::grpc(scenario, kind, call, service, pid, port))
        .collect()
}

/// Stops the agent: the spans of `pid`, and the counters line (with the log
/// when a span is missing).
fn grpc_stop(agent: RawAgent, pid: u32) -> (Vec<Span>, String) {
    let output = agent.stop();
    let spans = output
        .lines
        .iter()
        .map(|l| Span::parse(l))
        .filter(|s| s.pid == pid)
        .collect();
    let counters = format!(
        "{}\nagent stderr:\n{}",
        stopped_line(&output.stderr),
        output.stderr
    );
    (spans, counters)
}
