//! OpenSSL uprobes, attached per traced process to each libssl it maps and
//! detached when it stops being traced.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use aya::programs::uprobe::{UProbeLink, UProbeScope};
use aya::programs::UProbe;
use aya::Ebpf;

use beyla_pipeline::model::Pid;

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
    pub(super) fn new(ebpf: Arc<Mutex<Ebpf>>) -> Self {
        Self {
            ebpf,
            attached: HashMap::new(),
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
        if libs.is_empty() {
            return 0;
        }
        let mut ebpf = self.ebpf.lock().unwrap_or_else(|p| p.into_inner());
        let mut links = Vec::new();
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
                        Err(e) => log::debug!(
                            "pid={pid}: no uprobe {program} on {function} in {lib}: {e}"
                        ),
                    }
                }
            }
        }
        let attached = !links.is_empty();
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
    }
}
