//! Exporters, started from the configuration, and the fan-out that hands each
//! span to all of them without letting a slow one hold the others back.
//! Trace exporters get sampled spans; metric exporters get every span.

pub mod otlp;
pub mod print;
pub mod prometheus;

use std::sync::Arc;
use std::thread::JoinHandle;

use async_channel::Sender;
use thiserror::Error;

use crate::model::Span;
use crate::sample::Sampler;
use crate::selfmetrics::SelfMetrics;
pub use print::PrinterFormat;

/// Spans waiting for each exporter.
const EXPORT_QUEUE: usize = 16_384;

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Prometheus(#[from] prometheus::ExportError),
    #[error(transparent)]
    Otlp(#[from] otlp::ExportError),
}

/// Bucket bounds of every duration histogram, Prometheus and OTLP alike: the
/// OpenTelemetry semantic conventions' advice for request durations, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Spans Prometheus records under one lock at most, so a scrape waits little.
const RECORD_BATCH: usize = 256;

/// Hands each span to the exporters that want it: Prometheus records in
/// place, a batch at a time; exporters on their own threads get it through
/// their queue, shared.
pub struct FanOut {
    traces: Vec<Sender<Arc<Span>>>,
    metrics: Vec<Sender<Arc<Span>>>,
    prometheus: Option<prometheus::Recorder>,
    /// Spans for Prometheus since the last [`FanOut::flush`]; the capacity is
    /// reused, so a span costs no allocation when only Prometheus wants it.
    to_record: Vec<Span>,
    sampler: Sampler,
    self_metrics: Arc<SelfMetrics>,
}

impl FanOut {
    /// `to_traces` / `to_metrics`: what the routes decorator allows for this span.
    pub fn send(&mut self, span: Span, to_traces: bool, to_metrics: bool) {
        let to_traces =
            to_traces && !self.traces.is_empty() && self.sampler.keeps(&span.request.context);
        let queued_metrics = to_metrics && !self.metrics.is_empty();
        let recorded = to_metrics && self.prometheus.is_some();
        if to_traces || queued_metrics {
            let shared = Arc::new(span);
            let chosen = to_traces
                .then_some(&self.traces)
                .into_iter()
                .chain(queued_metrics.then_some(&self.metrics));
            for exporter in chosen.flatten() {
                if exporter.try_send(Arc::clone(&shared)).is_err() {
                    self.self_metrics.spans_dropped.inc();
                }
            }
            if recorded {
                self.record(Span::clone(&shared));
            }
        } else if recorded {
            self.record(span);
        }
    }

    fn record(&mut self, span: Span) {
        self.to_record.push(span);
        if self.to_record.len() >= RECORD_BATCH {
            self.flush();
        }
    }

    /// Records the spans held for Prometheus; call whenever the input runs dry.
    pub fn flush(&mut self) {
        if let Some(prometheus) = &self.prometheus {
            if !self.to_record.is_empty() {
                prometheus.record(&self.to_record);
            }
        }
        self.to_record.clear();
    }
}

impl Drop for FanOut {
    /// Nothing held back is lost when the pipeline ends.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The exporters' threads; `join` once the fan-out is dropped.
pub struct Running {
    printer: Option<JoinHandle<()>>,
    prometheus: Option<prometheus::PrometheusHandle>,
    otlp_traces: Option<otlp::ExporterHandle>,
    otlp_metrics: Option<otlp::ExporterHandle>,
}

impl Running {
    /// Waits until every exporter has written what it was given, and logs
    /// what the OTLP exporters delivered and lost.
    pub fn join(self) {
        if let Some(printer) = self.printer {
            let _ = printer.join();
        }
        if let Some(prometheus) = self.prometheus {
            prometheus.join();
        }
        let get = otlp::OtlpStats::get;
        if let Some(traces) = self.otlp_traces {
            let s = traces.join();
            log::info!(
                "OTLP traces: spans_exported={} export_failures={} spans_dropped_queue_full={} spans_dropped_at_shutdown={}",
                get(&s.spans_exported),
                get(&s.export_failures),
                get(&s.spans_dropped_queue_full),
                get(&s.spans_dropped_at_shutdown)
            );
        }
        if let Some(metrics) = self.otlp_metrics {
            let s = metrics.join();
            log::info!(
                "OTLP metrics: exports={} export_failures={} spans_dropped_service_limit={}",
                get(&s.metric_exports),
                get(&s.metric_export_failures),
                get(&s.metric_spans_dropped_service_limit)
            );
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

/// What the Prometheus endpoint reads at scrape time besides spans.
pub struct Sources<K, I> {
    pub self_metrics: Arc<SelfMetrics>,
    pub kernel_drops: K,
    pub instrumented: I,
}

/// Starts every exporter the configuration asks for. With none configured, the
/// embedded default: the trace printer and Prometheus on 127.0.0.1:9400 (the
/// default only warns when its port is taken; a configured port is an error).
pub fn start<K, I>(
    config: &ExportConfig,
    sampler: Sampler,
    sources: Sources<K, I>,
) -> Result<(FanOut, Running), StartError>
where
    K: prometheus::KernelDropSource,
    I: prometheus::InstrumentedProcesses,
{
    let mut fan_out = FanOut {
        traces: Vec::new(),
        metrics: Vec::new(),
        prometheus: None,
        to_record: Vec::new(),
        sampler,
        self_metrics: Arc::clone(&sources.self_metrics),
    };
    let printer = (config.trace_printer != PrinterFormat::Disabled).then(|| {
        let (tx, rx) = async_channel::bounded(EXPORT_QUEUE);
        fan_out.traces.push(tx);
        let format = config.trace_printer;
        std::thread::spawn(move || print::run(rx, format))
    });

    let otlp_traces = match &config.otlp_traces {
        Some(traces) => {
            let (tx, rx) = async_channel::bounded(EXPORT_QUEUE);
            let handle = otlp::spawn_traces(traces, rx, Arc::clone(&sources.self_metrics))?;
            fan_out.traces.push(tx);
            Some(handle)
        }
        None => None,
    };
    let otlp_metrics = match &config.otlp_metrics {
        Some(metrics) => {
            let (tx, rx) = async_channel::bounded(EXPORT_QUEUE);
            let handle = otlp::spawn_metrics(metrics, rx, Arc::clone(&sources.self_metrics))?;
            fan_out.metrics.push(tx);
            Some(handle)
        }
        None => None,
    };

    let nothing_configured = config.prometheus.is_none()
        && config.otlp_metrics.is_none()
        && config.otlp_traces.is_none();
    let prometheus_config = match &config.prometheus {
        Some(p) => Some(p.clone()),
        None if nothing_configured => Some(prometheus::PrometheusConfig::default()),
        None => None,
    };
    let prometheus = match prometheus_config {
        Some(prom) => {
            let embedded = config.prometheus.is_none();
            match prometheus::spawn(
                prom,
                sources.self_metrics,
                sources.kernel_drops,
                sources.instrumented,
            ) {
                Ok(handle) => {
                    fan_out.prometheus = Some(handle.recorder());
                    Some(handle)
                }
                Err(e) if embedded => {
                    log::warn!("{e}; the default metrics endpoint is off (set BEYLA_PROMETHEUS_PORT to choose a port)");
                    None
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => None,
    };
    Ok((
        fan_out,
        Running {
            printer,
            prometheus,
            otlp_traces,
            otlp_metrics,
        },
    ))
}
