//! Per-connection assembly: kernel data chunks to finished requests. Decides
//! which side of each connection the traced process is, asks the protocols
//! ([`PROTOCOLS`]) which one the connection speaks, and feeds that protocol's
//! stitcher in order. It names no protocol itself.

#[cfg(test)]
mod tests;

use std::collections::hash_map::Entry;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{
    ConnId, ConnTuple, DataChunk, Direction, KernelContext, Origin, Pid, Registry, Request,
    Resource, SpanKind, Tid, TraceContext,
};
use crate::protocols::{
    Anomaly, Detection, Exchange, FirstBytes, Hooks, Protocol, Stitcher, PROTOCOLS,
};
use crate::selfmetrics::{Counter, SelfMetrics};
use crate::trace::{parse_traceparent, Linker, Parent, Propagated, SameNode};

/// Connections tracked at once; beyond this new ones are dropped and counted.
const MAX_CONNECTIONS: usize = 65_536;
/// A connection silent this long is closed on the agent's side (its close was missed).
const IDLE_CONNECTION_NS: u64 = 120 * 1_000_000_000;
/// Idle connections are looked for once per this many events.
const SWEEP_EVERY_EVENTS: u32 = 16_384;
/// First bytes gathered over short reads before a connection whose protocol
/// cannot yet tell is given up as unsupported.
const MAX_DETECT_BYTES: usize = 64;
/// Messages seen before any protocol recognised the connection (responses
/// whose requests predate tracing), before it is given up as unsupported.
const MAX_UNDECIDED_MESSAGES: u8 = 8;

/// What a connection speaks, as far as the bytes have told.
enum State {
    /// No protocol recognised yet; the first bytes of a message cut short are kept.
    Undecided(Undecided),
    Stitching(Box<dyn Stitcher>),
    /// Not a protocol we parse; its bytes are ignored.
    Unsupported,
}

#[derive(Default)]
struct Undecided {
    /// The first chunks of a message whose start could not tell yet, joined.
    prefix: Vec<u8>,
    /// The first of those chunks, whose times and thread the message keeps.
    first: Option<ChunkInfo>,
    messages: u8,
}

/// What the first read of a message cut short says besides its bytes; the
/// joined message keeps its times, so its first byte is dated by that read.
#[derive(Clone, Copy)]
struct ChunkInfo {
    tid: Tid,
    direction: Direction,
    start_mono_ns: u64,
    end_mono_ns: u64,
    bytes: u64,
}

struct Connection {
    resource: Arc<Resource>,
    tuple: ConnTuple,
    tls: bool,
    kind: Option<SpanKind>,
    state: State,
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
    /// Whether a server request joins the trace of its `traceparent` header
    /// (Beyla's `ebpf.track_request_headers`); else every one starts a trace.
    join_traceparent: bool,
    registry: Registry,
    linker: Linker,
    same_node: SameNode,
    propagated: Propagated,
    /// Requests finished by the events fed so far, until [`Assembler::finished`]
    /// takes them; its capacity is reused, so handing them on allocates nothing.
    finished: Vec<Request>,
    metrics: Arc<SelfMetrics>,
    since_sweep: u32,
}

/// Connects a stitcher to the linker, the same-node joins and the output, for one connection.
struct Sink<'a> {
    pid: Pid,
    kind: SpanKind,
    join_traceparent: bool,
    conn: ConnId,
    tuple: ConnTuple,
    tls: bool,
    /// The time of the chunk being fed.
    now_ns: u64,
    /// When the chunk being fed started (a write's entry): names the ids the kernel gave its request.
    chunk_start_ns: u64,
    resource: &'a Arc<Resource>,
    linker: &'a mut Linker,
    same_node: &'a mut SameNode,
    propagated: &'a mut Propagated,
    out: &'a mut Vec<Request>,
    metrics: &'a SelfMetrics,
}

impl Sink<'_> {
    /// A request's span ends: calls a server's thread makes are no longer its
    /// children, and the other end of the connection will not meet its start.
    fn ended(&mut self, context: &TraceContext) {
        if self.kind == SpanKind::Server {
            self.linker.server_ended(self.pid, context.span_id);
        }
        self.same_node.ended(self.kind, &self.tuple, context);
    }
}

