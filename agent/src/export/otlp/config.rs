//! Where and how to send OTLP: endpoint, protocol, headers, intervals.
//!
//! Endpoint rules follow the OpenTelemetry exporter specification: the general
//! endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`) gets the signal path (`/v1/traces`,
//! `/v1/metrics`) appended for http/protobuf, while a signal-specific endpoint
//! (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `..._METRICS_ENDPOINT`) is used as is.
//! gRPC ignores paths: the endpoint names the server.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`: protobuf bodies POSTed to `/v1/<signal>`.
    HttpProtobuf,
    /// `grpc`: the collector's TraceService / MetricsService.
    Grpc,
}

impl Protocol {
    /// The spelling the OTEL_EXPORTER_OTLP_PROTOCOL variable uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = OtlpConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "grpc" => Ok(Protocol::Grpc),
            "http/json" => Err(OtlpConfigError::UnsupportedProtocol(s.to_string())),
            other => Err(OtlpConfigError::UnknownProtocol(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpConfigError {
    #[error("unknown OTLP protocol {0:?}: expected \"http/protobuf\" or \"grpc\"")]
    UnknownProtocol(String),
    #[error("OTLP protocol {0:?} is not supported: use \"http/protobuf\" or \"grpc\"")]
    UnsupportedProtocol(String),
    #[error("invalid OTLP {what} {url:?}: {reason}")]
    BadUrl {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("invalid OTLP header {name:?}: {reason}")]
    BadHeader { name: String, reason: &'static str },
    #[error("OTLP {what} must be greater than zero")]
    ZeroDuration { what: &'static str },
}

/// Everything the OTLP exporters need; filled by the config module.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The general endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`), e.g. `http://collector:4318`.
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: used as is, no path appended.
    pub traces_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: used as is, no path appended.
    pub metrics_endpoint: Option<String>,
    pub protocol: Protocol,
    /// Sent with every request (HTTP headers, or gRPC metadata with lowercased names).
    pub headers: Vec<(String, String)>,
    /// How often metrics are pushed.
    pub export_interval: Duration,
    /// Upper bound for one export request.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// A configuration with the specification's defaults for everything else
    /// (60 s metric interval as OTEL_METRIC_EXPORT_INTERVAL, 10 s timeout).
    pub fn new(endpoint: impl Into<String>, protocol: Protocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            traces_endpoint: None,
            metrics_endpoint: None,
            protocol,
            headers: Vec::new(),
            export_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }

    /// Where spans go.
    pub fn traces_url(&self) -> String {
        self.signal_url(self.traces_endpoint.as_deref(), "v1/traces")
    }

    /// Where metrics go.
    pub fn metrics_url(&self) -> String {
        self.signal_url(self.metrics_endpoint.as_deref(), "v1/metrics")
    }

    fn signal_url(&self, specific: Option<&str>, path: &str) -> String {
        if let Some(url) = specific.filter(|s| !s.is_empty()) {
            return url.to_string();
        }
        match self.protocol {
            Protocol::Grpc => self.endpoint.clone(),
            Protocol::HttpProtobuf => {
                if self.endpoint.ends_with('/') {
                    format!("{}{path}", self.endpoint)
                } else {
                    format!("{}/{path}", self.endpoint)
                }
            }
        }
    }

    /// Rejects what would only fail later, at export time, with a less clear message.
    pub fn validate(&self) -> Result<(), OtlpConfigError> {
        check_url("endpoint", &self.endpoint)?;
        if let Some(url) = self.traces_endpoint.as_deref().filter(|s| !s.is_empty()) {
            check_url("traces endpoint", url)?;
        }
        if let Some(url) = self.metrics_endpoint.as_deref().filter(|s| !s.is_empty()) {
            check_url("metrics endpoint", url)?;
        }
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        if self.export_interval.is_zero() {
            return Err(OtlpConfigError::ZeroDuration {
                what: "metrics export interval",
            });
        }
        if self.timeout.is_zero() {
            return Err(OtlpConfigError::ZeroDuration {
                what: "export timeout",
            });
        }
        Ok(())
    }
}

/// `http://host[:port][/path]`; https is refused because this build carries no TLS stack.
fn check_url(what: &'static str, url: &str) -> Result<(), OtlpConfigError> {
    let bad = |reason: &str| OtlpConfigError::BadUrl {
        what,
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(bad(
            "https is not supported by this build (no TLS): use http:// to a local collector",
        ));
    } else if url.contains("://") {
        return Err(bad("the scheme must be http://"));
    } else {
        return Err(bad(
            "expected an absolute URL such as http://localhost:4318",
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("user information in the URL is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' in host"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("junk after IPv6 host"))?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '%')
    {
        return Err(bad("invalid character in host"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        }
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("whitespace or control character in URL"));
    }
    Ok(())
}

/// Header names are RFC 9110 tokens; values visible ASCII, spaces and tabs.
fn check_header(name: &str, value: &str) -> Result<(), OtlpConfigError> {
    let bad = |reason| OtlpConfigError::BadHeader {
        name: name.to_string(),
        reason,
    };
    const TCHAR: &str = "!#$%&'*+-.^_`|~";
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || TCHAR.contains(c))
    {
        return Err(bad(
            "the name must be an HTTP token (letters, digits, -, _ ...)",
        ));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(bad("the value must be printable ASCII"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_general_endpoint_gets_signal_paths() {
        let c = OtlpConfig::new("http://collector:4318", Protocol::HttpProtobuf);
        assert_eq!(c.traces_url(), "http://collector:4318/v1/traces");
        assert_eq!(c.metrics_url(), "http://collector:4318/v1/metrics");
        let c = OtlpConfig::new("http://collector:4318/", Protocol::HttpProtobuf);
        assert_eq!(c.traces_url(), "http://collector:4318/v1/traces");
        let c = OtlpConfig::new("http://gw/otlp", Protocol::HttpProtobuf);
        assert_eq!(c.traces_url(), "http://gw/otlp/v1/traces");
        assert_eq!(c.metrics_url(), "http://gw/otlp/v1/metrics");
    }

    #[test]
    fn signal_specific_endpoint_is_used_as_is() {
        let mut c = OtlpConfig::new("http://collector:4318", Protocol::HttpProtobuf);
        c.traces_endpoint = Some("http://tempo:4318/custom".into());
        c.metrics_endpoint = Some(String::new());
        assert_eq!(c.traces_url(), "http://tempo:4318/custom");
        assert_eq!(c.metrics_url(), "http://collector:4318/v1/metrics");
    }

    #[test]
    fn grpc_endpoint_has_no_path_appended() {
        let mut c = OtlpConfig::new("http://collector:4317", Protocol::Grpc);
        assert_eq!(c.traces_url(), "http://collector:4317");
        assert_eq!(c.metrics_url(), "http://collector:4317");
        c.metrics_endpoint = Some("http://other:4317".into());
        assert_eq!(c.metrics_url(), "http://other:4317");
    }

    #[test]
    fn protocol_names() {
        assert_eq!(
            "http/protobuf".parse::<Protocol>().unwrap(),
            Protocol::HttpProtobuf
        );
        assert_eq!("grpc".parse::<Protocol>().unwrap(), Protocol::Grpc);
        assert_eq!(
            "http/json".parse::<Protocol>(),
            Err(OtlpConfigError::UnsupportedProtocol("http/json".into()))
        );
        let err = "thrift".parse::<Protocol>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown OTLP protocol \"thrift\": expected \"http/protobuf\" or \"grpc\""
        );
    }

    #[test]
    fn validate_accepts_good_configs() {
        for url in [
            "http://localhost:4318",
            "http://127.0.0.1:4317/",
            "http://[::1]:4318/prefix",
            "http://collector.monitoring.svc",
        ] {
            let mut c = OtlpConfig::new(url, Protocol::HttpProtobuf);
            c.headers = vec![("Authorization".into(), "Basic abc==".into())];
            assert_eq!(c.validate(), Ok(()), "{url}");
        }
    }

    #[test]
    fn validate_rejects_bad_urls_clearly() {
        for (url, reason) in [
            ("localhost:4318", "expected an absolute URL"),
            ("ftp://x:1", "scheme must be http://"),
            ("https://x:4318", "https is not supported"),
            ("http://:4318", "missing host"),
            ("http://x:99999", "port must be a number"),
            ("http://x:abc/", "port must be a number"),
            ("http://[::1", "unclosed"),
            ("http://a b:1", "invalid character"),
        ] {
            let c = OtlpConfig::new(url, Protocol::HttpProtobuf);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(reason), "{url}: {err}");
            assert!(err.contains(url), "{url}: {err}");
        }
        let mut c = OtlpConfig::new("http://x:1", Protocol::Grpc);
        c.traces_endpoint = Some("nope".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("invalid OTLP traces endpoint \"nope\""));
    }

    #[test]
    fn validate_rejects_bad_headers_and_zero_durations() {
        let mut c = OtlpConfig::new("http://x:1", Protocol::Grpc);
        c.headers = vec![("bad name".into(), "v".into())];
        assert!(matches!(
            c.validate(),
            Err(OtlpConfigError::BadHeader { .. })
        ));
        c.headers = vec![("x-ok".into(), "line\nbreak".into())];
        assert!(matches!(
            c.validate(),
            Err(OtlpConfigError::BadHeader { .. })
        ));
        c.headers.clear();
        c.export_interval = Duration::ZERO;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "OTLP metrics export interval must be greater than zero"
        );
    }
}
