//! Uprobes on the libraries a traced process maps (the sets of
//! `probe_sets::LIBRARIES`), attached per process as it is traced and
//! detached when it stops being traced.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use aya::programs::uprobe::{UProbeError, UProbeLink, UProbeScope};
use aya::programs::{ProgramError, UProbe};
use aya::Ebpf;

use super::pid_map::PidMap;
use super::probe_sets::LIBRARIES;
use crate::discovery::LibraryProbes;
use crate::model::Pid;

/// Owns the loaded object after start-up: only library probes are attached later.
pub struct LibraryAttacher {
    ebpf: Ebpf,
    pids: Arc<PidMap>,
    attached: HashMap<Pid, Vec<UProbeLink>>,
    /// Files (set, device, inode) without any of a set's symbols: not looked
    /// through again (each attempt reads the file's symbol table, which for a
    /// large executable without OpenSSL costs milliseconds, at every retry).
    without: HashSet<(&'static str, u64, u64)>,
}

impl LibraryAttacher {
    pub(super) fn new(ebpf: Ebpf, pids: Arc<PidMap>) -> Self {
        Self {
            ebpf,
            pids,
            attached: HashMap::new(),
            without: HashSet::new(),
        }
    }
}

impl LibraryProbes for LibraryAttacher {
    /// A missing symbol (SSL_read_ex before OpenSSL 1.1.1, or an executable
    /// without OpenSSL) is skipped.
    fn attach(&mut self, pid: Pid) -> bool {
        let Some(scope) = NonZeroU32::new(pid.0).map(UProbeScope::OneProcess) else {
            return false;
        };
        let mut any = false;
        for set in LIBRARIES {
            let files = (set.locate)(pid);
            let mut links = Vec::new();
            for file in &files {
                let id = std::fs::metadata(file)
                    .map(|m| (set.name, m.dev(), m.ino()))
                    .ok();
                if id.is_some_and(|id| self.without.contains(&id)) {
                    continue;
                }
                let mut resolved_any = false;
                for (entry, symbol) in set.entries {
                    for program in [*entry, set.ret] {
                        let Some(probe) = self
                            .ebpf
                            .program_mut(program)
                            .and_then(|p| <&mut UProbe>::try_from(p).ok())
                        else {
                            continue;
                        };
                        match probe
                            .attach(*symbol, file, scope)
                            .and_then(|id| probe.take_link(id))
                        {
                            Ok(link) => {
                                resolved_any = true;
                                links.push(link);
                            }
                            Err(e) => {
                                resolved_any |= !matches!(
                                    e,
                                    ProgramError::UProbeError(UProbeError::SymbolError { .. })
                                );
                                log::debug!(
                                    "pid={pid}: no uprobe {program} on {symbol} in {file}: {e}"
                                )
                            }
                        }
                    }
                }
                // Only a file that lacks every symbol is remembered, not one
                // whose process was gone before the attach.
                if !resolved_any {
                    self.without.extend(id);
                }
            }
            if links.is_empty() {
                continue;
            }
            any = true;
            self.pids.add_flag(pid, set.pid_flag);
            log::info!(
                "pid={pid} {} uprobes attached ({})",
                set.name,
                files.into_iter().collect::<Vec<_>>().join(", ")
            );
            self.attached.entry(pid).or_default().extend(links);
        }
        any
    }

    fn detach(&mut self, pid: Pid) {
        self.attached.remove(&pid);
    }
}
