//! Discovery's decisions on scans and kernel events, with the kernel side
//! replaced by an in-memory one (no root needed). The matching itself is
//! tested in config::selection.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use regex::Regex;

use super::scan::ProcessInfo;
use super::select::decides_at_exec;
use super::*;
use crate::config::{DiscoveryConfig, PortSet, Selection};
use beyla_pipeline::selfmetrics::{Counter, SelfMetrics};

fn entry(exe: Option<&str>, ports: Option<&str>) -> Selection {
    Selection {
        open_ports: ports.map(|p| PortSet::parse(p).unwrap()),
        exe_path: exe.map(|e| Regex::new(e).unwrap()),
        ..Selection::default()
    }
}

#[test]
fn exec_time_decisions_only_for_executable_only_selections() {
    let exe_only = DiscoveryConfig {
        instrument: vec![entry(Some("curl$"), None)],
        exclude: vec![],
    };
    let mixed = DiscoveryConfig {
        instrument: vec![entry(Some("curl$"), None), entry(None, Some("80"))],
        exclude: vec![],
    };
    let ports_only = DiscoveryConfig {
        instrument: vec![entry(Some("nginx"), Some("80"))],
        exclude: vec![],
    };
    assert!(decides_at_exec(&exe_only));
    assert!(decides_at_exec(&mixed));
    assert!(!decides_at_exec(&ports_only));
}

/// The kernel's marks, in memory.
#[derive(Default)]
struct Marks(Mutex<HashSet<Pid>>);

impl TracedPids for Marks {
    fn trace(&self, pid: Pid) {
        self.0.lock().unwrap().insert(pid);
    }
    fn untrace(&self, pid: Pid) {
        self.0.lock().unwrap().remove(&pid);
    }
    fn marked(&self) -> Vec<Pid> {
        self.0.lock().unwrap().iter().copied().collect()
    }
}

impl Marks {
    fn has(&self, pid: u32) -> bool {
        self.0.lock().unwrap().contains(&Pid(pid))
    }
}

/// Library probes that attach to every process in `with_libraries`, and say so.
#[derive(Default, Clone)]
struct Libraries {
    with_libraries: Arc<Mutex<HashSet<Pid>>>,
    attached: Arc<Mutex<HashSet<Pid>>>,
    /// Processes whose goroutine probes were asked for.
    serving: Arc<Mutex<HashSet<Pid>>>,
}

impl LibraryProbes for Libraries {
    fn attach(&mut self, pid: Pid) -> bool {
        let found = self.with_libraries.lock().unwrap().contains(&pid);
        if found {
            self.attached.lock().unwrap().insert(pid);
        }
        found
    }
    fn fork(&mut self, parent: Pid, child: Pid) {
        let mut attached = self.attached.lock().unwrap();
        if attached.contains(&parent) {
            attached.insert(child);
        }
    }
    fn detach(&mut self, pid: Pid) {
        self.attached.lock().unwrap().remove(&pid);
    }
    fn go_serving(&mut self, pid: Pid) {
        self.serving.lock().unwrap().insert(pid);
    }
}

/// Pids far above any real one, so /proc knows none of them.
const API: u32 = 4_000_001;
const CHILD: u32 = 4_000_002;
const OTHER: u32 = 4_000_003;

fn process(pid: u32, exe: &str, ports: &[u16]) -> ProcessInfo {
    ProcessInfo {
        pid: Pid(pid),
        exe: PathBuf::from(exe),
        listening: ports.iter().copied().collect(),
    }
}

struct World {
    discovery: Discovery<Marks, Libraries>,
    tracker: ProcessTracker<Marks>,
    inbox: Receiver<ProcessEvent>,
    registry: Registry,
    marks: Arc<Marks>,
    libraries: Libraries,
}

impl World {
    fn new(instrument: Vec<Selection>) -> Self {
        let selector = Arc::new(Selector::new(
            DiscoveryConfig {
                instrument,
                exclude: vec![],
            },
            None,
            Arc::from(Vec::new()),
            None,
        ));
        let registry = Registry::default();
        let marks = Arc::new(Marks::default());
        let libraries = Libraries::default();
        let (to_discovery, inbox) = process_event_queue();
        World {
            discovery: Discovery::new(
                Arc::clone(&selector),
                registry.clone(),
                Arc::clone(&marks),
                libraries.clone(),
            ),
            tracker: ProcessTracker::new(
                selector,
                registry.clone(),
                Arc::clone(&marks),
                to_discovery,
                Arc::new(SelfMetrics::default()),
            ),
            inbox,
            registry,
            marks,
            libraries,
        }
    }

