//! Real receivers for the exporter tests: a Prometheus server (scraping the
//! agent, or taking OTLP metrics), the OTLP test receiver
//! `receivers/otlp_receiver.py`, and the agent's own scrape endpoint.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::apps::{free_port, python_interpreter};
use crate::http::{request_on_fresh_connection, Request};
use crate::process::{kill_and_reap, send_signal, wait_with_timeout, Lines};
use crate::{random_hex, workspace_root};

/// How long a receiver may take to listen, or to exit after SIGTERM.
const RECEIVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Calls `probe` every 200 ms until it returns `Some`, at most `timeout`.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// [`poll`], panicking with `what` and what `describe` says on timeout.
pub fn poll_until<T>(
    timeout: Duration,
    what: &str,
    probe: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    poll(timeout, probe)
        .unwrap_or_else(|| panic!("{what}: not reached within {timeout:?}\n{}", describe()))
}

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), random_hex(4)));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// `s` percent-encoded for a URL query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Prometheus server binary (2.53, with an OTLP receiver), fetched once per
/// test binary by `receivers/fetch-prometheus.sh` into `~/.cache/beyla/`.
pub fn prometheus_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let outcome = BINARY.get_or_init(|| {
        let script = workspace_root().join("integration-tests/receivers/fetch-prometheus.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} failed ({}):\nstdout: {}\nstderr: {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match outcome {
        Ok(path) => path.clone(),
        Err(message) => panic!("cannot get a Prometheus server: {message}"),
    }
}

/// One element of an instant-query result: its labels (with `__name__`) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// A Prometheus server on 127.0.0.1, with its own config and storage in a
/// temp dir; killed and removed when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    stderr: Lines,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus with the OTLP receiver enabled; with `scrape`
    /// (`(port, path)` of the agent's endpoint) it scrapes it every second.
    pub fn start(scrape: Option<(u16, &str)>) -> Prometheus {
        let binary = prometheus_binary();
        let dir = TempDir::new("beyla-prometheus");
        let mut config = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n");
        if let Some((port, path)) = scrape {
            config.push_str(&format!(
                "scrape_configs:\n  - job_name: beyla\n    metrics_path: {path}\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            ));
        }
        let config_file = dir.path.join("prometheus.yml");
        fs::write(&config_file, config).expect("write prometheus.yml");
        let port = free_port();
        let mut command = Command::new(&binary);
        command
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=otlp-write-receiver")
            .current_dir(&dir.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (stderr, _) = Lines::capture(child.stderr.take().expect("piped stderr"));
        let mut prometheus = Prometheus {
            child,
            port,
            stderr,
            _dir: dir,
        };
        prometheus.wait_ready();
        assert!(
            !prometheus
                .log()
                .contains("Unknown option for --enable-feature"),
            "{} has no OTLP receiver (--enable-feature=otlp-write-receiver is unknown to it):\n{}",
            binary.display(),
            prometheus.log()
        );
        prometheus
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + RECEIVER_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                panic!(
                    "Prometheus exited with {status} at start-up:\n{}",
                    self.stderr.text()
                );
            }
            if accepts(self.port)
                && request_on_fresh_connection(self.port, &Request::get("/-/ready"))
                    .0
                    .status
                    == 200
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Prometheus was not ready within {RECEIVER_TIMEOUT:?}:\n{}",
                    self.stderr.text()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of its OTLP metrics receiver (http/protobuf).
    pub fn otlp_metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/otlp/v1/metrics", self.port)
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        self.stderr.text()
    }

    /// GETs an API path and returns its `data`, panicking unless the status is success.
    fn api(&self, path_and_query: &str) -> Value {
        let (response, _) = request_on_fresh_connection(self.port, &Request::get(path_and_query));
        let json: Value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
            panic!(
                "Prometheus {path_and_query} answered {} with a non-JSON body ({e}): {}",
                response.status,
                response.body_text()
            )
        });
        assert!(
            response.status == 200 && json["status"] == "success",
            "Prometheus {path_and_query} answered {}: {json}",
            response.status
        );
        json["data"].clone()
    }

    /// An instant query; every element of the resulting vector.
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)));
        assert_eq!(
            data["resultType"], "vector",
            "query {expr} did not give a vector: {data}"
        );
        data["result"]
            .as_array()
            .expect("result is an array")
            .iter()
            .map(|element| {
                let labels = element["metric"]
                    .as_object()
                    .expect("metric is an object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let value = element["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("query {expr}: bad value in {element}"));
                Sample { labels, value }
            })
            .collect()
    }

    /// Every metric name Prometheus has stored.
    pub fn metric_names(&self) -> Vec<String> {
        self.api("/api/v1/label/__name__/values")
            .as_array()
            .expect("label values are an array")
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    }

    /// The health of each scrape target, `(scrapeUrl, health, lastError)`.
    pub fn targets(&self) -> Vec<(String, String, String)> {
        let data = self.api("/api/v1/targets");
        data["activeTargets"]
            .as_array()
            .map(|targets| {
                targets
                    .iter()
                    .map(|t| {
                        let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                        (text("scrapeUrl"), text("health"), text("lastError"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// The agent's scrape endpoint as text (`GET http://127.0.0.1:<port><path>`).
pub fn scrape(port: u16, path: &str) -> String {
    let (response, _) = request_on_fresh_connection(port, &Request::get(path));
    assert_eq!(
        response.status,
        200,
        "GET {path} on the agent's port {port}: {}",
        response.body_text()
    );
    response.body_text()
}

/// The lines of a text exposition whose series name is `name` (labels
/// following, or none), e.g. `beyla_kernel_drops_total{reason="ringbuf_full"} 0`.
pub fn exposition_lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of an exposition line (the last field).
pub fn exposition_value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in exposition line {line:?}"))
}

/// Makes sure the OTLP receiver's Python packages are importable by the
/// `python3` the tests run (scripts/setup.sh installs them: they are test
/// items of scripts/requirements.txt); panics naming them if not.
fn ensure_receiver_packages() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    const CHECK: &str = "import grpc, google.protobuf, opentelemetry.proto.collector.trace.v1";
    let outcome = READY.get_or_init(|| {
        let out = Command::new(python_interpreter())
            .args(["-c", CHECK])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(message) = outcome {
        panic!(
            "the OTLP receiver needs the Python packages grpcio, protobuf and \
             opentelemetry-proto (scripts/requirements.txt; bash scripts/deps.sh install \
             test): {message}"
        );
    }
}

/// `receivers/otlp_receiver.py`, serving OTLP/HTTP and OTLP/gRPC on 127.0.0.1
/// and appending what it receives to a JSON-lines file; killed when dropped.
pub struct OtlpReceiver {
    child: Child,
    pub http_port: u16,
    pub grpc_port: u16,
    stderr: Lines,
    readers: Vec<thread::JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Starts the receiver on the given ports (0: free ones) writing to `out`,
    /// with extra options (`--fail-with 503`, `--fail-first 3`), and waits
    /// until both servers listen.
    pub fn start(http_port: u16, grpc_port: u16, out: &Path, extra: &[&str]) -> OtlpReceiver {
        ensure_receiver_packages();
        let script = workspace_root().join("integration-tests/receivers/otlp_receiver.py");
        let mut command = Command::new(python_interpreter());
        command
            .arg(&script)
            .arg(format!("--http-port={http_port}"))
            .arg(format!("--grpc-port={grpc_port}"))
            .arg("--out")
            .arg(out)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (stdout, out_reader) = Lines::capture(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
        if !stdout.wait_for(RECEIVER_TIMEOUT, |l| l.starts_with("listening http=")) {
            kill_and_reap(&mut child);
            panic!(
                "the OTLP receiver did not print \"listening http=...\" within \
                 {RECEIVER_TIMEOUT:?}: {command:?}\nstdout:\n{}\nstderr:\n{}",
                stdout.text(),
                stderr.text()
            );
        }
        let line = stdout
            .all()
            .into_iter()
            .find(|l| l.starts_with("listening http="))
            .expect("the line just waited for");
        let port_of = |key: &str| -> u16 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no {key}PORT in the receiver's line {line:?}"))
        };
        OtlpReceiver {
            http_port: port_of("http="),
            grpc_port: port_of("grpc="),
            child,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// The OTLP/HTTP traces URL.
    pub fn http_traces_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.http_port)
    }

    /// The OTLP/gRPC endpoint.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Stops it with SIGTERM and returns its summary line
    /// (`received spans=N points=N refused=N`) and the rest of its stderr.
    pub fn stop(mut self) -> String {
        send_signal(&self.child, libc::SIGTERM);
        let status = wait_with_timeout(&mut self.child, RECEIVER_TIMEOUT);
        kill_and_reap(&mut self.child);
        for reader in self.readers.drain(..) {
            reader.join().expect("receiver output reader");
        }
        let stderr = self.stderr.text();
        assert!(
            status.is_some_and(|s| s.success()),
            "the OTLP receiver did not exit cleanly after SIGTERM ({status:?}):\n{stderr}"
        );
        stderr
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// This machine as the agent names it in every resource: (`host.name`, `host.id`),
/// the kernel's host name and the machine id (the host name without one).
pub fn this_host() -> (String, String) {
    let read = |path: &str| {
        fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    };
    let name = read("/proc/sys/kernel/hostname").expect("the kernel's host name");
    let id = read("/etc/machine-id")
        .or_else(|| read("/var/lib/dbus/machine-id"))
        .unwrap_or_else(|| name.clone());
    (name, id)
}

/// Every record in a receiver's JSON-lines file (none if it does not exist yet).
pub fn received_records(out: &Path) -> Vec<Value> {
    let text = match fs::read_to_string(out) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", out.display()),
    };
    // The receiver may be writing the last line right now: only lines ended by
    // a newline are complete.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("receiver line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The span records in a receiver's file.
pub fn received_spans(out: &Path) -> Vec<Value> {
    received_records(out)
        .into_iter()
        .filter(|r| r["type"] == "span")
        .collect()
}
