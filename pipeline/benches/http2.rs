//! Criterion micro-benchmarks of the HTTP/2 parser on real captured bytes
//! (pipeline/src/protocols/http2/testdata): frames, HPACK header blocks, and a whole gRPC
//! unary call through the stitcher.
//!
//! cargo bench -p beyla-pipeline --bench http2
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use beyla_pipeline::model::{
    ConnId, ConnTuple, DataChunk, Direction, Origin, Pid, SpanId, Tid, TraceContext, TraceId,
};
use beyla_pipeline::protocols::http2::hpack::Decoder;
use beyla_pipeline::protocols::http2::stitch::{Exchange, Stitcher};
use beyla_pipeline::protocols::http2::{
    flags, parse_frame, Frame, FrameReader, Parse, ReadEvent, PREFACE,
};
use beyla_pipeline::protocols::{Anomaly, Hooks};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};

macro_rules! capture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../src/protocols/http2/testdata/", $name)) as &[u8],
        )
    };
}

const GO_CLIENT: (&str, &[u8]) = capture!("go_go_client.bin");
const GO_SERVER: (&str, &[u8]) = capture!("go_go_server.bin");
const GRPC_CLIENT: (&str, &[u8]) = capture!("py_grpc_client.bin");
const GRPC_SERVER: (&str, &[u8]) = capture!("py_grpc_server.bin");
const CURL_CLIENT: (&str, &[u8]) = capture!("curl_get_client.bin");

/// The stream of the last `SayHello` in the gRPC capture: its blocks only reference the
/// dynamic table (or add nothing to it), so the call can be replayed on one connection.
const LAST_GRPC_CALL: u32 = 7;

/// Every frame of one direction, with its offset, the preface skipped.
fn frames(bytes: &[u8]) -> Vec<(usize, Frame<'_>)> {
    let mut at = if bytes.starts_with(PREFACE) {
        PREFACE.len()
    } else {
        0
    };
    let mut out = Vec::new();
    while at < bytes.len() {
        match parse_frame(&bytes[at..]) {
            Parse::Parsed(f) => {
                out.push((at, f));
                at += f.header.frame_len();
            }
            other => panic!("capture does not parse at {at}: {other:?}"),
        }
    }
    out
}

/// The header blocks of one direction in order, with their streams. The captures have no
/// CONTINUATION frames, so each HEADERS carries a whole block.
fn header_blocks(bytes: &[u8]) -> Vec<(u32, &[u8])> {
    frames(bytes)
        .into_iter()
        .filter_map(|(_, f)| {
            let block = f.header_block()?;
            assert!(f.header.has(flags::END_HEADERS), "split header block");
            Some((f.header.stream_id, block.fragment))
        })
        .collect()
}

fn frame_parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("http2_frames");
    for (name, bytes) in [GO_CLIENT, GO_SERVER, GRPC_CLIENT, GRPC_SERVER] {
        let count = frames(bytes).len();
        // Throughput in frames: Criterion's elem/s gives the time per frame.
        g.throughput(Throughput::Elements(count as u64));
        assert_eq!(frames_parsed(bytes), count, "{name}");
        g.bench_function(format!("parse_frame/{name} ({count} frames)"), |b| {
            b.iter(|| frames_parsed(black_box(bytes)))
        });
        // As the agent reads: the whole direction in one syscall, preface included.
        assert_eq!(read_frames(&mut FrameReader::new(), bytes), count, "{name}");
        g.bench_function(format!("FrameReader/{name} ({count} frames)"), |b| {
            b.iter(|| read_frames(&mut FrameReader::new(), black_box(bytes)))
        });
    }
    g.finish();
}

/// Parses the frames of one direction without collecting them.
fn frames_parsed(bytes: &[u8]) -> usize {
    let mut at = if bytes.starts_with(PREFACE) {
        PREFACE.len()
    } else {
        0
    };
    let mut n = 0;
    while let Parse::Parsed(f) = parse_frame(&bytes[at..]) {
        at += f.header.frame_len();
        n += 1;
    }
    n
}

/// Feeds one direction to a reader as one syscall; the frames it handed on.
fn read_frames(reader: &mut FrameReader, bytes: &[u8]) -> usize {
    let mut n = 0;
    reader.feed(bytes, bytes.len() as u64, 0, &mut |event| match event {
        ReadEvent::Frame { .. } => n += 1,
        other => panic!("{other:?}"),
    });
    n
}

