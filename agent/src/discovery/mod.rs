//! Which processes to trace, and what they are called. The kernel reports
//! execs, forks, exits and listening sockets (ebpf/probes/process.bpf.c); a
//! full /proc scan runs at start and then only as a safety net.
//!
//! Two halves: [`ProcessTracker`], on the ring-buffer reader's thread, sets
//! what must hold before a process's next event is read (a forked child's
//! name, an exec'd process's new identity); [`Discovery`], on a thread of
//! its own, does the slow work (scans, library uprobes) and the bookkeeping.
//! They share the [`Registry`] and the kernel's traced-PID marks, both
//! written in single short steps, so the reader never waits on a scan.

mod listeners;
mod scan;
mod select;
#[cfg(test)]
mod tests;
mod tracker;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use select::Selector;
pub use tracker::ProcessTracker;

use crate::model::{Pid, Resource};

/// How often the safety-net scan of /proc runs: it finds what no kernel event
/// announced (a listening socket inherited rather than opened, an event lost
/// to a full ring) and forgets processes whose exit was lost.
pub const SAFETY_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// After a process is traced, when its libraries are looked for again if none
/// was mapped yet (a process selected at exec maps its libraries only
/// afterwards), counted from the first attempt.
const LIBRARY_RETRIES: [Duration; 7] = [
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The kernel's marks of traced processes; the probes capture a marked
/// process from its first syscall.
pub trait TracedPids: Send + Sync {
    fn trace(&self, pid: Pid);
    fn untrace(&self, pid: Pid);
    /// Every marked process: traced, or marked by the kernel at exec or fork.
    fn marked(&self) -> Vec<Pid>;
}

/// Probes attached per process to the libraries it maps (OpenSSL, ...).
pub trait LibraryProbes: Send {
    /// Attaches to what `pid` maps now; false when it maps none of the libraries.
    fn attach(&mut self, pid: Pid) -> bool;
    fn detach(&mut self, pid: Pid);
}

/// Process events the reader may queue for discovery before it drops them
/// (and counts them): a burst of forks or execs, while a scan runs.
const PROCESS_EVENT_QUEUE: usize = 4096;

/// The bounded queue from the reader's [`ProcessTracker`] to [`Discovery::run`].
pub fn process_event_queue() -> (SyncSender<ProcessEvent>, Receiver<ProcessEvent>) {
    std::sync::mpsc::sync_channel(PROCESS_EVENT_QUEUE)
}

/// What the kernel reported, forwarded by the reader with what it decided:
/// by the time discovery handles an event the process may be gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// `traced`: the exec'd program's service name and executable, when it stays traced.
    Exec {
        pid: Pid,
        traced: Option<(String, PathBuf)>,
    },
    /// `traced`: the child is traced (its parent was).
    Fork {
        parent: Pid,
        child: Pid,
        traced: bool,
    },
    Exit(Pid),
    Listen {
        pid: Pid,
        port: u16,
        listening: bool,
    },
}

/// Traced processes and what they are called; read by the assembler when it
/// meets a new connection.
#[derive(Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<Pid, Arc<Resource>>>>);

impl Registry {
    pub fn get(&self, pid: Pid) -> Option<Arc<Resource>> {
        self.0.read().ok()?.get(&pid).cloned()
    }

