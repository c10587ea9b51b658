//! Exporters, started from the configuration, and the fan-out that hands each
//! span to all of them without letting a slow one hold the others back.
//! Trace exporters get sampled spans; metric exporters get every span.

pub mod print;
pub mod prometheus;

use std::sync::Arc;
use std::thread::JoinHandle;

use async_channel::Sender;
use thiserror::Error;

use crate::config::{Config, PrinterFormat};
use crate::model::Span;
use crate::sample::Sampler;
use crate::selfmetrics::SelfMetrics;

/// Spans waiting for each exporter.
const EXPORT_QUEUE: usize = 16_384;

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Prometheus(#[from] prometheus::ExportError),
}

/// Hands each span to the exporters that want it.
pub struct FanOut {
    traces: Vec<Sender<Arc<Span>>>,
    metrics: Vec<Sender<Arc<Span>>>,
    sampler: Sampler,
    self_metrics: Arc<SelfMetrics>,
}

impl FanOut {
    /// `to_traces` / `to_metrics`: what the routes decorator allows for this span.
    pub fn send(&self, span: Span, to_traces: bool, to_metrics: bool) {
        let to_traces = to_traces && self.sampler.keeps(&span.request.context);
        let span = Arc::new(span);
        let chosen = to_traces
            .then_some(&self.traces)
            .into_iter()
            .chain(to_metrics.then_some(&self.metrics));
        for exporter in chosen.flatten() {
            if exporter.try_send(Arc::clone(&span)).is_err() {
                self.self_metrics.spans_dropped.inc();
            }
        }
    }
}

/// The exporters' threads; `join` once the fan-out is dropped.
pub struct Running {
    printer: Option<JoinHandle<()>>,
    prometheus: Option<prometheus::PrometheusHandle>,
}

impl Running {
    /// Waits until every exporter has written what it was given.
    pub fn join(self) {
        if let Some(printer) = self.printer {
            let _ = printer.join();
        }
        if let Some(prometheus) = self.prometheus {
            prometheus.join();
        }
    }
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
    config: &Config,
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
        sampler,
        self_metrics: Arc::clone(&sources.self_metrics),
    };
    let printer = (config.trace_printer != PrinterFormat::Disabled).then(|| {
        let (tx, rx) = async_channel::bounded(EXPORT_QUEUE);
        fan_out.traces.push(tx);
        let format = config.trace_printer;
        std::thread::spawn(move || print::run(rx, format))
    });

    let nothing_configured = config.prometheus.is_none()
        && config.metrics_export.is_none()
        && config.traces_export.is_none();
    let prometheus_config = match &config.prometheus {
        Some(p) => Some(prometheus::PrometheusConfig {
            path: p.path.clone(),
            ..prometheus::PrometheusConfig::on_port(p.port)
        }),
        None if nothing_configured => Some(prometheus::PrometheusConfig::default()),
        None => None,
    };
    let prometheus = match prometheus_config {
        Some(prom) => {
            let (tx, rx) = async_channel::bounded(EXPORT_QUEUE);
            let embedded = config.prometheus.is_none();
            match prometheus::spawn(
                prom,
                rx,
                sources.self_metrics,
                sources.kernel_drops,
                sources.instrumented,
            ) {
                Ok(handle) => {
                    log::info!(
                        "Prometheus metrics at http://{}{}",
                        handle.local_addr(),
                        prometheus_path(config)
                    );
                    fan_out.metrics.push(tx);
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
        },
    ))
}

fn prometheus_path(config: &Config) -> &str {
    config
        .prometheus
        .as_ref()
        .map_or("/metrics", |p| p.path.as_str())
}
