//! Route templates, compiled once into segment lists and matched against
//! request paths without allocating.
//!
//! Syntax (the same for `patterns` and `ignored_patterns`):
//! - a pattern starts with `/`; one trailing `/` is ignored;
//! - `{name}` or `:name` is a whole segment matching any non-empty segment;
//! - `*` is a whole segment matching any non-empty segment, except as the last
//!   segment, where it matches any rest (like `**`);
//! - `**` as the last segment matches any rest, including nothing
//!   (`/static/**` matches `/static`, `/static/` and `/static/a/b`);
//! - `abc*` as the last segment matches any rest that starts with `abc`
//!   (`/api*` matches `/api`, `/apiv2` and `/api/x`);
//! - anything else is a literal segment, compared byte for byte.

use std::fmt;

/// A route pattern that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as the user wrote it.
    pub pattern: String,
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid route pattern {:?}: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Equal bytes.
    Literal(Box<str>),
    /// Any non-empty segment: `{x}`, `:x`, or an inner `*`.
    Any,
    /// Last segment only: the rest of the path (possibly nothing) starts with
    /// this prefix.
    Rest(Box<str>),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    segments: Box<[Segment]>,
}

impl Pattern {
    pub(super) fn compile(pattern: &str) -> Result<Self, PatternError> {
        let error = |reason: &str| PatternError {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(error("must start with '/'"));
        };
        let body = body.strip_suffix('/').unwrap_or(body);
        if body.is_empty() {
            return Ok(Self {
                segments: Box::new([]),
            });
        }
        let count = body.split('/').count();
        let mut segments = Vec::with_capacity(count);
        for (i, text) in body.split('/').enumerate() {
            let last = i + 1 == count;
            segments.push(compile_segment(text, last).map_err(error)?);
        }
        Ok(Self {
            segments: segments.into_boxed_slice(),
        })
    }

    /// Whether `path` (no query string) matches. One trailing `/` of the path
    /// is ignored, so `/user/1/` matches `/user/{id}`; a path that does not
    /// start with `/` never matches.
    pub(super) fn matches(&self, path: &str) -> bool {
        let Some(body) = path.strip_prefix('/') else {
            return false;
        };
        let body = body.strip_suffix('/').unwrap_or(body);
        // `None` once every segment of the path has been consumed.
        let mut rest = if body.is_empty() { None } else { Some(body) };
        for segment in self.segments.iter() {
            if let Segment::Rest(prefix) = segment {
                return rest.unwrap_or("").starts_with(&**prefix);
            }
            let Some(remaining) = rest else {
                return false;
            };
            let (value, after) = match remaining.split_once('/') {
                Some((value, after)) => (value, Some(after)),
                None => (remaining, None),
            };
            let ok = match segment {
                Segment::Literal(literal) => **literal == *value,
                Segment::Any => !value.is_empty(),
                Segment::Rest(_) => unreachable!("handled above"),
            };
            if !ok {
                return false;
            }
            rest = after;
        }
        rest.is_none()
    }
}

fn compile_segment(text: &str, last: bool) -> Result<Segment, &'static str> {
    if let Some(inner) = text.strip_prefix('{') {
        let Some(end) = inner.find('}') else {
            return Err("unclosed '{'");
        };
        if end + 1 != inner.len() {
            return Err("unexpected text after '}'");
        }
        return param_name(&inner[..end]);
    }
    if let Some(name) = text.strip_prefix(':') {
        return param_name(name);
    }
    match text {
        "*" | "**" if last => return Ok(Segment::Rest("".into())),
        "*" => return Ok(Segment::Any),
        "**" => return Err("'**' must be the last segment"),
        _ => {}
    }
    let (literal, rest) = match text.strip_suffix('*') {
        Some(prefix) if last => (prefix.trim_end_matches('*'), true),
        _ => (text, false),
    };
    if literal.contains('{') {
        return Err("'{' must start a segment");
    }
    if literal.contains('}') {
        return Err("unmatched '}'");
    }
    if literal.contains('*') {
        return Err("'*' must be a whole segment or the pattern's last character");
    }
    Ok(if rest {
        Segment::Rest(literal.into())
    } else {
        Segment::Literal(literal.into())
    })
}

fn param_name(name: &str) -> Result<Segment, &'static str> {
    if name.is_empty() {
        Err("empty parameter name")
    } else if name.contains(['{', '}']) {
        Err("unexpected brace in parameter name")
    } else {
        Ok(Segment::Any)
    }
}
