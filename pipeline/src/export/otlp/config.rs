//! Where and how to send OTLP: endpoint, protocol, headers, intervals. Which
//! variable or key an endpoint came from, and the signal path the OpenTelemetry
//! specification appends, are the configuration's business; this is the result.

use std::fmt;
use std::time::Duration;

use crate::export::select::Instrumentations;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`: protobuf bodies POSTed to `/v1/<signal>`.
    HttpProtobuf,
    /// `http/json`: the same requests with JSON bodies.
    HttpJson,
    /// `grpc`: the collector's TraceService / MetricsService.
    Grpc,
}

impl Protocol {
    /// The spelling the OTEL_EXPORTER_OTLP_PROTOCOL variable uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
            Protocol::Grpc => "grpc",
        }
    }

    /// An HTTP transport, whose URL carries the signal path.
    pub fn is_http(self) -> bool {
        self != Protocol::Grpc
    }
}

/// How requests are compressed (OTEL_EXPORTER_OTLP_COMPRESSION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

/// How an `https://` receiver's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// PEM certificates trusted besides the public roots
    /// (OTEL_EXPORTER_OTLP_CERTIFICATE), as read from the file.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any certificate (Beyla's `insecure_skip_verify`); http only.
    pub insecure_skip_verify: bool,
}

impl Tls {
    /// The certificates of [`Tls::ca_pem`]; an error names what is wrong.
    pub fn certificates(
        &self,
    ) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, &'static str> {
        use rustls::pki_types::pem::PemObject;
        let Some(pem) = &self.ca_pem else {
            return Ok(Vec::new());
        };
        let certificates = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "the certificate file is not valid PEM")?;
        if certificates.is_empty() {
            return Err("the certificate file holds no PEM certificate");
        }
        Ok(certificates)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpConfigError {
    #[error("invalid OTLP endpoint {url:?}: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("invalid OTLP header {name:?}: {reason}")]
    BadHeader { name: String, reason: &'static str },
    #[error("OTLP {what} must be greater than zero")]
    ZeroDuration { what: &'static str },
    #[error("invalid OTLP certificate: {reason}")]
    BadCertificate { reason: &'static str },
}

/// Where and how one signal is sent: the one validated form, built by the
/// agent's configuration and used unchanged by the exporter, so that what
/// `--check-config` accepts is exactly what starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    /// The final URL: for http/protobuf with the signal path (`/v1/traces`);
    /// for gRPC a URL or `host:port`.
    pub endpoint: String,
    pub protocol: Protocol,
    /// Sent with every request (HTTP headers, or gRPC metadata with lowercased names).
    pub headers: Vec<(String, String)>,
    /// Upper bound for one export request.
    pub timeout: Duration,
    /// The operations whose spans are exported (Beyla's `instrumentations`).
    pub instrumentations: Instrumentations,
    pub compression: Compression,
    pub tls: Tls,
}

/// The metrics signal: where, and how often metrics are pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub signal: SignalConfig,
    pub interval: Duration,
}

/// The OpenTelemetry specification's default for one export request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl SignalConfig {
    pub fn new(endpoint: impl Into<String>, protocol: Protocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            instrumentations: Instrumentations::ALL,
            compression: Compression::None,
            tls: Tls::default(),
        }
    }

    /// The URL the client library is given: a gRPC `host:port` gets `http://`.
    pub fn url(&self) -> String {
        if self.protocol == Protocol::Grpc && !self.endpoint.contains("://") {
            format!("http://{}", self.endpoint)
        } else {
            self.endpoint.clone()
        }
    }

    /// Rejects what would only fail later, at export time, with a less clear message.
    pub fn validate(&self) -> Result<(), OtlpConfigError> {
        check_endpoint(&self.endpoint, self.protocol).map_err(|reason| {
            OtlpConfigError::BadUrl {
                url: self.endpoint.clone(),
                reason,
            }
        })?;
        for (name, value) in &self.headers {
            check_header(name, value).map_err(|reason| OtlpConfigError::BadHeader {
                name: name.clone(),
                reason,
            })?;
        }
        if self.timeout.is_zero() {
            return Err(OtlpConfigError::ZeroDuration {
                what: "export timeout",
            });
        }
        self.tls
            .certificates()
            .map_err(|reason| OtlpConfigError::BadCertificate { reason })?;
        Ok(())
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), OtlpConfigError> {
        self.signal.validate()?;
        if self.interval.is_zero() {
            return Err(OtlpConfigError::ZeroDuration {
                what: "metrics export interval",
            });
        }
        Ok(())
    }
}

