//! CLIENT spans from processes selected by executable name: short-lived
//! `curl` runs, a Python client reusing one keep-alive connection, and the
//! clients of the other sample apps (Ruby's Net::HTTP, PHP's curl, Rust's
//! reqwest, C with libcurl) over plain HTTP and HTTPS. The server they call
//! is not traced. Run as root with `--test-threads=1`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::agent::Agent;
use integration_tests::apps::{build_apps, python_interpreter, Lang, Server};
use integration_tests::https::HttpsServer;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Span, Window};
use integration_tests::{require_root, workspace_root};

/// A root CLIENT span for `GET path` sent by process `pid` to `server_port`.
fn expected_client_span(
    scenario: &str,
    path: &str,
    service: &str,
    pid: u32,
    server_port: u16,
    window: Window,
) -> Expected {
    Expected {
        scenario: scenario.to_string(),
        kind: Kind::Client,
        method: "GET".into(),
        path: path.into(),
        route: "/users/*".into(),
        status: 200,
        service: service.into(),
        pid,
        server_port,
        window,
        lineage: Lineage::Root,
    }
}

/// Each `curl` lives a few milliseconds: the agent must catch it at exec time
/// to see its one request.
#[test]
fn curl_client_spans() {
    const SCENARIO: &str = "curl";
    require_root();
    let server = Server::start(Lang::Go, None);
    let agent = Agent::start(&[("BEYLA_EXECUTABLE_NAME", "curl$")]);
    agent.wait_ready();

    let mut expected = Vec::new();
    for n in 0..10 {
        let path = format!("/users/{}", 100 + n);
        let ((pid, output), window) = Window::around(|| {
            let child = Command::new("curl")
                .args(["-s", "--max-time", "30", &server.url(&path)])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run curl (is it installed?)");
            (child.id(), child.wait_with_output().expect("wait for curl"))
        });
        assert!(
            output.status.success(),
            "[{SCENARIO}] curl {path} failed: {output:?}"
        );
        expected.push(expected_client_span(
            SCENARIO,
            &path,
            "curl",
            pid,
            server.port,
            window,
        ));
    }

    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_spans(&output.spans, &expected, &context);
}

/// A Python client keeps one connection for all its requests; the agent must
/// split them into one span each.
#[test]
fn python_keep_alive_client_spans() {
    const SCENARIO: &str = "python client";
    const REQUESTS: usize = 10;
    require_root();
    let server = Server::start(Lang::Go, None);
    let agent = Agent::start(&[("BEYLA_EXECUTABLE_NAME", "python[0-9.]*$")]);
    agent.wait_ready();

    let interpreter = python_interpreter();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python_client.py");
    let path = "/users/42";
    let client = Command::new(&interpreter)
        .arg(&script)
        .arg(server.url(path))
        .arg(REQUESTS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", interpreter.display()));
    let pid = client.id();
    let output = client
        .wait_with_output()
        .expect("wait for the Python client");
    assert!(
        output.status.success(),
        "[{SCENARIO}] the Python client failed: {output:?}"
    );

    let service = interpreter
        .file_name()
        .expect("the interpreter has a file name")
        .to_string_lossy()
        .into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected: Vec<Expected> = stdout
        .lines()
        .map(|line| {
            let window = parse_client_line(SCENARIO, line);
            expected_client_span(SCENARIO, path, &service, pid, server.port, window)
        })
        .collect();
    assert_eq!(
        expected.len(),
        REQUESTS,
        "[{SCENARIO}] client output:\n{stdout}"
    );

    let agent_output = agent.stop();
    // The regex also selects whatever other Python runs on this machine.
    let client_spans: Vec<Span> = agent_output
        .spans
        .into_iter()
        .filter(|s| s.pid == pid)
        .collect();
    let context = format!("agent stderr:\n{}", agent_output.stderr);
    assert_spans(&client_spans, &expected, &context);
}

/// Requests each sample client makes over its one connection.
const SAMPLE_CLIENT_REQUESTS: usize = 10;
/// How long the agent may take to attach the OpenSSL uprobes to a client.
const TLS_ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// A sample client of `vm-tests/apps/`: the command (URL and count follow),
/// and the `BEYLA_EXECUTABLE_NAME` that selects it and nothing else here.
fn sample_client(which: &str) -> (Command, &'static str) {
    let apps = workspace_root().join("vm-tests/apps");
    let target = workspace_root().join("target/apps");
    match which {
        "ruby" => {
            let mut c = Command::new("ruby");
            c.arg(apps.join("ruby/client.rb"));
            (c, "ruby[0-9.]*$")
        }
        "node" | "node-new-connections" => {
            let mut c = Command::new("node");
            c.arg(apps.join("node/client.js"));
            if which == "node-new-connections" {
                c.arg("--new-connections");
            }
            (c, "/node$")
        }
        "php" => {
            let mut c = Command::new("php");
            c.arg(apps.join("php/client.php"));
            (c, "php[0-9.]*$")
        }
        "rust" | "rust-rustls" => {
            build_apps();
            let mut c = Command::new(target.join("rust-client"));
            if which == "rust-rustls" {
                c.arg("--rustls");
            }
            (c, "rust-client$")
        }
        "c" => {
            build_apps();
            (Command::new(target.join("curl-client")), "curl-client$")
        }
        other => panic!("no sample client {other}"),
    }
}

/// Runs sample client `which` against an untraced server (the Go app, or the
/// Python app over HTTPS with `tls`) with the agent selecting the client,
/// and returns the expected spans and the spans of the client's pid.
fn run_sample_client(which: &str, tls: bool) -> (Vec<Expected>, Vec<Span>, String) {
    require_root();
    let path = "/users/42";
    let (plain, https);
    let (url, server_port) = if tls {
        let mut python = Command::new(python_interpreter());
        python.arg(workspace_root().join("vm-tests/apps/python/server.py"));
        https = HttpsServer::start(python, "Python, libssl");
        (https.url(path), https.port)
    } else {
        plain = Server::start(Lang::Go, None);
        (plain.url(path), plain.port)
    };
    let (mut command, selector) = sample_client(which);
    let agent = Agent::start(&[("BEYLA_EXECUTABLE_NAME", selector)]);
    agent.wait_ready();
    let mut client = command
        .arg(&url)
        .arg(SAMPLE_CLIENT_REQUESTS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run the {which} client {command:?}: {e}"));
    let pid = client.id();
    // The service name is the base name of its executable (`ruby3.1`, `php8.2`).
    let service = std::fs::read_link(format!("/proc/{pid}/exe"))
        .expect("the client's executable")
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    // The client waits for a line on stdin: it is sent once the agent traces
    // it (and, over TLS, has attached to the libssl it loaded).
    agent.wait_instrumenting(pid);
    if tls {
        agent.wait_for_log_containing(
            &format!("pid={pid} OpenSSL uprobes attached"),
            TLS_ATTACH_TIMEOUT,
        );
    }
    client
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"go\n")
        .expect("start the client");
    let output = client.wait_with_output().expect("wait for the client");
    assert!(
        output.status.success(),
        "the {which} client failed: {output:?}"
    );
    let scenario = format!("{which} client{}", if tls { " over TLS" } else { "" });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let agent_output = agent.stop();
    let spans: Vec<Span> = agent_output
        .spans
        .into_iter()
        .filter(|s| s.pid == pid)
        .collect();
    let expected: Vec<Expected> = stdout
        .lines()
        .map(|line| {
            let window = parse_client_line(&scenario, line);
            expected_client_span(&scenario, path, &service, pid, server_port, window)
        })
        .collect();
    assert_eq!(
        expected.len(),
        SAMPLE_CLIENT_REQUESTS,
        "[{scenario}] client output:\n{stdout}"
    );
    (expected, spans, agent_output.stderr)
}

/// Each request of the sample client gives one CLIENT span, nothing else.
/// Returns the agent's stderr.
fn sample_client_spans(which: &str, tls: bool) -> String {
    let (expected, spans, stderr) = run_sample_client(which, tls);
    assert_spans(&spans, &expected, &format!("agent stderr:\n{stderr}"));
    println!(
        "{which} client (tls: {tls}): {} requests, {} spans; {}",
        expected.len(),
        spans.len(),
        stopped_line(&stderr)
    );
    stderr
}

/// The agent's last line, with its counters.
fn stopped_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("")
}

