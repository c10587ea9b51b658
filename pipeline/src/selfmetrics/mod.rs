//! The agent's own counters: every event read, and every one dropped or not
//! turned into a span, by reason; and a few gauges of what it holds. Each is
//! declared once, in [`FAMILIES`]; the exit summary, the Prometheus endpoint
//! and the documentation's list (a test checks docs/running.md) all come
//! from there. Nothing is lost without a count here.

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocols::Anomaly;

/// A counter kept by the agent in user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    EventsRead,
    SpansCreated,
    /// Ring-buffer records that did not match the kernel/user contract.
    EventsUndecodable,
    /// Data from a process no longer (or not yet) traced: discarded by design.
    EventsUntraced,
    /// Connections not tracked because the connection table was full.
    ConnectionsDropped,
    /// Exchanges whose fields could not be decoded: counted, never guessed.
    UndecodableRequests,
    /// Spans an exporter's queue had no room for.
    ExportQueueFull,
    ParseErrors,
    ConnectionsUnsupported,
    OrphanResponses,
    UnansweredRequests,
    MetricSeriesDropped,
    OtlpSpansExported,
    OtlpTraceExportFailures,
    OtlpMetricExportFailures,
    OtlpMetricExports,
    OtlpSpansDroppedQueueFull,
    OtlpSpansDroppedShutdown,
    OtlpSpansDroppedServiceLimit,
    ScrapesRefusedBusy,
    ScrapesRefusedIdle,
    ScrapesRefusedTimeout,
    ScrapesRefusedBadRequest,
    ScrapesRefusedAccept,
    /// Processes whose OpenSSL uprobes the kernel refused for lack of privilege.
    ProbeAttachFailuresOpenssl,
    /// Processes whose Go crypto/tls uprobes the kernel refused for lack of privilege.
    ProbeAttachFailuresGoTls,
    /// Beyla's configuration keys and variables given but not implemented
    /// yet: each was warned about at start-up and ignored.
    ConfigSettingsIgnored,
    /// Server spans that joined a traced client's trace on this machine when they began.
    SameNodeJoined,
    /// Server spans that began their own trace and were moved into their client's.
    SameNodeJoinedLate,
    /// Request starts the same-node table had no room for.
    SameNodeTableFull,
    /// Request starts forgotten by the same-node table, never met nor ended.
    SameNodeExpired,
    /// Spans an OTLP receiver refused with a permanent error: dropped, not retried.
    OtlpSpansDroppedRejected,
    /// OTLP export requests refused with a permanent error, by signal.
    OtlpTraceExportsRejected,
    OtlpMetricExportsRejected,
    /// Process events (exec, fork, exit, listen) discovery's queue had no
    /// room for; its next /proc scan catches up.
    ProcessEventsDropped,
    /// Errors the Kubernetes watch got from the API server (each retry counts), by resource.
    KubernetesWatchFailuresPods,
    KubernetesWatchFailuresReplicaSets,
    /// Times the Kubernetes watch started over with a full list, by resource.
    KubernetesWatchRestartsPods,
    KubernetesWatchRestartsReplicaSets,
    /// Context events the table of pending kernel ids had no room for (ebpf.context_propagation).
    PropagationContextsDropped,
}

const COUNTERS: usize = Counter::PropagationContextsDropped as usize + 1;

/// A value the agent sets (rather than counts up): how much it holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// Pods of this node the Kubernetes metadata store holds.
    KubernetesPods,
    /// ReplicaSets (with their Deployment) the Kubernetes metadata store holds.
    KubernetesReplicaSets,
}

const GAUGES: usize = Gauge::KubernetesReplicaSets as usize + 1;

/// A counter the kernel probes keep in a map: the reasons they drop an
/// event, and what the context-propagation program did with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelDrop {
    RingbufFull,
    InflightMapFull,
    ConnectionMapFull,
    TlsUnknownConnection,
    /// A `traceparent` was written into a traced client's request.
    PropagationInjected,
    /// The request carried a `traceparent` already: left alone.
    PropagationHadContext,
    /// The request head was not whole in the message: left alone.
    PropagationHeadIncomplete,
    /// The kernel refused to grow the message: sent as written.
    PropagationPushFailed,
}

