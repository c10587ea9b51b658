//! A finished span, decorated and ready for every exporter.

use std::sync::Arc;

use super::{HttpRequest, KubernetesResource, Pid, ShortString};

/// The process a span came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub service_name: String,
    /// `service.namespace`; empty when not configured.
    pub service_namespace: String,
    pub pid: Pid,
    /// OTEL_RESOURCE_ATTRIBUTES of the agent, one list shared by every process.
    pub attributes: Arc<[(String, String)]>,
    /// The container and pod of the process, when Kubernetes metadata is on
    /// and the process runs in a pod of this node.
    pub kubernetes: Option<Arc<KubernetesResource>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub request: HttpRequest,
    /// `http.route`: the low-cardinality form of the path; None when routes are `unset`.
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

    /// The OpenTelemetry span name: `{service}/{method}` for an RPC, else for
    /// HTTP `{method} {route}`, or `{method}` without a route.
    pub fn name(&self) -> String {
        if let Some(rpc) = &self.request.rpc {
            return format!("{}/{}", rpc.service, rpc.method);
        }
        match &self.route {
            Some(route) => format!("{} {route}", self.request.method),
            None => self.request.method.to_string(),
        }
    }
}
