//! beyla: the agent around the pipeline. `ebpf` loads the kernel probes and
//! reads their ring buffer, `discovery` picks the processes to trace,
//! `config` reads the settings, `golang` reads Go executables for the Go
//! probes; the stages after the kernel are in the
//! `beyla-pipeline` crate. The binary (main.rs) only wires them.

pub mod config;
pub mod discovery;
pub mod ebpf;
pub mod golang;
pub mod kubernetes;
