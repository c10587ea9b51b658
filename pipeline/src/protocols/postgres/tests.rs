use super::*;
use crate::protocols::sql::capture::{stream, Side};
use proptest::prelude::*;

/// One captured connection (see testdata/README.md) and what it holds.
struct Capture {
    name: &'static str,
    bytes: &'static [u8],
    /// The server answered the SSLRequest with `S`: the rest is TLS.
    tls: bool,
    client_golden: &'static str,
    server_golden: &'static str,
}

macro_rules! capture {
    ($name:literal, $tls:expr) => {
        Capture {
            name: $name,
            bytes: include_bytes!(concat!("testdata/", $name, ".cap")),
            tls: $tls,
            client_golden: include_str!(concat!("testdata/", $name, ".client.txt")),
            server_golden: include_str!(concat!("testdata/", $name, ".server.txt")),
        }
    };
}

fn captures() -> Vec<Capture> {
    vec![
        capture!("go_pgx", false),
        capture!("python_psycopg", false),
        capture!("python_pipeline_error", false),
        capture!("java_pgjdbc", false),
        capture!("node_pg", false),
        capture!("psql", false),
        capture!("psql_tls", true),
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn target(t: Target) -> &'static str {
    match t {
        Target::Statement => "S",
        Target::Portal => "P",
    }
}

fn describe_startup(m: &Startup<'_>) -> String {
    match m {
        Startup::Start {
            minor_version,
            params,
        } => {
            let mut line = format!("startup 3.{minor_version}");
            for pair in params.raw.split(|&b| b == 0).collect::<Vec<_>>().chunks(2) {
                if let [k, v] = pair {
                    line += &format!(" {}={}", text(k), text(v));
                }
            }
            line
        }
        Startup::SslRequest => "ssl-request".into(),
        Startup::GssEncRequest => "gssenc-request".into(),
        Startup::CancelRequest => "cancel-request".into(),
    }
}

fn describe_frontend(m: &Frontend<'_>) -> String {
    match m {
        Frontend::Query { text: q } => format!("Q {}", text(q)),
        Frontend::Parse { statement, query } => format!("P [{}] {}", text(statement), text(query)),
        Frontend::Bind { portal, statement } => {
            format!("B [{}] [{}]", text(portal), text(statement))
        }
        Frontend::Describe { target: t, name } => format!("D {} [{}]", target(*t), text(name)),
        Frontend::Execute { portal, max_rows } => format!("E [{}] {max_rows}", text(portal)),
        Frontend::Close { target: t, name } => format!("C {} [{}]", target(*t), text(name)),
        Frontend::Sync => "S".into(),
        Frontend::Flush => "H".into(),
        Frontend::Terminate => "X".into(),
        Frontend::CopyData => "d".into(),
        Frontend::CopyDone => "c".into(),
        Frontend::CopyFail => "f".into(),
        Frontend::FunctionCall => "F".into(),
        Frontend::AuthResponse => "p".into(),
    }
}

fn describe_fields(kind: &str, f: &Fields<'_>) -> String {
    let field = |v: Option<&[u8]>| v.map(text).unwrap_or_else(|| "-".into());
    format!(
        "{kind} {} {} {}",
        field(f.severity()),
        field(f.code()),
        field(f.message())
    )
}

fn describe_backend(m: &Backend<'_>) -> String {
    match m {
        Backend::Authentication { code } => format!("R {code}"),
        Backend::ParameterStatus { name, value } => format!("S {}={}", text(name), text(value)),
        Backend::BackendKeyData => "K".into(),
        Backend::ReadyForQuery { status } => format!("Z {}", char::from(*status)),
        Backend::RowDescription { fields } => format!("T {fields}"),
        Backend::DataRow => "D".into(),
        Backend::CommandComplete { tag } => format!("C {}", text(tag)),
        Backend::EmptyQueryResponse => "I".into(),
        Backend::ErrorResponse(f) => describe_fields("E", f),
        Backend::NoticeResponse(f) => describe_fields("N", f),
        Backend::ParseComplete => "1".into(),
        Backend::BindComplete => "2".into(),
        Backend::CloseComplete => "3".into(),
        Backend::NoData => "n".into(),
        Backend::ParameterDescription => "t".into(),
        Backend::PortalSuspended => "s".into(),
        Backend::CopyInResponse => "G".into(),
        Backend::CopyOutResponse => "H".into(),
        Backend::CopyBothResponse => "W".into(),
        Backend::CopyData => "d".into(),
        Backend::CopyDone => "c".into(),
        Backend::NotificationResponse => "A".into(),
        Backend::FunctionCallResponse => "V".into(),
        Backend::NegotiateProtocolVersion => "v".into(),
    }
}

/// How reading a stream ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Every byte was read as whole messages.
    Clean,
    NeedMore,
    Invalid(InvalidReason),
    /// The rest is TLS.
    Tls(usize),
}

