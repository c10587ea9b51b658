//! Trace context: ids, incoming `traceparent`, parent links within a process
//! and between traced processes on this machine, and time.

mod clock;
mod context;
mod ids;
mod linker;
mod propagated;
pub mod same_node;

pub use clock::WallClock;
pub use context::{parse_traceparent, Parent};
pub use linker::Linker;
pub use propagated::Propagated;
pub use same_node::SameNode;
