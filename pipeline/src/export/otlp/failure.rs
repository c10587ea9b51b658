//! Which failed exports may succeed if tried again. The OTLP specification
//! retries only throttling and unavailability: HTTP 429, 502, 503, 504, and
//! the gRPC codes CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
//! OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS; every other answer (401, 403, 404,
//! 400, ...) is permanent: the data is dropped and counted. No answer at all
//! (a refused connection, a timeout) is worth retrying.
//!
//! The export library reports a failure as text only, with the status it got:
//! `... failed with status code: 401` (HTTP), `... failed with gRPC code:
//! Unauthenticated` (gRPC); this reads that status back.

/// A receiver's answer that trying again will not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Http(u16),
    /// The gRPC code, as the library names it (`Unauthenticated`).
    Grpc(String),
}

const HTTP_STATUS: &str = "status code: ";
const GRPC_CODE: &str = "gRPC code: ";
const RETRYABLE_HTTP: [u16; 4] = [429, 502, 503, 504];
const RETRYABLE_GRPC: [&str; 7] = [
    "Cancelled",
    "DeadlineExceeded",
    "ResourceExhausted",
    "Aborted",
    "OutOfRange",
    "Unavailable",
    "DataLoss",
];

/// The permanent refusal a failure message reports, if it is one.
pub fn refusal(message: &str) -> Option<Refusal> {
    if let Some(at) = message.find(HTTP_STATUS) {
        let digits: String = message[at + HTTP_STATUS.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let status: u16 = digits.parse().ok()?;
        // 0 is the library's "no answer" (a network error).
        return (status >= 400 && !RETRYABLE_HTTP.contains(&status))
            .then_some(Refusal::Http(status));
    }
    let at = message.find(GRPC_CODE)?;
    let code: String = message[at + GRPC_CODE.len()..]
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    (!code.is_empty() && code != "Ok" && !RETRYABLE_GRPC.contains(&code.as_str()))
        .then_some(Refusal::Grpc(code))
}

impl Refusal {
    /// The receiver has no such service: it takes other signals only
    /// (Jaeger takes traces and no metrics).
    pub fn not_served(&self) -> bool {
        match self {
            Refusal::Http(status) => matches!(status, 404 | 405),
            Refusal::Grpc(code) => code == "Unimplemented",
        }
    }

    /// The receiver wants credentials it did not get, or refuses them.
    pub fn unauthorized(&self) -> bool {
        match self {
            Refusal::Http(status) => matches!(status, 401 | 403),
            Refusal::Grpc(code) => code == "Unauthenticated" || code == "PermissionDenied",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Http(status) => write!(f, "HTTP {status}"),
            Refusal::Grpc(code) => write!(f, "gRPC {code}"),
        }
    }
}

/// What to do about a refusal, for the log.
pub fn advice(refusal: &Refusal, signal: &str) -> String {
    if refusal.unauthorized() {
        format!(
            "the receiver refuses the credentials: check OTEL_EXPORTER_OTLP_HEADERS \
             (or OTEL_EXPORTER_OTLP_{}_HEADERS)",
            signal.to_ascii_uppercase()
        )
    } else if refusal.not_served() {
        format!(
            "the receiver does not take OTLP {signal} at this endpoint (Jaeger, for one, \
             takes traces only): point OTEL_EXPORTER_OTLP_{}_ENDPOINT at a receiver that \
             does, or set OTEL_{}_EXPORTER=none",
            signal.to_ascii_uppercase(),
            signal.to_ascii_uppercase()
        )
    } else {
        "a permanent error: the receiver will not take this data if it is sent again".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_s_retryable_answers_and_no_answer_are_transient() {
        for message in [
            "HTTP export failed with status code: 429",
            "HTTP export failed with status code: 503",
            "HTTP export failed: network error",
            "HTTP export failed with status code: 0",
            "TonicTracesClient export failed with gRPC code: Unavailable: transport error",
            "TonicMetricsClient export failed with gRPC code: DeadlineExceeded",
            "no answer within 11s",
        ] {
            assert_eq!(refusal(message), None, "{message}");
        }
    }

    #[test]
    fn other_answers_are_permanent() {
        assert_eq!(
            refusal("HTTP export failed with status code: 401"),
            Some(Refusal::Http(401))
        );
        let grpc = refusal("TonicTracesClient export failed with gRPC code: Unauthenticated");
        assert_eq!(grpc, Some(Refusal::Grpc("Unauthenticated".into())));
        assert!(grpc.unwrap().unauthorized());
        assert!(refusal("HTTP export failed with status code: 404")
            .unwrap()
            .not_served());
        assert!(
            refusal("TonicMetricsClient export failed with gRPC code: Unimplemented")
                .unwrap()
                .not_served()
        );
        assert_eq!(
            refusal("HTTP export failed with status code: 400"),
            Some(Refusal::Http(400))
        );
        assert!(advice(&Refusal::Http(404), "metrics").contains("OTEL_METRICS_EXPORTER=none"));
    }
}
