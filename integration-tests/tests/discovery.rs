//! Which processes the agent traces and what it names them: entries of
//! `discovery.services` by port and by executable, processes that start after
//! the agent or exit before it, the process's own `OTEL_SERVICE_NAME`, and
//! never the agent itself. Run as root with `--test-threads=1`.

use std::process::Stdio;
use std::thread;
use std::time::Duration;

use integration_tests::agent::{agent_command, Agent};
use integration_tests::apps::{free_port, Lang, Server};
use integration_tests::config_files::{
    exe_name, exe_path, instrumented_pid, path_str, regex_escape, App, ConfigDir, RawAgent,
};
use integration_tests::process::{kill_and_reap, wait_with_timeout};
use integration_tests::require_root;
use integration_tests::scenarios::exercise;
use integration_tests::spans::{assert_spans, Span};

/// The `instrumenting pid=...` lines of a log.
fn instrumenting_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| instrumented_pid(l).is_some())
        .collect()
}

#[test]
fn two_services_two_ports_two_names() {
    require_root();
    let scenario = "two services";
    let python = Server::start(Lang::Python, None);
    let node = Server::start(Lang::Node, None);
    let dir = ConfigDir::new("two-services");
    let text = format!(
        "discovery:\n  services:\n    - name: alpha\n      open_port: {}\n    \
         - name: beta\n      open_port: {}\n",
        python.port, node.port
    );
    let path = dir.write("two-services.yml", &text);
    let agent = Agent::start(&[("BEYLA_CONFIG_PATH", path_str(&path))]);
    agent.wait_instrumenting(python.pid());
    agent.wait_instrumenting(node.pid());
    agent.wait_ready();
    let mut expected = exercise("alpha (Python)", python.port, python.pid(), "alpha");
    expected.extend(exercise("beta (Node)", node.port, node.pid(), "beta"));
    let output = agent.stop();
    assert_spans(
        &output.spans,
        &expected,
        &format!(
            "[{scenario}] config:\n{text}\nagent stderr:\n{}",
            output.stderr
        ),
    );
}

#[test]
fn process_started_after_agent_is_picked_up() {
    require_root();
    let scenario = "Go server started after the agent";
    let port = free_port();
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &port.to_string())]);
    agent.wait_ready();
    let server = App::start(Lang::Go, port, &[]);
    // The log line says the process is traced: requests sent right after it
    // must give spans (no grace period).
    agent.wait_instrumenting(server.pid());
    let expected = exercise(scenario, port, server.pid(), &exe_name(server.pid()));
    let output = agent.stop();
    assert_spans(
        &output.spans,
        &expected,
        &format!("[{scenario}] agent stderr:\n{}", output.stderr),
    );
}

