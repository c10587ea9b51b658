//! The HTTP/2 and gRPC sample apps of `vm-tests/apps/grpc/` and
//! `vm-tests/apps/h2c/` (servers and clients, Python and Go), and the spans
//! the agent prints for them, parsed from the raw JSON lines (gRPC spans have
//! `rpc.*` attributes and no `http.route`, which [`crate::spans::Span`] does
//! not cover), with one assertion comparing them with the calls made.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::apps::{free_port, python_interpreter, run_build_script};
use crate::process::{kill_and_reap, spawn_listening, Lines, Listening};
use crate::spans::{compare_ends, id_and_time_problems, Kind, Span};
use crate::workspace_root;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The gRPC service every sample app implements.
pub const GRPC_SERVICE: &str = "demo.v1.Greeter";

/// Builds the apps once per test binary with `vm-tests/apps/grpc/build.sh`
/// (protoc for Python, grpc-go and h2c binaries); panics with its output if
/// it fails, since a test that cannot build its peers must fail.
pub fn build() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| run_build_script("vm-tests/apps/grpc/build.sh"));
    if let Err(message) = outcome {
        panic!("cannot build the HTTP/2 and gRPC sample apps: {message}");
    }
}

fn app_binary(name: &str) -> PathBuf {
    workspace_root().join("target/apps").join(name)
}

/// `target/apps/grpc-go-client`, the binary a test selects by name.
pub fn go_grpc_client_binary() -> PathBuf {
    app_binary("grpc-go-client")
}

/// The sample servers.
#[derive(Clone, Copy, Debug)]
pub enum ServerApp {
    /// grpcio, `vm-tests/apps/grpc/python/server.py`.
    PythonGrpc,
    /// grpc-go, `target/apps/grpc-go-server`.
    GoGrpc,
    /// net/http h2c, `target/apps/h2c-server`.
    GoH2c,
    /// axum on hyper (HTTP/1 and h2c on one port), `target/apps/rust-server`.
    RustH2c,
}

/// The gRPC sample clients.
#[derive(Clone, Copy, Debug)]
pub enum ClientApp {
    PythonGrpc,
    GoGrpc,
}

fn python_app(script: &str) -> Command {
    let mut command = Command::new(python_interpreter());
    command.arg(
        workspace_root()
            .join("vm-tests/apps/grpc/python")
            .join(script),
    );
    command
}

/// A running sample server on a free port; killed when dropped.
pub struct AppServer {
    child: Child,
    stderr: Lines,
    pub port: u16,
}

