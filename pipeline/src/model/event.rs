//! What the kernel reports, decoded; borrowed from the ring buffer so that
//! reading it allocates nothing.

use super::{ConnId, ConnTuple, Direction, Origin, Pid, Tid};

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

#[derive(Debug, Clone, Copy)]
pub enum KernelEvent<'a> {
    Data(DataChunk<'a>),
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
    /// A process opened (or closed) a listening TCP socket on `port`.
    Listen {
        pid: Pid,
        port: u16,
        listening: bool,
    },
}
