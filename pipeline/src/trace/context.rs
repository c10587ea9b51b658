//! W3C Trace Context: the `traceparent` header of an incoming request.

use crate::model::{SpanId, TraceContext, TraceId};

/// The caller's span, as its `traceparent` header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// The span a new span is a child of, in this process or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The parent's sampled flag when it is known (a `traceparent` carries
    /// one); else the sampler decides from the trace id, as it did for the parent.
    pub sampled: Option<bool>,
}

impl From<RemoteParent> for Parent {
    fn from(remote: RemoteParent) -> Self {
        Self {
            trace_id: remote.trace_id,
            span_id: remote.span_id,
            sampled: Some(remote.sampled),
        }
    }
}

impl Parent {
    /// The parent of a child of the span with `context`: the child inherits
    /// the span's own inherited flag, which reproduces the span's decision.
    pub fn of(context: &TraceContext) -> Self {
        Self {
            trace_id: context.trace_id,
            span_id: context.span_id,
            sampled: context.parent_sampled,
        }
    }
}

/// Parses `version-traceid-parentid-flags`. Version `ff` is invalid; later
/// versions are read as version 00 and may carry more fields after the flags.
pub fn parse_traceparent(value: &str) -> Option<RemoteParent> {
    let value = value.trim();
    let mut parts = value.splitn(5, '-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    if version.len() != 2 || version.eq_ignore_ascii_case("ff") || flags.len() != 2 {
        return None;
    }
    let version = u8::from_str_radix(version, 16).ok()?;
    if version == 0 && rest.is_some() {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(RemoteParent {
        trace_id: TraceId::from_hex(trace)?,
        span_id: SpanId::from_hex(span)?,
        sampled: flags & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_headers() {
        let p =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(p.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id.to_string(), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert!(
            !parse_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ")
                .unwrap()
                .sampled
        );
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
                .is_some()
        );
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
    }
}
