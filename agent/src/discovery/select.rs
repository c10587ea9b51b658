//! The selection of a process and its naming: decisions on what /proc (and
//! the pod metadata) say, shared by the reader's thread (at exec) and
//! discovery's task (scans, listening sockets). The matching rule itself is
//! `config::selection`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::language;
use super::scan::ProcessInfo;
use crate::config::{DiscoveryConfig, ProcessFacts, Selection};
use crate::kubernetes::{Metadata, PodContainer};
use beyla_pipeline::model::{Pid, Resource};

pub struct Selector {
    config: DiscoveryConfig,
    /// The agent's own OTEL_SERVICE_NAME: names every process it traces.
    service_name: Option<String>,
    /// The agent's OTEL_RESOURCE_ATTRIBUTES, given to every process it traces.
    resource_attributes: Arc<[(String, String)]>,
    /// Pod metadata, when Kubernetes metadata is on.
    kubernetes: Option<Metadata>,
    own_pid: Pid,
}

/// What selected a process: the entry, and its pod when known.
pub struct Choice {
    selection: Selection,
    pod: Option<PodContainer>,
}

impl Selector {
    pub fn new(
        config: DiscoveryConfig,
        service_name: Option<String>,
        resource_attributes: Arc<[(String, String)]>,
        kubernetes: Option<Metadata>,
    ) -> Self {
        Self {
            config,
            service_name,
            resource_attributes,
            kubernetes,
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
        self.config.needs_ports()
    }

    /// Whether pod metadata is on: it arrives from the API server, which no
    /// kernel event announces.
    pub fn watches_pods(&self) -> bool {
        self.kubernetes.is_some()
    }

    /// The entry selecting a process, if any.
    pub fn choose(&self, process: &ProcessInfo) -> Option<Choice> {
        self.choose_with(process.pid, &process.exe, Some(&process.listening))
    }

    /// The process's identity if an entry selects it.
    pub fn identify(&self, process: &ProcessInfo) -> Option<Resource> {
        self.choose(process)
            .map(|choice| self.resource(process.pid, &process.exe, choice))
    }

    /// The identity of a process that just exec'd and was not traced: only
    /// entries selecting by executable alone can decide yet.
    pub fn identify_at_exec(&self, pid: Pid, exe: &Path) -> Option<Resource> {
        if !self.decides_at_exec() {
            return None;
        }
        self.choose_with(pid, exe, None)
            .map(|choice| self.resource(pid, exe, choice))
    }

    fn choose_with(
        &self,
        pid: Pid,
        exe: &Path,
        listening: Option<&HashSet<u16>>,
    ) -> Option<Choice> {
        if pid == self.own_pid {
            return None;
        }
        let pod = self.kubernetes.as_ref().and_then(|k| k.for_pid(pid));
        let selection = select(&self.config, pid, exe, listening, pod.as_ref())?.clone();
        Some(Choice { selection, pod })
    }

    /// Whether a traced process's registered pod metadata is not what it is now.
    pub fn pod_changed(&self, registered: &Resource, choice: &Choice) -> bool {
        self.kubernetes.is_some()
            && registered.kubernetes.as_deref() != choice.pod.as_ref().map(|p| &p.resource)
    }

    /// Names a selected process: the agent's OTEL_SERVICE_NAME, else the
    /// entry's name, else the pod's (see [`PodContainer::service_name`]),
    /// else the process's own OTEL_SERVICE_NAME, else its executable's name.
    pub fn resource(&self, pid: Pid, exe: &Path, choice: Choice) -> Resource {
        let Choice { selection, pod } = choice;
        let service_name = self
            .service_name
            .clone()
            .or_else(|| selection.name.clone())
            .or_else(|| pod.as_ref().map(PodContainer::service_name))
            .or_else(|| process_env(pid, "OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| {
                exe.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| exe.to_string_lossy().into_owned())
            });
        let service_namespace = selection
            .namespace
            .clone()
            .or_else(|| pod.as_ref().map(PodContainer::service_namespace))
            .unwrap_or_default();
        Resource {
            service_name,
            service_namespace,
            pid,
            attributes: Arc::clone(&self.resource_attributes),
            kubernetes: pod.map(|pod| Arc::new(pod.resource)),
            language: language::of_process(pid, exe),
        }
    }
}

/// What the log says of a traced process: `pid=N service=S exe=E language=L`,
/// and its pod when it has one.
pub fn describe(resource: &Resource, exe: &Path) -> String {
    let mut text = format!(
        "pid={} service={} exe={} language={}",
        resource.pid,
        resource.service_name,
        exe.display(),
        resource.language.as_str()
    );
    if let Some(k8s) = &resource.kubernetes {
        text += &format!(
            " pod={}/{} uid={} container={}",
            k8s.namespace, k8s.pod_name, k8s.pod_uid, k8s.container_name
        );
    }
    text
}

pub(super) fn decides_at_exec(config: &DiscoveryConfig) -> bool {
    config
        .instrument
        .iter()
        .any(|s| s.exe_path.is_some() && s.open_ports.is_none())
}

/// The entry that selects a process, by the configuration's rule, from what
/// /proc tells of it. `listening` is None at exec time, when ports cannot be
/// known yet; the command line and network namespace are read only when an
/// entry asks for them.
fn select<'a>(
    config: &'a DiscoveryConfig,
    pid: Pid,
    exe: &Path,
    listening: Option<&HashSet<u16>>,
    pod: Option<&PodContainer>,
) -> Option<&'a Selection> {
    let cmd_args = config
        .needs_cmd_args()
        .then(|| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .flatten()
        .map(|cmdline| crate::config::cmd_args(&cmdline));
    let netns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .ok()
            .map(|m| std::os::linux::fs::MetadataExt::st_ino(&m))
    };
    let in_container = config
        .needs_netns()
        .then(|| Some(netns(&pid.to_string())? != netns("self")?))
        .flatten();
    config.select(&ProcessFacts {
        exe,
        cmd_args: cmd_args.as_deref(),
        listening,
        in_container,
        pod,
    })
}

/// One variable of a process's environment (root reads every /proc/PID/environ).
fn process_env(pid: Pid, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}
