//! What /proc says of processes: executable and listening TCP ports, for
//! every process (the full scan) or for one (an event named it).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

use super::listeners::{self, Listeners};
use beyla_pipeline::model::Pid;

pub struct ProcessInfo {
    pub pid: Pid,
    pub exe: PathBuf,
    /// Filled only when the selection asks for ports, since reading fds costs most.
    pub listening: HashSet<u16>,
}

/// Listening sockets by inode, one table per network namespace, read once per pass.
struct ListenerTables {
    own_netns: Option<u64>,
    by_netns: HashMap<u64, Listeners>,
}

impl ListenerTables {
    fn new() -> Self {
        Self {
            own_netns: Some(netns_of_pid("self")),
            by_netns: HashMap::new(),
        }
    }

    fn of(&mut self, proc: &Process) -> &Listeners {
        let netns = netns_of_pid(&proc.pid.to_string());
        let own = self.own_netns == Some(netns);
        self.by_netns.entry(netns).or_insert_with(|| {
            if own {
                listeners::own_namespace().unwrap_or_else(|e| {
                    log::debug!("sock_diag failed ({e}); reading /proc/net/tcp");
                    listeners_of(proc)
                })
            } else {
                listeners_of(proc)
            }
        })
    }
}

/// Lists processes; `want_ports` also resolves their listening ports.
pub fn scan(want_ports: bool) -> Vec<ProcessInfo> {
    let Ok(all) = procfs::process::all_processes() else {
        log::warn!("cannot list /proc");
        return Vec::new();
    };
    let mut tables = want_ports.then(ListenerTables::new);
    all.flatten()
        .filter_map(|proc| info(&proc, tables.as_mut()))
        .collect()
}

/// One process, if it still exists.
pub fn process(pid: Pid, want_ports: bool) -> Option<ProcessInfo> {
    let proc = Process::new(pid.0 as i32).ok()?;
    info(&proc, want_ports.then(ListenerTables::new).as_mut())
}

fn info(proc: &Process, tables: Option<&mut ListenerTables>) -> Option<ProcessInfo> {
    let exe = proc.exe().ok()?;
    let mut info = ProcessInfo {
        pid: Pid(proc.pid as u32),
        exe,
        listening: HashSet::new(),
    };
    if let Some(tables) = tables {
        let listeners = tables.of(proc);
        if !listeners.is_empty() {
            if let Ok(fds) = proc.fd() {
                for fd in fds.flatten() {
                    if let FDTarget::Socket(inode) = fd.target {
                        if let Some(&port) = listeners.get(&inode) {
                            info.listening.insert(port);
                        }
                    }
                }
            }
        }
    }
    Some(info)
}

fn netns_of_pid(pid: &str) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .map(|m| std::os::linux::fs::MetadataExt::st_ino(&m))
        .unwrap_or(0)
}

/// Every listening TCP socket of the process's network namespace, from
/// /proc/PID/net/tcp{,6}: for namespaces other than the agent's own.
fn listeners_of(proc: &Process) -> Listeners {
    let mut out = Listeners::new();
    for table in [proc.tcp(), proc.tcp6()].into_iter().flatten() {
        for entry in table {
            if entry.state == TcpState::Listen {
                out.insert(entry.inode, entry.local_address.port());
            }
        }
    }
    out
}
