//! Which processes to trace: a /proc scan for those already running (and for
//! ports opened later), and a decision at exec time for processes selected by
//! executable, so that even a short-lived client is traced from its start.

mod scan;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::config::Selection;
use crate::ebpf::PidFilter;
use crate::model::{Pid, Resource};

/// Traced processes and what they are called; read by the assembler when it
/// meets a new connection.
#[derive(Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<Pid, Arc<Resource>>>>);

impl Registry {
    pub fn get(&self, pid: Pid) -> Option<Arc<Resource>> {
        self.0.read().ok()?.get(&pid).cloned()
    }

    pub(crate) fn insert(&self, resource: Resource) {
        if let Ok(mut map) = self.0.write() {
            map.insert(resource.pid, Arc::new(resource));
        }
    }

    fn remove(&self, pid: Pid) {
        if let Ok(mut map) = self.0.write() {
            map.remove(&pid);
        }
    }
}

pub struct Discovery {
    selection: Selection,
    pids: PidFilter,
    registry: Registry,
    own_pid: Pid,
    traced: HashSet<Pid>,
    /// Pids the kernel marked pending that no decision reached at the last scan.
    undecided: HashSet<Pid>,
}

impl Discovery {
    pub fn new(selection: Selection, pids: PidFilter, registry: Registry) -> Self {
        Self {
            selection,
            pids,
            registry,
            own_pid: Pid(std::process::id()),
            traced: HashSet::new(),
            undecided: HashSet::new(),
        }
    }

    /// Whether execs must be reported: only a selection by executable alone can
    /// decide at exec time (a new process listens on nothing yet).
    pub fn decides_at_exec(selection: &Selection) -> bool {
        selection.exe_path.is_some() && selection.open_ports.is_none()
    }

    fn exe_matches(&self, exe: &Path) -> bool {
        self.selection
            .exe_path
            .as_ref()
            .is_none_or(|re| re.is_match(&exe.to_string_lossy()))
    }

    fn start(&mut self, pid: Pid, exe: &Path) {
        let service_name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| exe.to_string_lossy().into_owned());
        // Registry before kernel map, so no event arrives for an unknown process.
        log::info!(
            "instrumenting pid={pid} service={service_name} exe={}",
            exe.display()
        );
        self.registry.insert(Resource { service_name, pid });
        self.pids.trace(pid);
        self.traced.insert(pid);
    }

    fn stop(&mut self, pid: Pid) {
        self.pids.untrace(pid);
        self.registry.remove(pid);
        if self.traced.remove(&pid) {
            log::info!("no longer instrumenting pid={pid}");
        }
    }

    /// A process exec'd (the kernel already marked it pending): trace it or release it.
    pub fn on_exec(&mut self, pid: Pid, filename: &[u8]) {
        if pid == self.own_pid {
            self.pids.untrace(pid);
            return;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .unwrap_or_else(|_| String::from_utf8_lossy(filename).into_owned().into());
        if Self::decides_at_exec(&self.selection) && self.exe_matches(&exe) {
            self.start(pid, &exe);
        } else {
            self.stop(pid);
        }
    }

    /// Brings the traced set in line with /proc. Returns how many processes are traced.
    pub fn scan(&mut self) -> usize {
        let want_ports = self.selection.open_ports.is_some();
        let mut seen = HashSet::new();
        for proc in scan::scan(want_ports) {
            if proc.pid == self.own_pid {
                continue;
            }
            let ports_match = match &self.selection.open_ports {
                Some(ports) => proc.listening.iter().any(|&p| ports.contains(p)),
                None => true,
            };
            if ports_match && self.exe_matches(&proc.exe) {
                seen.insert(proc.pid);
                if !self.traced.contains(&proc.pid) {
                    self.start(proc.pid, &proc.exe);
                }
            }
        }
        let gone: Vec<Pid> = self.traced.difference(&seen).copied().collect();
        for pid in gone {
            self.stop(pid);
        }
        self.release_undecided();
        self.traced.len()
    }

    /// Pending marks whose exec event was lost (ring buffer full) would stay for
    /// ever; a mark that survives two scans is removed.
    fn release_undecided(&mut self) {
        let pending: HashSet<Pid> = self
            .pids
            .pids()
            .into_iter()
            .filter(|p| !self.traced.contains(p))
            .collect();
        for pid in pending.intersection(&self.undecided) {
            self.pids.untrace(*pid);
        }
        self.undecided = pending;
    }
}
