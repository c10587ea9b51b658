//! Uprobes on the libraries a traced process maps (the sets of
//! `probe_sets::LIBRARIES`), and on a Go executable's own functions
//! (`probe_sets::GO_FUNCTIONS`, placed by `golang`), attached per process
//! as it is traced and detached when it stops being traced.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use aya::programs::uprobe::{UProbeError, UProbeLink, UProbeScope};
use aya::programs::{ProgramError, UProbe};
use aya::Ebpf;

use super::abi::GoOffsets;
use super::pid_map::PidMap;
use super::probe_sets::{GoFunction, GO_FUNCTIONS, LIBRARIES};
use crate::discovery::LibraryProbes;
use crate::golang::{self, GoBinary};
use crate::model::Pid;

/// The map the Go probes read a process's struct offsets from.
const GO_PROCS: &str = "go_procs";

/// Owns the loaded object after start-up: only library probes are attached later.
pub struct LibraryAttacher {
    ebpf: Ebpf,
    pids: Arc<PidMap>,
    attached: HashMap<Pid, Vec<UProbeLink>>,
    /// Files (set, device, inode) without any of a set's symbols: not looked
    /// through again (each attempt reads the file's symbol table, which for a
    /// large executable without OpenSSL costs milliseconds, at every retry).
    without: HashSet<(&'static str, u64, u64)>,
    /// Executables by (device, inode): the Go probes' places, or None when
    /// it is not a Go binary the probes can take (read once per file).
    go_binaries: HashMap<(u64, u64), Option<Arc<GoBinary>>>,
}

impl LibraryAttacher {
    pub(super) fn new(ebpf: Ebpf, pids: Arc<PidMap>) -> Self {
        Self {
            ebpf,
            pids,
            attached: HashMap::new(),
            without: HashSet::new(),
            go_binaries: HashMap::new(),
        }
    }

    /// The Go probes for `pid` when its executable is a Go binary that uses
    /// crypto/tls; its struct offsets are written first, so the first call
    /// probed finds them. False for any other executable, or when attached already.
    fn attach_go(&mut self, pid: Pid, scope: UProbeScope) -> bool {
        if self.attached.contains_key(&pid) {
            return false;
        }
        let exe = match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(exe) => format!("/proc/{pid}/root{}", exe.display()),
            Err(_) => return false,
        };
        let Ok(meta) = std::fs::metadata(&exe) else {
            return false;
        };
        let names: Vec<&'static str> = GO_FUNCTIONS.iter().map(|f| f.name).collect();
        let go = self
            .go_binaries
            .entry((meta.dev(), meta.ino()))
            .or_insert_with(|| match golang::inspect(exe.as_ref(), &names) {
                Ok(go) => go.map(Arc::new),
                Err(e) => {
                    log::warn!("pid={pid}: no Go probes: {e}");
                    None
                }
            })
            .clone();
        let Some(go) = go else {
            return false;
        };
        if !go
            .functions
            .iter()
            .any(|f| f.name.starts_with("crypto/tls."))
        {
            log::debug!("pid={pid}: Go executable without crypto/tls");
            return false;
        }
        let offsets = GoOffsets::from(go.offsets);
        let written = self
            .ebpf
            .map_mut(GO_PROCS)
            .ok_or(aya::maps::MapError::InvalidName {
                name: GO_PROCS.into(),
            })
            .and_then(aya::maps::HashMap::<_, u32, GoOffsets>::try_from)
            .and_then(|mut map| map.insert(pid.0, offsets, 0));
        if let Err(e) = written {
            log::warn!("pid={pid}: no Go probes: {GO_PROCS}: {e}");
            return false;
        }
        let mut links = Vec::new();
        for found in &go.functions {
            let Some(function) = GO_FUNCTIONS.iter().find(|f| f.name == found.name) else {
                continue;
            };
            let returns = function
                .ret
                .map(|ret| found.returns.iter().map(move |&at| (ret, at)));
            let places =
                std::iter::once((function.entry, found.entry)).chain(returns.into_iter().flatten());
            for (program, at) in places {
                match self.uprobe_at(program, at, &exe, scope, function) {
                    Ok(link) => links.push(link),
                    Err(e) => log::warn!(
                        "pid={pid}: no uprobe {program} on {} at {at:#x} in {exe}: {e}",
                        function.name
                    ),
                }
            }
        }
        if links.is_empty() {
            return false;
        }
        log::info!(
            "pid={pid} Go {} uprobes attached ({} {}, {}, {} places)",
            go.build.version,
            go.build.module,
            exe,
            if go.has_symbols {
                "symbols"
            } else {
                "stripped"
            },
            links.len()
        );
        self.attached.entry(pid).or_default().extend(links);
        true
    }

    fn uprobe_at(
        &mut self,
        program: &'static str,
        file_offset: u64,
        exe: &str,
        scope: UProbeScope,
        function: &GoFunction,
    ) -> Result<UProbeLink, ProgramError> {
        let probe: &mut UProbe = self
            .ebpf
            .program_mut(program)
            .ok_or(ProgramError::NotLoaded)?
            .try_into()?;
        log::debug!("{program}: {} at {file_offset:#x}", function.name);
        probe
            .attach(file_offset, exe, scope)
            .and_then(|id| probe.take_link(id))
    }
}

impl LibraryProbes for LibraryAttacher {
    /// A missing symbol (SSL_read_ex before OpenSSL 1.1.1, or an executable
    /// without OpenSSL) is skipped.
    fn attach(&mut self, pid: Pid) -> bool {
        let Some(scope) = NonZeroU32::new(pid.0).map(UProbeScope::OneProcess) else {
            return false;
        };
        // A Go program's TLS is its own: first, so that a short-lived
        // process gets its probes before the OpenSSL symbol look-ups.
        if self.attach_go(pid, scope) {
            return true;
        }
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
        if self.attached.remove(&pid).is_some() {
            if let Some(Ok(mut map)) = self
                .ebpf
                .map_mut(GO_PROCS)
                .map(aya::maps::HashMap::<_, u32, GoOffsets>::try_from)
            {
                let _ = map.remove(&pid.0);
            }
        }
    }
}
