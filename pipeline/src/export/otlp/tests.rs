//! The traces export loop against a scripted sink (batching, retry, queue
//! drops, shutdown), and an end-to-end run against a real receiver (ignored
//! unless asked for; see `e2e_to_receiver`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::convert::tests::span;
use super::queue::QueueLimits;
use super::traces::{run, Batch, Sink, Tuning};
use crate::model::{Span, SpanKind};
use crate::selfmetrics::{Counter, SelfMetrics};

/// Delivered groups: (service, last byte of each span id).
type Delivered = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[derive(Default)]
struct ScriptedSink {
    delivered: Delivered,
    /// Group attempts so far, numbered from 0.
    attempts: Arc<AtomicUsize>,
    /// Attempts that fail; `usize::MAX` entries make every attempt fail.
    failing: Vec<usize>,
    /// When set, every attempt waits for a permit (or for the channel to close).
    gate: Option<async_channel::Receiver<()>>,
    /// What a failing attempt reports, as the export library words it; a
    /// network error when unset.
    error: Option<&'static str>,
}

impl Sink for ScriptedSink {
    async fn send(&mut self, batch: &mut Batch) -> Result<(), String> {
        while let Some(group) = batch.groups.first() {
            let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let _ = gate.recv().await;
            }
            if self.failing.contains(&attempt) || self.failing.contains(&usize::MAX) {
                return Err(self
                    .error
                    .map_or_else(|| format!("attempt {attempt}: no answer"), str::to_string));
            }
            let ids = group
                .spans
                .iter()
                .map(|s| s.request.context.span_id.0[7])
                .collect();
            self.delivered
                .lock()
                .unwrap()
                .push((group.resource.service_name.clone(), ids));
            batch.groups.remove(0);
        }
        Ok(())
    }

    fn shutdown(&mut self) {}
}

fn quick() -> Tuning {
    Tuning {
        max_batch: 512,
        batch_timeout: Duration::from_secs(3600),
        queue: QueueLimits {
            max_spans: 64 * 512,
            max_bytes: usize::MAX,
        },
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        shutdown_timeout: Duration::from_secs(5),
    }
}

struct Running {
    tx: async_channel::Sender<Arc<Span>>,
    thread: JoinHandle<()>,
    metrics: Arc<SelfMetrics>,
}

fn start(sink: ScriptedSink, tuning: Tuning) -> Running {
    let (tx, rx) = async_channel::bounded(4096);
    let metrics = Arc::new(SelfMetrics::default());
    let m = Arc::clone(&metrics);
    let thread = std::thread::spawn(move || {
        smol::block_on(run(sink, rx, tuning, m));
    });
    Running {
        tx,
        thread,
        metrics,
    }
}

fn send(tx: &async_channel::Sender<Arc<Span>>, service: &str, n: u8) {
    tx.send_blocking(Arc::new(span(SpanKind::Server, 200, service, n)))
        .unwrap();
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn full_batches_go_at_512_and_the_rest_at_close() {
    let sink = ScriptedSink::default();
    let delivered = Arc::clone(&sink.delivered);
    let r = start(sink, quick());
    for i in 0..1030u32 {
        send(&r.tx, "svc", (i % 250) as u8 + 1);
    }
    r.tx.close();
    r.thread.join().unwrap();
    let sizes: Vec<usize> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, ids)| ids.len())
        .collect();
    assert_eq!(sizes, vec![512, 512, 6]);
    assert_eq!(r.metrics.get(Counter::OtlpSpansExported), 1030);
    assert_eq!(r.metrics.get(Counter::OtlpTraceExportFailures), 0);
}

#[test]
fn a_partial_batch_goes_after_the_batch_timeout() {
    let sink = ScriptedSink::default();
    let delivered = Arc::clone(&sink.delivered);
    let r = start(
        sink,
        Tuning {
            batch_timeout: Duration::from_millis(20),
            ..quick()
        },
    );
    for n in 1..=3 {
        send(&r.tx, "svc", n);
    }
    // The channel stays open: only the timer can send these.
    wait_for("timed batch", || {
        r.metrics.get(Counter::OtlpSpansExported) == 3
    });
    assert_eq!(
        *delivered.lock().unwrap(),
        vec![("svc".to_string(), vec![1, 2, 3])]
    );
    r.tx.close();
    r.thread.join().unwrap();
}

