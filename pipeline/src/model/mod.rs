//! The types pipeline stages exchange; no stage reaches into another's internals.

mod event;
#[cfg(test)]
pub mod fixtures;
mod host;
mod ids;
mod kubernetes;
pub mod language;
mod operation;
mod registry;
mod request;
mod span;
mod text;

pub use event::{ContextRole, DataChunk, KernelContext, KernelEvent, KernelIds};
pub use host::Host;
pub use ids::{ConnId, Pid, SpanId, Tid, TraceId};
pub use kubernetes::KubernetesResource;
pub use language::Language;
pub use operation::{
    HttpMethod, HttpOperation, HttpVersion, KafkaOperation, KafkaOperationKind, Method, Operation,
    RedisOperation, RpcOperation, SqlOperation, MAX_HEADER_TEXT,
};
pub use registry::Registry;
pub use request::{ConnTuple, Direction, Origin, Request, SpanKind, TraceContext};
pub use span::{Resource, Span};
pub use text::ShortString;
