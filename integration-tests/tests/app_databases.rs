//! The sample apps' `/db/<store>` endpoints (vm-tests/apps/README.md): each
//! request runs one statement over a new connection to PostgreSQL, MariaDB
//! or Redis with the language's usual client (Go: pgx, go-sql-driver/mysql,
//! go-redis; Python: psycopg, PyMySQL, redis-py; Node: pg, mysql2, ioredis;
//! Java: pgjdbc, MariaDB Connector/J, Jedis). The agent, selecting the app by
//! its port, must give exactly one SERVER span per request and one CLIENT
//! span per statement, the statement a child of its request. Run as root
//! with `--test-threads=1`.

use std::collections::BTreeMap;

use integration_tests::agent::Agent;
use integration_tests::apps::{build_framework_apps, Lang, Server};
use integration_tests::databases::mysql::MySql;
use integration_tests::databases::postgres::Postgres;
use integration_tests::databases::redis::redis_server;
use integration_tests::http::{request_on_fresh_connection, Request};
use integration_tests::spans::{Kind, Span};
use integration_tests::{require_root, workspace_root};

/// Requests per store.
const N: usize = 3;

/// The stores, by the path of their endpoint.
const STORES: [&str; 3] = ["postgres", "mysql", "redis"];

/// What the apps' requests to `/db/<store>` make: `vm-tests/apps/db-statements.json`,
/// shared with the kernel matrix's checks.
fn statements_file() -> serde_json::Value {
    let path = workspace_root().join("vm-tests/apps/db-statements.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `db.system.name` of `store`, and the statements one request to
/// `/db/<store>` of `app` makes, in order, as (`db.operation.name`,
/// `db.query.text`).
fn statements(file: &serde_json::Value, app: &str, store: &str) -> (String, Vec<(String, String)>) {
    let text = |v: &serde_json::Value| v.as_str().expect("a string").to_string();
    let system = text(&file["system"][store]);
    let list = file["apps"][app][store]
        .as_array()
        .unwrap_or_else(|| panic!("db-statements.json has no apps.{app}.{store}"));
    let pairs = list.iter().map(|p| (text(&p[0]), text(&p[1]))).collect();
    (system, pairs)
}

#[test]
fn go_app_database_endpoints() {
    database_endpoints(Lang::Go, "go");
}

#[test]
fn python_app_database_endpoints() {
    database_endpoints(Lang::Python, "python");
}

#[test]
fn node_app_database_endpoints() {
    database_endpoints(Lang::Node, "node");
}

#[test]
fn java_app_database_endpoints() {
    database_endpoints(Lang::Java, "java");
}

fn database_endpoints(lang: Lang, app: &str) {
    require_root();
    // The clients of the Python, Node and Java apps.
    build_framework_apps();
    let (postgres, mysql, redis) = (Postgres::get(), MySql::get(), redis_server());
    let server = Server::start_with(lang, None, |command| {
        command
            .env("POSTGRES_ADDR", format!("127.0.0.1:{}", postgres.port))
            .env("MYSQL_ADDR", format!("127.0.0.1:{}", mysql.port))
            .env("REDIS_ADDR", format!("127.0.0.1:{}", redis.port));
    });
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    for store in STORES {
        for _ in 0..N {
            let request = Request::get(&format!("/db/{store}"));
            let (response, _) = request_on_fresh_connection(server.port, &request);
            let body = response.body_text();
            assert!(
                response.status == 200 && body.starts_with(&format!("{store} ")),
                "{lang:?} GET /db/{store} answered {} {body}",
                response.status
            );
        }
    }
    let output = agent.stop();
    let context = format!("{lang:?} app, agent stderr:\n{}", output.stderr);
    // Every printed span: `output.spans` holds the HTTP ones only.
    let all: Vec<Span> = output
        .lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| Span::parse(l))
        .collect();
    let spans: Vec<&Span> = all.iter().filter(|s| s.pid == server.pid()).collect();

    let ports = BTreeMap::from([
        ("postgresql", postgres.port),
        ("mysql", mysql.port),
        ("redis", redis.port),
    ]);
    let mut problems = Vec::new();
    let mut expected_spans = 0;
    let file = statements_file();
    for store in STORES {
        let (system, expected) = statements(&file, app, store);
        let system = system.as_str();
        let path = format!("/db/{store}");
        let requests: Vec<&&Span> = spans
            .iter()
            .filter(|s| s.kind == Kind::Server && s.path == path)
            .collect();
        if requests.len() != N {
            problems.push(format!(
                "{path}: {} SERVER span(s), expected {N}",
                requests.len()
            ));
        }
        expected_spans += N * (1 + expected.len());
        for request in requests {
            let mut children: Vec<&&Span> = spans
                .iter()
                .filter(|s| {
                    s.kind == Kind::Client
                        && s.trace_id == request.trace_id
                        && s.parent_span_id == request.span_id
                })
                .collect();
            children.sort_by_key(|s| s.start_ns);
            let seen: Vec<(String, String)> = children
                .iter()
                .map(|s| {
                    let attr = |name| s.attr(name).unwrap_or("-").to_string();
                    (attr("db.operation.name"), attr("db.query.text"))
                })
                .collect();
            let wrong_server = children.iter().any(|s| {
                s.attr("db.system.name") != Some(system) || s.server_port != ports[system]
            });
            if seen != expected || wrong_server {
                problems.push(format!(
                    "{path}: the children of {} are {seen:?} (to {system} on port {}?), \
                     expected {expected:?}",
                    request.line, ports[system]
                ));
            }
        }
    }
    if all.len() != expected_spans {
        problems.push(format!(
            "{} span(s) printed, expected {expected_spans}",
            all.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\nspans:\n{}\n{context}",
        problems.join("\n"),
        all.iter()
            .map(|s| s.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let counters = output
        .stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("");
    println!(
        "{lang:?} app /db: {} requests, {} spans ({} SERVER, {} CLIENT); {counters}",
        STORES.len() * N,
        all.len(),
        STORES.len() * N,
        all.len() - STORES.len() * N
    );
}