#[test]
fn process_that_exits_is_dropped() {
    require_root();
    let scenario = "server that exits";
    let server = Server::start(Lang::Python, None);
    let pid = server.pid();
    let agent = RawAgent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_instrumenting(pid);
    agent.wait_ready();
    let expected = exercise(scenario, server.port, pid, &server.service_name());
    drop(server); // kills and reaps it
    let wanted = format!("no longer instrumenting pid={pid}");
    agent.wait_for_log(&wanted, |l| {
        l.find(&wanted).is_some_and(|at| {
            !l[at + wanted.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    });
    let output = agent.stop();
    assert_spans(
        &output.spans(),
        &expected,
        &format!("[{scenario}] agent stderr:\n{}", output.stderr),
    );
}

#[test]
fn exe_path_selects_by_executable() {
    require_root();
    let scenario = "exe_path selects node";
    let node = Server::start(Lang::Node, None);
    let python = Server::start(Lang::Python, None);
    let node_exe = exe_path(node.pid());
    let regex = format!("/{}$", regex_escape(&exe_name(node.pid())));
    assert!(
        !exe_path(python.pid())
            .to_string_lossy()
            .ends_with(&*exe_name(node.pid())),
        "the Python interpreter {} must not look like node {}",
        exe_path(python.pid()).display(),
        node_exe.display()
    );
    let dir = ConfigDir::new("exe-path");
    let text = format!("discovery:\n  services:\n    - exe_path: '{regex}'\n");
    let path = dir.write("exe-path.yml", &text);
    let agent = Agent::start(&[("BEYLA_CONFIG_PATH", path_str(&path))]);
    agent.wait_instrumenting(node.pid());
    agent.wait_ready();
    let expected = exercise("node (selected)", node.port, node.pid(), "node");
    // The same requests to Python, which must stay untraced.
    exercise("python (not selected)", python.port, python.pid(), "-");
    let output = agent.stop();
    let context = format!(
        "[{scenario}] config:\n{text}\nagent stderr:\n{}",
        output.stderr
    );

    // Other node processes on this machine match too; their spans are
    // checked only for coming from a process the regex selected.
    let instrumented = instrumenting_lines(&output.stderr);
    let selected_by_regex = |pid: u32| {
        instrumented.iter().any(|l| {
            instrumented_pid(l) == Some(pid)
                && l.split("exe=").nth(1).is_some_and(|exe| {
                    exe.trim_end()
                        .ends_with(&format!("/{}", exe_name(node.pid())))
                })
        })
    };
    let wrongly_traced: Vec<&&str> = instrumented
        .iter()
        .filter(|l| instrumented_pid(l) == Some(python.pid()))
        .collect();
    let stray: Vec<&Span> = output
        .spans
        .iter()
        .filter(|s| s.pid != node.pid() && (s.pid == python.pid() || !selected_by_regex(s.pid)))
        .collect();
    assert!(
        wrongly_traced.is_empty() && stray.is_empty(),
        "[{scenario}] only processes whose executable matches {regex:?} may be traced; \
         Python (pid {}) was instrumented: {wrongly_traced:?}; spans from unselected processes:\n{}\n\n{context}",
        python.pid(),
        stray
            .iter()
            .map(|s| format!("  {}", s.line))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let node_spans: Vec<Span> = output
        .spans
        .iter()
        .filter(|s| s.pid == node.pid())
        .cloned()
        .collect();
    assert_spans(&node_spans, &expected, &context);
}

#[test]
fn otel_service_name_from_process_environment() {
    require_root();
    let scenario = "OTEL_SERVICE_NAME of the process";
    let port = free_port();
    let server = App::start(Lang::Python, port, &[("OTEL_SERVICE_NAME", "from-env")]);
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &port.to_string())]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let expected = exercise(scenario, port, server.pid(), "from-env");
    let output = agent.stop();
    let context = format!("[{scenario}] agent stderr:\n{}", output.stderr);
    assert_spans(&output.spans, &expected, &context);

    // The agent's own OTEL_SERVICE_NAME beats the entry's name and the process's.
    let scenario = "OTEL_SERVICE_NAME of the agent";
    let dir = ConfigDir::new("service-name");
    let text =
        format!("discovery:\n  services:\n    - name: from-entry\n      open_port: {port}\n");
    let path = dir.write("named.yml", &text);
    let agent = Agent::start(&[
        ("BEYLA_CONFIG_PATH", path_str(&path)),
        ("OTEL_SERVICE_NAME", "from-agent"),
    ]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let expected = exercise(scenario, port, server.pid(), "from-agent");
    let output = agent.stop();
    let context = format!(
        "[{scenario}] config:\n{text}\nagent stderr:\n{}",
        output.stderr
    );
    assert_spans(&output.spans, &expected, &context);

    // Without the agent's variable, the entry's name beats the process's.
    let scenario = "discovery name over the process's OTEL_SERVICE_NAME";
    let agent = Agent::start(&[("BEYLA_CONFIG_PATH", path_str(&path))]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let expected = exercise(scenario, port, server.pid(), "from-entry");
    let output = agent.stop();
    let context = format!(
        "[{scenario}] config:\n{text}\nagent stderr:\n{}",
        output.stderr
    );
    assert_spans(&output.spans, &expected, &context);
}

#[test]
fn agent_never_traces_itself() {
    require_root();
    // Beyla's default exclusions (`*beyla`) would keep the control process
    // below out too; without them only the agent's own rule remains.
    let dir = ConfigDir::new("self");
    let path = dir.write(
        "no-default-exclusions.yml",
        "discovery:\n  default_exclude_instrument: []\n",
    );
    let env = [
        ("BEYLA_EXECUTABLE_NAME", "beyla"),
        ("BEYLA_CONFIG_PATH", path_str(&path)),
    ];
    let agent = RawAgent::start(&env);
    agent.wait_ready();
    let own_pid = agent.pid();
    assert!(
        exe_path(own_pid).to_string_lossy().contains("beyla"),
        "the agent's executable {} must match the selection `beyla` for this test to mean anything",
        exe_path(own_pid).display()
    );

    // Control: another process of the same binary is selected, so the
    // selection does reach the agent's executable.
    let mut command = agent_command(&env);
    command
        .arg("--check-config")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut control = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let control_pid = control.id();
    let status = wait_with_timeout(&mut control, Duration::from_secs(30));
    kill_and_reap(&mut control);
    assert!(
        status.is_some_and(|s| s.success()),
        "`beyla --check-config` (the control process) failed: {status:?}"
    );
    agent.wait_instrumenting(control_pid);
    // A few more /proc scans (every 0.5 s) for the agent to find itself in.
    thread::sleep(Duration::from_secs(2));

    let output = agent.stop();
    let own: Vec<&str> = instrumenting_lines(&output.stderr)
        .into_iter()
        .filter(|l| instrumented_pid(l) == Some(own_pid))
        .collect();
    let own_spans: Vec<&serde_json::Value> = output
        .json
        .iter()
        .filter(|s| {
            s.pointer("/resource/process.pid")
                .and_then(serde_json::Value::as_u64)
                == Some(u64::from(own_pid))
        })
        .collect();
    assert!(
        own.is_empty() && own_spans.is_empty(),
        "the agent (pid {own_pid}) must never trace itself, but logged {own:?} and printed {} span(s) of its own\nagent stderr:\n{}",
        own_spans.len(),
        output.stderr
    );
}
