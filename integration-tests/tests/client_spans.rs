//! CLIENT spans from processes selected by executable name: short-lived
//! `curl` runs, and a Python client reusing one keep-alive connection. The
//! server they call is not traced. Run as root with `--test-threads=1`.

use std::path::Path;
use std::process::{Command, Stdio};

use integration_tests::agent::Agent;
use integration_tests::apps::{python_interpreter, Lang, Server};
use integration_tests::require_root;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Span, Window};

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
