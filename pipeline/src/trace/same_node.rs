//! Same-node joins: a traced client calling a traced server on this machine
//! (over loopback, a veth pair or a container network). The agent sees the one
//! connection twice, from each end: the client's tuple is the server's
//! reversed. The server span becomes the client span's child, and nothing on
//! the wire changes.
//!
//! Both ends' request starts go through the one assembler, in ring-buffer
//! order, and both ends see the same byte stream, so the n-th request a client
//! starts on a connection is the n-th its server starts: each connection keeps
//! the starts of one end that the other end has not met yet, oldest first
//! (pipelined HTTP/1, HTTP/2 streams, database pipelines). Usually the client's
//! write comes first; when the server's read comes first (its read can return
//! before the client's write does), the server span has begun its own trace:
//! it is joined late, and every span of that trace still being assembled is
//! moved into the client's trace when it is handed on ([`SameNode::fix`]).
//!
//! A start leaves the table when its request ends, when the other end meets it,
//! or after [`EXPIRY_NS`]; the table is bounded, and what it cannot keep is counted.
//! A connection's entry stays, empty, until it closes, so that the requests of
//! a kept-alive connection allocate nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::context::Parent;
use crate::model::{ConnTuple, Pid, SpanId, SpanKind, TraceContext, TraceId};
use crate::selfmetrics::{Counter, SelfMetrics};

/// Connections kept track of at once, at most: as many as the assembler follows.
pub const MAX_CONNECTIONS: usize = 65_536;
/// Starts waiting on one connection, at most (HTTP/2 streams, pipelined requests).
pub const MAX_STARTS_PER_CONNECTION: usize = 256;
/// Server spans joined late whose trace is still being moved, at most.
pub const MAX_LATE_JOINS: usize = 16_384;
/// A start older than this is forgotten: its request has ended unseen.
pub const EXPIRY_NS: u64 = 120 * 1_000_000_000;

/// One end's request start, waiting for the other end's.
#[derive(Debug, Clone, Copy)]
struct Start {
    /// Which process: a late-joined server's, to move its later calls.
    pid: Pid,
    context: TraceContext,
    at_ns: u64,
    /// A server start that may still join a client's trace (it did not join a `traceparent`).
    joinable: bool,
}

/// The starts of one connection that the other end has not met yet: all from
/// one end, since a start of the other end meets the oldest of them.
#[derive(Debug)]
struct Waiting {
    end: SpanKind,
    starts: VecDeque<Start>,
}

/// A server span joined after it began its own trace: spans of that trace are
/// moved into the client's.
#[derive(Debug, Clone, Copy)]
struct LateJoin {
    server_span: SpanId,
    parent: Parent,
    at_ns: u64,
}

pub struct SameNode {
    /// By the connection's tuple as its client sees it.
    waiting: FxHashMap<ConnTuple, Waiting>,
    /// By the trace id the server span began with.
    late: FxHashMap<TraceId, LateJoin>,
    metrics: Arc<SelfMetrics>,
}

/// Whether both ends of a tuple are known: a probe that could not read an
/// address leaves it unspecified, and such tuples would meet by accident.
fn usable(tuple: &ConnTuple) -> bool {
    tuple.local_port != 0
        && tuple.remote_port != 0
        && !tuple.local.is_unspecified()
        && !tuple.remote.is_unspecified()
}

impl SameNode {
    pub fn new(metrics: Arc<SelfMetrics>) -> Self {
        Self {
            waiting: FxHashMap::default(),
            late: FxHashMap::default(),
            metrics,
        }
    }

    /// Takes the oldest start of `end` waiting on this connection.
    fn take(&mut self, key: &ConnTuple, end: SpanKind) -> Option<Start> {
        self.waiting
            .get_mut(key)
            .filter(|w| w.end == end)?
            .starts
            .pop_front()
    }

    /// Keeps a start of `end` for the other end to meet; none of the other
    /// end's is waiting on this connection (it would have met them).
    fn keep(&mut self, key: ConnTuple, end: SpanKind, start: Start) {
        let full = self.waiting.len() >= MAX_CONNECTIONS;
        let waiting = match self.waiting.get_mut(&key) {
            Some(w) => w,
            None if full => {
                self.metrics.inc(Counter::SameNodeTableFull);
                return;
            }
            None => self.waiting.entry(key).or_insert(Waiting {
                end,
                starts: VecDeque::new(),
            }),
        };
        waiting.end = end;
        if waiting.starts.len() >= MAX_STARTS_PER_CONNECTION {
            waiting.starts.pop_front();
            self.metrics.inc(Counter::SameNodeTableFull);
        }
        waiting.starts.push_back(start);
    }

