//! SQL databases: the real PostgreSQL and MariaDB servers from Debian, started
//! by the tests, and the real clients of `clients/sql/` (Go, Python, Java,
//! Node). Run as root with `--test-threads=1`.

use integration_tests::databases::mysql::MySql;
use integration_tests::databases::postgres::Postgres;
use integration_tests::require_root;
use integration_tests::sql_clients::{run, Client, Database};

/// Statements of each kind every client sends.
const N: usize = 3;

/// Kinds and counts a client reports, in order.
fn kinds(statements: &[integration_tests::sql_clients::Statement]) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for s in statements {
        match out.last_mut() {
            Some((kind, n)) if *kind == s.kind => *n += s.count,
            _ => out.push((s.kind.clone(), s.count)),
        }
    }
    out
}

/// Every client runs its whole scenario against both servers, PostgreSQL also over
/// TLS, and reports what it sent: the servers and clients the span tests rely on.
#[test]
fn clients_run_their_scenarios_against_the_real_servers() {
    require_root();
    let postgres = Postgres::get();
    let mysql = MySql::get();
    let n = N as u32;
    for client in Client::ALL {
        for tls in [false, true] {
            postgres.reset();
            let run = run(client, Database::Postgres, postgres.port, N, tls);
            let expected: Vec<(&str, u32)> = match client {
                Client::Node => vec![
                    ("simple", n),
                    ("prepared", n),
                    ("failing", n),
                    ("parameterised", n),
                ],
                Client::Java => vec![
                    ("simple", n),
                    ("prepared", n),
                    ("failing", n),
                    ("pipelined", n),
                ],
                Client::Go | Client::Python => {
                    vec![
                        ("simple", n),
                        ("prepared", n),
                        ("failing", n),
                        ("pipelined", n),
                        ("copy", 1),
                    ]
                }
            };
            let got = kinds(&run.statements);
            let got: Vec<(&str, u32)> = got.iter().map(|(k, n)| (k.as_str(), *n)).collect();
            assert_eq!(got, expected, "{client:?} against PostgreSQL (tls {tls})");
            assert!(run
                .statements
                .iter()
                .all(|s| (s.kind == "failing") == (s.error == "42P01")));
            let rows = postgres.sql("beyla", "SELECT count(*) FROM events");
            let inserted = match client {
                Client::Go | Client::Python => 2 * N,
                Client::Java | Client::Node => N,
            };
            assert_eq!(
                rows.trim(),
                inserted.to_string(),
                "{client:?}: rows in events"
            );
        }
        mysql.reset();
        let run = run(client, Database::MySql, mysql.port, N, false);
        let middle = if client == Client::Python {
            "parameterised"
        } else {
            "prepared"
        };
        let last = if client == Client::Java {
            ("pipelined", n)
        } else {
            ("multi", 1)
        };
        let got = kinds(&run.statements);
        let got: Vec<(&str, u32)> = got.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            got,
            vec![("simple", n), (middle, n), ("failing", n), last],
            "{client:?} against MariaDB"
        );
        assert!(run
            .statements
            .iter()
            .all(|s| (s.kind == "failing") == (s.error == "1146")));
        assert_eq!(
            mysql.sql("SELECT count(*) FROM events").trim(),
            N.to_string()
        );
    }
}
