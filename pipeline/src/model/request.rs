//! What the assembler hands on: one finished request with its response.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Operation, Pid, Resource, SpanId, Tid, TraceId};

/// Which way bytes went, seen from the traced process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

/// How the connection was first seen by the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Accepted by the traced process: it is the server.
    Accept,
    /// Connected by the traced process: it is the client.
    Connect,
    /// Opened before tracing began; the first message decides.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
}

/// Both ends of a TCP connection, from the traced process's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnTuple {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
}

impl ConnTuple {
    /// (server address, server port, client address) for a span of this kind.
    pub fn endpoints(&self, kind: SpanKind) -> (IpAddr, u16, IpAddr) {
        match kind {
            SpanKind::Server => (self.local, self.local_port, self.remote),
            SpanKind::Client => (self.remote, self.remote_port, self.local),
        }
    }

    /// The same connection seen from the other end.
    pub fn reversed(&self) -> ConnTuple {
        ConnTuple {
            local: self.remote,
            local_port: self.remote_port,
            remote: self.local,
            remote_port: self.local_port,
        }
    }

    /// The client's port: the remote one for a server, the local one for a client.
    pub fn client_port(&self, kind: SpanKind) -> u16 {
        match kind {
            SpanKind::Server => self.remote_port,
            SpanKind::Client => self.local_port,
        }
    }
}

/// Where a span sits in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// The W3C sampled flag inherited from the parent, when there is one.
    pub parent_sampled: Option<bool>,
}

/// One request with its response, as the traced process saw them: what every
/// protocol has in common, and the protocol's own part in `operation`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Which side of the connection the traced process is.
    pub kind: SpanKind,
    pub pid: Pid,
    pub tid: Tid,
    pub conn: ConnTuple,
    /// Seen as plaintext from the TLS library: the connection is encrypted.
    pub tls: bool,
    /// Kernel monotonic nanoseconds: first byte of the request seen, last byte of the response.
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
    /// The process, as discovery named it when the connection was first seen.
    pub resource: Arc<Resource>,
    pub operation: Operation,
}
