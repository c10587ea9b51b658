//! The Prometheus exporter: request-duration histograms per service, route,
//! method and status, `target_info`, and the agent's own counters, served
//! for scraping over HTTP.
//!
//! The pipeline records spans in place through a [`Recorder`], a batch under
//! one lock; a thread answers scrapes. Series not updated for [`PrometheusConfig::series_ttl`] disappear;
//! at most [`MAX_SERIES`] label sets exist at once.

mod metrics;
mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use metrics::{Metrics, MAX_SERIES};

use super::select::Instrumentations;
use super::{Context, Exporter, Outgoing, Signal};
use crate::model::Span;

/// Where the scrape endpoint listens, and how long idle series live.
///
/// With nothing configured the embedded default ([`PrometheusConfig::default`])
/// is `127.0.0.1:9400`, path `/metrics`: reachable from this host only. When the
/// user sets a port ([`PrometheusConfig::on_port`]) the endpoint listens on every
/// interface, `0.0.0.0:<port>`. Port 0 picks a free port
/// (see [`PrometheusHandle::local_addr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    pub port: u16,
    /// The one path that answers with metrics; default `/metrics`.
    pub path: String,
    pub bind: IpAddr,
    /// Series not updated for this long are removed; default 5 minutes.
    pub series_ttl: Duration,
    /// The operations whose spans are recorded (Beyla's `instrumentations`).
    pub instrumentations: Instrumentations,
}

impl PrometheusConfig {
    /// A port the user chose: listens on all interfaces (`0.0.0.0`).
    pub fn on_port(port: u16) -> Self {
        Self {
            port,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ..Self::default()
        }
    }
}

impl Default for PrometheusConfig {
    /// The embedded default: `127.0.0.1:9400`, `/metrics`, series TTL 5 minutes.
    fn default() -> Self {
        Self {
            port: 9400,
            path: "/metrics".into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            series_ttl: Duration::from_secs(5 * 60),
            instrumentations: Instrumentations::ALL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot listen on {addr} for Prometheus: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot start the Prometheus exporter: {0}")]
    Thread(std::io::Error),
}

/// Records spans into the exporter's metrics, on the caller's thread.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<Metrics>>);

impl Recorder {
    /// Records a batch under one lock, all at the same time.
    pub fn record(&self, spans: &[Span]) {
        let now = Instant::now();
        let mut metrics = lock(&self.0);
        for span in spans {
            metrics.record(span, now);
        }
    }
}

/// The running exporter. Dropping it stops the HTTP server without waiting;
/// [`PrometheusHandle::join`] waits for the server thread.
pub struct PrometheusHandle {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    metrics: Arc<Mutex<Metrics>>,
    http: Option<JoinHandle<()>>,
    /// Spans since the last flush, recorded under one lock; the capacity is
    /// reused, so a span costs no allocation here.
    batch: Vec<Span>,
}

/// Spans recorded under one lock at most, so a scrape waits little.
const RECORD_BATCH: usize = 256;

impl Exporter for PrometheusHandle {
    fn signal(&self) -> Signal {
        Signal::Metrics
    }

    fn send(&mut self, span: &mut Outgoing<'_>) -> bool {
        self.batch.push(span.span().clone());
        if self.batch.len() >= RECORD_BATCH {
            self.flush();
        }
        true
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.recorder().record(&self.batch);
            self.batch.clear();
        }
    }

    fn finish(mut self: Box<Self>) {
        self.flush();
        self.join();
    }
}

impl PrometheusHandle {
    /// The address actually bound (the chosen port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where spans are recorded.
    pub fn recorder(&self) -> Recorder {
        Recorder(Arc::clone(&self.metrics))
    }

    /// Stops the HTTP server and waits for it.
    pub fn join(&mut self) {
        self.stop_server();
        if let Some(http) = self.http.take() {
            if http.join().is_err() {
                log::error!("the Prometheus HTTP thread panicked");
            }
        }
    }

