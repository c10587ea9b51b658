use super::*;
use crate::protocols::sql::capture::{stream, Side};
use proptest::prelude::*;

/// One captured connection (see testdata/README.md) and the golden reading of each side.
struct Capture {
    name: &'static str,
    bytes: &'static [u8],
    client_golden: &'static str,
    server_golden: &'static str,
}

macro_rules! capture {
    ($name:literal) => {
        Capture {
            name: $name,
            bytes: include_bytes!(concat!("testdata/", $name, ".cap")),
            client_golden: include_str!(concat!("testdata/", $name, ".client.txt")),
            server_golden: include_str!(concat!("testdata/", $name, ".server.txt")),
        }
    };
}

fn captures() -> Vec<Capture> {
    vec![
        capture!("go_mysql"),
        capture!("python_pymysql"),
        capture!("java_mariadb"),
        capture!("node_mysql2"),
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How reading a stream ended.
#[derive(Debug, PartialEq)]
enum End {
    Clean,
    NeedMore,
    Invalid(InvalidReason),
}

/// The payloads of a stream, as whole messages.
fn messages(bytes: &[u8]) -> (Vec<Message<'_>>, End) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match parse_message(&bytes[pos..]) {
            Parse::Parsed(m) => {
                pos += m.len;
                out.push(m);
            }
            Parse::NeedMore => return (out, End::NeedMore),
            Parse::Invalid(reason) => return (out, End::Invalid(reason)),
        }
    }
    (out, End::Clean)
}

fn describe_command(command: &Command<'_>) -> String {
    match command {
        Command::Query { text: t } => format!("query {}", text(t)),
        Command::StmtPrepare { text: t } => format!("prepare {}", text(t)),
        Command::StmtExecute { statement } => format!("execute {statement}"),
        Command::StmtBulkExecute { statement } => format!("bulk {statement}"),
        Command::StmtFetch { statement } => format!("fetch {statement}"),
        Command::StmtSendLongData { statement } => format!("send-long-data {statement}"),
        Command::StmtClose { statement } => format!("close {statement}"),
        Command::StmtReset { statement } => format!("reset {statement}"),
        Command::InitDb { schema } => format!("init-db {}", text(schema)),
        Command::Ping => "ping".into(),
        Command::Quit => "quit".into(),
        Command::ChangeUser => "change-user".into(),
        Command::ResetConnection => "reset-connection".into(),
        Command::SetOption => "set-option".into(),
        Command::Other { code } => format!("other {code}"),
    }
}

/// The client side: the login, then commands (packets of other sequence numbers carry
/// authentication data). Also returns the commands and the client's capabilities.
fn read_client(bytes: &[u8]) -> (Vec<String>, Vec<Command<'_>>, Capabilities, End) {
    let (payloads, end) = messages(bytes);
    let mut lines = Vec::new();
    let mut commands = Vec::new();
    let mut capabilities = Capabilities::default();
    for (i, m) in payloads.iter().enumerate() {
        if i == 0 {
            match parse_login(m.first).expect("a login packet") {
                Login::Response {
                    capabilities: caps,
                    user,
                    database,
                } => {
                    capabilities = caps;
                    let db = database.map_or("-".into(), text);
                    lines.push(format!("login user={} db={db}", text(user)));
                }
                Login::SslRequest { .. } => lines.push("ssl-request".into()),
            }
        } else if m.seq != 0 {
            lines.push(format!("auth-data seq={} len={}", m.seq, m.payload_len));
        } else {
            let command = parse_command(m.first).expect("a command");
            lines.push(describe_command(&command));
            commands.push(command);
        }
    }
    (lines, commands, capabilities, end)
}