impl KernelDrop {
    pub const ALL: [KernelDrop; 8] = [
        KernelDrop::RingbufFull,
        KernelDrop::InflightMapFull,
        KernelDrop::ConnectionMapFull,
        KernelDrop::TlsUnknownConnection,
        KernelDrop::PropagationInjected,
        KernelDrop::PropagationHadContext,
        KernelDrop::PropagationHeadIncomplete,
        KernelDrop::PropagationPushFailed,
    ];
}

/// Where a member of a family gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Agent(Counter),
    Kernel(KernelDrop),
    Held(Gauge),
}

/// One Prometheus family: counters (`_total` is appended to the name), or
/// gauges when its members are [`Source::Held`]; with a label, one series
/// per member.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub label: Option<&'static str>,
    /// (label value, source); the label value is empty for a family without label.
    pub members: &'static [(&'static str, Source)],
}

impl Family {
    /// A gauge family: its members are values held now, not totals.
    pub fn is_gauge(&self) -> bool {
        self.members
            .iter()
            .all(|(_, source)| matches!(source, Source::Held(_)))
    }
}

use Counter as C;
use Source::{Agent, Held, Kernel};

/// Every counter the agent exposes, in the order they are shown.
pub static FAMILIES: &[Family] = &[
    Family {
        name: "beyla_events_read",
        help: "Ring buffer records read.",
        label: None,
        members: &[("", Agent(C::EventsRead))],
    },
    Family {
        name: "beyla_spans_created",
        help: "Spans created.",
        label: None,
        members: &[("", Agent(C::SpansCreated))],
    },
    Family {
        name: "beyla_kernel_drops",
        help: "Events the kernel probes dropped, by reason.",
        label: Some("reason"),
        members: &[
            ("ringbuf_full", Kernel(KernelDrop::RingbufFull)),
            ("inflight_map_full", Kernel(KernelDrop::InflightMapFull)),
            ("connection_map_full", Kernel(KernelDrop::ConnectionMapFull)),
            (
                "tls_unknown_connection",
                Kernel(KernelDrop::TlsUnknownConnection),
            ),
        ],
    },
    Family {
        name: "beyla_events_dropped",
        help: "Events or requests dropped in user space, by pipeline stage.",
        label: Some("stage"),
        members: &[
            ("decode", Agent(C::EventsUndecodable)),
            ("untraced", Agent(C::EventsUntraced)),
            ("connection_table", Agent(C::ConnectionsDropped)),
            ("undecodable_request", Agent(C::UndecodableRequests)),
            ("export_queue", Agent(C::ExportQueueFull)),
            ("process_events", Agent(C::ProcessEventsDropped)),
        ],
    },
    Family {
        name: "beyla_parse_errors",
        help: "Malformed or unfollowable protocol messages skipped.",
        label: None,
        members: &[("", Agent(C::ParseErrors))],
    },
    Family {
        name: "beyla_connections_unsupported",
        help: "Connections whose protocol none of the parsers recognised; their bytes are ignored.",
        label: None,
        members: &[("", Agent(C::ConnectionsUnsupported))],
    },
    Family {
        name: "beyla_orphan_responses",
        help: "Responses seen without their request (the request predates tracing).",
        label: None,
        members: &[("", Agent(C::OrphanResponses))],
    },
    Family {
        name: "beyla_unanswered_requests",
        help: "Requests whose response never came (connection closed, stream reset or refused).",
        label: None,
        members: &[("", Agent(C::UnansweredRequests))],
    },
    Family {
        name: "beyla_metric_series_dropped",
        help: "Spans not recorded in a Prometheus metric because the series limit was reached.",
        label: None,
        members: &[("", Agent(C::MetricSeriesDropped))],
    },
    Family {
        name: "beyla_otlp_spans_exported",
        help: "Spans an OTLP receiver accepted.",
        label: None,
        members: &[("", Agent(C::OtlpSpansExported))],
    },
    Family {
        name: "beyla_otlp_metric_exports",
        help: "OTLP metric pushes a receiver accepted.",
        label: None,
        members: &[("", Agent(C::OtlpMetricExports))],
    },
    Family {
        name: "beyla_otlp_export_failures",
        help: "OTLP export requests that failed (each retry counts), by signal.",
        label: Some("signal"),
        members: &[
            ("traces", Agent(C::OtlpTraceExportFailures)),
            ("metrics", Agent(C::OtlpMetricExportFailures)),
        ],
    },
    Family {
        name: "beyla_otlp_spans_dropped",
        help: "Spans the OTLP exporters could not deliver or record, by reason.",
        label: Some("reason"),
        members: &[
            ("queue_full", Agent(C::OtlpSpansDroppedQueueFull)),
            ("shutdown", Agent(C::OtlpSpansDroppedShutdown)),
            ("service_limit", Agent(C::OtlpSpansDroppedServiceLimit)),
            ("rejected", Agent(C::OtlpSpansDroppedRejected)),
        ],
    },
    Family {
        name: "beyla_otlp_exports_rejected",
        help: "OTLP export requests the receiver refused with a permanent error (such as 401 or 403): dropped, not retried, by signal.",
        label: Some("signal"),
        members: &[
            ("traces", Agent(C::OtlpTraceExportsRejected)),
            ("metrics", Agent(C::OtlpMetricExportsRejected)),
        ],
    },
    Family {
        name: "beyla_scrapes_refused",
        help: "Connections to the metrics endpoint answered with nothing, by reason.",
        label: Some("reason"),
        members: &[
            ("busy", Agent(C::ScrapesRefusedBusy)),
            ("idle", Agent(C::ScrapesRefusedIdle)),
            ("timeout", Agent(C::ScrapesRefusedTimeout)),
            ("bad_request", Agent(C::ScrapesRefusedBadRequest)),
            ("accept_error", Agent(C::ScrapesRefusedAccept)),
        ],
    },
    Family {
        name: "beyla_probe_attach_failures",
        help: "Processes a feature's probes could not be attached to (the kernel refused), by feature.",
        label: Some("feature"),
        members: &[
            ("openssl", Agent(C::ProbeAttachFailuresOpenssl)),
            ("go_tls", Agent(C::ProbeAttachFailuresGoTls)),
        ],
    },
    Family {
        name: "beyla_config_settings_ignored",
        help: "Beyla's configuration keys and variables given but not supported yet (each warned about at start-up).",
        label: None,
        members: &[("", Agent(C::ConfigSettingsIgnored))],
    },
    Family {
        name: "beyla_same_node_joins",
        help: "Server spans joined to the trace of a traced client on this machine, by when: as the request began, or after it had begun a trace of its own.",
        label: Some("when"),
        members: &[
            ("at_start", Agent(C::SameNodeJoined)),
            ("late", Agent(C::SameNodeJoinedLate)),
        ],
    },
    Family {
        name: "beyla_same_node_starts_dropped",
        help: "Request starts the same-node join could not keep, by reason.",
        label: Some("reason"),
        members: &[
            ("table_full", Agent(C::SameNodeTableFull)),
            ("expired", Agent(C::SameNodeExpired)),
        ],
    },
    Family {
        name: "beyla_kubernetes_watch_failures",
        help: "Errors the watch of the Kubernetes API server got (each retry counts, a 410 Gone too), by resource.",
        label: Some("resource"),
        members: &[
            ("pods", Agent(C::KubernetesWatchFailuresPods)),
            ("replicasets", Agent(C::KubernetesWatchFailuresReplicaSets)),
        ],
    },
    Family {
        name: "beyla_kubernetes_watch_restarts",
        help: "Times the watch of the Kubernetes API server started over with a full list (after a 410 Gone or an error it could not resume from), by resource.",
        label: Some("resource"),
        members: &[
            ("pods", Agent(C::KubernetesWatchRestartsPods)),
            ("replicasets", Agent(C::KubernetesWatchRestartsReplicaSets)),
        ],
    },
    Family {
        name: "beyla_kubernetes_objects",
        help: "Kubernetes objects the metadata store holds: this node's pods, and the ReplicaSets that a Deployment owns.",
        label: Some("resource"),
        members: &[
            ("pods", Held(Gauge::KubernetesPods)),
            ("replicasets", Held(Gauge::KubernetesReplicaSets)),
        ],
    },
    Family {
        name: "beyla_context_propagation_requests",
        help: "HTTP/1 requests of traced clients looked at for a traceparent header (ebpf.context_propagation), by outcome: injected, or left alone because they had one, their head was not whole in one write, or the kernel refused the room.",
        label: Some("outcome"),
        members: &[
            ("injected", Kernel(KernelDrop::PropagationInjected)),
            ("had_context", Kernel(KernelDrop::PropagationHadContext)),
            (
                "head_incomplete",
                Kernel(KernelDrop::PropagationHeadIncomplete),
            ),
            ("push_failed", Kernel(KernelDrop::PropagationPushFailed)),
        ],
    },
    Family {
        name: "beyla_context_propagation_ids_dropped",
        help: "Ids the kernel gave a request that the agent had no room to keep until the request's span (the span gets ids of its own).",
        label: None,
        members: &[("", Agent(C::PropagationContextsDropped))],
    },
];

