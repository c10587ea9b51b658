//! Exporters, each behind the one [`Exporter`] trait and built from its own
//! validated configuration type, and the fan-out that hands each span to all
//! of them without letting a slow one hold the others back. Trace exporters
//! get sampled spans; metric exporters get every span.
//!
//! Adding an exporter: a folder (or file) with its configuration type and a
//! `build` that returns a running [`Exporter`], and one line in [`start`].

pub mod otlp;
pub mod print;
pub mod prometheus;
pub mod select;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use smol::Task;
use thiserror::Error;

use crate::control::Control;
use crate::model::{Host, Span};
use crate::sample::Sampler;
use crate::selfmetrics::{Counter, KernelDropCounts, SelfMetrics};
pub use print::PrinterFormat;

/// Spans waiting for each exporter that runs on the control plane.
const EXPORT_QUEUE: usize = 16_384;

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Prometheus(#[from] prometheus::ExportError),
    #[error(transparent)]
    Otlp(#[from] otlp::ExportError),
}

/// Which spans an exporter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Sampled spans that the routes let reach traces.
    Traces,
    /// Every span that the routes let reach metrics.
    Metrics,
}

/// A span on its way to the exporters, shared on the heap only once one of
/// them keeps it.
pub struct Outgoing<'a> {
    span: &'a Span,
    shared: Option<Arc<Span>>,
}

impl Outgoing<'_> {
    pub fn span(&self) -> &Span {
        self.span
    }

    /// The span, shared with the other exporters that keep it.
    pub fn shared(&mut self) -> Arc<Span> {
        let span = self.span;
        Arc::clone(self.shared.get_or_insert_with(|| Arc::new(span.clone())))
    }
}

/// A running exporter.
pub trait Exporter: Send {
    fn signal(&self) -> Signal;
    /// Takes a span without blocking; false when there was no room for it
    /// (the fan-out counts it).
    fn send(&mut self, span: &mut Outgoing<'_>) -> bool;
    /// The input ran dry: a good time to do batched work.
    fn flush(&mut self) {}
    /// No more spans will come: start delivering what is held, without waiting.
    fn close(&mut self) {}
    /// Returns once what the exporter was given is written (or given up).
    fn finish(self: Box<Self>);
}

/// What exporters need besides spans: where to run, and the agent's own state.
#[derive(Clone)]
pub struct Context {
    pub control: Control,
    pub self_metrics: Arc<SelfMetrics>,
    /// The kernel's drop counters, read when needed.
    pub kernel_drops: Arc<dyn Fn() -> KernelDropCounts + Send + Sync>,
    /// How many processes are instrumented now.
    pub instrumented: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// How long exporters may take to deliver what they hold at exit
    /// (Beyla's `shutdown_timeout`).
    pub shutdown_timeout: Duration,
    /// The machine, for every resource (`host.*`, `service.instance.id`).
    pub host: Arc<Host>,
}

/// An exporter running as a task of the control plane, fed through a bounded queue.
pub struct Queued {
    signal: Signal,
    queue: Sender<Arc<Span>>,
    task: Task<()>,
}

impl Queued {
    /// Runs `exporter` on the control plane until its queue closes and it returns.
    pub fn spawn<F>(
        control: &Control,
        signal: Signal,
        exporter: impl FnOnce(Receiver<Arc<Span>>) -> F,
    ) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (queue, rx) = async_channel::bounded(EXPORT_QUEUE);
        Self {
            signal,
            queue,
            task: control.spawn(exporter(rx)),
        }
    }
}

impl Exporter for Queued {
    fn signal(&self) -> Signal {
        self.signal
    }

    fn send(&mut self, span: &mut Outgoing<'_>) -> bool {
        self.queue.try_send(span.shared()).is_ok()
    }

    fn close(&mut self) {
        self.queue.close();
    }

    fn finish(self: Box<Self>) {
        self.queue.close();
        smol::block_on(self.task);
    }
}

/// Hands each span to the exporters that want it.
pub struct FanOut {
    exporters: Vec<Box<dyn Exporter>>,
    /// Whether any exporter takes traces: only then is the sampler asked.
    traces: bool,
    sampler: Sampler,
    self_metrics: Arc<SelfMetrics>,
}

impl FanOut {
    pub fn new(exporters: Vec<Box<dyn Exporter>>, sampler: Sampler, context: &Context) -> Self {
        Self {
            traces: exporters.iter().any(|e| e.signal() == Signal::Traces),
            exporters,
            sampler,
            self_metrics: Arc::clone(&context.self_metrics),
        }
    }

    /// `to_traces` / `to_metrics`: what the routes decorator allows for this span.
    pub fn send(&mut self, span: &Span, to_traces: bool, to_metrics: bool) {
        let to_traces = to_traces && self.traces && self.sampler.keeps(&span.request.context);
        let mut out = Outgoing { span, shared: None };
        for exporter in &mut self.exporters {
            let wanted = match exporter.signal() {
                Signal::Traces => to_traces,
                Signal::Metrics => to_metrics,
            };
            if wanted && !exporter.send(&mut out) {
                self.self_metrics.inc(Counter::ExportQueueFull);
            }
        }
    }

    /// Call whenever the input runs dry.
    pub fn flush(&mut self) {
        for exporter in &mut self.exporters {
            exporter.flush();
        }
    }

    /// Flushes, then waits until every exporter has written what it was
    /// given; they all deliver at once, so the shutdown timeout bounds the whole.
    pub fn finish(mut self) {
        self.flush();
        for exporter in &mut self.exporters {
            exporter.close();
        }
        for exporter in self.exporters {
            exporter.finish();
        }
    }
}

/// Which exporters to start and their settings, each validated by its own type.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub trace_printer: PrinterFormat,
    pub otlp_traces: Option<otlp::SignalConfig>,
    pub otlp_metrics: Option<otlp::MetricsConfig>,
    pub prometheus: Option<prometheus::PrometheusConfig>,
}

/// Starts every exporter the configuration asks for. With none configured, the
/// embedded default: the trace printer and Prometheus on 127.0.0.1:9400 (the
/// default only warns when its port is taken; a configured port is an error).
pub fn start(
    config: &ExportConfig,
    sampler: Sampler,
    context: &Context,
) -> Result<FanOut, StartError> {
    let mut exporters: Vec<Box<dyn Exporter>> = Vec::new();
    if config.trace_printer != PrinterFormat::Disabled {
        exporters.push(Box::new(print::spawn(config.trace_printer, context)));
    }
    if let Some(traces) = &config.otlp_traces {
        exporters.push(select::only(
            Box::new(otlp::spawn_traces(traces, context)?),
            traces.instrumentations,
        ));
    }
    if let Some(metrics) = &config.otlp_metrics {
        exporters.push(select::only(
            Box::new(otlp::spawn_metrics(metrics, context)?),
            metrics.signal.instrumentations,
        ));
    }
    let nothing_configured = config.prometheus.is_none()
        && config.otlp_metrics.is_none()
        && config.otlp_traces.is_none();
    match &config.prometheus {
        Some(p) => exporters.push(select::only(
            Box::new(prometheus::spawn(p.clone(), context)?),
            p.instrumentations,
        )),
        None if nothing_configured => {
            match prometheus::spawn(prometheus::PrometheusConfig::default(), context) {
                Ok(embedded) => exporters.push(Box::new(embedded)),
                Err(e) => log::warn!("{e}; the default metrics endpoint is off (set BEYLA_PROMETHEUS_PORT to choose a port)"),
            }
        }
        None => {}
    }
    Ok(FanOut::new(exporters, sampler, context))
}