/// Decoding of `blocks[messages]` (and dropping the header lists) with the table as the
/// earlier blocks left it; cloning that state for each iteration is not timed.
fn bench_blocks(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    blocks: &[(u32, &[u8])],
    messages: std::ops::Range<usize>,
) {
    let mut before = Decoder::new();
    for (_, block) in &blocks[..messages.start] {
        before.decode(block).expect(name);
    }
    let timed = &blocks[messages];
    let mut check = before.clone();
    for (_, block) in timed {
        check.decode(block).expect(name);
    }
    let bytes: usize = timed.iter().map(|(_, b)| b.len()).sum();
    g.bench_function(format!("{name} ({bytes} B)"), |b| {
        b.iter_batched_ref(
            || before.clone(),
            |d| {
                for (_, block) in timed {
                    black_box(d.decode(black_box(block)).expect("checked above"));
                }
            },
            BatchSize::SmallInput,
        )
    });
}

/// Where a stream's blocks sit in the list.
fn blocks_of(blocks: &[(u32, &[u8])], stream: u32) -> std::ops::Range<usize> {
    let start = blocks
        .iter()
        .position(|(s, _)| *s == stream)
        .expect("stream");
    let len = blocks[start..]
        .iter()
        .take_while(|(s, _)| *s == stream)
        .count();
    start..start + len
}

fn hpack(c: &mut Criterion) {
    let mut g = c.benchmark_group("http2_hpack");
    g.throughput(Throughput::Elements(1));
    let grpc_req = header_blocks(GRPC_CLIENT.1);
    let grpc_resp = header_blocks(GRPC_SERVER.1);
    let go_req = header_blocks(GO_CLIENT.1);
    let go_resp = header_blocks(GO_SERVER.1);
    let curl_req = header_blocks(CURL_CLIENT.1);
    let cases = [
        ("grpcio request, first", &grpc_req, 1),
        ("grpcio request, later", &grpc_req, LAST_GRPC_CALL),
        ("go request, first", &go_req, 1),
        ("go request, later: GET /hello?a=2", &go_req, 7),
        ("curl request, first", &curl_req, 1),
        ("grpcio response+trailers, first", &grpc_resp, 1),
        (
            "grpcio response+trailers, later",
            &grpc_resp,
            LAST_GRPC_CALL,
        ),
        ("go response, first", &go_resp, 1),
    ];
    for (name, blocks, stream) in cases {
        bench_blocks(&mut g, name, blocks, blocks_of(blocks, stream));
    }
    g.finish();
}

/// Hands out trace contexts and keeps what the stitcher reports.
#[derive(Default)]
struct Counts {
    exchanges: u64,
    grpc_ok: u64,
    anomalies: Vec<Anomaly>,
}

impl Hooks<Exchange> for Counts {
    fn request_started(&mut self, _tid: Tid, _traceparent: Option<&str>) -> TraceContext {
        TraceContext {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent: None,
            parent_sampled: None,
        }
    }

    fn exchange(&mut self, exchange: Exchange) {
        self.exchanges += 1;
        if let Some(g) = &exchange.grpc {
            self.grpc_ok += u64::from(g.status_code == Some(0) && g.method.is_some());
        }
        black_box(exchange);
    }

    fn abandoned(&mut self, _context: TraceContext) {}

    fn anomaly(&mut self, anomaly: Anomaly) {
        self.anomalies.push(anomaly);
    }
}

/// One direction's bytes as one syscall of the server being traced.
fn feed(stitcher: &mut Stitcher, hooks: &mut Counts, direction: Direction, data: &[u8]) {
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    stitcher.feed(
        &DataChunk {
            pid: Pid(10),
            tid: Tid(11),
            conn: ConnId(1),
            direction,
            origin: Origin::Accept,
            tuple: ConnTuple {
                local,
                local_port: 50051,
                remote: local,
                remote_port: 40_000,
            },
            start_mono_ns: 1_000,
            end_mono_ns: 2_000,
            bytes: data.len() as u64,
            tls: false,
            data,
        },
        hooks,
    );
}