/// The user-space counters and gauges; relaxed atomics, as only the latest
/// values matter.
#[derive(Debug)]
pub struct SelfMetrics {
    values: [AtomicU64; COUNTERS],
    gauges: [AtomicU64; GAUGES],
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            gauges: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SelfMetrics {
    pub fn inc(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.values[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize].load(Ordering::Relaxed)
    }

    pub fn set(&self, gauge: Gauge, value: u64) {
        self.gauges[gauge as usize].store(value, Ordering::Relaxed);
    }

    pub fn held(&self, gauge: Gauge) -> u64 {
        self.gauges[gauge as usize].load(Ordering::Relaxed)
    }

    /// Counts what a protocol could not make sense of.
    pub fn anomaly(&self, anomaly: Anomaly) {
        self.inc(match anomaly {
            Anomaly::Invalid(_) | Anomaly::Lost { .. } => C::ParseErrors,
            Anomaly::OrphanResponse => C::OrphanResponses,
            Anomaly::Unanswered(_) => C::UnansweredRequests,
            Anomaly::Undecodable => C::UndecodableRequests,
        });
    }
}

/// What the kernel probes dropped, by reason, summed over CPUs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelDropCounts([u64; KernelDrop::ALL.len()]);

impl KernelDropCounts {
    /// The counts, one per reason, read by `count`.
    pub fn read(mut count: impl FnMut(KernelDrop) -> u64) -> Self {
        Self(KernelDrop::ALL.map(&mut count))
    }

