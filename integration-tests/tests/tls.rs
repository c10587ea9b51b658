//! HTTPS: the Python sample server wrapped in TLS (libssl), curl as the client.
//! The spans must be what the same requests give over plain HTTP, taken from
//! the plaintext OpenSSL handles; the ciphertext on the socket gives none.

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
    require_root();
    let dir = std::env::temp_dir().join(format!("beyla-tls-{}", random_hex(4)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = certificate(&dir);
    let port = free_port();
    let mut server = Command::new(python_interpreter())
        .arg(workspace_root().join("vm-tests/apps/python/server.py"))
        .env("PORT", port.to_string())
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the Python HTTPS server");
    let (stdout, _) = Lines::capture(server.stdout.take().expect("piped stdout"));
    assert!(
        stdout.wait_for(Duration::from_secs(30), |l| l.contains("listening on")),
        "the HTTPS server did not start"
    );
    let pid = server.id();
    let service = std::fs::read_link(format!("/proc/{pid}/exe"))
        .expect("server exe")
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();

    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &port.to_string())]);
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
    assert!(
        output.stderr.contains("OpenSSL uprobes attached"),
        "the TLS probes were not attached:\n{}",
        output.stderr
    );
    println!(
        "HTTPS (Python, libssl): {} requests, {} spans; {counters}",
        expected.len(),
        output.spans.len()
    );
}