fn step<T>(
    out: &mut Vec<String>,
    pos: &mut usize,
    parsed: Parse<Message<T>>,
    describe: impl Fn(&T) -> String,
) -> Option<End> {
    match parsed {
        Parse::Parsed(m) => {
            out.push(describe(&m.body));
            *pos += m.len;
            None
        }
        Parse::NeedMore => Some(End::NeedMore),
        Parse::Invalid(reason) => Some(End::Invalid(reason)),
    }
}

/// Reads a client stream as the server does: startup packets until a real startup (an
/// SSLRequest answered `N` is followed by another startup packet), then messages.
fn read_client(bytes: &[u8], tls: bool) -> (Vec<String>, End) {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut started = false;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let end = if started {
            let parsed = parse_frontend(rest);
            step(&mut out, &mut pos, parsed, describe_frontend)
        } else {
            let parsed = parse_startup(rest);
            if let Parse::Parsed(m) = &parsed {
                started = matches!(m.body, Startup::Start { .. });
                if m.body == Startup::SslRequest && tls {
                    out.push(describe_startup(&m.body));
                    return (out, End::Tls(rest.len() - m.len));
                }
            }
            step(&mut out, &mut pos, parsed, describe_startup)
        };
        if let Some(end) = end {
            return (out, end);
        }
    }
    (out, End::Clean)
}

/// Reads a server stream: the answer to an SSLRequest when the client sent one, then messages.
fn read_server(bytes: &[u8], ssl_requested: bool) -> (Vec<String>, End) {
    let mut out = Vec::new();
    let mut pos = 0;
    if ssl_requested {
        match parse_encryption_answer(bytes) {
            Parse::Parsed(tls) => {
                out.push(format!("ssl-answer {}", if tls { "S" } else { "N" }));
                pos = 1;
                if tls {
                    return (out, End::Tls(bytes.len() - 1));
                }
            }
            Parse::NeedMore => return (out, End::NeedMore),
            Parse::Invalid(reason) => return (out, End::Invalid(reason)),
        }
    }
    while pos < bytes.len() {
        let parsed = parse_backend(&bytes[pos..]);
        if let Some(end) = step(&mut out, &mut pos, parsed, describe_backend) {
            return (out, end);
        }
    }
    (out, End::Clean)
}

fn golden_lines(golden: &str) -> Vec<String> {
    golden.lines().map(str::to_string).collect()
}

fn check_golden(name: &str, side: &str, got: &[String], end: &End, golden: &str) {
    let mut lines = got.to_vec();
    if let End::Tls(n) = end {
        lines.push(format!("tls {n} bytes"));
    }
    assert_eq!(
        lines,
        golden_lines(golden),
        "{name} {side}: messages differ from the golden file; got:\n{}",
        lines.join("\n")
    );
}

