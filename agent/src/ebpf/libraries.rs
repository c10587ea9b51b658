//! Uprobes on the libraries traced processes map (the sets of
//! `probe_sets::LIBRARIES`). A library file gets its uprobes once, for every
//! process that runs it; the probes act only for processes the traced-PID map
//! marks, so a traced process's forked children are covered from their first
//! instruction, and ten server processes sharing one libssl cost one attach
//! (and one detach: the kernel unregisters uprobes one at a time, slowly).
//! A file's uprobes are detached once no traced process maps it.
//! A Go executable is a file of its own kind: its probes go on its own
//! functions (`probe_sets::GO_FUNCTIONS`, placed by `golang`), and each
//! traced process running it gets its struct offsets in the `go_procs` map.
//! Its goroutine probes wait for the kernel's word that a process of it
//! served a TLS request (`GoAttach::FirstServing`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use aya::programs::uprobe::{UProbeError, UProbeLink, UProbeScope};
use aya::programs::{ProgramError, UProbe};
use aya::Ebpf;

use super::abi::GoOffsets;
use super::pid_map::PidMap;
use super::preflight::{self, capability_for};
use super::probe_sets::{GoAttach, LibrarySet, GO_FUNCTIONS, LIBRARIES};
use crate::discovery::LibraryProbes;
use crate::golang::{self, GoBinary};
use beyla_pipeline::model::Pid;
use beyla_pipeline::selfmetrics::{Counter, SelfMetrics};

/// The set name of Go executables' files (`FileId`), and in logs.
const GO: &str = "Go";
/// The set name of Go executables' goroutine probes (`FileId`).
const GO_GOROUTINES: &str = "Go goroutines";
/// The map the Go probes read a process's struct offsets from.
const GO_PROCS: &str = "go_procs";

