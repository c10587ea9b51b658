use super::hpack::{
    huffman_code, huffman_decode, read_int, Decoder, HeaderField, HeaderList, HpackError,
    HuffmanError, Lookup, Text, HUFFMAN_CODE_LENGTHS, MAX_TABLE_SIZE,
};
use super::stitch::{Exchange, GrpcCall, Stitcher, MAX_STREAMS};
use super::*;
use crate::model::{Direction, HttpVersion, Origin, ShortString, Tid};
use crate::protocols::testing::{chunk, Recorder};
use crate::protocols::{Anomaly, Record, Unanswered};
use proptest::prelude::*;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

// ---------------------------------------------------------------------------------------
// An encoder for tests: HPACK literals (optionally Huffman-coded, optionally indexed) and
// a frame writer.

fn huffman_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in s {
        let (code, len) = huffman_code(u16::from(b));
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
    out
}

fn encode_int(out: &mut Vec<u8>, first: u8, prefix: u8, mut value: u64) {
    let max = (1u64 << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

fn encode_string(out: &mut Vec<u8>, s: &[u8], huffman: bool) {
    if huffman {
        let h = huffman_encode(s);
        encode_int(out, 0x80, 7, h.len() as u64);
        out.extend_from_slice(&h);
    } else {
        encode_int(out, 0, 7, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// How a test encoder writes each field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rep {
    /// Literal without indexing, new name.
    Plain,
    /// Literal with incremental indexing, new name.
    Indexed,
}

fn encode_block(fields: &[(&str, &str)], rep: Rep, huffman: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(if rep == Rep::Indexed { 0x40 } else { 0x00 });
        encode_string(&mut out, n.as_bytes(), huffman);
        encode_string(&mut out, v.as_bytes(), huffman);
    }
    out
}

/// Whether the bytes start either side of an HTTP/2 connection.
fn h2(prefix: &[u8]) -> bool {
    detect(prefix).is_some()
}

fn frame(kind: FrameType, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        length: payload.len() as u32,
        kind,
        flags,
        stream_id,
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn headers(stream_id: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let f = flags::END_HEADERS | if end_stream { flags::END_STREAM } else { 0 };
    frame(FrameType::Headers, f, stream_id, block)
}

fn data(stream_id: u32, body: &[u8], end_stream: bool) -> Vec<u8> {
    let f = if end_stream { flags::END_STREAM } else { 0 };
    frame(FrameType::Data, f, stream_id, body)
}

fn settings_frame() -> Vec<u8> {
    frame(FrameType::Settings, 0, 0, &[0, 3, 0, 0, 0, 100])
}

/// An HPACK encoder with a real dynamic table: fields already in a table are sent indexed,
/// others as literals with incremental indexing (name indexed when the name is known).
struct TestEncoder {
    table: std::collections::VecDeque<(String, String)>,
    size: usize,
    max: usize,
    huffman: bool,
}

impl TestEncoder {
    fn new(huffman: bool) -> Self {
        Self {
            table: Default::default(),
            size: 0,
            max: 4096,
            huffman,
        }
    }

    fn find(&self, name: &str, value: &str) -> (Option<usize>, Option<usize>) {
        let all = hpack::STATIC_TABLE
            .iter()
            .map(|(n, v)| (*n, *v))
            .chain(self.table.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let (mut exact, mut named) = (None, None);
        for (i, (n, v)) in all.enumerate() {
            if n == name {
                named.get_or_insert(i + 1);
                if v == value {
                    exact.get_or_insert(i + 1);
                }
            }
        }
        (exact, named)
    }

    fn encode(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(n, v) in fields {
            match self.find(n, v) {
                (Some(i), _) => encode_int(&mut out, 0x80, 7, i as u64),
                (None, named) => {
                    encode_int(&mut out, 0x40, 6, named.unwrap_or(0) as u64);
                    if named.is_none() {
                        encode_string(&mut out, n.as_bytes(), self.huffman);
                    }
                    encode_string(&mut out, v.as_bytes(), self.huffman);
                    let size = n.len() + v.len() + 32;
                    while self.size + size > self.max {
                        match self.table.pop_back() {
                            Some((a, b)) => self.size -= a.len() + b.len() + 32,
                            None => break,
                        }
                    }
                    if size <= self.max {
                        self.table.push_front((n.to_string(), v.to_string()));
                        self.size += size;
                    }
                }
            }
        }
        out
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// A connection driven by tests.

const IN: Direction = Direction::Ingress;
const OUT: Direction = Direction::Egress;

struct Conn {
    stitcher: Stitcher,
    hooks: Recorder<Exchange>,
    clock: u64,
    /// Bytes the probe copies per syscall.
    capture: usize,
}

impl Conn {
    /// The traced process is the server: requests come in.
    fn server() -> Self {
        Self::new(IN)
    }

    fn new(request_dir: Direction) -> Self {
        Self {
            stitcher: Stitcher::new(request_dir),
            hooks: Recorder::default(),
            clock: 0,
            capture: usize::MAX,
        }
    }

    fn send(&mut self, direction: Direction, bytes: &[u8]) {
        self.clock += 10;
        let captured = &bytes[..bytes.len().min(self.capture)];
        let chunk = chunk(
            direction,
            Origin::Accept,
            (80, 5000),
            captured,
            bytes.len() as u64,
            self.clock,
        );
        self.stitcher.feed(&chunk, &mut self.hooks);
    }

    fn summary(&self) -> Vec<Summary> {
        self.hooks.records.iter().map(summary).collect()
    }
}

/// (stream, method, path, status, gRPC (service, method, status))
type Summary = (
    u32,
    Option<String>,
    Option<String>,
    Option<u16>,
    Option<(Option<String>, Option<String>, Option<u32>)>,
);

fn summary(e: &Exchange) -> Summary {
    (
        e.stream_id,
        e.method.clone(),
        e.path.clone(),
        e.status,
        e.grpc
            .as_ref()
            .map(|g: &GrpcCall| (g.service.clone(), g.method.clone(), g.status_code)),
    )
}

fn http(id: u32, method: &str, path: &str, status: u16) -> Summary {
    (
        id,
        Some(method.into()),
        Some(path.into()),
        Some(status),
        None,
    )
}

fn grpc_call(id: u32, service: &str, method: &str, code: u32) -> Summary {
    (
        id,
        Some("POST".into()),
        Some(format!("/{service}/{method}")),
        Some(200),
        Some((Some(service.into()), Some(method.into()), Some(code))),
    )
}

struct Capture {
    name: &'static str,
    client: &'static [u8],
    server: &'static [u8],
    golden: Vec<Summary>,
    traceparents: Vec<Option<String>>,
}

fn captures() -> Vec<Capture> {
    let tp = Some(TRACEPARENT.to_string());
    vec![
        Capture {
            name: "curl_get",
            client: include_bytes!("testdata/curl_get_client.bin"),
            server: include_bytes!("testdata/curl_get_server.bin"),
            golden: vec![http(1, "GET", "/hello", 200)],
            traceparents: vec![tp.clone()],
        },
        Capture {
            name: "curl_post",
            client: include_bytes!("testdata/curl_post_client.bin"),
            server: include_bytes!("testdata/curl_post_server.bin"),
            golden: vec![http(1, "POST", "/echo", 201)],
            traceparents: vec![None],
        },
        Capture {
            name: "go_go",
            client: include_bytes!("testdata/go_go_client.bin"),
            server: include_bytes!("testdata/go_go_server.bin"),
            // Streams 3, 5 and 7 were sent concurrently; answers came back out of order.
            golden: vec![
                http(1, "GET", "/hello", 200),
                http(5, "GET", "/hello", 200),
                http(3, "GET", "/missing", 404),
                http(7, "GET", "/hello", 200),
                http(9, "POST", "/echo", 201),
            ],
            traceparents: vec![None; 5],
        },
        Capture {
            name: "py_grpc",
            client: include_bytes!("testdata/py_grpc_client.bin"),
            server: include_bytes!("testdata/py_grpc_server.bin"),
            golden: vec![
                grpc_call(1, "demo.v1.Greeter", "SayHello", 0),
                grpc_call(3, "demo.v1.Greeter", "StreamHellos", 0),
                grpc_call(5, "demo.v1.Greeter", "SayHello", 5),
                grpc_call(7, "demo.v1.Greeter", "SayHello", 0),
            ],
            traceparents: vec![tp, None, None, None],
        },
    ]
}

/// Feeds a capture as the server (or the client) saw it, each direction cut at the given
/// points into syscalls, all requests before all responses.
fn replay(cap: &Capture, server_side: bool, client_cuts: &[usize], server_cuts: &[usize]) -> Conn {
    let (req_dir, resp_dir) = if server_side { (IN, OUT) } else { (OUT, IN) };
    let mut c = Conn::new(req_dir);
    for (bytes, cuts, dir) in [
        (cap.client, client_cuts, req_dir),
        (cap.server, server_cuts, resp_dir),
    ] {
        let mut at = 0;
        for &cut in cuts.iter().chain([bytes.len()].iter()) {
            let cut = cut.clamp(at, bytes.len());
            c.send(dir, &bytes[at..cut]);
            at = cut;
        }
    }
    c
}

#[test]
fn captures_give_golden_exchanges_on_both_sides() {
    for cap in captures() {
        for server_side in [true, false] {
            let c = replay(&cap, server_side, &[], &[]);
            assert_eq!(c.summary(), cap.golden, "{}", cap.name);
            assert_eq!(c.hooks.traceparents, cap.traceparents, "{}", cap.name);
            assert!(
                c.hooks.anomalies.is_empty(),
                "{}: {:?}",
                cap.name,
                c.hooks.anomalies
            );
            assert_eq!(c.stitcher.open_streams(), 0);
        }
    }
}

/// The body bytes each way (DATA payloads), the `:authority` and `user-agent`
/// of curl's captured POST, the same seen from either end.
#[test]
fn exchanges_carry_authority_user_agent_and_body_sizes() {
    let cap = captures()
        .into_iter()
        .find(|c| c.name == "curl_post")
        .expect("the curl_post capture");
    for server_side in [true, false] {
        let c = replay(&cap, server_side, &[], &[]);
        let e = &c.hooks.records[0];
        let neutral = e.clone().into_exchange().expect("a decodable exchange");
        let http = neutral.operation.http().expect("an HTTP exchange");
        assert_eq!(http.version, HttpVersion::Http2);
        assert_eq!(http.host, e.authority.as_deref().map(ShortString::from));
        assert!(
            http.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("curl/")),
            "{http:?}"
        );
        let data = |bytes: &[u8]| -> u64 {
            frames_of(bytes)
                .iter()
                .filter(|(_, h)| h.kind == FrameType::Data)
                .map(|(_, h)| u64::from(h.length))
                .sum()
        };
        assert!(http.request_body_bytes > 0);
        assert_eq!(
            (http.request_body_bytes, http.response_body_bytes),
            (data(cap.client), data(cap.server))
        );
    }
}

#[test]
fn captures_give_the_same_result_at_every_split_point() {
    for cap in captures() {
        for cut in 0..=cap.client.len() {
            let c = replay(&cap, true, &[cut], &[]);
            assert_eq!(c.summary(), cap.golden, "{} client cut {cut}", cap.name);
            assert!(
                c.hooks.anomalies.is_empty(),
                "{} client cut {cut}",
                cap.name
            );
        }
        for cut in 0..=cap.server.len() {
            let c = replay(&cap, true, &[], &[cut]);
            assert_eq!(c.summary(), cap.golden, "{} server cut {cut}", cap.name);
            assert!(
                c.hooks.anomalies.is_empty(),
                "{} server cut {cut}",
                cap.name
            );
        }
    }
}

#[test]
fn captures_byte_by_byte_give_prefixes_of_the_golden_result() {
    for cap in captures() {
        let mut c = Conn::server();
        for b in cap.client.chunks(1) {
            c.send(IN, b);
        }
        assert!(c.hooks.records.is_empty());
        for (i, b) in cap.server.chunks(1).enumerate() {
            c.send(OUT, b);
            let got = c.summary();
            assert_eq!(got[..], cap.golden[..got.len()], "{} at {i}", cap.name);
        }
        assert_eq!(c.summary(), cap.golden, "{}", cap.name);
        assert!(c.hooks.anomalies.is_empty());
    }
}

/// The frames of one direction's bytes, with their offsets (the preface skipped).
fn frames_of(bytes: &[u8]) -> Vec<(usize, FrameHeader)> {
    let mut at = if bytes.starts_with(PREFACE) {
        PREFACE.len()
    } else {
        0
    };
    let mut out = Vec::new();
    while at < bytes.len() {
        match parse_frame(&bytes[at..]) {
            Parse::Parsed(f) => {
                out.push((at, f.header));
                at += f.header.frame_len();
            }
            other => panic!("at {at}: {other:?}"),
        }
    }
    out
}

#[test]
fn every_prefix_of_every_captured_frame_needs_more() {
    for cap in captures() {
        for bytes in [cap.client, cap.server] {
            for (at, header) in frames_of(bytes) {
                let whole = &bytes[at..at + header.frame_len()];
                for cut in 0..whole.len() {
                    assert_eq!(parse_frame(&whole[..cut]), Parse::NeedMore, "{}", cap.name);
                }
                match parse_frame(whole) {
                    Parse::Parsed(f) => {
                        assert_eq!(f.header, header);
                        assert_eq!(f.payload, &whole[FRAME_HEADER_LEN..]);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }
}

#[test]
fn captured_frames_are_what_the_clients_and_servers_sent() {
    let caps = captures();
    let kinds = |b: &[u8]| -> Vec<(FrameType, u32)> {
        frames_of(b)
            .into_iter()
            .map(|(_, h)| (h.kind, h.stream_id))
            .collect()
    };
    // curl: SETTINGS, WINDOW_UPDATE, then HEADERS on stream 1 (and a SETTINGS ACK).
    let curl = kinds(caps[0].client);
    assert_eq!(curl[0], (FrameType::Settings, 0));
    assert!(curl.contains(&(FrameType::Headers, 1)));
    // Go's server opens with SETTINGS; every server's first bytes are detected.
    for cap in &caps {
        assert_eq!(
            detect(cap.client),
            Some(H2Start::ClientPreface),
            "{}",
            cap.name
        );
        assert_eq!(
            detect(cap.server),
            Some(H2Start::ServerSettings),
            "{}",
            cap.name
        );
    }
    // gRPC: the server-streaming call sends three DATA frames, then trailers.
    let grpc = kinds(caps[3].server);
    let on3: Vec<_> = grpc.iter().filter(|(_, s)| *s == 3).collect();
    assert_eq!(
        on3,
        vec![
            &(FrameType::Headers, 3),
            &(FrameType::Data, 3),
            &(FrameType::Data, 3),
            &(FrameType::Data, 3),
            &(FrameType::Headers, 3)
        ]
    );
}

#[test]
fn detection() {
    assert_eq!(detect(PREFACE), Some(H2Start::ClientPreface));
    assert_eq!(detect(&PREFACE[..6]), Some(H2Start::ClientPreface));
    assert_eq!(detect(b"PRI"), None);
    assert_eq!(detect(&settings_frame()), Some(H2Start::ServerSettings));
    assert!(h2(&frame(FrameType::Settings, 0, 0, &[])));
    // A SETTINGS ACK, or anything else first, is not a connection's start.
    assert!(!h2(&frame(FrameType::Settings, flags::ACK, 0, &[])));
    assert!(!h2(&headers(1, &[0x82], true)));
    assert!(!h2(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!h2(b"HTTP/1.1 200 OK\r\n"));
    assert!(!h2(&[0x16, 3, 1, 0, 0xa5, 1, 0, 0, 0xa1]));
    // Too many settings for a first frame.
    assert!(!h2(&frame(FrameType::Settings, 0, 0, &[0; 6 * 13])));
}

#[test]
fn frame_header_checks() {
    let bad = |kind, flags, stream, len: usize| {
        parse_frame_header(&frame(kind, flags, stream, &vec![0; len]))
    };
    use InvalidReason::*;
    assert_eq!(bad(FrameType::Data, 0, 0, 1), Parse::Invalid(BadStreamId));
    assert_eq!(
        bad(FrameType::Headers, 0, 0, 1),
        Parse::Invalid(BadStreamId)
    );
    assert_eq!(
        bad(FrameType::Settings, 0, 1, 0),
        Parse::Invalid(BadStreamId)
    );
    assert_eq!(bad(FrameType::Settings, 0, 0, 5), Parse::Invalid(BadLength));
    assert_eq!(
        bad(FrameType::Settings, flags::ACK, 0, 6),
        Parse::Invalid(BadLength)
    );
    assert_eq!(bad(FrameType::Ping, 0, 0, 7), Parse::Invalid(BadLength));
    assert_eq!(
        bad(FrameType::RstStream, 0, 1, 5),
        Parse::Invalid(BadLength)
    );
    assert_eq!(bad(FrameType::GoAway, 0, 0, 7), Parse::Invalid(BadLength));
    assert_eq!(bad(FrameType::Priority, 0, 1, 4), Parse::Invalid(BadLength));
    assert_eq!(
        bad(FrameType::Headers, flags::PRIORITY, 1, 4),
        Parse::Invalid(BadLength)
    );
    assert!(matches!(
        bad(FrameType::Unknown(0x42), 0xff, 0, 3),
        Parse::Parsed(_)
    ));
    // Padding longer than the payload.
    assert_eq!(
        parse_frame(&frame(FrameType::Data, flags::PADDED, 1, &[5, 1, 2])),
        Parse::Invalid(BadPadding)
    );
    // The reserved bit is dropped.
    let mut f = frame(FrameType::Data, 0, 3, b"x");
    f[5] |= 0x80;
    assert!(matches!(parse_frame(&f), Parse::Parsed(f) if f.header.stream_id == 3));
}

#[test]
fn frame_accessors() {
    let mut p = vec![3u8];
    p.extend_from_slice(&[0x80, 0, 0, 1, 16]); // exclusive dependency on 1, weight
    p.extend_from_slice(&[0x82, 0x84]);
    p.extend_from_slice(&[0, 0, 0]);
    let bytes = frame(
        FrameType::Headers,
        flags::PADDED | flags::PRIORITY | flags::END_HEADERS,
        5,
        &p,
    );
    let Parse::Parsed(f) = parse_frame(&bytes) else {
        panic!()
    };
    assert_eq!(f.header_block().unwrap().fragment, &[0x82, 0x84]);
    let bytes = frame(
        FrameType::PushPromise,
        flags::END_HEADERS,
        1,
        &[0, 0, 0, 2, 0x82],
    );
    let Parse::Parsed(f) = parse_frame(&bytes) else {
        panic!()
    };
    let hb = f.header_block().unwrap();
    assert_eq!(
        (hb.fragment, hb.promised_stream_id),
        (&[0x82u8][..], Some(2))
    );
    let bytes = frame(FrameType::GoAway, 0, 0, &[0, 0, 0, 7, 0, 0, 0, 2, b'x']);
    let Parse::Parsed(f) = parse_frame(&bytes) else {
        panic!()
    };
    assert_eq!(
        f.goaway(),
        Some(GoAway {
            last_stream_id: 7,
            error_code: 2
        })
    );
    let bytes = frame(FrameType::Data, flags::PADDED, 1, &[2, b'h', b'i', 0, 0]);
    let Parse::Parsed(f) = parse_frame(&bytes) else {
        panic!()
    };
    assert_eq!(f.data(), Some(&b"hi"[..]));
    let bytes = settings_frame();
    let Parse::Parsed(f) = parse_frame(&bytes) else {
        panic!()
    };
    assert_eq!(f.settings().collect::<Vec<_>>(), vec![(3, 100)]);
}

// ---------------------------------------------------------------------------------------
// HPACK: RFC 7541 Appendix C.

fn fields(list: &HeaderList) -> Vec<(String, String)> {
    list.fields
        .iter()
        .map(|f| {
            (
                f.name.as_str().unwrap_or("?").to_string(),
                f.value.as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn rfc7541_c1_integers() {
    let mut pos = 0;
    assert_eq!(read_int(&[0x0a], &mut pos, 5), Ok(10));
    pos = 0;
    assert_eq!(read_int(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Ok(1337));
    assert_eq!(pos, 3);
    pos = 0;
    assert_eq!(read_int(&[0x2a], &mut pos, 8), Ok(42));
    for v in [0u64, 30, 31, 127, 128, 1337, 65535, u32::MAX as u64] {
        for prefix in 1..=8 {
            let mut out = Vec::new();
            encode_int(&mut out, 0, prefix, v);
            let mut pos = 0;
            assert_eq!(read_int(&out, &mut pos, prefix), Ok(v));
            assert_eq!(pos, out.len());
            for cut in 0..out.len() {
                let mut pos = 0;
                assert_eq!(
                    read_int(&out[..cut], &mut pos, prefix),
                    Err(HpackError::Truncated)
                );
            }
        }
    }
    let mut pos = 0;
    assert_eq!(
        read_int(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos, 5),
        Err(HpackError::IntegerOverflow)
    );
}

#[test]
fn rfc7541_c2_literal_and_indexed_fields() {
    let mut d = Decoder::new();
    let l = d
        .decode(&hex(
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        ))
        .unwrap();
    assert_eq!(fields(&l), pairs(&[("custom-key", "custom-header")]));
    assert_eq!((d.table_len(), d.table_size()), (1, 55));

    let mut d = Decoder::new();
    let l = d
        .decode(&hex("040c 2f73 616d 706c 652f 7061 7468"))
        .unwrap();
    assert_eq!(fields(&l), pairs(&[(":path", "/sample/path")]));
    assert_eq!(d.table_len(), 0);

    let mut d = Decoder::new();
    let l = d
        .decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
        .unwrap();
    assert_eq!(fields(&l), pairs(&[("password", "secret")]));
    assert!(l.fields[0].never_indexed);
    assert_eq!(d.table_len(), 0);

    let l = Decoder::new().decode(&hex("82")).unwrap();
    assert_eq!(fields(&l), pairs(&[(":method", "GET")]));
}

fn rfc_requests(blocks: [&str; 3]) {
    let mut d = Decoder::new();
    let l = d.decode(&hex(blocks[0])).unwrap();
    assert_eq!(
        fields(&l),
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com")
        ])
    );
    assert_eq!(d.table_size(), 57);
    let l = d.decode(&hex(blocks[1])).unwrap();
    assert_eq!(
        fields(&l),
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache")
        ])
    );
    assert_eq!(d.table_size(), 110);
    let l = d.decode(&hex(blocks[2])).unwrap();
    assert_eq!(
        fields(&l),
        pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value")
        ])
    );
    assert_eq!((d.table_len(), d.table_size()), (3, 164));
}

#[test]
fn rfc7541_c3_requests_without_huffman() {
    rfc_requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn rfc7541_c4_requests_with_huffman() {
    rfc_requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

fn rfc_responses(blocks: [&str; 3]) {
    // The examples' encoder uses a 256-byte table, so they evict.
    let mut d = Decoder::with_table_size(256);
    let l = d.decode(&hex(blocks[0])).unwrap();
    let first = [
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ];
    assert_eq!(fields(&l), pairs(&first));
    assert_eq!((d.table_len(), d.table_size()), (4, 222));
    let l = d.decode(&hex(blocks[1])).unwrap();
    let mut second = first;
    second[0] = (":status", "307");
    assert_eq!(fields(&l), pairs(&second));
    // ":status: 302" was evicted to make room for ":status: 307".
    assert_eq!((d.table_len(), d.table_size()), (4, 222));
    let l = d.decode(&hex(blocks[2])).unwrap();
    assert_eq!(
        fields(&l),
        pairs(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
            )
        ])
    );
    assert_eq!((d.table_len(), d.table_size()), (3, 215));
}

#[test]
fn rfc7541_c5_responses_without_huffman_evict() {
    rfc_responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

#[test]
fn rfc7541_c6_responses_with_huffman_evict() {
    rfc_responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

// ---------------------------------------------------------------------------------------
// Huffman.

#[test]
fn huffman_code_is_the_rfc_code() {
    // A few codes as RFC 7541 Appendix B lists them.
    assert_eq!(huffman_code(b'0' as u16), (0x0, 5));
    assert_eq!(huffman_code(b'a' as u16), (0x3, 5));
    assert_eq!(huffman_code(b' ' as u16), (0x14, 6));
    assert_eq!(huffman_code(b':' as u16), (0x5c, 7));
    assert_eq!(huffman_code(b'&' as u16), (0xf8, 8));
    assert_eq!(huffman_code(0), (0x1ff8, 13));
    assert_eq!(huffman_code(255), (0x3ffffee, 26));
    assert_eq!(huffman_code(256), (0x3fffffff, 30));
    // A complete prefix code: the Kraft sum is exactly 1.
    let kraft: u64 = HUFFMAN_CODE_LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
    assert_eq!(kraft, 1 << 30);
}

#[test]
fn huffman_round_trips_every_byte() {
    let all: Vec<u8> = (0..=255).collect();
    for s in [&all[..], b"", b"a", b"www.example.com", &all[200..]] {
        let mut out = Vec::new();
        huffman_decode(&huffman_encode(s), &mut out).unwrap();
        assert_eq!(out, s);
    }
}

#[test]
fn huffman_edge_cases() {
    let dec = |b: &[u8]| {
        let mut out = Vec::new();
        huffman_decode(b, &mut out).map(|_| out)
    };
    // EOS (30 ones) inside the string is an error.
    assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(HuffmanError::Eos));
    // 'a' (00011) then 11 bits of ones: padding longer than 7 bits.
    assert_eq!(dec(&[0x1f, 0xff]), Err(HuffmanError::PaddingTooLong));
    // A whole byte of padding alone.
    assert_eq!(dec(&[0xff]), Err(HuffmanError::PaddingTooLong));
    // 'a' then 000: padding must be ones.
    assert_eq!(dec(&[0x18]), Err(HuffmanError::PaddingNotOnes));
    // 'a' then 111: fine.
    assert_eq!(dec(&[0x1f]), Ok(b"a".to_vec()));
    // Eight 5-bit symbols fill five bytes exactly: no padding at all.
    assert_eq!(dec(&huffman_encode(b"aaaaaaaa")), Ok(b"aaaaaaaa".to_vec()));
    assert_eq!(huffman_encode(b"aaaaaaaa").len(), 5);
    // A Huffman string literal with bad padding fails the block and loses sync.
    let mut d = Decoder::new();
    assert_eq!(
        d.decode(&[0x04, 0x81, 0x18]),
        Err(HpackError::Huffman(HuffmanError::PaddingNotOnes))
    );
    assert!(d.is_incomplete());
}

// ---------------------------------------------------------------------------------------
// The dynamic table.

#[test]
fn dynamic_table_evicts_oldest_first_and_size_updates_apply() {
    let mut d = Decoder::new();
    let mut e = TestEncoder::new(false);
    // 40 entries of 32 + 5 + 100 bytes: the 4096-byte table holds 29 of them.
    let long = "v".repeat(100);
    let names: Vec<String> = (0..40).map(|i| format!("x-{i:03}")).collect();
    for n in &names {
        d.decode(&e.encode(&[(n.as_str(), long.as_str())])).unwrap();
    }
    assert_eq!(d.table_len(), 29);
    assert_eq!(d.table_size(), 29 * 137);
    // Referencing the newest and the oldest kept entries gives their values.
    let block = e.encode(&[
        (names[39].as_str(), long.as_str()),
        (names[11].as_str(), long.as_str()),
    ]);
    assert_eq!(block, vec![0x80 | 62, 0x80 | 90]);
    let l = d.decode(&block).unwrap();
    assert_eq!(l.fields[1].name, Text::Known(b"x-011".to_vec()));
    // Index 91 (the evicted x-010) is past the table.
    assert_eq!(d.decode(&[0x80 | 91]), Err(HpackError::BadIndex));

    // A size update shrinks the table, evicting; one to 0 empties it.
    let mut d = Decoder::new();
    let mut e = TestEncoder::new(true);
    d.decode(&e.encode(&[("a", "1"), ("b", "2"), ("c", "3")]))
        .unwrap();
    assert_eq!(d.table_size(), 3 * 34);
    let mut update = Vec::new();
    encode_int(&mut update, 0x20, 5, 68);
    d.decode(&update).unwrap();
    assert_eq!((d.table_len(), d.max_table_size()), (2, 68));
    d.decode(&[0x20]).unwrap();
    assert_eq!(d.table_len(), 0);
    // An entry larger than the table empties it and is not added.
    let mut d = Decoder::with_table_size(100);
    d.decode(&encode_block(&[("a", "1")], Rep::Indexed, false))
        .unwrap();
    d.decode(&encode_block(
        &[("big", &"x".repeat(80))],
        Rep::Indexed,
        false,
    ))
    .unwrap();
    assert_eq!((d.table_len(), d.table_size()), (0, 0));
}

#[test]
fn size_updates_are_checked() {
    let mut d = Decoder::new();
    // After a field.
    assert_eq!(
        d.decode(&[0x82, 0x20]),
        Err(HpackError::LateTableSizeUpdate)
    );
    // Above the advertised limit.
    let mut d = Decoder::new();
    let mut big = Vec::new();
    encode_int(&mut big, 0x20, 5, 5000);
    assert_eq!(d.decode(&big), Err(HpackError::TableSizeAboveLimit));
    // Once the decoding side advertised a larger table, the same update is fine.
    let mut d = Decoder::new();
    d.set_limit(8192);
    d.decode(&big).unwrap();
    assert_eq!(d.max_table_size(), 5000);
    // Two updates at the start of a block are allowed.
    let mut d = Decoder::new();
    d.decode(&[0x20, 0x3f, 0xe1, 0x1f]).unwrap();
    assert_eq!(d.max_table_size(), 4096);
}

#[test]
fn decoding_errors() {
    assert_eq!(Decoder::new().decode(&[0x80]), Err(HpackError::BadIndex));
    assert_eq!(Decoder::new().decode(&[0xbe]), Err(HpackError::BadIndex));
    assert_eq!(
        Decoder::new().decode(&[0x40, 0x05, b'a']),
        Err(HpackError::Truncated)
    );
    assert_eq!(Decoder::new().decode(&[0x40]), Err(HpackError::Truncated));
    assert_eq!(Decoder::new().decode(&[0xff]), Err(HpackError::Truncated));
    // Header list bytes past the cap are decoded (the table stays in step) but dropped.
    let mut d = Decoder::new();
    let v = "v".repeat(4000);
    let block = encode_block(&vec![("x", v.as_str()); 20], Rep::Plain, false);
    let l = d.decode(&block).unwrap();
    assert!(l.truncated);
    assert_eq!(l.fields.len(), 16);
    assert_eq!(l.get(b":path"), Lookup::Unknown);
}

#[test]
fn midway_decoder_reports_unknown_entries_and_never_invents() {
    let mut d = Decoder::joined_midway();
    // Index 62 was inserted before we joined.
    let l = d.decode(&[0x82, 0xbe]).unwrap();
    assert_eq!(l.fields[0].value, Text::Known(b"GET".to_vec()));
    assert_eq!(
        (&l.fields[1].name, &l.fields[1].value),
        (&Text::Unknown, &Text::Unknown)
    );
    // A literal whose name is an unseen entry: the value is known, the name is not; the new
    // entry goes in at 62 and what was at 62 moves to 63.
    let l = d.decode(&[0x7e, 0x02, b'h', b'i']).unwrap();
    assert_eq!(l.fields[0].name, Text::Unknown);
    assert_eq!(l.fields[0].value, Text::Known(b"hi".to_vec()));
    let l = d.decode(&[0xbe, 0xbf]).unwrap();
    assert_eq!(l.fields[0].value, Text::Known(b"hi".to_vec()));
    assert_eq!(l.fields[1].value, Text::Unknown);
    assert_eq!(l.get(b":path"), Lookup::Unknown);
    // Entries inserted after joining are known.
    let mut e = TestEncoder::new(true);
    d.decode(&e.encode(&[("x-new", "1")])).unwrap();
    let l = d.decode(&[0xbe]).unwrap();
    assert_eq!(fields(&l), pairs(&[("x-new", "1")]));
    // A size update to 0 clears everything: the table is fully known again.
    d.decode(&[0x20]).unwrap();
    assert!(!d.is_incomplete());
    assert_eq!(d.decode(&[0xbe]), Err(HpackError::BadIndex));
    // Filling a known-size table with known entries also makes it complete.
    let mut d = Decoder::joined_midway();
    let mut update = Vec::new();
    encode_int(&mut update, 0x20, 5, 100);
    d.decode(&update).unwrap();
    assert!(d.is_incomplete());
    d.decode(&encode_block(
        &[("a", &"x".repeat(40))],
        Rep::Indexed,
        false,
    ))
    .unwrap();
    assert!(!d.is_incomplete());
}

#[test]
fn header_list_lookup() {
    let f = |n: Text, v: Text| HeaderField {
        name: n,
        value: v,
        never_indexed: false,
    };
    let k = |s: &str| Text::Known(s.as_bytes().to_vec());
    let list = HeaderList {
        fields: vec![
            f(k("a"), k("1")),
            f(k("b"), Text::Unknown),
            f(k("a"), k("2")),
        ],
        truncated: false,
    };
    assert_eq!(list.get(b"a"), Lookup::Value(b"1"));
    assert_eq!(list.get(b"b"), Lookup::Unknown);
    assert_eq!(list.get(b"c"), Lookup::Absent);
    let list = HeaderList {
        fields: vec![f(Text::Unknown, k("1"))],
        truncated: false,
    };
    assert_eq!(list.get(b"c"), Lookup::Unknown);
    assert_eq!(MAX_TABLE_SIZE, 65536);
}

// ---------------------------------------------------------------------------------------
// Stitching synthesised connections.

fn request_fields(i: usize) -> Vec<(String, String)> {
    let method = if i.is_multiple_of(3) { "POST" } else { "GET" };
    vec![
        (":method".into(), method.into()),
        (":scheme".into(), "http".into()),
        (":path".into(), format!("/item/{i}?q={i}")),
        (":authority".into(), "api.local:8080".into()),
        ("user-agent".into(), "test/1.0".into()),
        (
            "x-request-id".into(),
            format!("req-{i}-{}", "z".repeat(i * 7)),
        ),
    ]
}

fn as_refs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn status_of(i: usize) -> u16 {
    [200, 404, 500, 201][i % 4]
}

/// 20 streams: all requests first (interleaved with request bodies), then the responses in a
/// scrambled order, each HEADERS then DATA frames interleaved with the other streams'.
fn twenty_streams(huffman: bool) -> (Vec<u8>, Vec<u8>) {
    let mut client = PREFACE.to_vec();
    client.extend(settings_frame());
    let mut server = settings_frame();
    let mut enc_req = TestEncoder::new(huffman);
    let mut enc_resp = TestEncoder::new(huffman);
    for i in 0..20usize {
        let id = 2 * i as u32 + 1;
        let post = i.is_multiple_of(3);
        client.extend(headers(
            id,
            &enc_req.encode(&as_refs(&request_fields(i))),
            !post,
        ));
    }
    for i in (0..20usize).filter(|i| i.is_multiple_of(3)) {
        client.extend(data(2 * i as u32 + 1, b"body", true));
    }
    let order: Vec<usize> = (0..20).map(|k| (k * 7 + 3) % 20).collect();
    for &i in &order {
        let id = 2 * i as u32 + 1;
        let status = status_of(i).to_string();
        let block = enc_resp.encode(&[
            (":status", status.as_str()),
            ("content-type", "text/plain"),
            ("x-served-by", &format!("node-{}", i % 5)),
        ]);
        server.extend(headers(id, &block, false));
    }
    for &i in order.iter().rev() {
        server.extend(data(2 * i as u32 + 1, b"part", false));
    }
    for &i in &order {
        server.extend(data(2 * i as u32 + 1, b"end", true));
    }
    (client, server)
}

#[test]
fn twenty_interleaved_streams_do_not_mix() {
    for huffman in [false, true] {
        let (client, server) = twenty_streams(huffman);
        for step in [usize::MAX, 1, 7, 100] {
            let mut c = Conn::server();
            for b in client.chunks(step.min(client.len())) {
                c.send(IN, b);
            }
            for b in server.chunks(step.min(server.len())) {
                c.send(OUT, b);
            }
            assert!(c.hooks.anomalies.is_empty(), "{:?}", c.hooks.anomalies);
            assert_eq!(c.hooks.records.len(), 20);
            let order: Vec<usize> = (0..20).map(|k| (k * 7 + 3) % 20).collect();
            for (e, &i) in c.hooks.records.iter().zip(&order) {
                let method = if i.is_multiple_of(3) { "POST" } else { "GET" };
                assert_eq!(
                    summary(e),
                    http(
                        2 * i as u32 + 1,
                        method,
                        &format!("/item/{i}"),
                        status_of(i)
                    )
                );
                assert_eq!(e.authority.as_deref(), Some("api.local:8080"));
            }
        }
    }
}

#[test]
fn exchange_times_and_thread() {
    let mut c = Conn::server();
    let (client, server) = twenty_streams(false);
    c.send(IN, &client);
    c.send(OUT, &server);
    let e = &c.hooks.records[0];
    // The request was read at 10..15 (its first byte seen at 15), the response written at 20..25.
    assert_eq!((e.start_mono_ns, e.end_mono_ns, e.tid), (15, 25, Tid(7)));
    // As the client, the request's first byte goes at the write's start.
    let mut c = Conn::new(OUT);
    c.send(OUT, &client);
    c.send(IN, &server);
    let e = &c.hooks.records[0];
    assert_eq!((e.start_mono_ns, e.end_mono_ns), (10, 25));
}

/// A connection with the preface and SETTINGS already exchanged.
fn opened() -> Conn {
    let mut c = Conn::server();
    let mut first = PREFACE.to_vec();
    first.extend(settings_frame());
    c.send(IN, &first);
    c.send(OUT, &settings_frame());
    c
}

fn get(path: &str) -> Vec<u8> {
    encode_block(
        &[(":method", "GET"), (":path", path), (":scheme", "http")],
        Rep::Plain,
        false,
    )
}

fn status(code: &str) -> Vec<u8> {
    encode_block(&[(":status", code)], Rep::Plain, false)
}

#[test]
fn continuation_frames_complete_a_header_block() {
    let mut c = opened();
    let block = encode_block(
        &[
            (":method", "GET"),
            (":path", "/continued"),
            ("traceparent", TRACEPARENT),
        ],
        Rep::Indexed,
        true,
    );
    let (a, rest) = block.split_at(5);
    let (b, d) = rest.split_at(10);
    let mut bytes = frame(FrameType::Headers, flags::END_STREAM, 1, a);
    bytes.extend(frame(FrameType::Continuation, 0, 1, b));
    c.send(IN, &bytes);
    assert!(
        c.hooks.traceparents.is_empty(),
        "the block is not complete yet"
    );
    c.send(
        IN,
        &frame(FrameType::Continuation, flags::END_HEADERS, 1, d),
    );
    assert_eq!(c.hooks.traceparents, vec![Some(TRACEPARENT.to_string())]);
    let resp = status("200");
    let (a, b) = resp.split_at(2);
    let mut bytes = frame(FrameType::Headers, flags::END_STREAM, 1, a);
    bytes.extend(frame(FrameType::Continuation, flags::END_HEADERS, 1, b));
    c.send(OUT, &bytes);
    assert_eq!(c.summary(), vec![http(1, "GET", "/continued", 200)]);
    assert!(c.hooks.anomalies.is_empty());
}

#[test]
fn a_header_block_interrupted_is_an_anomaly() {
    let mut c = opened();
    let block = get("/a");
    let mut bytes = frame(FrameType::Headers, 0, 1, &block[..3]);
    bytes.extend(data(1, b"x", false));
    c.send(IN, &bytes);
    assert_eq!(
        c.hooks.anomalies,
        vec![Anomaly::Invalid(InvalidReason::BrokenHeaderBlock.name())]
    );
    // A CONTINUATION with no block before it.
    c.send(
        IN,
        &frame(FrameType::Continuation, flags::END_HEADERS, 3, &block),
    );
    assert_eq!(c.hooks.anomalies.len(), 2);
    // Literal-only blocks still decode afterwards.
    c.send(IN, &headers(5, &get("/b"), true));
    c.send(OUT, &headers(5, &status("200"), true));
    assert_eq!(c.summary(), vec![http(5, "GET", "/b", 200)]);
}

#[test]
fn padding_and_priority_are_stripped() {
    let mut c = opened();
    let block = get("/padded");
    let mut p = vec![4u8, 0, 0, 0, 0, 9];
    p.extend(&block);
    p.extend([0; 4]);
    c.send(
        IN,
        &frame(
            FrameType::Headers,
            flags::PADDED | flags::PRIORITY | flags::END_HEADERS | flags::END_STREAM,
            1,
            &p,
        ),
    );
    c.send(OUT, &headers(1, &status("200"), false));
    c.send(
        OUT,
        &frame(
            FrameType::Data,
            flags::PADDED | flags::END_STREAM,
            1,
            &[3, b'o', b'k', 0, 0, 0],
        ),
    );
    assert_eq!(c.summary(), vec![http(1, "GET", "/padded", 200)]);
    assert!(c.hooks.anomalies.is_empty());
    // Padding longer than the frame: the header block is lost, the stream still counted.
    let mut p = vec![200u8];
    p.extend(get("/bad"));
    c.send(
        IN,
        &frame(
            FrameType::Headers,
            flags::PADDED | flags::END_HEADERS,
            3,
            &p,
        ),
    );
    assert_eq!(
        c.hooks.anomalies,
        vec![Anomaly::Invalid(InvalidReason::BadPadding.name())]
    );
    c.send(OUT, &headers(3, &status("503"), true));
    assert_eq!(c.hooks.records[1].stream_id, 3);
    assert_eq!(c.hooks.records[1].path, None);
    assert_eq!(c.hooks.records[1].status, Some(503));
}

#[test]
fn rst_stream_ends_a_stream() {
    let mut c = opened();
    c.send(IN, &headers(1, &get("/cancelled"), true));
    c.send(IN, &headers(3, &get("/streaming"), true));
    // The client cancels stream 1 before any response: abandoned.
    c.send(IN, &frame(FrameType::RstStream, 0, 1, &[0, 0, 0, 8]));
    assert_eq!(c.hooks.abandoned, 1);
    assert_eq!(
        c.hooks.anomalies,
        vec![Anomaly::Unanswered(Unanswered::Reset { error_code: 8 })]
    );
    // Stream 3's response began, then the server reset it: reported as far as it went.
    c.send(OUT, &headers(3, &status("200"), false));
    c.send(OUT, &data(3, b"partial", false));
    c.send(OUT, &frame(FrameType::RstStream, 0, 3, &[0, 0, 0, 2]));
    assert_eq!(c.summary(), vec![http(3, "GET", "/streaming", 200)]);
    // A late END_STREAM on a finished stream is not a new orphan of interest.
    c.send(OUT, &frame(FrameType::RstStream, 0, 3, &[0, 0, 0, 2]));
    assert_eq!(c.stitcher.open_streams(), 0);
}

#[test]
fn goaway_abandons_streams_above_the_last_id() {
    let mut c = opened();
    for id in [1, 3, 5, 7] {
        c.send(IN, &headers(id, &get(&format!("/{id}")), true));
    }
    c.send(
        OUT,
        &frame(FrameType::GoAway, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0]),
    );
    assert_eq!(c.hooks.abandoned, 2);
    assert_eq!(
        c.hooks.anomalies,
        vec![
            Anomaly::Unanswered(Unanswered::Refused),
            Anomaly::Unanswered(Unanswered::Refused)
        ]
    );
    c.send(OUT, &headers(1, &status("200"), true));
    c.send(OUT, &headers(3, &status("200"), true));
    assert_eq!(c.summary().len(), 2);
    // A graceful GOAWAY (last id 2^31-1) refuses nothing.
    c.send(IN, &headers(9, &get("/9"), true));
    c.send(
        OUT,
        &frame(
            FrameType::GoAway,
            0,
            0,
            &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        ),
    );
    assert_eq!(c.stitcher.open_streams(), 1);
    c.stitcher.close(&mut c.hooks);
    assert_eq!(
        c.hooks.anomalies.last(),
        Some(&Anomaly::Unanswered(Unanswered::Closed))
    );
    assert_eq!(c.hooks.abandoned, 3);
}

#[test]
fn grpc_trailers_only_and_missing_status() {
    let mut c = opened();
    let req = |path: &str| {
        encode_block(
            &[
                (":method", "POST"),
                (":path", path),
                ("content-type", "application/grpc+proto"),
                ("te", "trailers"),
            ],
            Rep::Indexed,
            true,
        )
    };
    c.send(IN, &headers(1, &req("/pkg.Svc/Unimplemented"), false));
    c.send(IN, &data(1, &[0, 0, 0, 0, 0], true));
    // Trailers-only: one HEADERS with :status and grpc-status, END_STREAM.
    let resp = encode_block(
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "12"),
            ("grpc-message", "unknown%20method"),
        ],
        Rep::Indexed,
        true,
    );
    c.send(OUT, &headers(1, &resp, true));
    // A response ended by DATA without trailers: the status is unknown, not 0.
    c.send(IN, &headers(3, &req("/pkg.Svc/NoTrailers"), false));
    c.send(IN, &data(3, &[0, 0, 0, 0, 0], true));
    c.send(OUT, &headers(3, &status("200"), false));
    c.send(OUT, &data(3, &[0, 0, 0, 0, 0], true));
    // A path not of the gRPC shape.
    c.send(IN, &headers(5, &req("/nope"), true));
    c.send(OUT, &headers(5, &resp, true));
    let g: Vec<_> = c.hooks.records.iter().map(|e| e.grpc.clone()).collect();
    assert_eq!(
        g,
        vec![
            Some(GrpcCall {
                service: Some("pkg.Svc".into()),
                method: Some("Unimplemented".into()),
                status_code: Some(12),
                message: Some("unknown%20method".into()),
            }),
            Some(GrpcCall {
                service: Some("pkg.Svc".into()),
                method: Some("NoTrailers".into()),
                status_code: None,
                message: None,
            }),
            Some(GrpcCall {
                service: None,
                method: None,
                status_code: Some(12),
                message: Some("unknown%20method".into()),
            }),
        ]
    );
    assert!(c.hooks.anomalies.is_empty());
}

#[test]
fn grpc_helpers() {
    assert!(grpc::is_grpc_content_type(b"application/grpc"));
    assert!(grpc::is_grpc_content_type(b"application/grpc+proto"));
    assert!(grpc::is_grpc_content_type(
        b"application/grpc;charset=utf-8"
    ));
    assert!(!grpc::is_grpc_content_type(b"application/grpc-web"));
    assert!(!grpc::is_grpc_content_type(b"application/json"));
    assert_eq!(grpc::split_path("/a.B/C"), Some(("a.B", "C")));
    assert_eq!(grpc::split_path("/a.B/C/D"), None);
    assert_eq!(grpc::split_path("a.B/C"), None);
    assert_eq!(grpc::split_path("//C"), None);
    assert_eq!(grpc::parse_status(b"0"), Some(0));
    assert_eq!(grpc::parse_status(b"16"), Some(16));
    assert_eq!(grpc::parse_status(b""), None);
    assert_eq!(grpc::parse_status(b"-1"), None);
    assert_eq!(grpc::parse_status(b"99999999999"), None);
    assert_eq!(grpc::status_name(5), Some("NOT_FOUND"));
    assert_eq!(grpc::status_name(17), None);
}

#[test]
fn interim_responses_orphans_and_push() {
    let mut c = opened();
    c.send(IN, &headers(1, &get("/slow"), true));
    c.send(OUT, &headers(1, &status("103"), false));
    c.send(OUT, &headers(1, &status("200"), true));
    assert_eq!(c.summary(), vec![http(1, "GET", "/slow", 200)]);
    // A response to a request never seen.
    c.send(OUT, &headers(11, &status("200"), true));
    assert_eq!(c.hooks.anomalies, vec![Anomaly::OrphanResponse]);
    // A pushed stream: its promise is decoded (in step) but not reported.
    c.send(IN, &headers(13, &get("/page"), true));
    let mut promise = vec![0, 0, 0, 2];
    promise.extend(encode_block(
        &[(":path", "/style.css")],
        Rep::Indexed,
        false,
    ));
    c.send(
        OUT,
        &frame(FrameType::PushPromise, flags::END_HEADERS, 13, &promise),
    );
    c.send(OUT, &headers(2, &[0x88], false));
    c.send(OUT, &data(2, b"css", true));
    c.send(OUT, &headers(13, &[0x88, 0xbe], true));
    assert_eq!(c.summary().len(), 2);
    assert_eq!(c.hooks.anomalies.len(), 1);
}

#[test]
fn streams_beyond_the_limit_drop_the_oldest() {
    let mut c = opened();
    let mut bytes = Vec::new();
    for i in 0..=MAX_STREAMS as u32 {
        bytes.extend(headers(2 * i + 1, &get("/x"), true));
    }
    c.send(IN, &bytes);
    assert_eq!(c.stitcher.open_streams(), MAX_STREAMS);
    assert_eq!(
        c.hooks.anomalies,
        vec![Anomaly::Unanswered(Unanswered::Dropped)]
    );
    assert_eq!(c.hooks.abandoned, 1);
    // Stream 1 was the one dropped: its answer is an orphan; stream 3's is fine.
    c.send(OUT, &headers(1, &status("200"), true));
    c.send(OUT, &headers(3, &status("200"), true));
    assert_eq!(c.summary(), vec![http(3, "GET", "/x", 200)]);
}

#[test]
fn uncaptured_payload_is_skipped_by_count() {
    let mut c = opened();
    c.capture = 64;
    c.send(IN, &headers(1, &get("/big"), true));
    // A 10 KB body in one write, END_STREAM in the visible header: the rest is counted over.
    let mut resp = headers(1, &status("200"), false);
    resp.extend(data(1, &[b'x'; 10_000], true));
    assert!(resp.len() > 64);
    c.send(OUT, &resp);
    assert_eq!(c.summary(), vec![http(1, "GET", "/big", 200)]);
    // A DATA frame's header cut exactly by the capture, its payload spanning writes.
    c.send(IN, &headers(3, &get("/next"), true));
    c.send(OUT, &headers(3, &status("200"), false));
    let big = data(3, &[b'y'; 300], true);
    c.send(OUT, &big[..200]);
    c.send(OUT, &big[200..]);
    assert_eq!(c.summary()[1], http(3, "GET", "/next", 200));
    assert!(c.hooks.anomalies.is_empty(), "{:?}", c.hooks.anomalies);
    assert_eq!(c.stitcher.lost(), (0, 0));
}

#[test]
fn a_gap_across_a_frame_header_resynchronises_at_the_next_syscall() {
    let mut c = opened();
    let mut e = TestEncoder::new(false);
    c.send(
        IN,
        &headers(1, &e.encode(&[(":method", "GET"), (":path", "/a")]), true),
    );
    c.send(OUT, &headers(1, &status("200"), true));
    // One write with a large request (HEADERS then a big DATA) and then another HEADERS:
    // the capture stops inside the DATA, so the second HEADERS goes unseen.
    c.capture = 100;
    let mut bytes = headers(3, &e.encode(&[(":method", "POST"), (":path", "/b")]), false);
    bytes.extend(data(3, &[0; 500], true));
    bytes.extend(headers(
        5,
        &e.encode(&[(":method", "POST"), (":path", "/lost")]),
        true,
    ));
    c.send(IN, &bytes);
    // The next syscall starts with a frame header: reading resumes there. The encoder's
    // table references now point at entries we may have missed: reported unknown.
    c.capture = usize::MAX;
    let block = e.encode(&[(":method", "POST"), (":path", "/lost")]);
    c.send(IN, &headers(7, &block, true));
    assert!(matches!(c.hooks.anomalies[..], [Anomaly::Lost { bytes }] if bytes > 0));
    c.send(OUT, &headers(3, &status("201"), true));
    c.send(OUT, &headers(7, &status("200"), true));
    let s = c.summary();
    assert_eq!(s[0], http(1, "GET", "/a", 200));
    assert_eq!(s[1], http(3, "POST", "/b", 201));
    // Stream 7's `:method: POST` is static; its path references an entry we never saw.
    assert_eq!(
        (s[2].0, s[2].1.as_deref(), s[2].2.as_deref()),
        (7, Some("POST"), None)
    );
    assert_eq!(c.stitcher.lost().1, 1);
}

#[test]
fn garbage_is_lost_until_a_plausible_frame_header() {
    let mut c = opened();
    c.send(
        IN,
        b"\x00\x00\x05\x04\x00\x00\x00\x00\x00garbage after an impossible header",
    );
    assert_eq!(
        c.hooks.anomalies,
        vec![Anomaly::Invalid(InvalidReason::BadLength.name())]
    );
    c.send(IN, b"more garbage that is not a frame");
    c.send(IN, &headers(1, &get("/after"), true));
    c.send(OUT, &headers(1, &status("200"), true));
    assert_eq!(c.summary(), vec![http(1, "GET", "/after", 200)]);
    assert!(matches!(c.hooks.anomalies[1], Anomaly::Lost { .. }));
}

#[test]
fn joined_midway_unknown_entries_are_reported_unknown() {
    for cap in captures() {
        // Start both directions at the second request's HEADERS and its response's.
        let client_frames = frames_of(cap.client);
        let second = client_frames
            .iter()
            .filter(|(_, h)| h.kind == FrameType::Headers)
            .nth(1)
            .map(|(at, h)| (*at, h.stream_id));
        let Some(second) = second else {
            continue;
        };
        let server_at = frames_of(cap.server)
            .iter()
            .find(|(_, h)| h.kind == FrameType::Headers && h.stream_id == second.1)
            .map(|(at, _)| *at)
            .unwrap();
        let mut c = Conn::server();
        c.send(IN, &cap.client[second.0..]);
        c.send(OUT, &cap.server[server_at..]);
        let golden: Vec<&Summary> = cap.golden.iter().filter(|g| g.0 >= second.1).collect();
        assert_eq!(c.hooks.records.len(), golden.len(), "{}", cap.name);
        for (got, want) in c.summary().iter().zip(golden) {
            // Each field is either what was sent or unknown; never something else.
            assert_eq!(got.0, want.0);
            assert!(got.1.is_none() || got.1 == want.1, "{}: {got:?}", cap.name);
            assert!(got.2.is_none() || got.2 == want.2, "{}: {got:?}", cap.name);
            assert!(got.3.is_none() || got.3 == want.3, "{}: {got:?}", cap.name);
            if let (Some(g), Some(w)) = (&got.4, &want.4) {
                assert!(g.2.is_none() || g.2 == w.2, "{}: {got:?}", cap.name);
            }
        }
        // No decoding errors: unknown indexes are not errors mid-way.
        assert!(
            !c.hooks
                .anomalies
                .iter()
                .any(|a| matches!(a, Anomaly::Invalid(_))),
            "{}: {:?}",
            cap.name,
            c.hooks.anomalies
        );
    }
}

#[test]
fn joined_midway_grpc_streams_show_what_can_be_known() {
    // py_grpc from stream 3 on: the client's second request references its dynamic table.
    let cap = &captures()[3];
    let at = frames_of(cap.client)
        .iter()
        .find(|(_, h)| h.kind == FrameType::Headers && h.stream_id == 3)
        .unwrap()
        .0;
    let sat = frames_of(cap.server)
        .iter()
        .find(|(_, h)| h.kind == FrameType::Headers && h.stream_id == 3)
        .unwrap()
        .0;
    let mut c = Conn::server();
    c.send(IN, &cap.client[at..]);
    c.send(OUT, &cap.server[sat..]);
    let s = c.summary();
    assert_eq!(s.len(), 3);
    // Stream 3's path was new (a literal); 5 and 7 reference the SayHello path inserted on
    // stream 1, which we never saw. content-type was inserted before too: gRPC unknown.
    // The server's `:status: 200` is static (0x88) so always known.
    let post = Some("POST".to_string());
    assert_eq!(
        s,
        vec![
            (
                3,
                post.clone(),
                Some("/demo.v1.Greeter/StreamHellos".into()),
                Some(200),
                None
            ),
            (5, post.clone(), None, Some(200), None),
            (7, post, None, Some(200), None),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Never panic.

proptest! {
    #[test]
    fn parse_frame_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Parse::Parsed(f) = parse_frame(&bytes) {
            prop_assert!(f.header.frame_len() <= bytes.len());
            let _ = (f.header_block(), f.data(), f.goaway(), f.rst_error_code());
            let _ = f.settings().count();
        }
        let _ = detect(&bytes);
        let _ = plausible_frame_header(&bytes);
    }

    #[test]
    fn hpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Decoder::new().decode(&bytes);
        let mut d = Decoder::joined_midway();
        let _ = d.decode(&bytes);
        let _ = d.decode(&bytes);
        let mut out = Vec::new();
        let _ = huffman_decode(&bytes, &mut out);
    }

    #[test]
    fn huffman_round_trips(s in proptest::collection::vec(any::<u8>(), 0..100)) {
        let mut out = Vec::new();
        huffman_decode(&huffman_encode(&s), &mut out).unwrap();
        prop_assert_eq!(out, s);
    }

    #[test]
    fn stitcher_never_panics_on_arbitrary_bytes(
        chunks in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..120), 0usize..200),
            0..12,
        ),
        preface in any::<bool>(),
    ) {
        let mut c = Conn::server();
        if preface {
            c.send(IN, PREFACE);
        }
        for (inbound, bytes, capture) in chunks {
            c.capture = capture;
            c.send(if inbound { IN } else { OUT }, &bytes);
        }
        c.stitcher.close(&mut c.hooks);
    }

    #[test]
    fn stitcher_never_panics_on_damaged_captures(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        capture in 1usize..400,
    ) {
        let cap = &captures()[which];
        let mut client = cap.client.to_vec();
        let mut server = cap.server.to_vec();
        for (at, b) in flips {
            if at % 2 == 0 {
                let n = client.len();
                client[at / 2 % n] ^= b;
            } else {
                let n = server.len();
                server[at / 2 % n] ^= b;
            }
        }
        let mut c = Conn::server();
        c.capture = capture;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|x| x % client.len()).collect();
        cuts.sort_unstable();
        let mut at = 0;
        for cut in cuts.into_iter().chain([client.len()]) {
            c.send(IN, &client[at..cut]);
            at = cut;
        }
        c.send(OUT, &server);
        c.stitcher.close(&mut c.hooks);
    }

    #[test]
    fn captures_cut_anywhere_into_many_syscalls_give_golden(
        which in 0usize..4,
        client_cuts in proptest::collection::vec(any::<usize>(), 0..8),
        server_cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let cap = &captures()[which];
        let sorted = |cuts: Vec<usize>, len: usize| {
            let mut v: Vec<usize> = cuts.into_iter().map(|x| x % (len + 1)).collect();
            v.sort_unstable();
            v
        };
        let c = replay(
            cap,
            true,
            &sorted(client_cuts, cap.client.len()),
            &sorted(server_cuts, cap.server.len()),
        );
        prop_assert_eq!(c.summary(), cap.golden.clone());
        prop_assert!(c.hooks.anomalies.is_empty());
    }
}
