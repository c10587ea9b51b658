//! Everything that touches the kernel: start-up checks, loading and attaching
//! the probes, the traced-PID map, and reading the ring buffer.

mod abi;
mod pid_filter;
pub mod preflight;
mod probes;
mod reader;
mod tls;

pub use abi::{DecodeError, DEFAULT_CAPTURE, MAX_CAPTURE};
pub use pid_filter::PidFilter;
pub use probes::{Loaded, ProbeError, ProbeSettings, Probes, Wakeup};
pub use reader::{EventSink, RingReader, StopSignal};
pub use tls::TlsAttacher;
