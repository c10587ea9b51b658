//! Which processes to trace: a /proc scan for those already running (and for
//! ports opened later), and a decision at exec time for processes selected by
//! executable, so that even a short-lived client is traced from its start.

mod language;
mod listeners;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::config::{DiscoveryConfig, ProcessFacts, Selection};
use crate::ebpf::{PidFilter, TlsAttacher};
use crate::kubernetes::{Metadata, PodContainer};
use beyla_pipeline::model::{Pid, Registry, Resource};

pub struct Discovery {
    config: DiscoveryConfig,
    /// The agent's own OTEL_SERVICE_NAME: names every process it traces.
    service_name: Option<String>,
    /// The agent's OTEL_RESOURCE_ATTRIBUTES, given to every process it traces.
    resource_attributes: Arc<[(String, String)]>,
    pids: PidFilter,
    registry: Registry,
    own_pid: Pid,
    traced: HashSet<Pid>,
    /// Pids the kernel marked pending that no decision reached at the last scan.
    undecided: HashSet<Pid>,
    tls: TlsAttacher,
    /// Traced processes without libssl mapped yet, and the scans left to look
    /// again (a process selected at exec loads its libraries only afterwards).
    tls_pending: HashMap<Pid, u8>,
    /// Processes no longer traced whose last events may still be in the ring buffer:
    /// their resource is kept until the next scan, so those events still find it.
    leaving: Vec<Pid>,
    /// Pod metadata, when Kubernetes metadata is on.
    kubernetes: Option<Metadata>,
}

/// Scans after a process is traced during which its libssl is looked for.
const TLS_LOOKUPS: u8 = 4;

impl Discovery {
    pub fn new(
        config: DiscoveryConfig,
        service_name: Option<String>,
        resource_attributes: Arc<[(String, String)]>,
        pids: PidFilter,
        tls: TlsAttacher,
        registry: Registry,
        kubernetes: Option<Metadata>,
    ) -> Self {
        Self {
            config,
            service_name,
            resource_attributes,
            pids,
            registry,
            own_pid: Pid(std::process::id()),
            traced: HashSet::new(),
            undecided: HashSet::new(),
            tls,
            tls_pending: HashMap::new(),
            leaving: Vec::new(),
            kubernetes,
        }
    }

    /// Whether execs must be reported: an entry selecting by executable alone
    /// can decide at exec time (a new process listens on nothing yet; entries
    /// with ports are left to the scan).
    pub fn decides_at_exec(config: &DiscoveryConfig) -> bool {
        config
            .instrument
            .iter()
            .any(|s| s.exe_path.is_some() && s.open_ports.is_none())
    }

    /// The agent's OTEL_SERVICE_NAME, else the entry's name, else the pod's
    /// (see [`PodContainer::service_name`]), else the process's own
    /// OTEL_SERVICE_NAME, else its executable's name.
    fn service_name(
        &self,
        pid: Pid,
        exe: &Path,
        selection: &Selection,
        pod: Option<&PodContainer>,
    ) -> String {
        self.service_name
            .clone()
            .or_else(|| selection.name.clone())
            .or_else(|| pod.map(PodContainer::service_name))
            .or_else(|| process_env(pid, "OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| {
                exe.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| exe.to_string_lossy().into_owned())
            })
    }

    fn start(&mut self, pid: Pid, exe: &Path, selection: &Selection, pod: Option<PodContainer>) {
        // Registry before kernel map, so no event arrives for an unknown process;
        // the log line last, so that what it announces already holds.
        let announced = self.register(pid, exe, selection, pod);
        self.pids.trace(pid);
        self.traced.insert(pid);
        log::info!("instrumenting {announced}");
        if self.tls.attach(pid) == 0 {
            self.tls_pending.insert(pid, TLS_LOOKUPS);
        }
    }

    /// Names process `pid` in the registry; returns what to log about it.
    fn register(
        &self,
        pid: Pid,
        exe: &Path,
        selection: &Selection,
        pod: Option<PodContainer>,
    ) -> String {
        let service_name = self.service_name(pid, exe, selection, pod.as_ref());
        let service_namespace = selection
            .namespace
            .clone()
            .or_else(|| pod.as_ref().map(PodContainer::service_namespace))
            .unwrap_or_default();
        let language = language::of_process(pid, exe);
        let mut announced = format!(
            "pid={pid} service={service_name} exe={} language={}",
            exe.display(),
            language.as_str()
        );
        if let Some(pod) = &pod {
            let k8s = &pod.resource;
            announced += &format!(
                " pod={}/{} uid={} container={}",
                k8s.namespace, k8s.pod_name, k8s.pod_uid, k8s.container_name
            );
        }
        self.registry.insert(Resource {
            service_name,
            service_namespace,
            pid,
            attributes: Arc::clone(&self.resource_attributes),
            kubernetes: pod.map(|pod| Arc::new(pod.resource)),
            language,
        });
        announced
    }

    fn stop(&mut self, pid: Pid) {
        self.tls.detach(pid);
        self.tls_pending.remove(&pid);
        self.pids.untrace(pid);
        self.leaving.push(pid);
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
        let pod = self.pod_of(pid);
        let selection = Self::decides_at_exec(&self.config)
            .then(|| select(&self.config, pid, &exe, None, pod.as_ref()))
            .flatten()
            .cloned();
        match selection {
            Some(selection) => self.start(pid, &exe, &selection, pod),
            None => self.stop(pid),
        }
    }

    /// Brings the traced set in line with /proc. Returns how many processes are traced.
    pub fn scan(&mut self) -> usize {
        // Those that left before the last scan have had their events read since.
        for pid in std::mem::take(&mut self.leaving) {
            if !self.traced.contains(&pid) {
                self.registry.remove(pid);
            }
        }
        let want_ports = self.config.needs_ports();
        let mut seen = HashSet::new();
        for proc in scan::scan(want_ports) {
            if proc.pid == self.own_pid {
                continue;
            }
            let pod = self.pod_of(proc.pid);
            let Some(selection) = select(
                &self.config,
                proc.pid,
                &proc.exe,
                Some(&proc.listening),
                pod.as_ref(),
            )
            .cloned() else {
                continue;
            };
            seen.insert(proc.pid);
            if !self.traced.contains(&proc.pid) {
                self.start(proc.pid, &proc.exe, &selection, pod);
            } else if self.pod_changed(proc.pid, pod.as_ref()) {
                // Its pod became known (or changed) after it was traced: named again.
                let announced = self.register(proc.pid, &proc.exe, &selection, pod);
                log::info!("pod metadata changed: {announced}");
            }
        }
        let gone: Vec<Pid> = self.traced.difference(&seen).copied().collect();
        for pid in gone {
            self.stop(pid);
        }
        self.release_undecided();
        self.retry_tls();
        self.traced.len()
    }

    /// The pod container of `pid`, when Kubernetes metadata is on.
    fn pod_of(&self, pid: Pid) -> Option<PodContainer> {
        self.kubernetes.as_ref()?.for_pid(pid)
    }

    /// Whether the registered resource of traced `pid` has other pod metadata.
    fn pod_changed(&self, pid: Pid, pod: Option<&PodContainer>) -> bool {
        self.kubernetes.is_some()
            && self.registry.get(pid).is_some_and(|registered| {
                registered.kubernetes.as_deref() != pod.map(|p| &p.resource)
            })
    }

    fn retry_tls(&mut self) {
        let tls = &mut self.tls;
        self.tls_pending.retain(|pid, left| {
            *left -= 1;
            tls.attach(*pid) == 0 && *left > 0
        });
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
