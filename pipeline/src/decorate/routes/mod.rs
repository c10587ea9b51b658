//! `http.route` for each request, Beyla's `routes` section: user route
//! patterns (first match wins), ignored patterns that drop a request from
//! traces and/or metrics, and what to do with paths no pattern matched —
//! by default the `heuristic` mode, which replaces path segments that look
//! like identifiers with `*`.

mod bigrams;
mod cardinality;
mod heuristic;
mod pattern;
#[cfg(test)]
mod tests;

pub use pattern::PatternError;

use cardinality::LowCardinality;
use heuristic::push_heuristic_route;
use pattern::Pattern;

use crate::model::ShortString;

const WILDCARD: &str = "*";
/// The route of every unmatched path in `wildcard` mode.
pub const WILDCARD_ROUTE: &str = "/**";
/// Default of `max_path_segment_cardinality`.
pub const DEFAULT_MAX_SEGMENT_CARDINALITY: usize = 10;
/// What `http.route` becomes when no pattern matched (`unmatched`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// [`push_heuristic_route`] and the wildcard char.
    #[default]
    Heuristic,
    /// The path itself (unbounded cardinality).
    Path,
    /// [`WILDCARD_ROUTE`].
    Wildcard,
    /// Per position, the first `max_segment_cardinality` distinct values keep
    /// their name, later ones become the wildcard char.
    LowCardinality { max_segment_cardinality: usize },
    /// No route.
    Unset,
}

/// Which signals a request matching an ignored pattern is dropped from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IgnoreMode {
    Traces,
    Metrics,
    #[default]
    All,
}

/// The `routes` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesSettings {
    pub patterns: Vec<String>,
    pub ignored_patterns: Vec<String>,
    pub ignore_mode: IgnoreMode,
    pub unmatched: Unmatched,
    pub wildcard_char: String,
}

impl Default for RoutesSettings {
    fn default() -> Self {
        Self {
            patterns: Vec::new(),
            ignored_patterns: Vec::new(),
            ignore_mode: IgnoreMode::All,
            unmatched: Unmatched::Heuristic,
            wildcard_char: WILDCARD.to_owned(),
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    /// `http.route`; `None` in `unset` mode, and for requests dropped from
    /// both traces and metrics (their route is not computed).
    pub route: Option<ShortString>,
    /// The request goes to traces.
    pub traces: bool,
    /// The request goes to metrics.
    pub metrics: bool,
}

#[derive(Debug)]
enum UnmatchedState {
    Heuristic,
    Path,
    Wildcard,
    LowCardinality(LowCardinality),
    Unset,
}

/// The compiled `routes` section; [`Routes::decide`] runs once per request.
#[derive(Debug)]
pub struct Routes {
    /// Compiled, and as the user wrote it (the route).
    patterns: Vec<(Pattern, ShortString)>,
    ignored: Vec<Pattern>,
    ignore_mode: IgnoreMode,
    unmatched: UnmatchedState,
    wildcard: String,
    /// Where computed routes are built; reused so a route costs no allocation.
    scratch: String,
}

impl Routes {
    /// Compiles every pattern; the first bad one (patterns before ignored
    /// patterns, in order) is the error.
    pub fn new(settings: RoutesSettings) -> Result<Routes, PatternError> {
        let patterns = settings
            .patterns
            .into_iter()
            .map(|written| Ok((Pattern::compile(&written)?, ShortString::from(written))))
            .collect::<Result<_, PatternError>>()?;
        let ignored = settings
            .ignored_patterns
            .iter()
            .map(|written| Pattern::compile(written))
            .collect::<Result<_, _>>()?;
        let unmatched = match settings.unmatched {
            Unmatched::Heuristic => UnmatchedState::Heuristic,
            Unmatched::Path => UnmatchedState::Path,
            Unmatched::Wildcard => UnmatchedState::Wildcard,
            Unmatched::LowCardinality {
                max_segment_cardinality,
            } => UnmatchedState::LowCardinality(LowCardinality::new(max_segment_cardinality)),
            Unmatched::Unset => UnmatchedState::Unset,
        };
        Ok(Routes {
            patterns,
            ignored,
            ignore_mode: settings.ignore_mode,
            unmatched,
            wildcard: settings.wildcard_char,
            scratch: String::new(),
        })
    }

    /// The route for a path, and whether the request goes to traces / to metrics.
    pub fn decide(&mut self, path: &str) -> RouteDecision {
        let (traces, metrics) = if self.ignored.iter().any(|p| p.matches(path)) {
            match self.ignore_mode {
                IgnoreMode::Traces => (false, true),
                IgnoreMode::Metrics => (true, false),
                IgnoreMode::All => (false, false),
            }
        } else {
            (true, true)
        };
        let route = if traces || metrics {
            self.route(path)
        } else {
            None
        };
        RouteDecision {
            route,
            traces,
            metrics,
        }
    }

    fn route(&mut self, path: &str) -> Option<ShortString> {
        if let Some((_, written)) = self.patterns.iter().find(|(p, _)| p.matches(path)) {
            return Some(written.clone());
        }
        let out = &mut self.scratch;
        out.clear();
        match &mut self.unmatched {
            UnmatchedState::Heuristic => push_heuristic_route(path, &self.wildcard, out),
            UnmatchedState::Path => return Some(ShortString::from(path)),
            UnmatchedState::Wildcard => return Some(ShortString::from(WILDCARD_ROUTE)),
            UnmatchedState::LowCardinality(tree) => {
                if tree.route(path, &self.wildcard, out).is_none() {
                    out.clear();
                    push_heuristic_route(path, &self.wildcard, out);
                }
            }
            UnmatchedState::Unset => return None,
        }
        Some(ShortString::from(out.as_str()))
    }
}