/// An endpoint this build can send to: `http://` or `https://host[:port][/path]`,
/// or for gRPC also `host:port`. The reason is one phrase, for the caller to place.
pub fn check_endpoint(endpoint: &str, protocol: Protocol) -> Result<(), &'static str> {
    if protocol == Protocol::Grpc && !endpoint.contains("://") && !endpoint.contains('/') {
        return match check_url(&format!("http://{endpoint}")) {
            Ok(())
                if endpoint
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| !p.is_empty()) =>
            {
                Ok(())
            }
            Ok(()) => Err("host:port needs a port, such as tempo:4317"),
            Err(e) => Err(e),
        };
    }
    check_url(endpoint)
}

/// `http://` or `https://host[:port][/path]`.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = if let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        rest
    } else if url.contains("://") {
        return Err("the scheme must be http:// or https://");
    } else {
        return Err("not an absolute URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user information in the URL is not supported");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after IPv6 host")?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '%')
    {
        return Err("invalid character in host");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err("the port must be a number from 1 to 65535"),
        }
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("whitespace or control character in URL");
    }
    Ok(())
}

/// Header names are RFC 9110 tokens; values visible ASCII, spaces and tabs.
pub fn check_header(name: &str, value: &str) -> Result<(), &'static str> {
    const TCHAR: &str = "!#$%&'*+-.^_`|~";
    if name.is_empty() {
        return Err("empty name");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || TCHAR.contains(c))
    {
        return Err("the name must be an HTTP token (letters, digits, -, _ ...)");
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err("the value must be printable ASCII");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_host_port_gets_a_scheme_and_http_stays_as_written() {
        let c = SignalConfig::new("tempo:4317", Protocol::Grpc);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.url(), "http://tempo:4317");
        let c = SignalConfig::new("http://collector:4318/v1/traces", Protocol::HttpProtobuf);
        assert_eq!(c.url(), "http://collector:4318/v1/traces");
    }

    #[test]
    fn validate_accepts_good_configs() {
        for url in [
            "http://localhost:4318",
            "http://127.0.0.1:4317/",
            "http://[::1]:4318/prefix",
            "http://collector.monitoring.svc",
        ] {
            let mut c = SignalConfig::new(url, Protocol::HttpProtobuf);
            c.headers = vec![("Authorization".into(), "Basic abc==".into())];
            assert_eq!(c.validate(), Ok(()), "{url}");
        }
    }

    #[test]
    fn certificates_are_checked_when_configured() {
        let mut c = SignalConfig::new("https://collector:4318/v1/traces", Protocol::HttpProtobuf);
        assert_eq!(c.validate(), Ok(()));
        c.tls.ca_pem = Some(b"not a certificate".to_vec());
        assert_eq!(
            c.validate(),
            Err(OtlpConfigError::BadCertificate {
                reason: "the certificate file holds no PEM certificate"
            })
        );
    }

    #[test]
    fn validate_rejects_bad_urls_clearly() {
        for (url, protocol, reason) in [
            (
                "localhost:4318",
                Protocol::HttpProtobuf,
                "not an absolute URL",
            ),
            (
                "ftp://x:1",
                Protocol::HttpProtobuf,
                "scheme must be http:// or https://",
            ),
            ("https://:4318", Protocol::HttpProtobuf, "missing host"),
            ("http://:4318", Protocol::HttpProtobuf, "missing host"),
            (
                "http://x:99999",
                Protocol::HttpProtobuf,
                "port must be a number",
            ),
            (
                "http://x:abc/",
                Protocol::HttpProtobuf,
                "port must be a number",
            ),
            ("http://[::1", Protocol::HttpProtobuf, "unclosed"),
            ("http://a b:1", Protocol::HttpProtobuf, "invalid character"),
            ("tempo", Protocol::Grpc, "needs a port"),
            ("tempo:0", Protocol::Grpc, "port must be a number"),
        ] {
            let c = SignalConfig::new(url, protocol);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(reason), "{url}: {err}");
            assert!(err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn validate_rejects_bad_headers_and_zero_durations() {
        let mut c = SignalConfig::new("http://x:1", Protocol::Grpc);
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
        let m = MetricsConfig {
            signal: c,
            interval: Duration::ZERO,
        };
        assert_eq!(
            m.validate().unwrap_err().to_string(),
            "OTLP metrics export interval must be greater than zero"
        );
    }
}
