//! beyla: eBPF auto-instrumentation. The stages, in the order data flows:
//! `ebpf` (kernel probes, ring buffer) -> `assemble` (per-connection framing)
//! -> `protocols` (HTTP/1 parsing and stitching) -> `trace` (ids, links) ->
//! `decorate` (routes, times) -> `sample` -> `export` (printer, OTLP,
//! Prometheus). `discovery` picks the processes, `config` reads the settings,
//! `model` holds the types the stages exchange, `selfmetrics` counts drops.
//! The binary (main.rs) only wires them; benches and tests use them directly.

pub mod assemble;
pub mod config;
pub mod decorate;
pub mod discovery;
pub mod ebpf;
pub mod export;
pub mod golang;
pub mod model;
pub mod protocols;
pub mod sample;
pub mod selfmetrics;
pub mod trace;
