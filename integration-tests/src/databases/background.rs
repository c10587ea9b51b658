//! Servers that live as long as the test binary: started once, from a thread that never ends,
//! with a parent-death signal, so the kernel kills them when the test binary exits however it
//! exits (statics are never dropped).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use crate::process::Lines;

/// A server started by [`start`]: its pid and what it prints.
pub struct Background {
    pub pid: u32,
    pub stdout: Lines,
    pub stderr: Lines,
}

/// Spawns `command` with piped output; it is killed when this process exits.
pub fn start(name: &str, mut command: Command) -> io::Result<Background> {
    let (started, outcome) = mpsc::channel();
    thread::Builder::new()
        .name(format!("{name} owner"))
        .spawn(move || {
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it runs
            // in the child between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                });
            }
            let spawned = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            let mut child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let (stdout, _) = Lines::capture(child.stdout.take().expect("piped stdout"));
            let (stderr, _) = Lines::capture(child.stderr.take().expect("piped stderr"));
            let _ = started.send(Ok(Background {
                pid: child.id(),
                stdout,
                stderr,
            }));
            // The parent-death signal fires when this thread ends: never, until the process does.
            loop {
                thread::park();
            }
        })?;
    outcome
        .recv()
        .map_err(|_| io::Error::other(format!("the thread starting {name} died")))?
}
