//! Loads the embedded BPF object, sets its read-only settings, chooses the
//! capture path this kernel offers and attaches the probe sets of
//! `probe_sets`, saying in the log what it chose and how long it took.

use std::sync::Arc;
use std::time::Instant;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, FEntry, FExit, RawTracePoint, TracePoint, UProbe};
use aya::{Btf, Ebpf, EbpfLoader};
use beyla_pipeline::selfmetrics::{KernelDrop, KernelDropCounts, SelfMetrics};

use super::abi;
use super::error::ProbeError;
use super::libraries::LibraryAttacher;
use super::pid_map::PidMap;
use super::probe_sets::{go_programs, Attach, CapturePath, Probe, LIBRARIES, LIFECYCLE, LISTENING};
use super::propagation::HeaderInjection;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/beyla.bpf.o"));
/// The same probes and context propagation's (`agent/build.rs` says why apart).
static OBJECT_WITH_PROPAGATION: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/beyla-propagation.bpf.o"));

/// Settings written into the object's read-only globals before it is loaded,
/// and what to attach.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Payload bytes copied per syscall.
    pub capture_size: u32,
    /// Report every exec, so processes selected by executable are traced from their first syscall.
    pub watch_execs: bool,
    /// Report listening sockets opened and closed (selecting by port).
    pub watch_listens: bool,
    pub wakeup: Wakeup,
    /// The capture path to use; None: the first of [`CapturePath::PREFERENCE`] this kernel offers.
    pub capture_path: Option<CapturePath>,
    /// Write `traceparent` into traced clients' HTTP/1 requests (`ebpf.context_propagation`).
    pub propagate_headers: bool,
    /// Where library attach failures are counted.
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

/// An attached program; dropping it detaches it.
type Link = Box<dyn Send>;

/// The attached programs. Each link is held here so that detaching can close
/// them concurrently: each close waits for an RCU grace period, and while the
/// kernel still serialises the unregistering, concurrent closes share grace
/// periods (measured here: 2.1 s one after another, 1.0 s together).
pub struct Probes {
    links: Vec<Link>,
}

/// Everything the agent keeps of a loaded object.
pub struct Loaded {
    pub probes: Probes,
    pub ring: RingBuf<MapData>,
    pub pids: Arc<PidMap>,
    pub drops: KernelDrops,
    pub libraries: LibraryAttacher,
    pub capture_path: CapturePath,
    /// Present when `traceparent` headers are injected.
    pub header_injection: Option<HeaderInjection>,
}

