use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// Both directions of one captured connection (testdata/README.md says how each was made).
struct Capture {
    name: &'static str,
    request: &'static [u8],
    response: &'static [u8],
    /// One line per request then per response, written by `describe`.
    golden: &'static [&'static str],
}

macro_rules! capture {
    ($name:literal, $golden:expr) => {
        Capture {
            name: $name,
            request: include_bytes!(concat!("testdata/", $name, "_request.bin")),
            response: include_bytes!(concat!("testdata/", $name, "_response.bin")),
            golden: $golden,
        }
    };
}

fn captures() -> Vec<Capture> {
    vec![
        capture!("go_produce_v8", &[
            "> 18 v0 #1 beyla-kv-go",
            "> 0 v8 #2 beyla-kv-go produce beyla-go Some(0) acks=-1 topics=1 txn=None",
            "> 0 v8 #3 beyla-kv-go produce beyla-go Some(0) acks=-1 topics=1 txn=None",
            "> 0 v8 #4 beyla-kv-go produce beyla-go Some(0) acks=-1 topics=1 txn=None",
            "< #1",
            "< #2 produce beyla-go Some(0) offset=Some(0) error=0",
            "< #3 produce beyla-go Some(0) offset=Some(1) error=0",
            "< #4 produce beyla-go Some(0) offset=Some(2) error=0",
        ]),
        capture!("go_fetch_v10", &[
            "> 2 v1 #1 beyla-kv-go",
            "> 2 v1 #2 beyla-kv-go",
            "> 2 v1 #3 beyla-kv-go",
            "> 2 v1 #4 beyla-kv-go",
            "> 18 v0 #5 beyla-kv-go",
            "> 1 v10 #6 beyla-kv-go fetch beyla-go Some(0) offset=Some(0) topics=1",
            "> 1 v10 #7 beyla-kv-go fetch beyla-go Some(0) offset=Some(3) topics=1",
            "< #1",
            "< #2",
            "< #3",
            "< #4",
            "< #5",
            "< #6 fetch beyla-go Some(0) records=Some(231) error=0",
            "< #7 fetch beyla-go Some(0) records=Some(0) error=0",
        ]),
        capture!("java_produce_v13", &[
            "> 18 v4 #4 beyla-kv-java",
            "> 22 v5 #5 beyla-kv-java",
            "> 3 v13 #6 beyla-kv-java",
            "> 22 v5 #7 beyla-kv-java",
            "> 0 v13 #8 beyla-kv-java produce id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) acks=-1 topics=1 txn=None",
            "> 0 v13 #9 beyla-kv-java produce id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) acks=-1 topics=1 txn=None",
            "> 0 v13 #10 beyla-kv-java produce id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) acks=-1 topics=1 txn=None",
            "< #4",
            "< #5",
            "< #6 metadata beyla-java=id:38fdbed6e62c4cd18e9cb2c37c7503f6",
            "< #7",
            "< #8 produce id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) offset=Some(0) error=0",
            "< #9 produce id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) offset=Some(1) error=0",
            "< #10 produce id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) offset=Some(2) error=0",
        ]),
        capture!("java_metadata_v13", &[
            "> 18 v4 #0 beyla-kv-java",
            "> 3 v13 #1 beyla-kv-java",
            "< #0",
            "< #1 metadata beyla-java=id:38fdbed6e62c4cd18e9cb2c37c7503f6",
        ]),
        capture!("java_fetch_v18", &[
            "> 18 v4 #4 beyla-kv-java",
            "> 2 v10 #3 beyla-kv-java",
            "> 1 v18 #5 beyla-kv-java fetch id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) offset=Some(0) topics=1",
            "> 1 v18 #6 beyla-kv-java fetch id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) offset=Some(3) topics=1",
            // An incremental fetch session: nothing changed, so no topic is named.
            "> 1 v18 #7 beyla-kv-java fetch - None offset=None topics=0",
            "< #4",
            "< #3",
            "< #5 fetch id:38fdbed6e62c4cd18e9cb2c37c7503f6 Some(0) records=Some(231) error=0",
            "< #6 fetch - None records=None error=0",
            "< #7 fetch - None records=None error=0",
        ]),
        capture!("py_produce_v9", &[
            "> 18 v4 #1 beyla-kv-python",
            "> 22 v4 #2 beyla-kv-python",
            "> 3 v13 #3 beyla-kv-python",
            "> 3 v13 #4 beyla-kv-python",
            "> 0 v9 #5 beyla-kv-python produce beyla-python Some(0) acks=-1 topics=1 txn=None",
            "> 0 v9 #6 beyla-kv-python produce beyla-python Some(0) acks=-1 topics=1 txn=None",
            "> 0 v9 #7 beyla-kv-python produce beyla-python Some(0) acks=-1 topics=1 txn=None",
            "< #1",
            "< #2",
            // Asked before the broker created the topic: no id yet.
            "< #3 metadata beyla-python=id:00000000000000000000000000000000",
            "< #4 metadata beyla-python=id:9439d8456a1e42be8b71e5bc7c98fb51",
            "< #5 produce beyla-python Some(0) offset=Some(0) error=0",
            "< #6 produce beyla-python Some(0) offset=Some(1) error=0",
            "< #7 produce beyla-python Some(0) offset=Some(2) error=0",
        ]),
        capture!("py_fetch_v12", &[
            "> 18 v4 #1 beyla-kv-python",
            "> 3 v13 #2 beyla-kv-python",
            "> 2 v10 #3 beyla-kv-python",
            "> 1 v12 #4 beyla-kv-python fetch beyla-python Some(0) offset=Some(0) topics=1",
            "< #1",
            "< #2 metadata beyla-python=id:9439d8456a1e42be8b71e5bc7c98fb51",
            "< #3",
            "< #4 fetch beyla-python Some(0) records=Some(231) error=0",
        ]),
        capture!("py_produce_too_large", &[
            "> 18 v4 #1 beyla-kv-errors",
            "> 3 v13 #2 beyla-kv-errors",
            "> 0 v9 #3 beyla-kv-errors produce beyla-small Some(0) acks=1 topics=1 txn=None",
            "< #1",
            "< #2 metadata beyla-small=id:7356444846c54ef0a62b2d3ded167074",
            "< #3 produce beyla-small Some(0) offset=Some(-1) error=10",
        ]),
        capture!("py_fetch_out_of_range", &[
            "> 18 v4 #1 beyla-kv-errors",
            "> 3 v13 #2 beyla-kv-errors",
            "> 1 v12 #3 beyla-kv-errors fetch beyla-python Some(0) offset=Some(1000000) topics=1",
            "> 2 v10 #4 beyla-kv-errors",
            "> 1 v12 #5 beyla-kv-errors fetch beyla-python Some(0) offset=Some(0) topics=1",
            "< #1",
            "< #2 metadata beyla-python=id:9439d8456a1e42be8b71e5bc7c98fb51",
            "< #3 fetch beyla-python Some(0) records=Some(0) error=1",
            "< #4",
            "< #5 fetch beyla-python Some(0) records=Some(231) error=0",
        ]),
    ]
}

