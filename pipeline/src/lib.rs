//! beyla-pipeline: everything the agent does in user space after the kernel,
//! with no eBPF, no root and no build script, so that tests, fuzzing and
//! benchmarks need neither clang nor a kernel. The stages, in the order data
//! flows: `assemble` (per-connection framing, protocol detection) ->
//! `protocols` (parsers and stitchers behind one contract) -> `trace` (ids,
//! parent links) -> `decorate` (routes, times) -> `sample` -> `export`
//! (printer, OTLP, Prometheus). `model` holds the types the stages exchange,
//! `selfmetrics` counts what is dropped; `control` runs the tasks that are
//! not on the hot path.

pub mod assemble;
pub mod control;
pub mod decorate;
pub mod export;
pub mod model;
pub mod protocols;
pub mod sample;
pub mod selfmetrics;
pub mod semconv;
pub mod trace;