impl Probes {
    pub fn load(settings: ProbeSettings) -> Result<Loaded, ProbeError> {
        let started = Instant::now();
        log::info!(
            "eBPF: loading the probes (kernel {}); on a slow or emulated CPU the verifier may take seconds",
            kernel_release()
        );
        let capture = settings.capture_size.min(abi::MAX_CAPTURE - 1);
        let watch = u8::from(settings.watch_execs);
        let chunks = PidMap::chunks();
        // One call slot per thread id the kernel hands out, up to the maximum.
        let call_slots = (chunks * abi::PID_CHUNK)
            .next_power_of_two()
            .min(abi::MAX_CALL_SLOTS);
        let mut ebpf = EbpfLoader::new()
            .override_global("capture_size", &capture, true)
            .override_global("watch_execs", &watch, true)
            .override_global("wakeup_len", &settings.wakeup.kernel_value(), true)
            .override_global("call_slot_mask", &(call_slots - 1), true)
            .override_global(
                "propagate_headers",
                &u8::from(settings.propagate_headers),
                true,
            )
            .map_max_entries("traced_pids", chunks)
            .map_max_entries("call_slots", call_slots)
            // Context propagation off: its table of serving requests takes no room.
            .map_max_entries(
                "serving",
                if settings.propagate_headers {
                    abi::MAX_SERVING
                } else {
                    1
                },
            )
            .load(if settings.propagate_headers {
                OBJECT_WITH_PROPAGATION
            } else {
                OBJECT
            })?;

        let mut attacher = Attacher {
            ebpf: &mut ebpf,
            btf: None,
        };
        let mut links = Vec::new();
        for probe in LIFECYCLE {
            links.push(attacher.attach(probe)?);
        }
        if settings.watch_listens {
            for probe in LISTENING {
                links.push(attacher.attach(probe)?);
            }
        }
        let (capture_path, capture_links) =
            attacher.choose_path(settings.capture_path, settings.propagate_headers)?;
        let capture_programs = capture_links.len();
        links.extend(capture_links);

        // The library probes are loaded now and attached per process later.
        let mut library_programs = 0;
        for set in LIBRARIES {
            for program in set.programs() {
                let failed = |source| ProbeError::Attach {
                    program,
                    target: format!("{} uprobes", set.name),
                    source: Box::new(source),
                };
                let probe: &mut UProbe = ebpf
                    .program_mut(program)
                    .ok_or_else(|| ProbeError::Missing(program.into()))?
                    .try_into()
                    .map_err(failed)?;
                probe.load().map_err(failed)?;
                library_programs += 1;
            }
        }
        for program in go_programs() {
            let failed = |source| ProbeError::Attach {
                program,
                target: "Go uprobes".into(),
                source: Box::new(source),
            };
            let probe: &mut UProbe = ebpf
                .program_mut(program)
                .ok_or_else(|| ProbeError::Missing(program.into()))?
                .try_into()
                .map_err(failed)?;
            probe.load().map_err(failed)?;
            library_programs += 1;
        }
        let header_injection = if settings.propagate_headers {
            Some(HeaderInjection::attach(&mut ebpf)?)
        } else {
            None
        };
        let ring =
            RingBuf::try_from(take(&mut ebpf, "events")?).map_err(|source| ProbeError::Map {
                name: "events",
                source,
            })?;
        let pids = Arc::new(PidMap::new(take(&mut ebpf, "traced_pids")?, chunks)?);
        let per_cpu = |ebpf: &mut Ebpf, name: &'static str| {
            PerCpuArray::try_from(take(ebpf, name)?)
                .map_err(|source| ProbeError::Map { name, source })
        };
        let drops = KernelDrops {
            drops: per_cpu(&mut ebpf, "drops")?,
            propagation: header_injection
                .is_some()
                .then(|| per_cpu(&mut ebpf, "propagation_counts"))
                .transpose()?,
        };
        log::info!(
            "eBPF: capture path {capture_path}; {capture_programs} socket, {} process and {library_programs} library programs loaded in {:.2} s; traced-PID map for {} pids",
            links.len() - capture_programs,
            started.elapsed().as_secs_f64(),
            chunks * abi::PID_CHUNK,
        );
        Ok(Loaded {
            libraries: LibraryAttacher::new(ebpf, Arc::clone(&pids), settings.metrics),
            probes: Probes { links },
            ring,
            pids,
            drops,
            capture_path,
            header_injection,
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

/// Loads and attaches programs of one object.
struct Attacher<'a> {
    ebpf: &'a mut Ebpf,
    /// The kernel's BTF, read once when a program needs it.
    btf: Option<Btf>,
}

impl Attacher<'_> {
    /// The forced path, or the first of the preference order that loads and
    /// attaches whole; each refusal is logged with its reason. With headers
    /// injected, not fentry: a socket in a sockhash sends through the
    /// sockmap's own function, never `tcp_sendmsg`, so its requests would go unseen.
    fn choose_path(
        &mut self,
        forced: Option<CapturePath>,
        propagate_headers: bool,
    ) -> Result<(CapturePath, Vec<Link>), ProbeError> {
        if propagate_headers && forced == Some(CapturePath::Fentry) {
            return Err(ProbeError::PathRefused {
                path: CapturePath::Fentry.name(),
                reason: "it does not see the requests of sockets whose headers are injected \
                         (ebpf.context_propagation); choose another capture path"
                    .into(),
            });
        }
        let preferred: Vec<CapturePath> = CapturePath::PREFERENCE
            .into_iter()
            .filter(|&path| !(propagate_headers && path == CapturePath::Fentry))
            .collect();
        let candidates: &[CapturePath] = match &forced {
            Some(path) => std::slice::from_ref(path),
            None => &preferred,
        };
        let mut refused = Vec::new();
        for &path in candidates {
            match self.attach_all(path.probes()) {
                Ok(links) => {
                    if !refused.is_empty() {
                        log::info!(
                            "eBPF: capture paths this kernel refused: {}",
                            refused.join("; ")
                        );
                    }
                    return Ok((path, links));
                }
                Err(e) if forced.is_some() => {
                    return Err(ProbeError::PathRefused {
                        path: path.name(),
                        reason: e.to_string(),
                    })
                }
                Err(e) => {
                    log::debug!("eBPF: capture path {path} refused: {e}");
                    refused.push(format!("{path}: {}", first_line(&e.to_string())));
                }
            }
        }
        Err(ProbeError::PathRefused {
            path: "(any)",
            reason: refused.join("; "),
        })
    }

    /// Attaches every probe of a set, or none: on a failure the ones attached
    /// are detached and the set's programs unloaded.
    fn attach_all(&mut self, probes: &'static [Probe]) -> Result<Vec<Link>, ProbeError> {
        let mut links = Vec::new();
        for probe in probes {
            match self.attach(probe) {
                Ok(link) => links.push(link),
                Err(e) => {
                    drop(links);
                    for probe in probes {
                        self.unload(probe);
                    }
                    return Err(e);
                }
            }
        }
        Ok(links)
    }

    fn attach(&mut self, probe: &Probe) -> Result<Link, ProbeError> {
        let failed = |source| ProbeError::Attach {
            program: probe.program,
            target: probe.attach.to_string(),
            source: Box::new(source),
        };
        let needs_btf = matches!(
            probe.attach,
            Attach::BtfTracepoint(_) | Attach::FEntry(_) | Attach::FExit(_)
        );
        if needs_btf && self.btf.is_none() {
            self.btf = Some(Btf::from_sys_fs()?);
        }
        let program = self
            .ebpf
            .program_mut(probe.program)
            .ok_or_else(|| ProbeError::Missing(probe.program.into()))?;
        Ok(match probe.attach {
            Attach::Tracepoint { category, name } => {
                let p: &mut TracePoint = program.try_into().map_err(failed)?;
                p.load().map_err(failed)?;
                let id = p.attach(category, name).map_err(failed)?;
                Box::new(p.take_link(id).map_err(failed)?)
            }
            Attach::RawTracepoint(name) => {
                let p: &mut RawTracePoint = program.try_into().map_err(failed)?;
                p.load().map_err(failed)?;
                let id = p.attach(name).map_err(failed)?;
                Box::new(p.take_link(id).map_err(failed)?)
            }
            Attach::BtfTracepoint(name) => {
                let btf = self.btf.as_ref().expect("read above");
                let p: &mut BtfTracePoint = program.try_into().map_err(failed)?;
                p.load(name, btf).map_err(failed)?;
                let id = p.attach().map_err(failed)?;
                Box::new(p.take_link(id).map_err(failed)?)
            }
            Attach::FEntry(function) => {
                let btf = self.btf.as_ref().expect("read above");
                let p: &mut FEntry = program.try_into().map_err(failed)?;
                p.load(function, btf).map_err(failed)?;
                let id = p.attach().map_err(failed)?;
                Box::new(p.take_link(id).map_err(failed)?)
            }
            Attach::FExit(function) => {
                let btf = self.btf.as_ref().expect("read above");
                let p: &mut FExit = program.try_into().map_err(failed)?;
                p.load(function, btf).map_err(failed)?;
                let id = p.attach().map_err(failed)?;
                Box::new(p.take_link(id).map_err(failed)?)
            }
        })
    }

    /// Unloads a program of a refused set, if it was loaded.
    fn unload(&mut self, probe: &Probe) {
        let Some(program) = self.ebpf.program_mut(probe.program) else {
            return;
        };
        let _ = match probe.attach {
            Attach::Tracepoint { .. } => <&mut TracePoint>::try_from(program).map(|p| p.unload()),
            Attach::RawTracepoint(_) => <&mut RawTracePoint>::try_from(program).map(|p| p.unload()),
            Attach::BtfTracepoint(_) => <&mut BtfTracePoint>::try_from(program).map(|p| p.unload()),
            Attach::FEntry(_) => <&mut FEntry>::try_from(program).map(|p| p.unload()),
            Attach::FExit(_) => <&mut FExit>::try_from(program).map(|p| p.unload()),
        };
    }
}

/// An error's first sentence: the verifier's log follows it, at debug level.
fn first_line(error: &str) -> &str {
    let end = error.find(". Verifier output").or_else(|| error.find('\n'));
    &error[..end.unwrap_or(error.len())]
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name)
        .ok_or_else(|| ProbeError::Missing(name.into()))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The kernel's counters (drops, and what context propagation did), summed over CPUs.
pub struct KernelDrops {
    drops: PerCpuArray<MapData, u64>,
    /// Present when `traceparent` headers are injected.
    propagation: Option<PerCpuArray<MapData, u64>>,
}

impl KernelDrops {
    pub fn read(&self) -> KernelDropCounts {
        let sum = |map: Option<&PerCpuArray<MapData, u64>>, index: u32| {
            map.and_then(|m| m.get(&index, 0).ok())
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0)
        };
        let drops = Some(&self.drops);
        let propagation = self.propagation.as_ref();
        KernelDropCounts::read(|counter| match counter {
            KernelDrop::RingbufFull => sum(drops, abi::DROP_RINGBUF_FULL),
            KernelDrop::InflightMapFull => sum(drops, abi::DROP_ARGS_MAP_FULL),
            KernelDrop::ConnectionMapFull => sum(drops, abi::DROP_CONN_MAP_FULL),
            KernelDrop::TlsUnknownConnection => sum(drops, abi::DROP_TLS_UNKNOWN_CONN),
            KernelDrop::PropagationInjected => sum(propagation, abi::PROPAGATION_INJECTED),
            KernelDrop::PropagationHadContext => sum(propagation, abi::PROPAGATION_HAD_CONTEXT),
            KernelDrop::PropagationHeadIncomplete => {
                sum(propagation, abi::PROPAGATION_HEAD_INCOMPLETE)
            }
            KernelDrop::PropagationPushFailed => sum(propagation, abi::PROPAGATION_PUSH_FAILED),
        })
    }
}