fn messages(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize + SIZE_LEN;
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

fn topic(t: Option<Topic<'_>>) -> String {
    match t {
        None => "-".into(),
        Some(Topic::Name(n)) => n.into(),
        Some(Topic::Id(TopicId(id))) => format!(
            "id:{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// One line per request and per response of a captured connection.
fn describe(request: &[u8], response: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut asked = HashMap::new();
    for m in messages(request) {
        let Parse::Parsed(head) = parse_request_head(m) else {
            panic!("request head")
        };
        assert_eq!(head.message_len, m.len());
        asked.insert(head.correlation_id, (head.api_key, head.api_version));
        let mut line = format!(
            "> {} v{} #{} {}",
            head.api_key.0,
            head.api_version,
            head.correlation_id,
            head.client_id.unwrap_or("-")
        );
        if let Some(offset) = head.body_offset {
            let body = &m[offset..];
            match head.api_key {
                ApiKey::PRODUCE => {
                    let Parse::Parsed(p) = parse_produce_request(head.api_version, body) else {
                        panic!("produce")
                    };
                    line += &format!(
                        " produce {} {:?} acks={} topics={} txn={:?}",
                        topic(p.topic),
                        p.partition,
                        p.acks,
                        p.topic_count,
                        p.transactional_id
                    );
                }
                ApiKey::FETCH => {
                    let Parse::Parsed(f) = parse_fetch_request(head.api_version, body) else {
                        panic!("fetch")
                    };
                    line += &format!(
                        " fetch {} {:?} offset={:?} topics={}",
                        topic(f.topic),
                        f.partition,
                        f.fetch_offset,
                        f.topic_count
                    );
                }
                _ => {}
            }
        }
        out.push(line);
    }
    for m in messages(response) {
        let Parse::Parsed(head) = parse_response_head(m) else {
            panic!("response head")
        };
        let (api, version) = asked[&head.correlation_id];
        let mut line = format!("< #{}", head.correlation_id);
        let Parse::Parsed(body) = response_body(m, api, version) else {
            panic!("body")
        };
        match api {
            ApiKey::PRODUCE => {
                let Parse::Parsed(p) = parse_produce_response(version, body) else {
                    panic!("produce response")
                };
                line += &format!(
                    " produce {} {:?} offset={:?} error={}",
                    topic(p.topic),
                    p.partition,
                    p.base_offset,
                    p.error.0
                );
            }
            ApiKey::FETCH => {
                let Parse::Parsed(f) = parse_fetch_response(version, body) else {
                    panic!("fetch response")
                };
                line += &format!(
                    " fetch {} {:?} records={:?} error={}",
                    topic(f.topic),
                    f.partition,
                    f.records_len,
                    f.error.0
                );
            }
            ApiKey::METADATA => {
                let mut topics = Vec::new();
                let parsed = parse_metadata_topics(version, body, |t| {
                    topics.push(format!(
                        "{}={}",
                        t.name.unwrap_or("-"),
                        topic(t.id.map(Topic::Id))
                    ))
                });
                assert_eq!(parsed, Parse::Parsed(()));
                line += &format!(" metadata {}", topics.join(","));
            }
            _ => {}
        }
        out.push(line);
    }
    out
}

#[test]
fn captured_connections_parse_to_their_golden_lines() {
    for capture in captures() {
        assert_eq!(
            describe(capture.request, capture.response),
            capture.golden,
            "{}",
            capture.name
        );
    }
}

#[test]
fn error_codes_have_their_protocol_names() {
    assert_eq!(ErrorCode(10).name(), Some("MESSAGE_TOO_LARGE"));
    assert_eq!(ErrorCode(1).name(), Some("OFFSET_OUT_OF_RANGE"));
    assert_eq!(ErrorCode(3).name(), Some("UNKNOWN_TOPIC_OR_PARTITION"));
    assert_eq!(ErrorCode(0).name(), None);
    assert!(!ErrorCode::NONE.is_error());
}

/// Parses every cut-off prefix of every message: never a panic, never `Invalid`, and once
/// parsed, the same as the whole message gives.
#[test]
fn every_cut_off_prefix_needs_more_or_agrees() {
    for capture in captures() {
        let mut asked = HashMap::new();
        for m in messages(capture.request) {
            let whole = parse_request_head(m);
            let Parse::Parsed(head) = whole else {
                panic!("{}", capture.name)
            };
            asked.insert(head.correlation_id, (head.api_key, head.api_version));
            for cut in 0..m.len() {
                let part = &m[..cut];
                match parse_request_head(part) {
                    Parse::NeedMore => {}
                    parsed => assert_eq!(parsed, whole, "{} cut to {cut}", capture.name),
                }
                let Some(offset) = head.body_offset.filter(|&o| o <= cut) else {
                    continue;
                };
                let body = &part[offset..];
                let whole_body = &m[offset..];
                match head.api_key {
                    ApiKey::PRODUCE => match parse_produce_request(head.api_version, body) {
                        Parse::NeedMore => {}
                        p => assert_eq!(p, parse_produce_request(head.api_version, whole_body)),
                    },
                    ApiKey::FETCH => match parse_fetch_request(head.api_version, body) {
                        Parse::NeedMore => {}
                        f => assert_eq!(f, parse_fetch_request(head.api_version, whole_body)),
                    },
                    _ => {}
                }
            }
        }
        for m in messages(capture.response) {
            let Parse::Parsed(head) = parse_response_head(m) else {
                panic!("{}", capture.name)
            };
            let (api, version) = asked[&head.correlation_id];
            let Parse::Parsed(whole_body) = response_body(m, api, version) else {
                panic!()
            };
            for cut in 0..m.len() {
                let part = &m[..cut];
                assert!(!matches!(parse_response_head(part), Parse::Invalid(_)));
                let Parse::Parsed(body) = response_body(part, api, version) else {
                    continue;
                };
                match api {
                    ApiKey::PRODUCE => match parse_produce_response(version, body) {
                        Parse::NeedMore => {}
                        p => assert_eq!(p, parse_produce_response(version, whole_body)),
                    },
                    ApiKey::FETCH => match parse_fetch_response(version, body) {
                        Parse::NeedMore => {}
                        // A cut in later partitions' records keeps the first partition's fields.
                        Parse::Parsed(f) => {
                            let Parse::Parsed(w) = parse_fetch_response(version, whole_body) else {
                                panic!()
                            };
                            assert_eq!(
                                (f.topic, f.partition, f.records_len),
                                (w.topic, w.partition, w.records_len)
                            );
                        }
                        Parse::Invalid(reason) => panic!("{}: {reason:?} at {cut}", capture.name),
                    },
                    ApiKey::METADATA => {
                        let parsed = parse_metadata_topics(version, body, |_| {});
                        assert!(matches!(parsed, Parse::NeedMore | Parse::Parsed(())));
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn implausible_heads_are_refused() {
    let head = |size: i32, api: i16, version: i16, correlation: i32| {
        let mut m = Vec::new();
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&api.to_be_bytes());
        m.extend_from_slice(&version.to_be_bytes());
        m.extend_from_slice(&correlation.to_be_bytes());
        m.extend_from_slice(&(-1i16).to_be_bytes());
        m
    };
    assert!(matches!(
        parse_request_head(&head(10, 0, 8, 1)),
        Parse::Parsed(_)
    ));
    assert_eq!(
        parse_request_head(&head(-5, 0, 9, 1)),
        Parse::Invalid(InvalidReason::BadSize)
    );
    assert_eq!(
        parse_request_head(&head(3, 0, 9, 1)),
        Parse::Invalid(InvalidReason::BadSize)
    );
    let too_big = i32::try_from(MAX_MESSAGE_LEN + 1).unwrap();
    assert_eq!(
        parse_request_head(&head(too_big, 0, 9, 1)),
        Parse::Invalid(InvalidReason::BadSize)
    );
    assert_eq!(
        parse_request_head(&head(10, 93, 0, 1)),
        Parse::Invalid(InvalidReason::UnknownApi)
    );
    assert_eq!(
        parse_request_head(&head(10, 0, -1, 1)),
        Parse::Invalid(InvalidReason::UnknownApi)
    );
    assert_eq!(
        parse_request_head(&head(10, 0, 9, -7)),
        Parse::Invalid(InvalidReason::BadCorrelationId)
    );
    // HTTP and RESP do not pass for Kafka.
    assert!(matches!(
        parse_request_head(b"GET / HTTP/1.1\r\n"),
        Parse::Invalid(_)
    ));
    assert!(matches!(
        parse_request_head(b"*1\r\n$4\r\nPING\r\n"),
        Parse::Invalid(_)
    ));
    // A client id longer than the message.
    let mut m = head(10, 0, 9, 1);
    m.truncate(12);
    m.extend_from_slice(&40i16.to_be_bytes());
    m.extend_from_slice(&[b'a'; 40]);
    assert_eq!(
        parse_request_head(&m),
        Parse::Invalid(InvalidReason::Overrun)
    );
    // A topic count whose varint never ends, after the 25 fixed bytes of a Fetch v12.
    assert_eq!(
        parse_fetch_request(
            12,
            &[0; 25].iter().copied().chain([0xff; 6]).collect::<Vec<_>>()
        ),
        Parse::Invalid(InvalidReason::BadVarint)
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), version in 0i16..20) {
        let _ = parse_request_head(&bytes);
        let _ = parse_response_head(&bytes);
        for api in [ApiKey::PRODUCE, ApiKey::FETCH, ApiKey::METADATA, ApiKey::API_VERSIONS] {
            let _ = response_body(&bytes, api, version);
        }
        let _ = parse_produce_request(version, &bytes);
        let _ = parse_produce_response(version, &bytes);
        let _ = parse_fetch_request(version, &bytes);
        let _ = parse_fetch_response(version, &bytes);
        let _ = parse_metadata_topics(version, &bytes, |_| {});
    }
}

// ---------------------------------------------------------------------------------------
// The stitcher, fed captured connections, and detection.

mod stitching {
    use super::super::stitch::{KafkaRecord, KafkaStitcher};
    use super::super::KAFKA;
    use super::{captures, messages, parse_request_head, Parse};
    use crate::model::{DataChunk, Direction, KafkaOperationKind, Origin};
    use crate::protocols::testing::{self, Recorder};
    use crate::protocols::{Anomaly, Detection, FirstBytes, Protocol, Stitch};

    fn chunk(direction: Direction, data: &[u8], moved: u64, clock: u64) -> DataChunk<'_> {
        testing::chunk(
            direction,
            Origin::Connect,
            (40000, 9092),
            data,
            moved,
            clock,
        )
    }

    /// Replays a capture as a client sees it: each request, then its response (the responses
    /// come in request order), each in pieces of `step` bytes.
    fn replay(name: &str, step: usize) -> Recorder<KafkaRecord> {
        let capture = captures()
            .into_iter()
            .find(|c| c.name == name)
            .expect("capture");
        let mut stitcher = KafkaStitcher::new(Direction::Egress);
        let mut hooks = Recorder::default();
        let mut clock = 0;
        let requests = messages(capture.request);
        let responses = messages(capture.response);
        for (request, response) in requests.iter().zip(&responses) {
            for (direction, message) in
                [(Direction::Egress, request), (Direction::Ingress, response)]
            {
                for piece in message.chunks(step) {
                    clock += 10;
                    stitcher.feed(
                        &chunk(direction, piece, piece.len() as u64, clock),
                        &mut hooks,
                    );
                }
            }
        }
        stitcher.close(&mut hooks);
        hooks
    }

    /// Each record as `kind topic partition client offset error`.
    fn described(hooks: &Recorder<KafkaRecord>) -> Vec<String> {
        hooks
            .records
            .iter()
            .map(|r| {
                let op = &r.operation;
                format!(
                    "{:?} {} {:?} {} {:?} {}",
                    op.kind,
                    op.topic.as_deref().unwrap_or("-"),
                    op.partition,
                    op.client_id.as_deref().unwrap_or("-"),
                    op.offset,
                    op.error.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    fn records_of(name: &str) -> Vec<String> {
        let whole = replay(name, usize::MAX);
        assert_eq!(whole.anomalies, vec![], "{name}");
        for step in [1, 7, 100] {
            let pieces = replay(name, step);
            assert_eq!(
                described(&pieces),
                described(&whole),
                "{name} in pieces of {step}"
            );
        }
        described(&whole)
    }

    #[test]
    fn every_produce_is_a_record_with_its_topic_and_partition() {
        assert_eq!(
            records_of("go_produce_v8"),
            vec!["Produce beyla-go Some(0) beyla-kv-go None -"; 3]
        );
        assert_eq!(
            records_of("py_produce_v9"),
            vec!["Produce beyla-python Some(0) beyla-kv-python None -"; 3]
        );
        // v13 names the topic by id; the Metadata response on the same connection names it.
        assert_eq!(
            records_of("java_produce_v13"),
            vec!["Produce beyla-java Some(0) beyla-kv-java None -"; 3]
        );
        assert_eq!(
            records_of("py_produce_too_large"),
            ["Produce beyla-small Some(0) beyla-kv-errors None MESSAGE_TOO_LARGE"]
        );
    }

    #[test]
    fn a_fetch_is_a_record_when_it_returned_records_or_an_error() {
        // The second fetch of each is a long poll that timed out empty: no record.
        let go = replay("go_fetch_v10", usize::MAX);
        assert_eq!(
            described(&go),
            ["Fetch beyla-go Some(0) beyla-kv-go Some(0) -"]
        );
        assert_eq!(go.abandoned, 1);
        assert_eq!(
            records_of("py_fetch_out_of_range"),
            [
                "Fetch beyla-python Some(0) beyla-kv-errors Some(1000000) OFFSET_OUT_OF_RANGE",
                "Fetch beyla-python Some(0) beyla-kv-errors Some(0) -",
            ]
        );
        // The Java consumer asks for metadata on another connection (the bootstrap one).
        let _ = replay("java_metadata_v13", usize::MAX);
        assert_eq!(
            records_of("java_fetch_v18"),
            ["Fetch beyla-java Some(0) beyla-kv-java Some(0) -"]
        );
    }

    #[test]
    fn record_bytes_the_probe_did_not_copy_are_counted_not_needed() {
        let capture = captures()
            .into_iter()
            .find(|c| c.name == "py_produce_v9")
            .unwrap();
        let requests = messages(capture.request);
        let responses = messages(capture.response);
        let mut stitcher = KafkaStitcher::new(Direction::Egress);
        let mut hooks = Recorder::default();
        for (i, (request, response)) in requests.iter().zip(&responses).enumerate() {
            // Only the first 60 bytes of each request were copied.
            let copied = &request[..request.len().min(60)];
            let clock = 100 * i as u64;
            stitcher.feed(
                &chunk(Direction::Egress, copied, request.len() as u64, clock),
                &mut hooks,
            );
            stitcher.feed(
                &chunk(
                    Direction::Ingress,
                    response,
                    response.len() as u64,
                    clock + 50,
                ),
                &mut hooks,
            );
        }
        assert_eq!(hooks.anomalies, vec![]);
        assert_eq!(
            described(&hooks),
            vec!["Produce beyla-python Some(0) beyla-kv-python None -"; 3]
        );
    }

    #[test]
    fn a_produce_without_acks_ends_with_its_request() {
        let capture = captures()
            .into_iter()
            .find(|c| c.name == "py_produce_v9")
            .unwrap();
        let produce = messages(capture.request)[4].to_vec();
        let mut unacked = produce.clone();
        // Produce v9 body: a null transactional id (compact: one 0 byte), then acks.
        let Parse::Parsed(head) = parse_request_head(&produce) else {
            panic!()
        };
        let acks = head.body_offset.unwrap() + 1;
        unacked[acks..acks + 2].copy_from_slice(&0i16.to_be_bytes());
        let mut stitcher = KafkaStitcher::new(Direction::Egress);
        let mut hooks = Recorder::default();
        stitcher.feed(
            &chunk(Direction::Egress, &unacked, unacked.len() as u64, 10),
            &mut hooks,
        );
        assert_eq!(hooks.records.len(), 1);
        assert_eq!(hooks.records[0].operation.kind, KafkaOperationKind::Produce);
        assert_eq!(hooks.records[0].end_mono_ns, 15);
        stitcher.close(&mut hooks);
        assert_eq!(hooks.anomalies, vec![]);
    }

    #[test]
    fn a_bad_size_or_a_gap_over_one_loses_step_and_orphans_are_counted() {
        let mut stitcher = KafkaStitcher::new(Direction::Egress);
        let mut hooks = Recorder::default();
        stitcher.feed(
            &chunk(
                Direction::Ingress,
                &[0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0],
                13,
                1,
            ),
            &mut hooks,
        );
        assert_eq!(hooks.anomalies, vec![Anomaly::OrphanResponse]);
        stitcher.feed(
            &chunk(Direction::Egress, &[0xff, 0xff, 0xff, 0xff], 4, 2),
            &mut hooks,
        );
        assert_eq!(hooks.anomalies[1], Anomaly::Invalid("bad_size"));
        stitcher.feed(&chunk(Direction::Egress, &[0, 0], 40, 3), &mut hooks);
        assert_eq!(hooks.anomalies[2], Anomaly::Lost { bytes: 38 });
    }

    fn detect(data: &[u8]) -> Detection {
        KAFKA.detect(&FirstBytes {
            data,
            direction: Direction::Egress,
            kind: None,
            local_port: 40000,
            remote_port: 9092,
        })
    }

    #[test]
    fn detection_takes_request_heads_only() {
        for capture in captures() {
            assert_eq!(
                detect(capture.request),
                Detection::Yes {
                    request_dir: Direction::Egress
                },
                "{}",
                capture.name
            );
            let first = messages(capture.request)[0];
            for cut in 0..14.min(first.len()) {
                assert_eq!(
                    detect(&first[..cut]),
                    Detection::NeedMore,
                    "{} cut {cut}",
                    capture.name
                );
            }
        }
        assert_eq!(detect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Detection::No);
        assert_eq!(detect(b"*1\r\n$4\r\nPING\r\n"), Detection::No);
        assert_eq!(
            detect(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Detection::No
        );
    }
}
