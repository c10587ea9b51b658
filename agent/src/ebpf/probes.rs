//! Loads the embedded BPF object, sets its read-only settings and attaches every program.

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::trace_point::TracePointLink;
use aya::programs::{TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use beyla_pipeline::selfmetrics::{KernelDrop, KernelDropCounts, SelfMetrics};
use thiserror::Error;

use super::abi;
use super::pid_filter::PidFilter;
use super::tls::{self, TlsAttacher};
use std::sync::{Arc, Mutex};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/beyla.bpf.o"));

/// Socket syscalls captured with an enter and an exit program each.
const CAPTURED_SYSCALLS: &[&str] = &[
    "read", "recvfrom", "readv", "recvmsg", "write", "sendto", "writev", "sendmsg", "accept",
    "accept4", "connect",
];

/// Settings written into the object's read-only globals before it is loaded.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Payload bytes copied per syscall.
    pub capture_size: u32,
    /// Report execs, so processes selected by executable are traced from their first syscall.
    pub watch_execs: bool,
    pub wakeup: Wakeup,
    /// Where attach failures are counted.
    pub metrics: Arc<SelfMetrics>,
}

/// When the probes wake the ring-buffer reader (`ebpf.wakeup_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// Not per record: the reader polls on its own and the probes wake it
    /// only when the ring holds a backlog (`ebpf.wakeup_len` unset).
    Adaptive,
    /// Once per this many records per CPU; 1: every record.
    EveryRecords(u32),
}

impl Wakeup {
    pub fn from_config(wakeup_len: Option<u32>) -> Self {
        wakeup_len.map_or(Self::Adaptive, |n| Self::EveryRecords(n.max(1)))
    }

    /// Whether the reader must poll on its own, because the probes stay
    /// silent for a while.
    pub fn reader_polls(self) -> bool {
        self != Self::EveryRecords(1)
    }

    fn kernel_value(self) -> u32 {
        match self {
            Self::Adaptive => abi::WAKEUP_ADAPTIVE,
            Self::EveryRecords(n) => n,
        }
    }
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("loading the eBPF probes failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the eBPF object has no program or map `{0}` (build mismatch)")]
    Missing(&'static str),
    #[error(
        "probe {program} could not be loaded or attached to tracepoint {category}/{name}: {source}"
    )]
    Attach {
        program: String,
        category: &'static str,
        name: String,
        source: Box<aya::programs::ProgramError>,
    },
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
}

/// The attached programs. Each link is held here so that detaching can close
/// them concurrently: each close waits for an RCU grace period, and while the
/// kernel still serialises the unregistering, concurrent closes share grace
/// periods (measured here: 2.1 s one after another, 1.0 s together).
pub struct Probes {
    links: Vec<TracePointLink>,
    /// Shared with the TLS attacher, which attaches uprobes as processes come.
    _ebpf: Arc<Mutex<Ebpf>>,
}

/// Everything the agent keeps of a loaded object.
pub struct Loaded {
    pub probes: Probes,
    pub ring: RingBuf<MapData>,
    pub pids: PidFilter,
    pub drops: KernelDrops,
    pub tls: TlsAttacher,
}

impl Probes {
    pub fn load(settings: ProbeSettings) -> Result<Loaded, ProbeError> {
        let capture = settings.capture_size.min(abi::MAX_CAPTURE - 1);
        let watch = u8::from(settings.watch_execs);
        let mut ebpf = EbpfLoader::new()
            .override_global("capture_size", &capture, true)
            .override_global("watch_execs", &watch, true)
            .override_global("wakeup_len", &settings.wakeup.kernel_value(), true)
            .load(OBJECT)?;

        let mut links = Vec::new();
        let mut attach = |program: String, category: &'static str, name: String| {
            let tp: &mut TracePoint = ebpf
                .program_mut(&program)
                .ok_or(ProbeError::Missing("tracepoint program"))?
                .try_into()
                .map_err(|source| ProbeError::Attach {
                    program: program.clone(),
                    category,
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            tp.load()
                .and_then(|()| tp.attach(category, &name))
                .and_then(|id| tp.take_link(id))
                .map(|link| links.push(link))
                .map_err(|source| ProbeError::Attach {
                    program,
                    category,
                    name,
                    source: Box::new(source),
                })
        };
        for syscall in CAPTURED_SYSCALLS {
            for phase in ["enter", "exit"] {
                attach(
                    format!("{phase}_{syscall}"),
                    "syscalls",
                    format!("sys_{phase}_{syscall}"),
                )?;
            }
        }
        attach("enter_close".into(), "syscalls", "sys_enter_close".into())?;
        attach("on_exec".into(), "sched", "sched_process_exec".into())?;
        attach(
            "on_thread_exit".into(),
            "sched",
            "sched_process_exit".into(),
        )?;

        // The TLS probes are loaded now and attached per process later.
        for program in tls::PROGRAMS {
            let failed = |source| ProbeError::Attach {
                program: program.into(),
                category: "uprobe",
                name: "libssl".into(),
                source: Box::new(source),
            };
            let probe: &mut UProbe = ebpf
                .program_mut(program)
                .ok_or(ProbeError::Missing("uprobe program"))?
                .try_into()
                .map_err(failed)?;
            probe.load().map_err(failed)?;
        }
        let ring =
            RingBuf::try_from(take(&mut ebpf, "events")?).map_err(|source| ProbeError::Map {
                name: "events",
                source,
            })?;
        let pids = PidFilter::new(take(&mut ebpf, "traced_pids")?)?;
        let drops =
            PerCpuArray::try_from(take(&mut ebpf, "drops")?).map_err(|source| ProbeError::Map {
                name: "drops",
                source,
            })?;
        let ebpf = Arc::new(Mutex::new(ebpf));
        Ok(Loaded {
            tls: TlsAttacher::new(Arc::clone(&ebpf), settings.metrics),
            probes: Probes { links, _ebpf: ebpf },
            ring,
            pids,
            drops: KernelDrops(drops),
        })
    }

    /// Detaches every program; events already in the ring buffer stay readable.
    pub fn detach(self) {
        std::thread::scope(|s| {
            for link in self.links {
                s.spawn(move || drop(link));
            }
        });
    }
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name).ok_or(ProbeError::Missing(name))
}

/// The kernel's drop counters, summed over CPUs.
pub struct KernelDrops(PerCpuArray<MapData, u64>);

impl KernelDrops {
    pub fn read(&self) -> KernelDropCounts {
        let sum = |reason: u32| {
            self.0
                .get(&reason, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0)
        };
        KernelDropCounts::read(|drop| match drop {
            KernelDrop::RingbufFull => sum(abi::DROP_RINGBUF_FULL),
            KernelDrop::InflightMapFull => sum(abi::DROP_ARGS_MAP_FULL),
            KernelDrop::ConnectionMapFull => sum(abi::DROP_CONN_MAP_FULL),
            KernelDrop::TlsUnknownConnection => sum(abi::DROP_TLS_UNKNOWN_CONN),
            // Counted in the propagation program's own map.
            KernelDrop::PropagationInjected
            | KernelDrop::PropagationHadContext
            | KernelDrop::PropagationHeadIncomplete
            | KernelDrop::PropagationPushFailed => 0,
        })
    }
}
