//! OTLP traces: spans are batched as they arrive (up to 512, or whatever
//! arrived within a second), queued (at most [`MAX_QUEUED_SPANS`] spans and
//! [`MAX_QUEUED_BYTES`] bytes, the oldest batches dropped first), converted
//! when sent, and exported one request at a time, with exponential backoff
//! while the receiver is unreachable or asks to wait. A batch the receiver
//! refuses for good (401, 403, 400, ...: see [`super::failure`]) is dropped
//! and counted, not retried.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::or;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

use super::convert::{self, span_data};
use super::failure::{self, Refusal};
use super::queue::{Backoff, BatchQueue, QueueLimits, Weigh};
use super::{ExportError, SignalConfig};
use crate::export::{Context, Queued, Signal, StartError};
use crate::model::{Host, Resource, Span};
use crate::selfmetrics::{Counter, SelfMetrics};

/// Spans the queue holds while the receiver is down or slow: two minutes of
/// 270 spans a second, 20 minutes of 27.
pub const MAX_QUEUED_SPANS: usize = 32_768;
/// What the queued spans may weigh ([`Span::approx_bytes`]): about 530 bytes
/// each, more with paths or statements over 62 bytes.
pub const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// Limits and delays of the export loop.
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    pub max_batch: usize,
    pub batch_timeout: Duration,
    pub queue: QueueLimits,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub shutdown_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_batch: 512,
            batch_timeout: Duration::from_secs(1),
            queue: QueueLimits {
                max_spans: MAX_QUEUED_SPANS,
                max_bytes: MAX_QUEUED_BYTES,
            },
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// The spans of one process: they share a resource, so one export request each.
/// Kept as the pipeline's spans (half the size of the SDK's) until sent.
#[derive(Debug)]
pub(crate) struct Group {
    pub resource: Arc<Resource>,
    pub spans: Vec<Arc<Span>>,
}

/// A batch, grouped by resource in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub groups: Vec<Group>,
}

impl Batch {
    fn from_spans(spans: Vec<Arc<Span>>) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        for span in spans {
            let resource = &span.request.resource;
            match groups.iter_mut().find(|g| *g.resource == **resource) {
                Some(g) => g.spans.push(span),
                None => groups.push(Group {
                    resource: Arc::clone(resource),
                    spans: vec![span],
                }),
            }
        }
        Self { groups }
    }

    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.spans.len()).sum()
    }
}

impl Weigh for Batch {
    fn spans(&self) -> usize {
        self.len()
    }

    fn bytes(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.spans)
            .map(|s| s.approx_bytes() + size_of::<Arc<Span>>())
            .sum()
    }
}

/// Where batches go. `send` removes each group once the receiver acknowledged it,
/// so that a retry sends only what is left.
pub(crate) trait Sink: Send + 'static {
    fn send(&mut self, batch: &mut Batch) -> impl Future<Output = Result<(), String>> + Send;
    fn shutdown(&mut self);
}

/// The OTLP span exporter of opentelemetry-otlp, one resource at a time. A
/// request abandoned by the backstop keeps the exporter locked until the
/// library's own timeout ends it; the next request waits for that.
struct OtlpSink {
    exporter: Arc<tokio::sync::Mutex<opentelemetry_otlp::SpanExporter>>,
    io: &'static tokio::runtime::Runtime,
    timeout: Duration,
    host: Arc<Host>,
    scope: InstrumentationScope,
}

impl Sink for OtlpSink {
    async fn send(&mut self, batch: &mut Batch) -> Result<(), String> {
        while let Some(group) = batch.groups.first() {
            let resource = convert::resource(&group.resource, &self.host, true);
            let spans: Vec<SpanData> = group
                .spans
                .iter()
                .map(|span| span_data(span, &self.scope))
                .collect();
            let exporter = Arc::clone(&self.exporter);
            let limit = self.timeout + Duration::from_secs(1);
            let sent = super::request(self.io, limit, async move {
                let mut exporter = exporter.lock().await;
                exporter.set_resource(&resource);
                exporter.export(spans).await
            })
            .await?;
            sent.map_err(|e| e.to_string())?;
            batch.groups.remove(0);
        }
        Ok(())
    }

