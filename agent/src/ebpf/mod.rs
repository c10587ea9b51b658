//! Everything that touches the kernel: start-up checks, loading and attaching
//! the probes, the traced-PID map, and reading the ring buffer.

mod abi;
mod pid_filter;
pub mod preflight;
mod probes;
mod reader;
mod tls;

pub use abi::{DEFAULT_CAPTURE, MAX_CAPTURE};
pub use pid_filter::PidFilter;
pub use probes::{KernelDropCounts, Loaded, ProbeError, ProbeSettings, Probes, Wakeup};
pub use reader::read_events;
pub use tls::TlsAttacher;
