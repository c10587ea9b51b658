//! Hostile input against the real agent on this kernel: requests the
//! conventions do not know or that the capture cuts, session ids in paths,
//! requests pipelined or written a byte at a time (against Python, Go and
//! Node servers); config files that are not configurations, and a malformed
//! OTLP header holding a secret. Run as root with `--test-threads=1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use integration_tests::agent::{agent_command, run_to_exit, Agent};
use integration_tests::apps::{Lang, Server};
use integration_tests::config_files::{path_str, ConfigDir};
use integration_tests::require_root;
use integration_tests::spans::{assert_spans, Expected, Kind, Lineage, Span, Window};

/// Generous: a loaded machine may be slow to answer, never this slow.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests a client writes at once, in one `write`.
const PIPELINED: usize = 101;
/// Query strings longer than the default capture size (1,024 bytes): one in
/// a read the probes copy whole (under 8 KiB), one in a read they cut.
const LONG_QUERIES: [usize; 2] = [1500, 10_000];
/// What a servlet container would put in a path, and must reach no span.
const SESSION_ID: &str = "S3CR3TSESSI0N";

#[test]
fn python_hostile_requests() {
    hostile_requests(Lang::Python);
}

#[test]
fn go_hostile_requests() {
    hostile_requests(Lang::Go);
}

#[test]
fn node_hostile_requests() {
    hostile_requests(Lang::Node);
}

/// One client connection over which requests go as raw bytes.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn open(port: u16) -> Raw {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            reader: BufReader::new(stream),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("write a request");
    }

    /// Reads one response: its status, and whether the server closes after it.
    fn response(&mut self) -> (u16, bool) {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("read a status line");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let (mut length, mut close) = (0usize, false);
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header).expect("read a header");
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().expect("a Content-Length");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("read a body");
        (status, close)
    }
}