    fn stop_server(&self) {
        self.stopping.store(true, Ordering::Release);
        self.server.unblock();
    }
}

impl Drop for PrometheusHandle {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// Binds the endpoint and serves scrapes on a thread; spans are recorded
/// through [`PrometheusHandle::recorder`]. A bind failure is returned, naming the address:
/// `cannot listen on 127.0.0.1:9400 for Prometheus: address in use`.
pub fn spawn(config: PrometheusConfig, context: &Context) -> Result<PrometheusHandle, ExportError> {
    let (server, addr) = server::bind(SocketAddr::new(config.bind, config.port))?;
    let server = Arc::new(server);
    let mut metrics = Metrics::new(
        host_name(),
        config.series_ttl,
        MAX_SERIES,
        Arc::clone(&context.self_metrics),
    );
    metrics.register_self_metrics(context);
    let metrics = Arc::new(Mutex::new(metrics));
    let stopping = Arc::new(AtomicBool::new(false));
    let path = match config.path.starts_with('/') {
        true => config.path,
        false => format!("/{}", config.path),
    };

    let http = thread::Builder::new()
        .name("prom-http".into())
        .spawn({
            let (server, stopping, metrics, path) = (
                Arc::clone(&server),
                Arc::clone(&stopping),
                Arc::clone(&metrics),
                path.clone(),
            );
            move || {
                server::serve(&server, &path, &stopping, || {
                    lock(&metrics).encode(Instant::now())
                })
            }
        })
        .map_err(ExportError::Thread)?;
    let handle = PrometheusHandle {
        addr,
        server,
        stopping,
        metrics,
        http: Some(http),
        batch: Vec::new(),
    };
    log::info!("Prometheus metrics on http://{}{path}", handle.local_addr());
    Ok(handle)
}

fn lock(m: &Mutex<Metrics>) -> MutexGuard<'_, Metrics> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This host's name, for `target_info`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use crate::model::fixtures;
    use crate::selfmetrics::{Counter, KernelDropCounts};

    fn span() -> Span {
        let mut span = fixtures::span();
        fixtures::http(&mut span).method = "POST";
        fixtures::http(&mut span).path = "/orders".into();
        fixtures::http(&mut span).status = 201;
        span.request.resource = fixtures::resource("shop");
        span.route = Some("/orders".into());
        span.start_unix_ns = 1_000_000_000;
        span.end_unix_ns = 1_020_000_000;
        span
    }

    fn context(instrumented: fn() -> u64) -> Context {
        Context {
            self_metrics: Arc::default(),
            kernel_drops: Arc::new(KernelDropCounts::default),
            instrumented: Arc::new(instrumented),
        }
    }

    fn local(port: u16) -> PrometheusConfig {
        PrometheusConfig {
            port,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..PrometheusConfig::default()
        }
    }

    /// (status line, headers and body) of one raw HTTP/1.1 GET.
    fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (status, rest) = response.split_once("\r\n").unwrap();
        (status.to_owned(), rest.to_owned())
    }

    #[test]
    fn defaults() {
        let d = PrometheusConfig::default();
        assert_eq!(
            (d.bind, d.port, d.path.as_str(), d.series_ttl),
            (
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                9400,
                "/metrics",
                Duration::from_secs(300)
            )
        );
        let user = PrometheusConfig::on_port(9090);
        assert_eq!(
            (user.bind, user.port, user.path.as_str()),
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9090, "/metrics")
        );
    }

    #[test]
    fn serves_metrics_over_http_and_404_elsewhere() {
        let context = context(|| 4);
        context.self_metrics.inc(Counter::EventsRead);
        let mut handle = spawn(local(0), &context).unwrap();
        let addr = handle.local_addr();
        assert_ne!(addr.port(), 0);
        handle.recorder().record(&[span()]);

        let count = "http_server_request_duration_seconds_count{http_request_method=\"POST\",\
                     http_route=\"/orders\",http_response_status_code=\"201\",\
                     service_name=\"shop\",service_namespace=\"\"} 1";
        // The span is recorded on another thread: poll a bounded number of times.
        let mut body = String::new();
        for _ in 0..500 {
            let (status, rest) = get(addr, "/metrics");
            assert_eq!(status, "HTTP/1.1 200 OK");
            assert!(
                rest.lines().any(|l| l.eq_ignore_ascii_case(
                    "content-type: text/plain; version=0.0.4; charset=utf-8"
                )),
                "{rest}"
            );
            body = rest;
            if body.lines().any(|l| l == count) {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert!(body.lines().any(|l| l == count), "{body}");
        assert!(
            body.lines().any(|l| l == "beyla_events_read_total 1"),
            "{body}"
        );
        assert!(
            body.lines().any(|l| l == "beyla_instrumented_processes 4"),
            "{body}"
        );

        // Query strings are ignored; other paths are not found.
        assert_eq!(get(addr, "/metrics?x=1").0, "HTTP/1.1 200 OK");
        assert_eq!(get(addr, "/").0, "HTTP/1.1 404 Not Found");
        assert_eq!(get(addr, "/metricsx").0, "HTTP/1.1 404 Not Found");

        handle.join();
        // The listener closes right after join returns (tiny_http's accept
        // thread ends on its own): a late connection gets no answer.
        if let Ok(mut stream) = TcpStream::connect(addr) {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response);
            assert!(response.is_empty(), "answered after join");
        }
    }

    #[test]
    fn a_port_in_use_is_an_error_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = spawn(local(port), &context(|| 0))
            .err()
            .expect("the port is taken");
        assert_eq!(
            err.to_string(),
            format!("cannot listen on 127.0.0.1:{port} for Prometheus: address in use")
        );
    }
}