#[test]
fn captures_read_as_the_golden_messages() {
    for c in captures() {
        let client = stream(c.bytes, Side::Client);
        let server = stream(c.bytes, Side::Server);
        let (messages, end) = read_client(&client, c.tls);
        assert!(
            matches!(end, End::Clean | End::Tls(_)),
            "{}: client stream ended {end:?}",
            c.name
        );
        let ssl_requested = messages.first().is_some_and(|m| m == "ssl-request");
        check_golden(c.name, "client", &messages, &end, c.client_golden);
        let (messages, end) = read_server(&server, ssl_requested);
        assert!(
            matches!(end, End::Clean | End::Tls(_)),
            "{}: server stream ended {end:?}",
            c.name
        );
        check_golden(c.name, "server", &messages, &end, c.server_golden);
    }
}

/// Every cut-off prefix of every stream reads as the whole messages inside it, then
/// `NeedMore`: never `Invalid`, never a message that is not in the whole stream.
#[test]
fn every_prefix_of_the_captures_needs_more() {
    for c in captures() {
        let client = stream(c.bytes, Side::Client);
        let server = stream(c.bytes, Side::Server);
        let (all_client, _) = read_client(&client, c.tls);
        let ssl_requested = all_client.first().is_some_and(|m| m == "ssl-request");
        let (all_server, _) = read_server(&server, ssl_requested);
        for (side, bytes, all) in [
            ("client", &client, &all_client),
            ("server", &server, &all_server),
        ] {
            for k in 0..bytes.len() {
                let (got, end) = match side {
                    "client" => read_client(&bytes[..k], c.tls),
                    _ => read_server(&bytes[..k], ssl_requested),
                };
                assert!(
                    matches!(end, End::NeedMore | End::Clean | End::Tls(_)),
                    "{} {side}: prefix of {k} bytes ended {end:?}",
                    c.name
                );
                assert_eq!(
                    &got[..],
                    &all[..got.len()],
                    "{} {side}: prefix of {k} bytes",
                    c.name
                );
            }
        }
    }
}

#[test]
fn the_execute_of_a_named_statement_names_the_parse_it_came_from() {
    let capture = captures().into_iter().find(|c| c.name == "go_pgx").unwrap();
    let (messages, _) = read_client(&stream(capture.bytes, Side::Client), false);
    assert!(messages.contains(&"P [user_by_id] SELECT name FROM users WHERE id = $1".to_string()));
    assert!(messages.contains(&"B [] [user_by_id]".to_string()));
}

#[test]
fn startup_parameters() {
    let capture = captures().into_iter().find(|c| c.name == "psql").unwrap();
    let client = stream(capture.bytes, Side::Client);
    let Parse::Parsed(ssl) = parse_startup(&client) else {
        panic!("no SSLRequest")
    };
    assert_eq!(ssl.body, Startup::SslRequest);
    let Parse::Parsed(start) = parse_startup(&client[ssl.len..]) else {
        panic!("no startup")
    };
    let Startup::Start { params, .. } = start.body else {
        panic!("not a startup: {:?}", start.body)
    };
    assert_eq!(params.get("database"), Some(&b"beyla"[..]));
    assert_eq!(params.get("user"), Some(&b"beyla"[..]));
    assert_eq!(params.get("application_name"), Some(&b"psql"[..]));
    assert_eq!(params.get("options"), None);
}

#[test]
fn other_protocols_are_invalid_from_their_first_bytes() {
    for other in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"PRI * HTTP/2.0\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"\x16\x03\x01\x02\x00",
        b"\x0a\x00\x00\x00\x0a5.5.5-10",
    ] {
        for k in 1..=other.len() {
            let prefix = &other[..k];
            assert!(
                !matches!(parse_frontend(prefix), Parse::Parsed(_)),
                "{prefix:?} parsed as a frontend message"
            );
        }
        assert!(
            matches!(parse_startup(other), Parse::Invalid(_)),
            "{other:?}"
        );
        assert!(
            matches!(parse_frontend(other), Parse::Invalid(_)),
            "{other:?}"
        );
    }
}

