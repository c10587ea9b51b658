use super::*;
use proptest::prelude::*;

/// One direction of one captured connection (testdata/README.md says how each was made).
struct Capture {
    name: &'static str,
    bytes: &'static [u8],
    /// Every value in order, written by `describe`.
    golden: &'static str,
}

/// A short text for a value: type byte, then the text, error code, number or elements.
fn describe(value: &Value<'_>) -> String {
    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }
    fn list(prefix: char, elements: Elements<'_>) -> String {
        let items: Vec<String> = elements.map(|v| describe(&v)).collect();
        format!("{prefix}[{}]", items.join(","))
    }
    match value {
        Value::Simple(s) => format!("+{}", text(s)),
        Value::Error(_) => format!("-{}", text(value.error_code().unwrap_or_default())),
        Value::Integer(n) => format!(":{n}"),
        Value::Bulk(b) => format!("${}", text(b)),
        Value::Null => "_".to_string(),
        Value::Boolean(b) => format!("#{b}"),
        Value::Double(d) => format!(",{}", text(d)),
        Value::BigNumber(n) => format!("({}", text(n)),
        Value::Verbatim { format, text: t } => format!("={}:{}", text(format), text(t)),
        Value::Array(e) => list('*', *e),
        Value::Set(e) => list('~', *e),
        Value::Map(e) => list('%', *e),
        Value::Push(e) => list('>', *e),
    }
}

fn commands(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Parse::Parsed(command) = parse_command(rest) else {
            panic!("not a whole command at {}", bytes.len() - rest.len());
        };
        let args: Vec<String> = command
            .args
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let name = String::from_utf8_lossy(command.name).to_ascii_uppercase();
        out.push(
            std::iter::once(name)
                .chain(args)
                .collect::<Vec<_>>()
                .join(" "),
        );
        rest = &rest[command.len..];
    }
    out
}

fn values(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Parse::Parsed(frame) = parse_value(rest) else {
            panic!("not a whole value at {}", bytes.len() - rest.len());
        };
        out.push(describe(&frame.value));
        rest = &rest[frame.len..];
    }
    out
}

const HELLO3: &str = "%[$server,$redis,$version,$7.0.15,$proto,:3,$id,:{id},$mode,$standalone,$role,$master,$modules,*[]]";

fn hello(id: u32) -> String {
    HELLO3.replace("{id}", &id.to_string())
}