/// One library file of one set: (set, device, inode). The same file seen
/// through different paths (`/proc/PID/root/...` of two processes) is one.
type FileId = (&'static str, u64, u64);

/// A library file whose uprobes are attached.
struct Attached {
    links: Vec<UProbeLink>,
    /// Traced processes mapping it: when none is left, the links go.
    users: HashSet<Pid>,
}

/// Owns the loaded object after start-up: only library probes are attached later.
pub struct LibraryAttacher {
    ebpf: Ebpf,
    pids: Arc<PidMap>,
    metrics: Arc<SelfMetrics>,
    files: HashMap<FileId, Attached>,
    /// The files each traced process uses.
    used_by: HashMap<Pid, Vec<FileId>>,
    /// Files without any of a set's symbols: not looked through again (each
    /// attempt reads the file's symbol table, which for a large executable
    /// without OpenSSL costs milliseconds, at every retry).
    without: HashSet<FileId>,
    /// Processes whose uprobes the kernel refused: counted and warned about
    /// once, not tried again.
    refused: HashSet<Pid>,
    /// Executables by (device, inode): the Go probes' places, or None when
    /// it is not a Go binary the probes can take (each read once).
    go_binaries: HashMap<(u64, u64), Option<Arc<GoBinary>>>,
    /// Traced Go processes and the offsets written for them in `go_procs`.
    go_pids: HashMap<Pid, GoOffsets>,
}

impl LibraryAttacher {
    /// Warns at start when the kernel will refuse uprobes.
    pub(super) fn new(ebpf: Ebpf, pids: Arc<PidMap>, metrics: Arc<SelfMetrics>) -> Self {
        if let Some(e) = uprobes_refused() {
            for set in LIBRARIES {
                log::warn!(
                    "feature {} ({}) is off: the kernel refuses uprobes to this process ({e}); grant {} for it. \
                     Each process it cannot instrument is counted in beyla_probe_attach_failures_total{{feature=\"{}\"}}",
                    set.feature,
                    set.what,
                    capability(set),
                    set.feature
                );
            }
        }
        Self {
            ebpf,
            pids,
            metrics,
            files: HashMap::new(),
            used_by: HashMap::new(),
            without: HashSet::new(),
            refused: HashSet::new(),
            go_binaries: HashMap::new(),
            go_pids: HashMap::new(),
        }
    }

    /// `pid`'s executable when it is a Go binary that uses crypto/tls: its
    /// probes' places (read once per file), its path and (device, inode).
    fn go_executable(&mut self, pid: Pid) -> Option<(Arc<GoBinary>, String, (u64, u64))> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let path = format!("/proc/{pid}/root{}", exe.display());
        let meta = std::fs::metadata(&path).ok()?;
        let names: Vec<&'static str> = GO_FUNCTIONS.iter().map(|f| f.name).collect();
        let go = self
            .go_binaries
            .entry((meta.dev(), meta.ino()))
            .or_insert_with(|| match golang::inspect(path.as_ref(), &names) {
                Ok(go) => go
                    .filter(|go| {
                        go.functions
                            .iter()
                            .any(|f| f.name.starts_with("crypto/tls."))
                    })
                    .map(Arc::new),
                Err(e) => {
                    log::warn!("pid={pid}: no Go TLS probes: {e}");
                    None
                }
            })
            .clone()?;
        Some((go, path, (meta.dev(), meta.ino())))
    }

    /// The Go probes for `pid` when its executable is a Go binary that uses
    /// crypto/tls: the file's TLS uprobes (once per file), and the process's
    /// struct offsets, written before it counts as covered. False for any
    /// other executable.
    fn attach_go(&mut self, pid: Pid) -> bool {
        let Some((go, path, (dev, ino))) = self.go_executable(pid) else {
            return false;
        };
        let offsets = GoOffsets::from(go.offsets);
        if let Err(e) = self.set_go_offsets(pid, Some(offsets)) {
            log::warn!("pid={pid}: no Go TLS probes: {GO_PROCS}: {e}");
            return false;
        }
        let id = (GO, dev, ino);
        if !self.files.contains_key(&id) {
            match self.attach_go_file(&go, &path, GoAttach::Discovery) {
                Ok(links) if !links.is_empty() => self.keep(id, links),
                result => {
                    let _ = self.set_go_offsets(pid, None);
                    if let Err(e) = result {
                        self.refused.insert(pid);
                        self.metrics.inc(Counter::ProbeAttachFailuresGoTls);
                        log::warn!(
                            "TLS: pid={pid}: Go crypto/tls uprobes refused (perf_event_open: {e}): its HTTPS requests give no spans; grant {}",
                            uprobe_capability()
                        );
                    }
                    return false;
                }
            }
        }
        self.add_user(id, pid);
        log::info!(
            "pid={pid} Go {} uprobes attached ({} {path}, {})",
            go.build.version,
            go.build.module,
            if go.has_symbols {
                "symbols"
            } else {
                "stripped"
            },
        );
        true
    }

    /// The Go probes attached `when` at their places in one executable, for
    /// every process.
    fn attach_go_file(
        &mut self,
        go: &GoBinary,
        file: &str,
        when: GoAttach,
    ) -> Result<Vec<UProbeLink>, io::Error> {
        let mut links = Vec::new();
        let mut refused = None;
        for found in &go.functions {
            let Some(function) = GO_FUNCTIONS
                .iter()
                .find(|f| f.name == found.name && f.when == when)
            else {
                continue;
            };
            let returns = function
                .ret
                .map(|ret| found.returns.iter().map(move |&at| (ret, at)));
            let places =
                std::iter::once((function.entry, found.entry)).chain(returns.into_iter().flatten());
            for (program, at) in places {
                let Some(probe) = self
                    .ebpf
                    .program_mut(program)
                    .and_then(|p| <&mut UProbe>::try_from(p).ok())
                else {
                    continue;
                };
                match probe
                    .attach(at, file, UProbeScope::AllProcesses)
                    .and_then(|id| probe.take_link(id))
                {
                    Ok(link) => links.push(link),
                    Err(ProgramError::SyscallError(e)) if is_permission_error(&e.io_error) => {
                        refused = Some(e.io_error);
                    }
                    Err(e) => log::warn!(
                        "no uprobe {program} on {} at {at:#x} in {file}: {e}",
                        function.name
                    ),
                }
            }
        }
        match refused {
            Some(e) if links.is_empty() => Err(e),
            _ => {
                log::debug!("Go uprobes attached to {file} ({} probes)", links.len());
                Ok(links)
            }
        }
    }

    /// The goroutine probes of a traced Go process's executable (once per
    /// file), now that the process served a TLS request.
    fn attach_goroutines(&mut self, pid: Pid) {
        if !self.go_pids.contains_key(&pid) {
            return;
        }
        let Some((go, path, (dev, ino))) = self.go_executable(pid) else {
            return;
        };
        let id = (GO_GOROUTINES, dev, ino);
        if !self.files.contains_key(&id) {
            match self.attach_go_file(&go, &path, GoAttach::FirstServing) {
                Ok(links) if !links.is_empty() => self.keep(id, links),
                Ok(_) => {
                    log::debug!(
                        "pid={pid}: no Go goroutine probes: runtime.newproc1 not found in {path}"
                    );
                    return;
                }
                Err(e) => {
                    self.metrics.inc(Counter::ProbeAttachFailuresGoTls);
                    log::warn!(
                        "pid={pid}: Go goroutine uprobes refused (perf_event_open: {e}): the calls its goroutines make are not linked to its requests; grant {}",
                        uprobe_capability()
                    );
                    return;
                }
            }
        }
        if self.add_user(id, pid) {
            log::info!("pid={pid} Go goroutine probes attached ({path}): it served a TLS request");
        }
    }

    /// Keeps a file's new links, with no user yet.
    fn keep(&mut self, id: FileId, links: Vec<UProbeLink>) {
        self.files.insert(
            id,
            Attached {
                links,
                users: HashSet::new(),
            },
        );
    }

    /// Counts `pid` among the users of a kept file; false when it is not
    /// kept, or `pid` was counted already.
    fn add_user(&mut self, id: FileId, pid: Pid) -> bool {
        let Some(attached) = self.files.get_mut(&id) else {
            return false;
        };
        let added = attached.users.insert(pid);
        if added {
            self.used_by.entry(pid).or_default().push(id);
        }
        added
    }

    /// Writes (or, with None, removes) a process's entry in `go_procs`.
    fn set_go_offsets(
        &mut self,
        pid: Pid,
        offsets: Option<GoOffsets>,
    ) -> Result<(), aya::maps::MapError> {
        let map = self
            .ebpf
            .map_mut(GO_PROCS)
            .ok_or(aya::maps::MapError::InvalidName {
                name: GO_PROCS.into(),
            })?;
        let mut map = aya::maps::HashMap::<_, u32, GoOffsets>::try_from(map)?;
        match offsets {
            Some(offsets) => {
                map.insert(pid.0, offsets, 0)?;
                self.go_pids.insert(pid, offsets);
            }
            None => {
                if self.go_pids.remove(&pid).is_some() {
                    map.remove(&pid.0)?;
                }
            }
        }
        Ok(())
    }

    /// Attaches a set's uprobes to one file, for every process. None when
    /// the file has none of the set's symbols; Err when the kernel refused.
    fn attach_file(
        &mut self,
        set: &LibrarySet,
        file: &str,
    ) -> Result<Option<Vec<UProbeLink>>, io::Error> {
        let mut links = Vec::new();
        let mut resolved_any = false;
        let mut refused = None;
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
                    .attach(*symbol, file, UProbeScope::AllProcesses)
                    .and_then(|id| probe.take_link(id))
                {
                    Ok(link) => {
                        resolved_any = true;
                        links.push(link);
                    }
                    Err(ProgramError::SyscallError(e)) if is_permission_error(&e.io_error) => {
                        resolved_any = true;
                        refused = Some(e.io_error);
                    }
                    Err(e) => {
                        resolved_any |= !matches!(
                            e,
                            ProgramError::UProbeError(UProbeError::SymbolError { .. })
                        );
                        log::debug!("no uprobe {program} on {symbol} in {file}: {e}");
                    }
                }
            }
        }
        match (links.is_empty(), refused) {
            (true, Some(e)) => Err(e),
            (true, None) if !resolved_any => Ok(None),
            _ => Ok(Some(links)),
        }
    }

    /// Stops counting `pid` among the users of its files; the files no
    /// traced process maps any more lose their uprobes.
    fn release(&mut self, pid: Pid) {
        let mut unused = Vec::new();
        for id in self.used_by.remove(&pid).unwrap_or_default() {
            if let Some(file) = self.files.get_mut(&id) {
                file.users.remove(&pid);
                if file.users.is_empty() {
                    unused.extend(self.files.remove(&id).map(|f| f.links));
                }
            }
        }
        detach_in_background(unused.into_iter().flatten().collect());
    }
}

