//! Context propagation by header (`ebpf.context_propagation: headers`)
//! between two "nodes": two network namespaces joined by a veth pair, one
//! agent in each. A front on the first calls a back on the second: one trace
//! across both agents' spans, with the parent ids the wire carried. And what
//! the kernel does to requests, as the server received them: a `traceparent`
//! after the request line of each request that starts an exchange, nothing
//! else changed (bodies, pipelined requests, a request with its own header).
//! Run as root with `--test-threads=1`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::agent::{agent_command, Agent};
use integration_tests::apps::{free_port, python_interpreter, Lang, Server};
use integration_tests::config_files::{path_str, regex_escape, run_agent, ConfigDir};
use integration_tests::netns::VethPair;
use integration_tests::process::{kill_and_reap, Lines};
use integration_tests::spans::{Kind, Span};
use integration_tests::{require_root, workspace_root};

/// Requests each front serves.
const REQUESTS: usize = 3;
const FRONTS: [Lang; 4] = [Lang::Python, Lang::Node, Lang::Go, Lang::Java];
const STARTUP: Duration = Duration::from_secs(30);

fn servers_dir() -> PathBuf {
    workspace_root().join("integration-tests/servers")
}

/// echo_server.py on `address` in namespace `ns` of `pair`.
fn start_echo(pair: &VethPair, ns: usize, address: &str, port: u16) -> (Child, Lines) {
    let mut command = Command::new(python_interpreter());
    command
        .arg(servers_dir().join("echo_server.py"))
        .args([address, &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    pair.enter(ns, &mut command);
    let mut child = command.spawn().expect("start echo_server.py");
    let (stdout, _) = Lines::capture(child.stdout.take().expect("piped stdout"));
    assert!(
        stdout.wait_for(STARTUP, |l| l.contains(&format!("listening on {port}"))),
        "echo_server.py did not start"
    );
    (child, stdout)
}

/// The agent, started in namespace `ns` of `pair`, propagating by header.
fn start_agent(pair: &VethPair, ns: usize, env: &[(&str, &str)]) -> Agent {
    let mut env = env.to_vec();
    env.push(("BEYLA_BPF_CONTEXT_PROPAGATION", "headers"));
    let mut command = agent_command(&env);
    pair.enter(ns, &mut command);
    Agent::start_command(command)
}

/// curl inside namespace `ns`, which `ip netns exec` runs.
fn curl_in(pair: &VethPair, ns: usize, url: &str) -> String {
    let out = pair
        .command(ns, Path::new("curl"), &["-s", "--max-time", "30", url])
        .output()
        .expect("run curl (scripts/requirements.txt)");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
fn a_front_on_one_node_and_its_back_on_another_are_one_trace() {
    require_root();
    let pair = VethPair::create();
    let mut figures = Vec::new();
    for front_lang in FRONTS {
        let back_port = free_port();
        let (mut back, _) = start_echo(&pair, 1, &pair.addresses[1], back_port);
        let back_url = format!("http://{}:{back_port}/health", pair.addresses[1]);
        let front = Server::start_with(front_lang, Some(&back_url), |c| pair.enter(0, c));
        let front_port = front.port.to_string();
        let back_port_text = back_port.to_string();
        let agent_a = start_agent(&pair, 0, &[("BEYLA_OPEN_PORT", &front_port)]);
        let agent_b = start_agent(
            &pair,
            1,
            &[
                ("BEYLA_OPEN_PORT", &back_port_text),
                ("BEYLA_BPF_TRACK_REQUEST_HEADERS", "true"),
            ],
        );
        agent_a.wait_instrumenting(front.pid());
        agent_b.wait_instrumenting(back.id());
        agent_a.wait_ready();
        agent_b.wait_ready();
        for _ in 0..REQUESTS {
            let url = format!("http://127.0.0.1:{}/downstream", front.port);
            assert_eq!(
                curl_in(&pair, 0, &url),
                "downstream 200",
                "{front_lang:?} front calling the back on the other node"
            );
        }
        let (a, b) = (agent_a.stop(), agent_b.stop());
        kill_and_reap(&mut back);
        let context = format!(
            "{front_lang:?} front; node A agent stderr:\n{}\nnode B agent stderr:\n{}",
            a.stderr, b.stderr
        );
        let of = |spans: &[Span], kind: Kind, path: &str, pid: u32| -> Vec<Span> {
            spans
                .iter()
                .filter(|s| s.kind == kind && s.path == path && s.pid == pid)
                .cloned()
                .collect()
        };
        let fronts = of(&a.spans, Kind::Server, "/downstream", front.pid());
        let calls = of(&a.spans, Kind::Client, "/health", front.pid());
        let backs = of(&b.spans, Kind::Server, "/health", back.id());
        assert_eq!(
            (fronts.len(), calls.len(), backs.len()),
            (REQUESTS, REQUESTS, REQUESTS),
            "front server, call and back server spans\n{context}"
        );
        let mut problems = Vec::new();
        let mut traces = std::collections::HashSet::new();
        for front_span in &fronts {
            traces.insert(front_span.trace_id.clone());
            if !front_span.parent_span_id.is_empty() {
                problems.push(format!(
                    "the front's span has a parent: {}",
                    front_span.line
                ));
            }
            let Some(call) = calls
                .iter()
                .find(|c| c.parent_span_id == front_span.span_id)
            else {
                problems.push(format!("no call is this span's child: {}", front_span.line));
                continue;
            };
            problems.extend(link_problem("the call", front_span, call));
            match backs.iter().find(|s| s.parent_span_id == call.span_id) {
                Some(back_span) => {
                    problems.extend(link_problem("the back's span", call, back_span))
                }
                None => problems.push(format!(
                    "no span of the back (node B) is this call's child: {}",
                    call.line
                )),
            }
        }
        assert!(
            problems.is_empty(),
            "{} broken link(s):\n{}\n\n{context}",
            problems.len(),
            problems.join("\n")
        );
        assert_eq!(traces.len(), REQUESTS, "one trace per request");
        assert_eq!(
            propagation_line(&a.stderr),
            format!(
                "context_propagation_requests(injected={REQUESTS} had_context=0 \
                 head_incomplete=0 push_failed=0)"
            ),
            "{context}"
        );
        figures.push(format!(
            "{front_lang:?} front (node A) -> back (node B): {REQUESTS} traces of 3 spans from \
             two agents, {} parent ids checked; {}",
            2 * REQUESTS,
            propagation_line(&a.stderr)
        ));
    }
    println!(
        "context propagation across two namespaces ({} -> {}):\n  {}",
        pair.addresses[0],
        pair.addresses[1],
        figures.join("\n  ")
    );
}

/// The `context_propagation_requests(...)` figures from the agent's `stopped:` line.
fn propagation_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains("stopped:"))
        .and_then(|l| {
            let start = l.find("context_propagation_requests(")?;
            let end = l[start..].find(')')?;
            Some(l[start..start + end + 1].to_string())
        })
        .unwrap_or_else(|| "no context_propagation_requests figures in the stopped line".into())
}

/// One case of propagation_client.py: what it wrote, what the server got.
struct Case {
    name: String,
    writes: Vec<Vec<u8>>,
    echoed: Vec<Vec<u8>>,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn parse_case(line: &str) -> Case {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let list = |key: &str| -> Vec<Vec<u8>> {
        v[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|h| unhex(h.as_str().expect("hex text")))
            .collect()
    };
    Case {
        name: v["case"].as_str().expect("case").to_string(),
        writes: list("writes"),
        echoed: list("echoed"),
    }
}

/// A request as received: the `traceparent` line the kernel put right after
/// the request line, if there is one of the exact form it writes, and the
/// request without it.
fn take_injected(received: &[u8]) -> (Option<(String, String)>, Vec<u8>) {
    let Some(line_end) = received.windows(2).position(|w| w == b"\r\n") else {
        return (None, received.to_vec());
    };
    let after = &received[line_end + 2..];
    let prefix = b"traceparent: 00-";
    let header_len = prefix.len() + 32 + 1 + 16 + 3 + 2;
    if after.len() < header_len || !after.starts_with(prefix) {
        return (None, received.to_vec());
    }
    let header = std::str::from_utf8(&after[..header_len]).expect("ascii header");
    let ids = &header[prefix.len()..];
    let (trace, rest) = ids.split_at(32);
    let span = &rest[1..17];
    assert_eq!(&rest[17..], "-01\r\n", "the injected header: {header:?}");
    let mut without = received[..line_end + 2].to_vec();
    without.extend_from_slice(&after[header_len..]);
    (Some((trace.to_string(), span.to_string())), without)
}

/// Splits what one write held into the requests in it (heads end with a
/// blank line; the cases' bodies are given by Content-Length).
fn requests_in(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = &rest[..end + 4];
        let text = String::from_utf8_lossy(head).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("a length"));
        let total = (end + 4 + length).min(rest.len());
        out.push(rest[..total].to_vec());
        rest = &rest[total..];
    }
    out
}

