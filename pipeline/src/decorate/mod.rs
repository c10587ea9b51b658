//! Requests to spans: the route of an HTTP request and whether the span goes
//! to traces and to metrics (routes decorator, then `filter.application`),
//! and wall-clock times. Service identity was
//! attached by discovery when the connection was first seen.

pub mod filter;
mod own_telemetry;
mod routes;

use crate::model::{Operation, Request, Span};
use crate::trace::WallClock;
use filter::AttributeFilter;
pub use own_telemetry::OwnTelemetry;

pub use routes::{IgnoreMode, Routes, RoutesSettings, Unmatched, DEFAULT_MAX_SEGMENT_CARDINALITY};

/// A span and the signals the routes decorator lets it reach.
pub struct Decorated {
    pub span: Span,
    pub to_traces: bool,
    pub to_metrics: bool,
}

pub struct Decorator {
    clock: WallClock,
    routes: Routes,
    filter: AttributeFilter,
    own_telemetry: OwnTelemetry,
}

impl Decorator {
    pub fn new(clock: WallClock, routes: Routes) -> Self {
        Self {
            clock,
            routes,
            filter: AttributeFilter::default(),
            own_telemetry: OwnTelemetry::default(),
        }
    }

    /// Processes exporting their own telemetry are not exported again
    /// (Beyla's `exclude_otel_instrumented_services`).
    pub fn with_own_telemetry(self, own_telemetry: OwnTelemetry) -> Self {
        Self {
            own_telemetry,
            ..self
        }
    }

    /// Spans `filter.application` rejects reach neither traces nor metrics.
    pub fn with_filter(self, filter: AttributeFilter) -> Self {
        Self { filter, ..self }
    }

    /// Routes apply to HTTP requests only; every other operation reaches both signals.
    pub fn decorate(&mut self, request: Request) -> Decorated {
        let (route, to_traces, to_metrics) = match &request.operation {
            Operation::Http(http) => {
                let decision = self.routes.decide(&http.path);
                (decision.route, decision.traces, decision.metrics)
            }
            Operation::Rpc(_) | Operation::Redis(_) | Operation::Kafka(_) | Operation::Sql(_) => {
                (None, true, true)
            }
        };
        let span = Span {
            route,
            start_unix_ns: self.clock.to_unix_ns(request.start_mono_ns),
            end_unix_ns: self.clock.to_unix_ns(request.end_mono_ns),
            request,
        };
        let kept = (to_traces || to_metrics) && self.filter.keeps(&span);
        let (traces, metrics) = self.own_telemetry.decide(&span);
        Decorated {
            span,
            to_traces: to_traces && kept && traces,
            to_metrics: to_metrics && kept && metrics,
        }
    }
}
