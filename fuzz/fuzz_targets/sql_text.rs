//! The SQL summary and sanitiser on arbitrary text in both dialects: no panic, and a
//! sanitised text never longer than twice the original.
#![no_main]

use beyla_pipeline::protocols::sql::{decode, sanitize, summarize, Dialect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    for dialect in [Dialect::Postgres, Dialect::MySql] {
        let summary = summarize(&text, dialect);
        if let Some(collection) = summary.collection {
            assert!(text.contains(collection));
        }
        let clean = sanitize(&text, dialect);
        assert!(clean.len() <= text.len().max(1) * 2);
    }
});