impl LibraryProbes for LibraryAttacher {
    /// A missing symbol (SSL_read_ex before OpenSSL 1.1.1, or an executable
    /// without OpenSSL) is skipped.
    fn attach(&mut self, pid: Pid) -> bool {
        if self.refused.contains(&pid) {
            return false;
        }
        // A Go program's TLS is its own: first, so that a short-lived
        // process gets its probes before the OpenSSL symbol look-ups.
        if self.attach_go(pid) {
            return true;
        }
        let mut any = false;
        for set in LIBRARIES {
            let mut uses = Vec::new();
            let mut refused = None;
            for file in (set.locate)(pid) {
                let Ok(meta) = std::fs::metadata(&file) else {
                    continue;
                };
                let id = (set.name, meta.dev(), meta.ino());
                if self.without.contains(&id) {
                    continue;
                }
                if !self.files.contains_key(&id) {
                    match self.attach_file(set, &file) {
                        Ok(Some(links)) => {
                            log::debug!(
                                "{} uprobes attached to {file} ({} probes)",
                                set.name,
                                links.len()
                            );
                            self.keep(id, links);
                        }
                        // Only a file that lacks every symbol is remembered,
                        // not one whose process was gone before the attach.
                        Ok(None) => {
                            self.without.insert(id);
                            continue;
                        }
                        Err(e) => {
                            refused = Some(e);
                            continue;
                        }
                    }
                }
                if self.files.contains_key(&id) {
                    self.add_user(id, pid);
                    uses.push(file);
                }
            }
            if uses.is_empty() {
                if let Some(e) = refused {
                    self.refused.insert(pid);
                    self.metrics.inc(set.failures);
                    log::warn!(
                        "TLS: pid={pid}: {} uprobes refused (perf_event_open: {e}): its HTTPS requests give no spans; grant {}",
                        set.name,
                        capability(set)
                    );
                }
                continue;
            }
            any = true;
            self.pids.add_flag(pid, set.pid_flag);
            log::info!(
                "pid={pid} {} uprobes attached ({})",
                set.name,
                uses.join(", ")
            );
        }
        any
    }