#[test]
fn requests_keep_their_bytes_and_carry_the_client_spans_ids() {
    require_root();
    let pair = VethPair::create();
    let port = free_port();
    let (mut echo, _) = start_echo(&pair, 1, &pair.addresses[1], port);
    let python = python_interpreter();
    let dir = ConfigDir::new("propagation-bytes");
    let file = dir.write(
        "beyla-config.yml",
        &format!(
            "discovery:\n  services:\n    - exe_path: '^{}$'\n      cmd_args: 'propagation_client'\n",
            regex_escape(&python.to_string_lossy())
        ),
    );
    let agent = start_agent(&pair, 0, &[("BEYLA_CONFIG_PATH", path_str(&file))]);
    agent.wait_ready();
    let mut command = Command::new(&python);
    command
        .arg(servers_dir().join("propagation_client.py"))
        .args([pair.addresses[1].as_str(), &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    pair.enter(0, &mut command);
    let mut client = command.spawn().expect("start propagation_client.py");
    let client_pid = client.id();
    agent.wait_instrumenting(client_pid);
    // Traced now: its connection is one the kernel marks.
    client
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"go\n")
        .expect("start the client");
    let out = client.wait_with_output().expect("the client's output");
    assert!(out.status.success(), "propagation_client.py: {out:?}");
    let output = agent.stop();
    kill_and_reap(&mut echo);
    let context = format!("agent stderr:\n{}", output.stderr);
    let cases: Vec<Case> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(parse_case)
        .collect();
    assert_eq!(cases.len(), 5, "{out:?}");

    // Whether each request the server received should carry one, in order.
    let expected: HashMap<&str, &[bool]> = HashMap::from([
        ("plain", &[true][..]),
        ("own_traceparent", &[false][..]),
        ("body", &[true][..]),
        // Only the first request of a write.
        ("pipelined", &[true, false][..]),
        // The head starts the exchange; the body written after it is left alone.
        ("body_written_apart", &[true][..]),
    ]);
    let mut injected = Vec::new();
    let mut bytes_checked = 0;
    for case in &cases {
        let sent: Vec<u8> = case.writes.concat();
        let sent_requests = requests_in(&sent);
        let wants = expected[case.name.as_str()];
        assert_eq!(
            (sent_requests.len(), case.echoed.len()),
            (wants.len(), wants.len()),
            "case {}: requests sent and echoed",
            case.name
        );
        for ((received, original), &want) in case.echoed.iter().zip(&sent_requests).zip(wants) {
            let (ids, without) = take_injected(received);
            assert_eq!(
                ids.is_some(),
                want,
                "case {}: a traceparent was {} written into {:?}",
                case.name,
                if want { "not" } else { "wrongly" },
                String::from_utf8_lossy(received)
            );
            assert_eq!(
                without,
                *original,
                "case {}: the server got {:?}, the client wrote {:?}",
                case.name,
                String::from_utf8_lossy(received),
                String::from_utf8_lossy(original)
            );
            bytes_checked += received.len();
            injected.extend(ids);
        }
    }
    assert_eq!(injected.len(), 4);

    // Each injected header names the client span of its request, a root.
    let calls: Vec<&Span> = output
        .spans
        .iter()
        .filter(|s| s.kind == Kind::Client && s.pid == client_pid)
        .collect();
    assert_eq!(calls.len(), 6, "one CLIENT span per request\n{context}");
    for (trace, span) in &injected {
        let call = calls
            .iter()
            .find(|s| &s.span_id == span)
            .unwrap_or_else(|| panic!("no CLIENT span has the injected span id {span}\n{context}"));
        assert_eq!(
            (&call.trace_id, call.parent_span_id.as_str()),
            (trace, ""),
            "{}",
            call.line
        );
    }
    // Looked at: the five requests that start an exchange; the pipelined
    // second and the body written apart are never looked at.
    assert_eq!(
        propagation_line(&output.stderr),
        "context_propagation_requests(injected=4 had_context=1 head_incomplete=0 push_failed=0)",
        "{context}"
    );
    println!(
        "context propagation, bytes at the server: 5 cases, 6 requests, {bytes_checked} bytes \
         compared, 4 headers written (each naming its CLIENT span), 2 left alone; {}",
        propagation_line(&output.stderr)
    );
}

/// The fentry path does not see the sends of sockets whose headers are
/// injected: forcing both is one clear refusal, before any probe loads.
#[test]
fn fentry_with_header_injection_is_refused() {
    require_root();
    let out = run_agent(
        &[],
        &[
            ("BEYLA_OPEN_PORT", "1"),
            ("BEYLA_BPF_CAPTURE_PATH", "fentry"),
            ("BEYLA_BPF_CONTEXT_PROPAGATION", "headers"),
        ],
    );
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.lines().any(|l| l
            == "beyla: capture path fentry is not offered by this kernel: it does not see the \
                requests of sockets whose headers are injected (ebpf.context_propagation); \
                choose another capture path"),
        "{}",
        out.stderr
    );
}
