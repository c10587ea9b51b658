//! The sample servers of `vm-tests/apps/` (one API; four languages on their
//! standard libraries, three framework apps, and Ruby, PHP, Rust and C++ on
//! their usual servers), started as direct children so the pid a test knows
//! is the pid the agent traces.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::{kill_and_reap, send_signal, wait_with_timeout, Lines};
use crate::{random_hex, workspace_root};

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
    /// A Rack app on Puma (`vm-tests/apps/ruby`).
    Ruby,
    /// PHP's built-in server, `php -S` (`vm-tests/apps/php`).
    Php,
    /// nginx (one process) in front of php-fpm over a Unix socket: the
    /// traced server is nginx (`vm-tests/apps/php`).
    PhpFpm,
    /// axum on hyper and tokio (`vm-tests/apps/rust`).
    Rust,
    /// cpp-httplib (`vm-tests/apps/cpp`).
    Cpp,
}

/// How a sample server departs from the shared API in ways the scenarios
/// must know (vm-tests/apps/README.md says why for each).
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Keeps HTTP/1.1 connections open; `php -S` closes each one.
    pub keep_alive: bool,
    /// Answers `/chunked` with `Transfer-Encoding: chunked`; `php -S` sends
    /// the body up to the connection's close.
    pub chunked: bool,
    /// The longest request header line it takes (cpp-httplib: 8 KiB with
    /// the name), so 8 KiB of headers go as several lines.
    pub header_line_limit: Option<usize>,
    /// The process the test traces makes the `/downstream` call itself; with
    /// php-fpm the traced nginx passes the request to a PHP worker, which
    /// makes the call.
    pub downstream_in_process: bool,
}

impl Lang {
    pub fn behaviour(self) -> Behaviour {
        let mut behaviour = Behaviour {
            keep_alive: true,
            chunked: true,
            header_line_limit: None,
            downstream_in_process: true,
        };
        match self {
            Lang::Php => {
                behaviour.keep_alive = false;
                behaviour.chunked = false;
            }
            Lang::PhpFpm => behaviour.downstream_in_process = false,
            Lang::Cpp => behaviour.header_line_limit = Some(CPP_HTTPLIB_HEADER_LINE_LIMIT),
            _ => {}
        }
        behaviour
    }
}

/// cpp-httplib's compiled-in limit on one request header line, in Debian's
/// shared library (CPPHTTPLIB_HEADER_MAX_LENGTH).
const CPP_HTTPLIB_HEADER_LINE_LIMIT: usize = 8192;

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

/// The command that runs `lang`'s sample server on `port` (in `PORT`, or
/// its arguments), after building what it runs from. nginx with php-fpm is
/// two processes: [`Server::start`] runs them.
pub fn command_for(lang: Lang, port: u16) -> Command {
    let mut command = single_command(lang, port);
    command.env("PORT", port.to_string());
    command
}

fn single_command(lang: Lang, port: u16) -> Command {
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
            // lib/: the /db endpoints' clients (build-frameworks.sh), when built.
            let java = root.join("target/apps/java");
            c.arg("-cp")
                .arg(format!("{}:{}/lib/*", java.display(), java.display()))
                .arg("App");
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
        Lang::Ruby => {
            let mut c = Command::new("ruby");
            c.arg(apps.join("ruby/server.rb"));
            c
        }
        Lang::Php => {
            let mut c = Command::new("php");
            c.arg("-S")
                .arg(format!("127.0.0.1:{port}"))
                .arg(apps.join("php/app.php"));
            c
        }
        Lang::PhpFpm => panic!("nginx with php-fpm is two processes: use Server::start"),
        Lang::Rust => {
            build_apps();
            Command::new(root.join("target/apps/rust-server"))
        }
        Lang::Cpp => {
            build_apps();
            Command::new(root.join("target/apps/cpp-server"))
        }
    }
}

/// How a started server says it is ready.
enum Ready {
    /// Prints `listening on <port>` (every app of ours).
    Line,
    /// Prints this on stderr (`php -S`).
    Stderr(String),
    /// Says nothing (nginx): the port accepts connections.
    Accepting,
}

fn ready_sign(lang: Lang, port: u16) -> Ready {
    match lang {
        Lang::Php => Ready::Stderr(format!("(http://127.0.0.1:{port}) started")),
        Lang::PhpFpm => Ready::Accepting,
        _ => Ready::Line,
    }
}