/// The server side: greeting, authentication, then one answer per command that has one,
/// framed by `ResponseFraming`.
fn read_server(bytes: &[u8], commands: &[Command<'_>], client: Capabilities) -> (Vec<String>, End) {
    let (payloads, end) = messages(bytes);
    let mut lines = Vec::new();
    let mut payloads = payloads.into_iter();
    let Some(greeting) = payloads.next() else {
        return (lines, end);
    };
    let greeting = parse_greeting(greeting.first).expect("a greeting");
    let deprecate_eof = greeting.capabilities.has(Capabilities::DEPRECATE_EOF)
        && client.has(Capabilities::DEPRECATE_EOF);
    lines.push(format!(
        "greeting {} id={} deprecate_eof={}",
        text(greeting.server_version),
        greeting.connection_id,
        u8::from(deprecate_eof)
    ));
    for m in payloads.by_ref() {
        let line = match m.first.first() {
            Some(0x00) => "auth-ok",
            Some(0xff) => "auth-err",
            Some(0xfe) => "auth-switch",
            _ => "auth-more",
        };
        lines.push(line.into());
        if line == "auth-ok" || line == "auth-err" {
            break;
        }
    }
    let mut answered = commands.iter().filter(|c| c.expects_response());
    let mut framing: Option<ResponseFraming> = None;
    let mut count = 0;
    for m in payloads {
        let current = framing.get_or_insert_with(|| {
            let command = answered.next().expect("an answer with no command");
            count = 0;
            ResponseFraming::new(
                matches!(command, Command::StmtPrepare { .. }),
                deprecate_eof,
            )
        });
        count += 1;
        let outcome = match current.step(m.first, m.payload_len) {
            Ok(Step::More) => continue,
            Ok(Step::Done(outcome)) => outcome,
            Err(reason) => return (lines, End::Invalid(reason)),
        };
        framing = None;
        lines.push(match outcome {
            Outcome::Ok => format!("ok ({count} packets)"),
            Outcome::Err(e) => format!(
                "err {} {} ({count} packets)",
                e.code,
                e.sql_state.map_or("-".into(), text)
            ),
            Outcome::Prepared(p) => format!(
                "prepared {} columns={} params={} ({count} packets)",
                p.statement, p.columns, p.params
            ),
            Outcome::LocalInfile => "local-infile".into(),
        });
    }
    (lines, end)
}

fn check_golden(name: &str, side: &str, got: &[String], golden: &str) {
    let want: Vec<String> = golden.lines().map(str::to_string).collect();
    assert_eq!(
        got,
        &want[..],
        "{name} {side}: differs from the golden file; got:\n{}",
        got.join("\n")
    );
}

#[test]
fn captures_read_as_the_golden_conversation() {
    for c in captures() {
        let client = stream(c.bytes, Side::Client);
        let server = stream(c.bytes, Side::Server);
        let (lines, commands, caps, end) = read_client(&client);
        assert_eq!(end, End::Clean, "{}: client", c.name);
        check_golden(c.name, "client", &lines, c.client_golden);
        let (lines, end) = read_server(&server, &commands, caps);
        assert_eq!(end, End::Clean, "{}: server", c.name);
        check_golden(c.name, "server", &lines, c.server_golden);
    }
}

/// Every cut-off prefix of either side reads as a prefix of the whole reading, then
/// `NeedMore`: never `Invalid`.
#[test]
fn every_prefix_of_the_captures_needs_more() {
    for c in captures() {
        let client = stream(c.bytes, Side::Client);
        let server = stream(c.bytes, Side::Server);
        let (all_client, commands, caps, _) = read_client(&client);
        let (all_server, _) = read_server(&server, &commands, caps);
        for k in 0..client.len() {
            let (got, _, _, end) = read_client(&client[..k]);
            assert!(
                matches!(end, End::NeedMore | End::Clean),
                "{} client: prefix of {k} bytes: {end:?}",
                c.name
            );
            assert_eq!(
                &got[..],
                &all_client[..got.len()],
                "{} client: prefix of {k}",
                c.name
            );
        }
        for k in 0..server.len() {
            let (got, end) = read_server(&server[..k], &commands, caps);
            assert!(
                matches!(end, End::NeedMore | End::Clean),
                "{} server: prefix of {k} bytes: {end:?}",
                c.name
            );
            assert_eq!(
                &got[..],
                &all_server[..got.len()],
                "{} server: prefix of {k}",
                c.name
            );
        }
    }
}

/// A 17 MiB COM_QUERY (PyMySQL) goes as a full packet of 0xffffff bytes and a second
/// packet with the next sequence number; its answer starts at sequence number 2.
#[test]
fn a_payload_over_16_mib_spans_two_packets() {
    let capture = include_bytes!("testdata/python_16mib.cap");
    let client = stream(capture, Side::Client);
    let server = stream(capture, Side::Server);
    let (lines, commands, caps, end) = read_client(&client);
    assert_eq!(end, End::Clean);
    let query = lines
        .iter()
        .find(|l| l.starts_with("query SELECT LENGTH"))
        .expect("the big query");
    assert_eq!(
        query.len(),
        "query ".len() + 0xff_ffff - 1,
        "the first packet's text"
    );
    let (m, _) = messages(&client);
    let big = m
        .iter()
        .find(|m| m.packets == 2)
        .expect("a two-packet payload");
    assert_eq!(
        big.payload_len,
        "\x03SELECT LENGTH('')".len() + 17 * (1 << 20)
    );
    assert_eq!(big.seq, 0);
    let (lines, end) = read_server(&server, &commands, caps);
    assert_eq!(end, End::Clean);
    assert_eq!(
        lines,
        [
            "greeting 5.5.5-10.11.19-MariaDB-0+deb12u1 id=11 deprecate_eof=0",
            "auth-ok",
            "ok (1 packets)",
            "ok (1 packets)",
            "ok (5 packets)",
        ]
    );
    // Cut anywhere around the packet boundary, the big payload needs more.
    let boundary = big_payload_offset(&client) + HEADER_LEN + MAX_PACKET_PAYLOAD;
    for k in boundary - 16..boundary + 16 {
        let (got, _, _, end) = read_client(&client[..k]);
        assert_eq!(end, End::NeedMore, "prefix of {k} bytes");
        assert!(got.iter().all(|l| !l.starts_with("query SELECT LENGTH")));
    }
}

fn big_payload_offset(client: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        let len = payload_len(&client[pos..]).unwrap();
        if len == MAX_PACKET_PAYLOAD {
            return pos;
        }
        pos += HEADER_LEN + len;
    }
}

