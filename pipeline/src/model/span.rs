//! A finished span, decorated and ready for every exporter.

use std::sync::Arc;

use super::{Host, KubernetesResource, Language, Pid, Request, ShortString};

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
    /// What the process is written in, as discovery told it.
    pub language: Language,
}

impl Resource {
    /// `service.instance.id`: the container's in a pod, else `{host name}:{pid}`
    /// (unique per process, as Beyla forms it).
    pub fn instance_id(&self, host: &Host) -> String {
        match &self.kubernetes {
            Some(k8s) => k8s.instance_id(),
            None => format!("{}:{}", host.name, self.pid),
        }
    }
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
    /// About how much memory the span holds: itself, its reference counts
    /// when shared, and its long texts. What export queues are held to.
    pub fn approx_bytes(&self) -> usize {
        size_of::<Span>()
            + 2 * size_of::<usize>()
            + self.route.as_ref().map_or(0, ShortString::heap_bytes)
            + self.request.operation.heap_bytes()
    }

    /// What the duration histograms record.
    pub fn duration_seconds(&self) -> f64 {
        self.end_unix_ns.saturating_sub(self.start_unix_ns) as f64 / 1e9
    }
}
