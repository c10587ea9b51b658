//! OpenSSL uprobes, attached per traced process to each libssl it maps and
//! detached when it stops being traced.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use aya::programs::uprobe::{UProbeLink, UProbeScope};
use aya::programs::{ProgramError, UProbe};
use aya::Ebpf;

use beyla_pipeline::model::Pid;
use beyla_pipeline::selfmetrics::{Counter, SelfMetrics};

use super::preflight::{capability_for, OPENSSL};

/// Entry probes and the OpenSSL function each attaches to; the one return
/// probe attaches to all of them.
const ENTRY_PROBES: &[(&str, &str)] = &[
    ("ssl_write_enter", "SSL_write"),
    ("ssl_write_ex_enter", "SSL_write_ex"),
    ("ssl_read_enter", "SSL_read"),
    ("ssl_read_ex_enter", "SSL_read_ex"),
];
const RETURN_PROBE: &str = "ssl_return_probe";
pub(super) const PROGRAMS: [&str; 5] = [
    "ssl_write_enter",
    "ssl_write_ex_enter",
    "ssl_read_enter",
    "ssl_read_ex_enter",
    RETURN_PROBE,
];

/// Attaches and detaches the TLS probes; shares the loaded object with `Probes`.
pub struct TlsAttacher {
    ebpf: Arc<Mutex<Ebpf>>,
    attached: HashMap<Pid, Vec<UProbeLink>>,
    /// Processes whose uprobes the kernel refused: counted and warned about
    /// once, not tried again.
    refused: HashSet<Pid>,
    metrics: Arc<SelfMetrics>,
}

/// The kernel's dynamic PMU for uprobes: its type number is in this file.
const UPROBE_PMU_TYPE: &str = "/sys/bus/event_source/devices/uprobe/type";
/// `exclude_kernel` in `perf_event_attr.flags`.
const EXCLUDE_KERNEL: u64 = 1 << 5;
/// perf_event_open's `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// The first 64 bytes of `struct perf_event_attr` (`PERF_ATTR_SIZE_VER0`),
/// enough to name a PMU and a uprobe path (`config1`).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttrV0 {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// Whether the kernel refuses uprobes to this process, asked without
/// creating one: the uprobe PMU checks the caller's privilege before it reads
/// the path, so a null path gives EACCES when refused and EINVAL when allowed.
fn uprobes_refused() -> Option<io::Error> {
    let pmu = std::fs::read_to_string(UPROBE_PMU_TYPE).ok()?;
    let attr = PerfEventAttrV0 {
        kind: pmu.trim().parse().ok()?,
        size: std::mem::size_of::<PerfEventAttrV0>() as u32,
        flags: EXCLUDE_KERNEL,
        ..PerfEventAttrV0::default()
    };
    // SAFETY: perf_event_open reads `size` bytes of a valid attr; this
    // process (pid 0), any CPU, no group; a returned fd is closed at once.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttrV0,
            0,
            -1,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us and is not used elsewhere.
        unsafe { libc::close(fd as i32) };
        return None;
    }
    Some(io::Error::last_os_error()).filter(is_permission_error)
}

fn is_permission_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

/// The capability the OpenSSL uprobes need, as named in the logs.
fn openssl_capability() -> String {
    capability_for(OPENSSL).map_or_else(|| "root".into(), |c| c.to_string())
}

/// Where OpenSSL lives in a process, as paths valid from the agent's mount
/// namespace: each libssl it maps, or else its own executable (Node.js and
/// others link OpenSSL statically and export its symbols).
fn openssl_objects(pid: Pid) -> BTreeSet<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let libs: BTreeSet<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with("libssl.so"))
        })
        .map(|path| format!("/proc/{pid}/root{path}"))
        .collect();
    if !libs.is_empty() {
        return libs;
    }
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|exe| BTreeSet::from([format!("/proc/{pid}/root{}", exe.display())]))
        .unwrap_or_default()
}

impl TlsAttacher {
    /// Warns at start when the kernel will refuse the OpenSSL uprobes.
    pub(super) fn new(ebpf: Arc<Mutex<Ebpf>>, metrics: Arc<SelfMetrics>) -> Self {
        if let Some(e) = uprobes_refused() {
            log::warn!(
                "feature {OPENSSL} (HTTPS through OpenSSL) is off: the kernel refuses uprobes to this process ({e}); grant {} for it. \
                 Each process it cannot instrument is counted in beyla_probe_attach_failures_total{{feature=\"{OPENSSL}\"}}",
                openssl_capability()
            );
        }
        Self {
            ebpf,
            attached: HashMap::new(),
            refused: HashSet::new(),
            metrics,
        }
    }

    /// Attaches to OpenSSL in `pid` as mapped now; returns 1 if anything was
    /// attached. A missing symbol (SSL_read_ex before OpenSSL 1.1.1, or an
    /// executable without OpenSSL) is skipped.
    pub fn attach(&mut self, pid: Pid) -> usize {
        let libs = openssl_objects(pid);
        let Some(scope) = NonZeroU32::new(pid.0).map(UProbeScope::OneProcess) else {
            return 0;
        };
        if libs.is_empty() || self.refused.contains(&pid) {
            return 0;
        }
        let mut ebpf = self.ebpf.lock().unwrap_or_else(|p| p.into_inner());
        let mut links = Vec::new();
        let mut refused = None;
        for lib in &libs {
            for (entry, function) in ENTRY_PROBES {
                for program in [*entry, RETURN_PROBE] {
                    let Some(probe) = ebpf
                        .program_mut(program)
                        .and_then(|p| <&mut UProbe>::try_from(p).ok())
                    else {
                        continue;
                    };
                    match probe
                        .attach(*function, lib, scope)
                        .and_then(|id| probe.take_link(id))
                    {
                        Ok(link) => links.push(link),
                        Err(ProgramError::SyscallError(e)) if is_permission_error(&e.io_error) => {
                            refused = Some(e);
                        }
                        Err(e) => log::debug!(
                            "pid={pid}: no uprobe {program} on {function} in {lib}: {e}"
                        ),
                    }
                }
            }
        }
        let attached = !links.is_empty();
        if let (false, Some(e)) = (attached, refused) {
            self.refused.insert(pid);
            self.metrics.inc(Counter::ProbeAttachFailuresOpenssl);
            log::warn!(
                "TLS: pid={pid}: OpenSSL uprobes refused ({}: {}): its HTTPS requests give no spans; grant {}",
                e.call,
                e.io_error,
                openssl_capability()
            );
        }
        if attached {
            log::info!(
                "TLS: pid={pid} OpenSSL uprobes attached ({})",
                libs.into_iter().collect::<Vec<_>>().join(", ")
            );
            self.attached.entry(pid).or_default().extend(links);
        }
        usize::from(attached)
    }

    /// Detaches from a process that is no longer traced.
    pub fn detach(&mut self, pid: Pid) {
        self.attached.remove(&pid);
        self.refused.remove(&pid);
    }
}