impl Hooks<Exchange> for Sink<'_> {
    /// A server joins its `traceparent` when asked to, else the traced client
    /// on this machine that sent the request; a client is the child of what
    /// its thread serves.
    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext {
        let (pid, now_ns) = (self.pid, self.now_ns);
        match self.kind {
            SpanKind::Server => {
                let remote = traceparent
                    .filter(|_| self.join_traceparent)
                    .and_then(parse_traceparent)
                    .map(Parent::from);
                // The kernel gives plaintext requests ids (context propagation).
                let given = (!self.tls)
                    .then(|| self.propagated.server(self.conn))
                    .flatten();
                let linker = &mut *self.linker;
                self.same_node
                    .server_started(pid, &self.tuple, remote.is_none(), now_ns, |local| {
                        linker.server_started(pid, tid, remote.or(local), given)
                    })
            }
            SpanKind::Client => {
                let given = (!self.tls)
                    .then(|| self.propagated.client(self.conn, self.chunk_start_ns))
                    .flatten();
                let context = match given {
                    Some(ids) => self.linker.client_started_as(pid, tid, ids),
                    None => self.linker.client_started(pid, tid),
                };
                if let Some((server_pid, server_span)) =
                    self.same_node
                        .client_started(pid, &self.tuple, context, now_ns)
                {
                    self.linker
                        .rejoin(server_pid, server_span, Parent::of(&context));
                }
                context
            }
        }
    }

    fn exchange(&mut self, mut e: Exchange) {
        let started = e.context;
        self.same_node.fix(&mut e.context);
        self.ended(&started);
        self.out.push(Request {
            kind: self.kind,
            pid: self.pid,
            tid: e.tid,
            conn: self.tuple,
            tls: self.tls,
            start_mono_ns: e.start_mono_ns,
            end_mono_ns: e.end_mono_ns,
            context: e.context,
            resource: Arc::clone(self.resource),
            operation: e.operation,
        });
    }

    fn abandoned(&mut self, context: TraceContext) {
        self.ended(&context);
    }

    fn anomaly(&mut self, anomaly: Anomaly) {
        log::debug!(
            "protocol anomaly on a connection of pid={}: {anomaly:?}",
            self.pid
        );
        self.metrics.anomaly(anomaly);
    }
}

impl Assembler {
    pub fn new(registry: Registry, metrics: Arc<SelfMetrics>, join_traceparent: bool) -> Self {
        Self {
            connections: FxHashMap::default(),
            join_traceparent,
            registry,
            linker: Linker::new(),
            same_node: SameNode::new(Arc::clone(&metrics)),
            propagated: Propagated::new(Arc::clone(&metrics)),
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
                    self.metrics.inc(Counter::EventsUntraced);
                    return;
                };
                if full {
                    self.metrics.inc(Counter::ConnectionsDropped);
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
                    tls: chunk.tls,
                    kind,
                    state: State::Undecided(Undecided::default()),
                    last_mono_ns: 0,
                })
            }
        };
        conn.last_mono_ns = chunk.end_mono_ns;
        // The start of a message that came in pieces before its protocol could tell.
        let mut joined = None;
        match &mut conn.state {
            State::Stitching(_) => {}
            State::Unsupported => return,
            State::Undecided(undecided) => match decide(undecided, conn.kind, chunk) {
                Decided::Wait => return,
                Decided::Unsupported => {
                    conn.state = State::Unsupported;
                    self.metrics.inc(Counter::ConnectionsUnsupported);
                    return;
                }
                Decided::Open {
                    protocol,
                    request_dir,
                } => {
                    conn.kind = Some(kind_of(request_dir));
                    let stitcher = State::Stitching(protocol.open(request_dir));
                    if let State::Undecided(u) = std::mem::replace(&mut conn.state, stitcher) {
                        joined = u.joined_with(chunk);
                    }
                }
            },
        }
        let joined_chunk = joined.as_ref().map(|(first, data)| DataChunk {
            tid: first.tid,
            start_mono_ns: first.start_mono_ns,
            end_mono_ns: first.end_mono_ns,
            bytes: first.bytes + chunk.bytes,
            data,
            ..*chunk
        });
        let chunk = joined_chunk.as_ref().unwrap_or(chunk);
        let State::Stitching(stitcher) = &mut conn.state else {
            return;
        };
        let Some(kind) = conn.kind else { return };
        let mut sink = Sink {
            pid: chunk.pid,
            kind,
            join_traceparent: self.join_traceparent,
            conn: chunk.conn,
            tuple: conn.tuple,
            tls: conn.tls,
            now_ns: chunk.end_mono_ns,
            chunk_start_ns: chunk.start_mono_ns,
            resource: &conn.resource,
            linker: &mut self.linker,
            same_node: &mut self.same_node,
            propagated: &mut self.propagated,
            out: &mut self.finished,
            metrics: &self.metrics,
        };
        stitcher.feed(chunk, &mut sink);
    }

    /// Takes the requests finished since the last call, oldest first.
    pub fn finished(&mut self) -> std::vec::Drain<'_, Request> {
        self.finished.drain(..)
    }

    /// Ids the kernel gave the request whose data comes next (context propagation).
    pub fn on_context(&mut self, context: &KernelContext) {
        self.propagated.on_context(context);
    }

    pub fn on_close(&mut self, conn: ConnId) {
        self.propagated.closed(conn);
        for tls in [false, true] {
            if let Some(c) = self.connections.remove(&Stream { conn, tls }) {
                self.finish(conn, c);
            }
        }
    }

    /// Ends every connection (at shutdown), so open responses are still reported.
    pub fn close_all(&mut self) {
        for (stream, conn) in std::mem::take(&mut self.connections) {
            self.finish(stream.conn, conn);
        }
    }

    fn finish(&mut self, id: ConnId, mut conn: Connection) {
        let (Some(kind), State::Stitching(stitcher)) = (conn.kind, &mut conn.state) else {
            return;
        };
        // After the stitcher: its abandoned requests leave the same-node table first.
        let (tuple, closed) = (conn.tuple, kind);
        let mut sink = Sink {
            pid: conn.resource.pid,
            kind,
            join_traceparent: self.join_traceparent,
            conn: id,
            tuple: conn.tuple,
            tls: conn.tls,
            now_ns: conn.last_mono_ns,
            chunk_start_ns: conn.last_mono_ns,
            resource: &conn.resource,
            linker: &mut self.linker,
            same_node: &mut self.same_node,
            propagated: &mut self.propagated,
            out: &mut self.finished,
            metrics: &self.metrics,
        };
        stitcher.close(&mut sink);
        self.same_node.closed(closed, &tuple);
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
                self.propagated.closed(stream.conn);
                self.finish(stream.conn, c);
            }
        }
        self.linker.forget_idle();
        self.same_node.expire(now);
    }
}

