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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smol::Task;

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

/// The running exporter. Dropping it stops the endpoint without waiting;
/// [`PrometheusHandle::join`] waits for it.
pub struct PrometheusHandle {
    addr: SocketAddr,
    /// Closed to stop the endpoint.
    stop: async_channel::Sender<()>,
    server: Option<Task<()>>,
    metrics: Arc<Mutex<Metrics>>,
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

    /// Stops the endpoint and waits for it: the listener is closed on return.
    pub fn join(&mut self) {
        self.stop.close();
        if let Some(server) = self.server.take() {
            smol::block_on(server);
        }
    }
}

impl Drop for PrometheusHandle {
    fn drop(&mut self) {
        self.stop.close();
    }
}

/// Binds the endpoint and serves scrapes on the control plane; spans are
/// recorded through [`PrometheusHandle::recorder`]. A bind failure is
/// returned, naming the address:
/// `cannot listen on 127.0.0.1:9400 for Prometheus: address in use`.
pub fn spawn(config: PrometheusConfig, context: &Context) -> Result<PrometheusHandle, ExportError> {
    let (listener, addr) = server::bind(SocketAddr::new(config.bind, config.port))?;
    let mut metrics = Metrics::new(
        Arc::clone(&context.host),
        config.series_ttl,
        MAX_SERIES,
        Arc::clone(&context.self_metrics),
    );
    metrics.register_self_metrics(context);
    let metrics = Arc::new(Mutex::new(metrics));
    let path = match config.path.starts_with('/') {
        true => config.path,
        false => format!("/{}", config.path),
    };
    log::info!("Prometheus metrics on http://{addr}{path}");
    let scrape: server::Scrape = {
        let metrics = Arc::clone(&metrics);
        Arc::new(move || lock(&metrics).encode(Instant::now()))
    };
    let (stop, stopped) = async_channel::bounded(1);
    let server = context.control.spawn(server::serve(
        listener,
        path,
        scrape,
        context.control.clone(),
        Arc::clone(&context.self_metrics),
        stopped,
    ));
    Ok(PrometheusHandle {
        addr,
        stop,
        server: Some(server),
        metrics,
        batch: Vec::new(),
    })
}

fn lock(m: &Mutex<Metrics>) -> MutexGuard<'_, Metrics> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use crate::control::Control;
    use crate::model::fixtures;
    use crate::selfmetrics::{Counter, KernelDropCounts};

    fn span() -> Span {
        let mut span = fixtures::span();
        fixtures::http(&mut span).method = crate::model::Method::Post.into();
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
            control: Control::start().unwrap(),
            self_metrics: Arc::default(),
            kernel_drops: Arc::new(KernelDropCounts::default),
            instrumented: Arc::new(instrumented),
            shutdown_timeout: Duration::from_secs(1),
            host: Arc::new(crate::model::fixtures::host()),
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
                     http_route=\"/orders\",http_response_status_code=\"201\",error_type=\"\",\
                     url_scheme=\"http\",service_name=\"shop\",service_namespace=\"\"} 1";
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
            std::thread::sleep(Duration::from_millis(10));
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
        // The listener is closed when join returns: a late connection gets no answer.
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

    /// Clients that connect and never ask, and one that asks and never reads,
    /// hold back no other scrape; each is counted.
    #[test]
    fn idle_and_stuck_clients_cannot_block_scrapes() {
        let context = context(|| 1);
        let mut handle = spawn(local(0), &context).unwrap();
        let addr = handle.local_addr();
        let mut stuck = TcpStream::connect(addr).unwrap();
        write!(stuck, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let idle: Vec<TcpStream> = (0..server::MAX_CONNECTIONS * 3)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        for _ in 0..3 {
            assert_eq!(get(addr, "/metrics").0, "HTTP/1.1 200 OK");
        }
        let refused = context.self_metrics.get(Counter::ScrapesRefusedIdle);
        assert!(
            refused >= (server::MAX_CONNECTIONS * 2) as u64,
            "idle connections made room: {refused}"
        );
        // A head too large is refused, the next scrape is answered.
        let mut big = TcpStream::connect(addr).unwrap();
        let _ = big.write_all(&vec![b'a'; server::MAX_REQUEST + 1]);
        let mut answer = Vec::new();
        let _ = big.read_to_end(&mut answer);
        assert!(answer.is_empty());
        assert_eq!(get(addr, "/metrics").0, "HTTP/1.1 200 OK");
        assert_eq!(
            context.self_metrics.get(Counter::ScrapesRefusedBadRequest),
            1
        );
        drop((idle, stuck));
        handle.join();
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let mut handle = spawn(local(0), &context(|| 1)).unwrap();
        let addr = handle.local_addr();
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        handle.join();
    }
}
