//! What can go wrong loading and attaching the probes: one sentence each,
//! naming the program and where it attaches.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("loading the eBPF probes failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the eBPF object has no program or map `{0}` (build mismatch)")]
    Missing(String),
    #[error("probe {program} could not be loaded or attached to {target}: {source}")]
    Attach {
        program: &'static str,
        /// Where it attaches: `tracepoint syscalls/sys_enter_read`, `fentry tcp_sendmsg`, ...
        target: String,
        source: Box<aya::programs::ProgramError>,
    },
    #[error("the kernel's BTF (/sys/kernel/btf/vmlinux) could not be read: {0}")]
    Btf(#[from] aya::BtfError),
    #[error("capture path {path} is not offered by this kernel: {reason}")]
    PathRefused { path: &'static str, reason: String },
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("eBPF map {name}: {reason}")]
    MapSetup { name: &'static str, reason: String },
}
