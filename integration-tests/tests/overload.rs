//! Overload against the real agent on this kernel: 50,000 distinct paths,
//! over and over, while the OTLP receiver accepts connections and never
//! answers. The agent's memory must level off under a bound, every span it
//! could not deliver must be counted once, and spans must flow again as soon
//! as the load stops. Also: an orderly stop while an OTLP metrics receiver
//! hangs, and the metrics endpoint under a flood of idle connections. Run as
//! root with `--test-threads=1`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use integration_tests::agent::Agent;
use integration_tests::apps::{free_port, Lang, Server};
use integration_tests::config_files::{path_str, ConfigDir};
use integration_tests::http::{request_on_fresh_connection, Request};
use integration_tests::receivers::{poll_until, received_spans, scrape, OtlpReceiver, TempDir};
use integration_tests::require_root;

/// Distinct paths per round.
const PATHS: usize = 50_000;
/// Rounds of [`PATHS`] requests; memory must level off across them.
const ROUNDS: usize = 4;
/// Client connections of the load, each sending one request after another.
const CLIENTS: usize = 8;
/// What the agent's resident memory must stay under, debug build included
/// (docs/running.md, "Limits"): the process's own 26-40 MB, the 16 MB of BPF
/// maps, the OTLP queue (32,768 spans, about 17 MB), 10,000 Prometheus series
/// (about 20 MB, and their encoded text while scraped). Measured: 86 MB.
const RSS_BOUND_MB: f64 = 128.0;
/// What the OTLP queue held at its fullest (32,768 spans of about 530 bytes)
/// is most of this; it must be handed back once delivered.
const QUEUE_RELEASED_MB: f64 = 8.0;
/// A bound on waiting, never a measure: spans flow again well within it.
const FLOW_TIMEOUT: Duration = Duration::from_secs(120);
/// The agent hands free memory back every 10 s.
const RELEASE_WAIT: Duration = Duration::from_secs(12);
/// Requests made once the load has stopped.
const MARKERS: usize = 10;

/// A TCP listener that accepts every connection and never reads or answers:
/// an OTLP receiver that hangs.
struct BlackHole {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a black hole");
        let port = listener.local_addr().unwrap().port();
        let (accepted, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (count, stopping) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    count.fetch_add(1, Ordering::SeqCst);
                    held.push(stream);
                }
            }
        });
        BlackHole {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Resident memory of `pid`, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb / 1024.0
}

/// A path segment of letters only, distinct for each `i`: no route
/// heuristic takes it for an identifier.
fn word(mut i: usize) -> String {
    (0..4)
        .map(|_| {
            let c = (b'a' + (i % 26) as u8) as char;
            i /= 26;
            c
        })
        .collect()
}

