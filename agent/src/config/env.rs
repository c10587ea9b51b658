//! The environment: Beyla's `BEYLA_*` variables and the standard `OTEL_*` ones.

use serde_json::Value;

use super::error::Origin;
use super::Raw;

/// Every variable the agent reads. Lookups of any other name fail in debug
/// builds, and a test checks that docs/configuration.md documents each one.
pub(crate) const VARS: &[&str] = &[
    "BEYLA_CONFIG_PATH",
    "BEYLA_LOG_LEVEL",
    "BEYLA_OPEN_PORT",
    "BEYLA_EXECUTABLE_NAME",
    "BEYLA_TRACE_PRINTER",
    "BEYLA_SHUTDOWN_TIMEOUT",
    "BEYLA_PROMETHEUS_PORT",
    "BEYLA_PROMETHEUS_PATH",
    "BEYLA_BPF_WAKEUP_LEN",
    "BEYLA_BPF_TRACK_REQUEST_HEADERS",
    "BEYLA_BPF_HIGH_REQUEST_VOLUME",
    "BEYLA_BPF_CAPTURE_SIZE",
    "BEYLA_BPF_SQL_QUERY_TEXT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "BEYLA_KUBE_METADATA_ENABLE",
    "BEYLA_KUBE_CLUSTER_NAME",
    "KUBECONFIG",
    "BEYLA_KUBE_INFORMERS_SYNC_TIMEOUT",
    "BEYLA_KUBE_NODE_NAME",
    "NODE_NAME",
];

/// An environment lookup (the real one, or a table in tests).
pub(crate) struct Env<'a>(pub &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The variable's value; empty counts as unset, as the OpenTelemetry spec says.
    pub fn get(&self, name: &'static str) -> Option<Raw> {
        debug_assert!(VARS.contains(&name), "{name} missing from VARS");
        let value = (self.0)(name).filter(|v| !v.trim().is_empty())?;
        Some(Raw {
            value: Value::String(value),
            origin: Origin::Env(name),
        })
    }

    /// The first of these variables that is set: the signal-specific one comes first.
    pub fn first(&self, names: &[&'static str]) -> Option<Raw> {
        names.iter().find_map(|name| self.get(name))
    }
}