#[test]
fn a_continuation_with_the_wrong_sequence_number_is_invalid() {
    let mut bytes = vec![0xff, 0xff, 0xff, 0x00];
    bytes.extend(std::iter::repeat_n(b'x', MAX_PACKET_PAYLOAD));
    bytes.extend([1, 0, 0, 0x05, b'y']);
    assert_eq!(
        parse_message(&bytes),
        Parse::Invalid(InvalidReason::BadLength)
    );
}

#[test]
fn commands_and_answers() {
    assert_eq!(
        parse_command(b"\x03SELECT 1"),
        Ok(Command::Query { text: b"SELECT 1" })
    );
    assert_eq!(
        parse_command(b"\x17\x02\x00\x00\x00\x00\x01\x00\x00\x00"),
        Ok(Command::StmtExecute { statement: 2 })
    );
    assert_eq!(
        parse_command(b"\x19\x02\x00"),
        Err(InvalidReason::Malformed)
    );
    assert_eq!(
        parse_command(b"GET / HTTP/1.1"),
        Err(InvalidReason::UnknownCommand)
    );
    assert_eq!(parse_command(b""), Err(InvalidReason::Malformed));
    assert!(!Command::StmtClose { statement: 1 }.expects_response());
    assert!(Command::Ping.expects_response());
    let err = b"\xff\x7a\x04#42S02Table 'beyla.missing_table' doesn't exist";
    assert_eq!(
        parse_response(err),
        Ok(Response::Err(ErrPacket {
            code: 1146,
            sql_state: Some(b"42S02"),
            message: b"Table 'beyla.missing_table' doesn't exist"
        }))
    );
    // Before the handshake completes an error has no SQLSTATE.
    let early = b"\xff\x6a\x04Host '10.0.0.1' is not allowed";
    assert!(matches!(
        parse_response(early),
        Ok(Response::Err(ErrPacket {
            code: 1130,
            sql_state: None,
            ..
        }))
    ));
    assert_eq!(
        parse_response(b"\x00\x01\x00\x02\x00\x00\x00"),
        Ok(Response::Ok(OkPacket {
            affected_rows: 1,
            status: 2
        }))
    );
    assert_eq!(
        parse_response(b"\x02"),
        Ok(Response::ResultSet {
            columns: 2,
            metadata: true
        })
    );
    assert_eq!(
        parse_response(b"\x02\x00"),
        Ok(Response::ResultSet {
            columns: 2,
            metadata: false
        })
    );
    assert_eq!(
        parse_response(b"\x02\x00\x00"),
        Err(InvalidReason::Malformed)
    );
    assert_eq!(
        parse_response(b"\xfe\x00\x00\x02\x00"),
        Ok(Response::Eof { status: 2 })
    );
    assert_eq!(lenenc_int(b"\xfc\x34\x12"), Some((0x1234, 3)));
    assert_eq!(
        lenenc_int(b"\xfe\x01\x00\x00\x00\x00\x00\x00\x80"),
        Some((0x8000_0000_0000_0001, 9))
    );
    assert_eq!(lenenc_int(b"\xfd\x01"), None);
    assert_eq!(lenenc_int(b"\xfb"), None);
}

