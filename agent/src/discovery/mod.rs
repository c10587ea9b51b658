//! Which processes to trace, and what they are called. The kernel reports
//! execs, forks, exits and listening sockets (ebpf/probes/process.bpf.c); a
//! full /proc scan runs at start and then only as a safety net.
//!
//! Two halves: [`ProcessTracker`], on the ring-buffer reader's thread, sets
//! what must hold before a process's next event is read (a forked child's
//! name, an exec'd process's new identity); [`Discovery`], a task of the
//! control plane, does the slow work (scans, library uprobes, off the
//! control thread) and the bookkeeping.
//! They share the [`Registry`] and the kernel's traced-PID marks, both
//! written in single short steps, so the reader never waits on a scan.

mod language;
mod listeners;
mod scan;
mod select;
#[cfg(test)]
mod tests;
mod tracker;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};

pub use select::Selector;
pub use tracker::ProcessTracker;

use beyla_pipeline::model::{Pid, Registry, Resource};

/// How often the safety-net scan of /proc runs: it finds what no kernel event
/// announced (a listening socket inherited rather than opened, an event lost
/// to a full ring) and forgets processes whose exit was lost.
pub const SAFETY_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// How often /proc is scanned when pod metadata is on: a pod becomes known
/// (and selectable by `k8s_*` entries) when the API server says so, which no
/// kernel event announces.
pub const POD_SCAN_INTERVAL: Duration = Duration::from_millis(500);

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

/// Probes on the libraries traced processes map (OpenSSL, ...).
pub trait LibraryProbes: Send {
    /// Attaches to what `pid` maps now; false when it maps none of the libraries.
    fn attach(&mut self, pid: Pid) -> bool;
    /// A traced process's child, which maps what its parent did.
    fn fork(&mut self, parent: Pid, child: Pid);
    fn detach(&mut self, pid: Pid);
    /// A traced Go process served its first TLS request: the probes that
    /// only serve such requests (goroutine starts) are attached now.
    fn go_serving(&mut self, pid: Pid);
}

/// Process events the reader may queue for discovery before it drops them
/// (and counts them): a burst of forks or execs, while a scan runs.
const PROCESS_EVENT_QUEUE: usize = 4096;

/// The bounded queue from the reader's [`ProcessTracker`] to [`Discovery::run`].
pub fn process_event_queue() -> (Sender<ProcessEvent>, Receiver<ProcessEvent>) {
    smol::channel::bounded(PROCESS_EVENT_QUEUE)
}

