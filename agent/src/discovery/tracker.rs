//! The reader's half of discovery: what must hold before the ring buffer's
//! next record is read. A forked child's events follow its fork event, an
//! exec'd process's events its exec event, so the child's name and the
//! exec'd program's identity are set here, in ring order, on the reader's
//! thread. Nothing here takes a lock a scan or a uprobe attach holds; the
//! slow work is forwarded to [`super::Discovery`]'s task over a bounded channel.

use std::path::PathBuf;
use std::sync::Arc;

use smol::channel::{Sender, TrySendError};

use super::{scan, select};
use super::{ProcessEvent, Selector, TracedPids};
use beyla_pipeline::model::{Pid, Registry, Resource};
use beyla_pipeline::selfmetrics::{Counter, SelfMetrics};

pub struct ProcessTracker<P: TracedPids> {
    selector: Arc<Selector>,
    registry: Registry,
    pids: Arc<P>,
    to_discovery: Sender<ProcessEvent>,
    metrics: Arc<SelfMetrics>,
}

impl<P: TracedPids> ProcessTracker<P> {
    pub fn new(
        selector: Arc<Selector>,
        registry: Registry,
        pids: Arc<P>,
        to_discovery: Sender<ProcessEvent>,
        metrics: Arc<SelfMetrics>,
    ) -> Self {
        Self {
            selector,
            registry,
            pids,
            to_discovery,
            metrics,
        }
    }

    /// A traced process, or any while selecting by executable, exec'd: the
    /// kernel keeps capturing it until this decides. A traced one is
    /// identified again (another program, perhaps another name); an untraced
    /// one is selected by executable or released.
    pub fn exec(&mut self, pid: Pid, filename: &[u8]) {
        if pid == self.selector.own_pid() {
            self.pids.untrace(pid);
            return;
        }
        let was_traced = self.registry.get(pid).is_some();
        let info = if was_traced {
            scan::process(pid, self.selector.wants_ports())
                .unwrap_or_else(|| exec_info(pid, filename))
        } else {
            exec_info(pid, filename)
        };
        let identity = if was_traced {
            self.selector.identify(&info)
        } else {
            self.selector.identify_at_exec(pid, &info.exe)
        };
        let traced = match identity {
            Some(resource) => {
                let named = (select::describe(&resource, &info.exe), info.exe);
                self.registry.insert(resource);
                self.pids.trace(pid);
                Some(named)
            }
            None => {
                self.pids.untrace(pid);
                self.registry.remove(pid);
                None
            }
        };
        self.forward(ProcessEvent::Exec { pid, traced });
    }

    /// A traced process forked (the kernel marked the child already): the
    /// child is the parent's service, with its own pid.
    pub fn fork(&mut self, parent: Pid, child: Pid) {
        let traced = match self.registry.get(parent) {
            Some(resource) => {
                self.registry.insert(Resource {
                    pid: child,
                    ..Resource::clone(&resource)
                });
                true
            }
            // The parent is no longer (or not yet) traced: neither is the child.
            None => {
                self.pids.untrace(child);
                false
            }
        };
        self.forward(ProcessEvent::Fork {
            parent,
            child,
            traced,
        });
    }

    /// A traced process ended (the kernel cleared its mark).
    pub fn exit(&mut self, pid: Pid) {
        self.registry.remove(pid);
        self.forward(ProcessEvent::Exit(pid));
    }

    /// A traced Go process served its first TLS request.
    pub fn go_serving(&mut self, pid: Pid) {
        self.forward(ProcessEvent::GoServing(pid));
    }

    pub fn listen(&mut self, pid: Pid, port: u16, listening: bool) {
        self.forward(ProcessEvent::Listen {
            pid,
            port,
            listening,
        });
    }

    fn forward(&self, event: ProcessEvent) {
        match self.to_discovery.try_send(event) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            // The safety-net scan catches up with what was lost.
            Err(TrySendError::Full(_)) => self.metrics.inc(Counter::ProcessEventsDropped),
        }
    }
}

/// A just-exec'd process: its executable, or the name the kernel reported
/// if /proc cannot say (the process exited already).
fn exec_info(pid: Pid, filename: &[u8]) -> scan::ProcessInfo {
    scan::ProcessInfo {
        pid,
        exe: std::fs::read_link(format!("/proc/{pid}/exe"))
            .unwrap_or_else(|_| PathBuf::from(String::from_utf8_lossy(filename).into_owned())),
        listening: Default::default(),
    }
}
