//! Per-connection assembly: kernel data chunks to finished requests. Decides
//! which side of each connection the traced process is, recognises the
//! protocol, and feeds the protocol's stitcher in order.

#[cfg(test)]
mod tests;

use std::collections::hash_map::Entry;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{
    ConnId, ConnTuple, DataChunk, Direction, HttpRequest, Origin, Pid, Registry, Resource, RpcCall,
    SpanKind, Tid, TraceContext,
};
use crate::protocols::http1::{self, stitch};
use crate::protocols::http2;
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
    Http2(Box<http2::stitch::Stitcher>),
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

/// One byte stream of a connection: what the socket carried, or the plaintext
/// the TLS library handled (its socket bytes being ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Stream {
    conn: ConnId,
    tls: bool,
}

pub struct Assembler {
    connections: FxHashMap<Stream, Connection>,
    registry: Registry,
    linker: Linker,
    /// Requests finished by the events fed so far, until [`Assembler::finished`]
    /// takes them; its capacity is reused, so handing them on allocates nothing.
    finished: Vec<HttpRequest>,
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
    out: &'a mut Vec<HttpRequest>,
    metrics: &'a SelfMetrics,
}

impl Sink<'_> {
    fn send(&mut self, request: HttpRequest) {
        self.out.push(request);
    }

    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext {
        match self.kind {
            SpanKind::Server => self.linker.server_started(self.pid, tid, traceparent),
            SpanKind::Client => self.linker.client_started(self.pid, tid),
        }
    }

    fn ended(&mut self, context: &TraceContext) {
        if self.kind == SpanKind::Server {
            self.linker.server_ended(self.pid, context.span_id);
        }
    }
}

impl stitch::Hooks for Sink<'_> {
    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext {
        Sink::request_started(self, tid, traceparent)
    }

    fn exchange(&mut self, e: stitch::Exchange) {
        self.ended(&e.context);
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
            rpc: None,
            resource: Arc::clone(self.resource),
        };
        self.send(request);
    }

    fn abandoned(&mut self, context: TraceContext) {
        self.ended(&context);
    }

    fn anomaly(&mut self, anomaly: stitch::Anomaly) {
        match anomaly {
            stitch::Anomaly::Invalid(_) => self.metrics.parse_errors.inc(),
            stitch::Anomaly::OrphanResponse => self.metrics.orphan_responses.inc(),
            stitch::Anomaly::Unanswered => self.metrics.unanswered_requests.inc(),
        }
    }
}

impl http2::stitch::Hooks for Sink<'_> {
    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext {
        Sink::request_started(self, tid, traceparent)
    }

    /// Values HPACK could not decode (a connection joined mid-way) are never
    /// guessed: such an exchange is counted and gives no span.
    fn exchange(&mut self, e: http2::stitch::Exchange) {
        self.ended(&e.context);
        let method = e
            .method
            .as_deref()
            .and_then(|m| http1::Method::from_bytes(m.as_bytes()));
        let (Some(method), Some(path), Some(status)) = (method, e.path, e.status) else {
            self.metrics.undecodable_requests.inc();
            return;
        };
        let rpc = e.grpc.and_then(|call| {
            Some(RpcCall {
                system: "grpc",
                service: call.service?.into(),
                method: call.method?.into(),
                status_code: call.status_code,
            })
        });
        self.send(HttpRequest {
            kind: self.kind,
            pid: self.pid,
            tid: e.tid,
            conn: self.tuple,
            method: method.as_str(),
            path: path.into(),
            status,
            start_mono_ns: e.start_mono_ns,
            end_mono_ns: e.end_mono_ns,
            context: e.context,
            rpc,
            resource: Arc::clone(self.resource),
        });
    }

    fn abandoned(&mut self, context: TraceContext) {
        self.ended(&context);
    }

    fn anomaly(&mut self, anomaly: http2::stitch::Anomaly) {
        use http2::stitch::Anomaly;
        log::debug!(
            "HTTP/2 anomaly on a connection of pid={}: {anomaly:?}",
            self.pid
        );
        match anomaly {
            Anomaly::Invalid(_) | Anomaly::Lost { .. } => self.metrics.parse_errors.inc(),
            Anomaly::OrphanResponse => self.metrics.orphan_responses.inc(),
            Anomaly::Unanswered
            | Anomaly::Reset { .. }
            | Anomaly::Refused
            | Anomaly::StreamDropped => self.metrics.unanswered_requests.inc(),
        }
    }
}

