//! Every Kafka parsing entry point on arbitrary bytes, for every version a client sends: no
//! panic, no hang. The first byte picks the version.
#![no_main]

use beyla_pipeline::protocols::kafka::{
    parse_fetch_request, parse_fetch_response, parse_metadata_topics, parse_produce_request,
    parse_produce_response, parse_request_head, parse_response_head, response_body, ApiKey, Parse,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&version, body)) = data.split_first() else { return };
    let version = i16::from(version % 24);
    if let Parse::Parsed(head) = parse_request_head(data) {
        assert!(head.message_len >= 4);
    }
    let _ = parse_response_head(data);
    for api in [ApiKey::PRODUCE, ApiKey::FETCH, ApiKey::METADATA, ApiKey::API_VERSIONS] {
        let _ = response_body(data, api, version);
    }
    let _ = parse_produce_request(version, body);
    let _ = parse_produce_response(version, body);
    let _ = parse_fetch_request(version, body);
    let _ = parse_fetch_response(version, body);
    let _ = parse_metadata_topics(version, body, |_| {});
});
