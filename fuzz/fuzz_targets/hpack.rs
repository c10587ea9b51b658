//! HPACK header blocks, one decoder across several blocks (the dynamic table
//! carries over): no panic, bounded memory.
#![no_main]

use beyla_pipeline::protocols::http2::hpack::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    for block in data.split(|&b| b == 0xff) {
        let _ = decoder.decode(block);
    }
});
