//! Beyla's `exclude_otel_instrumented_services` (on by default): a process
//! seen sending its own telemetry to an OTLP receiver (a successful client
//! call to `…/v1/traces` or `…/v1/metrics`, or to the collector's gRPC Export
//! methods) already exports that signal; from then on the agent does not
//! export its traces, or its request metrics, a second time.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::model::{Operation, Pid, Resource, Span, SpanKind};
use crate::semconv;

const HTTP_TRACES: &str = "/v1/traces";
const HTTP_METRICS: &str = "/v1/metrics";
const GRPC_TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const GRPC_METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
/// Processes remembered at most; beyond, new ones are not (their spans
/// are exported as usual).
const MAX_TRACKED: usize = 4096;

/// Which signals a process exports by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Exports {
    traces: bool,
    metrics: bool,
}

/// What is known of one process: the resource discovery gave it (a pid
/// reused by a new process comes with a new one), and what it exports.
#[derive(Debug)]
struct Known {
    resource: Weak<Resource>,
    exports: Exports,
}

#[derive(Debug, Default)]
pub struct OwnTelemetry {
    enabled: bool,
    by_pid: HashMap<Pid, Known>,
}

impl OwnTelemetry {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            by_pid: HashMap::new(),
        }
    }

    /// Notes what the span shows of its process, and says whether its
    /// process's spans still go to (traces, metrics).
    pub fn decide(&mut self, span: &Span) -> (bool, bool) {
        if !self.enabled {
            return (true, true);
        }
        let pid = span.request.pid;
        let resource = &span.request.resource;
        // Forget what belonged to an earlier process with the same pid.
        if self
            .by_pid
            .get(&pid)
            .is_some_and(|k| !std::ptr::eq(k.resource.as_ptr(), Arc::as_ptr(resource)))
        {
            self.by_pid.remove(&pid);
        }
        if let Some(signal) = own_export(span) {
            if self.by_pid.len() < MAX_TRACKED || self.by_pid.contains_key(&pid) {
                let known = self.by_pid.entry(pid).or_insert_with(|| Known {
                    resource: Arc::downgrade(resource),
                    exports: Exports::default(),
                });
                let exports = &mut known.exports;
                let before = *exports;
                match signal {
                    Signal::Traces => exports.traces = true,
                    Signal::Metrics => exports.metrics = true,
                }
                if *exports != before {
                    log::info!(
                        "pid={pid} service={} exports its own OpenTelemetry {}: not exported again (exclude_otel_instrumented_services)",
                        span.request.resource.service_name,
                        match signal {
                            Signal::Traces => "traces",
                            Signal::Metrics => "metrics",
                        }
                    );
                }
            }
        }
        let exports = self.by_pid.get(&pid).map(|k| k.exports).unwrap_or_default();
        (!exports.traces, !exports.metrics)
    }
}

enum Signal {
    Traces,
    Metrics,
}

/// The signal a successful client call sends to an OTLP receiver, if it is one.
fn own_export(span: &Span) -> Option<Signal> {
    let r = &span.request;
    if r.kind != SpanKind::Client || semconv::is_error(span) {
        return None;
    }
    match &r.operation {
        Operation::Http(http) if http.path.ends_with(HTTP_TRACES) => Some(Signal::Traces),
        Operation::Http(http) if http.path.ends_with(HTTP_METRICS) => Some(Signal::Metrics),
        Operation::Rpc(rpc) if rpc.status_code.is_none_or(|c| c == 0) => {
            if rpc.http.path.starts_with(GRPC_TRACES) {
                Some(Signal::Traces)
            } else if rpc.http.path.starts_with(GRPC_METRICS) {
                Some(Signal::Metrics)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    /// A client call of the same process as `server` (spans of one process
    /// share its resource).
    fn client(server: &Span, path: &str, status: u16) -> Span {
        let mut span = server.clone();
        span.request.kind = SpanKind::Client;
        if let Operation::Http(http) = &mut span.request.operation {
            http.path = path.into();
            http.status = status;
        }
        span
    }

    #[test]
    fn a_process_sending_its_own_traces_is_not_traced_again() {
        let mut own = OwnTelemetry::new(true);
        let server = fixtures::span();
        assert_eq!(own.decide(&server), (true, true));
        // A failed export proves nothing.
        assert_eq!(
            own.decide(&client(&server, "/v1/traces", 503)),
            (true, true)
        );
        assert_eq!(
            own.decide(&client(&server, "/otlp/v1/traces", 200)),
            (false, true)
        );
        assert_eq!(own.decide(&server), (false, true), "its later spans too");
        assert_eq!(
            own.decide(&client(&server, "/v1/metrics", 200)),
            (false, false)
        );
        // The same pid, another process (discovery gave it a new resource).
        let mut reused = fixtures::span();
        reused.request.resource = Arc::new(Resource::clone(&server.request.resource));
        assert_eq!(own.decide(&reused), (true, true));

        let mut off = OwnTelemetry::new(false);
        assert_eq!(
            off.decide(&client(&server, "/v1/traces", 200)),
            (true, true)
        );
    }
}
