//! What the kernel reports, decoded; borrowed from the ring buffer so that
//! reading it allocates nothing.

use super::{ConnId, ConnTuple, Direction, Origin, Pid, SpanId, Tid, TraceId};

/// Bytes one socket syscall moved, with the prefix the probe copied.
#[derive(Debug, Clone, Copy)]
pub struct DataChunk<'a> {
    pub pid: Pid,
    pub tid: Tid,
    pub conn: ConnId,
    pub direction: Direction,
    pub origin: Origin,
    pub tuple: ConnTuple,
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    /// Bytes the syscall moved; `data` holds the first of them.
    pub bytes: u64,
    /// Plaintext from the TLS library, not the socket's (encrypted) bytes.
    pub tls: bool,
    pub data: &'a [u8],
}

impl DataChunk<'_> {
    /// When the first byte was seen: a read returns once bytes arrived (a
    /// blocking reader may have waited long before), a write starts sending at entry.
    pub fn first_byte_ns(&self) -> u64 {
        match self.direction {
            Direction::Ingress => self.end_mono_ns,
            Direction::Egress => self.start_mono_ns,
        }
    }

    /// Bytes that went by without being copied (beyond the capture size).
    pub fn uncaptured(&self) -> u64 {
        self.bytes.saturating_sub(self.data.len() as u64)
    }
}

/// Ids the kernel gave a request when it propagates context by header
/// (`ebpf.context_propagation`): the span must carry them, since they are
/// what the other side of the call sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// A client's: the span of the request its thread (or process) served.
    pub parent: Option<SpanId>,
}

/// Which request a [`KernelContext`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextRole {
    /// The next server request read on the connection.
    Server,
    /// The client request whose first write started at `start_mono_ns`: a
    /// `traceparent` with these ids went out in it.
    Client { start_mono_ns: u64 },
}

/// Sent by the kernel just before the data event of the request it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelContext {
    pub conn: ConnId,
    pub role: ContextRole,
    pub ids: KernelIds,
}

#[derive(Debug, Clone, Copy)]
pub enum KernelEvent<'a> {
    Data(DataChunk<'a>),
    Context(KernelContext),
    Close {
        conn: ConnId,
    },
    /// A traced process, or any while selecting by executable, exec'd.
    Exec {
        pid: Pid,
        filename: &'a [u8],
    },
    /// A traced process forked; the kernel traces the child already.
    Fork {
        parent: Pid,
        child: Pid,
    },
    /// A traced process's last thread exited.
    Exit {
        pid: Pid,
    },
    /// A traced Go process served its first TLS request.
    GoServing {
        pid: Pid,
    },
    /// A process opened (or closed) a listening TCP socket on `port`.
    Listen {
        pid: Pid,
        port: u16,
        listening: bool,
    },
}