#[test]
fn malformed_messages() {
    use InvalidReason::*;
    let cases: &[(&[u8], InvalidReason)] = &[
        (b"Q\x00\x00\x00\x03", BadLength),
        (b"Q\x7f\x00\x00\x00", BadLength),
        (b"Q\x00\x00\x00\x06ab", Malformed),
        (b"S\x00\x00\x00\x05x", Malformed),
        (b"D\x00\x00\x00\x06Xa\x00", Malformed),
        (b"E\x00\x00\x00\x06\x00\x00", Malformed),
        (b"P\x00\x00\x00\x08a\x00b\x00", Malformed),
        (b"B\x00\x00\x00\x0ba\x00b\x00\x00\x01\x00", Malformed),
        (b"z\x00\x00\x00\x04", UnknownType),
    ];
    for &(bytes, reason) in cases {
        assert_eq!(parse_frontend(bytes), Parse::Invalid(reason), "{bytes:?}");
    }
    assert_eq!(
        parse_backend(b"Z\x00\x00\x00\x05Q"),
        Parse::Invalid(Malformed)
    );
    assert_eq!(
        parse_backend(b"D\x00\x00\x00\x0a\x00\x01\x00\x00\x00\x05"),
        Parse::Invalid(Malformed)
    );
    assert_eq!(
        parse_backend(b"E\x00\x00\x00\x06Cx"),
        Parse::Invalid(Malformed)
    );
    assert_eq!(
        parse_startup(b"\x00\x00\x00\x09\x04\xd2\x16\x2f\x00"),
        Parse::Invalid(BadLength)
    );
    assert_eq!(
        parse_startup(b"\x00\x00\x00\x08\x00\x02\x00\x00"),
        Parse::Invalid(UnknownStartupCode)
    );
    assert_eq!(
        parse_startup(b"\x00\x00\x00\x09\x00\x03\x00\x00\x01"),
        Parse::Invalid(Malformed)
    );
}

#[test]
fn a_body_cut_by_the_capture_still_gives_its_first_bytes() {
    let body = b"user_by_id\x00SELECT name FROM users WHERE id = $1\x00\x00\x00";
    let cut = &body[..25];
    assert_eq!(
        decode_frontend(b'P', cut, false),
        Ok(Frontend::Parse {
            statement: b"user_by_id",
            query: b"SELECT name FR"
        })
    );
    assert_eq!(
        decode_frontend(b'P', cut, true),
        Err(InvalidReason::Malformed)
    );
    assert_eq!(
        decode_frontend(b'Q', b"SELECT 1", false),
        Ok(Frontend::Query { text: b"SELECT 1" })
    );
}

#[test]
fn headers_let_uncaptured_bodies_be_skipped() {
    assert_eq!(
        parse_header(b"D\x00\x01\x00\x00", BACKEND_TAGS),
        Parse::Parsed(Header {
            tag: b'D',
            len: 0x1_0001
        })
    );
    assert_eq!(parse_header(b"D\x00", BACKEND_TAGS), Parse::NeedMore);
    assert_eq!(
        parse_header(b"Q", BACKEND_TAGS),
        Parse::Invalid(InvalidReason::UnknownType)
    );
    assert_eq!(
        parse_encryption_answer(b"X"),
        Parse::Invalid(InvalidReason::UnknownType)
    );
}

proptest! {
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_startup(&bytes);
        let _ = parse_frontend(&bytes);
        let _ = parse_backend(&bytes);
        let _ = parse_header(&bytes, FRONTEND_TAGS);
        if let Some((&tag, body)) = bytes.split_first() {
            let _ = decode_frontend(tag, body, false);
            let _ = decode_backend(tag, body);
        }
    }

    /// A parsed message never claims more bytes than it was given.
    #[test]
    fn parsed_lengths_stay_within_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Parse::Parsed(m) = parse_frontend(&bytes) {
            prop_assert!(m.len <= bytes.len());
        }
        if let Parse::Parsed(m) = parse_backend(&bytes) {
            prop_assert!(m.len <= bytes.len());
        }
        if let Parse::Parsed(m) = parse_startup(&bytes) {
            prop_assert!(m.len <= bytes.len());
        }
    }
}

mod stitching {
    use super::*;
    use crate::model::Direction;
    use crate::protocols::sql::capture::{replay, Replayed};
    use crate::protocols::sql::Statement;
    use crate::protocols::Anomaly;