/// MariaDB leaves column definitions out when the client cached them: rows follow the
/// column count at once.
#[test]
fn a_result_set_without_metadata() {
    let mut framing = ResponseFraming::new(false, true);
    assert_eq!(framing.step(b"\x01\x00", 2), Ok(Step::More));
    assert_eq!(framing.step(b"\x00\x00\x03ada", 6), Ok(Step::More));
    assert_eq!(
        framing.step(b"\xfe\x00\x00\x02\x00\x00\x00", 7),
        Ok(Step::Done(Outcome::Ok))
    );
}

/// An open cursor: the column definitions' EOF says so, and the rows come later by
/// COM_STMT_FETCH.
#[test]
fn a_cursor_ends_the_answer_after_the_definitions() {
    let mut framing = ResponseFraming::new(false, false);
    assert_eq!(framing.step(b"\x01", 1), Ok(Step::More));
    assert_eq!(framing.step(b"\x03def", 4), Ok(Step::More));
    assert_eq!(
        framing.step(b"\xfe\x00\x00\x42\x00", 5),
        Ok(Step::Done(Outcome::Ok))
    );
}

#[test]
fn an_error_in_the_middle_of_rows_ends_the_answer() {
    let mut framing = ResponseFraming::new(false, true);
    assert_eq!(framing.step(b"\x01", 1), Ok(Step::More));
    assert_eq!(framing.step(b"\x03def", 4), Ok(Step::More));
    assert_eq!(framing.step(b"\x03ada", 4), Ok(Step::More));
    let err = b"\xff\x25\x05#70100Query execution was interrupted";
    assert!(matches!(
        framing.step(err, err.len()),
        Ok(Step::Done(Outcome::Err(ErrPacket { code: 1317, .. })))
    ));
}

#[test]
fn ssl_request_login() {
    let mut payload = vec![0u8; 32];
    let caps = Capabilities::PROTOCOL_41 | Capabilities::SSL | Capabilities::SECURE_CONNECTION;
    payload[..4].copy_from_slice(&caps.to_le_bytes());
    assert_eq!(
        parse_login(&payload),
        Ok(Login::SslRequest {
            capabilities: Capabilities(caps)
        })
    );
    assert_eq!(parse_login(&payload[..31]), Err(InvalidReason::Malformed));
}

