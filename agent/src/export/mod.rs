//! Exporters, and the fan-out that hands each span to all of them without
//! letting a slow one hold the others back.

pub mod print;

use std::sync::Arc;

use async_channel::Sender;

use crate::model::Span;
use crate::selfmetrics::SelfMetrics;

pub struct FanOut {
    exporters: Vec<Sender<Arc<Span>>>,
    metrics: Arc<SelfMetrics>,
}

impl FanOut {
    pub fn new(exporters: Vec<Sender<Arc<Span>>>, metrics: Arc<SelfMetrics>) -> Self {
        Self { exporters, metrics }
    }

    pub fn send(&self, span: Span) {
        let span = Arc::new(span);
        for exporter in &self.exporters {
            if exporter.try_send(Arc::clone(&span)).is_err() {
                self.metrics.spans_dropped.inc();
            }
        }
    }
}
