//! HTTPS: the Python sample server wrapped in TLS (libssl, socket BIO) and the
//! Node one (OpenSSL linked into node, memory BIOs), curl as the client. The
//! spans must be what the same requests give over plain HTTP, taken from the
//! plaintext OpenSSL handles; the ciphertext on the socket gives none.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::agent::Agent;
use integration_tests::apps::{free_port, python_interpreter};
use integration_tests::process::{kill_and_reap, Lines};
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Window};
use integration_tests::{random_hex, require_root, workspace_root};

/// A self-signed certificate for 127.0.0.1, made fresh for the run.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (apt-get install openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn python_https_server_gives_the_same_spans_as_plain_http() {
    let mut python = Command::new(python_interpreter());
    python.arg(workspace_root().join("vm-tests/apps/python/server.py"));
    https_server_gives_the_same_spans_as_plain_http("Python, libssl", python);
}

#[test]
fn node_https_server_gives_the_same_spans_as_plain_http() {
    let mut node = Command::new("node");
    node.arg(workspace_root().join("vm-tests/apps/node/server.js"));
    https_server_gives_the_same_spans_as_plain_http("Node, OpenSSL in the executable", node);
}

/// Runs `server` (a sample app) with a certificate and checks its spans.
fn https_server_gives_the_same_spans_as_plain_http(what: &str, mut server: Command) {
    require_root();
    let dir = std::env::temp_dir().join(format!("beyla-tls-{}", random_hex(4)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = certificate(&dir);
    let port = free_port();
    let mut server = server
        .env("PORT", port.to_string())
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start the HTTPS server ({what}): {e}"));
    let (stdout, _) = Lines::capture(server.stdout.take().expect("piped stdout"));
    assert!(
        stdout.wait_for(Duration::from_secs(30), |l| l.contains("listening on")),
        "the HTTPS server ({what}) did not start"
    );
    let pid = server.id();
    let service = std::fs::read_link(format!("/proc/{pid}/exe"))
        .expect("server exe")
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();

    let agent = Agent::start(&[
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
    kill_and_reap(&mut server);
    let _ = std::fs::remove_dir_all(&dir);

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