    fn shutdown(&mut self) {
        if let Ok(exporter) = self.exporter.try_lock() {
            if let Err(e) = exporter.shutdown() {
                log::debug!("OTLP span exporter shutdown: {e}");
            }
        }
    }
}

/// Starts the traces exporter on the control plane; it ends after its queue
/// closes and its batches are flushed (or the shutdown timeout has passed),
/// then logs what it delivered.
pub fn spawn_traces(config: &SignalConfig, context: &Context) -> Result<Queued, StartError> {
    config.validate().map_err(ExportError::from)?;
    let io = super::io("traces")?;
    let exporter = {
        let _inside = io.enter();
        super::build_span_exporter(config)?
    };
    let sink = OtlpSink {
        exporter: Arc::new(tokio::sync::Mutex::new(exporter)),
        io,
        timeout: config.timeout,
        host: Arc::clone(&context.host),
        scope: convert::scope(),
    };
    let url = config.url();
    let protocol = config.protocol;
    let metrics = Arc::clone(&context.self_metrics);
    let tuning = Tuning {
        shutdown_timeout: context.shutdown_timeout,
        ..Tuning::default()
    };
    log::info!("exporting traces over OTLP {protocol} to {url}");
    Ok(Queued::spawn(
        &context.control,
        Signal::Traces,
        move |rx| async move {
            run(sink, rx, tuning, Arc::clone(&metrics)).await;
            log::info!(
            "OTLP traces: spans_exported={} export_failures={} exports_rejected={} spans_dropped_queue_full={} spans_dropped_at_shutdown={} spans_dropped_rejected={}",
            metrics.get(Counter::OtlpSpansExported),
            metrics.get(Counter::OtlpTraceExportFailures),
            metrics.get(Counter::OtlpTraceExportsRejected),
            metrics.get(Counter::OtlpSpansDroppedQueueFull),
            metrics.get(Counter::OtlpSpansDroppedShutdown),
            metrics.get(Counter::OtlpSpansDroppedRejected),
        );
        },
    ))
}

/// A send under way: it owns the sink and the batch, and gives both back with
/// the span count the batch had when it started.
type InFlight<S> = Pin<Box<dyn Future<Output = Sent<S>> + Send>>;

struct Sent<S> {
    sink: S,
    batch: Batch,
    spans_before: usize,
    result: Result<(), String>,
}

enum Event<S> {
    Span(Result<Arc<Span>, async_channel::RecvError>),
    Done(Sent<S>),
    Tick,
}

struct Loop<'a> {
    queue: BatchQueue<Batch>,
    metrics: &'a SelfMetrics,
}

impl Loop<'_> {
    fn enqueue(&mut self, batch: Batch, front: bool) {
        let dropped = if front {
            self.queue.push_front(batch)
        } else {
            self.queue.push(batch)
        };
        if dropped > 0 {
            self.metrics
                .add(Counter::OtlpSpansDroppedQueueFull, dropped as u64);
        }
    }
}

