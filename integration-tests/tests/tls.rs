//! HTTPS: the Python sample server wrapped in TLS (libssl, socket BIO), the
//! Node one (OpenSSL linked into node, memory BIOs), Ruby's Puma (its MiniSSL
//! extension on libssl, memory BIOs), Rust's axum with native-tls (libssl) and
//! C++'s cpp-httplib (libssl), curl as the client. The spans must be what the
//! same requests give over plain HTTP, taken from the plaintext OpenSSL
//! handles; the ciphertext on the socket gives none.

use std::process::Command;

use integration_tests::agent::Agent;
use integration_tests::apps::{command_for, free_port, python_interpreter, Lang};
use integration_tests::config_files::{parse_exposition, scrape};
use integration_tests::https::HttpsServer;
use integration_tests::privileges::{documented_capabilities, BinaryCopy};
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Window};
use integration_tests::{random_hex, require_root, workspace_root};

fn python_server() -> Command {
    let mut python = Command::new(python_interpreter());
    python.arg(workspace_root().join("vm-tests/apps/python/server.py"));
    python
}

#[test]
fn python_https_server_gives_the_same_spans_as_plain_http() {
    https_server_gives_the_same_spans_as_plain_http(
        "Python, libssl",
        python_server(),
        Agent::start,
    );
}

#[test]
fn node_https_server_gives_the_same_spans_as_plain_http() {
    let mut node = Command::new("node");
    node.arg(workspace_root().join("vm-tests/apps/node/server.js"));
    https_server_gives_the_same_spans_as_plain_http(
        "Node, OpenSSL in the executable",
        node,
        Agent::start,
    );
}

#[test]
fn ruby_puma_https_server_gives_the_same_spans_as_plain_http() {
    https_server_gives_the_same_spans_as_plain_http(
        "Ruby, Puma's MiniSSL on libssl",
        command_for(Lang::Ruby, 0),
        Agent::start,
    );
}

#[test]
fn rust_native_tls_server_gives_the_same_spans_as_plain_http() {
    https_server_gives_the_same_spans_as_plain_http(
        "Rust, axum with native-tls (libssl)",
        command_for(Lang::Rust, 0),
        Agent::start,
    );
}

#[test]
fn cpp_httplib_https_server_gives_the_same_spans_as_plain_http() {
    https_server_gives_the_same_spans_as_plain_http(
        "C++, cpp-httplib on libssl",
        command_for(Lang::Cpp, 0),
        Agent::start,
    );
}

/// Least privilege: the agent as `nobody` with exactly the documented
/// capabilities (and a root-owned server) gives the same HTTPS spans as root.
#[test]
fn python_https_spans_as_nobody_with_the_documented_capabilities() {
    let copy = BinaryCopy::new("least-privilege");
    let capabilities = documented_capabilities();
    https_server_gives_the_same_spans_as_plain_http(
        "Python, libssl, agent as nobody",
        python_server(),
        |env| Agent::start_command(copy.as_nobody(&capabilities, env)),
    );
}

/// Without CAP_SYS_ADMIN the kernel refuses uprobes: the agent still starts,
/// warns at start naming the feature and the capability, warns for the
/// process, counts it once, and gives no span for its HTTPS requests.
#[test]
fn without_cap_sys_admin_openssl_warns_and_counts() {
    require_root();
    let copy = BinaryCopy::new("no-sys-admin");
    let capabilities: Vec<String> = documented_capabilities()
        .into_iter()
        .filter(|c| c != "CAP_SYS_ADMIN")
        .collect();
    let server = HttpsServer::start(python_server(), "Python, libssl");
    let metrics_port = free_port();
    let agent = Agent::start_command(copy.as_nobody(
        &capabilities,
        &[
            ("BEYLA_OPEN_PORT", &server.port.to_string()),
            ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
        ],
    ));
    agent.wait_instrumenting(server.pid);
    agent.wait_ready();
    let failures = || {
        parse_exposition(&scrape(metrics_port))
            .into_iter()
            .filter(|s| s.name == "beyla_probe_attach_failures_total")
            .map(|s| (s.label("feature").to_string(), s.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        failures(),
        [("openssl".to_string(), 1.0), ("go_tls".to_string(), 0.0)],
        "one process whose OpenSSL uprobes the kernel refused (and no Go process)"
    );
    let status = Command::new("curl")
        .args(["-sk", "-o", "/dev/null"])
        .arg(format!("https://127.0.0.1:{}/users/1", server.port))
        .status()
        .expect("run curl");
    assert!(status.success(), "curl over TLS failed");
    // A later scan does not count the same process again.
    assert_eq!(
        failures(),
        [("openssl".to_string(), 1.0), ("go_tls".to_string(), 0.0)]
    );
    let output = agent.stop();
    let pid = server.pid;
    drop(server);

    let start_warning = output
        .stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("feature openssl"))
        .unwrap_or_else(|| panic!("no WARN naming feature openssl:\n{}", output.stderr));
    assert!(
        start_warning.contains("CAP_SYS_ADMIN")
            && start_warning.contains("beyla_probe_attach_failures_total"),
        "the start-up warning must name the capability and the counter: {start_warning}"
    );
    let process_warnings: Vec<&str> = output
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("OpenSSL uprobes refused"))
        .collect();
    assert_eq!(
        process_warnings.len(),
        1,
        "one warning for the one process:\n{}",
        output.stderr
    );
    assert!(
        process_warnings[0].contains(&format!("pid={pid}"))
            && process_warnings[0].contains("CAP_SYS_ADMIN"),
        "{}",
        process_warnings[0]
    );
    assert!(
        output.spans.is_empty(),
        "HTTPS without the uprobes gives no span (the socket carries ciphertext), got {:?}",
        output.spans
    );
}

