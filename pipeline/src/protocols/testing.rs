//! What every protocol's tests share: hooks that record what a stitcher
//! reports, and the chunks a test feeds it.

use std::net::{IpAddr, Ipv4Addr};

use super::{Anomaly, Hooks};
use crate::model::{
    ConnId, ConnTuple, DataChunk, Direction, Origin, Pid, SpanId, Tid, TraceContext, TraceId,
};

/// Records what a stitcher reports; request `n` (from 1) gets trace and span
/// ids made of the byte `n`.
pub struct Recorder<R> {
    pub records: Vec<R>,
    pub anomalies: Vec<Anomaly>,
    pub abandoned: usize,
    /// The `traceparent` each started request carried, in order.
    pub traceparents: Vec<Option<String>>,
}

impl<R> Default for Recorder<R> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            anomalies: Vec::new(),
            abandoned: 0,
            traceparents: Vec::new(),
        }
    }
}

impl<R> Recorder<R> {
    /// Requests started so far.
    pub fn started(&self) -> usize {
        self.traceparents.len()
    }
}

impl<R> Hooks<R> for Recorder<R> {
    fn request_started(&mut self, _tid: Tid, traceparent: Option<&str>) -> TraceContext {
        self.traceparents.push(traceparent.map(str::to_string));
        let n = self.traceparents.len() as u8;
        TraceContext {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            parent: None,
            parent_sampled: None,
        }
    }

    fn exchange(&mut self, record: R) {
        self.records.push(record);
    }

    fn abandoned(&mut self, _context: TraceContext) {
        self.abandoned += 1;
    }

    fn anomaly(&mut self, anomaly: Anomaly) {
        self.anomalies.push(anomaly);
    }
}

/// A chunk of connection 1 of process 1, thread 7, between 127.0.0.1:`local_port`
/// and 127.0.0.1:`remote_port`: `bytes` moved, `data` captured, from `start` to `start + 5`.
pub fn chunk<'a>(
    direction: Direction,
    origin: Origin,
    (local_port, remote_port): (u16, u16),
    data: &'a [u8],
    bytes: u64,
    start: u64,
) -> DataChunk<'a> {
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    DataChunk {
        pid: Pid(1),
        tid: Tid(7),
        conn: ConnId(1),
        direction,
        origin,
        tuple: ConnTuple {
            local: localhost,
            local_port,
            remote: localhost,
            remote_port,
        },
        start_mono_ns: start,
        end_mono_ns: start + 5,
        bytes,
        tls: false,
        data,
    }
}
