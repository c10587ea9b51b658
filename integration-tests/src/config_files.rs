//! Helpers for the configuration and discovery tests: config files in a
//! private directory, `--check-config`, an agent whose raw output a test can
//! read while it runs (for spans without `http.route` and for log lines that
//! come late), sample servers on a port and with an environment the test
//! chooses, and a Prometheus scrape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::agent::instrumented_pid;
use crate::agent::{agent_command, Agent};
use crate::apps::{command_for, Lang};
use crate::http::{request_on_fresh_connection, Request};
use crate::process::{kill_and_reap, spawn_listening, wait_with_timeout, Lines};
use crate::spans::Span;
use crate::workspace_root;

/// How long metrics may take to reach the Prometheus endpoint.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A private directory for config files; removed when dropped.
pub struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    pub fn new(tag: &str) -> ConfigDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "beyla-config-test-{}-{tag}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        ConfigDir { dir }
    }

    /// Writes `text` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `path` as a string, for `BEYLA_CONFIG_PATH`.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// What a short run of the agent printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the agent with `args` and `env` to completion (it must exit by itself).
pub fn run_agent(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = agent_command(env);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let (stdout, out_reader) = Lines::capture(child.stdout.take().expect("piped stdout"));
    let (stderr, err_reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
    let status = wait_with_timeout(&mut child, EXIT_TIMEOUT);
    kill_and_reap(&mut child);
    out_reader.join().expect("stdout reader");
    err_reader.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| {
        panic!(
            "{command:?} was still running after {EXIT_TIMEOUT:?}; it should have exited\nstderr:\n{}",
            stderr.text()
        )
    });
    Finished {
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// An agent with the JSON printer whose log a test reads while it runs and
/// whose printed lines it gets raw; killed when dropped. Everything but
/// [`RawAgent::stop`] is [`Agent`]'s.
pub struct RawAgent(Agent);

/// What a stopped [`RawAgent`] printed.
pub struct RawOutput {
    /// Every stdout line, parsed as JSON.
    pub json: Vec<Value>,
    /// The same lines as printed.
    pub lines: Vec<String>,
    pub stderr: String,
}

impl RawOutput {
    /// The lines as harness spans (each must have every attribute).
    pub fn spans(&self) -> Vec<Span> {
        self.lines.iter().map(|l| Span::parse(l)).collect()
    }
}

impl RawAgent {
    pub fn start(env: &[(&str, &str)]) -> RawAgent {
        RawAgent(Agent::start(env))
    }

    /// SIGTERM; asserts a clean exit with status 0.
    pub fn stop(self) -> RawOutput {
        let (lines, stderr) = self.0.stop_printed();
        let json = lines
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("agent stdout line is not JSON ({e}): {l}"))
            })
            .collect();
        RawOutput {
            json,
            lines,
            stderr,
        }
    }
}

impl std::ops::Deref for RawAgent {
    type Target = Agent;

    fn deref(&self) -> &Agent {
        &self.0
    }
}

/// A sample server on a port and with an environment the test chooses;
/// killed when dropped.
pub struct App {
    child: Child,
    pub port: u16,
    pub lang: Lang,
}

impl App {
    /// Starts `lang`'s sample server on `port` with `env` added, and waits
    /// for `listening on <port>`.
    pub fn start(lang: Lang, port: u16, env: &[(&str, &str)]) -> App {
        let root = workspace_root();
        let mut command = command_for(lang, port);
        command.current_dir(&root).envs(env.iter().copied());
        let what = format!("the {lang:?} server");
        let child = spawn_listening(command, port, STARTUP_TIMEOUT, &what).child;
        App { child, port, lang }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server and reaps it.
    pub fn kill(mut self) {
        kill_and_reap(&mut self.child);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// The base name of `/proc/<pid>/exe`.
pub fn exe_name(pid: u32) -> String {
    exe_path(pid)
        .file_name()
        .expect("an executable has a file name")
        .to_string_lossy()
        .into_owned()
}

/// The target of `/proc/<pid>/exe`.
pub fn exe_path(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/exe: {e}"))
}

/// `text` with every regex metacharacter escaped.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One sample of a Prometheus text exposition.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub line: String,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Parses the samples of a text exposition (comments skipped); panics on a
/// malformed line, since that is itself a failure.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_sample(l).unwrap_or_else(|| panic!("malformed Prometheus line: {l:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = *chars.peek()?;
            if c == '}' {
                chars.next();
                rest = &body[start + 1..];
                break;
            }
            let eq = body[start..].find('=')? + start;
            let label = body[start..eq].trim_start_matches(',').to_string();
            while chars.peek()?.0 <= eq {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.insert(label, value);
            if let Some(&(_, ',')) = chars.peek() {
                chars.next();
            }
        }
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
        line: line.to_string(),
    })
}

/// Scrapes `http://127.0.0.1:<port>/metrics` and returns the body.
pub fn scrape(port: u16) -> String {
    let (response, _) = request_on_fresh_connection(port, &Request::get("/metrics"));
    assert_eq!(
        response.status,
        200,
        "GET /metrics on the agent's Prometheus port {port} answered {}: {}",
        response.status,
        response.body_text()
    );
    response.body_text()
}

/// The `http_server_request_duration_seconds_count` samples of a scrape.
pub fn server_counts(text: &str) -> Vec<Sample> {
    parse_exposition(text)
        .into_iter()
        .filter(|s| s.name == "http_server_request_duration_seconds_count")
        .collect()
}

/// Scrapes until `done` holds for the server-count samples (or
/// [`METRICS_TIMEOUT`] passes) and returns the last scrape's text.
pub fn scrape_until(port: u16, done: impl Fn(&[Sample]) -> bool) -> String {
    let deadline = Instant::now() + METRICS_TIMEOUT;
    loop {
        let text = scrape(port);
        if done(&server_counts(&text)) || Instant::now() >= deadline {
            return text;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The summed server count of the series whose `http_route` is `route`.
pub fn route_count(samples: &[Sample], route: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.label("http_route") == route)
        .map(|s| s.value)
        .sum()
}

/// The samples' lines, for failure messages.
pub fn sample_lines(samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "  (none)".into();
    }
    samples
        .iter()
        .map(|s| format!("  {}", s.line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// JSON lines, for failure messages.
pub fn json_lines(values: &[&Value]) -> String {
    if values.is_empty() {
        return "  (none)".into();
    }
    values
        .iter()
        .map(|v| format!("  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes() {
        let s = parse_sample(
            "http_server_request_duration_seconds_count{http_route=\"/q\\\"x\",service_name=\"a\\\\b\"} 12",
        )
        .unwrap();
        assert_eq!(s.name, "http_server_request_duration_seconds_count");
        assert_eq!(s.label("http_route"), "/q\"x");
        assert_eq!(s.label("service_name"), "a\\b");
        assert_eq!(s.value, 12.0);
        let s = parse_sample("up 1").unwrap();
        assert!(s.labels.is_empty());
        assert_eq!(s.value, 1.0);
    }
}