    /// Each statement's text and error code.
    type Texts = Vec<(String, Option<String>)>;

    fn statements(r: &Replayed<Statement>) -> Texts {
        r.records
            .iter()
            .map(|s| {
                (
                    s.text.as_deref().unwrap_or("<unknown>").to_string(),
                    s.error_code.as_deref().map(str::to_string),
                )
            })
            .collect()
    }

    fn client_side(name: &str, capture_size: usize) -> Replayed<Statement> {
        let c = captures().into_iter().find(|c| c.name == name).unwrap();
        replay(
            stitch::Stitcher::new(Direction::Egress),
            c.bytes,
            Side::Client,
            capture_size,
        )
    }

    fn expect(list: &[(&str, usize, Option<&str>)]) -> Texts {
        list.iter()
            .flat_map(|&(text, n, code)| {
                std::iter::repeat_n((text.to_string(), code.map(str::to_string)), n)
            })
            .collect()
    }

    const SIMPLE: &str = "SELECT name FROM users WHERE id = 1";
    const PREPARED: &str = "SELECT name FROM users WHERE id = $1";
    const FAILING: &str = "SELECT id FROM missing_table";
    const INSERT: &str = "INSERT INTO events (id, note) VALUES ($1, $2)";

    #[test]
    fn each_client_gives_one_record_per_statement_run() {
        let cases: &[(&str, Texts)] = &[
            (
                "go_pgx",
                expect(&[
                    (SIMPLE, 3, None),
                    (PREPARED, 3, None),
                    (FAILING, 3, Some("42P01")),
                    (INSERT, 3, None),
                    (
                        "copy \"events\" ( \"id\", \"note\" ) from stdin binary;",
                        1,
                        None,
                    ),
                ]),
            ),
            (
                "python_psycopg",
                expect(&[
                    (SIMPLE, 3, None),
                    (PREPARED, 3, None),
                    (FAILING, 3, Some("42P01")),
                    (INSERT, 3, None),
                    ("COPY events (id, note) FROM STDIN", 1, None),
                ]),
            ),
            (
                "java_pgjdbc",
                expect(&[
                    ("SET application_name = 'PostgreSQL JDBC Driver'", 1, None),
                    (SIMPLE, 6, None),
                    (PREPARED, 6, None),
                    (FAILING, 6, Some("42P01")),
                    (INSERT, 6, None),
                ]),
            ),
            (
                "node_pg",
                expect(&[
                    (SIMPLE, 3, None),
                    (PREPARED, 3, None),
                    (FAILING, 3, Some("42P01")),
                    (INSERT, 3, None),
                ]),
            ),
            (
                "psql",
                expect(&[
                    (
                        "COPY (SELECT id, note FROM events ORDER BY id LIMIT 3) TO STDOUT",
                        1,
                        None,
                    ),
                    ("SELECT 1/0", 1, Some("22012")),
                    ("BEGIN; SELECT count(*) FROM users; COMMIT", 1, None),
                ]),
            ),
            // The third INSERT came after the error: the server skipped it.
            (
                "python_pipeline_error",
                expect(&[
                    (INSERT, 1, None),
                    (
                        "SELECT id FROM missing_table WHERE id = $1",
                        1,
                        Some("42P01"),
                    ),
                    (PREPARED, 1, None),
                ]),
            ),
            ("psql_tls", vec![]),
        ];
        // The default capture (1024 bytes) holds every message and batch of these.
        for (name, expected) in cases {
            for capture_size in [usize::MAX, 1024] {
                let r = client_side(name, capture_size);
                assert_eq!(
                    &statements(&r),
                    expected,
                    "{name} (capture size {capture_size})"
                );
                assert!(r.anomalies.is_empty(), "{name}: {:?}", r.anomalies);
                // Every started request got a span, or was released.
                assert_eq!(r.started(), r.records.len() + r.abandoned, "{name}");
            }
        }
    }

