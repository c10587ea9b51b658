//! Per-connection assembly: kernel data chunks to finished requests. Decides
//! which side of each connection the traced process is, recognises the
//! protocol, and feeds the protocol's stitcher in order.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use async_channel::Sender;

use crate::discovery::Registry;
use crate::model::{
    ConnId, ConnTuple, DataChunk, Direction, HttpRequest, Origin, Pid, Resource, SpanKind, Tid,
    TraceContext,
};
use crate::protocols::http1::{self, stitch};
use crate::selfmetrics::SelfMetrics;
use crate::trace::Linker;

/// Connections tracked at once; beyond this new ones are dropped and counted.
const MAX_CONNECTIONS: usize = 65_536;
/// A connection silent this long is closed on the agent's side (its close was missed).
const IDLE_CONNECTION_NS: u64 = 120 * 1_000_000_000;
/// Idle connections are looked for once per this many events.
const SWEEP_EVERY_EVENTS: u32 = 16_384;

enum Protocol {
    /// No bytes yet that tell.
    Undecided,
    Http1(Box<stitch::Stitcher>),
    /// Not a protocol we parse; its bytes are ignored.
    Unsupported,
}

struct Connection {
    resource: Arc<Resource>,
    tuple: ConnTuple,
    kind: Option<SpanKind>,
    protocol: Protocol,
    last_mono_ns: u64,
}

pub struct Assembler {
    connections: HashMap<ConnId, Connection>,
    registry: Registry,
    linker: Linker,
    out: Sender<HttpRequest>,
    metrics: Arc<SelfMetrics>,
    since_sweep: u32,
}

/// Connects a stitcher to the linker and the output, for one connection.
struct Sink<'a> {
    pid: Pid,
    kind: SpanKind,
    tuple: ConnTuple,
    resource: &'a Arc<Resource>,
    linker: &'a mut Linker,
    out: &'a Sender<HttpRequest>,
    metrics: &'a SelfMetrics,
}

impl stitch::Hooks for Sink<'_> {
    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext {
        match self.kind {
            SpanKind::Server => self.linker.server_started(self.pid, tid, traceparent),
            SpanKind::Client => self.linker.client_started(self.pid, tid),
        }
    }

    fn exchange(&mut self, e: stitch::Exchange) {
        if self.kind == SpanKind::Server {
            self.linker.server_ended(self.pid, e.context.span_id);
        }
        let request = HttpRequest {
            kind: self.kind,
            pid: self.pid,
            tid: e.tid,
            conn: self.tuple,
            method: e.method.as_str(),
            path: e.path,
            status: e.status,
            start_mono_ns: e.start_mono_ns,
            end_mono_ns: e.end_mono_ns,
            context: e.context,
            resource: Arc::clone(self.resource),
        };
        if self.out.try_send(request).is_err() {
            self.metrics.requests_dropped.inc();
        }
    }

    fn abandoned(&mut self, context: TraceContext) {
        if self.kind == SpanKind::Server {
            self.linker.server_ended(self.pid, context.span_id);
        }
    }

    fn anomaly(&mut self, anomaly: stitch::Anomaly) {
        match anomaly {
            stitch::Anomaly::Invalid(_) => self.metrics.parse_errors.inc(),
            stitch::Anomaly::OrphanResponse => self.metrics.orphan_responses.inc(),
            stitch::Anomaly::Unanswered => self.metrics.unanswered_requests.inc(),
        }
    }
}

impl Assembler {
    pub fn new(registry: Registry, out: Sender<HttpRequest>, metrics: Arc<SelfMetrics>) -> Self {
        Self {
            connections: HashMap::new(),
            registry,
            linker: Linker::new(),
            out,
            metrics,
            since_sweep: 0,
        }
    }

    pub fn on_data(&mut self, chunk: &DataChunk<'_>) {
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY_EVENTS {
            self.since_sweep = 0;
            self.sweep(chunk.end_mono_ns);
        }
        if !self.connections.contains_key(&chunk.conn) {
            let Some(resource) = self.registry.get(chunk.pid) else {
                self.metrics.events_untraced.inc();
                return;
            };
            if self.connections.len() >= MAX_CONNECTIONS {
                self.metrics.connections_dropped.inc();
                return;
            }
            let kind = match chunk.origin {
                Origin::Accept => Some(SpanKind::Server),
                Origin::Connect => Some(SpanKind::Client),
                Origin::Unknown => None,
            };
            let conn = Connection {
                resource,
                tuple: chunk.tuple,
                kind,
                protocol: Protocol::Undecided,
                last_mono_ns: 0,
            };
            self.connections.insert(chunk.conn, conn);
        }
        let Some(conn) = self.connections.get_mut(&chunk.conn) else {
            return;
        };
        conn.last_mono_ns = chunk.end_mono_ns;
        if let Protocol::Undecided = conn.protocol {
            conn.protocol = detect(conn, chunk);
            match conn.protocol {
                Protocol::Unsupported => self.metrics.connections_unsupported.inc(),
                // A response first: the request was never seen; wait for the next one.
                Protocol::Undecided => return,
                Protocol::Http1(_) => {}
            }
        }
        if let (Protocol::Http1(stitcher), Some(kind)) = (&mut conn.protocol, conn.kind) {
            let mut sink = Sink {
                pid: chunk.pid,
                kind,
                tuple: conn.tuple,
                resource: &conn.resource,
                linker: &mut self.linker,
                out: &self.out,
                metrics: &self.metrics,
            };
            stitcher.feed(chunk, &mut sink);
        }
    }

    pub fn on_close(&mut self, id: ConnId) {
        if let Some(conn) = self.connections.remove(&id) {
            self.finish(conn);
        }
    }

    /// Ends every connection (at shutdown), so open responses are still reported.
    pub fn close_all(&mut self) {
        for (_, conn) in std::mem::take(&mut self.connections) {
            self.finish(conn);
        }
    }

    fn finish(&mut self, mut conn: Connection) {
        if let (Protocol::Http1(stitcher), Some(kind)) = (&mut conn.protocol, conn.kind) {
            let pid = conn.resource.pid;
            let mut sink = Sink {
                pid,
                kind,
                tuple: conn.tuple,
                resource: &conn.resource,
                linker: &mut self.linker,
                out: &self.out,
                metrics: &self.metrics,
            };
            stitcher.close(&mut sink);
        }
    }

    fn sweep(&mut self, now: u64) {
        let idle: Vec<ConnId> = self
            .connections
            .iter()
            .filter(|(_, c)| now.saturating_sub(c.last_mono_ns) > IDLE_CONNECTION_NS)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.on_close(id);
        }
    }
}

/// Recognises the protocol from the first bytes, and for connections that
/// predate tracing, which side the traced process is.
fn detect(conn: &mut Connection, chunk: &DataChunk<'_>) -> Protocol {
    if http1::looks_like_request(chunk.data) {
        let kind = match chunk.direction {
            Direction::Ingress => SpanKind::Server,
            Direction::Egress => SpanKind::Client,
        };
        if conn.kind.is_some_and(|k| k != kind) {
            return Protocol::Unsupported;
        }
        conn.kind = Some(kind);
        let request_dir = chunk.direction;
        return Protocol::Http1(Box::new(stitch::Stitcher::new(request_dir)));
    }
    if http1::looks_like_response(chunk.data) {
        return Protocol::Undecided;
    }
    Protocol::Unsupported
}
