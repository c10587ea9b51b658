//! Reads the ring buffer on the pipeline's own thread, handing each record to
//! the next stage by reference: nothing is copied or allocated per event, and
//! a wake-up costs one `poll`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};

use super::abi::{self, DecodeError};
use beyla_pipeline::model::KernelEvent;

/// When the probes do not wake the reader for every record, the reader also
/// looks on its own this often, so a quiet service's last requests are not
/// held back for ever.
const BATCHED_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Records handed on between two [`EventSink::drained`] calls at most: under
/// a load that never lets the ring empty, spans still flow, and what a batch
/// holds stays bounded (it kept 32,768 requests, 13 MB, for good).
const MAX_BATCH_RECORDS: usize = 4096;

/// Where the records go.
pub trait EventSink {
    fn event(&mut self, event: Result<KernelEvent<'_>, DecodeError>);
    /// The ring is empty for now, or [`MAX_BATCH_RECORDS`] were handed on:
    /// hand on what the records so far produced.
    fn drained(&mut self);
}

/// Asks a reader blocked in [`RingReader::read_until_stopped`] to return; any
/// thread may raise it.
pub struct StopSignal(OwnedFd);

impl StopSignal {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a valid descriptor is owned from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn raise(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, as eventfd expects. It cannot
        // fail short of the counter overflowing, which one raise per signal never does.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// The ring buffer, and how its wake-ups come.
pub struct RingReader {
    ring: RingBuf<MapData>,
    /// The probes do not wake the reader for every record: it polls on its own too.
    polls: bool,
}

impl RingReader {
    pub fn new(ring: RingBuf<MapData>, polls: bool) -> Self {
        Self { ring, polls }
    }

    /// Hands every record the ring holds to `sink`, in batches of at most
    /// [`MAX_BATCH_RECORDS`], each ended by [`EventSink::drained`].
    pub fn drain(&mut self, sink: &mut impl EventSink) {
        let mut batch = 0;
        while let Some(record) = self.ring.next() {
            sink.event(abi::decode(&record));
            batch += 1;
            if batch == MAX_BATCH_RECORDS {
                sink.drained();
                batch = 0;
            }
        }
        sink.drained();
    }

    /// Reads until `stop` is raised (or polling fails, which is logged), then returns.
    pub fn read_until_stopped(&mut self, stop: &StopSignal, sink: &mut impl EventSink) {
        let timeout_ms = if self.polls {
            BATCHED_POLL_INTERVAL.as_millis() as libc::c_int
        } else {
            -1
        };
        loop {
            self.drain(sink);
            let mut fds = [
                libc::pollfd {
                    fd: self.ring.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop.0.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("cannot poll the eBPF ring buffer: {e}");
                return;
            }
            if fds[1].revents != 0 {
                return;
            }
        }
    }
}