/// Sends `GET /load/<word>` for every path of the round, over [`CLIENTS`]
/// keep-alive connections; returns how many were answered.
fn load_round(port: u16, round: usize) -> usize {
    let answered = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let answered = Arc::clone(&answered);
            thread::spawn(move || {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let stream = TcpStream::connect(addr).expect("connect for the load");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut reader = BufReader::new(stream);
                for i in (client..PATHS).step_by(CLIENTS) {
                    let request = format!(
                        "GET /load/{}{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                        word(i),
                        word(round)
                    );
                    reader
                        .get_mut()
                        .write_all(request.as_bytes())
                        .expect("send");
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).expect("read a response");
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().expect("a length");
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("read a body");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a load thread failed");
    }
    answered.load(Ordering::Relaxed)
}

/// The agent's counters on its scrape endpoint, by name with labels.
fn counters(port: u16) -> BTreeMap<String, u64> {
    scrape(port, "/metrics")
        .lines()
        .filter(|l| l.starts_with("beyla_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse::<f64>().ok()? as u64))
        })
        .collect()
}

fn counter(all: &BTreeMap<String, u64>, name: &str) -> u64 {
    all.get(name).copied().unwrap_or(0)
}

/// Requests counted in `http_server_request_duration_seconds` for routes
/// starting with `prefix`.
fn histogram_count(port: u16, prefix: &str) -> u64 {
    scrape(port, "/metrics")
        .lines()
        .filter(|l| {
            l.starts_with("http_server_request_duration_seconds_count{")
                && l.contains(&format!("http_route=\"{prefix}"))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn overload_with_a_receiver_that_never_answers() {
    require_root();
    let hole = BlackHole::start();
    let server = Server::start(Lang::Go, None);
    let metrics_port = free_port();
    // Every path its own route, whatever the heuristic, so that the
    // Prometheus series reach their cap.
    let dir = ConfigDir::new("overload");
    let config = dir.write("beyla-config.yml", "routes:\n  unmatched: path\n");
    let agent = Agent::start(&[
        ("BEYLA_CONFIG_PATH", path_str(&config)),
        ("BEYLA_OPEN_PORT", &server.port.to_string()),
        ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            &format!("http://127.0.0.1:{}/v1/traces", hole.port),
        ),
        ("BEYLA_SHUTDOWN_TIMEOUT", "3s"),
    ]);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let pid = agent.pid();
    let started = Instant::now();
    let mut rss = vec![rss_mb(pid)];
    let mut sent = 0;
    for round in 0..ROUNDS {
        sent += load_round(server.port, round);
        rss.push(rss_mb(pid));
    }
    let load_took = started.elapsed();
    rss.push(rss_mb(pid));

    // The load has stopped: new requests give spans again at once. Every
    // series slot is taken (and lives 5 minutes), so the markers go to a
    // route the load made first.
    let stopped = Instant::now();
    let marker = format!("/load/{}{}", word(0), word(0));
    let before = histogram_count(metrics_port, &marker);
    for _ in 0..MARKERS {
        request_on_fresh_connection(server.port, &Request::get(&marker));
    }
    poll_until(
        FLOW_TIMEOUT,
        "the marker requests counted by Prometheus",
        || (histogram_count(metrics_port, &marker) == before + MARKERS as u64).then_some(()),
        || {
            scrape(metrics_port, "/metrics")
                .lines()
                .filter(|l| l.contains(&marker))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let flowed = stopped.elapsed();
    rss.push(rss_mb(pid));

    // The receiver comes back on the same port: the queue drains, markers included.
    let port = hole.port;
    let tried = hole.accepted();
    drop(hole);
    let received_dir = TempDir::new("beyla-overload");
    let out = received_dir.path.join("received.jsonl");
    let back = Instant::now();
    let receiver = OtlpReceiver::start(port, 0, &out, &[]);
    poll_until(
        FLOW_TIMEOUT,
        "the marker spans at the receiver",
        || {
            // Read as text: the file holds tens of thousands of spans by then.
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let markers = text.lines().filter(|l| l.contains(&marker)).count();
            (markers >= MARKERS).then_some(())
        },
        || format!("{} spans received", received_spans(&out).len()),
    );
    let delivered = back.elapsed();
    let last = counters(metrics_port);
    let recorded = histogram_count(metrics_port, "/");
    rss.push(rss_mb(pid));
    // What the queue held goes back to the kernel within the release interval.
    thread::sleep(RELEASE_WAIT);
    rss.push(rss_mb(pid));
    let output = agent.stop();
    let receiver_summary = receiver.stop();
    let at_exit = output
        .stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or("")
        .to_string();

    let created = counter(&last, "beyla_spans_created_total");
    let kernel_lost = counter(&last, "beyla_kernel_drops_total{reason=\"ringbuf_full\"}");
    assert!(tried >= 1, "the OTLP exporter never tried the receiver");
    // Every request is a span, or counted where it was lost.
    assert!(
        created == (sent + MARKERS) as u64 || kernel_lost > 0,
        "{sent} requests and {MARKERS} markers, {created} spans, no kernel drop:\n{last:#?}"
    );
    // Every span is in a Prometheus histogram, or counted as not recorded there, once.
    let series_dropped = counter(&last, "beyla_metric_series_dropped_total");
    assert_eq!(
        recorded + series_dropped,
        created,
        "Prometheus: {recorded} recorded + {series_dropped} dropped must be the {created} spans"
    );
    // Both trace exporters had every span: the printer printed it or had no
    // room (export_queue); OTLP exported it, dropped it from its queue, gave
    // it up at shutdown, or had no room (export_queue). Each once.
    let stats = parse_stopped(&at_exit);
    let printed = output
        .lines
        .iter()
        .filter(|l| l.contains("\"traceId\""))
        .count() as u64;
    let accounted = printed
        + stats["otlp_spans_exported"]
        + stats["queue_full"]
        + stats["shutdown"]
        + stats["export_queue"];
    assert_eq!(
        accounted,
        2 * stats["spans_created"],
        "{printed} printed + OTLP exported, queue_full, shutdown + export_queue must be \
         every span twice (two exporters), each once:\n{at_exit}"
    );
    let peak = rss.iter().cloned().fold(0.0, f64::max);
    assert!(
        peak < RSS_BOUND_MB,
        "RSS went to {peak:.1} MB (samples {rss:.1?}), over the bound of {RSS_BOUND_MB} MB"
    );
    let released = rss[rss.len() - 1];
    assert!(
        released < peak - QUEUE_RELEASED_MB,
        "the delivered queue's memory was not handed back: RSS {released:.1} MB after a peak \
         of {peak:.1} MB (samples {rss:.1?})"
    );
    println!(
        "overload: {sent} requests in {:.1}s ({:.0}/s), {created} spans; RSS MB at start, after \
         each round, after the markers, after delivery, 12 s later: {rss:.1?}; series dropped \
         {series_dropped}; the markers counted {:.1}s after the load stopped; the hanging \
         receiver took {tried} connections; once a receiver answered, the markers arrived \
         after {:.1}s\n  {at_exit}\n  receiver: {}",
        load_took.as_secs_f64(),
        sent as f64 / load_took.as_secs_f64(),
        flowed.as_secs_f64(),
        delivered.as_secs_f64(),
        receiver_summary.trim()
    );
}

/// The figures of the agent's `stopped:` line, by their names there.
fn parse_stopped(line: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for word in line.split([' ', '(', ')']) {
        if let Some((name, value)) = word.split_once('=') {
            if let Ok(v) = value.parse() {
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

#[test]
fn sigterm_while_the_otlp_metrics_receiver_hangs() {
    require_root();
    let mut figures = Vec::new();
    for (protocol, suffix) in [("http/protobuf", "/v1/metrics"), ("grpc", "")] {
        for run in 1..=3 {
            let hole = BlackHole::start();
            let server = Server::start(Lang::Python, None);
            let agent = Agent::start(&[
                ("BEYLA_OPEN_PORT", &server.port.to_string()),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    &format!("http://127.0.0.1:{}{suffix}", hole.port),
                ),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", protocol),
                ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
                ("BEYLA_SHUTDOWN_TIMEOUT", "2s"),
            ]);
            agent.wait_instrumenting(server.pid());
            agent.wait_ready();
            for i in 0..5 {
                request_on_fresh_connection(server.port, &Request::get(&format!("/users/{i}")));
            }
            poll_until(
                FLOW_TIMEOUT,
                "a metrics push to the hanging receiver",
                || (hole.accepted() >= 1).then_some(()),
                String::new,
            );
            let asked = Instant::now();
            // Asserts an exit with status 0.
            let output = agent.stop();
            assert!(
                !output.stderr.contains("panicked"),
                "{protocol} run {run}: the agent panicked at SIGTERM:\n{}",
                output.stderr
            );
            figures.push(format!(
                "{protocol} #{run}: exit 0 after {:.1}s",
                asked.elapsed().as_secs_f64()
            ));
        }
    }
    println!(
        "SIGTERM with a hanging metrics receiver: {}",
        figures.join(", ")
    );
}

/// Connections the flood opens and holds without sending a byte.
const FLOOD: usize = 2_000;
/// The endpoint holds at most this many connections (`MAX_CONNECTIONS` of the
/// pipeline's Prometheus server).
const HELD: usize = 64;

/// Threads the agent may run: the reader, `control`, smol's reactor, the
/// blocking pool's threads while there is blocking work.
const MAX_AGENT_THREADS: usize = 8;

/// 2,000 connections to the metrics endpoint that never send a request
/// (beyond systemd's default of 1,024 descriptors, which once killed the
/// endpoint): each beyond the 64 held is closed and counted, the agent's
/// threads and descriptors stay bounded, and a scrape is still answered.
#[test]
fn the_metrics_endpoint_survives_a_flood_of_idle_connections() {
    require_root();
    raise_open_files(FLOOD as u64 + 1_024);
    let metrics_port = free_port();
    let agent = Agent::start(&[
        ("BEYLA_OPEN_PORT", &free_port().to_string()),
        ("BEYLA_PROMETHEUS_PORT", &metrics_port.to_string()),
    ]);
    agent.wait_ready();
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|i| {
            TcpStream::connect(("127.0.0.1", metrics_port))
                .unwrap_or_else(|e| panic!("connection {i} of the flood: {e}"))
        })
        .collect();
    // Answered although every slot was taken: the oldest idle one made room.
    let all = counters(metrics_port);
    let threads = count_entries(&format!("/proc/{}/task", agent.pid()));
    let descriptors = count_entries(&format!("/proc/{}/fd", agent.pid()));
    drop(flood);
    agent.stop();

    let closed = counter(&all, "beyla_scrapes_refused_total{reason=\"idle\"}")
        + counter(&all, "beyla_scrapes_refused_total{reason=\"timeout\"}");
    assert!(
        closed >= (FLOOD - HELD) as u64,
        "of {FLOOD} idle connections at most {HELD} may be held; {closed} were closed and counted:\n{all:#?}"
    );
    assert_eq!(
        counter(&all, "beyla_scrapes_refused_total{reason=\"accept_error\"}"),
        0
    );
    assert!(
        threads <= MAX_AGENT_THREADS,
        "the agent ran {threads} threads under the flood (at most {MAX_AGENT_THREADS})"
    );
    // The held connections, the probes' maps and links, the logs.
    let bound = HELD + 512;
    assert!(
        descriptors <= bound,
        "the agent held {descriptors} descriptors under the flood (at most {bound})"
    );
    println!(
        "flood: {FLOOD} idle connections, {closed} closed and counted, {threads} agent threads, {descriptors} descriptors"
    );
}

fn raise_open_files(at_least: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            limit.rlim_cur = limit.rlim_cur.max(at_least);
            limit.rlim_max = limit.rlim_max.max(limit.rlim_cur);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    assert!(
        raised,
        "cannot raise this test's open-file limit to {at_least}"
    );
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .count()
}