    /// Discovery names the processes it traces; benchmarks name their own.
    pub fn insert(&self, resource: Resource) {
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

/// Why a process is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// An entry selects it.
    Selected,
    /// Its parent was traced when it forked: it stays traced until it exits
    /// or execs another program, whether or not an entry selects it.
    Forked,
}

struct Traced {
    reason: Reason,
    /// Its library probes are attached.
    libraries: bool,
}

pub struct Discovery<P: TracedPids, L: LibraryProbes> {
    selector: Arc<Selector>,
    registry: Registry,
    pids: Arc<P>,
    libraries: L,
    traced: HashMap<Pid, Traced>,
    /// Marked pids that no decision reached at the last scan.
    undecided: HashSet<Pid>,
    /// Processes whose libraries are looked for again: when, and the attempt.
    library_retries: HashMap<Pid, (Instant, usize)>,
    instrumented: Arc<AtomicU64>,
}

impl<P: TracedPids, L: LibraryProbes> Discovery<P, L> {
    pub fn new(selector: Arc<Selector>, registry: Registry, pids: Arc<P>, libraries: L) -> Self {
        Self {
            selector,
            registry,
            pids,
            libraries,
            traced: HashMap::new(),
            undecided: HashSet::new(),
            library_retries: HashMap::new(),
            instrumented: Arc::default(),
        }
    }

    /// The number of traced processes, kept current.
    pub fn instrumented(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.instrumented)
    }