fn requests() -> Vec<Capture> {
    vec![
        Capture {
            name: "go_redis_commands_request",
            bytes: include_bytes!("testdata/go_redis_commands_request.bin"),
            golden: "HELLO 3|SELECT 1|CLIENT maint_notifications on moving-endpoint-type internal-ip|CLIENT setinfo LIB-NAME go-redis(,go1.26.8)|CLIENT setinfo LIB-VER 9.17.3|PING|SET kv:0 v0|GET kv:0|SET kv:1 v1|GET kv:1|SET kv:2 v2|GET kv:2|INCR kv:counter|INCR kv:counter|INCR kv:counter|LPUSH kv:0 x|INCR kv:0|LPUSH kv:0 x|INCR kv:0|LPUSH kv:0 x|INCR kv:0|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|PUBLISH kv:events event 0|PUBLISH kv:events event 1|PUBLISH kv:events event 2",
        },
        Capture {
            name: "go_redis_subscriber_request",
            bytes: include_bytes!("testdata/go_redis_subscriber_request.bin"),
            golden: "HELLO 3|SELECT 1|CLIENT maint_notifications on moving-endpoint-type internal-ip|CLIENT setinfo LIB-NAME go-redis(,go1.26.8)|CLIENT setinfo LIB-VER 9.17.3|SUBSCRIBE kv:events",
        },
        Capture {
            name: "py_redis_commands_request",
            bytes: include_bytes!("testdata/py_redis_commands_request.bin"),
            golden: "CLIENT SETINFO LIB-NAME redis-py|CLIENT SETINFO LIB-VER 8.1.0|SELECT 1|PING|SET kv:0 v0|GET kv:0|SET kv:1 v1|GET kv:1|INCRBY kv:counter 1|INCRBY kv:counter 1|LPUSH kv:0 x|INCRBY kv:0 1|LPUSH kv:0 x|INCRBY kv:0 1|MULTI|SET kv:tx 1|INCRBY kv:tx 1|EXEC|MULTI|SET kv:tx 1|INCRBY kv:tx 1|EXEC|PUBLISH kv:events event 0|PUBLISH kv:events event 1",
        },
        Capture {
            name: "py_redis_subscriber_request",
            bytes: include_bytes!("testdata/py_redis_subscriber_request.bin"),
            golden: "CLIENT SETINFO LIB-NAME redis-py|CLIENT SETINFO LIB-VER 8.1.0|SELECT 1|SUBSCRIBE kv:events",
        },
        Capture {
            name: "node_ioredis_commands_request",
            bytes: include_bytes!("testdata/node_ioredis_commands_request.bin"),
            golden: "HELLO 3|SELECT 1|CLIENT SETINFO LIB-VER 6.0.0|CLIENT SETINFO LIB-NAME ioredis|PING|SET kv:0 v0|GET kv:0|SET kv:1 v1|GET kv:1|INCR kv:counter|INCR kv:counter|LPUSH kv:0 x|INCR kv:0|LPUSH kv:0 x|INCR kv:0|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|PUBLISH kv:events event 0|PUBLISH kv:events event 1",
        },
        Capture {
            name: "node_ioredis_subscriber_request",
            bytes: include_bytes!("testdata/node_ioredis_subscriber_request.bin"),
            golden: "HELLO 3|SELECT 1|CLIENT SETINFO LIB-VER 6.0.0|CLIENT SETINFO LIB-NAME ioredis|SUBSCRIBE kv:events",
        },
        Capture {
            name: "java_jedis_commands_request",
            bytes: include_bytes!("testdata/java_jedis_commands_request.bin"),
            golden: "SELECT 1|PING|SET kv:0 v0|GET kv:0|SET kv:1 v1|GET kv:1|INCR kv:counter|INCR kv:counter|LPUSH kv:0 x|INCR kv:0|LPUSH kv:0 x|INCR kv:0|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|MULTI|SET kv:tx 1|INCR kv:tx|EXEC|PUBLISH kv:events event 0|PUBLISH kv:events event 1",
        },
        Capture {
            name: "java_jedis_subscriber_request",
            bytes: include_bytes!("testdata/java_jedis_subscriber_request.bin"),
            golden: "SELECT 1|SUBSCRIBE kv:events|UNSUBSCRIBE",
        },
        Capture {
            name: "py_resp3_types_a_request",
            bytes: include_bytes!("testdata/py_resp3_types_a_request.bin"),
            golden: "HELLO 3|CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type internal-fqdn|CLIENT SETINFO LIB-NAME redis-py|CLIENT SETINFO LIB-VER 8.1.0|SELECT 1|DEBUG PROTOCOL string|DEBUG PROTOCOL integer|DEBUG PROTOCOL double|DEBUG PROTOCOL bignum|DEBUG PROTOCOL null|DEBUG PROTOCOL array|DEBUG PROTOCOL set|DEBUG PROTOCOL map|DEBUG PROTOCOL attrib",
        },
        Capture {
            name: "py_resp3_types_b_request",
            bytes: include_bytes!("testdata/py_resp3_types_b_request.bin"),
            golden: "HELLO 3|CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type internal-fqdn|CLIENT SETINFO LIB-NAME redis-py|CLIENT SETINFO LIB-VER 8.1.0|SELECT 1|DEBUG PROTOCOL push|DEBUG PROTOCOL verbatim|DEBUG PROTOCOL true|DEBUG PROTOCOL false|HSET kv:h f1 a f2 b|HGETALL kv:h|SADD kv:s x|SMEMBERS kv:s",
        },
    ]
}

