//! Reads the `.cap` connection captures of the protocol test data (written by
//! `scripts/capture-relay.py`): one record per read, a direction byte
//! (`C` client to server, `S` server to client), a 4-byte big-endian length,
//! then the bytes. A lower-case direction (`c`, `s`) is a run: the length is
//! how many times the one byte after it repeats (`--compress-runs`, for
//! captures of 16 MiB payloads); a run and the records of the same direction
//! on either side of it are read back as one read.

use std::borrow::Cow;

/// Which way a captured read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// The reads of one captured connection, in order.
pub fn records(capture: &[u8]) -> Vec<(Side, Cow<'_, [u8]>)> {
    let mut out: Vec<(Side, Cow<'_, [u8]>)> = Vec::new();
    let mut rest = capture;
    let mut after_run = false;
    while let [direction, a, b, c, d, tail @ ..] = rest {
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let side = match direction.to_ascii_uppercase() {
            b'C' => Side::Client,
            b'S' => Side::Server,
            other => panic!("capture record with direction byte {other:#x}"),
        };
        let run = direction.is_ascii_lowercase();
        let (bytes, next): (Cow<'_, [u8]>, &[u8]) = if run {
            let (&byte, next) = tail.split_first().expect("a run record's byte");
            (Cow::Owned(vec![byte; len]), next)
        } else {
            let (bytes, next) = tail.split_at(len);
            (Cow::Borrowed(bytes), next)
        };
        rest = next;
        match out.last_mut() {
            Some((last_side, last)) if (run || after_run) && *last_side == side => {
                last.to_mut().extend_from_slice(&bytes);
            }
            _ => out.push((side, bytes)),
        }
        after_run = run;
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

use crate::model::{ConnId, ConnTuple, DataChunk, Direction, Origin, Pid, Tid};
use crate::protocols::testing::Recorder;
use crate::protocols::Stitch;

/// What a stitcher reported while a capture was replayed through it.
pub type Replayed<R> = Recorder<R>;

/// Feeds a capture to `stitcher` as the probes would deliver it to the traced `side`:
/// one chunk per captured read (numbered: read `i` spans nanoseconds `10 i` to
/// `10 i + 5`), each cut to `capture_size` bytes with the rest counted as uncaptured.
pub fn replay<S: Stitch>(
    mut stitcher: S,
    capture: &[u8],
    side: Side,
    capture_size: usize,
) -> Replayed<S::Record> {
    let mut out = Replayed::default();
    let tuple = ConnTuple {
        local: "127.0.0.1".parse().unwrap(),
        local_port: 40000,
        remote: "127.0.0.1".parse().unwrap(),
        remote_port: 5432,
    };
    for (i, (from, bytes)) in records(capture).into_iter().enumerate() {
        let direction = if from == side {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        let data = bytes.get(..capture_size).unwrap_or(&bytes);
        let chunk = DataChunk {
            pid: Pid(1),
            tid: Tid(2),
            conn: ConnId(3),
            direction,
            origin: Origin::Connect,
            tuple,
            start_mono_ns: 10 * i as u64,
            end_mono_ns: 10 * i as u64 + 5,
            bytes: bytes.len() as u64,
            tls: false,
            data,
        };
        stitcher.feed(&chunk, &mut out);
    }
    stitcher.close(&mut out);
    out
}
