//! Running the `beyla` binary: start it with a selection, wait until it
//! traces what it should, stop it with SIGTERM and collect its spans.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::process::{kill_and_reap, send_signal, wait_with_timeout, Lines};
use crate::spans::Span;
use crate::workspace_root;

/// How long the agent may take to attach its probes, find a process or log
/// that one is gone.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to flush and exit after SIGTERM (it needs about a
/// second), or to fail at start-up.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent binary: `BEYLA_BIN`, else the workspace's debug build.
pub fn agent_binary() -> PathBuf {
    let path = std::env::var_os("BEYLA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/beyla"));
    assert!(
        path.is_file(),
        "agent binary {} not found: build it with `cargo build -p beyla` (or set BEYLA_BIN)",
        path.display()
    );
    path
}

/// A command for the agent binary, its environment set by [`set_agent_env`].
pub fn agent_command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(agent_binary());
    set_agent_env(&mut command, env);
    command
}

/// Gives `command` (the agent, or a wrapper that execs it) a known
/// environment: no `BEYLA_*` or `OTEL_*` variable of the caller leaks in,
/// logs at info level, then `env`.
pub fn set_agent_env(command: &mut Command, env: &[(&str, &str)]) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("BEYLA_") || name.starts_with("OTEL_") {
            command.env_remove(name.as_ref());
        }
    }
    command.env("BEYLA_LOG_LEVEL", "info");
    command.envs(env.iter().copied());
}

/// A running agent; killed when dropped, so a failing test leaves none behind.
pub struct Agent {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

/// What a stopped agent printed.
pub struct AgentOutput {
    /// The HTTP and gRPC spans ([`AgentOutput::all_spans`] for every protocol's).
    pub spans: Vec<Span>,
    /// Every span line as printed, for spans of other protocols.
    pub lines: Vec<String>,
    pub stderr: String,
}

impl Agent {
    /// Starts the agent with the JSON trace printer and the variables in `env`.
    pub fn start(env: &[(&str, &str)]) -> Agent {
        Agent::start_command(agent_command(env))
    }

    /// Starts `command` (the agent, or a wrapper that execs it, its
    /// environment set by [`set_agent_env`]) with the JSON trace printer.
    pub fn start_command(mut command: Command) -> Agent {
        command
            .env("BEYLA_TRACE_PRINTER", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the agent {command:?}: {e}"));
        let (stdout, out_reader) = Lines::capture(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
        Agent {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// Starts the agent like [`Agent::start`] and waits until it is ready, or
    /// until it exits at start-up: then its exit status and stderr.
    pub fn start_or_exit(env: &[(&str, &str)]) -> Result<Agent, (ExitStatus, String)> {
        let mut agent = Agent::start(env);
        if agent
            .stderr
            .wait_for(READY_TIMEOUT, |line| line.contains("agent ready"))
        {
            return Ok(agent);
        }
        let status = wait_with_timeout(&mut agent.child, EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "the agent neither got ready nor exited within {READY_TIMEOUT:?}\nagent stderr:\n{}",
                agent.stderr.text()
            )
        });
        for reader in agent.readers.drain(..) {
            reader.join().expect("output reader thread");
        }
        Err((status, agent.stderr.text()))
    }

    /// Waits for the log line saying the probes are attached and the first
    /// process scan is done.
    pub fn wait_ready(&self) {
        self.wait_for_log("agent ready", |line| line.contains("agent ready"));
    }

    /// Waits for the log line saying the agent traces process `pid`.
    pub fn wait_instrumenting(&self, pid: u32) {
        self.wait_for_log(&format!("instrumenting pid={pid}"), |line| {
            instrumented_pid(line) == Some(pid)
        });
    }

    /// Waits (at most [`READY_TIMEOUT`]) for a log line satisfying `wanted`;
    /// panics with the log so far otherwise.
    pub fn wait_for_log(&self, what: &str, wanted: impl Fn(&str) -> bool) {
        self.wait_for_log_within(what, wanted, READY_TIMEOUT);
    }

    fn wait_for_log_within(&self, what: &str, wanted: impl Fn(&str) -> bool, timeout: Duration) {
        if !self.stderr.wait_for(timeout, wanted) {
            panic!(
                "the agent did not log {what:?} within {timeout:?} (or exited)\n\
                 agent stderr:\n{}",
                self.stderr.text()
            );
        }
    }

    /// Waits at most `timeout` for a log line containing `text`.
    pub fn wait_for_log_containing(&self, text: &str, timeout: Duration) {
        self.wait_for_log_within(text, |line| line.contains(text), timeout);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Sends SIGTERM, asserts the agent flushes and exits with status 0, and
    /// returns every span it printed.
    pub fn stop(self) -> AgentOutput {
        let (lines, stderr) = self.stop_printed();
        let spans = lines
            .iter()
            .filter(|line| line.contains("\"http.request.method\""))
            .map(|line| Span::parse(line))
            .collect();
        AgentOutput {
            spans,
            lines,
            stderr,
        }
    }

    /// Sends SIGTERM, asserts the agent flushes and exits with status 0, and
    /// returns the lines it printed and its log, unparsed.
    pub fn stop_printed(mut self) -> (Vec<String>, String) {
        send_signal(&self.child, libc::SIGTERM);
        let status = wait_with_timeout(&mut self.child, EXIT_TIMEOUT);
        if status.is_none() {
            // Kill it so its pipes close and the readers below finish.
            kill_and_reap(&mut self.child);
        }
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader thread");
        }
        let stderr = self.stderr.text();
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!("the agent exited with {status} after SIGTERM\nagent stderr:\n{stderr}"),
            None => panic!("the agent did not exit within {EXIT_TIMEOUT:?} of SIGTERM\nagent stderr:\n{stderr}"),
        }
        (self.stdout.all(), stderr)
    }
}

impl AgentOutput {
    /// Every span printed, whatever its protocol (Redis, Kafka, SQL too).
    pub fn all_spans(&self) -> Vec<Span> {
        self.lines.iter().map(|line| Span::parse(line)).collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// The pid of an `instrumenting pid=<PID>` line (not of `no longer instrumenting`).
pub fn instrumented_pid(line: &str) -> Option<u32> {
    let at = line.find("instrumenting pid=")?;
    if line[..at].ends_with("no longer ") {
        return None;
    }
    let rest = &line[at + "instrumenting pid=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Runs the agent to completion for a start-up that must fail, and returns
/// its exit status and stderr.
pub fn run_to_exit(mut command: Command) -> (ExitStatus, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let (stderr, reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
    let status = wait_with_timeout(&mut child, EXIT_TIMEOUT);
    kill_and_reap(&mut child);
    reader.join().expect("stderr reader thread");
    let stderr = stderr.text();
    let status = status.unwrap_or_else(|| {
        panic!("{command:?} was still running after {EXIT_TIMEOUT:?}; it should have refused to start\nstderr:\n{stderr}")
    });
    (status, stderr)
}