    /// A server request started on `tuple` (as the server sees it). When the
    /// traced client's request it answers was seen first, `context` is given
    /// that request's span as the parent, if `joinable` (the request did not
    /// join a `traceparent`); else it is given none, and the start waits for
    /// the client's. Returns the server span's context.
    pub fn server_started(
        &mut self,
        pid: Pid,
        tuple: &ConnTuple,
        joinable: bool,
        now_ns: u64,
        context: impl FnOnce(Option<Parent>) -> TraceContext,
    ) -> TraceContext {
        if !usable(tuple) {
            return context(None);
        }
        let key = tuple.reversed();
        if let Some(client) = self.take(&key, SpanKind::Client) {
            if !joinable {
                return context(None);
            }
            self.metrics.inc(Counter::SameNodeJoined);
            return context(Some(Parent::of(&client.context)));
        }
        let own = context(None);
        let start = Start {
            pid,
            context: own,
            at_ns: now_ns,
            joinable,
        };
        self.keep(key, SpanKind::Server, start);
        own
    }

    /// A client request started on `tuple` (as the client sees it), with
    /// `context`. Returns the traced server's request it reaches when that was
    /// seen first and can still join: (its pid, its span), for the caller to
    /// move into this trace ([`super::Linker::rejoin`]).
    pub fn client_started(
        &mut self,
        pid: Pid,
        tuple: &ConnTuple,
        context: TraceContext,
        now_ns: u64,
    ) -> Option<(Pid, SpanId)> {
        if !usable(tuple) {
            return None;
        }
        let Some(server) = self.take(tuple, SpanKind::Server) else {
            let start = Start {
                pid,
                context,
                at_ns: now_ns,
                joinable: false,
            };
            self.keep(*tuple, SpanKind::Client, start);
            return None;
        };
        if !server.joinable {
            return None;
        }
        if self.late.len() >= MAX_LATE_JOINS {
            self.metrics.inc(Counter::SameNodeTableFull);
            return None;
        }
        self.late.insert(
            server.context.trace_id,
            LateJoin {
                server_span: server.context.span_id,
                parent: Parent::of(&context),
                at_ns: now_ns,
            },
        );
        self.metrics.inc(Counter::SameNodeJoinedLate);
        Some((server.pid, server.context.span_id))
    }

    /// Moves a span of a trace whose server span was joined late into its
    /// caller's trace, and makes that server span the caller's child.
    pub fn fix(&self, context: &mut TraceContext) {
        if self.late.is_empty() {
            return;
        }
        if let Some(join) = self.late.get(&context.trace_id) {
            context.trace_id = join.parent.trace_id;
            // Every span of the server's trace inherited the server's flag (none,
            // as a root): each now inherits the caller's.
            context.parent_sampled = join.parent.sampled;
            if context.span_id == join.server_span {
                context.parent = Some(join.parent.span_id);
            }
        }
    }

    /// A request of `end` on `tuple` (as that end sees it) ended, with the
    /// context it started with (before [`SameNode::fix`]): its start, if still
    /// waiting, will never be met; a late-joined server span's trace is complete.
    pub fn ended(&mut self, end: SpanKind, tuple: &ConnTuple, context: &TraceContext) {
        let key = match end {
            SpanKind::Client => *tuple,
            SpanKind::Server => tuple.reversed(),
        };
        if let Some(waiting) = self.waiting.get_mut(&key) {
            if waiting.end == end {
                waiting
                    .starts
                    .retain(|s| s.context.span_id != context.span_id);
            }
        }
        // The server span's own trace id, before [`SameNode::fix`] moved it.
        if end == SpanKind::Server
            && self
                .late
                .get(&context.trace_id)
                .is_some_and(|join| join.server_span == context.span_id)
        {
            self.late.remove(&context.trace_id);
        }
    }

    /// The connection `tuple` (as `end` sees it) closed: its entry goes, unless
    /// starts of the other end's view of it still wait.
    pub fn closed(&mut self, end: SpanKind, tuple: &ConnTuple) {
        let key = match end {
            SpanKind::Client => *tuple,
            SpanKind::Server => tuple.reversed(),
        };
        if self.waiting.get(&key).is_some_and(|w| w.starts.is_empty()) {
            self.waiting.remove(&key);
        }
    }

    /// Forgets starts and late joins older than [`EXPIRY_NS`] at `now_ns`,
    /// and the entries left empty by connections whose close was missed.
    pub fn expire(&mut self, now_ns: u64) {
        let fresh = |at_ns: u64| now_ns.saturating_sub(at_ns) <= EXPIRY_NS;
        let mut expired = 0u64;
        self.waiting.retain(|_, waiting| {
            let before = waiting.starts.len();
            waiting.starts.retain(|s| fresh(s.at_ns));
            expired += (before - waiting.starts.len()) as u64;
            !waiting.starts.is_empty()
        });
        let before = self.late.len();
        self.late.retain(|_, join| fresh(join.at_ns));
        expired += (before - self.late.len()) as u64;
        self.metrics.add(Counter::SameNodeExpired, expired);
    }

    /// Starts waiting, over every connection.
    pub fn waiting(&self) -> usize {
        self.waiting.values().map(|w| w.starts.len()).sum()
    }
}

#[cfg(test)]
mod tests;
