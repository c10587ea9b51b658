use super::*;
use proptest::prelude::*;

use Dialect::{MySql, Postgres};

fn summary(text: &str, dialect: Dialect) -> (Option<&'static str>, Option<&str>) {
    let s = summarize(text, dialect);
    (s.operation, s.collection)
}

#[test]
fn operations_and_tables_of_the_clients_statements() {
    for dialect in [Postgres, MySql] {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "SELECT name FROM users WHERE id = 1",
                Some("SELECT"),
                Some("users"),
            ),
            (
                "SELECT name FROM users WHERE id = $1",
                Some("SELECT"),
                Some("users"),
            ),
            (
                "SELECT id FROM missing_table",
                Some("SELECT"),
                Some("missing_table"),
            ),
            (
                "INSERT INTO events (id, note) VALUES ($1, $2)",
                Some("INSERT"),
                Some("events"),
            ),
            (
                "insert into events values (1, 'x')",
                Some("INSERT"),
                Some("events"),
            ),
            (
                "UPDATE users SET name = 'x' WHERE id = 2",
                Some("UPDATE"),
                Some("users"),
            ),
            (
                "DELETE FROM events WHERE id > 10",
                Some("DELETE"),
                Some("events"),
            ),
            (
                "COPY events (id, note) FROM STDIN",
                Some("COPY"),
                Some("events"),
            ),
            (
                "CREATE TABLE IF NOT EXISTS t2 (id int)",
                Some("CREATE"),
                Some("t2"),
            ),
            (
                "CREATE TEMP TABLE scratch (id int)",
                Some("CREATE"),
                Some("scratch"),
            ),
            (
                "CREATE INDEX users_name ON users (name)",
                Some("CREATE"),
                None,
            ),
            ("DROP TABLE IF EXISTS events", Some("DROP"), Some("events")),
            (
                "ALTER TABLE users ADD COLUMN age int",
                Some("ALTER"),
                Some("users"),
            ),
            ("TRUNCATE TABLE events", Some("TRUNCATE"), Some("events")),
            ("TRUNCATE events", Some("TRUNCATE"), Some("events")),
            ("BEGIN", Some("BEGIN"), None),
            ("commit", Some("COMMIT"), None),
            (
                "SET application_name = 'PostgreSQL JDBC Driver'",
                Some("SET"),
                None,
            ),
            ("SELECT 1", Some("SELECT"), None),
            ("SELECT now()", Some("SELECT"), None),
            (
                "  \n SELECT * FROM public.users u JOIN orders o ON o.uid = u.id",
                Some("SELECT"),
                Some("public.users"),
            ),
            ("SELECT a FROM t1, t2", Some("SELECT"), Some("t1")),
            (
                "SELECT extract(year FROM ts) FROM events",
                Some("SELECT"),
                Some("events"),
            ),
            (
                "SELECT * FROM (SELECT id FROM users) AS sub",
                Some("SELECT"),
                None,
            ),
            ("SELECT * FROM generate_series(1, 3)", Some("SELECT"), None),
            (
                "(SELECT id FROM a) UNION (SELECT id FROM b)",
                Some("SELECT"),
                Some("a"),
            ),
            (
                "WITH recent AS (SELECT * FROM events WHERE id > 5) SELECT count(*) FROM recent",
                Some("SELECT"),
                Some("recent"),
            ),
            (
                "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved",
                Some("INSERT"),
                Some("b"),
            ),
            (
                "/* app=web */ SELECT id FROM users",
                Some("SELECT"),
                Some("users"),
            ),
            (
                "-- leading\nDELETE FROM users",
                Some("DELETE"),
                Some("users"),
            ),
            ("FROBNICATE users", None, None),
            ("", None, None),
            ("   ", None, None),
            ("42", None, None),
        ];
        for &(text, operation, collection) in cases {
            assert_eq!(
                summary(text, dialect),
                (operation, collection),
                "{dialect:?}: {text:?}"
            );
        }
    }
}

#[test]
fn dialect_specific_names() {
    assert_eq!(
        summary("SELECT * FROM \"Users\" WHERE id = 1", Postgres),
        (Some("SELECT"), Some("\"Users\""))
    );
    assert_eq!(
        summary("SELECT * FROM `shop`.`order items`", MySql),
        (Some("SELECT"), Some("`shop`.`order items`"))
    );
    assert_eq!(
        summary("INSERT LOW_PRIORITY IGNORE INTO t VALUES (1)", MySql),
        (Some("INSERT"), Some("t"))
    );
    assert_eq!(
        summary("REPLACE INTO t VALUES (1)", MySql),
        (Some("REPLACE"), Some("t"))
    );
    assert_eq!(
        summary("UPDATE ONLY t SET a = 1", Postgres),
        (Some("UPDATE"), Some("t"))
    );
    assert_eq!(
        summary("DELETE FROM ONLY t", Postgres),
        (Some("DELETE"), Some("t"))
    );
    assert_eq!(
        summary("# note\nSELECT 1 FROM dual", MySql),
        (Some("SELECT"), Some("dual"))
    );
    // PostgreSQL nests block comments: the SELECT is still inside the comment.
    assert_eq!(
        summary("/* a /* b */ SELECT 1 FROM t */ DELETE FROM u", Postgres),
        (Some("DELETE"), Some("u"))
    );
    assert_eq!(
        summary("/* a /* b */ SELECT 1 FROM t", MySql),
        (Some("SELECT"), Some("t"))
    );
}

