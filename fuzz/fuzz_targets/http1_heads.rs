//! Every HTTP/1 parsing entry point on arbitrary bytes: no panic, no hang.
#![no_main]

use beyla_pipeline::protocols::http1::{
    looks_like_request, looks_like_response, parse_request_head, parse_request_line,
    parse_response_head, parse_status_line, ChunkedDecoder, Method,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = (looks_like_request(data), looks_like_response(data));
    let _ = parse_request_line(data);
    let _ = parse_request_head(data);
    let _ = parse_status_line(data);
    let _ = parse_response_head(data, None);
    let _ = parse_response_head(data, Some(Method::Head));
    let mut chunked = ChunkedDecoder::default();
    // Fed whole, then the same bytes as an uncaptured gap and in two pieces.
    let _ = chunked.feed(data);
    let _ = chunked.skip_uncaptured(data.len() as u64);
    let mut split = ChunkedDecoder::default();
    let (a, b) = data.split_at(data.len() / 2);
    if split.feed(a).is_ok() {
        let _ = split.feed(b);
    }
});