fn responses() -> Vec<(Capture, String)> {
    let setinfo_errors = "-ERR|-ERR";
    let go_prelude = format!("{}|+OK|-ERR|{setinfo_errors}", hello(3));
    let tx = "+OK|+QUEUED|+QUEUED|*[+OK,:2]";
    let capture = |name, bytes, golden: String| {
        (
            Capture {
                name,
                bytes,
                golden: "",
            },
            golden,
        )
    };
    vec![
        capture(
            "go_redis_commands_response",
            include_bytes!("testdata/go_redis_commands_response.bin").as_slice(),
            format!(
                "{go_prelude}|+PONG|+OK|$v0|+OK|$v1|+OK|$v2|:1|:2|:3|-WRONGTYPE|-ERR|-WRONGTYPE|-ERR|-WRONGTYPE|-ERR|{tx}|{tx}|{tx}|:1|:1|:1"
            ),
        ),
        capture(
            "go_redis_subscriber_response",
            include_bytes!("testdata/go_redis_subscriber_response.bin").as_slice(),
            format!(
                "{}|+OK|-ERR|{setinfo_errors}|>[$subscribe,$kv:events,:1]|>[$message,$kv:events,$event 0]|>[$message,$kv:events,$event 1]|>[$message,$kv:events,$event 2]",
                hello(4)
            ),
        ),
        capture(
            "py_redis_commands_response",
            include_bytes!("testdata/py_redis_commands_response.bin").as_slice(),
            format!("{setinfo_errors}|+OK|+PONG|+OK|$v0|+OK|$v1|:4|:5|-WRONGTYPE|-ERR|-WRONGTYPE|-ERR|{tx}|{tx}|:1|:1"),
        ),
        capture(
            "py_redis_subscriber_response",
            include_bytes!("testdata/py_redis_subscriber_response.bin").as_slice(),
            format!("{setinfo_errors}|+OK|*[$subscribe,$kv:events,:1]|*[$message,$kv:events,$event 0]|*[$message,$kv:events,$event 1]"),
        ),
        capture(
            "node_ioredis_commands_response",
            include_bytes!("testdata/node_ioredis_commands_response.bin").as_slice(),
            format!("{}|+OK|{setinfo_errors}|+PONG|+OK|$v0|+OK|$v1|:6|:7|-WRONGTYPE|-ERR|-WRONGTYPE|-ERR|{tx}|{tx}|:1|:1", hello(7)),
        ),
        capture(
            "node_ioredis_subscriber_response",
            include_bytes!("testdata/node_ioredis_subscriber_response.bin").as_slice(),
            format!(
                "{}|+OK|{setinfo_errors}|>[$subscribe,$kv:events,:1]|>[$message,$kv:events,$event 0]|>[$message,$kv:events,$event 1]",
                hello(8)
            ),
        ),
        capture(
            "java_jedis_commands_response",
            include_bytes!("testdata/java_jedis_commands_response.bin").as_slice(),
            format!("+OK|+PONG|+OK|$v0|+OK|$v1|:8|:9|-WRONGTYPE|-ERR|-WRONGTYPE|-ERR|{tx}|{tx}|:1|:1"),
        ),
        capture(
            "java_jedis_subscriber_response",
            include_bytes!("testdata/java_jedis_subscriber_response.bin").as_slice(),
            "+OK|*[$subscribe,$kv:events,:1]|*[$message,$kv:events,$event 0]|*[$message,$kv:events,$event 1]|*[$unsubscribe,$kv:events,:0]".to_string(),
        ),
        capture(
            "py_resp3_types_a_response",
            include_bytes!("testdata/py_resp3_types_a_response.bin").as_slice(),
            format!(
                "{}|-ERR|{setinfo_errors}|+OK|$Hello World|:12345|,3.141|(1234567999999999999999999999999999999|_|*[:0,:1,:2]|~[:0,:1,:2]|%[:0,#false,:1,#true,:2,#false]|$Some real reply following the attribute",
                hello(12)
            ),
        ),
        capture(
            "py_resp3_types_b_response",
            include_bytes!("testdata/py_resp3_types_b_response.bin").as_slice(),
            format!(
                "{}|-ERR|{setinfo_errors}|+OK|>[$server-cpu-usage,:42]|$Some real reply following the push reply|=txt:This is a verbatim\nstring|#true|#false|:2|%[$f1,$a,$f2,$b]|:1|~[$x]",
                hello(13)
            ),
        ),
    ]
}

#[test]
fn captured_commands_parse_to_their_golden_list() {
    for capture in requests() {
        assert_eq!(
            commands(capture.bytes).join("|"),
            capture.golden,
            "{}",
            capture.name
        );
    }
}

#[test]
fn captured_replies_parse_to_their_golden_list() {
    for (capture, golden) in responses() {
        assert_eq!(values(capture.bytes).join("|"), golden, "{}", capture.name);
    }
}

/// Where each value of a stream ends, by `parse_value` on the whole stream.
fn value_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Parse::Parsed(frame) = parse_value(&bytes[at..]) else {
            panic!("not a whole value at {at}");
        };
        at += frame.len;
        ends.push(at);
    }
    ends
}

fn all_streams() -> Vec<(&'static str, &'static [u8])> {
    requests()
        .into_iter()
        .map(|c| (c.name, c.bytes))
        .chain(responses().into_iter().map(|(c, _)| (c.name, c.bytes)))
        .collect()
}