    /// Handles forwarded events, scans every [`SAFETY_SCAN_INTERVAL`], retries
    /// library look-ups; returns when every sender is gone.
    pub fn run(mut self, events: Receiver<ProcessEvent>) {
        let mut next_scan = Instant::now() + SAFETY_SCAN_INTERVAL;
        loop {
            let now = Instant::now();
            if now >= next_scan {
                self.scan();
                next_scan = now + SAFETY_SCAN_INTERVAL;
            }
            self.retry_libraries(now);
            let wake = self
                .library_retries
                .values()
                .map(|&(at, _)| at)
                .min()
                .map_or(next_scan, |at| at.min(next_scan));
            match events.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Brings the traced set in line with /proc.
    pub fn scan(&mut self) {
        let processes = scan::scan(self.selector.wants_ports());
        self.apply_scan(processes);
    }

    fn apply_scan(&mut self, processes: Vec<scan::ProcessInfo>) {
        let mut alive = HashSet::new();
        let mut selected = HashSet::new();
        for process in processes {
            alive.insert(process.pid);
            let Some(resource) = self.selector.identify(&process) else {
                continue;
            };
            selected.insert(process.pid);
            if !self.traced.contains_key(&process.pid) {
                self.start(resource, &process.exe, Reason::Selected);
            }
        }
        let gone: Vec<Pid> = self
            .traced
            .iter()
            .filter(|(pid, t)| match t.reason {
                Reason::Selected => !selected.contains(pid),
                Reason::Forked => !alive.contains(pid),
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in gone {
            self.stop(pid);
        }
        self.release_undecided();
        self.count();
    }

    pub fn handle(&mut self, event: ProcessEvent) {
        match event {
            ProcessEvent::Exec { pid, traced } => self.on_exec(pid, traced),
            ProcessEvent::Fork {
                parent,
                child,
                traced,
            } => {
                if traced {
                    self.on_fork(parent, child);
                }
            }
            ProcessEvent::Exit(pid) => {
                // The reader dropped its name, the kernel its mark.
                self.forget(pid);
            }
            ProcessEvent::Listen { pid, .. } => self.on_listen(pid),
        }
        self.count();
    }

    /// The reader decided already (registry and mark); what remains is the
    /// new program's libraries, and saying so.
    fn on_exec(&mut self, pid: Pid, traced: Option<(String, PathBuf)>) {
        let Some((service_name, exe)) = traced else {
            self.forget(pid);
            return;
        };
        // The old program's library probes are useless now.
        self.libraries.detach(pid);
        self.library_retries.remove(&pid);
        self.traced.insert(
            pid,
            Traced {
                reason: Reason::Selected,
                libraries: false,
            },
        );
        self.attach_libraries(pid, true);
        log::info!(
            "instrumenting pid={pid} service={service_name} exe={}",
            exe.display()
        );
    }

    /// A traced process's child: traced already by the kernel and named by the reader.
    fn on_fork(&mut self, parent: Pid, child: Pid) {
        self.traced.insert(
            child,
            Traced {
                reason: Reason::Forked,
                libraries: false,
            },
        );
        // The child maps what its parent mapped: no waiting for libraries to appear.
        if self.traced.get(&parent).is_some_and(|t| t.libraries) {
            self.attach_libraries(child, false);
        }
        log::debug!("instrumenting pid={child} (forked by pid={parent})");
    }

    /// A process opened or closed a listening socket: decide for it alone.
    fn on_listen(&mut self, pid: Pid) {
        if pid == self.selector.own_pid() {
            return;
        }
        let identity =
            scan::process(pid, true).and_then(|p| self.selector.identify(&p).map(|r| (r, p.exe)));
        match (identity, self.traced.get(&pid).map(|t| t.reason)) {
            (Some((resource, exe)), None) => self.start(resource, &exe, Reason::Selected),
            (None, Some(Reason::Selected)) => self.stop(pid),
            _ => {}
        }
    }

    fn start(&mut self, resource: Resource, exe: &Path, reason: Reason) {
        let pid = resource.pid;
        let announced = format!(
            "instrumenting pid={pid} service={} exe={}",
            resource.service_name,
            exe.display()
        );
        // Registry before kernel mark, so no event arrives for an unknown
        // process; libraries before the log line, so that what it announces holds.
        self.registry.insert(resource);
        self.pids.trace(pid);
        self.traced.insert(
            pid,
            Traced {
                reason,
                libraries: false,
            },
        );
        self.attach_libraries(pid, true);
        log::info!("{announced}");
    }

    fn stop(&mut self, pid: Pid) {
        self.pids.untrace(pid);
        self.registry.remove(pid);
        self.forget(pid);
    }

    /// Drops the bookkeeping of a process no longer traced.
    fn forget(&mut self, pid: Pid) {
        self.libraries.detach(pid);
        self.library_retries.remove(&pid);
        match self.traced.remove(&pid).map(|t| t.reason) {
            Some(Reason::Selected) => log::info!("no longer instrumenting pid={pid}"),
            Some(Reason::Forked) => log::debug!("no longer instrumenting pid={pid}"),
            None => {}
        }
    }

    /// Attaches the library probes; when none is mapped yet, `retry` looks again later.
    fn attach_libraries(&mut self, pid: Pid, retry: bool) {
        if self.libraries.attach(pid) {
            if let Some(t) = self.traced.get_mut(&pid) {
                t.libraries = true;
            }
        } else if retry {
            self.library_retries
                .insert(pid, (Instant::now() + LIBRARY_RETRIES[0], 0));
        }
    }

    fn retry_libraries(&mut self, now: Instant) {
        let due: Vec<(Pid, usize)> = self
            .library_retries
            .iter()
            .filter(|(_, &(at, _))| at <= now)
            .map(|(pid, &(_, attempt))| (*pid, attempt))
            .collect();
        for (pid, attempt) in due {
            self.library_retries.remove(&pid);
            if self.libraries.attach(pid) {
                if let Some(t) = self.traced.get_mut(&pid) {
                    t.libraries = true;
                }
            } else if let Some(next) = LIBRARY_RETRIES.get(attempt + 1) {
                let wait = *next - LIBRARY_RETRIES[attempt];
                self.library_retries.insert(pid, (now + wait, attempt + 1));
            }
        }
    }

    /// Marks whose decision never came (an exec or fork event lost to a full
    /// ring) would stay for ever; a mark that survives two scans is removed.
    fn release_undecided(&mut self) {
        let pending: HashSet<Pid> = self
            .pids
            .marked()
            .into_iter()
            .filter(|p| !self.traced.contains_key(p))
            .collect();
        for pid in pending.intersection(&self.undecided) {
            self.pids.untrace(*pid);
        }
        self.undecided = pending;
    }

    fn count(&self) {
        self.instrumented
            .store(self.traced.len() as u64, Ordering::Relaxed);
    }
}
