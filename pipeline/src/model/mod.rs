//! The types pipeline stages exchange; no stage reaches into another's internals.

mod event;
#[cfg(test)]
pub mod fixtures;
mod ids;
mod operation;
mod registry;
mod request;
mod span;
mod text;

pub use event::{DataChunk, KernelEvent};
pub use ids::{ConnId, Pid, SpanId, Tid, TraceId};
pub use operation::{HttpOperation, Operation, RpcOperation};
pub use registry::Registry;
pub use request::{ConnTuple, Direction, Origin, Request, SpanKind, TraceContext};
pub use span::{Resource, Span};
pub use text::ShortString;