    /// The child maps what its parent mapped, and the kernel copied the
    /// parent's flags: it only joins the users of the parent's files.
    fn fork(&mut self, parent: Pid, child: Pid) {
        if let Some(offsets) = self.go_pids.get(&parent).copied() {
            if let Err(e) = self.set_go_offsets(child, Some(offsets)) {
                log::debug!("pid={child}: no Go offsets: {e}");
            }
        }
        for id in self.used_by.get(&parent).cloned().unwrap_or_default() {
            self.add_user(id, child);
        }
    }

    fn go_serving(&mut self, pid: Pid) {
        self.attach_goroutines(pid);
    }

    fn detach(&mut self, pid: Pid) {
        self.refused.remove(&pid);
        if let Err(e) = self.set_go_offsets(pid, None) {
            log::debug!("pid={pid}: Go offsets not removed: {e}");
        }
        self.release(pid);
    }
}

impl Drop for LibraryAttacher {
    /// At exit the links are closed off the exiting thread: the kernel
    /// unregisters uprobes one at a time, and the stop must not wait on it.
    fn drop(&mut self) {
        let links = self.files.drain().flat_map(|(_, f)| f.links).collect();
        detach_in_background(links);
    }
}

/// Closes uprobe links on a thread of their own, so that neither discovery
/// nor the agent's stop waits while the kernel unregisters them.
fn detach_in_background(links: Vec<UProbeLink>) {
    if links.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("uprobe-detach".into())
        .spawn(move || drop(links));
    if let Err(e) = spawned {
        log::debug!("cannot start a thread to detach uprobes ({e}): detached at exit");
    }
}

/// The kernel's dynamic PMU for uprobes: its type number is in this file.
const UPROBE_PMU_TYPE: &str = "/sys/bus/event_source/devices/uprobe/type";
/// `exclude_kernel` in `perf_event_attr.flags`.
const EXCLUDE_KERNEL: u64 = 1 << 5;
/// perf_event_open's `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// The first 64 bytes of `struct perf_event_attr` (`PERF_ATTR_SIZE_VER0`),
/// enough to name a PMU and a uprobe path (`config1`).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttrV0 {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// Whether the kernel refuses uprobes to this process, asked without
/// creating one: the uprobe PMU checks the caller's privilege before it reads
/// the path, so a null path gives EACCES when refused and EINVAL when allowed.
fn uprobes_refused() -> Option<io::Error> {
    let pmu = std::fs::read_to_string(UPROBE_PMU_TYPE).ok()?;
    let attr = PerfEventAttrV0 {
        kind: pmu.trim().parse().ok()?,
        size: std::mem::size_of::<PerfEventAttrV0>() as u32,
        flags: EXCLUDE_KERNEL,
        ..PerfEventAttrV0::default()
    };
    // SAFETY: perf_event_open reads `size` bytes of a valid attr; this
    // process (pid 0), any CPU, no group; a returned fd is closed at once.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttrV0,
            0,
            -1,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us and is not used elsewhere.
        unsafe { libc::close(fd as i32) };
        return None;
    }
    Some(io::Error::last_os_error()).filter(is_permission_error)
}

fn is_permission_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

/// The capability a set's uprobes need, as named in the logs.
fn capability(set: &LibrarySet) -> String {
    capability_for(set.feature).map_or_else(|| "root".into(), |c| c.to_string())
}

/// The capability any uprobe needs (OpenSSL's or Go's: the kernel asks the same).
fn uprobe_capability() -> String {
    capability_for(preflight::OPENSSL).map_or_else(|| "root".into(), |c| c.to_string())
}
