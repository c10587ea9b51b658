//! The Redis and Kafka clients of `integration-tests/clients/kv/` (Go, Python, Node, Java), built
//! once per test binary, run to completion; each prints one line per operation it made.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use std::io::Write;

use crate::agent::Agent;
use crate::apps::run_build_script;
use crate::process::{kill_and_reap, spawn_listening, wait_with_timeout, Lines};
use crate::workspace_root;

/// A client's whole run; the JVM clients take a few seconds.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvClient {
    /// go-redis (RESP3) and segmentio/kafka-go.
    Go,
    /// redis-py (RESP2) and kafka-python.
    Python,
    /// ioredis (RESP3); no Kafka client.
    Node,
    /// Jedis (RESP2) and kafka-clients.
    Java,
}

/// One operation a client reports: `sent NAME ok` or `sent NAME error CODE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub name: String,
    /// The error code the server answered (`WRONGTYPE`, `ERR`).
    pub error: Option<String>,
}

/// What a finished client run did.
pub struct ClientRun {
    pub pid: u32,
    pub sent: Vec<Sent>,
    /// `received ...` lines: pub/sub messages, fetched records.
    pub received: Vec<String>,
    pub stdout: String,
}

/// Builds every client once per test binary with `integration-tests/clients/kv/build.sh`.
pub fn build_kv_clients() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| run_build_script("integration-tests/clients/kv/build.sh"));
    if let Err(message) = outcome {
        panic!("cannot build the Redis and Kafka clients: {message}");
    }
}

impl KvClient {
    pub const ALL: [KvClient; 4] = [
        KvClient::Go,
        KvClient::Python,
        KvClient::Node,
        KvClient::Java,
    ];
    pub const KAFKA: [KvClient; 3] = [KvClient::Go, KvClient::Python, KvClient::Java];

    fn command(self, program: &str) -> Command {
        build_kv_clients();
        let root = workspace_root();
        let out = root.join("target/clients/kv");
        let sources = root.join("integration-tests/clients/kv");
        match self {
            KvClient::Go => {
                let mut c = Command::new(out.join("kv-client"));
                c.arg(program);
                c
            }
            KvClient::Python => {
                let mut c = Command::new(out.join("venv/bin/python"));
                c.arg(sources.join(format!("python/{program}_client.py")));
                c
            }
            KvClient::Node => {
                let mut c = Command::new("node");
                c.arg(sources.join(format!("node/{program}_client.js")));
                c
            }
            KvClient::Java => {
                let class = match program {
                    "redis" => "RedisClient",
                    _ => "KafkaClient",
                };
                let mut c = Command::new("java");
                c.arg("-cp")
                    .arg(format!(
                        "{}:{}",
                        out.join("java/kv-clients.jar").display(),
                        out.join("java/lib/*").display()
                    ))
                    .arg(class);
                c
            }
        }
    }

    /// The command that runs this client's Redis scenario `n` times against `port`.
    pub fn redis(self, port: u16, n: usize) -> Command {
        let mut c = self.command("redis");
        c.arg(format!("127.0.0.1:{port}")).arg(n.to_string());
        c
    }

    /// The command that produces `n` records to `topic` and fetches them back.
    pub fn kafka(self, port: u16, n: usize, topic: &str) -> Command {
        assert_ne!(self, KvClient::Node, "the Node client speaks no Kafka");
        let mut c = self.command("kafka");
        c.arg(format!("127.0.0.1:{port}"))
            .arg(n.to_string())
            .arg(topic);
        c
    }
}

/// Runs a client to its end and reads what it reports; panics, with its output, if it fails.
/// A client starts when it reads a line: once `traced_by` traces it, if given, so that none of
/// its connections predates tracing.
pub fn run(mut command: Command, traced_by: Option<&Agent>) -> ClientRun {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let pid = child.id();
    let (stdout, out_reader) = Lines::capture(child.stdout.take().expect("piped stdout"));
    let (stderr, err_reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
    if let Some(agent) = traced_by {
        agent.wait_instrumenting(pid);
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(b"go\n")
        .unwrap_or_else(|e| panic!("cannot start {command:?} through its stdin: {e}"));
    drop(stdin);
    let status = wait_with_timeout(&mut child, RUN_TIMEOUT);
    kill_and_reap(&mut child);
    out_reader.join().expect("stdout reader");
    err_reader.join().expect("stderr reader");
    let text = stdout.text();
    match status {
        Some(status) if status.success() => {}
        _ => panic!(
            "{command:?} failed ({status:?})\nstdout:\n{text}\nstderr:\n{}",
            stderr.text()
        ),
    }
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for line in stdout.all() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["sent", name, "ok", ..] => sent.push(Sent {
                name: name.to_string(),
                error: None,
            }),
            ["sent", name, "error", code] => sent.push(Sent {
                name: name.to_string(),
                error: Some(code.to_string()),
            }),
            ["received", ..] => received.push(line.clone()),
            _ => panic!("{command:?} printed an unexpected line {line:?}\nstdout:\n{text}"),
        }
    }
    ClientRun {
        pid,
        sent,
        received,
        stdout: text,
    }
}

/// How long the Python HTTP server may take to listen.
const SERVER_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `python/redis_http_server.py`: an HTTP server reading a Redis key per request; killed when
/// dropped.
pub struct RedisHttpServer {
    child: std::process::Child,
    pub port: u16,
}

impl RedisHttpServer {
    pub fn start(redis_port: u16) -> RedisHttpServer {
        build_kv_clients();
        let root = workspace_root();
        let port = crate::apps::free_port();
        let mut command = Command::new(root.join("target/clients/kv/venv/bin/python"));
        command
            .arg(root.join("integration-tests/clients/kv/python/redis_http_server.py"))
            .arg(port.to_string())
            .arg(format!("127.0.0.1:{redis_port}"));
        let what = "the Redis HTTP server";
        let child = spawn_listening(command, port, SERVER_STARTUP_TIMEOUT, what).child;
        RedisHttpServer { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisHttpServer {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
