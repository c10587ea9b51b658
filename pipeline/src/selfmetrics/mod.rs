//! The agent's own counters: every event read, and every one dropped or not
//! turned into a span, by reason. Nothing is lost without a count here.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One counter; relaxed atomics, as only totals matter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct SelfMetrics {
    /// Ring-buffer records read.
    pub events_read: Counter,
    /// Records that did not match the kernel/user contract.
    pub events_undecodable: Counter,
    /// Data from a process no longer (or not yet) traced: discarded by design.
    pub events_untraced: Counter,
    /// Connections not tracked because the connection table was full.
    pub connections_dropped: Counter,
    /// Connections whose traffic is not HTTP/1 (ignored until their protocol is supported).
    pub connections_unsupported: Counter,
    /// Malformed HTTP messages, skipped.
    pub parse_errors: Counter,
    /// Requests whose method, path or status could not be decoded (HTTP/2 joined
    /// mid-way): counted, never guessed.
    pub undecodable_requests: Counter,
    /// Responses seen without their request (the request predates tracing).
    pub orphan_responses: Counter,
    /// Requests whose response never came before the connection ended.
    pub unanswered_requests: Counter,
    /// Spans dropped because an exporter was behind.
    pub spans_dropped: Counter,
    pub spans_created: Counter,
    /// Beyla's settings (keys and variables) given to the agent that it does
    /// not implement yet: each was warned about at start-up and ignored.
    pub config_settings_ignored: Counter,
    pub otlp: Arc<OtlpStats>,
}

/// The OTLP exporters' counters (relaxed atomics; only totals matter), shared
/// by the traces and metrics exporters, the exit log and the Prometheus endpoint.
#[derive(Debug, Default)]
pub struct OtlpStats {
    /// Spans taken from the channel.
    pub spans_received: AtomicU64,
    /// Spans the receiver acknowledged.
    pub spans_exported: AtomicU64,
    /// Export requests that failed (each retry counts).
    pub export_failures: AtomicU64,
    /// Batches dropped because the queue was full while the receiver was down.
    pub batches_dropped: AtomicU64,
    /// Spans in those batches.
    pub spans_dropped_queue_full: AtomicU64,
    /// Spans still queued when the shutdown flush ran out of time.
    pub spans_dropped_at_shutdown: AtomicU64,
    /// Spans recorded into metric histograms.
    pub metric_spans_recorded: AtomicU64,
    /// Spans not recorded because too many services already had meters.
    pub metric_spans_dropped_service_limit: AtomicU64,
    /// Metric export requests that succeeded / failed.
    pub metric_exports: AtomicU64,
    pub metric_export_failures: AtomicU64,
}

impl OtlpStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What the kernel probes dropped, by reason, summed over CPUs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelDropCounts {
    pub ringbuf_full: u64,
    pub inflight_map_full: u64,
    pub connection_map_full: u64,
    pub tls_unknown_connection: u64,
}

/// A summary for the log at exit, with the kernel's own drop counts.
pub struct Summary<'a>(pub &'a SelfMetrics, pub KernelDropCounts);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, k) = (self.0, self.1);
        write!(
            f,
            "events_read={} spans_created={} kernel_drops(ringbuf_full={} inflight_map_full={} connection_map_full={} tls_unknown_connection={}) \
             events_undecodable={} events_untraced={} connections_dropped={} connections_unsupported={} parse_errors={} \
             undecodable_requests={} \
             orphan_responses={} unanswered_requests={} spans_dropped={}",
            m.events_read.get(),
            m.spans_created.get(),
            k.ringbuf_full,
            k.inflight_map_full,
            k.connection_map_full,
            k.tls_unknown_connection,
            m.events_undecodable.get(),
            m.events_untraced.get(),
            m.connections_dropped.get(),
            m.connections_unsupported.get(),
            m.parse_errors.get(),
            m.undecodable_requests.get(),
            m.orphan_responses.get(),
            m.unanswered_requests.get(),
            m.spans_dropped.get(),
        )
    }
}
