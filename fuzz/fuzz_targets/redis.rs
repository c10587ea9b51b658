//! Every RESP parsing entry point on arbitrary bytes: no panic, no hang; and the walker, fed
//! the same bytes whole and in pieces, ends where the whole-value parser does.
#![no_main]

use beyla_pipeline::protocols::redis::{
    parse_command, parse_command_start, parse_header, parse_reply_start, parse_value, push_kind, Parse,
    ValueWalker, Walk,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    let _ = parse_command_start(data);
    let _ = parse_reply_start(data);
    if let Parse::Parsed(command) = parse_command(data) {
        let _ = command.args.count();
    }
    let parsed = parse_value(data);
    if let Parse::Parsed(frame) = parsed {
        let _ = push_kind(&frame.value);
        assert_eq!(ValueWalker::new().feed(data), Walk::Done(frame.len));
    }
    // In two pieces, the unused tail of the first given again with the second.
    let (a, b) = data.split_at(data.len() / 2);
    let mut walker = ValueWalker::new();
    if let Walk::NeedMore(used) = walker.feed(a) {
        let rest = [&a[used..], b].concat();
        let _ = walker.feed(&rest);
    }
    let mut gap = ValueWalker::new();
    if let Walk::NeedMore(_) = gap.feed(a) {
        let _ = gap.skip(b.len() as u64);
    }
});
