//! Every protocol's detection on arbitrary first bytes, and its stitcher (the
//! registry's) fed arbitrary bytes as a connection's chunks: the first byte
//! picks the directions and capture cut-offs, the rest is the traffic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use beyla_pipeline::model::{
    ConnId, ConnTuple, DataChunk, Direction, Origin, Pid, SpanId, Tid, TraceContext, TraceId,
};
use beyla_pipeline::protocols::{Anomaly, Exchange, FirstBytes, Hooks, PROTOCOLS};
use libfuzzer_sys::fuzz_target;

struct Ignore;

impl Hooks<Exchange> for Ignore {
    fn request_started(&mut self, _: Tid, _: Option<&str>) -> TraceContext {
        TraceContext { trace_id: TraceId([1; 16]), span_id: SpanId([1; 8]), parent: None, parent_sampled: None }
    }
    fn exchange(&mut self, _: Exchange) {}
    fn abandoned(&mut self, _: TraceContext) {}
    fn anomaly(&mut self, _: Anomaly) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&pattern, traffic)) = data.split_first() else { return };
    let first = FirstBytes { data: traffic, direction: Direction::Egress, kind: None, local_port: 4000, remote_port: 80 };
    for protocol in PROTOCOLS {
        let _ = protocol.detect(&first);
    }
    let mut stitchers: Vec<_> = PROTOCOLS.iter().map(|p| p.open(Direction::Ingress)).collect();
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for (i, piece) in traffic.chunks(1 + usize::from(pattern % 64)).enumerate() {
        let direction = if (pattern >> (i % 8)) & 1 == 0 { Direction::Ingress } else { Direction::Egress };
        // Some chunks claim more bytes than were captured, as the probes report.
        let bytes = piece.len() as u64 + if i % 3 == 0 { u64::from(pattern) } else { 0 };
        let chunk = DataChunk {
            pid: Pid(1),
            tid: Tid(1),
            conn: ConnId(1),
            direction,
            origin: Origin::Accept,
            tuple: ConnTuple { local, local_port: 80, remote: local, remote_port: 4000 },
            start_mono_ns: i as u64,
            end_mono_ns: i as u64 + 1,
            bytes,
            tls: false,
            data: piece,
        };
        for stitcher in &mut stitchers {
            stitcher.feed(&chunk, &mut Ignore);
        }
    }
    for stitcher in &mut stitchers {
        stitcher.close(&mut Ignore);
    }
});
