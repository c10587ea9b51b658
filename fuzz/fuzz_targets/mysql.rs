//! Every MySQL parsing entry point on arbitrary bytes, and the framing of an answer fed
//! the payloads they hold: no panic, no hang, no length beyond the input.
#![no_main]

use beyla_pipeline::protocols::mysql::{
    lenenc_int, parse_command, parse_greeting, parse_login, parse_message, parse_prepare_ok,
    parse_response, Parse, ResponseFraming, Step,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = (parse_greeting(data), parse_login(data), parse_command(data));
    let _ = (
        parse_response(data),
        parse_prepare_ok(data),
        lenenc_int(data),
    );
    // The first byte picks the kind of answer, the rest is read as packets.
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let mut framing = ResponseFraming::new(mode & 1 != 0, mode & 2 != 0);
    let mut pos = 0;
    while let Some(rest) = stream.get(pos..).filter(|r| !r.is_empty()) {
        let Parse::Parsed(message) = parse_message(rest) else {
            break;
        };
        assert!(message.len > 0 && message.len <= rest.len());
        pos += message.len;
        match framing.step(message.first, message.payload_len) {
            Ok(Step::More) => {}
            Ok(Step::Done(_)) | Err(_) => framing = ResponseFraming::new(false, mode & 2 != 0),
        }
    }
});
