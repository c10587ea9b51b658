//! Requests to spans: the route and whether the span goes to traces and to
//! metrics (routes decorator), and wall-clock times. Service identity was
//! attached by discovery when the connection was first seen.

mod routes;

use crate::model::{HttpRequest, Span};
use crate::trace::WallClock;

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
}

impl Decorator {
    pub fn new(clock: WallClock, routes: Routes) -> Self {
        Self { clock, routes }
    }

    pub fn decorate(&mut self, request: HttpRequest) -> Decorated {
        let decision = self.routes.decide(&request.path);
        Decorated {
            span: Span {
                route: decision.route,
                start_unix_ns: self.clock.to_unix_ns(request.start_mono_ns),
                end_unix_ns: self.clock.to_unix_ns(request.end_mono_ns),
                request,
            },
            to_traces: decision.traces,
            to_metrics: decision.metrics,
        }
    }
}