    /// Hands what the tracker forwarded to discovery, as its thread would.
    fn deliver(&mut self) {
        while let Ok(event) = self.inbox.try_recv() {
            self.discovery.handle(event);
        }
    }

    fn name(&self, pid: u32) -> Option<String> {
        self.registry.get(Pid(pid)).map(|r| r.service_name.clone())
    }

    fn instrumented(&self) -> u64 {
        self.discovery.instrumented().load(Ordering::Relaxed)
    }
}

fn named(name: &str, selection: Selection) -> Selection {
    Selection {
        name: Some(name.into()),
        ..selection
    }
}

#[test]
fn a_scan_starts_and_stops_tracing() {
    let mut w = World::new(vec![named("api", entry(None, Some("8080")))]);
    w.libraries.with_libraries.lock().unwrap().insert(Pid(API));
    w.discovery.apply_scan(vec![
        process(API, "/usr/bin/python3", &[8080]),
        process(OTHER, "/usr/bin/python3", &[9090]),
    ]);
    assert_eq!(w.name(API).as_deref(), Some("api"));
    assert!(w.marks.has(API) && !w.marks.has(OTHER));
    assert!(w.libraries.attached.lock().unwrap().contains(&Pid(API)));
    assert_eq!(w.instrumented(), 1);

    // It closed its port: no longer selected.
    w.discovery
        .apply_scan(vec![process(API, "/usr/bin/python3", &[])]);
    assert!(!w.marks.has(API));
    assert!(w.libraries.attached.lock().unwrap().is_empty());
    assert_eq!(w.instrumented(), 0);
    // Its name stays until the next scan, for its events still in the ring.
    assert_eq!(w.name(API).as_deref(), Some("api"));
    w.discovery
        .apply_scan(vec![process(API, "/usr/bin/python3", &[])]);
    assert_eq!(w.name(API), None);
}

#[test]
fn a_forked_child_is_its_parents_service_until_it_exits() {
    let mut w = World::new(vec![named("api", entry(None, Some("8080")))]);
    w.libraries.with_libraries.lock().unwrap().insert(Pid(API));
    w.discovery
        .apply_scan(vec![process(API, "/usr/bin/python3", &[8080])]);
    // The kernel marks the child at fork; the reader names it before its first event.
    w.marks.trace(Pid(CHILD));
    w.tracker.fork(Pid(API), Pid(CHILD));
    assert_eq!(w.name(CHILD).as_deref(), Some("api"));
    w.deliver();
    assert_eq!(w.instrumented(), 2);
    assert!(
        w.libraries.attached.lock().unwrap().contains(&Pid(CHILD)),
        "the child joins its parent's library probes"
    );

    // A scan keeps it although no entry selects it (it closed the inherited socket).
    w.discovery.apply_scan(vec![
        process(API, "/usr/bin/python3", &[8080]),
        process(CHILD, "/usr/bin/python3", &[]),
    ]);
    assert_eq!(w.name(CHILD).as_deref(), Some("api"));

    // The kernel clears its mark at exit; the reader drops its name at once.
    w.marks.untrace(Pid(CHILD));
    w.tracker.exit(Pid(CHILD));
    assert_eq!(w.name(CHILD), None);
    w.deliver();
    assert_eq!(w.instrumented(), 1);
}

#[test]
fn a_child_of_an_untraced_process_is_released() {
    let mut w = World::new(vec![entry(None, Some("8080"))]);
    // A mark the kernel set for a parent that the agent no longer traces.
    w.marks.trace(Pid(CHILD));
    w.tracker.fork(Pid(OTHER), Pid(CHILD));
    assert!(!w.marks.has(CHILD));
    assert_eq!(w.name(CHILD), None);
    w.deliver();
    assert_eq!(w.instrumented(), 0);
}

