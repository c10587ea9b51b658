//! Processes that change under the agent: a server that forks a child per
//! connection (its children are traced from their first syscall, in the
//! kernel, at fork) and a traced process that execs another program (it is
//! identified again: another service name). Real Python and Node servers on
//! this machine's kernel. Run as root with `--test-threads=1`.

use std::process::Command;

use integration_tests::agent::Agent;
use integration_tests::apps::{free_port, python_interpreter, Server};
use integration_tests::http::{Connection, Request, Response};
use integration_tests::require_root;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Window};
use integration_tests::workspace_root;

/// Connections the forking test opens; each is served by a child of its own.
const FORKED_CONNECTIONS: usize = 12;
/// Requests on each of those connections (keep-alive, the same child).
const REQUESTS_PER_CONNECTION: usize = 2;

/// Path segments, one per request: words, which the route heuristic keeps
/// (it turns digits, and letters that do not read like English, into `*`).
const WORDS: [&str; FORKED_CONNECTIONS * REQUESTS_PER_CONNECTION] = [
    "apple", "table", "river", "stone", "garden", "window", "letter", "market", "silver", "winter",
    "candle", "forest", "basket", "pocket", "mirror", "button", "ladder", "orange", "carpet",
    "planet", "rocket", "sister", "marble", "tunnel",
];

fn server_script(name: &str) -> String {
    workspace_root()
        .join("integration-tests/servers")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The pid a response says served it.
fn served_by(response: &Response, scenario: &str) -> u32 {
    response
        .header("X-Pid")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("[{scenario}] response without a numeric X-Pid: {response:?}"))
}

fn expected(
    scenario: &str,
    path: &str,
    status: u16,
    service: &str,
    pid: u32,
    port: u16,
    window: Window,
) -> Expected {
    Expected {
        scenario: scenario.into(),
        kind: Kind::Server,
        method: "GET".into(),
        path: path.into(),
        route: path.into(),
        status,
        service: service.into(),
        pid,
        server_port: port,
        window,
        lineage: Lineage::Root,
    }
}

#[test]
fn a_forking_servers_children_are_traced_from_their_first_syscall() {
    require_root();
    let scenario = "ForkingMixIn server";
    let mut command = Command::new(python_interpreter());
    command.arg(server_script("forking_server.py"));
    let server = Server::spawn(command, free_port(), "the forking Python server");
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();

    let service = server.service_name();
    let mut want = Vec::new();
    let mut children = Vec::new();
    for c in 0..FORKED_CONNECTIONS {
        let mut conn = Connection::open(server.port);
        for r in 0..REQUESTS_PER_CONNECTION {
            let name = WORDS[c * REQUESTS_PER_CONNECTION + r];
            let (path, status) = if r == 1 && c % 3 == 0 {
                (format!("/missing/{name}"), 404)
            } else {
                (format!("/fork/{name}"), 200)
            };
            let (response, window) = conn.round_trip(&Request::get(&path));
            assert_eq!(response.status, status, "[{scenario}] GET {path}");
            let child = served_by(&response, scenario);
            assert_ne!(
                child,
                server.pid(),
                "[{scenario}] served by the parent, not a child"
            );
            children.push(child);
            want.push(expected(
                scenario,
                &path,
                status,
                &service,
                child,
                server.port,
                window,
            ));
        }
    }
    children.dedup();
    assert_eq!(
        children.len(),
        FORKED_CONNECTIONS,
        "[{scenario}] one child per connection: {children:?}"
    );
    let output = agent.stop();
    assert_spans(
        &output.spans,
        &want,
        &format!("[{scenario}] agent stderr:\n{}", output.stderr),
    );
}

#[test]
fn a_traced_process_that_execs_another_program_is_named_after_it() {
    require_root();
    let scenario = "Python execs Node";
    let mut command = Command::new(python_interpreter());
    command
        .arg(server_script("exec_handoff.py"))
        .arg("node")
        .arg(server_script("listen_fd.js"));
    let server = Server::spawn(command, free_port(), "the Python server that execs Node");
    let pid = server.pid();
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_instrumenting(pid);
    agent.wait_ready();

    let python = server.service_name();
    let mut want = Vec::new();
    for path in ["/before/one", "/before/two", "/exec"] {
        let (response, window) = Connection::open(server.port).round_trip(&Request::get(path));
        assert_eq!(response.status, 200, "[{scenario}] GET {path}");
        assert_eq!(served_by(&response, scenario), pid);
        want.push(expected(
            scenario,
            path,
            200,
            &python,
            pid,
            server.port,
            window,
        ));
    }
    // Node takes over the listening socket; connections wait in its backlog
    // until it accepts. No waiting for the agent: the exec event names the
    // process again before its next event is read.
    for path in ["/after/one", "/after/two", "/after/three"] {
        let (response, window) = Connection::open(server.port).round_trip(&Request::get(path));
        assert_eq!(response.status, 200, "[{scenario}] GET {path}");
        assert_eq!(
            served_by(&response, scenario),
            pid,
            "[{scenario}] exec keeps the pid"
        );
        want.push(expected(
            scenario,
            path,
            200,
            "node",
            pid,
            server.port,
            window,
        ));
    }
    let output = agent.stop();
    let context = format!("[{scenario}] agent stderr:\n{}", output.stderr);
    assert_spans(&output.spans, &want, &context);
    assert!(
        output
            .stderr
            .contains(&format!("instrumenting pid={pid} service=node ")),
        "the agent must say it instruments pid {pid} as node after the exec\n{context}"
    );
}
