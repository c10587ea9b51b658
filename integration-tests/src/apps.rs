//! The sample servers of `vm-tests/apps/` (one API; four languages on their
//! standard libraries, and three framework apps), started as direct children
//! so the pid a test knows is the pid the agent traces.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{kill_and_reap, Lines};
use crate::workspace_root;

/// Java's first start on a cold machine is the slowest; none comes close.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub enum Lang {
    Python,
    Node,
    Go,
    Java,
    /// Flask served by waitress (`vm-tests/apps/flask`).
    Flask,
    /// Express on node's `http` (`vm-tests/apps/express`).
    Express,
    /// Spark Java on embedded Jetty (`vm-tests/apps/spark-java`).
    SparkJava,
}

/// A free TCP port on 127.0.0.1, found by letting the kernel pick one.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The real Python interpreter behind `python3` (not a pyenv shim script),
/// so the spawned process is the interpreter from its first instruction.
pub fn python_interpreter() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import os, sys; print(os.path.realpath(sys.executable))",
                ])
                .output()
                .expect("run python3 (is it installed?)");
            assert!(out.status.success(), "python3 failed: {out:?}");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// Runs a build script of the repository (relative path) from its root; the
/// error carries the script's output. Callers keep the result in a OnceLock.
pub fn run_build_script(relative: &str) -> Result<(), String> {
    let script = workspace_root().join(relative);
    if !script.exists() {
        return Err(format!("{} is missing", script.display()));
    }
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}):\n{}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Builds the Go and Java apps once per test binary with
/// `vm-tests/apps/build.sh`; every later call reports the same outcome.
pub fn build_apps() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| run_build_script("vm-tests/apps/build.sh"));
    if let Err(message) = outcome {
        panic!("cannot build the sample apps: {message}");
    }
}

/// Installs and builds the framework apps (Flask, Express, Spark Java) once
/// per test binary with `vm-tests/apps/build-frameworks.sh`, which
/// `build.sh` runs too but does not fail on.
pub fn build_framework_apps() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| run_build_script("vm-tests/apps/build-frameworks.sh"));
    if let Err(message) = outcome {
        panic!("cannot build the framework sample apps: {message}");
    }
}

/// The command that runs `lang`'s sample server (without `PORT`), after
/// building what it runs from.
pub fn command_for(lang: Lang) -> Command {
    let root = workspace_root();
    let apps = root.join("vm-tests/apps");
    match lang {
        Lang::Python => {
            let mut c = Command::new(python_interpreter());
            c.arg(apps.join("python/server.py"));
            c
        }
        Lang::Node => {
            let mut c = Command::new("node");
            c.arg(apps.join("node/server.js"));
            c
        }
        Lang::Go => {
            build_apps();
            Command::new(root.join("target/apps/go-server"))
        }
        Lang::Java => {
            build_apps();
            let mut c = Command::new("java");
            c.arg("-cp").arg(root.join("target/apps/java")).arg("App");
            c
        }
        Lang::Flask => {
            build_framework_apps();
            // The venv's python is a symlink to the real interpreter, which the
            // kernel runs directly; the venv is found next to the link.
            let mut c = Command::new(root.join("target/apps/venv/bin/python"));
            c.arg(apps.join("flask/app.py"));
            c
        }
        Lang::Express => {
            build_framework_apps();
            let mut c = Command::new("node");
            c.arg(apps.join("express/server.js"));
            c
        }
        Lang::SparkJava => {
            build_framework_apps();
            let mut c = Command::new("java");
            c.arg("-jar").arg(root.join("target/apps/spark-server.jar"));
            c
        }
    }
}

/// A running sample server; killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts the `lang` server on a free port and waits until it prints
    /// `listening on <port>`. `downstream_url` is what its `/downstream`
    /// endpoint calls.
    pub fn start(lang: Lang, downstream_url: Option<&str>) -> Server {
        Self::start_with(lang, downstream_url, |_| {})
    }

    /// [`Server::start`], with `configure` applied to the command first
    /// (for example to start it in a container's cgroup).
    pub fn start_with(
        lang: Lang,
        downstream_url: Option<&str>,
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let port = free_port();
        let mut command = command_for(lang);
        configure(&mut command);
        command
            .current_dir(workspace_root())
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = downstream_url {
            command.env("DOWNSTREAM_URL", url);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {lang:?} server {command:?}: {e}"));
        let (stdout, _) = Lines::capture(child.stdout.take().expect("piped stdout"));
        let (stderr, _) = Lines::capture(child.stderr.take().expect("piped stderr"));
        let ready = format!("listening on {port}");
        if !stdout.wait_for(STARTUP_TIMEOUT, |line| line.contains(&ready)) {
            kill_and_reap(&mut child);
            panic!(
                "the {lang:?} server did not print {ready:?} within {STARTUP_TIMEOUT:?}\n\
                 stdout:\n{}\nstderr:\n{}",
                stdout.text(),
                stderr.text()
            );
        }
        Server { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service name the agent gives this process: the base name of its
    /// executable (`python3.11`, `node`, `go-server`, `java`; the Flask app's
    /// venv python is `python3.11` too).
    pub fn service_name(&self) -> String {
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid()))
            .unwrap_or_else(|e| panic!("readlink /proc/{}/exe: {e}", self.pid()));
        exe.file_name()
            .expect("an executable has a file name")
            .to_string_lossy()
            .into_owned()
    }

    /// `http://127.0.0.1:<port><path>`, for another server's `DOWNSTREAM_URL`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
