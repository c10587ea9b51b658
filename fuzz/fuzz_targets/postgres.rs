//! Every PostgreSQL parsing entry point on arbitrary bytes, read as a stream the way a
//! stitcher reads it: no panic, no hang, no length beyond the input.
#![no_main]

use beyla_pipeline::protocols::postgres::{
    decode_backend, decode_frontend, parse_backend, parse_encryption_answer, parse_frontend,
    parse_header, parse_startup, Backend, Message, Parse, BACKEND_TAGS, FRONTEND_TAGS,
};
use libfuzzer_sys::fuzz_target;

/// Reads `data` as consecutive messages until `parse` (the length of a parsed message,
/// None otherwise) stops.
fn walk(data: &[u8], parse: impl Fn(&[u8]) -> Option<usize>) {
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        let Some(len) = parse(rest) else { break };
        assert!(
            len > 0 && len <= rest.len(),
            "a parse claimed {len} of {} bytes",
            rest.len()
        );
        pos += len;
    }
}

fn len<T>(parsed: Parse<Message<T>>) -> Option<usize> {
    match parsed {
        Parse::Parsed(m) => Some(m.len),
        Parse::NeedMore | Parse::Invalid(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_startup(data);
    let _ = parse_encryption_answer(data);
    let _ = parse_header(data, FRONTEND_TAGS);
    let _ = parse_header(data, BACKEND_TAGS);
    walk(data, |b| len(parse_frontend(b)));
    walk(data, |b| len(parse_backend(b)));
    if let Some((&tag, body)) = data.split_first() {
        let _ = decode_frontend(tag, body, false);
        let _ = decode_frontend(tag, body, true);
        if let Ok(Backend::ErrorResponse(fields)) = decode_backend(tag, body) {
            let _ = (fields.code(), fields.severity(), fields.message());
        }
    }
});
