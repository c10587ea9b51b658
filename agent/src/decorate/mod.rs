//! Requests to spans: route, wall-clock times. Service identity was attached
//! by discovery when the connection was first seen.

mod routes;

use crate::model::{HttpRequest, Span};
use crate::trace::WallClock;

pub use routes::heuristic_route;

pub struct Decorator {
    clock: WallClock,
}

impl Decorator {
    pub fn new(clock: WallClock) -> Self {
        Self { clock }
    }

    pub fn decorate(&self, request: HttpRequest) -> Span {
        Span {
            route: heuristic_route(&request.path),
            start_unix_ns: self.clock.to_unix_ns(request.start_mono_ns),
            end_unix_ns: self.clock.to_unix_ns(request.end_mono_ns),
            request,
        }
    }
}
