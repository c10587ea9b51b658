//! Value parsers shared by all sources: a file scalar, a variable and a flag go
//! through the same function, so all three accept the same text and are
//! refused with the same explanation.

use std::ops::RangeInclusive;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use super::error::{ConfigError, Origin};
use beyla_pipeline::export::otlp;
use beyla_pipeline::export::select::{self, Instrumentations};

use super::{OtlpProtocol, PortSet, Raw};

impl Raw {
    /// The value as text: strings as written, numbers and booleans as YAML/TOML print them.
    pub fn text(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn invalid(&self, expected: impl Into<String>) -> ConfigError {
        self.invalid_text(self.text(), expected)
    }

    fn invalid_text(&self, value: String, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            value,
            expected: expected.into(),
        }
    }

    /// The items of a list, each with its own key path (`routes.patterns[1]`).
    fn items(&self) -> Vec<Raw> {
        match (&self.value, &self.origin) {
            (Value::Array(items), Origin::File { file, key }) => items
                .iter()
                .enumerate()
                .map(|(i, value)| Raw {
                    value: value.clone(),
                    origin: Origin::File {
                        file: file.clone(),
                        key: format!("{key}[{i}]"),
                    },
                })
                .collect(),
            _ => vec![self.clone()],
        }
    }
}

pub fn ports(raw: &Raw) -> Result<PortSet, ConfigError> {
    PortSet::parse(&raw.text()).map_err(|e| raw.invalid(e))
}

pub fn regex(raw: &Raw) -> Result<Regex, ConfigError> {
    let text = raw.text();
    Regex::new(&text).map_err(|e| {
        raw.invalid(format!(
            "a regular expression ({})",
            e.to_string().lines().last().unwrap_or("").trim()
        ))
    })
}

/// Beyla's `instrument` entries match executables with globs; they are turned
/// into anchored regexes so that discovery has one kind of matcher.
pub fn glob(raw: &Raw) -> Result<Regex, ConfigError> {
    let text = raw.text();
    let bad =
        || raw.invalid("a glob such as /usr/bin/* or *node* (with *, ?, [abc], [!abc], {a,b})");
    let mut re = String::from("^");
    let mut chars = text.chars();
    let mut in_braces = false;
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                re.push('[');
                let mut closed = false;
                let mut first = true;
                for c in chars.by_ref() {
                    match c {
                        ']' if !first => {
                            closed = true;
                            break;
                        }
                        '!' if first => re.push('^'),
                        '\\' | '[' | ']' | '&' | '~' => {
                            re.push('\\');
                            re.push(c);
                        }
                        c => re.push(c),
                    }
                    first = false;
                }
                if !closed {
                    return Err(bad());
                }
                re.push(']');
            }
            '{' if !in_braces => {
                in_braces = true;
                re.push_str("(?:");
            }
            ',' if in_braces => re.push('|'),
            '}' if in_braces => {
                in_braces = false;
                re.push(')');
            }
            '\\' => match chars.next() {
                Some(escaped) => re.push_str(&regex::escape(&escaped.to_string())),
                None => return Err(bad()),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_braces {
        return Err(bad());
    }
    re.push('$');
    Regex::new(&re).map_err(|_| bad())
}

pub fn boolean(raw: &Raw) -> Result<bool, ConfigError> {
    match raw.text().trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(raw.invalid("true or false")),
    }
}

pub fn integer(raw: &Raw, range: RangeInclusive<u64>, expected: &str) -> Result<u64, ConfigError> {
    match raw.text().trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(raw.invalid(expected)),
    }
}

/// Picks a named choice, ignoring case.
pub fn one_of<T: Copy>(raw: &Raw, choices: &[(&str, T)], expected: &str) -> Result<T, ConfigError> {
    let text = raw.text();
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        .map(|&(_, value)| value)
        .ok_or_else(|| raw.invalid(expected))
}

const DURATION: &str = "a duration such as 10s, 500ms, 1m30s or 1h (units ns, us, ms, s, m, h)";

/// Go-style durations, as Beyla writes them: `10s`, `500ms`, `1m30s`, `1.5h`.
pub fn duration(raw: &Raw) -> Result<Duration, ConfigError> {
    let text = raw.text();
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(raw.invalid(DURATION));
    }
    let mut nanos: u64 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(raw.invalid(DURATION)),
        };
        let value: f64 = number.parse().map_err(|_| raw.invalid(DURATION))?;
        let part = (value * scale).round();
        if !part.is_finite() || part > u64::MAX as f64 {
            return Err(raw.invalid(DURATION));
        }
        nanos = nanos
            .checked_add(part as u64)
            .ok_or_else(|| raw.invalid(DURATION))?;
        rest = next;
    }
    Ok(Duration::from_nanos(nanos))
}

/// The shortest exact form that [`duration`] reads back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// A sampling ratio: the fraction of traces kept. A number outside 0 to 1 is
/// brought within, as Beyla's sampler does (1.5 keeps every trace).
pub fn ratio(raw: &Raw) -> Result<f64, ConfigError> {
    match raw.text().trim().parse::<f64>() {
        Ok(r) if r.is_finite() => Ok(r.clamp(0.0, 1.0)),
        _ => Err(raw.invalid("a number, such as 0.1 (0 to 1; beyond, the nearest)")),
    }
}

