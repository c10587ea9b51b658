//! Every capture path this kernel offers gives the same spans; every one it
//! does not offer is refused at start-up, naming the path and the reason; and
//! start-up takes the first one the kernel offers in the agent's order of
//! preference. The paths see different calls differently, so each runs
//! against Go (read/write), Python (recvfrom/sendto) and Node (read/writev)
//! servers. (Which paths each kernel of the matrix must offer is checked in
//! the VM tests: kernels/matrix.toml.) Run as root with `--test-threads=1`.

use integration_tests::agent::Agent;
use integration_tests::apps::{Lang, Server};
use integration_tests::require_root;
use integration_tests::scenarios::exercise;
use integration_tests::spans::assert_spans;

/// The agent's capture paths, in its order of preference (ebpf.capture_path).
const PATHS: [&str; 4] = ["fentry", "tp_btf", "raw_tp", "syscalls"];

/// The path an agent's log says it took.
fn chosen_path(stderr: &str) -> Option<String> {
    let at = stderr.find("eBPF: capture path ")? + "eBPF: capture path ".len();
    Some(
        stderr[at..]
            .split(|c: char| c == ';' || c.is_whitespace())
            .next()?
            .to_string(),
    )
}

#[test]
fn every_capture_path_gives_the_same_spans() {
    require_root();
    let servers = [
        Server::start(Lang::Go, None),
        Server::start(Lang::Python, None),
        Server::start(Lang::Node, None),
    ];
    let ports = servers
        .iter()
        .map(|s| s.port.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut offered = Vec::new();
    for path in PATHS {
        let env = [
            ("BEYLA_OPEN_PORT", ports.as_str()),
            ("BEYLA_BPF_CAPTURE_PATH", path),
        ];
        let agent = match Agent::start_or_exit(&env) {
            Ok(agent) => agent,
            Err((status, stderr)) => {
                let refusal = format!("capture path {path} is not offered by this kernel: ");
                assert!(
                    !status.success() && stderr.contains(&refusal),
                    "the agent forced onto {path} must either start or refuse with {refusal:?}; exit {status}\n{stderr}"
                );
                continue;
            }
        };
        offered.push(path);
        for server in &servers {
            agent.wait_instrumenting(server.pid());
        }
        agent.wait_ready();
        let mut expected = Vec::new();
        for server in &servers {
            let scenario = format!("{path}, {}", server.service_name());
            expected.extend(exercise(
                &scenario,
                server.port,
                server.pid(),
                &server.service_name(),
            ));
        }
        let output = agent.stop();
        let context = format!("[capture path {path}] agent stderr:\n{}", output.stderr);
        assert_eq!(
            chosen_path(&output.stderr).as_deref(),
            Some(path),
            "the agent must use the path it was told to\n{context}"
        );
        assert_spans(&output.spans, &expected, &context);
    }
    assert!(
        !offered.is_empty(),
        "this kernel offered no capture path at all"
    );
}

#[test]
fn start_up_takes_the_first_path_the_kernel_offers() {
    require_root();
    let server = Server::start(Lang::Python, None);
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let expected = exercise("auto", server.port, server.pid(), &server.service_name());
    let output = agent.stop();
    let context = format!("agent stderr:\n{}", output.stderr);
    let chosen = chosen_path(&output.stderr)
        .unwrap_or_else(|| panic!("the agent did not log its capture path\n{context}"));
    let rank = PATHS
        .iter()
        .position(|p| *p == chosen)
        .unwrap_or_else(|| panic!("unknown capture path {chosen:?}\n{context}"));
    for earlier in &PATHS[..rank] {
        assert!(
            output
                .stderr
                .lines()
                .any(|l| l.contains("capture paths this kernel refused") && l.contains(&format!("{earlier}: "))),
            "{chosen} was taken, so {earlier} (preferred) must have been refused, with a reason\n{context}"
        );
    }
    assert_spans(&output.spans, &expected, &context);
}