#[test]
fn every_cut_off_prefix_needs_more_and_never_fails() {
    for (name, bytes) in all_streams() {
        let mut start = 0;
        for end in value_ends(bytes) {
            let whole = &bytes[start..end];
            for cut in 0..whole.len() {
                assert_eq!(
                    parse_value(&whole[..cut]),
                    Parse::NeedMore,
                    "{name}: value at {start} cut to {cut} bytes"
                );
                assert_eq!(
                    parse_header(&whole[..cut.min(2)]),
                    Parse::NeedMore,
                    "{name}: header at {start}"
                );
            }
            if let Parse::Parsed(command) = parse_command(whole) {
                assert_eq!(command.len, whole.len(), "{name} at {start}");
                for cut in 0..whole.len() {
                    assert_eq!(parse_command(&whole[..cut]), Parse::NeedMore, "{name}");
                }
            }
            start = end;
        }
    }
}

/// Feeds `bytes` to a walker in pieces of `step`, keeping unused bytes as a stitcher would, and
/// returns where each value ended.
fn walk_in_pieces(bytes: &[u8], step: usize) -> Result<Vec<usize>, InvalidReason> {
    let mut walker = ValueWalker::new();
    let mut ends = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0; // stream offset of pending[0]
    for piece in bytes.chunks(step) {
        pending.extend_from_slice(piece);
        loop {
            match walker.feed(&pending) {
                Walk::Done(used) => {
                    offset += used;
                    ends.push(offset);
                    pending.drain(..used);
                    if pending.is_empty() {
                        break;
                    }
                }
                Walk::NeedMore(used) => {
                    offset += used;
                    pending.drain(..used);
                    assert!(pending.len() < MAX_LINE);
                    break;
                }
                Walk::Invalid(reason) => return Err(reason),
            }
        }
    }
    Ok(ends)
}

#[test]
fn walker_finds_every_value_end_in_any_piece_size() {
    for (name, bytes) in all_streams() {
        let expected = value_ends(bytes);
        for step in [1, 2, 3, 5, 7, 16, 64, 1000, bytes.len()] {
            assert_eq!(
                walk_in_pieces(bytes, step),
                Ok(expected.clone()),
                "{name} in pieces of {step}"
            );
        }
    }
}

#[test]
fn walker_steps_over_uncaptured_payload_bytes() {
    // A 100 000-byte GET reply of which the probe copied the first 10 bytes of the payload.
    let payload_len = 100_000u64;
    let head = format!("${payload_len}\r\n0123456789");
    let mut walker = ValueWalker::new();
    assert_eq!(walker.feed(head.as_bytes()), Walk::NeedMore(head.len()));
    assert!(walker.skip(payload_len - 10));
    assert_eq!(walker.feed(b"\r\n:1\r\n"), Walk::Done(2));
    // A gap that reaches past the payload loses the framing.
    let mut walker = ValueWalker::new();
    assert_eq!(walker.feed(b"$5\r\nab"), Walk::NeedMore(6));
    assert!(!walker.skip(4));
}

