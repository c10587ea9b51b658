//! Beyla's `filter.application`: a span (with what it adds to metrics) is
//! kept only when every rule holds for its attribute. A rule compares the
//! attribute's value, as exported, with a glob (`match`, or `not_match` for
//! the opposite) or with integers (`equals`, `greater_than`, ...); a span
//! without the attribute has the empty value, as in Beyla.

use regex::Regex;

use crate::model::Span;
use crate::semconv::{self, attributes as attr};

/// The attributes a rule may name: every span attribute and the resource's
/// service name and namespace.
pub const FILTERABLE: &[&str] = &[
    attr::HTTP_REQUEST_METHOD,
    attr::URL_PATH,
    attr::HTTP_ROUTE,
    attr::HTTP_RESPONSE_STATUS_CODE,
    attr::SERVER_ADDRESS,
    attr::SERVER_PORT,
    attr::CLIENT_ADDRESS,
    attr::RPC_SYSTEM,
    attr::RPC_SERVICE,
    attr::RPC_METHOD,
    attr::RPC_GRPC_STATUS_CODE,
    attr::SERVICE_NAME,
    attr::SERVICE_NAMESPACE,
];

/// The attribute named as Beyla accepts it, in OpenTelemetry form
/// (`http.route`) or Prometheus form (`http_route`).
pub fn filterable(name: &str) -> Option<&'static str> {
    FILTERABLE
        .iter()
        .copied()
        .find(|known| *known == name || attr::prometheus_name(known) == name)
}

/// What a rule checks of the value.
#[derive(Debug, Clone)]
pub enum Test {
    /// The whole value matches the (anchored) pattern, compiled from the
    /// glob as written; `negate` for `not_match`.
    Glob {
        glob: String,
        pattern: Regex,
        negate: bool,
    },
    /// The value is an integer within every bound given.
    Integer(Bounds),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    pub equals: Option<i64>,
    pub not_equals: Option<i64>,
    pub greater_than: Option<i64>,
    pub greater_equals: Option<i64>,
    pub less_than: Option<i64>,
    pub less_equals: Option<i64>,
}

impl Bounds {
    fn holds(&self, value: i64) -> bool {
        self.equals.is_none_or(|b| value == b)
            && self.not_equals.is_none_or(|b| value != b)
            && self.greater_than.is_none_or(|b| value > b)
            && self.greater_equals.is_none_or(|b| value >= b)
            && self.less_than.is_none_or(|b| value < b)
            && self.less_equals.is_none_or(|b| value <= b)
    }
}

/// One rule: an attribute ([`FILTERABLE`]) and its test.
#[derive(Debug, Clone)]
pub struct Rule {
    pub attribute: &'static str,
    pub test: Test,
}

/// Every rule of `filter.application`; none keeps everything.
#[derive(Debug, Clone, Default)]
pub struct AttributeFilter {
    pub rules: Vec<Rule>,
}

impl AttributeFilter {
    pub fn keeps(&self, span: &Span) -> bool {
        self.rules.iter().all(|rule| {
            let mut text = String::new();
            value_of(span, rule.attribute, &mut text);
            match &rule.test {
                Test::Glob {
                    pattern, negate, ..
                } => pattern.is_match(&text) != *negate,
                Test::Integer(bounds) => text.parse().is_ok_and(|v| bounds.holds(v)),
            }
        })
    }
}

/// Writes the attribute's value as exported into `out` (nothing when absent).
fn value_of(span: &Span, attribute: &'static str, out: &mut String) {
    use std::fmt::Write;
    let resource = &span.request.resource;
    match attribute {
        attr::SERVICE_NAME => out.push_str(&resource.service_name),
        attr::SERVICE_NAMESPACE => out.push_str(&resource.service_namespace),
        _ => semconv::span_attributes(span, |name, value| {
            if name == attribute {
                let _ = write!(out, "{value}");
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn glob(attribute: &'static str, pattern: &str, negate: bool) -> Rule {
        Rule {
            attribute,
            test: Test::Glob {
                glob: String::new(),
                pattern: Regex::new(pattern).unwrap(),
                negate,
            },
        }
    }

    #[test]
    fn every_rule_must_hold() {
        // The fixture: GET /users/42, route /users/*, status 200, service svc.
        let span = fixtures::span();
        let keeps = |rules: Vec<Rule>| AttributeFilter { rules }.keeps(&span);
        assert!(keeps(vec![]));
        assert!(keeps(vec![glob(attr::URL_PATH, "^/users/.*$", false)]));
        assert!(!keeps(vec![glob(attr::URL_PATH, "^/users/.*$", true)]));
        assert!(keeps(vec![
            glob(attr::HTTP_REQUEST_METHOD, "^(?:GET|HEAD)$", false),
            glob(attr::SERVICE_NAME, "^svc$", false),
        ]));
        assert!(!keeps(vec![
            glob(attr::HTTP_REQUEST_METHOD, "^GET$", false),
            glob(attr::SERVICE_NAME, "^other$", false),
        ]));
        let status = |bounds: Bounds| Rule {
            attribute: attr::HTTP_RESPONSE_STATUS_CODE,
            test: Test::Integer(bounds),
        };
        assert!(keeps(vec![status(Bounds {
            less_than: Some(400),
            ..Bounds::default()
        })]));
        assert!(!keeps(vec![status(Bounds {
            greater_equals: Some(500),
            ..Bounds::default()
        })]));
        // An attribute the span lacks is empty: not an integer, and matches only `^$`.
        let rpc = |test| Rule {
            attribute: attr::RPC_METHOD,
            test,
        };
        assert!(!keeps(vec![rpc(Test::Integer(Bounds::default()))]));
        assert!(keeps(vec![glob(attr::RPC_METHOD, "^$", false)]));
    }

    #[test]
    fn names_in_either_form() {
        assert_eq!(filterable("http.route"), Some(attr::HTTP_ROUTE));
        assert_eq!(filterable("http_route"), Some(attr::HTTP_ROUTE));
        assert_eq!(filterable("k8s.namespace.name"), None);
    }
}