fn request(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

/// The traced server and what the spans must be.
struct Run {
    port: u16,
    service: String,
    pid: u32,
    expected: Vec<Expected>,
}

impl Run {
    fn expect(
        &mut self,
        scenario: &str,
        method: &str,
        path: &str,
        route: &str,
        status: u16,
        window: Window,
    ) {
        self.expected.push(Expected {
            scenario: scenario.into(),
            kind: Kind::Server,
            method: method.into(),
            path: path.into(),
            route: route.into(),
            status,
            service: self.service.clone(),
            pid: self.pid,
            server_port: self.port,
            window,
            lineage: Lineage::Root,
        });
    }
}

fn hostile_requests(lang: Lang) {
    require_root();
    let server = Server::start(lang, None);
    let agent = Agent::start(&[("BEYLA_OPEN_PORT", &server.port.to_string())]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let mut run = Run {
        port: server.port,
        service: server.service_name(),
        pid: server.pid(),
        expected: Vec::new(),
    };

    // Methods the conventions do not know, each on a connection of its own
    // (a server may close after refusing one). Whatever the server answers,
    // the exchange is a span.
    let mut others = Vec::new();
    for method in ["PURGE", "PROPFIND", "get"] {
        let mut c = Raw::open(run.port);
        let ((status, _), window) = Window::around(|| {
            c.write(&request(method, "/health"));
            c.response()
        });
        run.expect(
            "unknown methods",
            "_OTHER",
            "/health",
            "/health",
            status,
            window,
        );
        others.push((method, status));
    }

    // Query strings longer than the capture size; past 8 KiB the request
    // line itself is cut.
    let mut c = Raw::open(run.port);
    for len in LONG_QUERIES {
        let target = format!("/health?q={}", "x".repeat(len));
        let ((status, _), window) = Window::around(|| {
            c.write(&request("GET", &target));
            c.response()
        });
        assert_eq!(status, 200, "GET /health?q=<{len} bytes>");
        run.expect("long query", "GET", "/health", "/health", 200, window);
    }

    // A session id as a path parameter: gone from url.path and the route.
    let target = format!("/users/7;jsessionid={SESSION_ID}");
    let ((status, _), window) = Window::around(|| {
        c.write(&request("GET", &target));
        c.response()
    });
    assert_eq!(status, 200, "GET {target}");
    run.expect("path parameter", "GET", "/users/7", "/users/*", 200, window);

    // A request written a byte at a time, then one pipelined batch.
    let bytes = request("GET", "/users/11");
    let ((status, _), window) = Window::around(|| {
        for b in &bytes {
            c.write(std::slice::from_ref(b));
            std::thread::sleep(Duration::from_millis(2));
        }
        c.response()
    });
    assert_eq!(status, 200, "GET /users/11 a byte at a time");
    run.expect("1-byte writes", "GET", "/users/11", "/users/*", 200, window);

    let batch: Vec<u8> = (0..PIPELINED)
        .flat_map(|i| request("GET", &format!("/users/{}", 100 + i)))
        .collect();
    let (statuses, window) = Window::around(|| {
        c.write(&batch);
        (0..PIPELINED).map(|_| c.response().0).collect::<Vec<_>>()
    });
    for (i, status) in statuses.into_iter().enumerate() {
        assert_eq!(status, 200, "pipelined GET /users/{}", 100 + i);
        let path = format!("/users/{}", 100 + i);
        run.expect("pipelined", "GET", &path, "/users/*", 200, window);
    }
    drop(c);

    let output = agent.stop();
    let context = format!("{lang:?} server, agent stderr:\n{}", output.stderr);
    let matched = assert_spans(&output.spans, &run.expected, &context);
    let originals: Vec<(String, u16)> = matched[..others.len()]
        .iter()
        .map(|s: &Span| {
            (
                s.attr("http.request.method_original")
                    .unwrap_or("")
                    .to_string(),
                s.status,
            )
        })
        .collect();
    let sent: Vec<(String, u16)> = others.iter().map(|(m, s)| (m.to_string(), *s)).collect();
    assert_eq!(
        originals, sent,
        "http.request.method_original must be the method as sent\n{context}"
    );
    let leaked: Vec<&String> = output
        .lines
        .iter()
        .filter(|l| l.contains(SESSION_ID) || l.contains("jsessionid"))
        .collect();
    assert!(
        leaked.is_empty(),
        "the session id reached a span: {leaked:?}"
    );
    println!(
        "{lang:?}: {} requests, {} spans; unknown methods answered {others:?}; {}",
        run.expected.len(),
        output.spans.len(),
        output
            .stderr
            .lines()
            .find(|l| l.contains("stopped:"))
            .unwrap_or("")
    );
}

/// Runs `beyla --check-config` on `file` and returns its status, stderr and
/// how long it took.
fn check_config(file: &str) -> (std::process::ExitStatus, String, Duration) {
    let mut command = agent_command(&[]);
    command.args(["--config", file, "--check-config"]);
    let started = Instant::now();
    let (status, stderr) = run_to_exit(command);
    (status, stderr, started.elapsed())
}

#[test]
fn config_files_that_are_not_configurations_are_refused_at_once() {
    require_root();
    let dir = ConfigDir::new("hostile");
    let big_list = {
        let mut text = String::from("discovery:\n  services:\n");
        while text.len() < 26 * 1024 * 1024 {
            text.push_str("  - 1\n");
        }
        text
    };
    let fifo = dir.write("fifo.yml", "");
    std::fs::remove_file(&fifo).unwrap();
    let c_path = std::ffi::CString::new(path_str(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // A writer that never writes: the agent must not wait for it either.
    let _writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO");
    let cases: Vec<(String, &str)> = vec![
        (
            "/dev/zero".into(),
            "it is a character device, not a regular file: expected a YAML or TOML file",
        ),
        (path_str(&fifo).into(), "it is a FIFO, not a regular file"),
        (
            path_str(&dir.write("list.yml", &big_list)).into(),
            "expected a config file of at most 1048576 bytes (1 MiB)",
        ),
        (
            path_str(&dir.write("braces.yml", &"{".repeat(50 * 1024 * 1024))).into(),
            "expected a config file of at most 1048576 bytes (1 MiB)",
        ),
        (
            path_str(&dir.write("deep.yml", &"[".repeat(100_000))).into(),
            "nested deeper than 64 levels at line 1 column 65",
        ),
        (
            path_str(&dir.write("dashes.yml", &format!("{}x\n", "- ".repeat(400_000)))).into(),
            "nested deeper than 64 levels at line 1 column 129",
        ),
        (
            path_str(&dir.write("deep.toml", &format!("a = {}", "[".repeat(400_000)))).into(),
            "nested deeper than 64 levels at line 1 column 69",
        ),
    ];
    let mut figures = Vec::new();
    for (file, reason) in &cases {
        let (status, stderr, took) = check_config(file);
        assert_eq!(status.code(), Some(1), "{file}: {stderr}");
        let line = stderr.trim();
        assert!(
            line.lines().count() == 1 && line.contains(file.as_str()) && line.contains(reason),
            "{file}: expected one line naming the file and {reason:?}, got:\n{stderr}"
        );
        figures.push(format!("{file}: {:.0} ms", took.as_secs_f64() * 1000.0));
    }
    println!("refusals: {}", figures.join(", "));
}

#[test]
fn a_malformed_otlp_header_is_refused_without_its_secret() {
    require_root();
    const SECRET: &str = "tok3n-that-must-not-show";
    for headers in [
        format!("X-Scope-OrgID=1,Authorization: Bearer {SECRET}"),
        format!("Authorization=Bearer%2{SECRET}"),
    ] {
        let (status, stderr) = run_to_exit(agent_command(&[
            ("BEYLA_OPEN_PORT", "8080"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", &headers),
        ]));
        assert_eq!(status.code(), Some(1), "{headers}: {stderr}");
        assert!(
            stderr.contains("OTEL_EXPORTER_OTLP_HEADERS") && stderr.contains("not shown"),
            "the error must name the variable and say the value is not shown:\n{stderr}"
        );
        assert!(!stderr.contains(SECRET), "the secret was echoed:\n{stderr}");
    }
}