/// Runs `server` (a sample app) with a certificate, the agent started by
/// `start_agent` with the given variables, and checks the spans.
fn https_server_gives_the_same_spans_as_plain_http(
    what: &str,
    server: Command,
    start_agent: impl FnOnce(&[(&str, &str)]) -> Agent,
) {
    require_root();
    let server = HttpsServer::start(server, what);
    let (port, pid, service) = (server.port, server.pid, server.service.clone());

    // One request carries `traceparent`: joining it is asked for, as in Beyla.
    let agent = start_agent(&[
        ("BEYLA_OPEN_PORT", &port.to_string()),
        ("BEYLA_BPF_TRACK_REQUEST_HEADERS", "true"),
    ]);
    agent.wait_instrumenting(pid);
    agent.wait_ready();

    // One curl, one TLS connection, several requests on it (keep-alive), then
    // one request carrying a traceparent.
    let base = format!("https://127.0.0.1:{port}");
    let paths = ["/health", "/users/1", "/users/2", "/error", "/missing"];
    let statuses = [200, 200, 200, 500, 404];
    let (out, window) = Window::around(|| {
        Command::new("curl")
            .args(["-sk", "-w", "%{http_code}\n"])
            .args(paths.iter().flat_map(|p| {
                [
                    "-o".to_string(),
                    "/dev/null".to_string(),
                    format!("{base}{p}"),
                ]
            }))
            .output()
            .expect("run curl")
    });
    let codes = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(
        codes,
        statuses.map(|s| s.to_string()),
        "curl over TLS got other answers"
    );
    let (trace_id, parent) = (random_hex(16), random_hex(8));
    let (_, traced_window) = Window::around(|| {
        Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-H"])
            .arg(format!("traceparent: 00-{trace_id}-{parent}-01"))
            .arg(format!("{base}/users/3"))
            .status()
            .expect("run curl")
    });

    let output = agent.stop();
    drop(server);

    let expect =
        |path: &str, route: &str, status: u16, window: Window, lineage: Lineage| Expected {
            scenario: "https".into(),
            kind: Kind::Server,
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
    let routes = ["/health", "/users/*", "/users/*", "/error", "/missing"];
    let mut expected: Vec<Expected> = paths
        .iter()
        .zip(routes)
        .zip(statuses)
        .map(|((path, route), status)| expect(path, route, status, window, Lineage::Root))
        .collect();
    expected.push(expect(
        "/users/3",
        "/users/*",
        200,
        traced_window,
        Lineage::Joins {
            trace_id,
            parent_span_id: parent,
        },
    ));
    assert_spans(
        &output.spans,
        &expected,
        &format!("agent stderr:\n{}", output.stderr),
    );
    // The plaintext came from the TLS library: the request was https.
    let schemes: Vec<Option<&str>> = output.spans.iter().map(|s| s.attr("url.scheme")).collect();
    assert!(
        schemes.iter().all(|s| *s == Some("https")),
        "every span of the HTTPS server has url.scheme https: {schemes:?}"
    );
    let counters = output
        .stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("");
    // Ciphertext never reaches the parsers, and every plaintext found its connection.
    for clean in [
        "tls_unknown_connection=0",
        "connections_unsupported=0",
        "parse_errors=0",
    ] {
        assert!(counters.contains(clean), "expected {clean}: {counters}");
    }
    assert!(
        output.stderr.contains("OpenSSL uprobes attached"),
        "the TLS probes were not attached:\n{}",
        output.stderr
    );
    println!(
        "HTTPS ({what}): {} requests, {} spans; {counters}",
        expected.len(),
        output.spans.len()
    );
}