impl Assembler {
    pub fn new(registry: Registry, metrics: Arc<SelfMetrics>) -> Self {
        Self {
            connections: FxHashMap::default(),
            registry,
            linker: Linker::new(),
            finished: Vec::new(),
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
        let stream = Stream {
            conn: chunk.conn,
            tls: chunk.tls,
        };
        // One lookup per event; the registry only for a connection not seen yet.
        let full = self.connections.len() >= MAX_CONNECTIONS;
        let conn = match self.connections.entry(stream) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                let Some(resource) = self.registry.get(chunk.pid) else {
                    self.metrics.events_untraced.inc();
                    return;
                };
                if full {
                    self.metrics.connections_dropped.inc();
                    return;
                }
                let kind = match chunk.origin {
                    Origin::Accept => Some(SpanKind::Server),
                    Origin::Connect => Some(SpanKind::Client),
                    Origin::Unknown => None,
                };
                new.insert(Connection {
                    resource,
                    tuple: chunk.tuple,
                    kind,
                    protocol: Protocol::Undecided,
                    last_mono_ns: 0,
                })
            }
        };
        conn.last_mono_ns = chunk.end_mono_ns;
        if let Protocol::Undecided = conn.protocol {
            conn.protocol = detect(conn, chunk);
            match conn.protocol {
                Protocol::Unsupported => self.metrics.connections_unsupported.inc(),
                // A response first: the request was never seen; wait for the next one.
                Protocol::Undecided => return,
                Protocol::Http1(_) | Protocol::Http2(_) => {}
            }
        }
        let Some(kind) = conn.kind else { return };
        let mut sink = Sink {
            pid: chunk.pid,
            kind,
            tuple: conn.tuple,
            resource: &conn.resource,
            linker: &mut self.linker,
            out: &mut self.finished,
            metrics: &self.metrics,
        };
        match &mut conn.protocol {
            Protocol::Http1(stitcher) => stitcher.feed(chunk, &mut sink),
            Protocol::Http2(stitcher) => stitcher.feed(chunk, &mut sink),
            Protocol::Undecided | Protocol::Unsupported => {}
        }
    }

    /// Takes the requests finished since the last call, oldest first.
    pub fn finished(&mut self) -> std::vec::Drain<'_, HttpRequest> {
        self.finished.drain(..)
    }

    pub fn on_close(&mut self, conn: ConnId) {
        for tls in [false, true] {
            if let Some(c) = self.connections.remove(&Stream { conn, tls }) {
                self.finish(c);
            }
        }
    }

    /// Ends every connection (at shutdown), so open responses are still reported.
    pub fn close_all(&mut self) {
        for (_, conn) in std::mem::take(&mut self.connections) {
            self.finish(conn);
        }
    }

    fn finish(&mut self, mut conn: Connection) {
        let Some(kind) = conn.kind else { return };
        let mut sink = Sink {
            pid: conn.resource.pid,
            kind,
            tuple: conn.tuple,
            resource: &conn.resource,
            linker: &mut self.linker,
            out: &mut self.finished,
            metrics: &self.metrics,
        };
        match &mut conn.protocol {
            Protocol::Http1(stitcher) => stitcher.close(&mut sink),
            Protocol::Http2(stitcher) => stitcher.close(&mut sink),
            Protocol::Undecided | Protocol::Unsupported => {}
        }
    }

    fn sweep(&mut self, now: u64) {
        let idle: Vec<Stream> = self
            .connections
            .iter()
            .filter(|(_, c)| now.saturating_sub(c.last_mono_ns) > IDLE_CONNECTION_NS)
            .map(|(stream, _)| *stream)
            .collect();
        for stream in idle {
            if let Some(c) = self.connections.remove(&stream) {
                self.finish(c);
            }
        }
        self.linker.forget_idle();
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
    // HTTP/2: the client's preface names the client; a SETTINGS frame sent
    // first is the server's preface.
    let (request_dir, kind) = match (http2::detect(chunk.data), chunk.direction) {
        (Some(http2::H2Start::ClientPreface), Direction::Ingress) => {
            (Direction::Ingress, SpanKind::Server)
        }
        (Some(http2::H2Start::ClientPreface), Direction::Egress) => {
            (Direction::Egress, SpanKind::Client)
        }
        (Some(http2::H2Start::ServerSettings), Direction::Ingress) => {
            (Direction::Egress, SpanKind::Client)
        }
        (Some(http2::H2Start::ServerSettings), Direction::Egress) => {
            (Direction::Ingress, SpanKind::Server)
        }
        (None, _) => return Protocol::Unsupported,
    };
    if conn.kind.is_some_and(|k| k != kind) {
        return Protocol::Unsupported;
    }
    conn.kind = Some(kind);
    Protocol::Http2(Box::new(http2::stitch::Stitcher::new(request_dir)))
}