/// What the kernel reported, forwarded by the reader with what it decided:
/// by the time discovery handles an event the process may be gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// `traced`: the exec'd program as the log describes it, and its
    /// executable, when it stays traced.
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
    /// A traced Go process served its first TLS request.
    GoServing(Pid),
    Listen {
        pid: Pid,
        port: u16,
        listening: bool,
    },
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
    /// Processes no longer traced whose last events may still be in the ring
    /// buffer: their resource is kept until the next scan, so those events
    /// still find it.
    leaving: Vec<Pid>,
    next_scan: Instant,
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
            leaving: Vec::new(),
            next_scan: Instant::now(),
            instrumented: Arc::default(),
        }
    }

    /// Between two scans: the safety net's interval, or a shorter one while
    /// pod metadata may arrive.
    fn scan_interval(&self) -> Duration {
        if self.selector.watches_pods() {
            POD_SCAN_INTERVAL
        } else {
            SAFETY_SCAN_INTERVAL
        }
    }

    /// The number of traced processes, kept current.
    pub fn instrumented(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.instrumented)
    }

    /// Discovery's task: handles forwarded events, scans every
    /// [`SAFETY_SCAN_INTERVAL`] (or [`POD_SCAN_INTERVAL`]), retries library
    /// look-ups; returns when every sender is gone. The work reads /proc and
    /// attaches uprobes, so it runs on a blocking thread, not the control
    /// thread.
    pub async fn run(mut self, events: Receiver<ProcessEvent>)
    where
        P: 'static,
        L: 'static,
    {
        loop {
            let wake = self.next_wake();
            let first = futures_lite::future::or(async { Some(events.recv().await) }, async {
                smol::Timer::at(wake).await;
                None
            })
            .await;
            let mut batch = Vec::new();
            match first {
                Some(Ok(event)) => {
                    batch.push(event);
                    while let Ok(event) = events.try_recv() {
                        batch.push(event);
                    }
                }
                Some(Err(_)) => return,
                None => {}
            }
            self = smol::unblock(move || {
                for event in batch {
                    self.handle(event);
                }
                self.due_work(Instant::now());
                self
            })
            .await;
        }
    }

    /// When the next scan or library retry is due.
    fn next_wake(&self) -> Instant {
        self.library_retries
            .values()
            .map(|&(at, _)| at)
            .min()
            .map_or(self.next_scan, |at| at.min(self.next_scan))
    }

    /// The scan and the library retries whose time has come.
    fn due_work(&mut self, now: Instant) {
        if now >= self.next_scan {
            self.scan();
        }
        self.retry_libraries(now);
    }

    /// Brings the traced set in line with /proc.
    pub fn scan(&mut self) {
        self.next_scan = Instant::now() + self.scan_interval();
        let processes = scan::scan(self.selector.wants_ports());
        self.apply_scan(processes);
    }

    fn apply_scan(&mut self, processes: Vec<scan::ProcessInfo>) {
        // Those that left before the last scan have had their events read since.
        for pid in std::mem::take(&mut self.leaving) {
            if !self.traced.contains_key(&pid) {
                self.registry.remove(pid);
            }
        }
        let mut alive = HashSet::new();
        let mut selected = HashSet::new();
        for process in processes {
            alive.insert(process.pid);
            let Some(choice) = self.selector.choose(&process) else {
                continue;
            };
            selected.insert(process.pid);
            if !self.traced.contains_key(&process.pid) {
                let resource = self.selector.resource(process.pid, &process.exe, choice);
                self.start(resource, &process.exe, Reason::Selected);
            } else if self
                .registry
                .get(process.pid)
                .is_some_and(|registered| self.selector.pod_changed(&registered, &choice))
            {
                // Its pod became known (or changed) after it was traced: named again.
                let resource = self.selector.resource(process.pid, &process.exe, choice);
                log::info!(
                    "pod metadata changed: {}",
                    select::describe(&resource, &process.exe)
                );
                self.registry.insert(resource);
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
            ProcessEvent::GoServing(pid) => {
                if self.traced.contains_key(&pid) {
                    self.libraries.go_serving(pid);
                }
            }
            ProcessEvent::Listen { pid, .. } => self.on_listen(pid),
        }
        self.count();
    }

    /// The reader decided already (registry and mark); what remains is the
    /// new program's libraries, and saying so.
    fn on_exec(&mut self, pid: Pid, traced: Option<(String, PathBuf)>) {
        let Some((described, exe)) = traced else {
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
            },
        );
        self.attach_libraries(pid);
        log::debug!("exec of pid={pid}: {}", exe.display());
        log::info!("instrumenting {described}");
    }

    /// A traced process's child: traced already by the kernel and named by the reader.
    fn on_fork(&mut self, parent: Pid, child: Pid) {
        if !self.traced.contains_key(&parent) {
            // Its parent stopped being traced (the reader still had its name):
            // neither is the child.
            self.pids.untrace(child);
            self.registry.remove(child);
            return;
        }
        // The child maps what its parent mapped, and the library probes fire
        // in it already: it joins its parent's libraries.
        self.libraries.fork(parent, child);
        self.traced.insert(
            child,
            Traced {
                reason: Reason::Forked,
            },
        );
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
        let announced = format!("instrumenting {}", select::describe(&resource, exe));
        // Registry before kernel mark, so no event arrives for an unknown
        // process; libraries before the log line, so that what it announces holds.
        self.registry.insert(resource);
        self.pids.trace(pid);
        self.traced.insert(pid, Traced { reason });
        self.attach_libraries(pid);
        log::info!("{announced}");
    }

    fn stop(&mut self, pid: Pid) {
        self.pids.untrace(pid);
        self.leaving.push(pid);
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

    /// Attaches the library probes; when none is mapped yet, looks again later.
    fn attach_libraries(&mut self, pid: Pid) {
        if !self.libraries.attach(pid) {
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
                continue;
            }
            if let Some(next) = LIBRARY_RETRIES.get(attempt + 1) {
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