/// php-fpm for the nginx front (`vm-tests/apps/php/fpm-config.sh` writes
/// both configs); returns it running, with the nginx command and the
/// directory that holds the configs and the socket.
fn start_php_fpm(port: u16, downstream_url: Option<&str>) -> (Child, Command, PathBuf) {
    let apps = workspace_root().join("vm-tests/apps/php");
    let dir = std::env::temp_dir().join(format!("beyla-php-fpm-{}", random_hex(4)));
    let status = Command::new("bash")
        .arg(apps.join("fpm-config.sh"))
        .arg(&dir)
        .arg(port.to_string())
        .status()
        .expect("run fpm-config.sh");
    assert!(status.success(), "fpm-config.sh failed");
    let mut fpm = Command::new("php-fpm8.2");
    fpm.args(["-F", "-R", "-y"])
        .arg(dir.join("php-fpm.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = downstream_url {
        fpm.env("DOWNSTREAM_URL", url);
    }
    let mut fpm = fpm
        .spawn()
        .unwrap_or_else(|e| panic!("start php-fpm8.2 (apt-get install php8.2-fpm): {e}"));
    let socket = dir.join("fpm.sock");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while !socket.exists() {
        if Instant::now() > deadline {
            stop_php_fpm(&mut fpm);
            let log = std::fs::read_to_string(dir.join("php-fpm.log")).unwrap_or_default();
            panic!("php-fpm did not make {} in time:\n{log}", socket.display());
        }
        std::thread::sleep(POLL);
    }
    let mut nginx = Command::new("nginx");
    nginx.arg("-c").arg(dir.join("nginx.conf"));
    (fpm, nginx, dir)
}

/// SIGTERM, so php-fpm's master stops its workers too (SIGKILL would leave
/// them running); SIGKILL if it has not exited after a while.
fn stop_php_fpm(fpm: &mut Child) {
    if fpm.try_wait().ok().flatten().is_none() {
        send_signal(fpm, libc::SIGTERM);
        if wait_with_timeout(fpm, FPM_STOP_TIMEOUT).is_none() {
            kill_and_reap(fpm);
        }
    }
}

const FPM_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often readiness is looked at while waiting for a server.
const POLL: Duration = Duration::from_millis(50);

fn accepting(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, POLL).is_ok()
}

/// A running sample server; killed when dropped (with php-fpm behind nginx,
/// and its directory).
pub struct Server {
    child: Child,
    pub port: u16,
    backend: Option<(Child, PathBuf)>,
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
        let (mut command, backend) = if let Lang::PhpFpm = lang {
            let (fpm, nginx, dir) = start_php_fpm(port, downstream_url);
            (nginx, Some((fpm, dir)))
        } else {
            (command_for(lang, port), None)
        };
        configure(&mut command);
        if let Some(url) = downstream_url {
            command.env("DOWNSTREAM_URL", url);
        }
        Self::launch(
            command,
            port,
            ready_sign(lang, port),
            &format!("the {lang:?} server"),
            backend,
        )
    }

    /// Starts `command` in the workspace root with `PORT=<port>` and waits
    /// until it prints `listening on <port>`; `what` names it in a failure.
    pub fn spawn(mut command: Command, port: u16, what: &str) -> Server {
        command.env("PORT", port.to_string());
        Self::launch(command, port, Ready::Line, what, None)
    }

    fn launch(
        mut command: Command,
        port: u16,
        ready_sign: Ready,
        what: &str,
        mut backend: Option<(Child, PathBuf)>,
    ) -> Server {
        command
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} {command:?}: {e}"));
        let (stdout, _) = Lines::capture(child.stdout.take().expect("piped stdout"));
        let (stderr, _) = Lines::capture(child.stderr.take().expect("piped stderr"));
        let (ready, sign) = match ready_sign {
            Ready::Line => {
                let line = format!("listening on {port}");
                (
                    stdout.wait_for(STARTUP_TIMEOUT, |l| l.contains(&line)),
                    line,
                )
            }
            Ready::Stderr(line) => (
                stderr.wait_for(STARTUP_TIMEOUT, |l| l.contains(&line)),
                line,
            ),
            Ready::Accepting => {
                let deadline = Instant::now() + STARTUP_TIMEOUT;
                while !accepting(port) && Instant::now() < deadline {
                    std::thread::sleep(POLL);
                }
                (accepting(port), format!("connections on {port}"))
            }
        };
        if !ready {
            kill_and_reap(&mut child);
            if let Some((fpm, _)) = backend.as_mut() {
                stop_php_fpm(fpm);
            }
            panic!(
                "{what} did not show {sign:?} within {STARTUP_TIMEOUT:?}\n\
                 stdout:\n{}\nstderr:\n{}",
                stdout.text(),
                stderr.text()
            );
        }
        Server {
            child,
            port,
            backend,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service name the agent gives this process: the base name of its
    /// executable (`python3.11`, `node`, `go-server`, `java`, `ruby3.1`,
    /// `php8.2`, `nginx`; the Flask app's venv python is `python3.11` too).
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
        if let Some((fpm, dir)) = self.backend.as_mut() {
            stop_php_fpm(fpm);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