    pub fn get(&self, drop: KernelDrop) -> u64 {
        self.0[drop as usize]
    }
}

/// Every family with its current values, kernel drops included.
pub fn values<'a>(
    metrics: &'a SelfMetrics,
    kernel: &'a KernelDropCounts,
) -> impl Iterator<
    Item = (
        &'static Family,
        impl Iterator<Item = (&'static str, u64)> + 'a,
    ),
> + 'a {
    FAMILIES.iter().map(move |family| {
        let members = family.members.iter().map(move |&(label, source)| {
            let value = match source {
                Agent(counter) => metrics.get(counter),
                Kernel(drop) => kernel.get(drop),
                Held(gauge) => metrics.held(gauge),
            };
            (label, value)
        });
        (family, members)
    })
}

/// Every counter in one line, for the log at exit:
/// `events_read=N ... kernel_drops(ringbuf_full=N ...) ...`.
pub struct Summary<'a>(pub &'a SelfMetrics, pub KernelDropCounts);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (family, members) in values(self.0, &self.1) {
            let short = family.name.trim_start_matches("beyla_");
            f.write_str(sep)?;
            sep = " ";
            match family.label {
                None => {
                    let total: u64 = members.map(|(_, v)| v).sum();
                    write!(f, "{short}={total}")?;
                }
                Some(_) => {
                    write!(f, "{short}(")?;
                    let mut inner = "";
                    for (label, value) in members {
                        write!(f, "{inner}{label}={value}")?;
                        inner = " ";
                    }
                    f.write_str(")")?;
                }
            }
        }
        Ok(())
    }
}
