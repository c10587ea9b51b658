//! Child-process plumbing shared by the agent and the sample apps: capturing
//! their output line by line, waiting for a line, signals and bounded waits.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The lines a child wrote to one of its pipes, collected by a reader thread
/// so the pipe never fills up and a test can wait for a given line.
#[derive(Clone)]
pub struct Lines {
    shared: Arc<(Mutex<Captured>, Condvar)>,
}

#[derive(Default)]
struct Captured {
    lines: Vec<String>,
    /// The pipe reached end of file: the child closed it or exited.
    closed: bool,
}

impl Lines {
    /// Starts a thread that reads `pipe` to its end. Join the handle to be
    /// sure every line the child wrote has been collected.
    pub fn capture(pipe: impl Read + Send + 'static) -> (Lines, JoinHandle<()>) {
        let lines = Lines {
            shared: Arc::default(),
        };
        let writer = lines.clone();
        let handle = thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        writer.push(line);
                    }
                }
            }
            let (state, changed) = &*writer.shared;
            state.lock().unwrap().closed = true;
            changed.notify_all();
        });
        (lines, handle)
    }

    fn push(&self, line: String) {
        let (state, changed) = &*self.shared;
        state.lock().unwrap().lines.push(line);
        changed.notify_all();
    }

    /// Waits until some line satisfies `wanted`. False when `timeout` passes
    /// or the pipe closes (the child is gone) first.
    pub fn wait_for(&self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.shared;
        let mut captured = state.lock().unwrap();
        loop {
            if captured.lines.iter().any(|l| wanted(l)) {
                return true;
            }
            let now = Instant::now();
            if captured.closed || now >= deadline {
                return false;
            }
            captured = changed.wait_timeout(captured, deadline - now).unwrap().0;
        }
    }

    /// Every line collected so far.
    pub fn all(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().lines.clone()
    }

    /// Every line collected so far, as one text for failure messages.
    pub fn text(&self) -> String {
        self.all().join("\n")
    }
}

/// Sends `signal` (e.g. `libc::SIGTERM`) to the child.
pub fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits in pid_t");
    // SAFETY: kill has no memory-safety preconditions; the pid is our own
    // child, not yet reaped, so it cannot name another process.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Waits at most `timeout` for the child to exit; `None` if it is still running.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("waitpid on a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the child if it is still running and reaps it: for guards' `drop`,
/// so a failing test leaves no agent or server behind.
pub fn kill_and_reap(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A server started by [`spawn_listening`], with its captured output.
pub struct Listening {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

/// Spawns `command` (stdin closed, stdout and stderr captured) and waits at
/// most `timeout` for it to print `listening on <port>`, as every sample
/// server of ours does; kills it and panics with its output otherwise.
/// `what` names it in messages.
pub fn spawn_listening(
    mut command: Command,
    port: u16,
    timeout: Duration,
    what: &str,
) -> Listening {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} {command:?}: {e}"));
    let (stdout, _) = Lines::capture(child.stdout.take().expect("piped stdout"));
    let (stderr, _) = Lines::capture(child.stderr.take().expect("piped stderr"));
    let ready = format!("listening on {port}");
    if !stdout.wait_for(timeout, |line| line.contains(&ready)) {
        kill_and_reap(&mut child);
        panic!(
            "{what} did not print {ready:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            stdout.text(),
            stderr.text()
        );
    }
    Listening {
        child,
        stdout,
        stderr,
    }
}