#[test]
fn spans_are_grouped_by_service_and_a_retry_resends_only_what_failed() {
    // Attempt 0 (group "a") succeeds, attempt 1 (group "b") fails twice, then succeeds.
    let sink = ScriptedSink {
        failing: vec![1, 2],
        ..Default::default()
    };
    let (delivered, attempts) = (Arc::clone(&sink.delivered), Arc::clone(&sink.attempts));
    let r = start(sink, quick());
    send(&r.tx, "a", 1);
    send(&r.tx, "b", 2);
    send(&r.tx, "a", 3);
    r.tx.close();
    r.thread.join().unwrap();
    assert_eq!(
        *delivered.lock().unwrap(),
        vec![("a".to_string(), vec![1, 3]), ("b".to_string(), vec![2])]
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(r.metrics.get(Counter::OtlpTraceExportFailures), 2);
    assert_eq!(r.metrics.get(Counter::OtlpSpansExported), 3);
}

/// The OTLP specification: a 401 (or any answer but 429, 502, 503, 504) is
/// final: the batch is dropped and counted, never sent again, and the next
/// batch goes at once.
#[test]
fn a_permanent_refusal_drops_the_batch_without_retrying() {
    let sink = ScriptedSink {
        failing: vec![0],
        error: Some("HTTP export failed with status code: 401"),
        ..Default::default()
    };
    let (delivered, attempts) = (Arc::clone(&sink.delivered), Arc::clone(&sink.attempts));
    let r = start(
        sink,
        Tuning {
            max_batch: 2,
            // A retry would wait this long: the test would time out.
            backoff_initial: Duration::from_secs(3600),
            ..quick()
        },
    );
    for n in 1..=4 {
        send(&r.tx, "svc", n);
    }
    r.tx.close();
    r.thread.join().unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(
        *delivered.lock().unwrap(),
        vec![("svc".to_string(), vec![3, 4])]
    );
    assert_eq!(r.metrics.get(Counter::OtlpSpansDroppedRejected), 2);
    assert_eq!(r.metrics.get(Counter::OtlpTraceExportsRejected), 1);
    assert_eq!(r.metrics.get(Counter::OtlpTraceExportFailures), 1);
    assert_eq!(r.metrics.get(Counter::OtlpSpansExported), 2);
}

#[test]
fn a_full_queue_drops_its_oldest_batch() {
    let (permit, gate) = async_channel::unbounded();
    let sink = ScriptedSink {
        gate: Some(gate),
        ..Default::default()
    };
    let delivered = Arc::clone(&sink.delivered);
    let r = start(
        sink,
        Tuning {
            max_batch: 1,
            queue: QueueLimits {
                max_spans: 2,
                max_bytes: usize::MAX,
            },
            ..quick()
        },
    );
    // 1 is in flight (held at the gate); 2 and 3 queue; 4 and 5 push them out.
    for n in 1..=5 {
        send(&r.tx, "svc", n);
    }
    wait_for("two drops", || {
        r.metrics.get(Counter::OtlpSpansDroppedQueueFull) == 2
    });
    r.tx.close();
    permit.close();
    r.thread.join().unwrap();
    let ids: Vec<Vec<u8>> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, ids)| ids.clone())
        .collect();
    assert_eq!(ids, vec![vec![1], vec![4], vec![5]]);
    assert_eq!(r.metrics.get(Counter::OtlpSpansDroppedQueueFull), 2);
    // Counted once: the exporter's own queue, not the fan-out's.
    assert_eq!(r.metrics.get(Counter::ExportQueueFull), 0);
    assert_eq!(r.metrics.get(Counter::OtlpSpansExported), 3);
}

#[test]
fn backoff_spaces_retries_while_the_receiver_is_down() {
    let sink = ScriptedSink {
        failing: vec![usize::MAX],
        ..Default::default()
    };
    let attempts = Arc::clone(&sink.attempts);
    let r = start(
        sink,
        Tuning {
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(40),
            shutdown_timeout: Duration::from_millis(300),
            ..quick()
        },
    );
    send(&r.tx, "svc", 1);
    r.tx.close();
    let t0 = Instant::now();
    r.thread.join().unwrap();
    let took = t0.elapsed();
    // Tries at about 0, 20, 60, 100, ... 300 ms: 8 at most; without backoff it would be thousands.
    let n = attempts.load(Ordering::SeqCst);
    assert!((4..=9).contains(&n), "{n} attempts");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(r.metrics.get(Counter::OtlpTraceExportFailures) as usize, n);
    assert_eq!(r.metrics.get(Counter::OtlpSpansDroppedShutdown), 1);
    assert_eq!(r.metrics.get(Counter::OtlpSpansExported), 0);
}

#[test]
fn shutdown_abandons_a_send_that_never_ends() {
    // A gate that never opens: the send hangs until the shutdown deadline.
    let (_permit, gate) = async_channel::unbounded::<()>();
    let sink = ScriptedSink {
        gate: Some(gate),
        ..Default::default()
    };
    let r = start(
        sink,
        Tuning {
            shutdown_timeout: Duration::from_millis(50),
            ..quick()
        },
    );
    send(&r.tx, "svc", 1);
    send(&r.tx, "svc", 2);
    r.tx.close();
    r.thread.join().unwrap();
    assert_eq!(r.metrics.get(Counter::OtlpSpansDroppedShutdown), 2);
}

#[test]
fn an_outage_of_two_minutes_at_50_spans_a_second_loses_nothing() {
    // One batch a second for 120 s: 120 batches of 50, twice what a queue of
    // 64 batches held. The first send hangs (the receiver is down) until the
    // gate opens.
    let (permit, gate) = async_channel::unbounded();
    let sink = ScriptedSink {
        gate: Some(gate),
        ..Default::default()
    };
    let r = start(
        sink,
        Tuning {
            max_batch: 50,
            ..Tuning::default()
        },
    );
    for i in 0..120 * 50u32 {
        send(&r.tx, "svc", (i % 250) as u8 + 1);
    }
    wait_for("every span batched", || r.tx.is_empty());
    permit.close();
    r.tx.close();
    r.thread.join().unwrap();
    assert_eq!(r.metrics.get(Counter::OtlpSpansExported), 6000);
    assert_eq!(r.metrics.get(Counter::OtlpSpansDroppedQueueFull), 0);
}
