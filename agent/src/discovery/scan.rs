//! One pass over /proc: every process with its executable and listening TCP ports.

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

/// Lists processes; `want_ports` also resolves their listening ports.
pub fn scan(want_ports: bool) -> Vec<ProcessInfo> {
    let Ok(all) = procfs::process::all_processes() else {
        log::warn!("cannot list /proc");
        return Vec::new();
    };
    // Listening sockets by inode, one table per network namespace.
    let mut listeners_by_netns: HashMap<u64, Listeners> = HashMap::new();
    let own_netns = want_ports.then(|| netns_of_pid("self"));
    let mut out = Vec::new();
    for proc in all.flatten() {
        let Ok(exe) = proc.exe() else { continue };
        let mut info = ProcessInfo {
            pid: Pid(proc.pid as u32),
            exe,
            listening: HashSet::new(),
        };
        if want_ports {
            let netns = netns_of_pid(&proc.pid.to_string());
            let listeners = listeners_by_netns.entry(netns).or_insert_with(|| {
                if Some(netns) == own_netns {
                    listeners::own_namespace().unwrap_or_else(|e| {
                        log::debug!("sock_diag failed ({e}); reading /proc/net/tcp");
                        listeners_of(&proc)
                    })
                } else {
                    listeners_of(&proc)
                }
            });
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
        out.push(info);
    }
    out
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