#[test]
fn invalid_bytes_are_refused_at_once() {
    let cases: [(&[u8], InvalidReason); 12] = [
        (b"GET key\r\n", InvalidReason::UnknownType),
        (b"HTTP/1.1 200", InvalidReason::UnknownType),
        (b"$-2\r\n", InvalidReason::BadLength),
        (b"$1x", InvalidReason::BadLine),
        (b":12a", InvalidReason::BadLine),
        (b":99999999999999999999\r\n", InvalidReason::BadLine),
        (b"#x", InvalidReason::BadLine),
        (b"_1", InvalidReason::BadLine),
        (b"+OK\rX", InvalidReason::BadLine),
        (b"+OK\n", InvalidReason::BadLine),
        (b"$2\r\nabc", InvalidReason::MissingCrlf),
        (b"=3\r\ntxt\r\n", InvalidReason::BadVerbatim),
    ];
    for (bytes, reason) in cases {
        assert_eq!(
            parse_value(bytes),
            Parse::Invalid(reason),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Only RESP2's two types have a `-1` null.
    for null in [b"|-1\r\n".as_slice(), b"%-1\r\n", b"!-1\r\n", b">-1\r\n"] {
        assert_eq!(parse_value(null), Parse::Invalid(InvalidReason::BadLength));
        assert_eq!(
            ValueWalker::new().feed(null),
            Walk::Invalid(InvalidReason::BadLength)
        );
    }
    let too_big = format!("${}\r\n", MAX_BLOB_LEN + 1);
    assert_eq!(
        parse_value(too_big.as_bytes()),
        Parse::Invalid(InvalidReason::BadLength)
    );
    let long_line = [b"+".as_slice(), &vec![b'a'; MAX_LINE]].concat();
    assert_eq!(
        parse_value(&long_line),
        Parse::Invalid(InvalidReason::LineTooLong)
    );
    let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
    assert_eq!(
        parse_value(deep.as_bytes()),
        Parse::Invalid(InvalidReason::TooDeep)
    );
    let mut walker = ValueWalker::new();
    assert_eq!(
        walker.feed(deep.as_bytes()),
        Walk::Invalid(InvalidReason::TooDeep)
    );
    assert_eq!(
        parse_command(b"+OK\r\n"),
        Parse::Invalid(InvalidReason::NotCommand)
    );
    assert_eq!(
        parse_command(b"*1\r\n:1\r\n"),
        Parse::Invalid(InvalidReason::NotCommand)
    );
    assert_eq!(
        parse_command(b"*0\r\n"),
        Parse::Invalid(InvalidReason::NotCommand)
    );
}

#[test]
fn attribute_chains_and_wide_counts_stay_bounded() {
    // Thousands of attributes before one value: no recursion, one value.
    let chain = "|1\r\n+k\r\n+v\r\n".repeat(5000) + ":7\r\n";
    let Parse::Parsed(frame) = parse_value(chain.as_bytes()) else {
        panic!("chain");
    };
    assert_eq!((frame.value, frame.len), (Value::Integer(7), chain.len()));
    assert_eq!(walk_in_pieces(chain.as_bytes(), 13), Ok(vec![chain.len()]));
    // A huge count with few bytes only asks for more.
    assert_eq!(parse_value(b"*2147483647\r\n:1\r\n"), Parse::NeedMore);
}

#[test]
fn pushes_and_subscribed_arrays_are_told_apart_from_replies() {
    let kind = |bytes: &[u8]| match parse_value(bytes) {
        Parse::Parsed(frame) => push_kind(&frame.value),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        kind(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
        Some(PushKind::Message)
    );
    assert_eq!(
        kind(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"),
        Some(PushKind::Subscription)
    );
    assert_eq!(
        kind(b">2\r\n$10\r\ninvalidate\r\n*0\r\n"),
        Some(PushKind::Other)
    );
    assert_eq!(kind(b"+OK\r\n"), None);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_walker_agrees(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let parsed = parse_value(&bytes);
        let _ = parse_command(&bytes);
        let _ = parse_header(&bytes);
        let walked = ValueWalker::new().feed(&bytes);
        if let Parse::Parsed(frame) = parsed {
            prop_assert_eq!(walked, Walk::Done(frame.len));
        }
        if let Walk::Invalid(_) = walked {
            prop_assert!(matches!(parsed, Parse::Invalid(_)));
        }
    }

    #[test]
    fn resp_shaped_bytes_never_panic(parts in proptest::collection::vec(
        prop_oneof![
            Just("*2\r\n"), Just("%1\r\n"), Just("|1\r\n"), Just(">3\r\n"), Just("~1\r\n"),
            Just("$3\r\nabc\r\n"), Just("$-1\r\n"), Just("*-1\r\n"), Just(":5\r\n"), Just("_\r\n"),
            Just("#t\r\n"), Just(",1.5\r\n"), Just("(12\r\n"), Just("=5\r\ntxt:a\r\n"),
            Just("!3\r\nERR\r\n"), Just("-ERR x\r\n"), Just("+OK\r\n"), Just("\r\n"),
        ], 0..40)) {
        let bytes = parts.concat().into_bytes();
        let parsed = parse_value(&bytes);
        for step in [1, 4] {
            if let (Parse::Parsed(frame), Ok(ends)) = (parsed, walk_in_pieces(&bytes, step)) {
                prop_assert_eq!(ends.first().copied(), Some(frame.len));
            }
        }
        if let Parse::Parsed(frame) = parsed {
            for cut in 0..frame.len {
                prop_assert_eq!(parse_value(&bytes[..cut]), Parse::NeedMore);
            }
        }
    }
}

#[test]
fn command_starts_agree_with_whole_commands_on_every_prefix() {
    for capture in requests() {
        let mut rest = capture.bytes;
        while let Parse::Parsed(command) = parse_command(rest) {
            let mut args = command.args;
            let expected = CommandStart {
                name: command.name,
                first_arg: args.next(),
                arg_count: command.args.remaining(),
            };
            let whole = &rest[..command.len];
            assert_eq!(parse_command_start(whole), Parse::Parsed(expected));
            for cut in 0..whole.len() {
                match parse_command_start(&whole[..cut]) {
                    Parse::NeedMore => {}
                    parsed => assert_eq!(parsed, Parse::Parsed(expected), "{}", capture.name),
                }
            }
            rest = &rest[command.len..];
        }
        assert!(rest.is_empty(), "{}", capture.name);
    }
}

#[test]
fn reply_starts_agree_with_whole_replies_on_every_prefix() {
    for (capture, _) in responses() {
        let mut rest = capture.bytes;
        while let Parse::Parsed(frame) = parse_value(rest) {
            let whole = &rest[..frame.len];
            let Parse::Parsed(start) = parse_reply_start(whole) else {
                panic!("{}", capture.name)
            };
            assert_eq!(
                start.error_code,
                frame.value.error_code(),
                "{}",
                capture.name
            );
            assert_eq!(start.push, push_kind(&frame.value), "{}", capture.name);
            for cut in 0..whole.len() {
                match parse_reply_start(&whole[..cut]) {
                    Parse::NeedMore => {}
                    parsed => assert_eq!(parsed, Parse::Parsed(start), "{}", capture.name),
                }
            }
            rest = &rest[frame.len..];
        }
        assert!(rest.is_empty(), "{}", capture.name);
    }
    // A bulk error's code, and an attribute before a reply.
    let Parse::Parsed(start) = parse_reply_start(b"!21\r\nSYNTAX invalid syntax\r\n") else {
        panic!("bulk error")
    };
    assert_eq!(start.error_code, Some(b"SYNTAX".as_slice()));
    assert_eq!(parse_reply_start(b"!21\r\nSYNT"), Parse::NeedMore);
    let Parse::Parsed(start) = parse_reply_start(b"|1\r\n+a\r\n:1\r\n-ERR x\r\n") else {
        panic!("attribute")
    };
    assert_eq!(
        (start.kind, start.error_code),
        (Kind::SimpleError, Some(b"ERR".as_slice()))
    );
}

// ---------------------------------------------------------------------------------------
// The stitcher, fed captured connections.

mod stitching {
    use super::super::stitch::{RedisRecord, RedisStitcher};
    use super::{requests, responses};
    use crate::model::{Direction, Origin};
    use crate::protocols::testing::{chunk, Recorder};
    use crate::protocols::{Anomaly, Stitch};

    /// The traced process is the client: commands go out.
    struct Conn {
        stitcher: RedisStitcher,
        hooks: Recorder<RedisRecord>,
        clock: u64,
    }

    impl Conn {
        fn client() -> Conn {
            Conn {
                stitcher: RedisStitcher::new(Direction::Egress),
                hooks: Recorder::default(),
                clock: 0,
            }
        }

        /// One syscall moving `bytes`, of which the probe copied the first `captured`.
        fn send(&mut self, direction: Direction, bytes: &[u8], moved: u64) {
            self.clock += 10;
            let chunk = chunk(
                direction,
                Origin::Connect,
                (40000, 6379),
                bytes,
                moved,
                self.clock,
            );
            self.stitcher.feed(&chunk, &mut self.hooks);
        }

        fn request(&mut self, bytes: &[u8]) {
            self.send(Direction::Egress, bytes, bytes.len() as u64);
        }

        fn reply(&mut self, bytes: &[u8]) {
            self.send(Direction::Ingress, bytes, bytes.len() as u64);
        }

        /// Each record as `COMMAND|query|database|error`.
        fn described(&self) -> Vec<String> {
            self.hooks
                .records
                .iter()
                .map(|r| match &r.operation {
                    Some(op) => format!(
                        "{}|{}|{}|{}",
                        op.command,
                        op.query,
                        op.database.as_deref().unwrap_or("-"),
                        op.error.as_deref().unwrap_or("-")
                    ),
                    None => "undecodable".to_string(),
                })
                .collect()
        }
    }

    fn capture(name: &str) -> (&'static [u8], &'static [u8]) {
        let request = requests()
            .into_iter()
            .find(|c| c.name == format!("{name}_request"))
            .expect("request capture")
            .bytes;
        let response = responses()
            .into_iter()
            .find(|(c, _)| c.name == format!("{name}_response"))
            .expect("response capture")
            .0
            .bytes;
        (request, response)
    }

    /// Replays a capture: every command, then the replies in pieces of `step` bytes.
    fn replay(name: &str, step: usize) -> Conn {
        let (request, response) = capture(name);
        let mut conn = Conn::client();
        conn.request(request);
        for piece in response.chunks(step) {
            conn.reply(piece);
        }
        conn.stitcher.close(&mut conn.hooks);
        conn
    }

    fn records_of(name: &str) -> Vec<String> {
        let conn = replay(name, usize::MAX);
        assert_eq!(conn.hooks.anomalies, vec![], "{name}");
        assert_eq!(conn.hooks.abandoned, 0, "{name}");
        for step in [1, 3, 64] {
            let other = replay(name, step);
            assert_eq!(
                other.described(),
                conn.described(),
                "{name} in pieces of {step}"
            );
            assert_eq!(other.hooks.anomalies, vec![], "{name} in pieces of {step}");
        }
        conn.described()
    }

    /// `n` copies of a record.
    fn times(n: usize, record: &str) -> Vec<String> {
        vec![record.to_string(); n]
    }

    #[test]
    fn go_redis_resp3_connection_gives_one_record_per_command() {
        let transaction = [
            "MULTI|MULTI|1|-",
            "SET|SET kv:tx ?|1|-",
            "INCR|INCR kv:tx|1|-",
            "EXEC|EXEC|1|-",
        ];
        let mut expected: Vec<String> = [
            "HELLO|HELLO ?|-|-",
            "SELECT|SELECT 1|-|-",
            "CLIENT|CLIENT maint_notifications ?|1|ERR",
            "CLIENT|CLIENT setinfo ?|1|ERR",
            "CLIENT|CLIENT setinfo ?|1|ERR",
            "PING|PING|1|-",
        ]
        .map(String::from)
        .to_vec();
        for i in 0..3 {
            expected.push(format!("SET|SET kv:{i} ?|1|-"));
            expected.push(format!("GET|GET kv:{i}|1|-"));
        }
        expected.extend(times(3, "INCR|INCR kv:counter|1|-"));
        for _ in 0..3 {
            expected.push("LPUSH|LPUSH kv:0 ?|1|WRONGTYPE".into());
            expected.push("INCR|INCR kv:0|1|ERR".into());
        }
        for _ in 0..3 {
            expected.extend(transaction.map(String::from));
        }
        expected.extend(times(3, "PUBLISH|PUBLISH kv:events ?|1|-"));
        assert_eq!(records_of("go_redis_commands"), expected);
    }

    #[test]
    fn subscriptions_are_answered_once_and_messages_are_no_replies() {
        // RESP3: the confirmation and the messages are pushes.
        assert_eq!(
            records_of("go_redis_subscriber").last().map(String::as_str),
            Some("SUBSCRIBE|SUBSCRIBE kv:events|1|-")
        );
        assert_eq!(records_of("go_redis_subscriber").len(), 6);
        assert_eq!(records_of("node_ioredis_subscriber").len(), 5);
        // RESP2: arrays, told apart once the connection subscribed.
        assert_eq!(
            records_of("py_redis_subscriber"),
            [
                "CLIENT|CLIENT SETINFO ?|-|ERR",
                "CLIENT|CLIENT SETINFO ?|-|ERR",
                "SELECT|SELECT 1|-|-",
                "SUBSCRIBE|SUBSCRIBE kv:events|1|-",
            ]
        );
        assert_eq!(
            records_of("java_jedis_subscriber"),
            [
                "SELECT|SELECT 1|-|-",
                "SUBSCRIBE|SUBSCRIBE kv:events|1|-",
                "UNSUBSCRIBE|UNSUBSCRIBE|1|-",
            ]
        );
    }

    #[test]
    fn every_client_gets_a_record_per_command_with_its_error() {
        for (name, commands, errors) in [
            ("py_redis_commands", 24, 6),
            ("node_ioredis_commands", 25, 6),
            ("java_jedis_commands", 22, 4),
        ] {
            let records = records_of(name);
            assert_eq!(records.len(), commands, "{name}");
            let failed = records.iter().filter(|r| !r.ends_with("|-")).count();
            assert_eq!(failed, errors, "{name}");
        }
    }

    #[test]
    fn resp3_types_attributes_and_pushes_before_replies() {
        let a = records_of("py_resp3_types_a");
        assert_eq!(a.len(), 14);
        assert_eq!(a[5..], times(9, "DEBUG|DEBUG PROTOCOL ?|1|-"));
        // A push arrives before the reply to DEBUG PROTOCOL push: it answers nothing.
        assert_eq!(
            records_of("py_resp3_types_b")[5..],
            [
                "DEBUG|DEBUG PROTOCOL ?|1|-",
                "DEBUG|DEBUG PROTOCOL ?|1|-",
                "DEBUG|DEBUG PROTOCOL ?|1|-",
                "DEBUG|DEBUG PROTOCOL ?|1|-",
                "HSET|HSET kv:h ?|1|-",
                "HGETALL|HGETALL kv:h|1|-",
                "SADD|SADD kv:s ?|1|-",
                "SMEMBERS|SMEMBERS kv:s|1|-",
            ]
        );
    }

    #[test]
    fn payload_bytes_the_probe_did_not_copy_cost_nothing() {
        let mut conn = Conn::client();
        conn.request(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
        // A 100 000-byte value of which the probe copied 64 bytes, then the next reply.
        let head = b"$100000\r\n";
        let mut reply = head.to_vec();
        reply.resize(head.len() + 100_000, b'x');
        reply.extend_from_slice(b"\r\n");
        conn.send(Direction::Ingress, &reply[..64], reply.len() as u64 - 2);
        conn.reply(b"\r\n");
        conn.request(b"*1\r\n$4\r\nPING\r\n");
        conn.reply(b"+PONG\r\n");
        assert_eq!(conn.hooks.anomalies, vec![]);
        assert_eq!(conn.described(), ["GET|GET big|-|-", "PING|PING|-|-"]);
    }

    #[test]
    fn lost_framing_drops_what_is_pending_and_resumes_on_the_next_turn() {
        let mut conn = Conn::client();
        conn.request(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
        // The probe copied 2 bytes of a 20-byte read: the gap covers framing.
        conn.send(Direction::Ingress, b"$3", 20);
        assert_eq!(conn.hooks.anomalies, vec![Anomaly::Lost { bytes: 18 }]);
        assert_eq!(conn.hooks.abandoned, 2);
        // The command sent while out of step is not followed; its reply ends the resync.
        conn.request(b"*1\r\n$4\r\nPING\r\n");
        conn.reply(b"+PONG\r\n");
        conn.request(b"*2\r\n$3\r\nGET\r\n$1\r\nc\r\n");
        conn.reply(b"$1\r\nC\r\n");
        assert_eq!(conn.described(), ["GET|GET c|-|-"]);
    }

    #[test]
    fn orphans_unanswered_and_garbage_are_counted() {
        let mut conn = Conn::client();
        conn.reply(b"+OK\r\n");
        assert_eq!(conn.hooks.anomalies, vec![Anomaly::OrphanResponse]);
        conn.request(b"*1\r\n$4\r\nPING\r\n");
        conn.stitcher.close(&mut conn.hooks);
        assert_eq!(
            conn.hooks.anomalies[1],
            Anomaly::Unanswered(crate::protocols::Unanswered::Closed)
        );
        assert_eq!(conn.hooks.abandoned, 1);
        let mut conn = Conn::client();
        conn.request(b"GET a\r\n");
        assert_eq!(conn.hooks.anomalies, vec![Anomaly::Invalid("unknown_type")]);
    }

    #[test]
    fn a_pipeline_deeper_than_kept_skips_the_replies_of_dropped_commands() {
        let mut conn = Conn::client();
        let ping = b"*1\r\n$4\r\nPING\r\n".repeat(1100);
        conn.request(&ping);
        conn.reply(&b"+PONG\r\n".repeat(1100));
        assert_eq!(conn.hooks.records.len(), 1024);
        assert_eq!(
            conn.hooks.anomalies,
            vec![Anomaly::Unanswered(crate::protocols::Unanswered::Dropped); 1100 - 1024]
        );
    }

    fn detect(data: &[u8]) -> crate::protocols::Detection {
        use crate::protocols::{FirstBytes, Protocol};
        super::super::REDIS.detect(&FirstBytes {
            data,
            direction: Direction::Egress,
            kind: None,
            local_port: 40000,
            remote_port: 6379,
        })
    }

    #[test]
    fn detection_takes_commands_only() {
        use crate::protocols::Detection;
        for capture in requests() {
            assert_eq!(
                detect(capture.bytes),
                Detection::Yes {
                    request_dir: Direction::Egress
                },
                "{}",
                capture.name
            );
        }
        assert_eq!(detect(b"*2\r\n$3\r\nGE"), Detection::NeedMore);
        for other in [
            b"+OK\r\n".as_slice(),
            b"GET / HTTP/1.1\r\n",
            b"PING\r\n",
            b"*1\r\n$3\r\n\x00\x01\x02\r\n",
            b"\x00\x00\x00\x0f\x00\x12",
        ] {
            assert_eq!(detect(other), Detection::No, "{other:?}");
        }
    }
}