pub(crate) async fn run<S: Sink>(
    sink: S,
    rx: async_channel::Receiver<Arc<Span>>,
    tuning: Tuning,
    metrics: Arc<SelfMetrics>,
) {
    let mut state = Loop {
        queue: BatchQueue::new(tuning.queue),
        metrics: &metrics,
    };
    let mut backoff = Backoff::new(tuning.backoff_initial, tuning.backoff_max);
    let mut unbatched: Vec<Arc<Span>> = Vec::with_capacity(tuning.max_batch);
    let mut pending_since: Option<Instant> = None;
    let mut idle_sink: Option<S> = Some(sink);
    let mut in_flight: Option<InFlight<S>> = None;
    let mut in_flight_spans = 0;
    let mut closing_deadline: Option<Instant> = None;
    let mut failing = false;
    // The refusal last logged, until a batch is accepted again.
    let mut refused: Option<Refusal> = None;

    loop {
        let now = Instant::now();
        let batch_due = pending_since.map(|t| t + tuning.batch_timeout);
        if !unbatched.is_empty()
            && (unbatched.len() >= tuning.max_batch
                || batch_due.is_some_and(|due| now >= due)
                || closing_deadline.is_some())
        {
            let batch = Batch::from_spans(std::mem::take(&mut unbatched));
            pending_since = None;
            state.enqueue(batch, false);
        }
        if in_flight.is_none() && backoff.ready(now) {
            if let Some(mut batch) = state.queue.pop() {
                let mut sink = idle_sink
                    .take()
                    .expect("the sink is idle when nothing is in flight");
                in_flight_spans = batch.len();
                in_flight = Some(Box::pin(async move {
                    let spans_before = batch.len();
                    let result = sink.send(&mut batch).await;
                    Sent {
                        sink,
                        batch,
                        spans_before,
                        result,
                    }
                }));
            }
        }
        if let Some(deadline) = closing_deadline {
            if in_flight.is_none() && state.queue.is_empty() {
                break;
            }
            if now >= deadline {
                let queued = state.queue.clear();
                // An unfinished send is abandoned; its batch counts at the size it
                // had when the send started (an upper bound if some groups got through).
                let left = queued + in_flight.take().map_or(0, |_| in_flight_spans);
                log::warn!("OTLP traces: shutdown flush timed out, {left} queued spans dropped");
                metrics.add(Counter::OtlpSpansDroppedShutdown, left as u64);
                break;
            }
        }

        let wake = [
            pending_since.map(|t| t + tuning.batch_timeout),
            (in_flight.is_none() && !state.queue.is_empty())
                .then(|| backoff.not_before())
                .flatten(),
            closing_deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        let done = async {
            match in_flight.as_mut() {
                Some(f) => Event::Done(f.await),
                None => pending().await,
            }
        };
        let recv = async {
            if closing_deadline.is_some() {
                pending().await
            } else {
                Event::Span(rx.recv().await)
            }
        };
        let timer = async {
            match wake {
                Some(t) => {
                    smol::Timer::at(t).await;
                }
                None => pending().await,
            }
            Event::Tick
        };
        match or(done, or(recv, timer)).await {
            Event::Span(Ok(span)) => {
                pending_since.get_or_insert_with(Instant::now);
                unbatched.push(span);
            }
            Event::Span(Err(_)) => {
                closing_deadline = Some(Instant::now() + tuning.shutdown_timeout);
            }
            Event::Done(Sent {
                sink,
                batch,
                spans_before,
                result,
            }) => {
                in_flight = None;
                idle_sink = Some(sink);
                // Groups the receiver acknowledged were removed from the batch.
                let sent = spans_before - batch.len();
                metrics.add(Counter::OtlpSpansExported, sent as u64);
                match result.map_err(|e| (failure::refusal(&e), e)) {
                    Ok(()) => {
                        if failing || refused.is_some() {
                            log::info!("OTLP traces: the receiver accepts spans again");
                            failing = false;
                            refused = None;
                        }
                        backoff.succeeded();
                    }
                    Err((Some(refusal), _)) => {
                        // An answer, and a final one: no backoff, no retry.
                        metrics.inc(Counter::OtlpTraceExportFailures);
                        metrics.inc(Counter::OtlpTraceExportsRejected);
                        metrics.add(Counter::OtlpSpansDroppedRejected, batch.len() as u64);
                        if refused.as_ref() != Some(&refusal) {
                            log::warn!(
                                "OTLP traces: the receiver refused {} spans with {refusal}: dropped, not retried; {}",
                                batch.len(),
                                failure::advice(&refusal, "traces")
                            );
                        }
                        refused = Some(refusal);
                        backoff.succeeded();
                    }
                    Err((None, e)) => {
                        metrics.inc(Counter::OtlpTraceExportFailures);
                        let delay = backoff.failed(Instant::now());
                        if !failing {
                            log::warn!("OTLP traces: export failed ({e}); retrying every {delay:?} or more, up to {:?}", tuning.backoff_max);
                            failing = true;
                        } else {
                            log::debug!(
                                "OTLP traces: export failed again ({e}), next try in {delay:?}"
                            );
                        }
                        state.enqueue(batch, true);
                    }
                }
            }
            Event::Tick => {}
        }
    }
    if let Some(mut sink) = idle_sink {
        sink.shutdown();
    }
}