/// The side of the connection that receives requests is the server.
fn kind_of(request_dir: Direction) -> SpanKind {
    match request_dir {
        Direction::Ingress => SpanKind::Server,
        Direction::Egress => SpanKind::Client,
    }
}

enum Decided {
    Wait,
    Unsupported,
    Open {
        protocol: &'static dyn Protocol,
        request_dir: Direction,
    },
}

/// Asks each protocol in turn what the connection's first bytes are; keeps
/// the start of a message too short to tell.
fn decide(undecided: &mut Undecided, kind: Option<SpanKind>, chunk: &DataChunk<'_>) -> Decided {
    // A message cut short continues only in the same direction.
    if undecided
        .first
        .is_some_and(|first| first.direction != chunk.direction)
    {
        undecided.forget_prefix();
    }
    let probe: Vec<u8>;
    let data = if undecided.prefix.is_empty() {
        chunk.data
    } else {
        let room = MAX_DETECT_BYTES.saturating_sub(undecided.prefix.len());
        probe = [&undecided.prefix, &chunk.data[..chunk.data.len().min(room)]].concat();
        &probe
    };
    let first = FirstBytes {
        data,
        direction: chunk.direction,
        kind,
        local_port: chunk.tuple.local_port,
        remote_port: chunk.tuple.remote_port,
    };
    let mut need_more = false;
    let mut later = false;
    for protocol in PROTOCOLS {
        match protocol.detect(&first) {
            Detection::Yes { request_dir } => {
                // The probes saw the accept or connect: a protocol that says
                // otherwise is mistaken about these bytes.
                if kind.is_some_and(|k| k != kind_of(request_dir)) {
                    return Decided::Unsupported;
                }
                return Decided::Open {
                    protocol: *protocol,
                    request_dir,
                };
            }
            Detection::NeedMore => need_more = true,
            Detection::Later => later = true,
            Detection::No => {}
        }
    }
    // Joining needs every byte: a read beyond the capture size leaves a gap.
    if need_more && chunk.uncaptured() == 0 && data.len() < MAX_DETECT_BYTES {
        let first = undecided.first.get_or_insert(ChunkInfo {
            tid: chunk.tid,
            direction: chunk.direction,
            start_mono_ns: chunk.start_mono_ns,
            end_mono_ns: chunk.end_mono_ns,
            bytes: 0,
        });
        first.bytes += chunk.bytes;
        undecided.prefix.extend_from_slice(chunk.data);
        return Decided::Wait;
    }
    undecided.forget_prefix();
    if (later || need_more) && undecided.messages < MAX_UNDECIDED_MESSAGES {
        undecided.messages += 1;
        return Decided::Wait;
    }
    Decided::Unsupported
}

impl Undecided {
    fn forget_prefix(&mut self) {
        self.prefix.clear();
        self.first = None;
    }

    /// The kept start of a message, joined with this chunk that completes it.
    fn joined_with(self, chunk: &DataChunk<'_>) -> Option<(ChunkInfo, Vec<u8>)> {
        let first = self.first?;
        let mut data = self.prefix;
        data.extend_from_slice(chunk.data);
        Some((first, data))
    }
}