proptest! {
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_packet(&bytes);
        let _ = parse_message(&bytes);
        let _ = parse_greeting(&bytes);
        let _ = parse_login(&bytes);
        let _ = parse_command(&bytes);
        let _ = parse_response(&bytes);
        let _ = parse_prepare_ok(&bytes);
        let _ = lenenc_int(&bytes);
        for prepare in [false, true] {
            for deprecate_eof in [false, true] {
                let mut framing = ResponseFraming::new(prepare, deprecate_eof);
                for chunk in bytes.chunks(7) {
                    if !matches!(framing.step(chunk, chunk.len()), Ok(Step::More)) {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn parsed_lengths_stay_within_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Parse::Parsed(m) = parse_message(&bytes) {
            prop_assert!(m.len <= bytes.len());
            prop_assert!(m.first.len() <= m.payload_len);
        }
    }
}

mod stitching {
    use super::*;
    use crate::model::Direction;
    use crate::protocols::sql::capture::{replay, Replayed};
    use crate::protocols::sql::Statement;

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

    fn expect(list: &[(&str, usize, Option<&str>)]) -> Texts {
        list.iter()
            .flat_map(|&(text, n, code)| {
                std::iter::repeat_n((text.to_string(), code.map(str::to_string)), n)
            })
            .collect()
    }

    const SIMPLE: &str = "SELECT name FROM users WHERE id = 1";
    const PREPARED: &str = "SELECT name FROM users WHERE id = ?";
    const FAILING: &str = "SELECT id FROM missing_table";

    fn multi(note: &str, first: u32) -> String {
        (first..first + 3)
            .map(|id| format!("INSERT INTO events (id, note) VALUES ({id}, '{note}')"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn each_client_gives_one_record_per_statement_run() {
        let java_setup = "set sql_mode=CONCAT(@@sql_mode,',STRICT_TRANS_TABLES'),session_track_system_variables = CONCAT(@@global.session_track_system_variables,',tx_isolation'),NAMES utf8mb4";
        let go_multi = multi("go multi", 1000);
        let python_multi = multi("python multi", 3000);
        let node_multi = multi("node multi", 6000);
        let cases: Vec<(&str, Texts)> = vec![
            (
                "go_mysql",
                expect(&[
                    (SIMPLE, 3, None),
                    (PREPARED, 3, None),
                    (FAILING, 3, Some("1146")),
                    (&go_multi, 1, None),
                ]),
            ),
            (
                "python_pymysql",
                expect(&[
                    ("SET NAMES utf8mb4", 1, None),
                    (SIMPLE, 3, None),
                    ("SELECT name FROM users WHERE id = 1", 1, None),
                    ("SELECT name FROM users WHERE id = 2", 1, None),
                    ("SELECT name FROM users WHERE id = 3", 1, None),
                    (FAILING, 3, Some("1146")),
                    (&python_multi, 1, None),
                ]),
            ),
            (
                "java_mariadb",
                expect(&[
                    (java_setup, 1, None),
                    (SIMPLE, 3, None),
                    (PREPARED, 3, None),
                    (FAILING, 3, Some("1146")),
                    ("INSERT INTO events (id, note) VALUES (?, ?)", 1, None),
                ]),
            ),
            (
                "node_mysql2",
                expect(&[
                    (SIMPLE, 3, None),
                    (PREPARED, 3, None),
                    (FAILING, 3, Some("1146")),
                    (&node_multi, 1, None),
                ]),
            ),
        ];
        for (name, expected) in &cases {
            let c = captures().into_iter().find(|c| c.name == *name).unwrap();
            for capture_size in [usize::MAX, 1024] {
                let client = replay(
                    stitch::Stitcher::new(Direction::Egress),
                    c.bytes,
                    Side::Client,
                    capture_size,
                );
                assert_eq!(
                    &statements(&client),
                    expected,
                    "{name} client (capture {capture_size})"
                );
                assert!(
                    client.anomalies.is_empty(),
                    "{name}: {:?}",
                    client.anomalies
                );
                assert_eq!(
                    client.started(),
                    client.records.len() + client.abandoned,
                    "{name}"
                );
                let server = replay(
                    stitch::Stitcher::new(Direction::Ingress),
                    c.bytes,
                    Side::Server,
                    capture_size,
                );
                assert_eq!(
                    &statements(&server),
                    expected,
                    "{name} server (capture {capture_size})"
                );
                assert!(client
                    .records
                    .iter()
                    .all(|s| s.namespace.as_deref() == Some("beyla")));
            }
        }
    }

    /// 17 MiB of query text: one record, its text the captured start, the continuation
    /// packet skipped by its length.
    #[test]
    fn a_16_mib_query_is_one_record() {
        let capture = include_bytes!("testdata/python_16mib.cap");
        let r = replay(
            stitch::Stitcher::new(Direction::Egress),
            capture,
            Side::Client,
            1024,
        );
        let texts = statements(&r);
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(
            texts[2].0.starts_with("SELECT LENGTH('xxxx"),
            "{:?}",
            &texts[2].0[..40.min(texts[2].0.len())]
        );
        assert_eq!(texts[2].0.len(), 1024 - HEADER_LEN - 1);
        assert_eq!(texts[2].1, None);
    }
}

mod detection {
    use super::*;
    use crate::model::{Direction, SpanKind};
    use crate::protocols::{Detection, FirstBytes, Protocol};

    fn detect(data: &[u8], direction: Direction) -> Detection {
        MYSQL.detect(&FirstBytes {
            data,
            direction,
            kind: Some(SpanKind::Client),
            local_port: 40000,
            remote_port: 3306,
        })
    }

    #[test]
    fn greetings_and_mid_connection_commands_are_recognised() {
        for c in captures() {
            let server = stream(c.bytes, Side::Server);
            // The greeting comes in: requests go out.
            assert_eq!(
                detect(&server, Direction::Ingress),
                Detection::Yes {
                    request_dir: Direction::Egress
                },
                "{}",
                c.name
            );
        }
        let yes = Detection::Yes {
            request_dir: Direction::Egress,
        };
        assert_eq!(
            detect(b"\x09\x00\x00\x00\x03SELECT 1", Direction::Egress),
            yes
        );
        assert_eq!(
            detect(
                b"\x0a\x00\x00\x00\x17\x02\x00\x00\x00\x00\x01\x00\x00\x00",
                Direction::Egress
            ),
            yes
        );
        assert_eq!(
            detect(
                b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00",
                Direction::Ingress
            ),
            Detection::Later
        );
        assert_eq!(detect(b"\x09\x00", Direction::Egress), Detection::NeedMore);
        for other in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"*1\r\n$4\r\nPING\r\n",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
            b"\x0b\x00\x00\x00\x03FROBNICATE",
        ] {
            assert_eq!(detect(other, Direction::Egress), Detection::No, "{other:?}");
        }
    }
}
