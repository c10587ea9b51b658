//! Reads the `.cap` connection captures of the protocol test data (written by
//! `scripts/capture-relay.py`): one record per read, a direction byte
//! (`C` client to server, `S` server to client), a 4-byte big-endian length,
//! then the bytes. A lower-case direction (`c`, `s`) is a run: the length is
//! how many times the one byte after it repeats (`--compress-runs`, for
//! captures of 16 MiB payloads).

use std::borrow::Cow;

/// Which way a captured read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// The reads of one captured connection, in order.
pub fn records(capture: &[u8]) -> Vec<(Side, Cow<'_, [u8]>)> {
    let mut out = Vec::new();
    let mut rest = capture;
    while let [direction, a, b, c, d, tail @ ..] = rest {
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let side = match direction.to_ascii_uppercase() {
            b'C' => Side::Client,
            b'S' => Side::Server,
            other => panic!("capture record with direction byte {other:#x}"),
        };
        if direction.is_ascii_lowercase() {
            let (&byte, next) = tail.split_first().expect("a run record's byte");
            out.push((side, Cow::Owned(vec![byte; len])));
            rest = next;
        } else {
            let (bytes, next) = tail.split_at(len);
            out.push((side, Cow::Borrowed(bytes)));
            rest = next;
        }
    }
    assert!(rest.is_empty(), "capture ends in a cut-off record header");
    out
}

/// Everything one side sent, as one byte stream.
pub fn stream(capture: &[u8], side: Side) -> Vec<u8> {
    records(capture)
        .into_iter()
        .filter(|(s, _)| *s == side)
        .flat_map(|(_, bytes)| bytes.into_owned())
        .collect()
}
