//! Everything that touches the kernel: start-up checks, the probe sets and
//! loading them, the traced-PID map, library uprobes, and reading the ring buffer.

mod abi;
mod error;
mod libraries;
mod loader;
mod pid_map;
pub mod preflight;
mod probe_sets;
mod propagation;
mod reader;

pub use abi::{DecodeError, DEFAULT_CAPTURE, MAX_CAPTURE};
pub use error::ProbeError;
pub use libraries::LibraryAttacher;
pub use loader::{KernelDrops, Loaded, ProbeSettings, Probes, Wakeup};
pub use pid_map::PidMap;
pub use probe_sets::CapturePath;
pub use propagation::HeaderInjection;
pub use reader::{EventSink, RingReader, StopSignal};
