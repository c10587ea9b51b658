//! What the assembler hands on: one finished request with its response.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Pid, Resource, ShortString, SpanId, Tid, TraceId};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A remote procedure call carried by the request (gRPC over HTTP/2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcCall {
    /// `rpc.system`.
    pub system: &'static str,
    pub service: ShortString,
    pub method: ShortString,
    /// `grpc-status` from the trailers; None when it never arrived or was not decodable.
    pub status_code: Option<u32>,
}

/// One HTTP request and its response, as the traced process saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub kind: SpanKind,
    pub pid: Pid,
    pub tid: Tid,
    pub conn: ConnTuple,
    pub method: &'static str,
    /// The request target's path, without the query string.
    pub path: ShortString,
    pub status: u16,
    /// Kernel monotonic nanoseconds: first byte of the request seen, last byte of the response.
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
    /// Set for gRPC calls.
    pub rpc: Option<RpcCall>,
    /// The process, as discovery named it when the connection was first seen.
    pub resource: Arc<Resource>,
}
