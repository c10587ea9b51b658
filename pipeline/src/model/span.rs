//! A finished span, decorated and ready for every exporter.

use std::sync::Arc;

use super::{Pid, Request, ShortString};

/// The process a span came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub service_name: String,
    /// `service.namespace`; empty when not configured.
    pub service_namespace: String,
    pub pid: Pid,
    /// OTEL_RESOURCE_ATTRIBUTES of the agent, one list shared by every process.
    pub attributes: Arc<[(String, String)]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub request: Request,
    /// `http.route`: the low-cardinality form of an HTTP path; None when routes
    /// are `unset`, and for every other operation.
    pub route: Option<ShortString>,
    /// Wall-clock Unix nanoseconds.
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
}

impl Span {
    /// What the duration histograms record.
    pub fn duration_seconds(&self) -> f64 {
        self.end_unix_ns.saturating_sub(self.start_unix_ns) as f64 / 1e9
    }
}
