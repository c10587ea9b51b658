//! SQL databases on the real kernel: Debian's PostgreSQL and MariaDB, started by
//! the tests, and the clients of `clients/sql/` (Go, Python, Java, Node), each
//! traced by executable. Every statement a client reports gives exactly one
//! CLIENT span with the exact attributes, inside the statement's time window;
//! the agent's Prometheus endpoint counts them in `db.client.operation.duration`.
//! Run as root with `--test-threads=1`.

use std::collections::BTreeMap;

use integration_tests::agent::Agent;
use integration_tests::apps::free_port;
use integration_tests::databases::mysql::MySql;
use integration_tests::databases::postgres::Postgres;
use integration_tests::http::{request_on_fresh_connection, Connection, Request};
use integration_tests::process::{kill_and_reap, Lines};
use integration_tests::require_root;
use integration_tests::spans::{Kind, Span, CLOCK_SLACK};
use integration_tests::sql_clients::{run, sql_spans, Client, Database, Run, Statement};

/// Statements of each kind every client sends.
const N: usize = 5;

/// The span one statement must give.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    name: String,
    system: &'static str,
    operation: String,
    collection: String,
    query: String,
    error: String,
    /// `db.namespace`, empty when the connection's start was not seen.
    namespace: &'static str,
    /// Wall-clock window of the call that sent it.
    start_ns: u64,
    end_ns: u64,
}

/// `sql` with its string and number literals replaced by `?`, as the agent shows it by
/// default: enough for the scenarios' statements (no escapes, no dollar quoting).
fn hide_literals(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars().peekable();
    let mut prev_word = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            for d in chars.by_ref() {
                if d == '\'' {
                    break;
                }
            }
            out.push('?');
            prev_word = false;
        } else if c.is_ascii_digit() && !prev_word {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
            {
                chars.next();
            }
            out.push('?');
        } else {
            prev_word = c.is_alphanumeric() || c == '_' || c == '$' || c == '@';
            out.push(c);
        }
    }
    out
}

/// Operation and table of the scenarios' statements.
fn summary(sql: &str) -> (String, String) {
    let operation = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let collection = if sql.contains("\"events\"") {
        "\"events\""
    } else if sql.contains("missing_table") {
        "missing_table"
    } else if sql.contains(" users") {
        "users"
    } else if sql.contains(" events") {
        "events"
    } else {
        ""
    };
    (operation, collection.to_string())
}

fn expected(
    system: &'static str,
    namespace: &'static str,
    sql: &str,
    error: &str,
    start_ns: u64,
    end_ns: u64,
) -> Expected {
    let (operation, collection) = summary(sql);
    let target = if collection.is_empty() {
        namespace
    } else {
        &collection
    };
    Expected {
        name: format!("{operation} {target}"),
        system,
        operation,
        collection,
        query: hide_literals(sql),
        error: error.to_string(),
        namespace,
        start_ns,
        end_ns,
    }
}

/// What the driver sends by itself when it connects, before the scenario.
fn driver_statements(client: Client, database: Database) -> &'static [&'static str] {
    match (client, database) {
        (Client::Java, Database::Postgres) => &["SET application_name = 'PostgreSQL JDBC Driver'"],
        (Client::Java, Database::MySql) => &["set sql_mode=CONCAT(@@sql_mode,',STRICT_TRANS_TABLES'),session_track_system_variables = CONCAT(@@global.session_track_system_variables,',tx_isolation'),NAMES utf8mb4"],
        (Client::Python, Database::MySql) => &["SET NAMES utf8mb4"],
        _ => &[],
    }
}