#[test]
fn an_exec_renames_a_traced_process_or_releases_it() {
    let mut w = World::new(vec![
        entry(Some("/node$"), None),
        entry(Some("/python3$"), None),
    ]);
    w.discovery
        .apply_scan(vec![process(API, "/usr/bin/python3", &[])]);
    assert_eq!(w.name(API).as_deref(), Some("python3"));
    // /proc does not know these pids: the exec'd file's name stands in.
    w.tracker.exec(Pid(API), b"/usr/bin/node");
    assert_eq!(
        w.name(API).as_deref(),
        Some("node"),
        "named after the new program at once"
    );
    assert!(w.marks.has(API));
    w.deliver();
    assert_eq!(w.instrumented(), 1);

    w.tracker.exec(Pid(API), b"/bin/sh");
    assert_eq!(w.name(API), None);
    assert!(!w.marks.has(API));
    w.deliver();
    assert_eq!(w.instrumented(), 0);
}

#[test]
fn an_exec_selected_by_executable_is_traced_from_the_event() {
    let mut w = World::new(vec![entry(Some("curl$"), None)]);
    // The kernel marked both pending at exec.
    w.marks.trace(Pid(API));
    w.marks.trace(Pid(OTHER));
    w.tracker.exec(Pid(API), b"/usr/bin/curl");
    w.tracker.exec(Pid(OTHER), b"/usr/bin/wget");
    assert_eq!(w.name(API).as_deref(), Some("curl"));
    assert!(w.marks.has(API) && !w.marks.has(OTHER));
    w.deliver();
    assert_eq!(w.instrumented(), 1);
}

#[test]
fn marks_no_decision_reached_are_released_after_two_scans() {
    let mut w = World::new(vec![entry(Some("curl$"), None)]);
    w.marks.trace(Pid(OTHER));
    w.discovery.apply_scan(vec![]);
    assert!(w.marks.has(OTHER), "a decision may still be on its way");
    w.discovery.apply_scan(vec![]);
    assert!(!w.marks.has(OTHER));
}

#[test]
fn libraries_mapped_after_the_start_are_found_by_a_retry() {
    let mut w = World::new(vec![entry(Some("curl$"), None)]);
    w.marks.trace(Pid(API));
    w.tracker.exec(Pid(API), b"/usr/bin/curl");
    w.deliver();
    assert!(w.libraries.attached.lock().unwrap().is_empty());
    // The dynamic linker maps libssl a moment later.
    w.libraries.with_libraries.lock().unwrap().insert(Pid(API));
    w.discovery
        .retry_libraries(Instant::now() + LIBRARY_RETRIES[0]);
    assert!(w.libraries.attached.lock().unwrap().contains(&Pid(API)));
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let metrics = Arc::new(SelfMetrics::default());
    let (to_discovery, _inbox) = process_event_queue();
    let mut tracker = ProcessTracker::new(
        Arc::new(Selector::new(
            DiscoveryConfig {
                instrument: vec![entry(None, Some("8080"))],
                exclude: vec![],
            },
            None,
            Arc::from(Vec::new()),
            None,
        )),
        Registry::default(),
        Arc::new(Marks::default()),
        to_discovery,
        Arc::clone(&metrics),
    );
    for _ in 0..PROCESS_EVENT_QUEUE + 10 {
        tracker.listen(Pid(OTHER), 8080, true);
    }
    assert_eq!(metrics.get(Counter::ProcessEventsDropped), 10);
}

#[test]
fn a_process_gone_before_discovery_hears_of_its_exec_is_started_then_forgotten() {
    let mut w = World::new(vec![entry(Some("curl$"), None)]);
    w.marks.trace(Pid(API));
    w.tracker.exec(Pid(API), b"/usr/bin/curl");
    w.marks.untrace(Pid(API));
    w.tracker.exit(Pid(API));
    // Both reach discovery after the reader dropped the name: the exec still
    // carries the decision (and is logged), the exit ends it.
    w.discovery.handle(w.inbox.try_recv().unwrap());
    assert_eq!(w.instrumented(), 1);
    w.deliver();
    assert_eq!(w.instrumented(), 0);
}

#[test]
fn a_go_process_serving_its_first_tls_request_gets_its_goroutine_probes() {
    let mut w = World::new(vec![named("api", entry(None, Some("8080")))]);
    w.discovery
        .apply_scan(vec![process(API, "/usr/bin/api", &[8080])]);
    w.tracker.go_serving(Pid(API));
    // One the agent does not trace (gone since, or never selected) gets none.
    w.tracker.go_serving(Pid(OTHER));
    w.deliver();
    assert_eq!(
        *w.libraries.serving.lock().unwrap(),
        HashSet::from([Pid(API)])
    );
}
