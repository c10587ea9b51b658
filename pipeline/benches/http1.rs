//! Criterion micro-benchmarks of the HTTP/1 parser on real captured bytes
//! (pipeline/src/protocols/http1/testdata): ns per message.
//!
//! cargo bench -p beyla-pipeline --bench http1
//!
//! HTTP/2 frames and HPACK have their own benchmark (benches/http2.rs).
use std::hint::black_box;

use beyla_pipeline::protocols::http1::{
    parse_request_head, parse_response_head, ChunkedDecoder, Method, Parse,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

macro_rules! capture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../src/protocols/http1/testdata/", $name)) as &[u8],
        )
    };
}

const REQUESTS: &[(&str, &[u8])] = &[
    capture!("curl_get.bin"),
    capture!("curl_post.bin"),
    capture!("go_get.bin"),
    capture!("node_get.bin"),
    capture!("node_post_chunked.bin"),
    capture!("python_urllib_get.bin"),
];

const RESPONSES: &[(&str, &[u8], Option<Method>)] = &[
    (
        "go_response.bin",
        capture!("go_response.bin").1,
        Some(Method::Get),
    ),
    (
        "node_response.bin",
        capture!("node_response.bin").1,
        Some(Method::Get),
    ),
    (
        "python_http_server_response.bin",
        capture!("python_http_server_response.bin").1,
        Some(Method::Get),
    ),
    (
        "java_fixed_response.bin",
        capture!("java_fixed_response.bin").1,
        Some(Method::Get),
    ),
    (
        "go_chunked_response.bin",
        capture!("go_chunked_response.bin").1,
        Some(Method::Get),
    ),
];

/// Where the chunked body starts: after the head.
fn chunked_body(bytes: &[u8]) -> &[u8] {
    match parse_response_head(bytes, Some(Method::Get)) {
        Parse::Parsed(h) => &bytes[h.head_len..],
        other => panic!("capture does not parse: {other:?}"),
    }
}

fn request_heads(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1_request_head");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in REQUESTS {
        assert!(
            matches!(parse_request_head(bytes), Parse::Parsed(_)),
            "{name}"
        );
        g.bench_function(*name, |b| b.iter(|| parse_request_head(black_box(bytes))));
    }
    g.finish();
}

fn response_heads(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1_response_head");
    g.throughput(Throughput::Elements(1));
    for (name, bytes, method) in RESPONSES {
        assert!(
            matches!(parse_response_head(bytes, *method), Parse::Parsed(_)),
            "{name}"
        );
        g.bench_function(*name, |b| {
            b.iter(|| parse_response_head(black_box(bytes), black_box(*method)))
        });
    }
    g.finish();
}

fn chunked(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1_chunked_body");
    g.throughput(Throughput::Elements(1));
    for name in [
        "go_chunked_response.bin",
        "node_chunked_response.bin",
        "java_chunked_response.bin",
    ] {
        let bytes = match name {
            "go_chunked_response.bin" => capture!("go_chunked_response.bin").1,
            "node_chunked_response.bin" => capture!("node_chunked_response.bin").1,
            _ => capture!("java_chunked_response.bin").1,
        };
        let body = chunked_body(bytes);
        let mut check = ChunkedDecoder::default();
        assert!(
            check.feed(body).expect(name).done,
            "{name}: body not complete"
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut d = ChunkedDecoder::default();
                d.feed(black_box(body))
            })
        });
        // The same body as the probes may deliver it: in pieces of 7 bytes.
        g.bench_function(format!("{name} (7-byte pieces)"), |b| {
            b.iter(|| {
                let mut d = ChunkedDecoder::default();
                let mut last = None;
                for piece in black_box(body).chunks(7) {
                    last = Some(d.feed(piece));
                }
                last
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request_heads, response_heads, chunked);
criterion_main!(benches);