    #[test]
    fn records_carry_times_thread_and_database() {
        let r = client_side("node_pg", usize::MAX);
        let first = &r.records[0];
        assert_eq!(first.namespace.as_deref(), Some("beyla"));
        assert_eq!(first.system, "postgresql");
        // Read 2 sent the query (its write began at 20), read 3 brought the answer (ended at 35).
        assert_eq!((first.start_mono_ns, first.end_mono_ns), (20, 35));
    }

    /// The server's side of the same connections gives the same statements.
    #[test]
    fn the_servers_side_gives_the_same_records() {
        for c in captures() {
            let client = replay(
                stitch::Stitcher::new(Direction::Egress),
                c.bytes,
                Side::Client,
                usize::MAX,
            );
            let server = replay(
                stitch::Stitcher::new(Direction::Ingress),
                c.bytes,
                Side::Server,
                usize::MAX,
            );
            assert_eq!(statements(&client), statements(&server), "{}", c.name);
        }
    }

    /// A capture smaller than the messages: a long text is cut, an error cut short still
    /// gives its code, and an answer whose end went uncaptured ends when the client
    /// speaks again; the lost bytes are counted.
    #[test]
    fn a_small_capture_cuts_texts_but_keeps_statements_and_errors() {
        let r = client_side("psql", 64);
        assert_eq!(
            statements(&r),
            [
                (
                    "COPY (SELECT id, note FROM events ORDER BY id LIMIT 3) TO S".to_string(),
                    None
                ),
                ("SELECT 1/0".to_string(), Some("22012".to_string())),
                (
                    "BEGIN; SELECT count(*) FROM users; COMMIT".to_string(),
                    None
                ),
            ]
        );
        assert!(
            r.anomalies
                .iter()
                .all(|a| matches!(a, Anomaly::Lost { .. })),
            "{:?}",
            r.anomalies
        );
        assert!(!r.anomalies.is_empty());
    }

    #[test]
    fn garbage_is_counted_not_stitched() {
        use crate::protocols::sql::capture::replay;
        let mut capture = Vec::new();
        for (dir, bytes) in [
            (b'C', &b"\x00\x00\x00\x08\x00\x03\x00\x00"[..]),
            (b'C', b"GET / HTTP/1.1\r\n\r\n"),
        ] {
            capture.push(dir);
            capture.extend((bytes.len() as u32).to_be_bytes());
            capture.extend(bytes);
        }
        let r = replay(
            stitch::Stitcher::new(Direction::Egress),
            &capture,
            Side::Client,
            usize::MAX,
        );
        assert!(r.records.is_empty());
        assert!(!r.anomalies.is_empty());
    }
}

mod detection {
    use super::*;
    use crate::model::{Direction, SpanKind};
    use crate::protocols::{Detection, FirstBytes, Protocol};

    fn detect(data: &[u8], direction: Direction) -> Detection {
        POSTGRES.detect(&FirstBytes {
            data,
            direction,
            kind: Some(SpanKind::Client),
            local_port: 40000,
            remote_port: 5432,
        })
    }

    #[test]
    fn startup_ssl_request_and_mid_connection_statements_are_recognised() {
        let yes = Detection::Yes {
            request_dir: Direction::Egress,
        };
        for c in captures() {
            let client = stream(c.bytes, Side::Client);
            assert_eq!(detect(&client, Direction::Egress), yes, "{}", c.name);
            // Every cut-off prefix of the first message waits or agrees.
            for k in 0..8 {
                assert!(
                    matches!(detect(&client[..k], Direction::Egress), Detection::NeedMore),
                    "{} prefix {k}",
                    c.name
                );
            }
        }
        // A connection that began before tracing: its next statement, or answers first.
        assert_eq!(
            detect(b"Q\x00\x00\x00\x0dSELECT 1\x00", Direction::Egress),
            yes
        );
        assert_eq!(
            detect(b"Z\x00\x00\x00\x05I", Direction::Ingress),
            Detection::Later
        );
        for other in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01",
            b"Q\x00\x00\x00\x0dFROBNICATE\x00",
        ] {
            assert_eq!(detect(other, Direction::Egress), Detection::No, "{other:?}");
        }
    }
}