#[test]
fn sanitize_replaces_literals_only() {
    let cases: &[(Dialect, &str, &str)] = &[
        (Postgres, "SELECT name FROM users WHERE id = 1", "SELECT name FROM users WHERE id = ?"),
        (Postgres, "SELECT name FROM users WHERE id = $1", "SELECT name FROM users WHERE id = $1"),
        (Postgres, "SELECT * FROM t WHERE a = 'it''s' AND b = -2.5e3", "SELECT * FROM t WHERE a = ? AND b = -?"),
        (Postgres, "SELECT E'a\\'b', 'c\\' FROM t1", "SELECT ?, ? FROM t1"),
        (Postgres, "SELECT $$ a 'b' $$, $fn$ x $fn$ FROM \"T 1\"", "SELECT ?, ? FROM \"T 1\""),
        (Postgres, "SELECT x'1F', B'101', .5, 1_000 FROM col2", "SELECT ?, ?, ?, ? FROM col2"),
        (Postgres, "SELECT '2024-01-01'::date, 3::int", "SELECT ?::date, ?::int"),
        (Postgres, "SELECT 1 -- note 'x'\n", "SELECT ? -- note 'x'\n"),
        (Postgres, "UPDATE t SET a = 'never closed", "UPDATE t SET a = ?"),
        (MySql, "SELECT * FROM t WHERE a = \"x\" AND b = 'y\\'z' AND c = ?", "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?"),
        (MySql, "INSERT INTO t VALUES (0x1F, X'AB', _utf8mb4'ü', 12)", "INSERT INTO t VALUES (?, ?, ?, ?)"),
        (MySql, "SELECT `a1`, t2.c3 FROM `t 4` WHERE x = 1--1", "SELECT `a1`, t2.c3 FROM `t 4` WHERE x = ?--?"),
        (MySql, "INSERT INTO events (id, note) VALUES (1000, 'go multi'); INSERT INTO events (id, note) VALUES (1001, 'go multi')",
         "INSERT INTO events (id, note) VALUES (?, ?); INSERT INTO events (id, note) VALUES (?, ?)"),
    ];
    for &(dialect, text, expected) in cases {
        assert_eq!(sanitize(text, dialect), expected, "{dialect:?}: {text:?}");
    }
}

#[test]
fn sanitize_borrows_text_without_literals() {
    let text = "SELECT name FROM users WHERE id = $1";
    assert!(matches!(sanitize(text, Postgres), Cow::Borrowed(_)));
    assert_eq!(query_text("SELECT 1", Postgres, QueryText::Raw), "SELECT 1");
    assert_eq!(
        query_text("SELECT 1", Postgres, QueryText::Sanitized),
        "SELECT ?"
    );
}

#[test]
fn decode_drops_a_character_cut_at_the_end() {
    let text = "SELECT 'ü'".as_bytes();
    let cut = &text[..text.len() - 2];
    assert_eq!(decode(cut), "SELECT '");
    assert_eq!(decode(b"a\xffb"), "a\u{fffd}b");
    assert_eq!(decode(b"plain"), "plain");
}

/// Characters that make up the literals the sanitizer must hide.
const SECRET: &str = "s3cr3t";

proptest! {
    #[test]
    fn tokenizer_and_summary_take_any_text(text in "\\PC{0,200}", mysql in any::<bool>()) {
        let dialect = if mysql { MySql } else { Postgres };
        // The tokens cover the text exactly, in order.
        let joined: String = lexer::Lexer::new(&text, dialect).map(|t| t.text).collect();
        prop_assert_eq!(&joined, &text);
        let _ = summarize(&text, dialect);
        let _ = sanitize(&text, dialect);
    }

    #[test]
    fn sanitize_hides_string_literals(prefix in "[a-z ,=()]{0,30}", suffix in "[a-z ,=()]{0,30}", mysql in any::<bool>()) {
        let dialect = if mysql { MySql } else { Postgres };
        let text = format!("SELECT {prefix} '{SECRET}' {suffix}");
        let clean = sanitize(&text, dialect);
        prop_assert!(!clean.contains(SECRET), "{} -> {}", text, clean);
    }

    #[test]
    fn any_byte_prefix_of_a_statement_is_safe(cut in 0usize..80) {
        let text = "SELECT name FROM users WHERE note = 'a''b' AND id = 42 -- c";
        let prefix = decode(&text.as_bytes()[..cut.min(text.len())]);
        let summary = summarize(&prefix, Postgres);
        if cut >= "SELECT ".len() {
            prop_assert_eq!(summary.operation, Some("SELECT"));
        }
        prop_assert!(!sanitize(&prefix, Postgres).contains("42"));
    }
}