impl AppServer {
    /// Starts `app` and waits until it prints `listening on <port>`.
    pub fn start(app: ServerApp) -> AppServer {
        build();
        let port = free_port();
        let mut command = match app {
            ServerApp::PythonGrpc => python_app("server.py"),
            ServerApp::GoGrpc => Command::new(app_binary("grpc-go-server")),
            ServerApp::GoH2c => Command::new(app_binary("h2c-server")),
            ServerApp::RustH2c => {
                crate::apps::build_apps();
                Command::new(app_binary("rust-server"))
            }
        };
        command
            .current_dir(workspace_root())
            .env("PORT", port.to_string());
        let what = format!("the {app:?} server");
        let Listening { child, stderr, .. } =
            spawn_listening(command, port, STARTUP_TIMEOUT, &what);
        AppServer {
            child,
            stderr,
            port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The base name of its executable: the agent's service name for it.
    pub fn service_name(&self) -> String {
        exe_base_name(self.pid())
    }

    /// `127.0.0.1:<port>`, a gRPC target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the server wrote on stderr so far, for failure messages.
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn exe_base_name(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/exe: {e}"))
        .file_name()
        .expect("an executable has a file name")
        .to_string_lossy()
        .into_owned()
}

/// One call a sample gRPC client made, as it reported it.
#[derive(Clone, Debug)]
pub struct Call {
    /// `SayHello` or `StreamHellos`.
    pub method: String,
    /// The gRPC status code the client got.
    pub code: u64,
    pub replies: u64,
    /// (trace id, parent span id) of the `traceparent` metadata it sent.
    pub traceparent: Option<(String, String)>,
}

/// A finished run of a sample gRPC client.
pub struct ClientRun {
    pub pid: u32,
    /// The base name of the client's executable.
    pub service: String,
    pub calls: Vec<Call>,
    pub output: Output,
}

/// Runs `app` against `target` with the call plan `steps` (e.g.
/// `["unary", "5", "fail", "2"]`, see `vm-tests/apps/grpc/python/client.py`)
/// and asserts it exits 0 (every call ended with the status it expected).
pub fn run_grpc_client(scenario: &str, app: ClientApp, target: &str, steps: &[&str]) -> ClientRun {
    build();
    let mut command = match app {
        ClientApp::PythonGrpc => python_app("client.py"),
        ClientApp::GoGrpc => Command::new(go_grpc_client_binary()),
    };
    command
        .current_dir(workspace_root())
        .arg(target)
        .args(steps)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("[{scenario}] cannot start {command:?}: {e}"));
    let pid = child.id();
    // The executable is known from its first instruction; read it before it exits.
    let service = match app {
        ClientApp::PythonGrpc => python_interpreter()
            .file_name()
            .expect("the interpreter has a file name")
            .to_string_lossy()
            .into_owned(),
        ClientApp::GoGrpc => "grpc-go-client".to_string(),
    };
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("[{scenario}] wait for {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "[{scenario}] the {app:?} client {steps:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let calls = stdout
        .lines()
        .map(|line| parse_call(scenario, line))
        .collect();
    ClientRun {
        pid,
        service,
        calls,
        output,
    }
}

/// `<method> <code> <replies> <traceparent or -> <start_ns> <end_ns>`.
fn parse_call(scenario: &str, line: &str) -> Call {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let bad = || panic!("[{scenario}] bad client output line {line:?}");
    if fields.len() != 6 {
        bad();
    }
    let number = |f: &str| f.parse::<u64>().unwrap_or_else(|_| bad());
    let traceparent = match fields[3] {
        "-" => None,
        tp => {
            let parts: Vec<&str> = tp.split('-').collect();
            if parts.len() != 4 {
                bad();
            }
            Some((parts[1].to_string(), parts[2].to_string()))
        }
    };
    Call {
        method: fields[0].to_string(),
        code: number(fields[1]),
        replies: number(fields[2]),
        traceparent,
    }
}

/// The gRPC part of an expected span.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpectedRpc {
    pub method: String,
    pub code: u64,
}

/// One span the agent must print for one request or call a test made.
#[derive(Clone, Debug)]
pub struct ExpectedSpan {
    pub scenario: String,
    pub kind: Kind,
    pub method: String,
    pub path: String,
    /// `Some` for plain HTTP spans (their name is `<method> <route>`); `None`
    /// for gRPC spans, named `<service>/<method>`, whose route is not checked.
    pub route: Option<String>,
    pub status: u64,
    /// `Some` for a gRPC call: the span must carry `rpc.*`; `None`: it must not.
    pub rpc: Option<ExpectedRpc>,
    pub service: String,
    pub pid: u32,
    pub server_port: u16,
    /// (trace id, parent span id) the span must join; `None`: a root span.
    pub joins: Option<(String, String)>,
}

impl ExpectedSpan {
    /// The span expected for gRPC call `call` to `GRPC_SERVICE`.
    pub fn grpc(
        scenario: &str,
        kind: Kind,
        call: &Call,
        service: &str,
        pid: u32,
        server_port: u16,
    ) -> ExpectedSpan {
        ExpectedSpan {
            scenario: scenario.to_string(),
            kind,
            method: "POST".into(),
            path: format!("/{GRPC_SERVICE}/{}", call.method),
            route: None,
            status: 200,
            rpc: Some(ExpectedRpc {
                method: call.method.clone(),
                code: call.code,
            }),
            service: service.to_string(),
            pid,
            server_port,
            joins: call.traceparent.clone(),
        }
    }

    fn name(&self) -> String {
        match (&self.route, &self.rpc) {
            (Some(route), _) => format!("{} {route}", self.method),
            (None, Some(rpc)) => format!("{GRPC_SERVICE}/{}", rpc.method),
            (None, None) => self.method.clone(),
        }
    }
}

/// What pairs an untraced expectation with a span: everything a test can see
/// of the request from outside.
type Key = (Kind, String, String, u64, Option<u64>);

fn key_of_expected(e: &ExpectedSpan) -> Key {
    (
        e.kind,
        e.method.clone(),
        e.path.clone(),
        e.status,
        e.rpc.as_ref().map(|r| r.code),
    )
}

fn key_of_span(s: &Span) -> Key {
    (
        s.kind,
        s.method.clone(),
        s.path.clone(),
        u64::from(s.status),
        grpc_status(s),
    )
}

/// `rpc.grpc.status_code`, if the span has one.
fn grpc_status(s: &Span) -> Option<u64> {
    s.attr_int("rpc.grpc.status_code")
        .and_then(|code| u64::try_from(code).ok())
}

/// Asserts that `spans` are exactly the `expected` ones: a call that sent a
/// `traceparent` is paired with the one span of that trace (so a span whose
/// attributes belong to another call shows up as a mismatch), the others by
/// kind, method, path and status; then every field is compared. No missing,
/// duplicate or extra span. Returns the span matched to each expectation.
pub fn assert_span_set(spans: &[Span], expected: &[ExpectedSpan], context: &str) -> Vec<Span> {
    let mut problems = Vec::new();
    let mut used = vec![false; spans.len()];
    let mut matched: Vec<Option<usize>> = vec![None; expected.len()];

    for (i, e) in expected.iter().enumerate() {
        let Some((trace_id, _)) = &e.joins else {
            continue;
        };
        let of_trace: Vec<usize> = (0..spans.len())
            .filter(|&j| &spans[j].trace_id == trace_id)
            .collect();
        if of_trace.len() == 1 {
            used[of_trace[0]] = true;
            matched[i] = Some(of_trace[0]);
        } else {
            problems.push(format!(
                "[{}] expected 1 {} span in trace {trace_id} ({} {}), got {}:\n{}",
                e.scenario,
                e.kind.as_str(),
                e.method,
                e.path,
                of_trace.len(),
                lines(of_trace.iter().map(|&j| &spans[j]))
            ));
            for j in of_trace {
                used[j] = true;
            }
        }
    }

    let mut free_spans: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (j, s) in spans.iter().enumerate() {
        if !used[j] {
            free_spans.entry(key_of_span(s)).or_default().push(j);
        }
    }
    let mut untraced: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, e) in expected.iter().enumerate() {
        if e.joins.is_none() {
            untraced.entry(key_of_expected(e)).or_default().push(i);
        }
    }
    for (key, indices) in untraced {
        let mut got = free_spans.remove(&key).unwrap_or_default();
        let first = &expected[indices[0]];
        if got.len() != indices.len() {
            problems.push(format!(
                "[{}] expected {} {} span(s) for {} {} (status {}, grpc status {:?}), got {}:\n{}",
                first.scenario,
                indices.len(),
                key.0.as_str(),
                key.1,
                key.2,
                key.3,
                key.4,
                got.len(),
                lines(got.iter().map(|&j| &spans[j]))
            ));
            continue;
        }
        got.sort_by_key(|&j| spans[j].start_ns);
        for (i, j) in indices.into_iter().zip(got) {
            matched[i] = Some(j);
        }
    }
    for (key, got) in free_spans {
        problems.push(format!(
            "unexpected {} span(s) for {} {} (status {}, grpc status {:?}): no such call was made:\n{}",
            key.0.as_str(),
            key.1,
            key.2,
            key.3,
            key.4,
            lines(got.iter().map(|&j| &spans[j]))
        ));
    }
    for (i, e) in expected.iter().enumerate() {
        if let Some(j) = matched[i] {
            check_span(e, &spans[j], &mut problems);
        }
    }
    let mut ids = HashSet::new();
    for s in spans {
        if !ids.insert(&s.span_id) {
            problems.push(format!("spanId {} appears twice: {}", s.span_id, s.line));
        }
    }
    if !problems.is_empty() {
        panic!(
            "{} problem(s) in {} span(s) for {} expected call(s):\n\n{}\n\n{context}",
            problems.len(),
            spans.len(),
            expected.len(),
            problems.join("\n\n")
        );
    }
    matched
        .into_iter()
        .map(|j| spans[j.expect("every expectation matched")].clone())
        .collect()
}

fn lines<'a>(spans: impl Iterator<Item = &'a Span>) -> String {
    let text: Vec<String> = spans.map(|s| format!("  {}", s.line)).collect();
    if text.is_empty() {
        "  (none)".to_string()
    } else {
        text.join("\n")
    }
}

fn check_span(e: &ExpectedSpan, s: &Span, problems: &mut Vec<String>) {
    let mut mismatches = Vec::new();
    let mut compare = |what: &str, want: String, got: String| {
        if want != got {
            mismatches.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    compare("kind", e.kind.as_str().into(), s.kind.as_str().into());
    compare("name", e.name(), s.name.clone());
    compare("http.request.method", e.method.clone(), s.method.clone());
    compare("url.path", e.path.clone(), s.path.clone());
    if e.route.is_some() {
        let route = Some(s.route.clone()).filter(|r| !r.is_empty());
        compare("http.route", format!("{:?}", e.route), format!("{route:?}"));
    }
    compare(
        "http.response.status_code",
        e.status.to_string(),
        s.status.to_string(),
    );
    let (system, service, method, code) = match &e.rpc {
        Some(rpc) => (
            Some("grpc".to_string()),
            Some(GRPC_SERVICE.to_string()),
            Some(rpc.method.clone()),
            Some(rpc.code),
        ),
        None => (None, None, None, None),
    };
    let attr = |name: &str| s.attr(name).map(str::to_string);
    compare(
        "rpc.system",
        format!("{system:?}"),
        format!("{:?}", attr("rpc.system")),
    );
    compare(
        "rpc.service",
        format!("{service:?}"),
        format!("{:?}", attr("rpc.service")),
    );
    compare(
        "rpc.method",
        format!("{method:?}"),
        format!("{:?}", attr("rpc.method")),
    );
    compare(
        "rpc.grpc.status_code",
        format!("{code:?}"),
        format!("{:?}", grpc_status(s)),
    );
    compare_ends(s, e.kind, &e.service, e.pid, e.server_port, &mut compare);
    match &e.joins {
        None => compare(
            "parentSpanId",
            "\"\"".into(),
            format!("{:?}", s.parent_span_id),
        ),
        Some((trace_id, parent)) => {
            compare("traceId", trace_id.clone(), s.trace_id.clone());
            compare("parentSpanId", parent.clone(), s.parent_span_id.clone());
        }
    }
    mismatches.extend(id_and_time_problems(s));
    if !mismatches.is_empty() {
        problems.push(format!(
            "[{}] {} span for {} {}{}:\n  {}\n  span: {}",
            e.scenario,
            e.kind.as_str(),
            e.method,
            e.path,
            e.joins
                .as_ref()
                .map(|(t, _)| format!(" (trace {t})"))
                .unwrap_or_default(),
            mismatches.join("\n  "),
            s.line
        ));
    }
}

/// The agent's `stopped: ...` counters line, for the summary of a run.
pub fn stopped_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .map(|l| &l[l.find("stopped:").unwrap_or(0)..])
        .unwrap_or("(no stopped: line)")
}
