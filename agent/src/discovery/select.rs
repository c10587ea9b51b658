//! The selection rules and the naming of a selected process: pure decisions
//! on what /proc says, shared by the reader's thread (at exec) and
//! discovery's (scans, listening sockets).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::scan::ProcessInfo;
use crate::config::{DiscoveryConfig, Selection};
use crate::model::{Pid, Resource};

pub struct Selector {
    config: DiscoveryConfig,
    /// The agent's own OTEL_SERVICE_NAME: names every process it traces.
    service_name: Option<String>,
    /// The agent's OTEL_RESOURCE_ATTRIBUTES, given to every process it traces.
    resource_attributes: Arc<[(String, String)]>,
    own_pid: Pid,
}

impl Selector {
    pub fn new(
        config: DiscoveryConfig,
        service_name: Option<String>,
        resource_attributes: Arc<[(String, String)]>,
    ) -> Self {
        Self {
            config,
            service_name,
            resource_attributes,
            own_pid: Pid(std::process::id()),
        }
    }

    /// The agent itself, never traced.
    pub fn own_pid(&self) -> Pid {
        self.own_pid
    }

    /// Whether execs must be reported: an entry selecting by executable alone
    /// can decide at exec time (a new process listens on nothing yet; entries
    /// with ports wait for its listening socket).
    pub fn decides_at_exec(&self) -> bool {
        decides_at_exec(&self.config)
    }

    /// Whether any entry looks at listening ports.
    pub fn wants_ports(&self) -> bool {
        self.config
            .instrument
            .iter()
            .chain(&self.config.exclude)
            .any(|s| s.open_ports.is_some())
    }

    /// The process's identity if an entry selects it.
    pub fn identify(&self, process: &ProcessInfo) -> Option<Resource> {
        if process.pid == self.own_pid {
            return None;
        }
        select(&self.config, &process.exe, Some(&process.listening))
            .map(|selection| self.resource(process.pid, &process.exe, selection))
    }

    /// The identity of a process that just exec'd and was not traced: only
    /// entries selecting by executable alone can decide yet.
    pub fn identify_at_exec(&self, pid: Pid, exe: &Path) -> Option<Resource> {
        if pid == self.own_pid || !self.decides_at_exec() {
            return None;
        }
        select(&self.config, exe, None).map(|selection| self.resource(pid, exe, selection))
    }

    /// The agent's OTEL_SERVICE_NAME, else the entry's name, else the
    /// process's own OTEL_SERVICE_NAME, else its executable's name.
    fn resource(&self, pid: Pid, exe: &Path, selection: &Selection) -> Resource {
        let service_name = self
            .service_name
            .clone()
            .or_else(|| selection.name.clone())
            .or_else(|| process_env(pid, "OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| {
                exe.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| exe.to_string_lossy().into_owned())
            });
        Resource {
            service_name,
            service_namespace: selection.namespace.clone().unwrap_or_default(),
            pid,
            attributes: Arc::clone(&self.resource_attributes),
        }
    }
}

pub(super) fn decides_at_exec(config: &DiscoveryConfig) -> bool {
    config
        .instrument
        .iter()
        .any(|s| s.exe_path.is_some() && s.open_ports.is_none())
}

/// The first `instrument` entry that selects a process no `exclude` entry selects.
/// `listening` is None at exec time, when ports cannot be known yet.
pub(super) fn select<'a>(
    config: &'a DiscoveryConfig,
    exe: &Path,
    listening: Option<&HashSet<u16>>,
) -> Option<&'a Selection> {
    if config.exclude.iter().any(|s| selects(s, exe, listening)) {
        return None;
    }
    config
        .instrument
        .iter()
        .find(|s| selects(s, exe, listening))
}

/// Whether one entry selects a process: it has a criterion, and all its criteria hold.
pub(super) fn selects(selection: &Selection, exe: &Path, listening: Option<&HashSet<u16>>) -> bool {
    let exe_ok = selection
        .exe_path
        .as_ref()
        .is_none_or(|re| re.is_match(&exe.to_string_lossy()));
    let ports_ok = match (&selection.open_ports, listening) {
        (None, _) => true,
        (Some(ports), Some(listening)) => listening.iter().any(|&p| ports.contains(p)),
        (Some(_), None) => false,
    };
    let has_criterion = selection.exe_path.is_some() || selection.open_ports.is_some();
    has_criterion && exe_ok && ports_ok
}

/// One variable of a process's environment (root reads every /proc/PID/environ).
fn process_env(pid: Pid, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}