/// No TLS plaintext was left without its connection.
fn assert_no_unknown_tls(stderr: &str) {
    assert!(
        stopped_line(stderr).contains("tls_unknown_connection=0"),
        "expected tls_unknown_connection=0\nagent stderr:\n{stderr}"
    );
}

#[test]
fn ruby_net_http_client_spans() {
    sample_client_spans("ruby", false);
}

#[test]
fn ruby_net_http_https_client_spans() {
    sample_client_spans("ruby", true);
}

#[test]
fn node_http_client_spans() {
    sample_client_spans("node", false);
}

/// OpenSSL linked into node, memory BIOs: a new connection's request is
/// written (SSL_write in node's `ClearIn`, right after the handshake's last
/// ciphertext was read) before any SSL_read on its SSL object named the
/// connection. The probes bind the object on that first write to the
/// connection the thread last read ciphertext from: the first request of the
/// keep-alive connection gives its span like the others.
#[test]
fn node_https_client_spans() {
    assert_no_unknown_tls(&sample_client_spans("node", true));
}

/// Every request on a new connection, so every request is its SSL object's
/// first write: each gives its CLIENT span.
#[test]
fn node_https_client_requests_on_new_connections_give_spans() {
    assert_no_unknown_tls(&sample_client_spans("node-new-connections", true));
}

#[test]
fn php_curl_client_spans() {
    sample_client_spans("php", false);
}

#[test]
fn php_curl_https_client_spans() {
    sample_client_spans("php", true);
}

#[test]
fn rust_reqwest_client_spans() {
    sample_client_spans("rust", false);
}

#[test]
fn rust_reqwest_native_tls_client_spans() {
    sample_client_spans("rust", true);
}

#[test]
fn c_libcurl_client_spans() {
    sample_client_spans("c", false);
}

#[test]
fn c_libcurl_https_client_spans() {
    sample_client_spans("c", true);
}

/// rustls is not OpenSSL: no uprobe sees its plaintext, and the socket
/// carries ciphertext only, so reqwest over rustls gives no span at all.
#[test]
fn rust_reqwest_rustls_client_gives_no_spans() {
    let (expected, spans, stderr) = run_sample_client("rust-rustls", true);
    assert!(
        spans.is_empty(),
        "rustls requests give no span, got {spans:?}\nagent stderr:\n{stderr}"
    );
    println!(
        "rust client over rustls: {} requests, 0 spans; {}",
        expected.len(),
        stopped_line(&stderr)
    );
}

/// Reads `<status> <start_ns> <end_ns>` from the Python client, asserting the
/// status is 200.
fn parse_client_line(scenario: &str, line: &str) -> Window {
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(|f| {
            f.parse()
                .unwrap_or_else(|_| panic!("[{scenario}] bad client line {line:?}"))
        })
        .collect();
    let [status, start_ns, end_ns] = fields[..] else {
        panic!("[{scenario}] bad client line {line:?}");
    };
    assert_eq!(status, 200, "[{scenario}] the server answered {status}");
    let at = |ns: u64| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    Window {
        start: at(start_ns),
        end: at(end_ns),
    }
}