/// Offset of the first frame of `stream` in one direction.
fn stream_start(bytes: &[u8], stream: u32) -> usize {
    frames(bytes)
        .into_iter()
        .find(|(_, f)| f.header.stream_id == stream)
        .expect("stream")
        .0
}

/// A call's bytes with its stream id rewritten in place, so that the stitcher sees a new
/// stream each time.
struct Replay {
    bytes: Vec<u8>,
    /// Offsets of the stream id of every frame on the call's stream.
    ids: Vec<usize>,
}

impl Replay {
    /// `bytes`: frames of `stream` and of the connection (stream 0) only.
    fn new(bytes: &[u8], stream: u32) -> Self {
        let frames = frames(bytes);
        assert!(frames
            .iter()
            .all(|(_, f)| [0, stream].contains(&f.header.stream_id)));
        let ids = frames
            .into_iter()
            .filter(|(_, f)| f.header.stream_id == stream)
            .map(|(at, _)| at + 5)
            .collect();
        Self {
            bytes: bytes.to_vec(),
            ids,
        }
    }

    fn on_stream(&mut self, stream: u32) -> &[u8] {
        for &at in &self.ids {
            self.bytes[at..at + 4].copy_from_slice(&stream.to_be_bytes());
        }
        &self.bytes
    }
}

fn grpc_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("http2_grpc_unary_call");
    g.throughput(Throughput::Elements(1));
    let (client, server) = (GRPC_CLIENT.1, GRPC_SERVER.1);

    // The first SayHello on a new connection: preface, SETTINGS, PINGs, and header
    // blocks of literals that fill both dynamic tables.
    let first_client = &client[..stream_start(client, 3)];
    let first_server = &server[..stream_start(server, 3)];
    let new_connection = || {
        let mut stitcher = Stitcher::new(Direction::Ingress);
        let mut hooks = Counts::default();
        feed(&mut stitcher, &mut hooks, Direction::Ingress, first_client);
        feed(&mut stitcher, &mut hooks, Direction::Egress, first_server);
        hooks
    };
    let hooks = new_connection();
    assert_eq!((hooks.exchanges, hooks.grpc_ok), (1, 1));
    assert!(hooks.anomalies.is_empty(), "{:?}", hooks.anomalies);
    g.bench_function(
        format!(
            "new connection ({} + {} B)",
            first_client.len(),
            first_server.len()
        ),
        |b| b.iter(new_connection),
    );

    // A later SayHello on the same connection: header blocks from the dynamic table.
    let at_client = stream_start(client, LAST_GRPC_CALL);
    let at_server = stream_start(server, LAST_GRPC_CALL);
    let mut request = Replay::new(&client[at_client..], LAST_GRPC_CALL);
    let mut response = Replay::new(&server[at_server..], LAST_GRPC_CALL);
    let name = format!(
        "established connection ({} + {} B)",
        request.bytes.len(),
        response.bytes.len()
    );
    let mut stitcher = Stitcher::new(Direction::Ingress);
    let mut hooks = Counts::default();
    feed(
        &mut stitcher,
        &mut hooks,
        Direction::Ingress,
        &client[..at_client],
    );
    feed(
        &mut stitcher,
        &mut hooks,
        Direction::Egress,
        &server[..at_server],
    );
    let mut stream = LAST_GRPC_CALL;
    let mut call = |stitcher: &mut Stitcher, hooks: &mut Counts| {
        feed(
            stitcher,
            hooks,
            Direction::Ingress,
            request.on_stream(stream),
        );
        feed(
            stitcher,
            hooks,
            Direction::Egress,
            response.on_stream(stream),
        );
        stream += 2;
    };
    call(&mut stitcher, &mut hooks);
    // Calls 1, 3 and 5 (NOT_FOUND), then the replayed one.
    assert_eq!((hooks.exchanges, hooks.grpc_ok), (4, 3));
    g.bench_function(name, |b| b.iter(|| call(&mut stitcher, &mut hooks)));
    g.finish();
    // Every replayed call made one exchange with its gRPC status: only call 5 is not OK.
    assert!(hooks.anomalies.is_empty(), "{:?}", hooks.anomalies);
    assert_eq!(stitcher.open_streams(), 0);
    assert_eq!(hooks.exchanges - hooks.grpc_ok, 1);
}

criterion_group!(benches, frame_parsing, hpack, grpc_call);
criterion_main!(benches);
