//! Two network namespaces joined by a veth pair, with addresses of their own:
//! two "nodes" on one machine, for traces that cross between them.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::random_hex;

/// The pair; both namespaces (and so the pair) are removed when dropped.
pub struct VethPair {
    pub namespaces: [String; 2],
    /// The address in each namespace.
    pub addresses: [String; 2],
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2, scripts/requirements.txt): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethPair {
    pub fn create() -> VethPair {
        let tag = random_hex(3);
        let namespaces = [format!("bsn-a-{tag}"), format!("bsn-b-{tag}")];
        let links = [format!("bsna{tag}"), format!("bsnb{tag}")];
        // A /24 of 10.0.0.0/8 of our own, unlikely to meet another test's.
        let net = u32::from_str_radix(&tag[..4], 16).expect("hex");
        let prefix = format!("10.{}.{}", 200 + net % 50, (net >> 8) % 256);
        let addresses = [format!("{prefix}.1"), format!("{prefix}.2")];
        let pair = VethPair {
            namespaces: namespaces.clone(),
            addresses: addresses.clone(),
        };
        for ns in &namespaces {
            ip(&["netns", "add", ns]);
        }
        ip(&[
            "link", "add", &links[0], "type", "veth", "peer", "name", &links[1],
        ]);
        for i in 0..2 {
            ip(&["link", "set", &links[i], "netns", &namespaces[i]]);
            let cidr = format!("{}/24", addresses[i]);
            ip(&["-n", &namespaces[i], "addr", "add", &cidr, "dev", &links[i]]);
            ip(&["-n", &namespaces[i], "link", "set", &links[i], "up"]);
            ip(&["-n", &namespaces[i], "link", "set", "lo", "up"]);
        }
        pair
    }

    /// `command` run inside namespace `i` (`ip netns exec` execs it: same pid).
    pub fn command(&self, i: usize, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespaces[i]])
            .arg(program)
            .args(args);
        command
    }

    /// Makes `command` start in namespace `i`'s network, and nothing else
    /// of it: unlike `ip netns exec`, which also mounts the namespace's own
    /// /sys, the program keeps this machine's /sys (an agent needs its bpf,
    /// tracing and cgroup file systems there).
    pub fn enter(&self, i: usize, command: &mut Command) {
        let path = format!("/var/run/netns/{}", self.namespaces[i]);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
        // SAFETY: setns is async-signal-safe and only switches the child's
        // network namespace, between fork and exec; fd stays open in the
        // parent (a few descriptors per test).
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