/// Checks an OTLP endpoint by the exporter's own rule, so that what is
/// accepted here is what the exporter starts with.
pub fn endpoint(raw: &Raw, protocol: OtlpProtocol) -> Result<String, ConfigError> {
    let text = raw.text().trim().to_string();
    let expected = match protocol {
        OtlpProtocol::Grpc => {
            "an http:// or https:// URL with a host, such as http://tempo:4317, or host:port, such as tempo:4317"
        }
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
            "an http:// or https:// URL with a host, such as http://tempo:4318 (host:port is only for protocol grpc)"
        }
    };
    match otlp::check_endpoint(&text, protocol) {
        Ok(()) => Ok(text),
        Err(reason) => Err(raw.invalid(format!("{expected}; {reason}"))),
    }
}

const HEADERS: &str =
    "name=value pairs separated by commas, such as Authorization=Basic%20abc,X-Scope-OrgID=1";

/// OTLP headers: a map in a file, or `k=v,k2=v2` with %-encoded values
/// (the OpenTelemetry form) anywhere. An error never shows a value, nor an
/// item it cannot split into a name and a value: either may be a credential
/// (`Authorization: Bearer ...` written with a colon); it names the header,
/// or the item's place and length.
pub fn headers(raw: &Raw) -> Result<Vec<(String, String)>, ConfigError> {
    let name_ok = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, ':' | '=' | ','))
    };
    if let Value::Object(map) = &raw.value {
        return map
            .iter()
            .map(|(name, value)| {
                let value = Raw {
                    value: value.clone(),
                    origin: raw.origin.clone(),
                };
                if name_ok(name) {
                    Ok((name.clone(), value.text()))
                } else {
                    Err(raw.invalid_text(name.clone(), "header names without spaces, ':' or '='"))
                }
            })
            .collect();
    }
    let text = raw.text();
    let items: Vec<&str> = text.split(',').collect();
    let mut pairs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let hidden = |shown: String| raw.invalid_text(shown, HEADERS);
        match item.split_once('=') {
            Some((name, value)) if name_ok(name.trim()) => {
                let name = name.trim();
                let value = percent_decode(value.trim()).ok_or_else(|| {
                    raw.invalid_text(
                        format!(
                            "{name}=(value not shown, {} characters)",
                            value.trim().chars().count()
                        ),
                        format!(
                            "{HEADERS}; the value of {name} has a % not followed by two hex digits"
                        ),
                    )
                })?;
                pairs.push((name.to_string(), value));
            }
            _ => {
                return Err(hidden(format!(
                    "(item {} of {} not shown: {} characters that are not name=value)",
                    i + 1,
                    items.len(),
                    item.trim().chars().count()
                )))
            }
        }
    }
    Ok(pairs)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An HTTP path such as `/metrics`.
pub fn url_path(raw: &Raw) -> Result<String, ConfigError> {
    let text = raw.text().trim().to_string();
    if text.starts_with('/') && !text.contains(char::is_whitespace) {
        Ok(text)
    } else {
        Err(raw.invalid("a path starting with /, such as /metrics"))
    }
}

/// Route patterns: paths with `{name}` or `:name` segments.
pub fn patterns(raw: &Raw) -> Result<Vec<String>, ConfigError> {
    raw.items()
        .iter()
        .map(|item| {
            url_path(item)
                .map_err(|_| item.invalid("a path pattern starting with /, such as /users/{id}"))
        })
        .collect()
}

pub fn single_char(raw: &Raw) -> Result<char, ConfigError> {
    let text = raw.text();
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c != '/' && !c.is_whitespace() => Ok(c),
        _ => Err(raw.invalid("one character other than / or a space, such as *")),
    }
}

/// `k=v,k2=v2` lists such as OTEL_RESOURCE_ATTRIBUTES.
pub fn attributes(raw: &Raw) -> Result<Vec<(String, String)>, ConfigError> {
    headers(raw).map_err(|_| {
        raw.invalid(
            "key=value pairs separated by commas, such as deployment.environment=prod,team=web",
        )
    })
}

/// A list of names from a list in a file or a comma-separated variable, each
/// one of `known`.
pub fn names(raw: &Raw, known: &[&str], expected: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for item in raw.items() {
        for name in item
            .text()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if !known.contains(&name) {
                return Err(item.invalid_text(
                    name.to_string(),
                    format!("{expected}; known: {}", known.join(", ")),
                ));
            }
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// Beyla's `instrumentations`: which operations an exporter takes.
pub fn instrumentations(raw: &Raw) -> Result<Instrumentations, ConfigError> {
    let names = names(
        raw,
        select::KNOWN,
        "instrumentation names, such as [http, grpc] or *",
    )?;
    Ok(Instrumentations::from_names(
        names.iter().map(String::as_str),
    ))
}

/// A map of names to patterns (`k8s_pod_labels`): each value a glob or a
/// regular expression, as the entry's other patterns.
pub fn pattern_map(raw: &Raw, glob_patterns: bool) -> Result<Vec<(String, Regex)>, ConfigError> {
    let pairs: Vec<(String, Raw)> = match (&raw.value, &raw.origin) {
        (Value::Object(map), Origin::File { file, key }) => map
            .iter()
            .map(|(name, value)| {
                let origin = Origin::File {
                    file: file.clone(),
                    key: format!("{key}.{name}"),
                };
                (
                    name.clone(),
                    Raw {
                        value: value.clone(),
                        origin,
                    },
                )
            })
            .collect(),
        _ => attributes(raw)?
            .into_iter()
            .map(|(name, value)| {
                let origin = raw.origin.clone();
                (
                    name,
                    Raw {
                        value: Value::String(value),
                        origin,
                    },
                )
            })
            .collect(),
    };
    pairs
        .into_iter()
        .map(|(name, raw)| {
            let pattern = if glob_patterns {
                glob(&raw)?
            } else {
                regex(&raw)?
            };
            Ok((name, pattern))
        })
        .collect()
}
