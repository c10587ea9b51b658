//! Trace context: ids, incoming `traceparent`, parent links, and time.

mod clock;
mod context;
mod ids;
mod linker;

pub use clock::WallClock;
pub use linker::Linker;