/// The spans a run must give: the driver's own statements (between its start and its
/// first statement), then one per statement of each batch.
fn expected_spans(client: Client, database: Database, run: &Run, started_ns: u64) -> Vec<Expected> {
    let system = match database {
        Database::Postgres => "postgresql",
        Database::MySql => "mysql",
    };
    // Every run's startup packet names the database, over TLS too: Node's, written
    // through a memory BIO before any SSL_read, is tied to its connection by that write.
    let namespace = "beyla";
    let first = run.statements.first().map_or(started_ns, |s| s.start_ns);
    let mut out: Vec<Expected> = driver_statements(client, database)
        .iter()
        .map(|sql| expected(system, namespace, sql, "", started_ns, first))
        .collect();
    for s in &run.statements {
        let Statement {
            sql,
            error,
            start_ns,
            end_ns,
            count,
            ..
        } = s;
        for _ in 0..*count {
            out.push(expected(system, namespace, sql, error, *start_ns, *end_ns));
        }
    }
    out
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// Which spans a check is about.
enum Side {
    /// The CLIENT spans of this process.
    Client(u32),
    /// The SERVER spans of the database listening on the check's port.
    Server,
}

/// Checks the spans of one side of the connections to `server_port` against
/// `expected`, in order of start.
fn assert_sql_spans(
    scenario: &str,
    spans: &[Span],
    side: Side,
    server_port: u16,
    expected: &[Expected],
    context: &str,
) {
    let kind = match side {
        Side::Client(_) => Kind::Client,
        Side::Server => Kind::Server,
    };
    let mut got: Vec<&Span> = spans
        .iter()
        .filter(|s| match side {
            Side::Client(pid) => s.pid == pid,
            Side::Server => {
                s.kind == Kind::Server && s.attr_text("server.port") == server_port.to_string()
            }
        })
        .collect();
    got.sort_by_key(|s| (s.start_ns, s.end_ns));
    let lines = || {
        got.iter()
            .map(|s| s.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        got.len(),
        expected.len(),
        "[{scenario}] {} statements sent, {} spans seen:\n{}\nexpected:\n{expected:#?}\n{context}",
        expected.len(),
        got.len(),
        lines()
    );
    let slack = CLOCK_SLACK.as_nanos() as u64;
    // Spans of one batch share their times: match each to an expected span of the same
    // window, in order.
    let mut left: Vec<&Expected> = expected.iter().collect();
    for span in &got {
        let at = left.iter().position(|e| {
            span.start_ns + slack >= e.start_ns
                && span.end_ns <= e.end_ns + slack
                && span.name == e.name
                && span.attr_text("db.query.text") == e.query
        });
        let Some(at) = at else {
            panic!("[{scenario}] span matches no statement sent:\n{}\nstill expected:\n{left:#?}\nall spans:\n{}", span.line, lines());
        };
        let e = left.remove(at);
        assert_eq!(span.kind, kind, "[{scenario}] {}", span.line);
        assert_eq!(
            span.attr_text("db.system.name"),
            e.system,
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("db.operation.name"),
            e.operation,
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("db.collection.name"),
            e.collection,
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("db.namespace"),
            e.namespace,
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("db.response.status_code"),
            e.error,
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("error.type"),
            e.error,
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("server.address"),
            "127.0.0.1",
            "[{scenario}] {}",
            span.line
        );
        assert_eq!(
            span.attr_text("server.port"),
            server_port.to_string(),
            "[{scenario}] {}",
            span.line
        );
        assert!(span.end_ns >= span.start_ns, "[{scenario}] {}", span.line);
    }
}

type Counts = BTreeMap<(String, String, String, String), u64>;

/// `db_client_operation_duration_seconds_count` series of the agent's Prometheus
/// endpoint, by (system, operation, collection, status code), summed over services.
fn metric_counts(port: u16) -> Counts {
    let (response, _) = request_on_fresh_connection(port, &Request::get("/metrics"));
    let mut counts = Counts::new();
    for line in response.body_text().lines() {
        let Some(rest) = line.strip_prefix("db_client_operation_duration_seconds_count{") else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").expect("a sample line");
        let labels = parse_labels(labels);
        let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
        let key = (
            label("db_system_name"),
            label("db_operation_name"),
            label("db_collection_name"),
            label("db_response_status_code"),
        );
        *counts.entry(key).or_insert(0) += value.trim().parse::<f64>().expect("a count") as u64;
    }
    counts
}

/// The counts once they reach `expected` (spans reach the exporter a moment after the
/// client is done), or as they are when [`METRICS_TIMEOUT`] runs out.
fn settled_metric_counts(port: u16, expected: &Counts) -> Counts {
    let deadline = std::time::Instant::now() + METRICS_TIMEOUT;
    loop {
        let counts = metric_counts(port);
        if &counts == expected || std::time::Instant::now() >= deadline {
            return counts;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// How long the agent may take to count what it has seen.
const METRICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `name="value",...` of a Prometheus sample, with `\"` and `\\` unescaped.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if name.is_empty() {
            return labels;
        }
        assert_eq!(chars.next(), Some('"'), "label {name} in {text}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_string(), value);
    }
}

fn expected_counts(all: &[Expected]) -> Counts {
    let mut counts = Counts::new();
    for e in all {
        let key = (
            e.system.to_string(),
            e.operation.clone(),
            e.collection.clone(),
            e.error.clone(),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// One client against both servers (PostgreSQL also over TLS when the client's TLS
/// goes through OpenSSL), under one agent: spans and metric counts.
fn client_scenario(client: Client) {
    require_root();
    let postgres = Postgres::get();
    let mysql = MySql::get();
    let metrics_port = free_port();
    let agent = Agent::start(&[
        ("BEYLA_EXECUTABLE_NAME", client.executable_pattern()),
        ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
    ]);
    agent.wait_ready();
    // OpenSSL's uprobes see TLS plaintext: psycopg (libpq) and Node. Go's crypto/tls and
    // Java's JSSE are not instrumented yet.
    let tls_runs: &[bool] = match client {
        Client::Python | Client::Node => &[false, true],
        Client::Go | Client::Java => &[false],
    };
    let mut runs = Vec::new();
    for &tls in tls_runs {
        postgres.reset();
        let started = wall_ns();
        let r = run(client, Database::Postgres, postgres.port, N, tls);
        let expected = expected_spans(client, Database::Postgres, &r, started);
        runs.push((
            format!("{client:?} PostgreSQL tls={tls}"),
            r.pid,
            postgres.port,
            expected,
        ));
    }
    mysql.reset();
    let started = wall_ns();
    let r = run(client, Database::MySql, mysql.port, N, false);
    let expected = expected_spans(client, Database::MySql, &r, started);
    runs.push((format!("{client:?} MariaDB"), r.pid, mysql.port, expected));

    let all: Vec<Expected> = runs
        .iter()
        .flat_map(|(.., expected)| expected.iter().cloned())
        .collect();
    let counts = settled_metric_counts(metrics_port, &expected_counts(&all));
    let output = agent.stop();
    let spans = sql_spans(&output.lines);
    let context = format!("agent stderr:\n{}", output.stderr);
    for (scenario, pid, port, expected) in &runs {
        assert_sql_spans(
            scenario,
            &spans,
            Side::Client(*pid),
            *port,
            expected,
            &context,
        );
        println!(
            "{scenario}: {} statements sent, {} spans seen",
            expected.len(),
            expected.len()
        );
    }
    assert_eq!(
        counts,
        expected_counts(&all),
        "{client:?}: db.client.operation.duration counts"
    );
}

/// The database processes themselves, selected by executable, give a SERVER span per
/// statement they serve, and feed no client metric. PostgreSQL serves each connection
/// from a process it forks, which the kernel traces from the fork: its startup packet
/// (the database name) is seen too.
#[test]
fn database_processes_give_server_spans() {
    require_root();
    let postgres = Postgres::get();
    let mysql = MySql::get();
    let metrics_port = free_port();
    let agent = Agent::start(&[
        ("BEYLA_EXECUTABLE_NAME", "/(postgres|mariadbd)$"),
        ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
    ]);
    agent.wait_ready();
    agent.wait_instrumenting(mysql.pid);
    agent.wait_instrumenting(postgres.pid);
    postgres.reset();
    let started = wall_ns();
    let pg = run(Client::Python, Database::Postgres, postgres.port, N, false);
    let pg_expected = expected_spans(Client::Python, Database::Postgres, &pg, started);
    mysql.reset();
    let started = wall_ns();
    let my = run(Client::Python, Database::MySql, mysql.port, N, false);
    let my_expected = expected_spans(Client::Python, Database::MySql, &my, started);
    let counts = metric_counts(metrics_port);
    let output = agent.stop();
    let spans = sql_spans(&output.lines);
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_sql_spans(
        "PostgreSQL server",
        &spans,
        Side::Server,
        postgres.port,
        &pg_expected,
        &context,
    );
    assert_sql_spans(
        "MariaDB server",
        &spans,
        Side::Server,
        mysql.port,
        &my_expected,
        &context,
    );
    for (scenario, expected) in [
        ("PostgreSQL server", &pg_expected),
        ("MariaDB server", &my_expected),
    ] {
        println!(
            "{scenario}: {} statements served, {} spans seen",
            expected.len(),
            expected.len()
        );
    }
    assert!(
        counts.is_empty(),
        "server spans feed no client metric: {counts:?}"
    );
}

/// A statement sent while serving an HTTP request is a child of that request's span,
/// in its trace (a Python service on one thread: `clients/sql/python/http_server.py`).
#[test]
fn a_query_made_while_serving_is_a_child_of_the_request() {
    const REQUESTS: usize = 3;
    require_root();
    let postgres = Postgres::get();
    integration_tests::sql_clients::build();
    let port = free_port();
    let root = integration_tests::workspace_root();
    let mut child = std::process::Command::new(root.join("target/clients/sql-venv/bin/python"))
        .arg(root.join("integration-tests/clients/sql/python/http_server.py"))
        .arg(port.to_string())
        .arg(postgres.port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the Python HTTP service");
    let (stdout, _reader) = Lines::capture(child.stdout.take().expect("piped stdout"));
    let (stderr, _err_reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
    let listening = stdout.wait_for(std::time::Duration::from_secs(30), |l| l == "listening");
    if !listening {
        kill_and_reap(&mut child);
        panic!("the Python HTTP service did not start:\n{}", stderr.text());
    }
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &port.to_string())]);
    agent.wait_ready();
    agent.wait_instrumenting(child.id());
    let mut connection = Connection::open(port);
    for id in 1..=REQUESTS {
        let (response, _) = connection.round_trip(&Request::get(&format!("/users/{id}")));
        assert_eq!(response.status, 200);
    }
    let output = agent.stop();
    kill_and_reap(&mut child);
    let http: Vec<_> = output
        .spans
        .iter()
        .filter(|s| s.kind == Kind::Server && s.pid == child.id())
        .collect();
    let sql: Vec<Span> = sql_spans(&output.lines)
        .into_iter()
        .filter(|s| s.pid == child.id())
        .collect();
    let context = format!("agent stderr:\n{}", output.stderr);
    assert_eq!(
        http.len(),
        REQUESTS,
        "HTTP server spans: {http:#?}\n{context}"
    );
    // The connection's set-up went by before the agent; each request runs one statement.
    assert_eq!(sql.len(), REQUESTS, "SQL spans: {sql:#?}\n{context}");
    for q in &sql {
        let parent = http
            .iter()
            .find(|h| h.span_id == q.parent_span_id)
            .unwrap_or_else(|| {
                panic!(
                    "SQL span with no HTTP parent: {}\nHTTP spans: {http:#?}",
                    q.line
                )
            });
        assert_eq!(q.trace_id, parent.trace_id, "{}", q.line);
        assert!(
            q.start_ns >= parent.start_ns && q.end_ns <= parent.end_ns,
            "{} inside {}",
            q.line,
            parent.line
        );
        assert_eq!(q.name, "SELECT users");
        assert_eq!(
            q.attr_text("db.query.text"),
            "SELECT name FROM users WHERE id = $1"
        );
    }
}

/// Bytes that are no PostgreSQL after a real startup (a message length beyond the
/// protocol's limit) are counted as a parse error and give no span; the statement
/// sent before them still gives its span.
#[test]
fn malformed_traffic_is_counted_and_skipped() {
    require_root();
    let postgres = Postgres::get();
    integration_tests::sql_clients::build();
    let metrics_port = free_port();
    let agent = Agent::start(&[
        ("BEYLA_EXECUTABLE_NAME", Client::Python.executable_pattern()),
        ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
    ]);
    agent.wait_ready();
    // A startup packet, one good query, then a query message 2 GiB long.
    let script = r#"
import socket, struct, sys, time
time.sleep(1.5)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
params = b"user\0beyla\0database\0beyla\0\0"
s.sendall(struct.pack(">II", 8 + len(params), 196608) + params)
def until_ready():
    data = b""
    while not data.endswith(b"Z\0\0\0\x05I"):
        data += s.recv(65536)
until_ready()
q = b"SELECT 1\0"
s.sendall(b"Q" + struct.pack(">I", 4 + len(q)) + q)
until_ready()
s.sendall(b"Q\x7f\xff\xff\xffSELECT 2")
s.recv(65536)
s.close()
"#;
    let root = integration_tests::workspace_root();
    let mut child = std::process::Command::new(root.join("target/clients/sql-venv/bin/python"))
        .args(["-c", script, &postgres.port.to_string()])
        .spawn()
        .expect("run the Python script");
    let pid = child.id();
    assert!(child.wait().expect("wait for the script").success());
    let deadline = std::time::Instant::now() + METRICS_TIMEOUT;
    let parse_errors = loop {
        let (response, _) = request_on_fresh_connection(metrics_port, &Request::get("/metrics"));
        let body = response.body_text();
        let errors: u64 = body
            .lines()
            .filter_map(|l| l.strip_prefix("beyla_parse_errors_total "))
            .map(|v| v.trim().parse::<f64>().expect("a count") as u64)
            .sum();
        if errors > 0 || std::time::Instant::now() >= deadline {
            break errors;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let output = agent.stop();
    let spans = sql_spans(&output.lines);
    assert_eq!(parse_errors, 1, "agent stderr:\n{}", output.stderr);
    let names: Vec<_> = spans
        .iter()
        .filter(|s| s.pid == pid)
        .map(|s| (s.name.as_str(), s.attr_text("db.query.text")))
        .collect();
    assert_eq!(
        names,
        [("SELECT beyla", "SELECT ?".to_string())],
        "agent stderr:\n{}",
        output.stderr
    );
}

/// `BEYLA_BPF_SQL_QUERY_TEXT=raw`: the statements as sent, literals included.
#[test]
fn raw_query_text_when_asked() {
    require_root();
    let mysql = MySql::get();
    let agent = Agent::start(&[
        ("BEYLA_EXECUTABLE_NAME", Client::Go.executable_pattern()),
        ("BEYLA_BPF_SQL_QUERY_TEXT", "raw"),
    ]);
    agent.wait_ready();
    mysql.reset();
    let r = run(Client::Go, Database::MySql, mysql.port, 1, false);
    let output = agent.stop();
    let texts: Vec<String> = sql_spans(&output.lines)
        .iter()
        .filter(|s| s.pid == r.pid)
        .map(|s| s.attr_text("db.query.text"))
        .collect();
    let sent: Vec<String> = r.statements.iter().map(|s| s.sql.clone()).collect();
    assert_eq!(texts, sent, "agent stderr:\n{}", output.stderr);
}

#[test]
fn go_pgx_and_go_sql_driver_mysql() {
    client_scenario(Client::Go);
}

#[test]
fn python_psycopg_and_pymysql() {
    client_scenario(Client::Python);
}

#[test]
fn java_pgjdbc_and_mariadb_connector_j() {
    client_scenario(Client::Java);
}

#[test]
fn node_pg_and_mysql2() {
    client_scenario(Client::Node);
}

#[test]
fn prometheus_labels_are_unescaped() {
    let labels = parse_labels(r#"a="x",b="\"events\"",c="back\\slash",d="""#);
    assert_eq!(labels["a"], "x");
    assert_eq!(labels["b"], "\"events\"");
    assert_eq!(labels["c"], "back\\slash");
    assert_eq!(labels["d"], "");
}
