//! The SQL clients of `clients/sql/` (Go, Python, Java, Node): built once per
//! test binary, run as direct children so that the pid a test knows is the pid
//! the agent traces, and their account of every statement they sent.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::apps::run_build_script;
use crate::spans::Span;
use crate::workspace_root;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// pgx; database/sql with go-sql-driver/mysql.
    Go,
    /// psycopg 3; PyMySQL.
    Python,
    /// pgjdbc; MariaDB Connector/J.
    Java,
    /// pg; mysql2.
    Node,
}

impl Client {
    pub const ALL: [Client; 4] = [Client::Go, Client::Python, Client::Java, Client::Node];

    /// The regular expression that selects this client's process by executable path.
    pub fn executable_pattern(self) -> &'static str {
        match self {
            Client::Go => "/sql-go$",
            Client::Python => "python[0-9.]*$",
            Client::Java => "/java$",
            Client::Node => "/node$",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    Postgres,
    MySql,
}

impl Database {
    fn arg(self) -> &'static str {
        match self {
            Database::Postgres => "postgres",
            Database::MySql => "mysql",
        }
    }
}

/// One statement (or batch) a client reports it sent.
#[derive(Clone, Debug)]
pub struct Statement {
    pub kind: String,
    pub sql: String,
    /// SQLSTATE (PostgreSQL) or error number (MySQL); empty when it succeeded.
    pub error: String,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Statements a batch carried.
    pub count: u32,
}

/// A finished client run.
pub struct Run {
    pub pid: u32,
    pub statements: Vec<Statement>,
}

/// Builds the clients once per test binary with `clients/sql/build.sh`.
pub fn build() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| run_build_script("integration-tests/clients/sql/build.sh"));
    if let Err(message) = outcome {
        panic!("cannot build the SQL clients: {message}");
    }
}

fn command(client: Client) -> Command {
    build();
    let root = workspace_root();
    let clients = root.join("integration-tests/clients/sql");
    let built = root.join("target/clients");
    match client {
        Client::Go => Command::new(built.join("sql-go")),
        Client::Python => {
            // The venv's python is a link to the real interpreter, which the kernel runs.
            let mut c = Command::new(built.join("sql-venv/bin/python"));
            c.arg(clients.join("python/client.py"));
            c
        }
        Client::Java => {
            let mut c = Command::new(java());
            c.arg("-jar").arg(built.join("sql-client.jar"));
            c
        }
        Client::Node => {
            let mut c = Command::new("node");
            c.arg(clients.join("node/client.js"));
            c
        }
    }
}

/// The real `java` binary (not the alternatives link), as the kernel sees it exec'd.
fn java() -> PathBuf {
    std::fs::canonicalize(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("java"))
            .find(|path| path.is_file())
            .expect("java is not on PATH (scripts/setup.sh installs it)"),
    )
    .expect("resolve the java binary")
}

/// How long a client waits, its driver loaded, before it connects.
const CONNECT_DELAY_MS: &str = "1500";

/// Runs `client`'s scenario with `n` statements of each kind against `database` on
/// `port`, over TLS when `tls`; panics with its output if it fails.
pub fn run(client: Client, database: Database, port: u16, n: usize, tls: bool) -> Run {
    let mut command = command(client);
    command
        .arg(database.arg())
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg(n.to_string());
    if tls {
        command.arg("tls");
    }
    // The agent confirms a new process at its exec, and attaches its OpenSSL uprobes
    // once it maps libssl (looked for again up to 2 s after): the client connects
    // only after that.
    command.env("SQL_CLIENT_CONNECT_DELAY_MS", CONNECT_DELAY_MS);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let pid = child.id();
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{client:?} client against {database:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let statements = stdout.lines().map(parse_line).collect();
    Run { pid, statements }
}

fn parse_line(line: &str) -> Statement {
    let json: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("a client line is not JSON ({e}): {line}"));
    let text = |key: &str| {
        json.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("client line has no string {key}: {line}"))
            .to_string()
    };
    let number = |key: &str| {
        json.get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("client line has no number {key}: {line}"))
    };
    Statement {
        kind: text("kind"),
        sql: text("sql"),
        error: text("error"),
        start_ns: number("start_ns"),
        end_ns: number("end_ns"),
        count: u32::try_from(number("count")).expect("a small count"),
    }
}

/// The SQL spans among the lines the agent printed (`BEYLA_TRACE_PRINTER=json`).
pub fn sql_spans(lines: &[String]) -> Vec<Span> {
    lines
        .iter()
        .filter(|line| line.contains("\"db.system.name\""))
        .map(|line| Span::parse(line))
        .collect()
}
